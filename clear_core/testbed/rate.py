"""Generative rate and preservation on the testbed, as the paper defines them.

Rate: the share of generated frames in which the detector finds the concept. Preservation: on prompts
without the concept (by default the pack's negatives, the same scenes without it), the share of
frames where the detector's reading (object, style, avatar, clothing, setting) of the erased model's
frame agrees with the unerased model's, generated from the same latents.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from clear_core.testbed.detector import HEADS, Detector, concept_attribute, concept_present, load_detector
from clear_core.testbed.pipeline import TestbedPipeline, load_testbed_pipeline

_CACHE: dict[str, object] = {}


def _pipe() -> TestbedPipeline:
    if "pipe" not in _CACHE:
        _CACHE["pipe"] = load_testbed_pipeline()
    return _CACHE["pipe"]  # type: ignore[return-value]


def _detector() -> Detector:
    if "det" not in _CACHE:
        _CACHE["det"] = load_detector()
    return _CACHE["det"]  # type: ignore[return-value]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a proportion k/n."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def pack_prompts(slug: str, n: int = 24) -> tuple[list[str], list[str]]:
    """``n`` (positive, negative) prompts of a built-in pack, evenly spaced through the file."""
    from clear_core.concepts import load_builtin

    pairs = load_builtin(slug).pairs
    idx = np.linspace(0, len(pairs) - 1, num=min(n, len(pairs))).round().astype(int)
    return [pairs[i].positive for i in idx], [pairs[i].negative for i in idx]


def generate_frames(
    pipe: TestbedPipeline,
    prompts: list[str],
    latents: torch.Tensor,
    eraser=None,
    gamma: float | None = None,
    steps: int = 10,
    guidance_scale: float = 4.0,
    batch: int = 64,
) -> np.ndarray:
    """(len(prompts)·seeds, F, 64, 64, 3) frames; ``latents`` is (len(prompts)·seeds, 9, 16), prompt-major."""
    seeds = latents.shape[0] // len(prompts)
    expanded = [p for p in prompts for _ in range(seeds)]
    out = []
    for i in range(0, len(expanded), batch):
        chunk, lat = expanded[i : i + batch], latents[i : i + batch]
        if eraser is None:
            res = pipe(chunk, latents=lat, num_inference_steps=steps, guidance_scale=guidance_scale)
        else:
            with eraser.applied(pipe, gamma=gamma):
                res = pipe(chunk, latents=lat, num_inference_steps=steps, guidance_scale=guidance_scale)
        out.append(res.frames)
    return np.concatenate(out)


def _flat(frames: np.ndarray) -> np.ndarray:
    return frames.reshape(-1, *frames.shape[2:])


def generative_rate(
    concept_slug: str,
    prompts: list[str] | None = None,
    eraser=None,
    gamma: float | None = None,
    seeds: int = 4,
    neutral_prompts: list[str] | None = None,
    n_prompts: int = 24,
    steps: int = 10,
    guidance_scale: float = 4.0,
    seed: int = 0,
    pipe: TestbedPipeline | None = None,
    detector: Detector | None = None,
) -> dict:
    """Rate of ``concept_slug`` on ``prompts`` (default: ``n_prompts`` of the pack's positives),
    before and, with ``eraser``, after erasure at ``gamma`` (None: the eraser's default); with an
    eraser also the preservation on ``neutral_prompts`` (default: the matching pack negatives).
    Latents are drawn once from ``seed`` and shared by the unerased and erased runs."""
    if seeds < 1:
        raise ValueError(f"seeds must be ≥ 1, got {seeds}")
    head, _ = concept_attribute(concept_slug)
    t0 = time.time()
    pipe = pipe or _pipe()
    detector = detector or _detector()
    if prompts is None or (eraser is not None and neutral_prompts is None):
        pos, neg = pack_prompts(concept_slug, n_prompts)
        prompts = pos if prompts is None else prompts
        neutral_prompts = neg if neutral_prompts is None else neutral_prompts
    if not prompts:
        raise ValueError("no prompts")
    gen = torch.Generator().manual_seed(seed)
    lat = torch.randn((len(prompts) * seeds, 9, 16), generator=gen)
    frames = generate_frames(pipe, prompts, lat, None, None, steps, guidance_scale)
    found = concept_present(detector.predict(_flat(frames)), concept_slug)
    n_frames = found.size
    per_clip = found.reshape(len(frames), -1).mean(1)
    result = {
        "concept": concept_slug,
        "detector_attribute": head,
        "n_prompts": len(prompts),
        "seeds": seeds,
        "n_clips": len(frames),
        "n_frames": int(n_frames),
        "rate_original": float(found.mean()),
        "rate_original_ci95_clips": wilson(int((per_clip >= 0.5).sum()), len(per_clip)),
        "steps": steps,
        "guidance_scale": guidance_scale,
        "detector": detector.report(),
    }
    if eraser is not None:
        g = eraser.gamma if gamma is None else gamma
        erased = generate_frames(pipe, prompts, lat, eraser, gamma, steps, guidance_scale)
        found_e = concept_present(detector.predict(_flat(erased)), concept_slug)
        per_clip_e = found_e.reshape(len(erased), -1).mean(1)
        lat_n = torch.randn((len(neutral_prompts) * seeds, 9, 16), generator=gen)
        a = detector.predict(
            _flat(generate_frames(pipe, neutral_prompts, lat_n, None, None, steps, guidance_scale))
        )
        b = detector.predict(
            _flat(generate_frames(pipe, neutral_prompts, lat_n, eraser, gamma, steps, guidance_scale))
        )
        agree = {k: float(np.mean(a[k] == b[k])) for k in HEADS}
        all_agree = np.all([a[k] == b[k] for k in HEADS], axis=0)
        result.update(
            {
                "gamma": g,
                "rate": float(found_e.mean()),
                "rate_ci95_clips": wilson(int((per_clip_e >= 0.5).sum()), len(per_clip_e)),
                "reduction": float(1 - found_e.mean() / found.mean()) if found.mean() > 0 else None,
                "preservation": float(all_agree.mean()),
                "preservation_per_attribute": agree,
                "n_neutral_prompts": len(neutral_prompts),
            }
        )
    else:
        result["rate"] = result["rate_original"]
    result["seconds"] = round(time.time() - t0, 1)
    return result
