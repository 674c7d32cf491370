"""Generative rate and preservation on the testbed, as the paper defines them.

Rate: the share of generated frames in which the detector finds the concept. Preservation: on prompts
without the concept (by default the pack's negatives, the same scenes without it), the share of
frames where the detector's reading (object, style, avatar, clothing, setting) of the erased model's
frame agrees with the unerased model's, generated from the same latents.

With an eraser that records its split (``eraser.json`` ``splits``, clear_core/splits.py) the pack
prompts come from its **held-out** pairs, which the search, masks and calibration never saw; the
result names the source. :func:`concept_free_captions` are prompts apart from the packs altogether:
testbed captions of held-out (object, setting, style) combinations in held-out templates that name
none of the 21 concepts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from clear_core.testbed.detector import HEADS, Detector, concept_attribute, concept_present, load_detector
from clear_core.testbed.pipeline import TestbedPipeline, load_testbed_pipeline

if TYPE_CHECKING:
    from clear_core.erasure import Eraser

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

    return _spaced(load_builtin(slug).pairs, n)


def _spaced(pairs: list, n: int) -> tuple[list[str], list[str]]:
    idx = np.linspace(0, len(pairs) - 1, num=min(n, len(pairs))).round().astype(int)
    return [pairs[i].positive for i in idx], [pairs[i].negative for i in idx]


def heldout_pack_prompts(slug: str, erasers: list, n: int = 24) -> tuple[list[str], list[str], str]:
    """(positives, negatives, source): ``n`` evenly spaced pairs of the pack that no eraser in
    ``erasers`` of this concept fitted on (its recorded split, checked by digest), or of all pairs when
    none records one."""
    from clear_core.concepts import load_builtin
    from clear_core.splits import prompts_digest, split_pairs

    concept = load_builtin(slug)
    records = [e.meta.get("splits", {}).get("pairs") for e in erasers if e.concept == slug]
    records = [r for r in records if isinstance(r, dict) and r.get("n_held_out")]
    if not records:
        pos, neg = _spaced(concept.pairs, n)
        return pos, neg, "pack pairs, all (no eraser of this concept records a held-out split)"
    split = split_pairs(concept, float(records[0]["share"]))
    if prompts_digest(split.held_out.positives) != records[0].get("held_out_digest"):
        raise ValueError(
            f"the eraser for {slug!r} was fitted on other pairs than the built-in pack's (its held-out "
            "digest differs): give --prompts and --neutral-prompts it never saw"
        )
    pos, neg = _spaced(split.held_out.pairs, n)
    return (
        pos,
        neg,
        f"pack pairs held out of the eraser's fit ({len(split.held_out)} held out, {len(pos)} used)",
    )


def concept_free_captions(n: int = 48, seed: int = 0) -> list[str]:
    """``n`` testbed captions with none of the 21 concepts: held-out combinations written with the
    held-out templates (never trained on), no paper object, no artist style, no avatar, clothed."""
    from clear_core.testbed.captions import caption, sample_heldout_spec
    from clear_core.testbed.world import ARTISTS, PAPER_OBJECTS

    rng = np.random.default_rng(seed + 4242)
    out: list[str] = []
    while len(out) < n:
        spec = sample_heldout_spec(rng)
        if (
            spec.object in PAPER_OBJECTS
            or spec.style in ARTISTS
            or spec.identity != "none"
            or spec.clothing != "clothed"
        ):
            continue
        text = caption(spec, rng, heldout=True)
        if text not in out:
            out.append(text)
    return out


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
    """(len(prompts)·seeds, F, 64, 64, 3) frames; ``latents`` is (len(prompts)·seeds, 9, 16), prompt-major.
    ``eraser``: one eraser or a list applied together (each at ``gamma``, or its own default)."""
    from clear_core.erasure import applied_many

    seeds = latents.shape[0] // len(prompts)
    expanded = [p for p in prompts for _ in range(seeds)]
    erasers = [] if eraser is None else list(eraser) if isinstance(eraser, (list, tuple)) else [eraser]
    out = []
    for i in range(0, len(expanded), batch):
        chunk, lat = expanded[i : i + batch], latents[i : i + batch]
        with applied_many([(e, gamma) for e in erasers], pipe):
            res = pipe(chunk, latents=lat, num_inference_steps=steps, guidance_scale=guidance_scale)
        out.append(res.frames)
    return np.concatenate(out)


def _flat(frames: np.ndarray) -> np.ndarray:
    return frames.reshape(-1, *frames.shape[2:])


def preservation(
    pipe: TestbedPipeline,
    detector: Detector,
    prompts: list[str],
    eraser,
    gamma: float | None = None,
    seeds: int = 2,
    seed: int = 0,
    steps: int = 10,
    guidance_scale: float = 4.0,
) -> dict:
    """Share of frames of ``prompts`` whose detected object, style, avatar, clothing and setting are
    the same with and without ``eraser`` (one or a list), from the same latents; and per attribute."""
    lat = torch.randn((len(prompts) * seeds, 9, 16), generator=torch.Generator().manual_seed(seed + 1))
    a = detector.predict(_flat(generate_frames(pipe, prompts, lat, None, None, steps, guidance_scale)))
    b = detector.predict(_flat(generate_frames(pipe, prompts, lat, eraser, gamma, steps, guidance_scale)))
    all_agree = np.all([a[k] == b[k] for k in HEADS], axis=0)
    return {
        "preservation": float(all_agree.mean()),
        "per_attribute": {k: float(np.mean(a[k] == b[k])) for k in HEADS},
        "n_prompts": len(prompts),
        "n_frames": int(all_agree.size),
    }


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
    concept_free: int = 0,
) -> dict:
    """Rate of ``concept_slug`` on ``prompts`` (default: ``n_prompts`` pack positives, held out of
    the eraser's fit when it records a split), before and, with ``eraser`` (one or a list applied
    together), after erasure at ``gamma`` (None: each eraser's default); with an eraser also the
    preservation on ``neutral_prompts`` (default: the matching pack negatives) and, with
    ``concept_free`` > 0, on that many :func:`concept_free_captions`. Latents are drawn once from
    ``seed`` and shared by the unerased and erased runs."""
    if seeds < 1:
        raise ValueError(f"seeds must be ≥ 1, got {seeds}")
    head, _ = concept_attribute(concept_slug)
    t0 = time.time()
    pipe = pipe or _pipe()
    detector = detector or _detector()
    erasers = [] if eraser is None else list(eraser) if isinstance(eraser, (list, tuple)) else [eraser]
    source = neutral_source = "given"
    if prompts is None or (erasers and neutral_prompts is None):
        pos, neg, pack = heldout_pack_prompts(concept_slug, erasers, n_prompts)
        if prompts is None:
            prompts, source = pos, pack
        if neutral_prompts is None:
            neutral_prompts, neutral_source = neg, pack
    if not prompts:
        raise ValueError("no prompts")
    gen = torch.Generator().manual_seed(seed)
    lat = torch.randn((len(prompts) * seeds, 9, 16), generator=gen)
    frames = generate_frames(pipe, prompts, lat, None, None, steps, guidance_scale)
    found = concept_present(detector.predict(_flat(frames)), concept_slug)
    result = original_summary(
        concept_slug, head, len(prompts), seeds, found, len(frames), steps, guidance_scale, detector
    )
    result["prompts"] = source
    if erasers:
        erased = generate_frames(pipe, prompts, lat, erasers, gamma, steps, guidance_scale)
        found_e = concept_present(detector.predict(_flat(erased)), concept_slug)
        lat_n = torch.randn((len(neutral_prompts) * seeds, 9, 16), generator=gen)
        a = detector.predict(
            _flat(generate_frames(pipe, neutral_prompts, lat_n, None, None, steps, guidance_scale))
        )
        b = detector.predict(
            _flat(generate_frames(pipe, neutral_prompts, lat_n, erasers, gamma, steps, guidance_scale))
        )
        result.update(
            erased_summary(
                erasers, gamma, found, found_e, len(erased), a, b, len(neutral_prompts), neutral_source
            )
        )
        if concept_free:
            result["concept_free"] = preservation(
                pipe,
                detector,
                concept_free_captions(concept_free, seed),
                erasers,
                gamma,
                seeds,
                seed,
                steps,
                guidance_scale,
            )
    else:
        result["rate"] = result["rate_original"]
    result["seconds"] = round(time.time() - t0, 1)
    return result


def original_summary(
    concept_slug: str,
    head: str,
    n_prompts: int,
    seeds: int,
    found: np.ndarray,
    n_clips: int,
    steps: int,
    guidance_scale: float,
    detector,
) -> dict:
    """The unerased half of a rate record: how often the concept is found, per frame and per clip."""
    per_clip = found.reshape(n_clips, -1).mean(1)
    return {
        "concept": concept_slug,
        "detector_attribute": head,
        "n_prompts": n_prompts,
        "seeds": seeds,
        "n_clips": n_clips,
        "n_frames": int(found.size),
        "rate_original": float(found.mean()),
        "rate_original_ci95_clips": wilson(int((per_clip >= 0.5).sum()), len(per_clip)),
        "steps": steps,
        "guidance_scale": guidance_scale,
        "detector": detector.report(),
    }


def erased_summary(
    erasers: Sequence[Eraser],
    gamma: float | None,
    found: np.ndarray,
    found_e: np.ndarray,
    n_clips: int,
    heads_before: dict,
    heads_after: dict,
    n_neutral: int,
    neutral_source: str,
) -> dict:
    """The erased half of a rate record: the rate after erasure and how many neutral frames read the
    same on every detector head (``heads_*``: head -> per-frame readings, unerased / erased)."""
    per_clip_e = found_e.reshape(n_clips, -1).mean(1)
    same = {k: np.asarray(heads_before[k]) == np.asarray(heads_after[k]) for k in HEADS}
    return {
        "gamma": [e.gamma if gamma is None else gamma for e in erasers]
        if len(erasers) > 1
        else (erasers[0].gamma if gamma is None else gamma),
        "erasers": [e.concept for e in erasers],
        "rate": float(found_e.mean()),
        "rate_ci95_clips": wilson(int((per_clip_e >= 0.5).sum()), len(per_clip_e)),
        "reduction": float(1 - found_e.mean() / found.mean()) if found.mean() > 0 else None,
        "preservation": float(np.all(list(same.values()), axis=0).mean()),
        "preservation_per_attribute": {k: float(v.mean()) for k, v in same.items()},
        "n_neutral_prompts": n_neutral,
        "neutral_prompts": neutral_source,
    }
