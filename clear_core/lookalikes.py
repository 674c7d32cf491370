"""Look-alikes: what sits *next to* a concept and must survive its erasure.

The packs' negatives are the positive sentence with the concept removed, so nothing in a search tells
the SAE mask that "tennis ball" must stay when "golf ball" goes (measured: tennis-ball prompts
at a mean cosine of 0.81 under the default golf-ball eraser, unrelated prompts at 0.97). A *preserve list*
names the look-alikes to keep. Their prompts are written from the concept's own pairs by swapping
the concept's words for the look-alike's ("a muddy golf ball on a putting green" -> "a muddy tennis
ball on a putting green"), so they differ from the concept exactly where the concept does: the same
scenes, subjects and shots. For the artist packs the swap also replaces the concept's style details
("swirling brushstrokes") by the look-alike artist's own ("cubist fragmented forms").

A swap that leaves a concept word behind ("a golfer teeing up a tennis ball") is dropped: that
prompt would still name the concept. The prompts of each look-alike are split, seeded, by *pair*
into a ``protect`` half (what the eraser's mask and the γ calibration see) and a ``held_out`` half
(what the window measurements report), so the reported look-alike preservation is on scenes the
eraser never saw.

Built-in preserve lists (:data:`DEFAULT_LOOKALIKES`) cover the packs' fine-grained neighbours; a user
can name any other look-alike (``--preserve "ping-pong ball"``) or give whole prompts
(``--preserve-file``), which are split the same way.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from clear_core.concepts import ConceptSet, check_prompt
from clear_core.packs import PACKS, find_forbidden

__all__ = [
    "CONCEPT_PHRASES",
    "DEFAULT_LOOKALIKES",
    "PreserveSet",
    "concept_phrases",
    "default_preserve",
    "lookalike_prompts",
    "parse_preserve",
    "preserve_set",
    "resolve_preserve",
]

_ARTISTS = ("van_gogh", "picasso", "rembrandt", "andy_warhol", "caravaggio")
_ARTIST_NAMES = {slug: PACKS[slug].forms[0] for slug in _ARTISTS}

CONCEPT_PHRASES: dict[str, tuple[str, ...]] = {
    "golf_ball": ("golf ball",),
    "french_horn": ("French horn",),
    "tench": ("tench",),
    "parachute": ("parachute",),
    "english_springer": ("English springer spaniel", "English springer"),
    "garbage_truck": ("garbage truck",),
    "cassette_player": ("cassette player",),
    "church": ("church",),
    **{slug: tuple(sorted(PACKS[slug].forms, key=len, reverse=True)) for slug in _ARTISTS},
}
"""How each built-in concept is written inside its positives (longest first): what a swap replaces."""

DEFAULT_LOOKALIKES: dict[str, tuple[str, ...]] = {
    "golf_ball": ("tennis ball",),
    "french_horn": ("trumpet", "tuba"),
    "tench": ("trout", "carp", "perch"),
    "parachute": ("kite", "hot-air balloon", "umbrella"),
    "english_springer": ("golden retriever", "beagle", "border collie"),
    "garbage_truck": ("truck", "bus"),
    "cassette_player": ("radio",),
    "church": ("tower", "house"),
    **{slug: tuple(name for other, name in _ARTIST_NAMES.items() if other != slug) for slug in _ARTISTS},
}
"""The built-in preserve list of each pack: its fine-grained neighbours."""

MAX_PER_LOOKALIKE = 96
"""Prompts written per look-alike (half protect, half held out): enough for stable feature means."""


def default_preserve(concept: str) -> list[str]:
    """The built-in preserve list of a pack slug; empty for a concept without one."""
    return list(DEFAULT_LOOKALIKES.get(concept, ()))


def parse_preserve(text: str) -> list[str]:
    """Look-alike names from a comma-separated list ("tennis ball, ping-pong ball"), blanks dropped,
    duplicates (case-insensitive) refused."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    seen: set[str] = set()
    for name in names:
        check_prompt(name, "preserve list", "look-alike name")
        if name.casefold() in seen:
            raise ValueError(f"preserve list: {name!r} is listed twice")
        seen.add(name.casefold())
    return names


def concept_phrases(concept: ConceptSet) -> tuple[str, ...]:
    """How the concept is written in its positives, longest first: a pack's forms without their
    article ("dimpled golf ball": the concept's own attributes go with it, so no look-alike becomes a
    "dimpled tennis ball") and its core phrases, or the set's name when most positives contain it (a
    custom concept); ValueError when neither is known."""
    if concept.name in CONCEPT_PHRASES:
        forms = [re.sub(r"^(?:an?|the)\s+", "", f, flags=re.IGNORECASE) for f in PACKS[concept.name].forms]
        return tuple(sorted({*forms, *CONCEPT_PHRASES[concept.name]}, key=len, reverse=True))
    name = concept.name.replace("_", " ").strip()
    found = sum(name.casefold() in p.casefold() for p in concept.positives)
    if name and found >= max(2, len(concept) // 2):
        return (name,)
    raise ValueError(
        f"concept {concept.name!r}: cannot tell which words of its positives name it, so look-alike "
        "prompts cannot be written by swapping; give whole look-alike prompts instead (--preserve-file)"
    )


def _forbidden(concept: ConceptSet, phrases: tuple[str, ...]) -> tuple[str, ...]:
    if concept.name in PACKS:
        return PACKS[concept.name].forbidden
    return tuple(sorted({w.lower() for p in phrases for w in re.findall(r"[\w'-]+", p)}))


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _swap(text: str, phrases: tuple[str, ...], lookalike: str) -> str:
    """Every phrase of the concept in ``text`` replaced by ``lookalike``, fixing a/an right before it."""
    pattern = "|".join(re.escape(p) for p in phrases)

    def repl(m: re.Match) -> str:
        art = m.group("art")
        if art is None:
            return lookalike
        new = _article(lookalike)
        return (new.capitalize() if art[0].isupper() else new) + m.group("space") + lookalike

    return re.sub(
        rf"(?:(?<![\w-])(?P<art>[Aa]n?)(?P<space>\s+))?(?:{pattern})(?![\w-])",
        repl,
        text,
        flags=re.IGNORECASE,
    )


def lookalike_prompts(
    concept: ConceptSet, lookalike: str, seed: int = 0, limit: int = MAX_PER_LOOKALIKE
) -> list[tuple[int, str]]:
    """Up to ``limit`` (pair index, prompt) about ``lookalike``, written from the concept's positives by
    swapping the concept's words, in a seeded order; swaps that keep a concept word are dropped."""
    phrases = concept_phrases(concept)
    if lookalike.casefold().strip() in {
        p.casefold() for p in (*phrases, concept.name, concept.name.replace("_", " "))
    }:
        raise ValueError(
            f"preserve list: {lookalike!r} is the concept itself; name what must stay, not what goes"
        )
    keep = {w.lower() for w in re.findall(r"[\w'-]+", lookalike)}
    forbidden = tuple(t for t in _forbidden(concept, phrases) if t not in keep)
    spec = PACKS.get(concept.name)
    own_details = spec.details if spec is not None else ()
    other = next((s for s, n in _ARTIST_NAMES.items() if n == lookalike), None)
    their_details = PACKS[other].details if other else ()
    rng = random.Random(f"{concept.name}/{lookalike}/{seed}")
    order = list(range(len(concept)))
    rng.shuffle(order)
    out: list[tuple[int, str]] = []
    seen: set[str] = set()
    for i in order:
        text = _swap(concept.pairs[i].positive, phrases, lookalike)
        if own_details:  # a style: the look-alike artist's own details, or none of the concept's
            for detail in own_details:
                if detail in text:
                    text = (
                        text.replace(detail, rng.choice(their_details))
                        if their_details
                        else text.replace(f", {detail}", "")
                    )
        if text == concept.pairs[i].positive or find_forbidden(text, forbidden) or text in seen:
            continue
        if any(d in text for d in own_details) or lookalike.casefold() not in text.casefold():
            continue
        seen.add(text)
        out.append((i, text))
        if len(out) == limit:
            break
    return out


@dataclass
class PreserveSet:
    """The look-alikes to keep and their prompts, split into what the eraser sees and what it does not."""

    names: list[str] = field(default_factory=list)
    """Look-alike names (and ``"file"`` for user prompts given whole)."""
    protect: dict[str, list[str]] = field(default_factory=dict)
    """Per look-alike: prompts for the mask (protected negatives) and the γ calibration floor."""
    held_out: dict[str, list[str]] = field(default_factory=dict)
    """Per look-alike: prompts never seen by the eraser, for reporting."""
    split: str = "by pair, seeded: half protect (mask + calibration floor), half held out"
    """How the prompts were split (recorded in eraser.json)."""

    def __bool__(self) -> bool:
        return any(self.protect.values())

    @property
    def protect_prompts(self) -> list[str]:
        return [p for name in self.names for p in self.protect.get(name, [])]

    @property
    def held_out_prompts(self) -> list[str]:
        return [p for name in self.names for p in self.held_out.get(name, [])]

    def to_json(self) -> dict:
        """What ``eraser.json`` records under ``preserve``."""
        return {
            "lookalikes": list(self.names),
            "n_protect": {n: len(self.protect.get(n, [])) for n in self.names},
            "n_held_out": {n: len(self.held_out.get(n, [])) for n in self.names},
            "split": self.split,
        }


def preserve_set(
    concept: ConceptSet,
    names: Sequence[str] = (),
    prompts: Sequence[str] = (),
    seed: int = 0,
    limit: int = MAX_PER_LOOKALIKE,
    held_out_pairs: Sequence[int] | None = None,
) -> PreserveSet:
    """Write and split the prompts of every look-alike in ``names``; ``prompts`` (whole prompts from a
    user's file) are split seeded, half and half, under the name ``"file"``. A name for which no prompt
    could be written raises ValueError naming it.

    ``held_out_pairs``: positions of the concept's held-out pairs (clear_core/splits.py); a look-alike
    prompt then follows the pair it was written from (fit pair: protected; held-out pair: held out), so
    the look-alike scenes reported on are scenes the eraser never saw. None: a seeded half of the pairs.
    """
    out = PreserveSet()
    if held_out_pairs is not None:
        out.split = (
            "by pair, as the pairs: written from a fit pair, protected; from a held-out pair, held out"
        )
    for name in names:
        written = lookalike_prompts(concept, name, seed=seed, limit=limit)
        if len(written) < 2:
            raise ValueError(
                f"preserve list: no prompts about {name!r} could be written from {concept.name!r}'s pairs "
                "(every swap kept a word of the concept); give whole prompts with --preserve-file"
            )
        pair_ids = sorted({i for i, _ in written})
        if held_out_pairs is not None:
            held = set(held_out_pairs)
        else:
            held = set(
                random.Random(f"{concept.name}/{name}/split/{seed}").sample(pair_ids, len(pair_ids) // 2)
            )
        out.names.append(name)
        out.protect[name] = [t for i, t in written if i not in held]
        out.held_out[name] = [t for i, t in written if i in held]
    if prompts:
        texts = [check_prompt(p, "preserve prompts").strip() for p in prompts]
        order = list(range(len(texts)))
        random.Random(f"{concept.name}/file/split/{seed}").shuffle(order)
        out.names.append("file")
        out.protect["file"] = [texts[i] for i in sorted(order[len(order) // 2 :])]
        out.held_out["file"] = [texts[i] for i in sorted(order[: len(order) // 2])]
    return out


def resolve_preserve(
    concept: ConceptSet,
    preserve: Sequence[str] | None,
    prompts: Sequence[str],
    *,
    kind: str = "sae",
    mask: str = "contrastive",
    gate: bool = False,
    seed: int = 0,
    held_out_pairs: Sequence[int] | None = None,
) -> PreserveSet | None:
    """The look-alikes a run keeps (None: nothing), from ``EraserOptions``' preserve fields: the pack's
    built-in list when ``preserve`` is None. Only the contrastive SAE mask protects anything. Cheap (no
    model), so the command line calls it before loading one; a gate with nothing to keep is refused."""
    names = default_preserve(concept.name) if preserve is None else list(preserve)
    protects = kind == "sae" and mask == "contrastive"
    found = (
        preserve_set(concept, names, prompts, seed=seed, held_out_pairs=held_out_pairs)
        if protects and (names or prompts)
        else None
    )
    if gate and not found:
        raise ValueError(
            f"the look-alike gate needs look-alikes to keep, and {concept.name!r} has none here: "
            "give a preserve list (--preserve or --preserve-file)"
        )
    return found
