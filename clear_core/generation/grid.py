"""Render prompts × seeds × variants into a folder: the ``generate`` command's engine.

Layout of ``out`` (read by ``evaluate-videos``)::

    manifest.json                      pipeline, settings, prompts, seeds, variants, every video
    <variant>/p<prompt>_s<seed>.mp4    one clip per (variant, prompt, seed)
    <variant>/p<prompt>_s<seed>.json   what made it: pipeline, seed, steps, γ, eraser ids, versions, time
    sheet_p<prompt>_s<seed>.png        contact sheet: one row per variant, frames as columns

For each (prompt, seed) the original is rendered first and its initial latents are replayed for every
other variant (render.py), and each variant's conditioning is encoded once per prompt and reused for
every seed: a γ sweep re-encodes the text once per γ — running the blocks up to the eraser's block
once for all γ (sweep.py) — and re-runs only the denoiser. Everything cheap is
checked before the first render (the folder, the prompts, the γ values, every eraser against the
pipeline's encoder and encoding profile), so a bad input never costs a generation.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from clear_core.encoders import TextEncoder
from clear_core.erasure import Eraser, applied_many, check_erasers
from clear_core.generation.conditioning import Conditioning, encode
from clear_core.generation.loading import describe
from clear_core.generation.media import contact_sheet, write_json, write_mp4
from clear_core.generation.render import Latents, RenderSettings, render
from clear_core.generation.sweep import encode_sweep
from clear_core.generation.variants import Variant, steering_baseline
from clear_core.provenance import library_versions

__all__ = [
    "GridResult",
    "VariantConditioning",
    "check_erasers",
    "check_out",
    "check_prompts",
    "check_seeds",
    "clip_stem",
    "encode_variants",
    "generate_grid",
    "grid_manifest",
    "prepare_steering",
    "render_clip",
    "sheet_name",
    "video_entry",
    "write_clip",
]

Progress = Callable[[int, int, str], None]


@dataclass
class GridResult:
    """What a grid run wrote."""

    out: Path
    manifest: dict
    frames: dict[tuple[str, int, int], np.ndarray] = field(default_factory=dict)
    """(variant, prompt index, seed) -> (frames, H, W, 3) float32 frames, before mp4 encoding."""


def check_prompts(prompts: Sequence[str]) -> list[str]:
    """The prompts as a list, each checked by the one rule for every prompt (clear_core.concepts:
    not empty, not only invisible characters, at most 2,000 characters)."""
    from clear_core.concepts import check_prompt

    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    if not prompts:
        raise ValueError("no prompts given")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise ValueError(f"prompt {i + 1} is not text: {p!r}")
        check_prompt(p, f"prompt {i + 1}")
    return prompts


def check_out(out: str | Path, overwrite: bool = False) -> Path:
    """A folder to write into, checked without creating it: refused if it is a file, not empty (without
    ``overwrite``), or not writable (its nearest existing parent, when it does not exist yet)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"{out} exists and is not empty; pass --overwrite or choose another --out")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write to {out}: {parent} is not a writable folder")
    return out


def prepare_steering(
    pipe: Any,
    variants: list[Variant],
    positives: Sequence[str] | None = None,
    negatives: Sequence[str] | None = None,
    unrelated: Sequence[str] | None = None,
    pairs: int = 64,
    progress: Callable[[float, str], None] | None = None,
) -> None:
    """Fill in the ``steering`` variant: a steering eraser at matched preservation (variants.py);
    ``progress(fraction, message)`` hears of its stages."""
    row = next((v for v in variants if v.info.get("baseline") == "steering"), None)
    if row is None:
        return
    clear = next(v for v in variants if v.erasers)
    eraser, gamma = clear.erasers[0]
    gamma = eraser.gamma if gamma is None else gamma
    if positives is None:
        from clear_core.concepts import builtin_packs, load_builtin

        if eraser.concept not in builtin_packs():
            raise ValueError(
                f"the steering baseline needs the pairs of {eraser.concept!r}: pass --concept FILE"
            )
        concept = load_builtin(eraser.concept)
        positives, negatives = concept.positives, concept.negatives
    step = max(1, len(positives) // pairs)
    positives, negatives = list(positives)[::step][:pairs], list(negatives)[::step][:pairs]
    if unrelated is None:
        from clear_core.concepts import unrelated_prompts

        unrelated = unrelated_prompts()
    encoder = TextEncoder.from_pipeline(pipe, eraser.component)
    steer, g, info = steering_baseline(
        encoder, eraser, gamma, positives, negatives, unrelated, progress=progress
    )
    row.erasers, row.gamma = [(steer, g)], g
    row.info.update(info)


def _step_progress(progress: Progress | None, done: int, total: int, label: str):
    if progress is None:
        return None
    return lambda k, _n: progress(done + k, total, label)


class VariantConditioning(NamedTuple):
    """One variant's text side for one prompt."""

    cond: Conditioning | None
    """The embeddings the denoiser reads; None for an unknown pipeline class (it encodes under the hook)."""
    negative: str
    """The negative prompt this variant uses."""
    erasers: list[tuple[Eraser, float]]
    """The erasers with their γ resolved."""


def encode_variants(
    pipe: Any,
    prompt: str,
    variants: Sequence[Variant],
    settings: RenderSettings,
    negative_prompt: str | None = "",
) -> dict[str, VariantConditioning]:
    """Every variant's conditioning of ``prompt``: rows of one eraser at several γ run the blocks below
    it once (sweep.py), the others are encoded one by one."""
    conditioning: dict[str, list] = {}
    sweeps: dict[tuple, list[Variant]] = {}  # rows of one eraser at several γ: blocks below it run once
    for v in variants:
        negative = v.negative_prompt if v.negative_prompt is not None else (negative_prompt or "")
        erasers = [(e, e.gamma if g is None else g) for e, g in v.erasers]
        if len(erasers) == 1:
            sweeps.setdefault((id(erasers[0][0]), negative, v.negative_erased), []).append(v)
        conditioning[v.name] = [None, negative, erasers]
    for rows in sweeps.values():
        if len(rows) > 1:
            _, negative, erasers = conditioning[rows[0].name]
            gammas = [conditioning[v.name][2][0][1] for v in rows]
            swept, _ = encode_sweep(
                pipe, [prompt], [negative], erasers[0][0], gammas, rows[0].negative_erased,
                settings.max_sequence_length,
            )  # fmt: skip
            for v, cond in zip(rows, swept):
                conditioning[v.name][0] = cond
    for name, (cond, negative, erasers) in conditioning.items():
        v = next(v for v in variants if v.name == name)
        if cond is None:
            conditioning[name][0] = encode(
                pipe, [prompt], [negative], erasers, v.negative_erased, settings.max_sequence_length
            )
    return {name: VariantConditioning(*row) for name, row in conditioning.items()}


def render_clip(
    pipe: Any,
    prompt: str,
    variant: Variant,
    conditioning: VariantConditioning,
    settings: RenderSettings,
    latents: Latents,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, float]:
    """One clip: (frames, H, W, 3) float32 frames and the wall time of the call."""
    cond, negative, erasers = conditioning
    if cond is not None:
        frames, seconds = render(pipe, cond.kwargs(), settings, latents, progress)
    else:  # unknown pipeline class: the pipeline encodes, with the hook on
        call = {"prompt": [prompt], "negative_prompt": [negative]}
        with applied_many(erasers, pipe):
            frames, seconds = render(pipe, call, settings, latents, progress)
    clip = frames[0]
    if not np.isfinite(clip).all():
        raise ValueError(f"{variant.name}: the pipeline produced NaN frames (try --dtype float32)")
    return clip, seconds


def clip_stem(prompt_index: int, seed: int) -> str:
    """File stem of one clip: ``p<prompt>_s<seed>``."""
    return f"p{prompt_index:03d}_s{seed}"


def sheet_name(prompt_index: int, seed: int) -> str:
    """File name of the contact sheet of one (prompt, seed)."""
    return f"sheet_{clip_stem(prompt_index, seed)}.png"


def video_entry(variant: str, gamma: float | None, prompt_index: int, prompt: str, seed: int) -> dict:
    """The manifest's record of one clip (read by ``evaluate-videos``)."""
    stem = clip_stem(prompt_index, seed)
    return {
        "variant": variant,
        "prompt_index": prompt_index,
        "prompt": prompt,
        "seed": seed,
        "gamma": gamma,
        "path": f"{variant}/{stem}.mp4",
        "meta": f"{variant}/{stem}.json",
    }


def write_clip(
    out: Path,
    variant: Variant,
    prompt: str,
    prompt_index: int,
    seed: int,
    negative: str,
    clip: np.ndarray,
    seconds: float,
    pipeline: dict,
    settings: RenderSettings,
    fps: int,
    versions: dict,
) -> dict:
    """Write one clip's mp4 and JSON under ``out/<variant>/``; returns its manifest record."""
    entry = video_entry(variant.name, variant.gamma, prompt_index, prompt, seed)
    (out / variant.name).mkdir(exist_ok=True)
    meta = {
        "variant": variant.to_json(),
        "prompt": prompt,
        "prompt_index": prompt_index,
        "negative_prompt": negative,
        "seed": seed,
        "pipeline": pipeline,
        "settings": settings.to_json(),
        "frames": int(clip.shape[0]),
        "size": [int(clip.shape[1]), int(clip.shape[2])],
        "fps": fps,
        "wall_s": round(seconds, 3),
        "versions": versions,
    }
    write_mp4(out / entry["path"], clip, fps)
    write_json(out / entry["meta"], meta)
    return entry


def grid_manifest(
    pipeline: dict,
    settings: RenderSettings,
    prompts: list[str],
    negative_prompt: str | None,
    seeds: list[int],
    variants: list[dict],
    videos: list[dict],
    sheets: list[str],
    versions: dict,
    wall_s: float,
) -> dict:
    """``manifest.json`` of a grid; ``variants`` as :meth:`Variant.to_json` gives them."""
    return {
        "format": 1,
        "pipeline": pipeline,
        "settings": settings.to_json(),
        "prompts": prompts,
        "negative_prompt": negative_prompt,
        "seeds": seeds,
        "variants": variants,
        "videos": videos,
        "contact_sheets": sheets,
        "versions": versions,
        "wall_s": round(wall_s, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def check_seeds(seeds: Sequence[int]) -> list[int]:
    """The seeds as distinct integers ≥ 0."""
    seeds = [int(s) for s in seeds]
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct integers ≥ 0, got {seeds}")
    return seeds


def generate_grid(
    pipe: Any,
    prompts: Sequence[str],
    seeds: Sequence[int],
    variants: Sequence[Variant],
    settings: RenderSettings,
    out: str | Path | None,
    negative_prompt: str | None = "",
    progress: Progress | None = None,
    keep_frames: bool = False,
    fps: int = 8,
) -> GridResult:
    """Render every (prompt, seed, variant); write the files of the module docstring into ``out``.

    ``out`` None renders without writing (the app caches frames itself). The negative prompt is always
    encoded here ("" when none is given), never left to the pipeline: a pipeline that encodes its own
    negative would do it outside the eraser. Call :func:`check_out` first to refuse a bad folder early.
    """
    prompts = check_prompts(prompts)
    seeds = check_seeds(seeds)
    used = {id(e): e for v in variants for e, _ in v.erasers if v.info.get("baseline") != "steering"}
    check_erasers(pipe, list(used.values()))
    out = Path(out) if out is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    pipeline = describe(pipe)
    versions = library_versions()
    total = len(prompts) * len(seeds) * len(variants) * settings.steps
    done = 0
    videos, sheets = [], []
    result = GridResult(out or Path("."), {})
    for i, prompt in enumerate(prompts):
        conditioning = encode_variants(pipe, prompt, variants, settings, negative_prompt)
        for seed in seeds:
            latents = Latents(seed)  # drawn by the first variant, replayed for the others
            rows = []
            for v in variants:
                label = f"prompt {i + 1}/{len(prompts)}, seed {seed}, {v.name}"
                step = _step_progress(progress, done, total, label)
                clip, seconds = render_clip(pipe, prompt, v, conditioning[v.name], settings, latents, step)
                done += settings.steps
                rows.append(clip)
                if keep_frames or out is None:
                    result.frames[(v.name, i, seed)] = clip
                if out is None:
                    continue
                negative = conditioning[v.name].negative
                videos.append(
                    write_clip(
                        out, v, prompt, i, seed, negative, clip, seconds, pipeline, settings, fps, versions
                    )
                )
            if out is not None:
                sheet = contact_sheet(out / sheet_name(i, seed), rows, [v.name for v in variants])
                sheets.append(sheet.name)
    manifest = grid_manifest(
        pipeline, settings, prompts, negative_prompt, seeds, [v.to_json() for v in variants], videos, sheets,
        versions, time.perf_counter() - start,
    )  # fmt: skip
    if out is not None:
        write_json(out / "manifest.json", manifest)
    result.manifest = manifest
    return result
