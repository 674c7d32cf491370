"""One pipeline call: its own scheduler, shared initial latents, per-step progress, frames out.

**Thread safety.** A diffusers pipeline object is not re-entrant: ``__call__`` keeps its step index on
the scheduler and its guidance scale, timestep and interrupt flag on the pipeline itself, so two
threads calling one shared ``WanPipeline`` crash (``IndexError`` in
``FlowMatchEulerDiscreteScheduler.step``). :func:`call_copy` gives every call a shallow copy of the
pipeline — the same weights, a private scheduler and private run state. That is not enough on its
own: some components keep caches on themselves (Wan's VAE stores its causal-convolution feature
cache on the module during a decode — measured: two threads with private schedulers still gave
different frames from one thread). So the denoising call of one pipeline runs one at a time, behind
a lock per pipeline (:func:`pipeline_lock`; the app shows waiting visitors their place in the queue),
while encoding with erasers stays concurrent: hooks are context-local (clear_core/hooks.py).

**Same initial latents.** The original and every erased variant of a (prompt, seed) must start from
the same noise so that any difference in the frames comes from the eraser alone. The first call draws
the latents with the pipeline's own ``prepare_latents`` (whatever shape, packing and scaling its
family uses) from a generator seeded with ``seed``; :class:`Latents` records them, and later calls
replay that exact tensor. Every call also gets a fresh generator with the same seed, so a stochastic
scheduler draws the same noise too.
"""

from __future__ import annotations

import copy
import inspect
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

from clear_core import limits

__all__ = ["Latents", "Render", "RenderSettings", "call_copy", "pipeline_lock", "render"]

StepProgress = Callable[[int, int], None]


@dataclass
class RenderSettings:
    """Everything that decides a render besides the prompt, the eraser and the seed."""

    steps: int = 10
    """Denoising steps."""
    frames: int | None = None
    """Frames of a video pipeline (None: the pipeline's default)."""
    height: int | None = None
    """Pixels (None: the pipeline's default)."""
    width: int | None = None
    """Pixels (None: the pipeline's default)."""
    guidance: float | None = None
    """Classifier-free guidance scale (None: the pipeline's default)."""
    max_sequence_length: int | None = None
    """Text length (None: the pipeline's own, from clear_core/profiles.py)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Further keyword arguments passed to the pipeline call as they are."""

    def __post_init__(self) -> None:
        caps = {
            "steps": limits.MAX_STEPS,
            "frames": limits.MAX_FRAMES,
            "height": limits.MAX_SIDE,
            "width": limits.MAX_SIDE,
            "max_sequence_length": limits.MAX_SEQUENCE_LENGTH,
        }  # clear_core/limits.py: the same caps for the CLI, the app and the API
        for name, cap in caps.items():
            value = getattr(self, name)
            if value is None and name != "steps":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer ≥ 1, got {value!r}")
            if value > cap:
                raise ValueError(f"{name} must be ≤ {cap:,}, got {value:,}")
        if self.guidance is not None and not (
            isinstance(self.guidance, (int, float)) and np.isfinite(self.guidance) and self.guidance >= 0
        ):
            raise ValueError(f"guidance must be a finite number ≥ 0, got {self.guidance!r}")
        self.check_memory()

    def size(self, pipe: Any = None) -> tuple[int | None, int | None, int | None]:
        """(frames, height, width): the settings', else the defaults of ``pipe.__call__`` when it names
        them as integers (None where neither says)."""
        params = inspect.signature(pipe.__call__).parameters if pipe is not None else {}

        def default(name: str) -> int | None:
            value = params[name].default if name in params else None
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        frames = (
            self.frames
            or default("num_frames")
            or (1 if pipe is not None and "num_frames" not in params else None)
        )
        return frames, self.height or default("height"), self.width or default("width")

    def check_memory(self, clips: int = 1, pipe: Any = None) -> None:
        """Refuse, before any render, a video whose float frames (``clips`` held at once) would not fit the
        memory budget (clear_core/limits.py); sizes left to the pipeline count when ``pipe`` names them."""
        frames, height, width = self.size(pipe)
        if frames and height and width:
            limits.check_video_size(frames, height, width, clips)

    def call_kwargs(self, pipe: Any) -> dict[str, Any]:
        """The settings as keyword arguments the pipeline accepts (unsupported ones are refused)."""
        params = inspect.signature(pipe.__call__).parameters
        wanted = {
            "num_inference_steps": self.steps,
            "num_frames": self.frames,
            "height": self.height,
            "width": self.width,
            "guidance_scale": self.guidance,
            "max_sequence_length": self.max_sequence_length,
        }
        out = {}
        for key, value in wanted.items():
            if value is None:
                continue
            if key not in params:
                if key == "num_frames" and value == 1:
                    continue  # an image pipeline: one frame is what it makes
                raise ValueError(f"{type(pipe).__name__} does not take {key!r}")
            out[key] = value
        return {**out, **self.extra}

    def to_json(self) -> dict:
        return {
            "steps": self.steps,
            "frames": self.frames,
            "height": self.height,
            "width": self.width,
            "guidance": self.guidance,
            "max_sequence_length": self.max_sequence_length,
            **({"extra": {k: repr(v) for k, v in self.extra.items()}} if self.extra else {}),
        }


class Render(NamedTuple):
    frames: np.ndarray
    """(batch, frames, height, width, 3) float32 in [0, 1]."""
    seconds: float
    """Wall time of the call."""


class Latents:
    """The initial latents of one (prompt batch, seed): drawn by the first call, replayed after.

    ``detached``: the first call draws with a *copy* of its generator and leaves its own generator
    untouched — what a replaying call finds. A call that renders a later variant on its own (one task
    of a fan-out, clear_core/fanout) then gets the very latents and scheduler noise that the grid gives
    it after the first variant drew.
    """

    def __init__(self, seed: int, detached: bool = False) -> None:
        self.seed = int(seed)
        self.detached = detached
        self.value: Any = None

    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)

    def hook(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """A ``prepare_latents`` that records the first result and returns copies of it afterwards."""

        def prepare_latents(*args: Any, **kwargs: Any) -> Any:
            if self.value is None:
                if self.detached:
                    args, kwargs = _with_generator_copy(original, args, kwargs)
                self.value = clone_output(original(*args, **kwargs))
            return clone_output(self.value)

        return prepare_latents


def _generator_copy(generator: Any) -> Any:
    if isinstance(generator, torch.Generator):
        copy_ = torch.Generator(device=generator.device)
        copy_.set_state(generator.get_state())
        return copy_
    if isinstance(generator, list):
        return [_generator_copy(g) for g in generator]
    return generator


def _with_generator_copy(fn: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """``args``/``kwargs`` of a call to ``fn`` with its ``generator`` argument replaced by a copy."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):  # no inspectable signature: nothing to replace
        return args, kwargs
    if bound.arguments.get("generator") is not None:
        bound.arguments["generator"] = _generator_copy(bound.arguments["generator"])
    return bound.args, bound.kwargs


def clone_output(value: Any) -> Any:
    """A copy of a module output: tensors cloned, inside tuples and lists too."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, (tuple, list)):
        return type(value)(clone_output(v) for v in value)
    return value


_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def pipeline_lock(pipe: Any) -> threading.Lock:
    """The lock that serialises denoising calls on ``pipe`` (one per pipeline object)."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(pipe)
        if lock is None:
            lock = _LOCKS[pipe] = threading.Lock()
        return lock


def call_copy(pipe: Any) -> Any:
    """A shallow copy of ``pipe`` with its own scheduler and run state (same weights; see above)."""
    clone = copy.copy(pipe)
    vars(clone)["scheduler"] = copy.deepcopy(pipe.scheduler)
    clone.set_progress_bar_config(disable=True)
    return clone


def _frames(output: Any) -> np.ndarray:
    """(batch, frames, H, W, 3) float32 from a pipeline output (video ``frames`` or ``images``)."""
    frames = getattr(output, "frames", None)
    if frames is None:
        images = getattr(output, "images", None)
        if images is None:
            raise ValueError(f"the pipeline returned {type(output).__name__} without frames or images")
        frames = np.asarray(images)[:, None]
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 5 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (batch, frames, H, W, 3), got {frames.shape}")
    return frames


def render(
    pipe: Any,
    call: dict[str, Any],
    settings: RenderSettings,
    latents: Latents,
    progress: StepProgress | None = None,
) -> Render:
    """Run the pipeline once with ``call`` (prompts or embeddings) on a private copy of ``pipe``."""
    clone = call_copy(pipe)
    vars(clone)["prepare_latents"] = latents.hook(pipe.prepare_latents)
    kwargs = {**settings.call_kwargs(pipe), **call, "generator": latents.generator(), "output_type": "np"}
    params = inspect.signature(pipe.__call__).parameters
    if progress is not None:
        total = settings.steps
        if "callback_on_step_end" in params:

            def on_step(_pipe: Any, step: int, _t: Any, tensors: dict) -> dict:
                progress(step + 1, total)
                return tensors

            kwargs["callback_on_step_end"] = on_step
        elif "callback" in params:  # older pipelines (TextToVideoSD)
            kwargs["callback"] = lambda step, _t, _x: progress(step + 1, total)
            kwargs["callback_steps"] = 1
    with pipeline_lock(pipe), torch.no_grad():
        start = time.perf_counter()
        output = clone(**kwargs)
    return Render(_frames(output), time.perf_counter() - start)
