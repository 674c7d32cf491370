"""Is there a γ that erases the concept and keeps its look-alike? (the γ window)

For one concept and one look-alike, two erasers are compared: the default search and mask without the
preserve list, and with it — the look-alike's protect-half prompts enter the search as extra negatives
(``LayerSearch(protected=...)``: the SAE learns their features, L_con counts them as shared) and the
mask as protected negatives (``build_eraser(protected=...)``). At each γ of a grid, a γ is *in the
window* when

* the concept's **held-out implicit leakage** (odd positions of the pack's implicit prompts, judged by
  the leakage probe on clean positive vs negative outputs) is at most ``leakage_ratio`` (½) of its
  unerased value;
* the look-alike's **held-out** prompts (never seen by the mask, :mod:`clear_core.lookalikes`) keep a
  mean cosine to their originals of at least ``cosine_min`` (0.98);
* they are still **told apart** from the concept at least ``told_apart_min`` (90%) of the time by a
  probe trained on clean outputs: the concept's positives vs the look-alike's protect-half prompts.

The leakage probe (positives vs negatives, as everywhere in the project) has never seen a look-alike:
on MiniLM it calls 94% of clean tennis-ball prompts "golf ball", so halving what it detects means
erasing what the look-alike shares with the concept. Each row therefore also judges the implicit
prompts by a *look-alike-aware* probe (positives vs negatives and the look-alike's protect half) and
says whether the γ is in the window by that judge too (``ok_vs_lookalike``); both are reported, and
the first is the window's bar.

Every number comes from encoding the prompts with and without the eraser; nothing is estimated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from clear_core.build import build_eraser
from clear_core.concepts import load_builtin, load_implicit, unrelated_prompts
from clear_core.encoders import TextEncoder
from clear_core.erasure import Eraser
from clear_core.evaluation import fit_probe, split_implicit
from clear_core.lookalikes import PreserveSet, default_preserve, preserve_set
from clear_core.search import LayerSearch, SearchConfig

__all__ = [
    "WINDOW_GAMMAS",
    "WindowCriteria",
    "WindowResult",
    "WindowRow",
    "concept_windows",
    "from_json",
    "judge",
    "sweep_window",
]

WINDOW_GAMMAS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)


@dataclass(frozen=True)
class WindowCriteria:
    """What a γ must reach to be in the window."""

    leakage_ratio: float = 0.5
    """Held-out implicit leakage at most this fraction of the unerased leakage."""
    cosine_min: float = 0.98
    """Look-alike's held-out prompts: mean cosine to their originals at least this."""
    told_apart_min: float = 0.9
    """Look-alike's held-out prompts still read as the look-alike (not the concept) at least this often."""
    min_unerased: float = 0.25
    """A judge that detects fewer of the implicit prompts than this *before* erasure cannot show a
    halving (on 12 prompts, 0.17 → 0.08 is one prompt): no window by that judge."""

    def __post_init__(self) -> None:
        for name in ("leakage_ratio", "cosine_min", "told_apart_min", "min_unerased"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")


@dataclass
class WindowRow:
    """One γ."""

    gamma: float
    leakage_implicit: float
    """Share of the held-out implicit prompts the leakage probe still detects."""
    preservation_lookalike: float
    """Mean cosine original vs erased, look-alike held-out prompts."""
    lookalike_told_apart: float
    """Share of erased look-alike held-out prompts the concept-vs-look-alike probe reads as the look-alike."""
    preservation_unrelated: float
    """Mean cosine original vs erased, unrelated prompts."""
    leakage_implicit_vs_lookalike: float | None = None
    """The held-out implicit prompts judged by a second probe, positives vs negatives *and* the
    look-alike's protect half ("this concept, not just anything like it"); reported, not a criterion."""
    ok: bool = False
    """All three criteria met (leakage judged by the leakage probe: the window's bar)."""
    ok_vs_lookalike: bool = False
    """All three met with the leakage judged by the look-alike-aware probe instead."""


@dataclass
class WindowResult:
    """The sweep of one (concept, look-alike, mask) and the γ values that meet the criteria."""

    concept: str
    lookalike: str
    protected: list[str]
    """The preserve list the mask used (empty: today's mask)."""
    layer_name: str
    unerased_implicit: float
    n_implicit: int
    n_lookalike: int
    unerased_implicit_vs_lookalike: float | None = None
    lookalike_read_as_concept: float | None = None
    """Share of the look-alike's clean held-out prompts the leakage probe calls the concept: how much
    that probe is a detector of the look-alike too."""
    protect_weight: float | None = None
    rows: list[WindowRow] = field(default_factory=list)
    gate: bool = False
    """Whether the eraser carried the look-alike gate (``Eraser.gate_floor``)."""

    @property
    def window(self) -> list[float]:
        return [r.gamma for r in self.rows if r.ok]

    @property
    def window_vs_lookalike(self) -> list[float]:
        """The window with leakage judged by the look-alike-aware probe (see :class:`WindowRow`)."""
        return [r.gamma for r in self.rows if r.ok_vs_lookalike]

    def best(self) -> WindowRow | None:
        """The in-window row with the lowest implicit leakage (ties: smallest γ), or None."""
        rows = [r for r in self.rows if r.ok]
        return min(rows, key=lambda r: (r.leakage_implicit, r.gamma)) if rows else None

    def to_json(self) -> dict:
        return {**asdict(self), "window": self.window, "window_vs_lookalike": self.window_vs_lookalike}


def sweep_window(
    encoder: TextEncoder,
    eraser: Eraser,
    positives: Sequence[str],
    negatives: Sequence[str],
    implicit_held_out: Sequence[str],
    lookalike_protect: Sequence[str],
    lookalike_held_out: Sequence[str],
    unrelated: Sequence[str],
    lookalike: str,
    protected: Sequence[str] = (),
    gammas: Sequence[float] = WINDOW_GAMMAS,
    criteria: WindowCriteria | None = None,
) -> WindowResult:
    """Measure one eraser against one look-alike at every γ (see the module docstring)."""
    criteria = criteria or WindowCriteria()
    if len(implicit_held_out) < 2 or len(lookalike_held_out) < 2 or len(lookalike_protect) < 2:
        raise ValueError("the window needs at least 2 implicit, 2 protect and 2 held-out look-alike prompts")
    clean = {
        "positive": encoder.encode(list(positives)),
        "negative": encoder.encode(list(negatives)),
        "protect": encoder.encode(list(lookalike_protect)),
    }
    leak_probe = fit_probe(clean["positive"], clean["negative"])
    apart_probe = fit_probe(clean["positive"], clean["protect"])
    strict_probe = fit_probe(clean["positive"], clean["negative"], extra_negatives=clean["protect"])
    measured = list(implicit_held_out) + list(lookalike_held_out) + list(unrelated)
    cut = np.cumsum([len(implicit_held_out), len(lookalike_held_out)])
    original = np.split(encoder.encode(measured), cut)
    base_leak = float(leak_probe.detect(original[0]).mean())
    result = WindowResult(
        eraser.concept,
        lookalike,
        list(protected),
        eraser.layer_name,
        base_leak,
        len(implicit_held_out),
        len(lookalike_held_out),
        float(strict_probe.detect(original[0]).mean()),
        float(leak_probe.detect(original[1]).mean()),
        eraser.meta.get("protect_weight"),
        gate=eraser.gate_floor is not None,
    )
    for gamma in gammas:
        with eraser.applied(encoder, gamma=gamma):
            erased = np.split(encoder.encode(measured), cut)
        row = WindowRow(
            gamma=float(gamma),
            leakage_implicit=float(leak_probe.detect(erased[0]).mean()),
            preservation_lookalike=float(_cosine(original[1], erased[1]).mean()),
            lookalike_told_apart=float(1.0 - apart_probe.detect(erased[1]).mean()),
            preservation_unrelated=float(_cosine(original[2], erased[2]).mean()),
            leakage_implicit_vs_lookalike=float(strict_probe.detect(erased[0]).mean()),
        )
        result.rows.append(row)
    return judge(result, criteria)


def judge(result: WindowResult, criteria: WindowCriteria | None = None) -> WindowResult:
    """Set every row's ``ok`` / ``ok_vs_lookalike`` from its measured numbers (also re-judges a sweep
    read back from JSON under other criteria); returns ``result``."""
    criteria = criteria or WindowCriteria()
    base, strict = result.unerased_implicit, result.unerased_implicit_vs_lookalike
    for row in result.rows:
        kept = (
            row.preservation_lookalike >= criteria.cosine_min
            and row.lookalike_told_apart >= criteria.told_apart_min
        )
        row.ok = (
            kept
            and base >= criteria.min_unerased
            and row.leakage_implicit <= criteria.leakage_ratio * base + 1e-9
        )
        row.ok_vs_lookalike = (
            kept
            and strict is not None
            and strict >= criteria.min_unerased
            and row.leakage_implicit_vs_lookalike <= criteria.leakage_ratio * strict + 1e-9
        )
    return result


def from_json(data: dict) -> WindowResult:
    """A :class:`WindowResult` from :meth:`WindowResult.to_json` (windows are recomputed, not read)."""
    fields = {k: v for k, v in data.items() if k not in ("rows", "window", "window_vs_lookalike")}
    return WindowResult(**fields, rows=[WindowRow(**r) for r in data["rows"]])


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)


def concept_windows(
    encoder: TextEncoder,
    slug: str,
    lookalikes: Sequence[str] | None = None,
    search: SearchConfig | None = None,
    gammas: Sequence[float] = WINDOW_GAMMAS,
    criteria: WindowCriteria | None = None,
    seed: int = 0,
    protect_weights: Sequence[float] = (1.0,),
    layer: int | None = None,
    gate: bool = False,
) -> list[WindowResult]:
    """For a built-in pack: a search without and one with the preserve list, then for each look-alike
    (default: its built-in preserve list) the window without it, then with it at each of ``protect_weights`` (w in
    ``build_eraser``: 1 is the plain max). ``layer``: erase there instead of at the search's choice
    (capture index: block b is layer b + 1). ``gate``: the erasers with the preserve list also carry the
    look-alike gate (``build_eraser(gate=True)``).
    """
    concept = load_builtin(slug)
    names = list(lookalikes) if lookalikes is not None else default_preserve(slug)
    if not names:
        raise ValueError(f"{slug!r} has no built-in look-alikes; name some")
    preserve: PreserveSet = preserve_set(concept, names, seed=seed)
    implicit = split_implicit(load_implicit(slug)[0])[1]
    pos, neg = encoder.capture(concept.positives), encoder.capture(concept.negatives)
    protected = encoder.capture(preserve.protect_prompts)
    plain, kept_search = (
        LayerSearch(pos, neg, search or SearchConfig(), protected=p) for p in (None, protected)
    )
    for runner in (plain, kept_search):
        for _ in runner.run():
            pass
    erasers = [(build_eraser(plain.result, pos, neg, slug, encoder.model_id, layer=layer), [])]
    for w in protect_weights:
        kept = build_eraser(
            kept_search.result,
            pos,
            neg,
            slug,
            encoder.model_id,
            layer=layer,
            protected=protected,
            protect_weight=w,
            gate=gate,
        )
        erasers.append((kept, names))
    unrelated = unrelated_prompts()
    results = []
    for name in names:
        for eraser, protect in erasers:
            results.append(
                sweep_window(
                    encoder,
                    eraser,
                    concept.positives,
                    concept.negatives,
                    implicit,
                    preserve.protect[name],
                    preserve.held_out[name],
                    unrelated,
                    name,
                    protect,
                    gammas,
                    criteria,
                )
            )
    return results
