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
* :mod:`~clear_core.generation.preview` — the clip cache behind the app's preview;
* :mod:`~clear_core.generation.sweep` — a γ sweep with the blocks below the eraser run once.

Which text encoder an eraser edits and how that encoder is run come from clear_core/profiles.py.
"""

from clear_core.lazy import lazy_names

_WHERE = {
    "Conditioning": "clear_core.generation.conditioning",
    "GridResult": "clear_core.generation.grid",
    "Latents": "clear_core.generation.render",
    "RenderSettings": "clear_core.generation.render",
    "Variant": "clear_core.generation.variants",
    "call_copy": "clear_core.generation.render",
    "check_erasers": "clear_core.generation.grid",
    "check_out": "clear_core.generation.grid",
    "describe": "clear_core.generation.loading",
    "encode": "clear_core.generation.conditioning",
    "generate_grid": "clear_core.generation.grid",
    "load_pipeline": "clear_core.generation.loading",
    "plan_variants": "clear_core.generation.variants",
    "prepare_steering": "clear_core.generation.grid",
}


# ``render`` (the function) is not re-exported: importing the submodule clear_core.generation.render
# sets the package attribute ``render`` to the module, so the name would change meaning depending on
# what was imported first. Use ``from clear_core.generation.render import render``.


__getattr__ = lazy_names(__name__, _WHERE)


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
]
