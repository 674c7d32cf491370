"""Concept sets: positive/negative prompt pairs, loaded, validated and saved.

A concept is a list of pairs that share everything but the concept (DESIGN.md, "Data"). Files are
``.jsonl`` (one ``{"positive": ..., "negative": ...}`` object a line) or ``.csv`` (columns
``positive,negative``). Every problem is a :class:`ValueError` naming the file, the line and what
was expected; nothing is silently dropped or rewritten, so ``save`` then ``load`` gives the same set
(extra JSON keys or CSV columns are kept per pair).

Built-in packs live in ``assets/concepts/<slug>.jsonl`` with ``<slug>.implicit.txt`` (paraphrases
that evoke the concept without naming it: evaluation only) and ``<slug>.implicit_neutral.txt``
(the same scenes without the concept, line by line).
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from clear_core.io import atomic_write_text
from clear_core.limits import (
    MAX_CONCEPT_FILE_BYTES,
    MAX_PAIRS,
    MAX_PROMPT_CHARS,
    MAX_PROMPTS,
    check_control_chars,
    check_file_size,
)
from clear_core.paths import ASSETS_DIR

__all__ = [
    "ASSETS_DIR",
    "MAX_PROMPT_CHARS",
    "ConceptPair",
    "ConceptSet",
    "builtin_packs",
    "check_prompt",
    "is_blank",
    "load_builtin",
    "load_concept",
    "load_implicit",
    "load_prompts",
    "prompt_lines",
    "unrelated_prompts",
]

CONCEPTS_DIR = ASSETS_DIR / "concepts"


def is_blank(text: str) -> bool:
    """True when ``text`` has nothing visible: only whitespace, zero-width or other invisible format
    characters (U+200B, U+FEFF, ...), which ``str.strip`` keeps and a tokenizer turns into a real
    'prompt'."""
    return all(ch.isspace() or unicodedata.category(ch) in ("Cf", "Cc", "Zs", "Zl", "Zp") for ch in text)


def check_prompt(text: str, where: str, what: str = "prompt") -> str:
    """``text`` unchanged, or a ValueError naming ``where``: empty, only invisible characters, longer
    than :data:`MAX_PROMPT_CHARS`, or holding a control character such as NUL (the rule for every
    prompt: files, pairs, the app's boxes; limits in clear_core/limits.py)."""
    if is_blank(text):
        raise ValueError(
            f"{where}: the {what} is empty" + (" (only invisible characters)" if text.strip() else "")
        )
    if len(text) > MAX_PROMPT_CHARS:
        raise ValueError(
            f"{where}: the {what} is {len(text):,} characters long; the limit is {MAX_PROMPT_CHARS:,}"
        )
    return check_control_chars(text, where, what)


@dataclass(frozen=True)
class ConceptPair:
    """Two prompts that differ only by the concept."""

    positive: str
    """The prompt with the concept."""
    negative: str
    """The same prompt without it."""
    extra: tuple[tuple[str, str], ...] = ()
    """Any other fields the file carried (kept so that saving is lossless)."""


@dataclass
class ConceptSet:
    """A named list of prompt pairs. Build with :meth:`load`, :meth:`from_text` or :meth:`from_pairs`."""

    name: str
    """Concept name shown in the UI and stored in eraser artifacts."""
    pairs: list[ConceptPair] = field(default_factory=list)
    """The pairs, in file order."""

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise ValueError("a concept set needs a non-empty name")
        check_control_chars(self.name, "concept name", "name")

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def positives(self) -> list[str]:
        return [p.positive for p in self.pairs]

    @property
    def negatives(self) -> list[str]:
        return [p.negative for p in self.pairs]

    # ----------------------------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: str | Path, name: str | None = None) -> ConceptSet:
        """Read a ``.jsonl`` or ``.csv`` concept file; the name defaults to the file stem."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path}: concept file not found")
        check_file_size(path, "concept file", MAX_CONCEPT_FILE_BYTES)
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            line = raw[: err.start].count(b"\n") + 1
            raise ValueError(
                f"{path}, line {line}: not valid UTF-8 (byte 0x{raw[err.start]:02x}); save the file as UTF-8"
            ) from None
        fmt = _format_of(path)
        return cls.from_text(text, fmt=fmt, name=name or path.stem, source=str(path))

    @classmethod
    def from_text(
        cls, text: str, fmt: str = "jsonl", name: str = "custom", source: str = "<text>"
    ) -> ConceptSet:
        """Parse pasted or uploaded text; ``fmt`` is ``"jsonl"`` or ``"csv"``."""
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"{source}: unknown format {fmt!r}; expected 'jsonl' or 'csv'")
        if not text.strip():
            raise ValueError(f"{source}: the file is empty; expected one positive/negative pair per line")
        rows = _parse_jsonl(text, source) if fmt == "jsonl" else _parse_csv(text, source)
        return cls.from_pairs(rows, name=name, source=source)

    @classmethod
    def from_pairs(
        cls,
        rows: list[tuple[int, str, str, tuple[tuple[str, str], ...]]] | list[tuple[str, str]],
        name: str = "custom",
        source: str = "<pairs>",
    ) -> ConceptSet:
        """Validate ``(positive, negative)`` rows (or ``(line, positive, negative, extra)`` from a parser)."""
        pairs: list[ConceptPair] = []
        seen: dict[tuple[str, str], int] = {}
        if len(rows) > MAX_PAIRS:
            raise ValueError(f"{source}: {len(rows):,} pairs; the limit is {MAX_PAIRS:,} per concept")
        for i, row in enumerate(rows, start=1):
            line, pos, neg, extra = row if len(row) == 4 else (i, row[0], row[1], ())
            where = f"{source}, line {line}"
            for label, value in (("positive", pos), ("negative", neg)):
                if not isinstance(value, str):
                    raise ValueError(f"{where}: the {label} prompt must be text, got {type(value).__name__}")
                check_prompt(value, where, f"{label} prompt")
            if _norm(pos) == _norm(neg):
                raise ValueError(
                    f"{where}: the positive and negative prompts are identical ({pos.strip()!r})"
                )
            key = (_norm(pos), _norm(neg))
            if key in seen:
                raise ValueError(f"{where}: duplicate of the pair on line {seen[key]}")
            seen[key] = line
            pairs.append(ConceptPair(pos, neg, tuple(extra)))
        if not pairs:
            raise ValueError(f"{source}: no pairs found; expected one positive/negative pair per line")
        return cls(name=name, pairs=pairs)

    # ----------------------------------------------------------------------------------- saving
    def to_text(self, fmt: str = "jsonl") -> str:
        """The set as ``.jsonl`` or ``.csv`` text; :meth:`from_text` reads it back unchanged."""
        if fmt == "jsonl":
            lines = [
                json.dumps(
                    {"positive": p.positive, "negative": p.negative, **dict(p.extra)}, ensure_ascii=False
                )
                for p in self.pairs
            ]
            return "\n".join(lines) + "\n"
        if fmt == "csv":
            extra_keys = list(dict.fromkeys(k for p in self.pairs for k, _ in p.extra))
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(["positive", "negative", *extra_keys])
            for p in self.pairs:
                extra = dict(p.extra)
                writer.writerow([p.positive, p.negative, *(extra.get(k, "") for k in extra_keys)])
            return buf.getvalue()
        raise ValueError(f"unknown format {fmt!r}; expected 'jsonl' or 'csv'")

    def save(self, path: str | Path) -> Path:
        """Write to ``path`` (format from its suffix)."""
        path = Path(path)
        return atomic_write_text(path, self.to_text(_format_of(path)))


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise ValueError(f"{path}: unsupported concept file type {suffix!r}; expected .jsonl or .csv")


def _parse_jsonl(text: str, source: str) -> list[tuple[int, str, str, tuple[tuple[str, str], ...]]]:
    rows = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{source}, line {line_no}: not valid JSON ({err.msg})") from None
        if not isinstance(obj, dict):
            raise ValueError(
                f'{source}, line {line_no}: expected an object {{"positive": ..., "negative": ...}}, '
                f"got {type(obj).__name__}"
            )
        missing = [k for k in ("positive", "negative") if k not in obj]
        if missing:
            raise ValueError(f"{source}, line {line_no}: missing key {', '.join(repr(k) for k in missing)}")
        extra = tuple((k, v) for k, v in obj.items() if k not in ("positive", "negative"))
        rows.append((line_no, obj["positive"], obj["negative"], extra))
    return rows


def _parse_csv(text: str, source: str) -> list[tuple[int, str, str, tuple[tuple[str, str], ...]]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError(f"{source}: the file is empty; expected a header 'positive,negative'") from None
    columns = [c.strip().lower() for c in header]
    missing = [c for c in ("positive", "negative") if c not in columns]
    if missing:
        raise ValueError(
            f"{source}, line 1: missing column {', '.join(repr(c) for c in missing)}; "
            f"expected a header 'positive,negative', found {header}"
        )
    ip, ineg = columns.index("positive"), columns.index("negative")
    rows = []
    for record in reader:
        line_no = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            raise ValueError(
                f"{source}, line {line_no}: expected {len(header)} columns like the header, got {len(record)}"
            )
        extra = tuple((header[i], v) for i, v in enumerate(record) if i not in (ip, ineg))
        rows.append((line_no, record[ip], record[ineg], extra))
    return rows


# --------------------------------------------------------------------------------- built-in packs
_SLUG = re.compile(r"^[a-z0-9_]+$")


def builtin_packs() -> list[str]:
    """Slugs of the shipped concept packs, sorted."""
    return sorted(p.stem for p in CONCEPTS_DIR.glob("*.jsonl"))


def _pack_path(slug: str, suffix: str) -> Path:
    if not _SLUG.match(slug):
        raise ValueError(f"invalid concept slug {slug!r}: use lowercase letters, digits and underscores")
    path = CONCEPTS_DIR / f"{slug}{suffix}"
    if not path.is_file():
        raise ValueError(
            f"no built-in concept {slug!r} ({path.name} missing); available: {', '.join(builtin_packs())}"
        )
    return path


def load_concept(name: str | Path) -> ConceptSet:
    """A concept file, or a built-in pack by slug (``parachute``); an unknown slug lists the packs.

    A path that exists is always read as a file, so a file named like a pack is never shadowed.
    """
    path = Path(name)
    if path.exists() or path.suffix or len(path.parts) > 1:
        return ConceptSet.load(path)
    packs = builtin_packs()
    if str(name) in packs:
        return load_builtin(str(name))
    close = difflib.get_close_matches(str(name).lower(), packs, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ValueError(
        f"{name!r} is neither a concept file nor a built-in concept; {hint}built-in: {', '.join(packs)}"
    )


def load_builtin(slug: str) -> ConceptSet:
    """A shipped concept pack by slug (``parachute``, ``van_gogh``, ...)."""
    return ConceptSet.load(_pack_path(slug, ".jsonl"), name=slug)


def load_prompts(path: str | Path) -> list[str]:
    """A plain-text prompt file: one prompt a line, blank lines skipped."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: prompt file not found")
    check_file_size(path, "prompt file", MAX_CONCEPT_FILE_BYTES)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not valid UTF-8; save the file as UTF-8") from None
    prompts = prompt_lines(text, str(path))
    if not prompts:
        raise ValueError(f"{path}: the file is empty; expected one prompt a line")
    return prompts


def prompt_lines(text: str, source: str) -> list[str]:
    """One prompt a line (stripped), blank lines skipped, each checked by :func:`check_prompt`; at most
    :data:`MAX_PROMPTS` of them."""
    lines = text.splitlines()
    if len(lines) > MAX_PROMPTS and sum(1 for line in lines if line.strip()) > MAX_PROMPTS:
        raise ValueError(f"{source}: more than {MAX_PROMPTS:,} prompts; the limit is {MAX_PROMPTS:,}")
    return [
        check_prompt(line, f"{source}, line {i}").strip()
        for i, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def load_implicit(slug: str) -> tuple[list[str], list[str]]:
    """(implicit prompts, matched neutral prompts) of a built-in pack; evaluation only."""
    implicit = load_prompts(_pack_path(slug, ".implicit.txt"))
    neutral = load_prompts(_pack_path(slug, ".implicit_neutral.txt"))
    if len(implicit) != len(neutral):
        raise ValueError(
            f"{slug}: {len(implicit)} implicit prompts but {len(neutral)} matched neutral prompts"
        )
    return implicit, neutral


def unrelated_prompts() -> list[str]:
    """Neutral prompts unrelated to every built-in concept (to measure what erasure keeps)."""
    return load_prompts(ASSETS_DIR / "prompts" / "unrelated.txt")
