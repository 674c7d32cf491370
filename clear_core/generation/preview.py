"""Side-by-side previews for the app: one clip per (pipeline, prompt, seed, settings, erasers, γ), cached.

Moving the γ slider back to a value already seen shows its clip at once; every visitor of one process
shares the cache (a clip depends only on its key, so sharing is safe). The key holds everything that
decides the frames: the pipeline, the prompt and negative prompt, the seed, every render setting
(steps, frames, size, guidance, text length) and each eraser's full content digest
(:meth:`clear_core.erasure.Eraser.digest`: tensors, gate, block, scale) with its γ. Each clip is an mp4, a JSON of
what made it and the float frames; the oldest clips are deleted beyond ``max_items``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clear_core.erasure import Eraser
from clear_core.generation.conditioning import encode
from clear_core.generation.grid import check_erasers, check_prompts
from clear_core.generation.loading import describe
from clear_core.generation.media import write_json, write_mp4
from clear_core.generation.render import Latents, RenderSettings, render
from clear_core.generation.variants import eraser_id
from clear_core.provenance import library_versions

__all__ = ["Clip", "PreviewCache"]

MAX_PREFIXES = 4
"""Encoder prefixes kept (one per pipeline, encoder and eraser block)."""
MAX_PREFIX_ENTRIES = 2048
"""Recorded block outputs per prefix before it starts afresh (a few per prompt)."""


@dataclass
class Clip:
    """One rendered clip."""

    video: Path
    """The mp4."""
    meta: Path
    """Its JSON."""
    frames: np.ndarray
    """(frames, H, W, 3) float32 in [0, 1]."""
    seconds: float
    """Render time (0 when it came from the cache)."""
    cached: bool


class PreviewCache:
    """A process-wide LRU of rendered clips in a private folder (see the module docstring)."""

    def __init__(self, folder: str | Path | None = None, max_items: int = 64, fps: int = 8) -> None:
        self.folder = Path(folder or tempfile.mkdtemp(prefix="clear-preview-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_items, self.fps = max_items, fps
        self._items: OrderedDict[str, Clip] = OrderedDict()
        self._prefixes: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def prefix(self, pipe: Any, eraser: Eraser) -> Any:
        """The :class:`clear_core.generation.sweep.BlockPrefix` of ``pipe``'s encoder up to the
        eraser's block, shared by every clip of that (pipeline, encoder, block): a new γ for a prompt
        already encoded runs only the blocks above the eraser (the γ slider's re-render). Its
        recordings are dropped beyond :data:`MAX_PREFIX_ENTRIES` block outputs."""
        from clear_core.encoders import TextEncoder
        from clear_core.generation.sweep import BlockPrefix

        key = (id(pipe), eraser.component, eraser.layer)
        with self._lock:
            prefix = self._prefixes.get(key)
            if prefix is None or len(prefix.outputs) > MAX_PREFIX_ENTRIES:
                prefix = BlockPrefix(TextEncoder.from_pipeline(pipe, eraser.component), eraser.layer)
                self._prefixes[key] = prefix
            self._prefixes.move_to_end(key)
            while len(self._prefixes) > MAX_PREFIXES:
                self._prefixes.popitem(last=False)
            return prefix

    def key(
        self,
        source: str,
        prompt: str,
        seed: int,
        settings: RenderSettings,
        erasers,
        negative_prompt: str = "",
    ) -> str:
        payload = [
            source,
            prompt,
            negative_prompt,
            int(seed),
            settings.to_json(),
            [(e.digest(), float(g)) for e, g in erasers],
        ]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]

    def get(self, key: str) -> Clip | None:
        with self._lock:
            clip = self._items.get(key)
            if clip is not None:
                self._items.move_to_end(key)
                return Clip(clip.video, clip.meta, clip.frames, 0.0, True)
        return None

    def clip(
        self,
        pipe: Any,
        source: str,
        prompt: str,
        seed: int,
        settings: RenderSettings,
        erasers: Sequence[tuple[Eraser, float]] = (),
        negative_prompt: str = "",
        progress: Callable[[int, int], None] | None = None,
    ) -> Clip:
        """The clip of ``prompt`` with ``erasers`` (each at its γ): from the cache, or rendered now."""
        prompt = check_prompts([prompt])[0]
        erasers = [(e, float(g)) for e, g in erasers if float(g) != 0.0]  # γ = 0 is the original
        key = self.key(source, prompt, seed, settings, erasers, negative_prompt)
        hit = self.get(key)
        if hit is not None:
            return hit
        check_erasers(pipe, [e for e, _ in erasers])
        # one eraser: the blocks up to its block come from the shared prefix (their outputs do not
        # depend on γ), so moving γ re-runs only the blocks above it
        reuse = self.prefix(pipe, erasers[0][0]).active() if len(erasers) == 1 else nullcontext()
        with reuse:
            cond = encode(pipe, [prompt], [negative_prompt], erasers, True, settings.max_sequence_length)
            call = (
                cond.kwargs()
                if cond is not None
                else {"prompt": [prompt], "negative_prompt": [negative_prompt]}
            )
            if cond is None and erasers:
                from clear_core.erasure import applied_many

                with applied_many(erasers, pipe):
                    frames, seconds = render(pipe, call, settings, Latents(seed), progress)
            else:
                frames, seconds = render(pipe, call, settings, Latents(seed), progress)
        clip = frames[0]
        folder = self.folder / key
        folder.mkdir(exist_ok=True)
        video = write_mp4(folder / "clip.mp4", clip, self.fps)
        meta = write_json(
            folder / "clip.json",
            {
                "prompt": prompt,
                "negative_prompt": negative_prompt,
                "seed": int(seed),
                "pipeline": describe(pipe),
                "settings": settings.to_json(),
                "erasers": [
                    {
                        "concept": e.concept,
                        "id": eraser_id(e),
                        "layer": e.layer,
                        "layer_name": e.layer_name,
                        "gamma": g,
                    }
                    for e, g in erasers
                ],
                "wall_s": round(seconds, 3),
                "versions": library_versions(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
        result = Clip(video, meta, clip, seconds, False)
        with self._lock:
            self._items[key] = result
            while len(self._items) > self.max_items:
                _, old = self._items.popitem(last=False)
                shutil.rmtree(old.video.parent, ignore_errors=True)
        return result
