"""Video (and image) generation with erased text conditioning, on real diffusers pipelines.

One idea a module:

* :mod:`~clear_core.generation.loading` — load a pipeline (HF id, folder, ``testbed``, ``tiny-*``),
  dtype / device / offload / VAE tiling, and what each paper model needs;
* :mod:`~clear_core.generation.conditioning` — the pipeline's own ``encode_prompt`` inside the eraser,
  giving exactly the embeddings the denoiser reads (negative prompt erased or not);
* :mod:`~clear_core.generation.render` — one call: a private scheduler per call (thread safety), the
  same initial latents for every variant of a seed, per-step progress;
* :mod:`~clear_core.generation.variants` — original, CLEAR at each γ, NegPrompt and steering baselines;
* :mod:`~clear_core.generation.grid` — prompts × seeds × variants into mp4s, contact sheets, JSON;
* :mod:`~clear_core.generation.media` — mp4 / PNG / JSON writing (atomic);
* :mod:`~clear_core.generation.tiny` — tiny random Wan / CogVideoX / SD pipelines for tests;
* :mod:`~clear_core.generation.backend` — the shared pipeline behind the app's preview.

Which text encoder an eraser edits and how that encoder is run come from clear_core/profiles.py.
"""

from clear_core.generation.conditioning import Conditioning, encode
from clear_core.generation.grid import GridResult, check_erasers, check_out, generate_grid, prepare_steering
from clear_core.generation.loading import describe, load_pipeline
from clear_core.generation.render import Latents, RenderSettings, call_copy, render
from clear_core.generation.variants import Variant, plan_variants

__all__ = [
    "Conditioning",
    "GridResult",
    "Latents",
    "RenderSettings",
    "Variant",
    "call_copy",
    "check_erasers",
    "check_out",
    "describe",
    "encode",
    "generate_grid",
    "load_pipeline",
    "plan_variants",
    "prepare_steering",
    "render",
]
