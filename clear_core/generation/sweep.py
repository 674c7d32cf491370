"""A γ sweep that computes the blocks below the eraser once.

For one eraser at block l, every γ gives the same outputs of blocks 1..l (the edit is applied to block
l's output, after it is computed); only the blocks above l change. :func:`encode_sweep` therefore
encodes the first γ normally while recording the raw outputs of blocks 1..l, keyed by the content of
each block's input, and for every further γ stands in for those blocks with the recorded outputs (a
context-local "replace" handler, clear_core/hooks.py) — so the embeddings and the blocks up to l run
once per sweep, the eraser's edit and the blocks above it once per γ. The result equals encoding each
γ from scratch (tested).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from clear_core.encoders import TextEncoder
from clear_core.erasure import Eraser
from clear_core.generation.conditioning import Conditioning, encode
from clear_core.generation.render import clone_output
from clear_core.hooks import Handler, original_forward, scoped_hooks

__all__ = ["BlockPrefix", "encode_sweep"]


def _key(args: tuple, kwargs: dict) -> str:
    hidden = args[0] if args else kwargs.get("hidden_states")
    h = hashlib.sha256(str((tuple(hidden.shape), hidden.dtype)).encode())
    h.update(hidden.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class BlockPrefix:
    """Records, then replays, the outputs of the blocks up to and including ``layer`` (1-based)."""

    def __init__(self, encoder: TextEncoder, layer: int) -> None:
        if not 1 <= layer <= encoder.n_blocks:
            raise ValueError(f"layer {layer} is not a block of this encoder (1..{encoder.n_blocks})")
        self.blocks = encoder.layout.blocks[:layer]
        self.outputs: dict[tuple[int, str], Any] = {}
        self.hits = self.misses = 0

    def _handler(self, index: int, block: torch.nn.Module) -> Handler:
        def replace(args: tuple, kwargs: dict) -> Any:
            key = (index, _key(args, kwargs))
            if key in self.outputs:
                self.hits += 1
                return clone_output(self.outputs[key])
            self.misses += 1
            output = self._original[index](*args, **kwargs)
            self.outputs[key] = clone_output(output)
            return output

        return Handler(block, replace, kind="replace")

    @contextmanager
    def active(self) -> Iterator[BlockPrefix]:
        """Inside: forward passes in this context reuse the recorded outputs (recording new ones)."""
        self._original = [original_forward(b) for b in self.blocks]
        with scoped_hooks([self._handler(i, b) for i, b in enumerate(self.blocks)]):
            yield self


def encode_sweep(
    pipe: Any,
    prompts: Sequence[str],
    negative_prompts: Sequence[str] | None,
    eraser: Eraser,
    gammas: Sequence[float],
    negative_erased: bool = True,
    length: int | None = None,
) -> tuple[list[Conditioning | None], BlockPrefix]:
    """The conditioning at every γ of ``gammas`` for one eraser, the blocks up to its block run once."""
    prefix = BlockPrefix(TextEncoder.from_pipeline(pipe, eraser.component), eraser.layer)
    out = []
    with prefix.active():
        for gamma in gammas:
            out.append(
                encode(pipe, prompts, negative_prompts, [(eraser, float(gamma))], negative_erased, length)
            )
    return out, prefix
