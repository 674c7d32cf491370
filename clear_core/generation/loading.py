"""Load a diffusers pipeline by Hugging Face id or local folder, with settings that fit one GPU.

What the paper's models need (diffusers 0.42; memory from the model cards, not measured here — no
GPU weights can be had on the machines this project is built on):

=============================  ==============  =====================================================
model                          text encoder    on one GPU
=============================  ==============  =====================================================
Wan2.2-TI2V-5B-Diffusers       UMT5-XXL        bf16 ~ 24 GB with ``--offload`` (model CPU offload)
Wan2.1-T2V-1.3B-Diffusers      UMT5-XXL        bf16 fits 24 GB; the UMT5 alone is ~ 11 GB in bf16
CogVideoX-2b / -5b             T5-XXL          bf16 (5b) / fp16 (2b transformer); ``--offload`` and
                                               ``--vae-tiling`` for 24 GB
LTX-Video, Flux, SD/SDXL       T5 / CLIP       bf16 (CLIP models also fp16)
=============================  ==============  =====================================================

dtype: bfloat16 by default on CUDA — T5's activations overflow in float16 (the known T5 fp16
problem), so fp16 is never the default — and float32 on the CPU. ``offload`` uses accelerate's
``enable_model_cpu_offload`` (each component moves to the GPU only while it runs); ``vae_tiling`` /
``vae_slicing`` decode the video in tiles / one frame batch at a time.

``"testbed"`` loads this project's CPU text-to-video testbed (clear_core/testbed), and ``tiny-wan`` /
``tiny-cogvideox`` / ``tiny-sd`` the tiny random pipelines of :mod:`clear_core.generation.tiny`.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import torch

from clear_core.generation.tiny import TINY, tiny_pipeline
from clear_core.profiles import pipeline_encoding

__all__ = ["DTYPES", "describe", "load_pipeline", "resolve_dtype"]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(dtype: str | None, device: str) -> torch.dtype:
    """``dtype`` by name; None/"auto": bfloat16 on CUDA, float32 elsewhere."""
    if dtype in (None, "auto"):
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def resolve_device(device: str | None) -> str:
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but no CUDA GPU is available here")
    if not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise ValueError(f"unknown device {device!r}; expected auto, cpu, cuda or cuda:N")
    return device


def _testbed() -> Any:
    try:
        from clear_core.testbed.pipeline import load_testbed_pipeline
    except ImportError as err:
        raise ValueError(f"the CPU testbed is not available in this installation ({err})") from None
    return load_testbed_pipeline()


def load_pipeline(
    name: str,
    *,
    dtype: str | None = None,
    device: str | None = None,
    offload: bool = False,
    vae_tiling: bool = False,
    vae_slicing: bool = False,
    revision: str | None = None,
) -> Any:
    """A ready pipeline: by HF id, a local folder, ``testbed`` or a ``tiny-*`` name (see above).

    Refuses, with one line naming the pipeline, what cannot be loaded and a pipeline with no text
    encoder (nothing to erase).
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError("no pipeline given; use 'testbed', a Hugging Face id or a local folder")
    name = name.strip()
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    if name == "testbed":
        pipe = _testbed()
    elif name in TINY:
        pipe = tiny_pipeline(name)
    else:
        pipe = _from_pretrained(name, torch_dtype, revision)
    if getattr(pipe, "text_encoder", None) is None and getattr(pipe, "text_encoder_2", None) is None:
        raise ValueError(
            f"pipeline {name!r} ({type(pipe).__name__}) has no text encoder: there is nothing to erase"
        )
    if name in TINY or name == "testbed":
        pipe.to(device)
    elif offload:
        if not device.startswith("cuda"):
            raise ValueError("--offload moves components to a GPU while they run; it needs a CUDA device")
        pipe.enable_model_cpu_offload()
    else:
        pipe.to(device)
    vae = getattr(pipe, "vae", None)
    if vae_tiling:
        if vae is None or not hasattr(vae, "enable_tiling"):
            raise ValueError(f"{type(pipe).__name__} has no VAE that supports tiling")
        vae.enable_tiling()
    if vae_slicing:
        if vae is None or not hasattr(vae, "enable_slicing"):
            raise ValueError(f"{type(pipe).__name__} has no VAE that supports slicing")
        vae.enable_slicing()
    pipe.set_progress_bar_config(disable=True)
    vars(pipe).setdefault("_clear_source", name)
    return pipe


def _from_pretrained(name: str, torch_dtype: torch.dtype, revision: str | None) -> Any:
    from diffusers import DiffusionPipeline

    path = Path(name)
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"{name}: expected a pipeline folder (with model_index.json), got a file")
        if not (path / "model_index.json").is_file():
            raise ValueError(f"{name}: not a diffusers pipeline folder (no model_index.json)")
    kwargs = {"revision": revision} if revision and not path.exists() else {}
    try:
        return DiffusionPipeline.from_pretrained(
            str(path) if path.exists() else name, torch_dtype=torch_dtype, **kwargs
        )
    except (OSError, ValueError) as err:
        hint = "" if path.exists() else " (no network? download it elsewhere and pass the local folder)"
        raise ValueError(f"could not load pipeline {name!r}{hint}: {str(err).splitlines()[0]}") from None


def describe(pipe: Any) -> dict:
    """What a video's JSON records about the pipeline."""
    known = pipeline_encoding(pipe)
    config = getattr(pipe, "config", None)
    source = vars(pipe).get("_clear_source") or getattr(config, "_name_or_path", "") or type(pipe).__name__
    component = known.component if known else "text_encoder"
    encoder = getattr(pipe, component, None)
    dtype = getattr(encoder, "dtype", None)
    info = {
        "source": source,
        "class": type(pipe).__name__,
        "family": known.family if known else "unknown",
        "text_encoder": component,
        "encoding": known.profile.to_json() if known else None,
        "dtype": str(
            getattr(getattr(pipe, "transformer", None) or getattr(pipe, "unet", None), "dtype", dtype)
        ),
        "text_encoder_dtype": str(dtype),
        "device": str(getattr(pipe, "_execution_device", "cpu")),
    }
    folder = Path(source)
    index = folder / "model_index.json"
    if index.is_file():
        with contextlib.suppress(OSError, ValueError):
            info["diffusers_version"] = json.loads(index.read_text()).get("_diffusers_version")
    commit = getattr(config, "_commit_hash", None)
    if commit:
        info["revision"] = commit
    return info
