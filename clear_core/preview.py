"""One prompt erased at one γ, as the app's Erase tab shows it: the effect on the prompt, and the
concept's leakage and preservation at that γ.

:func:`explain_prompt` says what the edit does to one prompt (at the block: where it lands, how far
the activations drift, which SAE features are subtracted; on the final output: the cosine to the
original). :func:`preview_prompt` adds, given a :class:`clear_core.measure.Measurer` for the eraser's
concept, the leakage probe's verdict on the prompt before and after, and the concept-level numbers at
that γ on the measurer's sample (the numbers ``python -m clear_core evaluate`` prints). The app's
callback only formats the :class:`PromptPreview` it gets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from clear_core.encoders import CaptureConfig, TextEncoder
from clear_core.erasure import Eraser, lookahead_states

if TYPE_CHECKING:
    from clear_core.measure import Measurement, Measurer

__all__ = ["PromptExplanation", "PromptPreview", "explain_prompt", "preview_prompt"]


@dataclass
class PromptExplanation:
    """What erasure does to one prompt."""

    prompt: str
    gamma: float
    cosine: float
    """Cosine between the original and erased final outputs (mean-pooled); 1 = untouched."""
    norm_drift: float
    """Mean over tokens of ||h'|| / ||h|| − 1 at the block."""
    recon_error: float | None
    """SAE's relative reconstruction error Σ||x − x̂||² / Σ||x||² on this prompt at the block."""
    subtracted: list[tuple[int, float]] = field(default_factory=list)
    """(feature, γ·Σ_tokens f·m_spec) for the features removed most, largest first."""
    tokens: list[str] = field(default_factory=list)
    """The prompt's tokens."""
    token_erased: list[float] = field(default_factory=list)
    """||h − h'|| / ||h|| per token at the block: where the edit lands."""


def _explain(
    eraser: Eraser, encoder: TextEncoder, prompt: str, gamma: float | None, top_k: int
) -> tuple[PromptExplanation, np.ndarray]:
    """(the explanation, the (2, d_model) original and erased final outputs it compared)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("enter a prompt to explain")
    gamma = eraser.gamma if gamma is None else float(gamma)
    if gamma < 0:
        raise ValueError(f"γ must be ≥ 0, got {gamma}")
    acts = encoder.capture([prompt], CaptureConfig(use_cache=False))
    h = torch.from_numpy(acts.layer(eraser.layer))  # (tokens, d_model)
    deep = {eraser.probe_layer: torch.from_numpy(acts.layer(eraser.probe_layer))} if eraser.lookahead else {}
    with torch.no_grad(), lookahead_states(deep):
        edited = eraser.edit(h, gamma)
        drift = float((edited.norm(dim=-1) / h.norm(dim=-1).clamp_min(1e-12) - 1).mean())
        token_erased = ((h - edited).norm(dim=-1) / h.norm(dim=-1).clamp_min(1e-12)).tolist()
        recon = None
        subtracted: list[tuple[int, float]] = []
        if eraser.kind == "sae":
            x = h / eraser.scale
            out = eraser.sae(x)
            recon = float((x - out.recon).pow(2).sum() / x.pow(2).sum().clamp_min(1e-12))
            amounts = gamma * (out.features * eraser.m_spec).sum(0)
            values, ids = amounts.topk(min(top_k, len(amounts)))
            subtracted = [(int(i), float(v)) for i, v in zip(ids, values) if v > 0]
    original = encoder.encode([prompt])[0]
    with eraser.applied(encoder, gamma=gamma):
        erased = encoder.encode([prompt])[0]
    cosine = float(original @ erased / max(np.linalg.norm(original) * np.linalg.norm(erased), 1e-12))
    ids = encoder.tokenizer(prompt, truncation=True, max_length=encoder.default_max_length())["input_ids"]
    tokens = list(encoder.tokenizer.convert_ids_to_tokens(ids))
    explanation = PromptExplanation(prompt, gamma, cosine, drift, recon, subtracted, tokens, token_erased)
    return explanation, np.stack([original, erased])


def explain_prompt(
    eraser: Eraser, encoder: TextEncoder, prompt: str, gamma: float | None = None, top_k: int = 10
) -> PromptExplanation:
    """Erase ``prompt`` and report the effect at the block and on the final output."""
    return _explain(eraser, encoder, prompt, gamma, top_k)[0]


@dataclass
class PromptPreview:
    """One prompt at one γ (:func:`preview_prompt`)."""

    explanation: PromptExplanation
    """The edit on the prompt (its γ is the preview's)."""
    block: int
    """The eraser's block, 0-based (block b is encoder.layer.b / encoder.block.b)."""
    block_name: str
    concept_probability: tuple[float, float] | None = None
    """The leakage probe's probability of the concept on the prompt's (original, erased) output; None
    without a measurer."""
    measurement: Measurement | None = None
    """The concept's leakage and preservation at this γ and unerased, on the measurer's sample; None
    without a measurer."""

    @property
    def gamma(self) -> float:
        return self.explanation.gamma

    def to_json(self) -> dict[str, Any]:
        """Every number, as the app's "All numbers" panel shows them."""
        x = self.explanation
        out: dict[str, Any] = {
            "gamma": x.gamma,
            "block": self.block,
            "block_name": self.block_name,
            "prompt": {
                "text": x.prompt,
                "cosine_original_vs_erased": x.cosine,
                "recon_error": x.recon_error,
                "norm_drift": x.norm_drift,
                "subtracted": [{"feature": f, "amount": a} for f, a in x.subtracted],
            },
        }
        if self.concept_probability is not None:
            p0, p1 = self.concept_probability
            out["prompt"]["concept_probability"] = {"original": p0, "erased": p1}
        if self.measurement is not None:
            out["scores"] = self.measurement.summary(x.gamma)
        return out


def preview_prompt(
    encoder: TextEncoder,
    eraser: Eraser,
    prompt: str,
    gamma: float,
    measurer: Measurer | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> PromptPreview:
    """Erase ``prompt`` at ``gamma``; with a ``measurer`` of this eraser (on its concept's sample),
    also the probe's verdict on the prompt and the concept's numbers at ``gamma`` (a γ the measurer has
    seen costs nothing). ``progress``: ``(fraction, message)``."""
    if measurer is not None and measurer.eraser is not eraser and measurer.key()[2] != eraser.digest():
        raise ValueError("the measurer was built for another eraser")
    x, outputs = _explain(eraser, encoder, prompt, gamma, top_k=10)
    preview = PromptPreview(x, eraser.layer - 1, eraser.layer_name)
    if measurer is None:
        return preview
    p0, p1 = measurer.baseline.probe.probability(outputs)
    preview.concept_probability = (float(p0), float(p1))
    if progress:
        progress(0.5, f"leakage and preservation at γ = {x.gamma:g}")
    preview.measurement = measurer.measure([x.gamma])
    return preview
