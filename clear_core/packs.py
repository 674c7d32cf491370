"""Built-in concept packs: a seeded template generator and the files it writes.

A concept is a list of prompt pairs that share everything but the concept (DESIGN.md, "Data").
Each built-in pack is a :class:`PackSpec`: vocabularies (subjects, actions, scenes, camera phrases)
and (positive, negative) template pairs. :func:`generate_pairs` draws from them with
``random.Random`` seeded by the slug and the seed, so regenerating gives byte-identical files.
Besides the pairs, every pack ships hand-written *implicit* prompts that evoke the concept without
naming it (evaluation only, never training) and their line-by-line *neutral* counterparts.

The packs are data: one JSON file each under ``assets/packs`` (read and checked by
:mod:`clear_core.pack_files`; layout in ``docs/packs.md``). They are the one source of truth;
``assets/concepts`` is what :func:`write_packs` builds from them, and a test fails when the two differ.

Files written by :func:`write_packs` (``assets/concepts`` by default)::

    <slug>.jsonl                 {"positive": ..., "negative": ...} a line
    <slug>.implicit.txt          paraphrases that never use the concept's words
    <slug>.implicit_neutral.txt  the same scenes without the concept, matched line by line
    index.json                   [{"slug", "name", "category", "n_pairs", "n_implicit"}, ...]

Regenerate with ``python -m clear_core.packs [--out DIR] [--n 240] [--seed 0] [--only SLUG ...]``;
``--packs DIR`` builds pack files kept elsewhere (``--packs my_packs --out my_concepts``).

To add a concept:

1. copy the closest file of ``assets/packs`` to ``assets/packs/<slug>.json`` and edit it (the fields
   of :class:`PackSpec`; a painter or a person can reuse the style or identity lists of
   ``shared.json``); list in ``forbidden`` every word of the concept's name and any word its
   positives use for it;
2. write at least 24 hand-written [implicit, neutral] pairs in its ``implicit`` field;
3. run ``python -m clear_core.packs --only <slug>`` (and ``pytest tests/test_packs.py
   tests/test_pack_files.py``); commit the new files. No Python changes.

The generator refuses a vocabulary that cannot give ``n`` unique pairs, a negative that contains a
concept word and a positive that lacks every marker: each is a bug in the pack, not in the data.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from clear_core.pack_files import PACKS_DIR, load_pack_files, load_shared
from clear_core.paths import asset

__all__ = [
    "CATEGORIES",
    "DEFAULT_OUT",
    "IMPLICIT",
    "MIN_CHARS",
    "MAX_CHARS",
    "PACKS",
    "PackSpec",
    "Packs",
    "SHOTS",
    "find_forbidden",
    "generate_pairs",
    "implicit_pairs",
    "load_packs",
    "main",
    "write_packs",
]

DEFAULT_OUT = asset("concepts")
CATEGORIES = ("object", "style", "identity", "nudity")
MIN_CHARS = 20
"""Shortest prompt the generator keeps."""
MAX_CHARS = 300
"""Longest prompt the generator keeps (well inside every encoder's context)."""

SHOTS: tuple[str, ...] = tuple(load_shared()["shots"])
"""Default camera and look phrases of a pack (``shots`` in ``assets/packs/shared.json``)."""

_SLUG = re.compile(r"^[a-z0-9_]+$")
_FIELDS = {
    "c": "forms",
    "g": "stand_ins",
    "subject": "subjects",
    "action": "actions",
    "scene": "scenes",
    "shot": "shots",
    "detail": "details",
}
"""Template placeholder -> the PackSpec vocabulary that fills it."""


def find_forbidden(text: str, terms: tuple[str, ...] | list[str]) -> list[str]:
    """The terms that start a word of ``text`` (case-insensitive).

    Matching at the start of a word catches inflections ("golf" in "golfer", "parachute" in
    "parachutist") without false alarms inside other words ("horn" in "thorn").
    """
    return [t for t in terms if re.search(rf"(?<![a-z0-9]){re.escape(t.lower())}", text.lower())]


@dataclass(frozen=True)
class PackSpec:
    """How to write prompt pairs for one concept. Checks itself on construction."""

    slug: str
    """File stem and key: lowercase letters, digits and underscores."""
    name: str
    """Display name ("French horn", "Van Gogh style")."""
    category: str
    """One of "object", "style", "identity", "nudity"."""
    templates: tuple[tuple[str, str], ...]
    """(positive, negative) format strings; placeholders {c} {g} {subject} {action} {scene} {shot} {detail}."""
    forbidden: tuple[str, ...]
    """Lowercase concept words: never in a negative nor in an implicit or neutral prompt."""
    markers: tuple[str, ...] = ()
    """Every positive contains one of these (case-insensitive); empty means the name itself."""
    forms: tuple[str, ...] = ()
    """How the concept is written in the positive ({c}): "a parachute", "Barack Obama"."""
    stand_ins: tuple[str, ...] = ()
    """Matched stand-in for each form in the negative ({g}): "a man" for "Barack Obama"."""
    subjects: tuple[str, ...] = ()
    """Who or what the prompt is about ({subject})."""
    actions: tuple[str, ...] = ()
    """What the subject is doing, as an -ing phrase ({action})."""
    scenes: tuple[str, ...] = ()
    """Where it happens ({scene}); each pack's templates know whether a scene carries its preposition."""
    shots: tuple[str, ...] = SHOTS
    """Camera and look phrases ({shot}), shared by both prompts of a pair."""
    details: tuple[str, ...] = ()
    """Descriptors that belong to the concept and go in the positive only ({detail})."""

    def __post_init__(self) -> None:
        where = f"pack {self.slug!r}"
        if not _SLUG.match(self.slug):
            raise ValueError(f"{where}: slug must be lowercase letters, digits and underscores")
        if self.category not in CATEGORIES:
            raise ValueError(f"{where}: category must be one of {CATEGORIES}, got {self.category!r}")
        if not self.templates:
            raise ValueError(f"{where}: needs at least one (positive, negative) template")
        if not self.forbidden or any(t != t.lower() or not t.strip() for t in self.forbidden):
            raise ValueError(f"{where}: forbidden must list the concept's words, in lowercase")
        for pos, neg in self.templates:
            if pos == neg:
                raise ValueError(f"{where}: template {pos!r} is the same for positive and negative")
            for field in _placeholders(pos) | _placeholders(neg):
                if field not in _FIELDS:
                    raise ValueError(
                        f"{where}: template {pos!r} / {neg!r} uses {{{field}}}; known: {', '.join(_FIELDS)}"
                    )
                if not getattr(self, _FIELDS[field]):
                    raise ValueError(f"{where}: a template uses {{{field}}} but {_FIELDS[field]} is empty")
        if self.stand_ins and len(self.stand_ins) != len(self.forms):
            raise ValueError(
                f"{where}: {len(self.stand_ins)} stand_ins for {len(self.forms)} forms; they are matched by position"
            )
        for attr in set(_FIELDS.values()):
            values = getattr(self, attr)
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes and attr != "stand_ins":
                raise ValueError(f"{where}: duplicate {attr}: {dupes}")

    @property
    def concept_markers(self) -> tuple[str, ...]:
        """What every positive must contain: ``markers``, or the name when none are given."""
        return self.markers or (self.name,)

    def max_pairs(self) -> int:
        """Upper bound on the distinct pairs the vocabulary can give (one per combination)."""
        return sum(math.prod(len(getattr(self, a)) for a in _slot_attrs(t)) for t in self.templates)


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def _slot_attrs(template: tuple[str, str]) -> list[str]:
    """Vocabularies a template draws from; {c} and {g} share one draw (forms and stand-ins are paired)."""
    fields = _placeholders(template[0]) | _placeholders(template[1])
    attrs = {_FIELDS[f] for f in fields}
    if "stand_ins" in attrs:
        attrs.discard("stand_ins")
        attrs.add("forms")
    return sorted(attrs)


def _clean(text: str) -> str:
    return " ".join(text.split()).replace(" ,", ",")


def generate_pairs(spec: PackSpec, n: int = 240, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` unique (positive, negative) pairs for ``spec``, the same ones for the same seed.

    Raises ValueError when the vocabulary cannot give ``n`` unique pairs, or when a template
    produces a negative with a concept word or a positive without one (bugs in the pack).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    bound = spec.max_pairs()
    if bound < n:
        raise ValueError(
            f"pack {spec.slug!r}: the vocabulary can produce at most {bound} unique pairs but n={n} "
            "were requested; add templates, subjects, scenes or shots"
        )
    rng = random.Random(f"{spec.slug}/{seed}")
    pairs: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    max_draws = 20 * n + 1000
    for _ in range(max_draws):
        if len(pairs) == n:
            break
        pos_t, neg_t = rng.choice(spec.templates)
        drawn = {attr: rng.randrange(len(getattr(spec, attr))) for attr in _slot_attrs((pos_t, neg_t))}
        fill = {}
        for field, attr in _FIELDS.items():
            source = "forms" if attr == "stand_ins" else attr  # a stand-in follows its form
            if source in drawn and getattr(spec, attr):
                fill[field] = getattr(spec, attr)[drawn[source]]
        pos, neg = _clean(pos_t.format(**fill)), _clean(neg_t.format(**fill))
        _check_pair(spec, pos, neg, pos_t)
        if not (MIN_CHARS <= len(pos) <= MAX_CHARS and MIN_CHARS <= len(neg) <= MAX_CHARS):
            continue
        if (pos, neg) not in seen:
            seen.add((pos, neg))
            pairs.append((pos, neg))
    if len(pairs) < n:
        raise ValueError(
            f"pack {spec.slug!r}: only {len(pairs)} unique pairs of the {n} requested after {max_draws} draws; "
            "add templates, subjects, scenes or shots"
        )
    return pairs


def _check_pair(spec: PackSpec, pos: str, neg: str, template: str) -> None:
    if pos == neg:
        raise ValueError(
            f"pack {spec.slug!r}: template {template!r} gave the same positive and negative: {pos!r}"
        )
    leaked = find_forbidden(neg, spec.forbidden)
    if leaked:
        raise ValueError(f"pack {spec.slug!r}: negative {neg!r} contains concept word(s) {leaked}")
    if not any(m.lower() in pos.lower() for m in spec.concept_markers):
        raise ValueError(f"pack {spec.slug!r}: positive {pos!r} contains none of {spec.concept_markers}")


def _checked_implicit(spec: PackSpec, pairs, where: str) -> tuple[tuple[str, str], ...]:
    for implicit, neutral in pairs:
        for text in (implicit, neutral):
            leaked = find_forbidden(text, spec.forbidden)
            if leaked:
                raise ValueError(f"{where}: field 'implicit': prompt {text!r} names the concept ({leaked})")
            if text != _clean(text) or "\n" in text:
                raise ValueError(f"{where}: field 'implicit': prompt {text!r} has stray whitespace")
    return tuple(pairs)


class Packs(NamedTuple):
    """The packs of one folder, each by slug, ordered by category (:data:`CATEGORIES`) then slug."""

    specs: dict[str, PackSpec]
    implicit: dict[str, tuple[tuple[str, str], ...]]
    """Hand-written (implicit, neutral) prompt pairs, checked for concept words and stray whitespace."""


def load_packs(folder: Path = PACKS_DIR) -> Packs:
    """The pack files of ``folder``; a bad file raises a one-line ValueError that names it."""
    specs: dict[str, PackSpec] = {}
    implicit: dict[str, tuple[tuple[str, str], ...]] = {}
    for f in load_pack_files(folder):
        try:
            spec = PackSpec(**f.spec)
        except ValueError as err:
            raise ValueError(f"{f.path}: {err}") from None
        specs[spec.slug] = spec
        implicit[spec.slug] = _checked_implicit(spec, f.implicit, str(f.path))
    order = sorted(specs, key=lambda slug: (CATEGORIES.index(specs[slug].category), slug))
    return Packs({s: specs[s] for s in order}, {s: implicit[s] for s in order})


def implicit_pairs(slug: str) -> tuple[tuple[str, str], ...]:
    """The hand-written (implicit, neutral) prompts of a built-in pack (checked when its file was read)."""
    if slug not in PACKS:
        raise ValueError(f"unknown pack {slug!r}; known: {', '.join(PACKS)}")
    return IMPLICIT[slug]


PACKS, IMPLICIT = load_packs()
"""Every built-in concept (:data:`PACKS`, in index order) and its (implicit, neutral) pairs."""


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="\n")
    return path


def write_packs(
    out_dir: Path,
    n: int = 240,
    seed: int = 0,
    slugs: list[str] | None = None,
    packs_dir: Path | None = None,
) -> list[Path]:
    """Write the pairs, implicit and neutral prompts of the packs, and update ``index.json``.

    ``packs_dir``: read the pack files there instead of the built-in ones (a folder without its own
    ``shared.json`` uses the built-in one). With ``slugs`` or ``packs_dir``, only the chosen packs are
    rewritten and their entries in an existing index are replaced; the other entries are kept.
    Returns the paths written.
    """
    out_dir = Path(out_dir)
    specs, implicit_of = (PACKS, IMPLICIT) if packs_dir is None else load_packs(packs_dir)
    chosen = list(specs) if slugs is None else list(dict.fromkeys(slugs))
    unknown = [s for s in chosen if s not in specs]
    if unknown:
        raise ValueError(f"unknown pack(s) {unknown}; known: {', '.join(specs)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    entries: dict[str, dict] = {}
    index_path = out_dir / "index.json"
    if (slugs is not None or packs_dir is not None) and index_path.is_file():
        old = json.loads(index_path.read_text(encoding="utf-8"))
        if not isinstance(old, list) or not all(isinstance(e, dict) and "slug" in e for e in old):
            raise ValueError(f"{index_path}: expected a list of {{'slug': ...}} objects")
        entries = {e["slug"]: e for e in old}
    for slug in chosen:
        spec = specs[slug]
        pairs = generate_pairs(spec, n=n, seed=seed)
        implicit = implicit_of[slug]
        rows = [json.dumps({"positive": p, "negative": q}, ensure_ascii=False) for p, q in pairs]
        written.append(_write(out_dir / f"{slug}.jsonl", rows))
        written.append(_write(out_dir / f"{slug}.implicit.txt", [i for i, _ in implicit]))
        written.append(_write(out_dir / f"{slug}.implicit_neutral.txt", [z for _, z in implicit]))
        entries[slug] = {
            "slug": slug,
            "name": spec.name,
            "category": spec.category,
            "n_pairs": len(pairs),
            "n_implicit": len(implicit),
        }
    ranked = [*PACKS, *(s for s in specs if s not in PACKS)]
    order = [s for s in ranked if s in entries] + [s for s in entries if s not in ranked]
    index = json.dumps([entries[s] for s in order], indent=2, ensure_ascii=False)
    written.append(_write(index_path, [index]))
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: regenerate the built-in packs."""
    parser = argparse.ArgumentParser(
        prog="python -m clear_core.packs", description="Regenerate the built-in concept packs."
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("--n", type=int, default=240, help="pairs per concept (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default: %(default)s)")
    parser.add_argument("--only", nargs="+", metavar="SLUG", help=f"only these packs: {', '.join(PACKS)}")
    parser.add_argument(
        "--packs",
        type=Path,
        metavar="DIR",
        help="read the pack files from DIR instead of the built-in assets/packs; the index keeps its other entries",
    )
    args = parser.parse_args(argv)
    try:
        paths = write_packs(args.out, n=args.n, seed=args.seed, slugs=args.only, packs_dir=args.packs)
    except ValueError as e:
        parser.error(str(e))
    n_packs = sum(p.suffix == ".jsonl" for p in paths)
    print(f"wrote {len(paths)} files for {n_packs} pack(s) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
