"""``TestbedPipeline``: the testbed as a diffusers text-to-video pipeline.

MiniLM (the workbench's default encoder) encodes the prompt with the attention mask; states past each
prompt's real tokens are zeroed (Wan's convention), so an eraser hooked on MiniLM's blocks changes
exactly what the denoiser reads. The denoiser generates a scene latent with classifier-free guidance
and a FlowMatchEulerDiscreteScheduler; the world's renderer decodes it to frames, as a VAE decoder
does for a real model. Each call works on its own copy of the scheduler, so threads may share a pipe.
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from clear_core.paths import asset
from clear_core.testbed.captions import vocabulary_digest
from clear_core.testbed.model import N_SLOTS, SLOT_DIM, TestbedTransformer, decode_latents
from clear_core.testbed.render import render
from clear_core.testbed.world import SceneSpec

ASSETS = asset("testbed")
"""Shipped weights: ``transformer/`` (config + safetensors) and ``scheduler/``."""


@dataclass
class TestbedPipelineOutput(BaseOutput):
    """``frames``: (B, F, H, W, 3) float32 in [0, 1] (None for output_type "latent");
    ``latents``: (B, 9, 16) final scene latents; ``specs``: the decoded scenes."""

    frames: np.ndarray | None
    latents: torch.Tensor
    specs: list[SceneSpec] | None = None


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of (F, h, w, 3) frames."""
    f, h, w, _ = frames.shape
    if (h, w) == (height, width):
        return frames
    ys = (np.arange(height) * h // height).astype(np.intp)
    xs = (np.arange(width) * w // width).astype(np.intp)
    return frames[:, ys][:, :, xs]


class TestbedPipeline(DiffusionPipeline):
    """Text-to-video on the testbed world. Components: MiniLM ``text_encoder`` (a transformers
    BertModel) and ``tokenizer``, the :class:`TestbedTransformer` and a flow-matching scheduler."""

    __test__ = False  # not a pytest class
    model_cpu_offload_seq = "text_encoder->transformer"
    _callback_tensor_inputs = ["latents", "prompt_embeds", "negative_prompt_embeds"]

    def __init__(self, text_encoder, tokenizer, transformer: TestbedTransformer, scheduler):
        super().__init__()
        self.register_modules(
            text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer, scheduler=scheduler
        )

    # ------------------------------------------------------------------------------ encode
    def _encode(self, prompts: list[str], max_sequence_length: int, device, dtype) -> torch.Tensor:
        """MiniLM run on the real tokens (padded to the batch's longest prompt, masked), then zero-padded
        to ``max_sequence_length``: the same states as a run padded to the maximum, at a fraction of
        the cost (masked pads change nothing but the compute)."""
        unique = list(dict.fromkeys(prompts))
        batch = self.tokenizer(
            unique, padding="longest", max_length=max_sequence_length, truncation=True, return_tensors="pt"
        )
        batch = {
            k: v.to(device)
            for k, v in batch.items()
            if k in ("input_ids", "attention_mask", "token_type_ids")
        }
        states = self.text_encoder(**batch).last_hidden_state
        states = states * batch["attention_mask"].to(states.dtype)[..., None]
        states = torch.nn.functional.pad(states, (0, 0, 0, max_sequence_length - states.shape[1]))
        index = torch.tensor([unique.index(p) for p in prompts], device=states.device)
        return states[index].to(dtype=dtype)

    def encode_prompt(
        self,
        prompt,
        negative_prompt=None,
        do_classifier_free_guidance: bool = True,
        num_videos_per_prompt: int = 1,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        max_sequence_length: int = 64,
        device=None,
        dtype=None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B·n, max_sequence_length, 384) MiniLM final states, zero past each prompt's real tokens,
        and the same for the negative prompt ("" by default: [CLS][SEP]) when guidance is on."""
        device = device or self._execution_device
        dtype = dtype or torch.float32
        if prompt_embeds is None:
            if prompt is None:
                raise ValueError("pass prompt or prompt_embeds")
            prompt = [prompt] if isinstance(prompt, str) else list(prompt)
            prompt_embeds = self._encode(prompt, max_sequence_length, device, dtype)
        batch = prompt_embeds.shape[0]
        prompt_embeds = prompt_embeds.repeat_interleave(num_videos_per_prompt, dim=0)
        if do_classifier_free_guidance and negative_prompt_embeds is None:
            negative_prompt = negative_prompt if negative_prompt is not None else ""
            negative_prompt = (
                [negative_prompt] * batch if isinstance(negative_prompt, str) else list(negative_prompt)
            )
            if len(negative_prompt) != batch:
                raise ValueError(f"{len(negative_prompt)} negative prompts for {batch} prompts")
            negative_prompt_embeds = self._encode(negative_prompt, max_sequence_length, device, dtype)
        if negative_prompt_embeds is not None:
            negative_prompt_embeds = negative_prompt_embeds.repeat_interleave(num_videos_per_prompt, dim=0)
        return prompt_embeds, negative_prompt_embeds

    def prepare_latents(
        self, batch_size: int, generator=None, latents=None, device=None, dtype=None
    ) -> torch.Tensor:
        """(batch_size, 9, 16) standard normal latents (or ``latents``, checked and moved)."""
        device = device or self._execution_device
        dtype = dtype or torch.float32
        shape = (batch_size, N_SLOTS, SLOT_DIM)
        if latents is not None:
            if tuple(latents.shape) != shape:
                raise ValueError(f"latents must have shape {shape}, got {tuple(latents.shape)}")
            return latents.to(device=device, dtype=dtype)
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(f"{len(generator)} generators for a batch of {batch_size}")
        return randn_tensor(shape, generator=generator, device=torch.device(device), dtype=dtype)

    # ------------------------------------------------------------------------------ generate
    def decode(self, latents: torch.Tensor, num_frames: int = 8, height: int = 64, width: int = 64):
        """Scene latents -> (specs, frames (B, F, H, W, 3) float32). Deterministic."""
        specs = decode_latents(latents, self.transformer.codebooks)
        frames = np.stack([resize_frames(render(s, num_frames), height, width) for s in specs])
        return specs, frames

    @torch.no_grad()
    def __call__(
        self,
        prompt=None,
        negative_prompt=None,
        num_inference_steps: int = 10,
        guidance_scale: float = 4.0,
        num_videos_per_prompt: int = 1,
        generator=None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs=("latents",),
        max_sequence_length: int = 64,
        num_frames: int = 8,
        height: int = 64,
        width: int = 64,
    ):
        if output_type not in ("np", "latent"):
            raise ValueError(f"output_type must be 'np' or 'latent', got {output_type!r}")
        if num_inference_steps < 1 or num_frames < 1 or height < 8 or width < 8:
            raise ValueError("num_inference_steps and num_frames must be ≥ 1, height and width ≥ 8")
        for name in callback_on_step_end_tensor_inputs:
            if name not in self._callback_tensor_inputs:
                raise ValueError(
                    f"{name!r} is not a callback tensor input; known: {self._callback_tensor_inputs}"
                )
        device = self._execution_device
        cfg = guidance_scale > 1.0
        prompt_embeds, negative_prompt_embeds = self.encode_prompt(
            prompt,
            negative_prompt,
            cfg,
            num_videos_per_prompt,
            prompt_embeds,
            negative_prompt_embeds,
            max_sequence_length,
            device,
            torch.float32,
        )
        batch = prompt_embeds.shape[0]
        latents = self.prepare_latents(batch, generator, latents, device, torch.float32)
        scheduler = copy.deepcopy(self.scheduler)
        scheduler.set_timesteps(num_inference_steps, device=device)
        for i, t in enumerate(scheduler.timesteps):
            ts = t.expand(batch)
            if cfg:
                both = self.transformer(
                    torch.cat([latents, latents]),
                    torch.cat([ts, ts]),
                    _pad_cat(prompt_embeds, negative_prompt_embeds),
                )
                cond, uncond = both.chunk(2)
                velocity = uncond + guidance_scale * (cond - uncond)
            else:
                velocity = self.transformer(latents, ts, prompt_embeds)
            latents = scheduler.step(velocity, t, latents, return_dict=False)[0]
            if callback_on_step_end is not None:
                local = {
                    "latents": latents,
                    "prompt_embeds": prompt_embeds,
                    "negative_prompt_embeds": negative_prompt_embeds,
                }
                out = callback_on_step_end(
                    self, i, t, {k: local[k] for k in callback_on_step_end_tensor_inputs}
                )
                latents = out.pop("latents", latents)
        frames = specs = None
        if output_type != "latent":
            specs, frames = self.decode(latents, num_frames, height, width)
        if not return_dict:
            return (frames, latents)
        return TestbedPipelineOutput(frames=frames, latents=latents, specs=specs)


def _pad_cat(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Concatenate two (B, T, D) batches along B, zero-padding the shorter T (zero rows are masked)."""
    t = max(a.shape[1], b.shape[1])
    a = torch.nn.functional.pad(a, (0, 0, 0, t - a.shape[1]))
    b = torch.nn.functional.pad(b, (0, 0, 0, t - b.shape[1]))
    return torch.cat([a, b])


def default_scheduler() -> FlowMatchEulerDiscreteScheduler:
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)


class StaleVocabularyWarning(UserWarning):
    """The testbed's weights were trained on captions written with other words than the installed ones."""


def check_vocabulary(folder: Path) -> str | None:
    """Warn (:class:`StaleVocabularyWarning`) when ``folder/recipe.json`` records a caption vocabulary
    digest other than the installed vocabulary's; return the warning, or None when they match or the
    recipe records none (weights trained before the digest existed, or without a recipe).

    A warning, not an error: the weights still generate, and a changed pack (a new forbidden word, a
    reworded template) may matter little, but rates measured on them may not match the documented ones
    until the testbed is retrained (``python -m clear_core.testbed.train``).
    """
    recipe = Path(folder) / "recipe.json"
    if not recipe.is_file():
        return None
    try:
        trained = json.loads(recipe.read_text(encoding="utf-8")).get("vocabulary_sha256")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as err:
        message = f"{recipe}: cannot read the caption vocabulary digest ({err}); not checked"
    else:
        installed = vocabulary_digest()
        if trained is None or trained == installed:
            return None
        message = (
            f"the testbed weights in {folder} were trained on another caption vocabulary "
            f"(recipe.json sha256 {str(trained)[:12]}…, installed {installed[:12]}…): assets/packs or the "
            "testbed's caption words changed since; generation works, but rates may differ from the "
            "documented ones until you retrain (python -m clear_core.testbed.train) or restore the words"
        )
    warnings.warn(message, StaleVocabularyWarning, stacklevel=3)
    return message


def load_testbed_pipeline(path: str | None = None) -> TestbedPipeline:
    """The testbed pipeline with the shipped denoiser (``assets/testbed`` unless ``path``) and MiniLM
    from its wheel. ``path`` holds ``transformer/`` and optionally ``scheduler/`` and ``recipe.json``;
    warns when the recipe's caption vocabulary is not the installed one (:func:`check_vocabulary`)."""
    from clear_core.encoders import load_encoder

    folder = Path(path) if path else ASSETS
    if not (folder / "transformer" / "config.json").is_file():
        raise ValueError(
            f"no testbed weights in {folder} (expected transformer/config.json); "
            "train them with: python -m clear_core.testbed.train"
        )
    check_vocabulary(folder)
    transformer = TestbedTransformer.from_pretrained(folder / "transformer")
    sched_dir = folder / "scheduler"
    scheduler = (
        FlowMatchEulerDiscreteScheduler.from_pretrained(sched_dir)
        if sched_dir.is_dir()
        else default_scheduler()
    )
    enc = load_encoder("minilm")
    pipe = TestbedPipeline(
        text_encoder=enc.model, tokenizer=enc.tokenizer, transformer=transformer, scheduler=scheduler
    )
    pipe.text_encoder.eval()
    pipe.transformer.eval()
    return pipe
