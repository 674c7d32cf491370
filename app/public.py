"""Public mode: what a visitor of a shared server may choose, and what an error may tell them.

A workbench on a laptop (127.0.0.1) trusts its user: any model, pipeline or detector folder may be
named. A public one (a Hugging Face Space, any server on 0.0.0.0) does not:

* models, pipelines and detectors are limited to lists the operator sets, so no server path is ever
  opened for a visitor, and a refused name gets the same message whether or not such a path exists;
* uploads are smaller (:attr:`Policy.max_upload_bytes`) and a concept holds at most
  :attr:`Policy.max_pairs` pairs, checked before any capture;
* error messages lose every server path (:func:`scrub`), and an unexpected error shows no details.

Public mode is on when ``CLEAR_PUBLIC`` is 1/true, or when it is unset and the app listens on 0.0.0.0
(``app.launch.launch_options``: a Space) — ``CLEAR_PUBLIC=0`` turns it off. The lists come from
``CLEAR_MODELS``, ``CLEAR_PIPELINES`` and ``CLEAR_DETECTORS`` (comma-separated), the sizes from
``CLEAR_MAX_PAIRS`` and ``CLEAR_MAX_UPLOAD_MB``; docs/safety.md has the defaults. The policy is
process-wide operator configuration (set once at start-up by :func:`configure`), not visitor state.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from clear_core import limits

__all__ = [
    "Policy",
    "check_detector",
    "check_model",
    "check_pairs",
    "check_pipeline",
    "configure",
    "from_environment",
    "policy",
    "scrub",
]

DEFAULT_MODELS = ("minilm",)
DEFAULT_PIPELINES = ("testbed", "tiny-wan", "tiny-cogvideox", "tiny-sd")
DEFAULT_DETECTORS = ("testbed", "nudenet")
PUBLIC_MAX_PAIRS = 3000
"""Pairs per concept on a public server (the paper's largest set; a capture of 3000 pairs of MiniLM
takes about a minute on 2 cores)."""
PUBLIC_MAX_UPLOAD_BYTES = 256 * 1024**2
"""Largest upload on a public server (and largest uncompressed artifact zip)."""
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Policy:
    """What visitors may choose (see the module docstring)."""

    public: bool = False
    """Public mode on: the lists below are enforced and errors are scrubbed."""
    models: tuple[str, ...] = DEFAULT_MODELS
    """Text encoders a visitor may load (public mode)."""
    pipelines: tuple[str, ...] = DEFAULT_PIPELINES
    """Video pipelines a visitor may render with (public mode)."""
    detectors: tuple[str, ...] = DEFAULT_DETECTORS
    """Detector specs a visitor may run, exactly as written (public mode)."""
    max_pairs: int = limits.MAX_PAIRS
    """Prompt pairs in one concept."""
    max_upload_bytes: int = limits.MAX_ZIP_BYTES
    """Largest uploaded file, and largest uncompressed content of an uploaded zip."""

    def __post_init__(self) -> None:
        for name in ("models", "pipelines", "detectors"):
            values = getattr(self, name)
            if self.public and not values:
                raise ValueError(f"public mode needs at least one entry in CLEAR_{name.upper()}")
        limits.check_count(self.max_pairs, "CLEAR_MAX_PAIRS", limits.MAX_PAIRS)
        limits.check_count(self.max_upload_bytes, "CLEAR_MAX_UPLOAD_MB", limits.MAX_ZIP_BYTES)


_LOCK = threading.Lock()
_POLICY: list[Policy] = []


def _list(env: Mapping[str, str], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(key)
    if raw is None:
        return default
    return tuple(dict.fromkeys(x.strip() for x in raw.split(",") if x.strip()))


def from_environment(env: Mapping[str, str] | None = None, server_name: str | None = None) -> Policy:
    """The policy the environment asks for (module docstring); ``server_name`` decides the default."""
    env = os.environ if env is None else env
    flag = env.get("CLEAR_PUBLIC", "").strip().lower()
    if flag and flag not in _TRUE | _FALSE:
        raise ValueError(f"CLEAR_PUBLIC must be 1 or 0, got {env['CLEAR_PUBLIC']!r}")
    listening = (
        server_name if server_name is not None else ("0.0.0.0" if env.get("SPACE_ID") else "127.0.0.1")
    )
    public = flag in _TRUE if flag else listening == "0.0.0.0"
    if not public:
        return Policy(public=False)
    try:
        upload = int(float(env.get("CLEAR_MAX_UPLOAD_MB", PUBLIC_MAX_UPLOAD_BYTES / 1024**2)) * 1024**2)
        pairs = int(env.get("CLEAR_MAX_PAIRS", PUBLIC_MAX_PAIRS))
    except ValueError:
        raise ValueError("CLEAR_MAX_UPLOAD_MB and CLEAR_MAX_PAIRS must be numbers") from None
    return Policy(
        public=True,
        models=_list(env, "CLEAR_MODELS", DEFAULT_MODELS),
        pipelines=_list(env, "CLEAR_PIPELINES", DEFAULT_PIPELINES),
        detectors=_list(env, "CLEAR_DETECTORS", DEFAULT_DETECTORS),
        max_pairs=pairs,
        max_upload_bytes=upload,
    )


def configure(new: Policy) -> Policy:
    """Set the process's policy (at start-up; tests set and reset it)."""
    with _LOCK:
        _POLICY[:] = [new]
    return new


def policy() -> Policy:
    """The process's policy: the one :func:`configure` set, else the environment's."""
    with _LOCK:
        if not _POLICY:
            _POLICY.append(from_environment())
        return _POLICY[0]


def _check(kind: str, name: object, allowed: tuple[str, ...]) -> str:
    """The refusal does not repeat the name: the same words for a folder, a missing path or a typo."""
    value = str(name or "").strip()
    if policy().public and value not in allowed:
        raise ValueError(f"this server offers only these {kind}s: {', '.join(allowed)}")
    return value


def check_model(name: object) -> str:
    """``name`` stripped; in public mode a ValueError unless the operator lists it (never a path lookup)."""
    return _check("model", name, policy().models)


def check_pipeline(name: object) -> str:
    """``name`` stripped; in public mode a ValueError unless the operator lists it."""
    return _check("pipeline", name, policy().pipelines)


def check_detector(spec: object) -> str:
    """``spec`` stripped; in public mode a ValueError unless the operator lists it as written."""
    return _check("detector", spec, policy().detectors)


def check_pairs(n: int, source: str = "the pairs") -> None:
    """Refuse more than :attr:`Policy.max_pairs` pairs (before anything is captured)."""
    cap = policy().max_pairs
    if n > cap:
        raise ValueError(f"{source}: {n:,} pairs; this server takes at most {cap:,} per concept")


_PATH = re.compile(r"(?<![\w.~-])(?:/[^\s/'\"`,;:()\[\]<>]+)+/?")


def scrub(message: str) -> str:
    """``message`` without server paths in public mode (each becomes its last name, which the visitor
    knows: the file they uploaded); unchanged otherwise."""
    if not policy().public:
        return message
    return _PATH.sub(lambda m: Path(m.group().rstrip("/")).name or "<server path>", message)
