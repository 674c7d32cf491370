"""Encode prompts at many γ with the blocks below the eraser run once, and every γ in one batch.

For an eraser at block l, every γ shares the embeddings and blocks 1..l (the edit is applied to block
l's output after it is computed); only the edit and the blocks above l differ. :func:`encode_gammas`
therefore runs, per batch of prompts:

1. the model up to block l only, recording each block's output (the forward is cut short there);
2. one forward over the batch repeated once per γ > 0 (γ-major rows), in which blocks 1..l stand in
   with their recorded outputs (context-local "replace" handlers, clear_core/hooks.py) and block l
   returns its recorded output edited at each row's γ: h' = h − γ·v, with v = ``eraser.vector(h)``
   computed once (it does not depend on γ). Only the blocks above l compute, for all γ at once.

The result equals ``encoder.encode`` under ``eraser.applied(encoder, gamma=γ)`` for each γ, up to
float rounding of the larger batch (tested to 1e-5). The rows for blocks below l carry their recorded
non-hidden outputs (T5's position bias) and, as hidden states, whatever they were called with: block
l ignores its input, since it replays its own.

Prompts whose edit is zero on every token (a gated eraser leaves concept-free prompts alone) are
answered with their unerased output at every γ and skip step 2, which is where a gated eraser's
calibration spends its time (its negatives and unrelated prompts).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from clear_core.encoders import TextEncoder, _check_prompts
from clear_core.erasure import Eraser, lookahead_states
from clear_core.hooks import Handler, hidden_of, original_forward, scoped_hooks, with_hidden

__all__ = ["MAX_SWEEP_BYTES", "encode_gammas"]

MAX_SWEEP_BYTES = 512 * 1024**2
"""Block-output memory one γ batch may take (γ values × prompts × tokens × d_model floats); larger
sweeps run in several γ groups."""


class _Cut(Exception):
    """Raised by the eraser's block in pass 1: nothing above it is needed there."""


def _map_rows(value: Any, rows: int, fn) -> Any:
    """``value`` (a block's output: tensors, tuples, lists) with ``fn`` applied to every tensor whose
    first dimension is ``rows`` (the batch's)."""
    if isinstance(value, torch.Tensor):
        return fn(value) if value.ndim and value.shape[0] == rows else value
    if isinstance(value, tuple):
        return tuple(_map_rows(v, rows, fn) for v in value)
    if isinstance(value, list):
        return [_map_rows(v, rows, fn) for v in value]
    return value


def _tile(value: Any, times: int, rows: int) -> Any:
    """``value`` with every batch-major tensor repeated ``times`` along its first dimension."""
    if times == 1:
        return value
    return _map_rows(value, rows, lambda t: t.repeat(times, *([1] * (t.ndim - 1))))


def encode_gammas(
    encoder: TextEncoder,
    prompts: Sequence[str],
    eraser: Eraser,
    gammas: Sequence[float],
    batch_size: int = 64,
    original: np.ndarray | None = None,
) -> dict[float, np.ndarray]:
    """{γ: (N, d_model) float32} mean-pooled final outputs of ``prompts`` erased at each γ (γ = 0:
    the original), as ``encoder.encode`` gives them; see the module docstring for how.

    ``original``: the unerased outputs of ``prompts`` (``encoder.encode(prompts)``) when the caller
    has them already; prompts a gated eraser leaves alone take them instead of another forward pass."""
    prompts = _check_prompts(prompts)
    if original is not None and original.shape != (len(prompts), encoder.d_model):
        raise ValueError(
            f"original outputs of shape {original.shape} for {len(prompts)} prompts of width {encoder.d_model}"
        )
    gammas = [float(g) for g in gammas]
    block = eraser.block_of(encoder)
    layer = eraser.layer
    blocks = encoder.layout.blocks[:layer]
    # a probe gate reading a deeper layer: the unedited prefix is recorded up to that layer, once
    deepest = eraser.probe_layer if eraser.lookahead else layer
    if eraser.lookahead:
        eraser.block_of(encoder, deepest)  # a layer this encoder has
    out = {g: np.empty((len(prompts), encoder.d_model), dtype=np.float32) for g in gammas}
    edited_gammas = [g for g in dict.fromkeys(gammas) if g != 0]
    order = encoder.length_order(prompts)
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            chosen = order[start : start + batch_size]
            batch = encoder.tokenize([prompts[i] for i in chosen])
            rows = batch["input_ids"].shape[0]
            if 0.0 in out:
                out[0.0][chosen] = encoder.pool(batch).cpu().numpy()
            if not edited_gammas:
                continue
            recorded = _record_prefix(encoder, batch, encoder.layout.blocks[:deepest])
            deep = {deepest: hidden_of(recorded[-1])} if eraser.lookahead else {}
            recorded = recorded[:layer]
            hidden = hidden_of(recorded[-1])
            # (rows, tokens, d_model), independent of γ; a prompt-level gate reads the positions the
            # encoder's mask marks, as it does under the hook (clear_core/erasure.applied_many)
            mask = batch.get("attention_mask") if encoder.profile.attention_mask else None
            with lookahead_states(deep):
                vector = eraser.vector(hidden, mask)
            moved = (vector.reshape(rows, -1) != 0).any(1)
            if not bool(moved.all()):  # a gated eraser leaves these prompts alone at every γ
                if 0.0 in out:
                    base = out[0.0][chosen]
                elif original is not None:
                    base = original[chosen]
                else:
                    base = encoder.pool(batch).cpu().numpy()
                for g in edited_gammas:
                    out[g][chosen] = base
                if not bool(moved.any()):
                    continue
                keep = moved.nonzero().flatten()
                batch = {k: v[keep] for k, v in batch.items()}
                recorded = [_map_rows(r, rows, lambda t, keep=keep: t[keep]) for r in recorded]
                hidden, vector = hidden[keep], vector[keep]
            at = chosen[moved.nonzero().flatten().cpu().numpy()]
            n = len(at)
            per_gamma = hidden.numel() * 4
            group = max(1, MAX_SWEEP_BYTES // max(per_gamma, 1))
            for g0 in range(0, len(edited_gammas), group):
                chunk = edited_gammas[g0 : g0 + group]
                pooled = _replay(encoder, batch, blocks, block, recorded, hidden, vector, chunk)
                for i, g in enumerate(chunk):
                    out[g][at] = pooled[i * n : (i + 1) * n]
    return out


def _record_prefix(encoder: TextEncoder, batch: dict, blocks: list) -> list[Any]:
    """The outputs of ``blocks`` (the embeddings and blocks up to the eraser's) for one batch."""
    recorded: list[Any] = []
    last = len(blocks) - 1

    def recorder(i: int, module: torch.nn.Module):
        forward = original_forward(module)

        def fn(args: tuple, kwargs: dict) -> Any:
            output = forward(*args, **kwargs)
            recorded.append(output)
            if i == last:
                raise _Cut
            return output

        return fn

    handlers = [Handler(b, recorder(i, b), kind="replace") for i, b in enumerate(blocks)]
    with scoped_hooks(handlers), contextlib.suppress(_Cut):
        encoder.pool(batch)
    if len(recorded) != len(blocks):
        raise RuntimeError("the encoder did not run its blocks in order; cannot reuse its prefix")
    return recorded


def _replay(
    encoder: TextEncoder,
    batch: dict,
    blocks: list,
    block: torch.nn.Module,
    recorded: list[Any],
    hidden: torch.Tensor,
    vector: torch.Tensor,
    gammas: list[float],
) -> np.ndarray:
    """(len(gammas)·rows, d_model) pooled outputs, γ-major, of one forward over the tiled batch."""
    times, rows = len(gammas), hidden.shape[0]
    g = torch.tensor(gammas, dtype=torch.float32).view(-1, 1, 1, 1)
    edited = (hidden.float()[None] - g * vector[None]).to(hidden.dtype).reshape(-1, *hidden.shape[1:])

    def replay(i: int, module: torch.nn.Module):
        def fn(args: tuple, kwargs: dict) -> Any:
            output = _tile(recorded[i], times, rows)
            if module is block:
                return with_hidden(output, edited)
            incoming = args[0] if args else kwargs["hidden_states"]
            return with_hidden(output, incoming)  # unread: the eraser's block replays its own input

        return fn

    tiled = {k: v.repeat(times, *([1] * (v.ndim - 1))) for k, v in batch.items()}
    with scoped_hooks([Handler(b, replay(i, b), kind="replace") for i, b in enumerate(blocks)]):
        return encoder.pool(tiled).cpu().numpy()
