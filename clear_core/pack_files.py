"""Pack files: the built-in concept packs' vocabularies and paraphrases as JSON under ``assets/packs``.

One file per pack (any name ending in ``.json`` but ``shared.json``; ``<slug>.json`` by convention)
holds one JSON object::

    slug, name, category              text (required)
    forbidden, templates, implicit    required lists
    markers, forms, stand_ins, subjects, actions, scenes, shots, details    optional lists
    about                             optional text, for the reader only

A list of phrases is a JSON list of strings; ``templates`` is a list of ``[positive, negative]``
template pairs and ``implicit`` a list of ``[implicit, neutral]`` prompt pairs. Instead of a list a
field may name a list of ``shared.json`` (``{"shared": "style_subjects"}``), which holds lists several
packs use as ``{"NAME": {"about": ..., "items": [...]}}``. A pack without ``shots`` gets the shared
``shots``. What the fields mean is :class:`clear_core.packs.PackSpec`'s documentation; this module
checks only the file's shape and names the file and the field in every error (the spec's own checks
run when :mod:`clear_core.packs` builds it, and name the file too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from clear_core.paths import asset

__all__ = [
    "LIST_FIELDS",
    "PACKS_DIR",
    "PAIR_FIELDS",
    "SHARED_FILE",
    "PackFile",
    "load_pack_files",
    "load_shared",
    "read_pack_file",
]

PACKS_DIR = asset("packs")
"""The built-in pack files."""
SHARED_FILE = "shared.json"
"""Lists several packs use, in the packs folder."""
TEXT_FIELDS = ("slug", "name", "category")
LIST_FIELDS = (
    "forbidden",
    "markers",
    "forms",
    "stand_ins",
    "subjects",
    "actions",
    "scenes",
    "shots",
    "details",
)
PAIR_FIELDS = ("templates", "implicit")
REQUIRED = (*TEXT_FIELDS, "forbidden", "templates", "implicit")
KNOWN = (*TEXT_FIELDS, *LIST_FIELDS, *PAIR_FIELDS, "about")


@dataclass(frozen=True)
class PackFile:
    """One pack file, read and checked for shape: the PackSpec fields and the implicit pairs."""

    path: Path
    spec: dict
    """Keyword arguments of ``PackSpec``: texts, and tuples of phrases or of (positive, negative) pairs."""
    implicit: tuple[tuple[str, str], ...]
    """Hand-written (implicit, neutral) prompt pairs."""


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not valid UTF-8") from None
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})"
        ) from None


def _phrases(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list of strings, got {type(value).__name__}")
    for i, item in enumerate(value, start=1):
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{where}: item {i} must be a non-empty string, got {item!r}")
    return tuple(value)


def _pairs(value: object, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list of [first, second] pairs, got {type(value).__name__}")
    for i, item in enumerate(value, start=1):
        if not (
            isinstance(item, list) and len(item) == 2 and all(isinstance(t, str) and t.strip() for t in item)
        ):
            raise ValueError(f"{where}: item {i} must be a pair of non-empty strings, got {item!r}")
    return tuple((a, b) for a, b in value)


def load_shared(folder: Path = PACKS_DIR) -> dict[str, list]:
    """The lists of ``shared.json`` by name, as written (strings, or [first, second] pairs)."""
    path = Path(folder) / SHARED_FILE
    if not path.is_file():
        raise ValueError(f"{path}: missing; it holds the lists packs share (at least 'shots')")
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object of named lists, got {type(data).__name__}")
    lists = {}
    for name, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("items"), list) or not entry["items"]:
            raise ValueError(f"{path}: '{name}' must be an object with a non-empty list 'items'")
        if set(entry) - {"about", "items"}:
            raise ValueError(f"{path}: '{name}' has unknown keys {sorted(set(entry) - {'about', 'items'})}")
        lists[name] = entry["items"]
    if "shots" not in lists:
        raise ValueError(f"{path}: needs the list 'shots' (the default camera phrases)")
    return lists


def _field(data: dict, key: str, shared: dict[str, list], where: str):
    value = data[key]
    if isinstance(value, dict):
        if set(value) != {"shared"} or not isinstance(value["shared"], str):
            raise ValueError(f"{where}: field '{key}' must be a list or {{\"shared\": NAME}}, got {value!r}")
        if value["shared"] not in shared:
            raise ValueError(
                f"{where}: field '{key}' names shared list {value['shared']!r}; "
                f"{SHARED_FILE} has {', '.join(shared)}"
            )
        value = shared[value["shared"]]
        where = f"{where}: field '{key}' (shared list {data[key]['shared']!r})"
    else:
        where = f"{where}: field '{key}'"
    return _pairs(value, where) if key in PAIR_FIELDS else _phrases(value, where)


def read_pack_file(path: Path, shared: dict[str, list]) -> PackFile:
    """One pack file, checked for shape; ValueError names the file and the field."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of pack fields, got {type(data).__name__}")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ValueError(f"{path}: missing field(s) {', '.join(repr(k) for k in missing)}")
    unknown = sorted(set(data) - set(KNOWN))
    if unknown:
        raise ValueError(f"{path}: unknown field(s) {unknown}; known: {', '.join(KNOWN)}")
    for key in (*TEXT_FIELDS, "about"):
        if key in data and (not isinstance(data[key], str) or not data[key].strip()):
            raise ValueError(f"{path}: field '{key}' must be a non-empty string, got {data[key]!r}")
    spec = {k: data[k] for k in TEXT_FIELDS}
    for key in (*LIST_FIELDS, "templates"):
        if key in data:
            spec[key] = _field(data, key, shared, str(path))
    spec.setdefault("shots", tuple(shared["shots"]))
    implicit = _field(data, "implicit", shared, str(path))
    if not implicit:
        raise ValueError(f"{path}: field 'implicit' is empty; write at least one [implicit, neutral] pair")
    return PackFile(path=path, spec=spec, implicit=implicit)


def load_pack_files(folder: Path = PACKS_DIR) -> list[PackFile]:
    """Every pack file of ``folder`` (sorted by file name), checked for shape and unique slugs.

    The shared lists come from the folder's ``shared.json``, or the built-in one when it has none.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such pack folder")
    shared = load_shared(folder if (folder / SHARED_FILE).is_file() else PACKS_DIR)
    found: dict[str, PackFile] = {}
    for path in sorted(folder.glob("*.json")):
        if path.name == SHARED_FILE:
            continue
        pack = read_pack_file(path, shared)
        slug = pack.spec["slug"]
        if slug in found:
            raise ValueError(f"{path}: field 'slug' {slug!r} is already the slug of {found[slug].path.name}")
        found[slug] = pack
    if not found:
        raise ValueError(f"{folder}: no pack files (*.json besides {SHARED_FILE})")
    return list(found.values())
