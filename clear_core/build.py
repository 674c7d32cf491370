"""Building erasers from a search: CLEAR's SAE eraser (masks, gates, null-space edit), the steering
vector and LEACE, each at one block of the captured pairs (see clear_core/erasure.py for the artifact).

Masks. ``paper`` is m_spec = 1 − f̄_neg / max f̄_neg, taken literally; it is close to 1 for almost
every feature, so the edit removes nearly the whole reconstruction. ``contrastive`` (the default) is
m_spec ∝ ReLU(f̄_pos − f̄_neg) normalised to max 1, with f̄ the mean over prompts of each prompt's *max*
over its real tokens: the concept lives in a few tokens, and max pooling keeps prompts of different
lengths comparable.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from clear_core.config import MASKS
from clear_core.encoders import Activations
from clear_core.erasure import Eraser
from clear_core.sae import SAE
from clear_core.search import SearchResult, paper_masks
from clear_core.validation import ClearWarning, check_number

__all__ = ["build_eraser", "feature_means", "leace_eraser", "steering_eraser"]


@torch.no_grad()
def feature_means(
    sae: SAE, acts: Activations, layer: int, scale: float, pooling: str = "max"
) -> torch.Tensor:
    """(d_sae,) mean over prompts of each prompt's pooled SAE activation ("max" or "mean" over tokens)."""
    if pooling not in ("max", "mean"):
        raise ValueError(f"unknown pooling {pooling!r}; expected 'max' or 'mean'")
    f = sae.encode(torch.from_numpy(acts.layer(layer)) / scale).numpy()
    starts = acts.offsets[:-1]
    if pooling == "max":
        pooled = np.maximum.reduceat(f, starts, axis=0)
    else:
        pooled = np.add.reduceat(f, starts, axis=0) / acts.lengths[:, None]
    return torch.from_numpy(pooled.mean(0))


@torch.no_grad()
def build_eraser(
    result: SearchResult,
    pos: Activations,
    neg: Activations,
    concept: str,
    model_id: str,
    mask: str = "contrastive",
    gamma: float = 1.0,
    layer: int | None = None,
    protected: Activations | None = None,
    protect_weight: float = 1.0,
    gate: bool = False,
    context_gate: bool = False,
    null_space: float = 0.0,
    gate_negatives: Activations | None = None,
    gate_ramp: float = 1.0,
    gate_scope: str = "token",
    prompt_negatives: Activations | None = None,
    probe_sets: tuple | None = None,
    probe_layer: int | None = None,
) -> Eraser:
    """An SAE eraser at the searched block (or ``layer``), masks computed on the pairs given (the fit
    part of a concept's split, clear_core/splits.py).

    ``protected``: prompts to keep (look-alikes, clear_core/lookalikes.py). Features they use count as
    shared, not specific: m_spec ∝ ReLU(f̄_pos − max(f̄_neg, w·f̄_protected)) (contrastive mask only,
    w = ``protect_weight``); None is the mask without them. ``gate``: also gate every token by how far
    its concept-specific features exceed the highest level the protected prompts reach
    (:attr:`Eraser.gate_floor`), so look-alike tokens are left alone; needs ``protected``.
    ``context_gate``: the same gate with its floor raised to the highest level the *negatives* reach,
    so a token is erased only as far as it goes beyond what concept-free prompts use (the scene words
    that co-occur with the concept stay). The negatives (``gate_negatives``, default ``neg``) are
    halved: the floor comes from the even prompts, and the gate's margin is the highest score the odd
    ones still reach over it, so unseen concept-free tokens, which pass a floor fitted to other prompts
    by a little, stay below the margin. ``gate_ramp``: how far beyond the margin a token must go to be
    erased in full, as a share of the concept tokens' median excess (1: in proportion to the excess;
    small: any token beyond the margin in full). ``gate_scope``: "prompt" gates every token of a prompt
    by its highest-scoring token (:attr:`Eraser.gate_scope`). ``null_space``: project the subtracted
    vector off the smallest subspace holding this share of the negatives' token energy at the block
    (:attr:`Eraser.null_basis`); 0 switches it off. ``prompt_negatives``: concept-free prompts (the
    calibration half of the unrelated prompts) that set, with the margin's negatives, a prompt gate
    (:attr:`Eraser.prompt_margin`): a prompt is edited only when one of its tokens scores beyond every
    token of them; needs a fitted gate. ``probe_sets``: (concept prompts, concept-free prompts[, kept
    prompts[, null prompts]]) beside ``pos`` and ``neg`` that a probe gate (:attr:`Eraser.probe`) is fitted on (see
    :func:`probe_gate`): a logistic probe on the prompts' mean-pooled block states, whose prompts above
    0 are erased in full (strength 1 until the γ calibration sets one); needs a fitted gate.
    ``probe_layer``: the layer the probe reads (:attr:`Eraser.probe_layer`; None: the eraser's).
    """
    if mask not in MASKS:
        raise ValueError(f"unknown mask {mask!r}; expected one of {MASKS}")
    if protected is not None and mask != "contrastive":
        raise ValueError(f"protected prompts need the contrastive mask, not {mask!r}")
    if gate and protected is None:
        raise ValueError("the look-alike gate needs look-alike prompts to keep (a preserve list)")
    layer = result.layer if layer is None else layer
    if layer not in result.candidates:
        raise ValueError(f"layer {layer} was not a search candidate ({result.candidates})")
    scale = result.scales[result.candidates.index(layer)]
    sae = result.sae
    if mask == "paper":
        f_neg = sae.encode(torch.from_numpy(neg.layer(layer)) / scale)
        m_shared, m_spec = paper_masks(f_neg, result.config.eps)
    else:
        f_neg = feature_means(sae, neg, layer, scale)
        if protected is not None:
            protect_weight = check_number(protect_weight, "protect_weight", minimum=0.0)
            f_neg = torch.maximum(f_neg, protect_weight * feature_means(sae, protected, layer, scale))
        diff = torch.relu(feature_means(sae, pos, layer, scale) - f_neg)
        m_spec = diff / (diff.max() + result.config.eps)
        m_shared = 1 - m_spec
    gate_floor = gate_tau = None
    gate_margin = 0.0
    sources = [protected] if gate else []
    margin_from = None
    if context_gate:
        negatives = gate_negatives if gate_negatives is not None else neg
        if negatives.n_prompts < 2:
            raise ValueError("the context gate needs at least 2 negative prompts")
        order = np.arange(negatives.n_prompts)
        sources.append(negatives.select(order[0::2]))
        margin_from = negatives.select(order[1::2])
    skipped = fitted = None
    if sources:
        try:
            fitted = _gate(sae, pos, sources, layer, scale, m_spec, margin_from)
        except ValueError:
            if not context_gate:
                raise
            # no concept token beyond what concept-free prompts reach: the context gate off, said so
            skipped = (
                "context gate off: no token of the concept's prompts goes beyond what its negatives use "
                "(too few or too similar pairs?)"
            )
            warnings.warn(f"concept {concept!r}: {skipped}", ClearWarning, stacklevel=2)
            sources, margin_from, context_gate = sources[:-1], None, False
            fitted = _gate(sae, pos, sources, layer, scale, m_spec) if sources else None
    prompt_margin = prompt_tau = None
    prompt_skipped = None
    if fitted is not None:
        gate_floor, gate_tau, gate_margin = fitted
        gate_ramp = check_number(gate_ramp, "gate_ramp", above=0.0, maximum=1.0)
        gate_tau *= gate_ramp
        if prompt_negatives is not None and prompt_negatives.n_prompts:
            try:
                prompt_margin, prompt_tau = _prompt_gate(
                    sae, pos, prompt_negatives, layer, scale, m_spec, gate_floor, gate_margin
                )
                prompt_tau *= gate_ramp
            except ValueError as err:
                prompt_skipped = f"prompt gate off: {err}"
                warnings.warn(f"concept {concept!r}: {prompt_skipped}", ClearWarning, stacklevel=2)
    probe = probe_skipped = None
    if probe_sets is not None:
        if fitted is None and not skipped:
            raise ValueError("the probe gate needs the context gate or the look-alike gate")
        if fitted is None:  # the context gate switched itself off and nothing else gates: said so
            probe_skipped = "probe gate off: it widens a gate, and the context gate is off"
            warnings.warn(f"concept {concept!r}: {probe_skipped}", ClearWarning, stacklevel=2)
        else:
            at = layer if probe_layer is None else probe_layer
            probe = fitted_probe(
                [pos, *probe_sets[0]], [neg, *probe_sets[1]], at, layer, scale, *probe_sets[2:]
            )
    null_basis = None
    if null_space:
        null_space = check_number(null_space, "null_space", above=0.0, maximum=1.0)
        null_basis = _null_basis(neg, layer, null_space)
    meta = {
        "layer_names": result.layer_names,
        "candidates": result.candidates,
        "layer_probs": result.probs,
        "layer_uncertainty": result.uncertainty.to_json(),
        "scales": result.scales,
        "search": result.config.to_json(),
        "search_cancelled": result.cancelled,
        "search_stop": result.stop_reason,
        "n_pairs": pos.n_prompts,
    }
    if protected is not None:
        meta["n_protected"] = protected.n_prompts
        meta["protect_weight"] = protect_weight
    if sources:
        meta["gate_sources"] = ["look-alikes"] * gate + ["negatives"] * context_gate
        if margin_from is not None:
            meta["gate_split"] = {
                "floor": "even positions of the gate's negatives",
                "margin": "odd positions",
                "n_floor": sources[-1].n_prompts,
                "n_margin": margin_from.n_prompts,
                "ramp": gate_ramp,
            }
    if skipped:
        meta["context_gate_skipped"] = skipped
    if prompt_margin is not None:
        meta["prompt_gate"] = {
            "margin_from": "the gate's margin negatives and the calibration half of the unrelated prompts",
            "n_unrelated": prompt_negatives.n_prompts,
            "ramp": gate_ramp,
        }
    if prompt_skipped:
        meta["prompt_gate_skipped"] = prompt_skipped
    if probe_skipped:
        meta["probe_gate_skipped"] = probe_skipped
    if probe is not None:
        meta["probe_gate"] = {
            "layer": layer if probe_layer is None else probe_layer,
            "n_concept": sum(a.n_prompts for a in [pos, *probe_sets[0]]),
            "n_concept_free": sum(a.n_prompts for a in [neg, *probe_sets[1]]),
            "n_lookalike": probe_sets[2].n_prompts
            if len(probe_sets) > 2 and probe_sets[2] is not None
            else 0,
            "n_null": probe_sets[3].n_prompts if len(probe_sets) > 3 and probe_sets[3] is not None else 0,
            "fit": "logistic regression (C 1) on mean-pooled block states / scale; classes weighted equally; "
            "of the concept-free weight, the empty prompt (if given) "
            f"{NULL_SHARE:g}, then the look-alikes (if any) half of the rest",
        }
    if null_basis is not None:
        meta["null_space"] = {"energy": null_space, "rank": int(null_basis.shape[1])}
    return Eraser(
        concept=concept,
        model_id=model_id,
        layer=layer,
        layer_name=result.layer_names[layer],
        scale=scale,
        d_model=pos.d_model,
        kind="sae",
        sae=sae,
        m_spec=m_spec.float(),
        m_shared=m_shared.float(),
        mask=mask,
        gate_floor=gate_floor,
        gate_tau=gate_tau,
        gate_margin=gate_margin,
        gate_scope=gate_scope if gate_floor is not None else "token",
        prompt_margin=prompt_margin,
        prompt_tau=prompt_tau,
        probe=probe,
        probe_layer=probe_layer if probe is not None else None,
        null_basis=null_basis,
        gamma=gamma,
        meta=meta,
    )


@torch.no_grad()
def _gate(
    sae: SAE,
    pos: Activations,
    floors: Sequence[Activations],
    layer: int,
    scale: float,
    m_spec: torch.Tensor,
    margin_from: Activations | None = None,
) -> tuple[torch.Tensor, float, float]:
    """(floor, tau, margin) of a gate: per feature, the max over the tokens of every capture in
    ``floors`` (the protected look-alikes, half the negatives); the margin, the highest gate score the
    tokens of ``margin_from`` reach over that floor (0 without it); tau, the median score of the
    positive tokens above the margin, less the margin."""

    def encode(acts: Activations) -> torch.Tensor:
        return sae.encode(torch.from_numpy(acts.layer(layer)) / scale)

    floor = torch.stack([encode(a).max(0).values for a in floors]).max(0).values

    def score(acts: Activations) -> torch.Tensor:
        return _scores(sae, acts, layer, scale, m_spec, floor)

    margin = float(score(margin_from).max()) if margin_from is not None else 0.0
    passing = score(pos)
    passing = passing[passing > margin] - margin
    if not len(passing):
        raise ValueError(
            "gate: no token of the concept's prompts goes beyond what its look-alikes or negatives use; "
            "nothing could be erased (drop the gate)"
        )
    return floor.float(), float(passing.median()), margin


@torch.no_grad()
def _prompt_gate(
    sae: SAE,
    pos: Activations,
    negatives: Activations,
    layer: int,
    scale: float,
    m_spec: torch.Tensor,
    floor: torch.Tensor,
    margin: float,
) -> tuple[float, float]:
    """(margin, tau) of a prompt gate: the margin, the highest gate score any token of ``negatives``
    reaches (at least the token gate's ``margin``); tau, the median amount by which the positive
    prompts' highest-scoring tokens pass it."""
    score = _scores(sae, negatives, layer, scale, m_spec, floor)
    prompt_margin = max(margin, float(score.max()))
    top = _scores(sae, pos, layer, scale, m_spec, floor).numpy()
    top = np.maximum.reduceat(top, pos.offsets[:-1].astype(np.intp))
    passing = top[top > prompt_margin] - prompt_margin
    if len(passing) * 2 < len(top):
        raise ValueError(
            f"only {len(passing)} of {len(top)} of the concept's prompts go beyond what the unrelated "
            "prompts reach"
        )
    return prompt_margin, float(np.median(passing))


def _scores(
    sae: SAE, acts: Activations, layer: int, scale: float, m_spec: torch.Tensor, floor: torch.Tensor
) -> torch.Tensor:
    """(tokens,) gate scores of a capture: Σ ReLU(f − floor)·m_spec."""
    f = sae.encode(torch.from_numpy(acts.layer(layer)) / scale)
    return (torch.relu(f - floor) * m_spec).sum(-1)


NULL_SHARE = 0.05
"""Share of the probe's concept-free weight that its null prompts (the empty prompt) carry: enough to
take the empty prompt from +0.25..+0.45 to below −1 for the three public figures whose probes caught it
(docs/precision.md)."""


def probe_gate(
    concept: Sequence[Activations],
    concept_free: Sequence[Activations],
    layer: int,
    scale: float,
    kept: Activations | None = None,
    null: Activations | None = None,
) -> dict[str, torch.Tensor]:
    """{"weight", "bias"} of the probe gate: a logistic regression (C 1, a fixed solver: deterministic)
    on the mean-pooled states at ``layer`` / ``scale`` of ``concept`` against ``concept_free`` prompts,
    the two classes weighted equally. ``kept``: concept-free prompts that look most like the concept
    (the protected look-alikes), weighted as much as all other concept-free prompts together, so the
    probe's boundary is drawn between the concept and them rather than against easy prompts.
    ``null``: prompts the probe must never catch, :data:`NULL_SHARE` of the concept-free weight: the
    empty prompt, which classifier-free guidance encodes for every video, so a probe that caught it
    would edit every video (it did for three public figures on the testbed before it was weighted).
    The other groups keep their proportions in the rest of the concept-free weight."""
    from sklearn.linear_model import LogisticRegression

    def pooled(acts) -> np.ndarray:
        if acts is None or not acts.n_prompts:
            return np.empty((0, x1.shape[1]), np.float32)
        return acts.pooled("mean", layer)

    x1 = np.concatenate([a.pooled("mean", layer) for a in concept if a.n_prompts])
    x0 = np.concatenate([a.pooled("mean", layer) for a in concept_free if a.n_prompts])
    xk, xn = pooled(kept), pooled(null)
    share_null = NULL_SHARE if len(xn) else 0.0  # the concept-free class's weight: null prompts first,
    share_kept = (1.0 - share_null) * (0.5 if len(xk) else 0.0)  # then half the rest to the kept ones
    share = 1.0 - share_null - share_kept  # and the rest to the ordinary prompts
    w = np.r_[
        np.full(len(x1), 1 / len(x1)),
        np.full(len(x0), share / len(x0)),
        np.full(len(xk), share_kept / max(len(xk), 1)),
        np.full(len(xn), share_null / max(len(xn), 1)),
    ]
    x = np.concatenate([x1, x0, xk, xn]) / scale
    y = np.r_[np.ones(len(x1)), np.zeros(len(x0) + len(xk) + len(xn))]
    model = LogisticRegression(C=1.0, max_iter=5000).fit(x, y, sample_weight=w * len(y) / 2)
    return {
        "weight": torch.from_numpy(model.coef_[0]).float(),
        "bias": torch.tensor([float(model.intercept_[0])]),
    }


def probe_logits(probe: dict[str, torch.Tensor], acts: Activations, layer: int, scale: float) -> np.ndarray:
    """(prompts,) logits of a :func:`probe_gate` probe on ``acts``' mean-pooled states at ``layer``
    divided by ``scale`` (what ``Eraser.probe_scores`` computes on hidden states)."""
    return acts.pooled("mean", layer) / scale @ probe["weight"].numpy() + float(probe["bias"])


def fitted_probe(
    concept: Sequence[Activations],
    concept_free: Sequence[Activations],
    probe_layer: int,
    layer: int,
    scale: float,
    kept: Activations | None = None,
    null: Activations | None = None,
) -> dict[str, torch.Tensor]:
    """:func:`probe_gate` at ``probe_layer``, scaled there as a search scales a layer (the concept and
    concept-free prompts' mean token norm), its weights then rescaled to read states divided by the
    eraser's ``scale`` (``Eraser.probe_scores`` divides by the eraser's own): the same logits."""
    if probe_layer == layer:
        return probe_gate(concept, concept_free, layer, scale, kept, null)
    from clear_core.search import layer_scales

    own = layer_scales([concept[0], concept_free[0]], [probe_layer])[0]
    probe = probe_gate(concept, concept_free, probe_layer, own, kept, null)
    return {**probe, "weight": probe["weight"] * (scale / own)}


def same_concept_packs(
    pos: Activations,
    concept_free: Sequence[Activations],
    reference: Activations,
    sizes: dict[str, int],
    layer: int,
    scale: float,
    quantile: float = 0.25,
) -> list[str]:
    """The packs of ``reference`` (prompts pack after pack, ``sizes`` per pack name) that read as the
    concept of ``pos``: each pack is scored by a :func:`probe_gate` fitted on ``pos`` against
    ``concept_free`` and every *other* pack, and is named when its median score reaches the
    ``quantile`` of the positives' scores. Renaming each of the 21 built-in packs, at layers 2 and 4
    of MiniLM (42 cases, ``python -m research.reference_packs``): its own pack named in 39, no other
    pack ever; the first decile names all 42 own packs, and other painters for Warhol and Picasso."""
    named, start = [], 0
    for slug, n in sizes.items():
        own = np.arange(start, start + n)
        start += n
        rest = np.setdiff1d(np.arange(reference.n_prompts), own)
        fitted = probe_gate([pos], [*concept_free, reference.select(rest.tolist())], layer, scale)
        ref = probe_logits(fitted, reference, layer, scale)
        if np.median(ref[own]) >= np.quantile(probe_logits(fitted, pos, layer, scale), quantile):
            named.append(slug)
    return named


@torch.no_grad()
def _null_basis(neg: Activations, layer: int, energy: float) -> torch.Tensor:
    """(d_model, r) top right-singular vectors of the negatives' token states at ``layer``: the
    smallest r whose squared singular values hold ``energy`` of the total."""
    x = torch.from_numpy(neg.layer(layer)).double()
    _, sv, vh = torch.linalg.svd(x, full_matrices=False)
    share = (sv**2).cumsum(0) / (sv**2).sum()
    rank = int((share < energy).sum()) + 1
    return vh[:rank].T.float().contiguous()


@torch.no_grad()
def leace_eraser(
    pos: Activations, neg: Activations, layer: int, concept: str, model_id: str, gamma: float = 1.0
) -> Eraser:
    """EleutherAI's LEACE (``concept-erasure``) at ``layer``, fitted on the prompts' mean-pooled states
    (positives vs negatives) and applied to every token: the affine map commutes with mean pooling, so
    no linear probe on the pooled block state can tell the classes apart after it (γ = 1)."""
    from concept_erasure import LeaceFitter

    if not 1 <= layer < pos.n_layers:
        raise ValueError(f"layer {layer} is not a block (1..{pos.n_layers - 1})")
    x = torch.from_numpy(np.concatenate([pos.pooled("mean", layer), neg.pooled("mean", layer)]))
    z = torch.cat([torch.ones(pos.n_prompts), torch.zeros(neg.n_prompts)])
    fitted = LeaceFitter.fit(x.double(), z.double()).eraser
    leace = {
        "left": fitted.proj_left.float().contiguous(),
        "right": fitted.proj_right.float().contiguous(),
        "bias": fitted.bias.float().contiguous(),
    }
    return Eraser(
        concept=concept,
        model_id=model_id,
        layer=layer,
        layer_name=pos.layer_names[layer],
        scale=float(np.linalg.norm(pos.layer(layer), axis=-1).mean()),
        d_model=pos.d_model,
        kind="leace",
        leace=leace,
        mask="none",
        gamma=gamma,
        meta={"layer_names": pos.layer_names, "n_pairs": pos.n_prompts, "leace": "concept-erasure LEACE"},
    )


@torch.no_grad()
def steering_eraser(
    pos: Activations, neg: Activations, layer: int, concept: str, model_id: str, gamma: float = 1.0
) -> Eraser:
    """The dense baseline: v = mean positive − mean negative prompt (mean-pooled) at ``layer``."""
    if not 1 <= layer < pos.n_layers:
        raise ValueError(f"layer {layer} is not a block (1..{pos.n_layers - 1})")
    direction = torch.from_numpy(pos.pooled("mean", layer).mean(0) - neg.pooled("mean", layer).mean(0))
    scale = float(np.linalg.norm(pos.layer(layer), axis=-1).mean())
    return Eraser(
        concept=concept,
        model_id=model_id,
        layer=layer,
        layer_name=pos.layer_names[layer],
        scale=scale,
        d_model=pos.d_model,
        kind="steering",
        direction=direction,
        mask="none",
        gamma=gamma,
        meta={"layer_names": pos.layer_names, "n_pairs": pos.n_prompts},
    )
