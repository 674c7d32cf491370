"""Erased conditioning: exactly the text embeddings the denoiser will read, computed once per variant.

The prompt is encoded with the pipeline's *own* ``encode_prompt`` (so its padding, mask, cleaning and
post-processing — Wan's zeroed pads, SDXL's penultimate layer, Flux's T5 — are what they are in a
plain call), under ``torch.no_grad()``, with ``max_sequence_length`` passed explicitly (Wan's
``encode_prompt`` defaults to 226 tokens while its ``__call__`` uses 512), and inside
``applied_many(erasers)``. The pipeline is then called with ``prompt_embeds`` /
``negative_prompt_embeds`` (and the masks or pooled embeddings its family needs), so the denoising
loop runs with no hook at all and a γ sweep re-encodes only the text.

**The negative prompt and classifier-free guidance.** By default the eraser also applies to the
negative prompt — what a deployment that hooks its text encoder does. With CFG the denoiser follows
``uncond + s·(cond − uncond)``; erasing both sides removes the concept from ``cond`` and leaves the
guidance direction free of it. With ``negative_erased=False`` the negative prompt is encoded without
the eraser: if the user's negative prompt itself names the concept ("parachute" as a NegPrompt), an
unerased negative keeps pushing *away* from the concept, so the two settings differ exactly when the
negative prompt carries the concept (tests/test_generation.py measures both on a tiny pipeline).

**Threads.** A Hugging Face fast tokenizer keeps its padding and truncation settings on itself and
sets them on every call, and the pipelines' ``encode_prompt`` tokenizes twice with different settings
(``max_length``, then ``longest`` to warn about truncation): two visitors encoding at once on one
pipeline got each other's padding (measured: 7 tokens where the denoiser expects 16, and a crash).
So the ``encode_prompt`` calls of one tokenizer run one at a time (:func:`text_lock`); the eraser
hooks stay context-local and the denoising runs outside this lock.

Pipelines whose class is not in :data:`clear_core.profiles.PIPELINE_PROFILES` have no known
``encode_prompt`` signature: for them :func:`encode` returns None and the caller runs the whole
pipeline call inside the eraser context instead (the pipeline encodes its prompt with the hook on).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from clear_core.erasure import Eraser, applied_many
from clear_core.profiles import pipeline_encoding

__all__ = ["Conditioning", "encode", "max_sequence_length", "text_lock"]

_TEXT_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_TEXT_GUARD = threading.Lock()


def text_lock(pipe: Any) -> threading.Lock:
    """The lock that serialises prompt encoding through ``pipe``'s tokenizer (module docstring)."""
    key = getattr(pipe, "tokenizer", None) or pipe
    with _TEXT_GUARD:
        lock = _TEXT_LOCKS.get(key)
        if lock is None:
            lock = _TEXT_LOCKS[key] = threading.Lock()
        return lock


class Conditioning(NamedTuple):
    """Keyword arguments for the pipeline call, split by side."""

    positive: dict[str, Any]
    """``prompt_embeds`` (+ ``prompt_attention_mask`` / ``pooled_prompt_embeds``)."""
    negative: dict[str, Any]
    """``negative_prompt_embeds`` (+ its mask / pooled embeddings); empty without guidance."""

    def kwargs(self) -> dict[str, Any]:
        return {**self.positive, **self.negative}


def max_sequence_length(pipe: Any, requested: int | None = None) -> int | None:
    """The text length the pipeline is encoded with: ``requested``, else its profile's length."""
    if requested is not None:
        return int(requested)
    known = pipeline_encoding(pipe)
    return known.profile.max_length if known else None


def _device(pipe: Any) -> torch.device:
    return getattr(pipe, "_execution_device", None) or torch.device("cpu")


def _raw(pipe: Any, family: str, prompts: list[str], negatives: list[str] | None, length: int | None):
    """(positive kwargs, negative kwargs) from the family's own ``encode_prompt``."""
    cfg = negatives is not None
    device = _device(pipe)
    video_args = dict(
        prompt=prompts,
        negative_prompt=negatives,
        do_classifier_free_guidance=cfg,
        num_videos_per_prompt=1,
        max_sequence_length=length,
        device=device,
    )
    if family in ("wan", "cogvideox", "testbed"):
        pe, ne = pipe.encode_prompt(**video_args)
        return {"prompt_embeds": pe}, ({"negative_prompt_embeds": ne} if cfg else {})
    if family == "ltx":
        pe, pm, ne, nm = pipe.encode_prompt(**video_args)
        neg = {"negative_prompt_embeds": ne, "negative_prompt_attention_mask": nm} if cfg else {}
        return {"prompt_embeds": pe, "prompt_attention_mask": pm}, neg
    if family == "sd":
        pe, ne = pipe.encode_prompt(prompts, device, 1, cfg, negative_prompt=negatives)
        return {"prompt_embeds": pe}, ({"negative_prompt_embeds": ne} if cfg else {})
    if family == "sdxl":
        pe, ne, pp, npp = pipe.encode_prompt(
            prompt=prompts, device=device, do_classifier_free_guidance=cfg, negative_prompt=negatives
        )
        neg = {"negative_prompt_embeds": ne, "negative_pooled_prompt_embeds": npp} if cfg else {}
        return {"prompt_embeds": pe, "pooled_prompt_embeds": pp}, neg
    if family == "flux":
        pe, pp, _ = pipe.encode_prompt(
            prompt=prompts, prompt_2=None, device=device, max_sequence_length=length
        )
        neg = {}
        if cfg:  # only used with true_cfg_scale > 1 (Flux is guidance-distilled)
            ne, npp, _ = pipe.encode_prompt(
                prompt=negatives, prompt_2=None, device=device, max_sequence_length=length
            )
            neg = {"negative_prompt_embeds": ne, "negative_pooled_prompt_embeds": npp}
        return {"prompt_embeds": pe, "pooled_prompt_embeds": pp}, neg
    raise ValueError(f"no encoder for pipeline family {family!r}")


def encode(
    pipe: Any,
    prompts: Sequence[str],
    negative_prompts: Sequence[str] | None,
    erasers: Sequence[tuple[Eraser, float]] = (),
    negative_erased: bool = True,
    length: int | None = None,
) -> Conditioning | None:
    """The conditioning of ``prompts`` with ``erasers`` applied (see the module docstring).

    ``negative_prompts`` None means no classifier-free guidance. Returns None for an unknown pipeline
    class (the caller then erases during the whole call).
    """
    known = pipeline_encoding(pipe)
    if known is None:
        return None
    prompts = list(prompts)
    negatives = list(negative_prompts) if negative_prompts is not None else None
    length = max_sequence_length(pipe, length)
    with torch.no_grad(), text_lock(pipe):
        if not erasers:
            return Conditioning(*_raw(pipe, known.family, prompts, negatives, length))
        with applied_many(list(erasers), pipe):
            positive, negative = _raw(pipe, known.family, prompts, negatives, length)
        if negatives is not None and not negative_erased:
            _, negative = _raw(pipe, known.family, prompts, negatives, length)
    return Conditioning(positive, negative)
