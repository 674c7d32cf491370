"""Every size a user, a visitor or a file can ask for, bounded in one place, before anything is allocated.

The command line, the app and the Python API refuse the same inputs with the same words: each check
raises a one-line ``ValueError`` naming the input, what arrived and the limit. Two kinds of limit:

* **Fixed caps** (the constants below): far above any real use (the paper's largest SAE has 131,072
  features, its concepts 500-3000 pairs, its videos 121 frames), low enough that a typo or a hostile
  file is refused at once instead of running for hours.
* **Memory budgets**: what an input would allocate is estimated from its shape (an SAE from d_sae ×
  d_model, a video from frames × height × width) and compared with :func:`memory_budget`, half of the
  memory this process can still get. The error states the estimate and the budget.

``CLEAR_MEMORY_LIMIT`` (bytes, or with a K/M/G suffix) replaces the measured available memory, for an
operator who wants a lower ceiling and for tests.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

__all__ = [
    "MAX_BATCH",
    "MAX_CONCEPT_FILE_BYTES",
    "MAX_D_MODEL",
    "MAX_D_SAE",
    "MAX_FPS",
    "MAX_FRAMES",
    "MAX_K",
    "MAX_PAIRS",
    "MAX_PROMPTS",
    "MAX_PROMPT_CHARS",
    "MAX_SEARCH_STEPS",
    "MAX_SEEDS",
    "MAX_SEQUENCE_LENGTH",
    "MAX_SIDE",
    "MAX_STEPS",
    "MAX_UPLOAD_BYTES",
    "MAX_ZIP_BYTES",
    "available_memory",
    "check_control_chars",
    "check_count",
    "check_file_size",
    "check_memory",
    "check_sae_size",
    "check_video_size",
    "format_bytes",
    "memory_budget",
    "sae_bytes",
    "video_bytes",
]

MAX_PROMPT_CHARS = 2000
"""Longer prompts are refused: text encoders truncate at 77-512 tokens, and a longer 'prompt' is
almost always a file in the wrong format."""
MAX_PAIRS = 20_000
"""Prompt pairs in one concept (the paper uses 500-3000; the built-in packs 240)."""
MAX_PROMPTS = 20_000
"""Prompts in one prompt file."""
MAX_CONCEPT_FILE_BYTES = 64 * 1024**2
"""A concept or prompt file larger than this is not read (20,000 pairs of 2,000 characters fit)."""
MAX_UPLOAD_BYTES = 512 * 1024**2
"""Largest single file the app accepts from a visitor (an exported eraser for MiniLM is ~7 MB)."""
MAX_ZIP_BYTES = 8 * 1024**3
"""Largest uncompressed content of an uploaded artifact zip (a d_model 4096 × 131,072 SAE is ~4.3 GB)."""
MAX_D_SAE = 262_144
"""SAE features (twice the paper's 131,072)."""
MAX_D_MODEL = 16_384
"""Width of an encoder block (T5-XXL: 4096)."""
MAX_K = 4096
"""Active features per token of a top-k SAE."""
MAX_SEARCH_STEPS = 100_000
"""Search steps (the paper: 2,500-3,750)."""
MAX_BATCH = 4096
"""Prompts or pairs per batch."""
MAX_SEQUENCE_LENGTH = 2048
"""Text tokens (T5 pipelines use 226-512, CLIP 77)."""
MAX_STEPS = 1000
"""Denoising steps (pipelines use 4-100)."""
MAX_FRAMES = 1024
"""Frames of one video (Wan: 81-121)."""
MAX_SIDE = 4096
"""Height or width of a video in pixels."""
MAX_SEEDS = 1000
"""Seeds in one run (each one renders every prompt and variant again)."""
MAX_FPS = 240
"""Frames per second of a written mp4."""

_FLOAT = 4  # bytes of a float32


def format_bytes(n: float) -> str:
    """``1.5 GiB``-style size (binary units, as ``free -h`` counts)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def _parse_bytes(text: str) -> int:
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}.get(text[-1:], 1)
    number = text[:-1] if scale > 1 else text
    try:
        value = int(float(number) * scale)
    except ValueError:
        raise ValueError(f"CLEAR_MEMORY_LIMIT must be a size such as 4G or 512M, got {text!r}") from None
    if value <= 0:
        raise ValueError(f"CLEAR_MEMORY_LIMIT must be > 0, got {text!r}")
    return value


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup (v2) memory limit, if there is one."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        return max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None


def available_memory() -> int:
    """Bytes this process can still allocate: ``CLEAR_MEMORY_LIMIT`` when set, else the smaller of the
    system's available memory (``MemAvailable``) and the room under a cgroup limit."""
    override = os.environ.get("CLEAR_MEMORY_LIMIT")
    if override:
        return _parse_bytes(override)
    room = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                room.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    if not room:
        try:
            room.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, AttributeError):
            room.append(8 * 1024**3)  # no way to ask: assume a small machine
    cgroup = _cgroup_room()
    if cgroup is not None:
        room.append(cgroup)
    return min(room)


def memory_budget() -> int:
    """Half of :func:`available_memory`: what one input may take, leaving room for the model and the rest."""
    return available_memory() // 2


def check_memory(estimate: float, what: str, how: str, fix: str) -> None:
    """Refuse ``what`` when ``estimate`` bytes exceed the budget, saying how the estimate was made."""
    budget = memory_budget()
    if estimate > budget:
        raise ValueError(
            f"{what} would need ~{format_bytes(estimate)} of memory ({how}), over the limit of "
            f"{format_bytes(budget)} (half of the {format_bytes(2 * budget)} available); {fix}"
        )


def check_count(value: object, name: str, maximum: int, minimum: int = 1) -> int:
    """An integer in ``[minimum, maximum]``, else a one-line ValueError naming ``name``."""
    from clear_core.validation import check_int

    return check_int(value, name, minimum=minimum, maximum=maximum)


# ------------------------------------------------------------------------------------------ text
_ALLOWED_CONTROL = frozenset("\t\n\r")


def check_control_chars(text: str, where: str, what: str = "prompt") -> str:
    """``text`` unchanged, or a ValueError naming the first control character (NUL, ESC, DEL, C1 ...).

    Tabs and line breaks are whitespace and pass; every other control character is invisible in the
    app, cut by some tokenizers and not by others, and can end a C string early.
    """
    for i, ch in enumerate(text):
        if ch not in _ALLOWED_CONTROL and unicodedata.category(ch) == "Cc":
            raise ValueError(
                f"{where}: the {what} contains the control character U+{ord(ch):04X} at position {i + 1}; "
                "remove it"
            )
    return text


# ----------------------------------------------------------------------------------------- files
def check_file_size(path: str | Path, what: str, limit: int, shown: str | None = None) -> int:
    """The size of ``path`` in bytes, or a ValueError when it is over ``limit`` (checked before reading)."""
    size = Path(path).stat().st_size
    if size > limit:
        raise ValueError(
            f"{shown or path}: the {what} is {format_bytes(size)}; the limit is {format_bytes(limit)}"
        )
    return size


# ------------------------------------------------------------------------------------------- SAE
def sae_bytes(d_sae: int, d_model: int) -> int:
    """Peak bytes of loading an SAE: the two (d_sae, d_model) float32 matrices read from the file, and
    the module's own two plus the temporary its initialisation draws (clear_core/sae.py)."""
    return 5 * d_sae * d_model * _FLOAT


def check_sae_size(d_sae: object, d_model: object, k: object = None, where: str = "") -> tuple[int, int]:
    """(d_sae, d_model) within the caps and the memory budget; ``k`` (top-k SAEs) at most d_sae.
    ``where`` prefixes the names in the message (``sae.`` for an eraser.json field)."""
    d_sae = check_count(d_sae, f"{where}d_sae", MAX_D_SAE)
    d_model = check_count(d_model, f"{where}d_model", MAX_D_MODEL)
    if k is not None:
        check_count(k, f"{where}k", min(MAX_K, d_sae))
    check_memory(
        sae_bytes(d_sae, d_model),
        f"an SAE of {d_sae:,} features × d_model {d_model:,}",
        "5 float32 matrices of d_sae × d_model while it loads",
        "use a smaller d_sae",
    )
    return d_sae, d_model


# ----------------------------------------------------------------------------------------- video
def video_bytes(frames: int, height: int, width: int, clips: int = 1) -> int:
    """Bytes of ``clips`` float32 RGB videos of frames × height × width (what a render holds at once)."""
    return int(frames) * int(height) * int(width) * 3 * _FLOAT * int(clips)


def check_video_size(
    frames: int, height: int, width: int, clips: int = 1, fix: str = "lower --frames, --height or --width"
) -> None:
    """Refuse a render whose frames alone would not fit the memory budget (before anything renders)."""
    check_memory(
        video_bytes(frames, height, width, clips),
        f"{frames} frames of {height}×{width}",
        f"frames × height × width × 3 colours × 4 bytes × {clips} clip{'s' if clips != 1 else ''} held at once",
        fix,
    )
