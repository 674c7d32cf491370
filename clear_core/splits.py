"""Fit / held-out splits: every prompt set that decides something is split by a fixed rule, and every
number reported comes from the part that decided nothing.

* **Pairs** (:func:`split_pairs`): the ⌈share·n⌉ pairs whose positive prompt has the smallest sha256
  digest are held out (share 0.25 by default); the rest fit the search, the masks, the gates and the
  γ calibration. The rule reads only each prompt's text, so it does not depend on file order, on the
  seed or on what else is in the file, and anyone can recompute it; ``eraser.json`` records the rule,
  the counts and a digest of the held-out prompts.
* **Look-alike prompts** are written from the concept's pairs (clear_core/lookalikes.py) and follow
  their pair: written from a fit pair, they are protected (mask, gate, calibration floor); from a
  held-out pair, they are reported only.
* **Implicit and unrelated prompts** (:func:`alternate`): even positions calibrate, odd positions are
  held out. The packs list paraphrases of one family next to each other, so alternating puts every
  family on both sides.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from clear_core.concepts import ConceptSet

__all__ = [
    "ALTERNATE_RULE",
    "HOLDOUT_SHARE",
    "PAIR_RULE",
    "PairSplit",
    "alternate",
    "prompts_digest",
    "reference_packs",
    "reference_prompts",
    "split_pairs",
    "splits_record",
]

HOLDOUT_SHARE = 0.25
"""Share of a concept's pairs held out from the search, masks, gates and calibration."""
MIN_PAIRS_TO_SPLIT = 4
"""Below this many pairs nothing is held out (the search needs every pair); the split says so."""
PAIR_RULE = "held out: the ceil(share * n) pairs whose positive prompt has the smallest sha256 (UTF-8)"
ALTERNATE_RULE = "even positions (0, 2, ...) calibrate, odd positions (1, 3, ...) are held out"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def prompts_digest(prompts: Sequence[str]) -> str:
    """A short digest of a list of prompts (order-free): what a record names a set by."""
    h = hashlib.sha256()
    for text in sorted(prompts):
        h.update(text.encode("utf-8") + b"\n")
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class PairSplit:
    """A concept's pairs split into fit and held-out parts (see the module docstring)."""

    fit: ConceptSet
    """Pairs the search, the masks, the gates and the calibration see."""
    held_out: ConceptSet
    """Pairs reported on only (empty when the concept is too small to split)."""
    held_out_indices: tuple[int, ...]
    """Positions of the held-out pairs in the original set, ascending."""
    share: float
    """The share asked for."""

    def to_json(self) -> dict:
        """What ``eraser.json`` records under ``splits.pairs``."""
        return {
            "rule": PAIR_RULE,
            "share": self.share,
            "n_fit": len(self.fit),
            "n_held_out": len(self.held_out),
            "held_out_digest": prompts_digest(self.held_out.positives),
        }


def split_pairs(concept: ConceptSet, share: float = HOLDOUT_SHARE) -> PairSplit:
    """Split ``concept`` by :data:`PAIR_RULE`; ``share`` 0 (or fewer than 4 pairs) holds out nothing."""
    if not 0 <= share < 1:
        raise ValueError(f"the held-out share must be in [0, 1), got {share}")
    n = len(concept)
    k = math.ceil(share * n) if n >= MIN_PAIRS_TO_SPLIT else 0
    ranked = sorted(range(n), key=lambda i: (_digest(concept.pairs[i].positive), i))
    held = tuple(sorted(ranked[:k]))
    held_set = set(held)
    fit = ConceptSet(concept.name, [p for i, p in enumerate(concept.pairs) if i not in held_set])
    held_out = ConceptSet(concept.name, [concept.pairs[i] for i in held]) if held else _empty(concept)
    return PairSplit(fit, held_out, held, share)


def _empty(concept: ConceptSet) -> ConceptSet:
    return ConceptSet(concept.name, [])


def alternate(prompts: Sequence[str]) -> tuple[list[str], list[str]]:
    """(calibration, held out): even and odd positions (:data:`ALTERNATE_RULE`)."""
    prompts = list(prompts)
    return prompts[0::2], prompts[1::2]


REFERENCE_PER_PACK = 8
"""Fit positives per other built-in pack in :func:`reference_prompts`."""


def reference_packs(concept: str, per_pack: int = REFERENCE_PER_PACK) -> dict[str, list[str]]:
    """Prompts about *other* concepts, by pack: the first ``per_pack`` fit positives of every built-in
    pack but the one named ``concept`` (spaces, hyphens and case ignored). The probe gate learns from
    them that a scene with another concept in it is not this one; the held-out pairs of those packs
    stay unseen. A concept that is no built-in pack may still be one under another name ("nude"):
    the probe gate drops the packs its prompts cannot be told from (``ClearRun._reference``)."""
    from clear_core.concepts import builtin_packs, load_builtin

    key = "_".join(concept.lower().replace("-", " ").split())
    return {
        slug: split_pairs(load_builtin(slug)).fit.positives[:per_pack]
        for slug in builtin_packs()
        if slug != key
    }


def reference_prompts(concept: str, per_pack: int = REFERENCE_PER_PACK) -> list[str]:
    """:func:`reference_packs`' prompts in one list, pack after pack."""
    return [p for prompts in reference_packs(concept, per_pack).values() for p in prompts]


def splits_record(
    pairs: PairSplit, implicit: Sequence[str], unrelated: Sequence[str], lookalikes: dict | None
) -> dict:
    """``eraser.json``'s ``splits``: the rule and the counts of every set that decided something."""
    cal_i, held_i = alternate(implicit)
    cal_u, held_u = alternate(unrelated)
    record = {
        "pairs": pairs.to_json(),
        "implicit": {"rule": ALTERNATE_RULE, "n_calibration": len(cal_i), "n_held_out": len(held_i)},
        "unrelated": {
            "rule": ALTERNATE_RULE,
            "n_calibration": len(cal_u),
            "n_held_out": len(held_u),
            "held_out_digest": prompts_digest(held_u),
        },
    }
    if lookalikes:
        record["lookalikes"] = lookalikes
    return record
