"""What the eraser's SAE features are: specificity ranking, firing tokens, decoder directions, health.

Feature statistics are per prompt: a prompt's activation of a feature is its *max* over the prompt's
real tokens (the concept sits in a few tokens; see erasure.py), averaged over prompts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from clear_core.build import feature_means
from clear_core.encoders import Activations, TextEncoder
from clear_core.erasure import Eraser
from clear_core.preview import PromptExplanation, explain_prompt  # the engine's; kept importable here
from clear_core.sae import SAEStats

__all__ = [
    "FeatureTable",
    "PromptExplanation",
    "TokenActivations",
    "explain_prompt",
    "feature_table",
    "nearest_tokens",
    "sae_health",
    "top_prompts",
]


def _require_sae(eraser: Eraser) -> None:
    if eraser.kind != "sae" or eraser.sae is None:
        raise ValueError("this view needs an SAE eraser; a steering eraser has no features")


@dataclass
class FeatureTable:
    """The ``top_k`` most concept-specific features, most specific first."""

    ids: np.ndarray
    """(k,) feature indices."""
    spec: np.ndarray
    """(k,) m_spec of each."""
    shared: np.ndarray
    """(k,) m_shared of each."""
    pos_mean: np.ndarray
    """(k,) mean per-prompt max activation on positive prompts."""
    neg_mean: np.ndarray
    """(k,) the same on negative prompts."""
    n_specific: int
    """Features with m_spec > 0.5 (out of all d_sae)."""


def feature_table(eraser: Eraser, pos: Activations, neg: Activations, top_k: int = 50) -> FeatureTable:
    """Rank features by m_spec (ties by the positive-minus-negative activation gap)."""
    _require_sae(eraser)
    if top_k < 1:
        raise ValueError(f"top_k must be ≥ 1, got {top_k}")
    with torch.no_grad():
        p = feature_means(eraser.sae, pos, eraser.layer, eraser.scale).numpy()
        n = feature_means(eraser.sae, neg, eraser.layer, eraser.scale).numpy()
    spec = eraser.m_spec.numpy()
    shared = eraser.m_shared.numpy() if eraser.m_shared is not None else 1 - spec
    order = np.lexsort((-(p - n), -spec))[:top_k]
    return FeatureTable(order, spec[order], shared[order], p[order], n[order], int((spec > 0.5).sum()))


@dataclass
class TokenActivations:
    """One prompt with the activation of a feature on each of its tokens."""

    prompt: str
    tokens: list[str]
    values: list[float]
    peak: float
    """Max over the tokens."""


def top_prompts(
    eraser: Eraser,
    acts: Activations,
    feature: int,
    k: int = 5,
    tokenizer: object | None = None,
    max_length: int = 512,
) -> list[TokenActivations]:
    """The ``k`` prompts of ``acts`` on which ``feature`` fires most, token by token.

    Pass the encoder's ``tokenizer`` to get token strings (otherwise tokens are numbered).
    """
    _require_sae(eraser)
    if not 0 <= feature < eraser.sae.config.d_sae:
        raise ValueError(f"feature {feature} out of range 0..{eraser.sae.config.d_sae - 1}")
    with torch.no_grad():
        f = eraser.features(torch.from_numpy(acts.layer(eraser.layer)))[:, feature].numpy()
    peaks = np.maximum.reduceat(f, acts.offsets[:-1])
    out = []
    for i in np.argsort(-peaks, kind="stable")[:k]:
        values = f[acts.offsets[i] : acts.offsets[i + 1]]
        tokens = [f"#{j}" for j in range(len(values))]
        if tokenizer is not None:
            ids = tokenizer(acts.prompts[i], truncation=True, max_length=max_length)["input_ids"]
            if len(ids) == len(values):
                tokens = tokenizer.convert_ids_to_tokens(ids)
        out.append(TokenActivations(acts.prompts[i], list(tokens), values.tolist(), float(peaks[i])))
    return out


def nearest_tokens(
    eraser: Eraser, encoder: TextEncoder, feature: int, k: int = 10
) -> list[tuple[str, float]]:
    """Vocabulary tokens whose input embeddings are most cosine-similar to the feature's decoder row.

    A logit-lens-style heuristic: the decoder row lives in the block's space, the embeddings in the
    input space; the residual stream keeps them comparable enough to name a feature, not to prove it.
    """
    _require_sae(eraser)
    if not 0 <= feature < eraser.sae.config.d_sae:
        raise ValueError(f"feature {feature} out of range 0..{eraser.sae.config.d_sae - 1}")
    with torch.no_grad():
        emb = encoder.model.get_input_embeddings().weight.float().cpu()
        direction = eraser.sae.W_dec[feature].float().cpu()
        cos = (emb @ direction) / (emb.norm(dim=1) * direction.norm()).clamp_min(1e-12)
        values, ids = cos.topk(min(k, len(cos)))
    tokens = encoder.tokenizer.convert_ids_to_tokens(ids.tolist())
    return [(str(t), float(v)) for t, v in zip(tokens, values)]


def sae_health(eraser: Eraser, acts: Activations) -> SAEStats:
    """FVU, L0 and dead features of the eraser's SAE on ``acts`` at its block."""
    _require_sae(eraser)
    return eraser.sae.stats(torch.from_numpy(acts.layer(eraser.layer)) / eraser.scale)
