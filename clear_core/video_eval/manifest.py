"""The input contract of ``evaluate-videos``: ``DIR/manifest.json`` as ``generate`` writes it.

Checked before any video is opened, each problem one line naming the manifest and the entry:

* the JSON follows :data:`MANIFEST_SCHEMA` (types, required keys, γ a number ≥ 0 or null; ``NaN`` and
  ``Infinity`` literals are refused, though Python's ``json`` would read them);
* every video path is relative, has no ``..`` and resolves inside the folder, also through symlinks:
  no file outside the folder is read or hashed;
* no video is listed twice, by path or by (variant, prompt, seed): it would be counted twice.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from clear_core.limits import MAX_CONCEPT_FILE_BYTES, MAX_PROMPT_CHARS, check_file_size

__all__ = ["MANIFEST_SCHEMA", "MAX_VIDEOS", "load_generation_manifest"]

MAX_VIDEOS = 100_000
"""Most videos one manifest may list."""

_VIDEO = {
    "type": "object",
    "required": ["variant", "prompt_index", "path"],
    "properties": {
        "variant": {"type": "string", "minLength": 1, "maxLength": 200},
        "prompt_index": {"type": "integer", "minimum": 0},
        "prompt": {"type": ["string", "null"], "maxLength": MAX_PROMPT_CHARS},
        "seed": {"type": "integer", "minimum": 0},
        "gamma": {"type": ["number", "null"], "minimum": 0},
        "path": {"type": "string", "minLength": 1, "maxLength": 4096},
        "meta": {"type": ["string", "null"], "maxLength": 4096},
    },
}
MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "manifest.json of a 'generate' folder (the part evaluate-videos reads)",
    "type": "object",
    "required": ["videos"],
    "properties": {
        "videos": {"type": "array", "minItems": 1, "maxItems": MAX_VIDEOS, "items": _VIDEO},
        "concept": {"type": "string"},
        "pipeline": {"type": "object"},
        "variants": {"type": "array", "items": {"type": "object"}},
    },
}


def _where(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the manifest"


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _read(manifest_path: Path) -> Any:
    check_file_size(manifest_path, "manifest", MAX_CONCEPT_FILE_BYTES)
    try:
        return json.loads(manifest_path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{manifest_path}: not valid JSON ({err})") from None
    except ValueError as err:
        raise ValueError(f"{manifest_path}: {err}") from None


def _validate(manifest: Any, manifest_path: Path) -> None:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(MANIFEST_SCHEMA).iter_errors(manifest))
    if error is not None:
        raise ValueError(
            f"{manifest_path}: {_where(error.absolute_path)}: {error.message.splitlines()[0][:160]}"
        )


def _inside(folder: Path, raw: str, manifest_path: Path, i: int) -> Path:
    """``folder / raw`` resolved, refused unless it stays inside ``folder``."""
    where = f"{manifest_path}: videos[{i}].path {raw!r}"
    if "\x00" in raw:
        raise ValueError(f"{where}: contains a NUL byte")
    if PurePosixPath(raw).is_absolute() or PureWindowsPath(raw).is_absolute() or PureWindowsPath(raw).drive:
        raise ValueError(f"{where}: must be relative to the folder, not absolute")
    if ".." in PurePosixPath(raw.replace("\\", "/")).parts:
        raise ValueError(f"{where}: must stay inside the folder (no '..')")
    root = folder.resolve()
    path = (folder / raw).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"{where}: leads outside the folder (through a symbolic link)")
    if not path.is_file():
        raise ValueError(f"{where}: video file not found")
    return path


def load_generation_manifest(folder: str | Path) -> tuple[Path, dict, list[dict]]:
    """Read and check ``DIR/manifest.json`` (module docstring); returns (manifest path, manifest,
    videos with ``seed`` filled in (0 when absent) and ``abs_path`` resolved inside the folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: folder not found")
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        if not any(not p.name.endswith(".clear-lock") for p in folder.iterdir()):  # our report's lock
            raise ValueError(
                f"{folder}: empty folder (expected manifest.json and videos written by 'generate')"
            )
        raise ValueError(f"{manifest_path}: missing (expected the manifest written by 'generate')")
    manifest = _read(manifest_path)
    _validate(manifest, manifest_path)
    out, by_path, by_key = [], {}, {}
    for i, v in enumerate(manifest["videos"]):
        path = _inside(folder, v["path"], manifest_path, i)
        seed = int(v.get("seed", 0))
        key = (v["variant"], int(v["prompt_index"]), seed)
        if path in by_path:
            raise ValueError(
                f"{manifest_path}: videos[{i}] lists {v['path']!r} again (as videos[{by_path[path]}])"
            )
        if key in by_key:
            raise ValueError(
                f"{manifest_path}: videos[{i}] repeats variant {key[0]!r}, prompt {key[1]}, seed {key[2]} "
                f"(videos[{by_key[key]}]); each would be counted twice"
            )
        by_path[path], by_key[key] = i, i
        out.append({**v, "prompt_index": key[1], "seed": seed, "abs_path": path})
    return manifest_path, manifest, out
