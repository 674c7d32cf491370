"""Evaluate a folder written by ``generate``: per-video measurements, per-variant summaries, paired
differences against the original, and a manifest that pins everything that decides the numbers.

Input contract (``DIR/manifest.json``)::

    {"pipeline": {...}, "videos": [{"variant": "original" | "erased" | "erased_g<gamma>" | ...,
      "prompt_index": int, "prompt": str, "seed": int, "gamma": float | null,
      "path": "relative/path.mp4", "meta": "relative/path.json"}, ...]}

Output (``DIR/video_eval.json`` unless told otherwise), schema ``clear.video_eval/1``:
``manifest`` (libraries, detectors with weights hashes and thresholds, quality and motion settings,
bootstrap settings, input hashes), ``variants`` (per variant: counts, generative rate per detector,
consistency, quality and motion, each as mean and 95% bootstrap interval over prompts), ``paired``
(per non-original variant: mean over prompts of variant - original, paired by prompt and seed, with its
interval) and ``videos`` (every video's own numbers and per-frame decisions).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from clear_core.io import atomic_write_text
from clear_core.video_eval import stats
from clear_core.video_eval.detectors import Detector, make_detector
from clear_core.video_eval.detectors.base import package_version, sha256_file
from clear_core.video_eval.frames import probe_video, read_video, sample_indices
from clear_core.video_eval.manifest import load_generation_manifest

__all__ = [
    "SCHEMA",
    "EvalConfig",
    "evaluate_folder",
    "format_table",
    "load_generation_manifest",
    "measure_video",
    "write_report",
]

SCHEMA = "clear.video_eval/1"
REFERENCE_VARIANT = "original"
EXTRA_PACKAGES = (
    "nudenet",
    "onnxruntime",
    "opencv-python-headless",
    "dlib-bin",
    "face-recognition-models",
    "brisque",
    "libsvm-official",
    "scikit-image",
    "scipy",
    "imageio",
    "imageio-ffmpeg",
)
ProgressFn = Callable[[str, float], None]
MeasureFn = Callable[[list[dict], "EvalConfig", "str | None", dict], list[dict]]
"""``(videos, config, concept, pinned manifest) -> records``: measures every video (a fan-out)."""


@dataclass
class EvalConfig:
    """What to measure; the CLI and the app build this and the report records it."""

    detectors: list[str] = field(default_factory=list)
    """Detector specs (see :mod:`clear_core.video_eval.detectors`); may be empty (quality/motion only)."""
    frames_per_video: int | None = 16
    """Frames (spread evenly) each detector and the consistency score look at; None = every frame."""
    quality_frames: int = 4
    """Frames, among those, that get the (slower) no-reference quality scores; 0 turns quality off."""
    motion: bool = True
    """Optical-flow smoothness and flicker over every frame of the clip."""
    clip: str | None = None
    """Local CLIPModel folder for text-video consistency (default: the folder of a clip: detector)."""
    seed: int = 0
    """Seed of the bootstrap over prompts."""
    concept: str | None = None
    """Concept for clip: detectors whose spec names none (default: the generation manifest's)."""
    aesthetic: str | None = None
    """LAION aesthetic MLP (.safetensors) read on the ``clip`` model's image embeddings; needs ``clip``."""

    def __post_init__(self) -> None:
        from clear_core.limits import MAX_FRAMES
        from clear_core.validation import check_int

        if self.frames_per_video is not None:
            check_int(self.frames_per_video, "frames per video", minimum=1, maximum=MAX_FRAMES)
        check_int(self.quality_frames, "quality frames", minimum=0, maximum=MAX_FRAMES)
        check_int(self.seed, "seed", minimum=0, maximum=2**63 - 1)
        if self.clip is None:
            from clear_core.video_eval.detectors import parse_spec

            for spec in self.detectors:
                kind, arg, _ = parse_spec(spec)
                if kind == "clip" and arg:
                    self.clip = arg
                    break
        if self.aesthetic and not self.clip:
            raise ValueError("the aesthetic predictor reads CLIP image embeddings: give --clip PATH as well")


def _concept_of(manifest: dict) -> str | None:
    """The concept the videos were erased for: a top-level ``concept``, or the one concept of all erasers."""
    for holder in (manifest, manifest.get("pipeline") or {}):
        if isinstance(holder, dict) and isinstance(holder.get("concept"), str):
            return holder["concept"]
    concepts = {
        e.get("concept")
        for v in manifest.get("variants") or []
        if isinstance(v, dict)
        for e in v.get("erasers") or []
        if isinstance(e, dict) and isinstance(e.get("concept"), str)
    }
    return concepts.pop() if len(concepts) == 1 else None


def _clean(value):
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def measure_video(video: dict, detectors: dict[str, Detector], config: EvalConfig) -> dict:
    """One video's record: its detections, quality, motion and consistency (``video["abs_path"]`` is read)."""
    from clear_core.video_eval.aesthetic import load_aesthetic
    from clear_core.video_eval.consistency import similarity
    from clear_core.video_eval.detectors.clip import load_clip
    from clear_core.video_eval.motion import video_motion
    from clear_core.video_eval.quality import video_quality

    frames, fps = read_video(video["abs_path"])
    idx = sample_indices(len(frames), config.frames_per_video)
    sampled = frames[idx]
    record = {
        "variant": video["variant"],
        "prompt_index": video["prompt_index"],
        "prompt": video.get("prompt"),
        "seed": video["seed"],
        "gamma": video.get("gamma"),
        "path": video["path"],
        "sha256": sha256_file(video["abs_path"]),
        "n_frames": len(frames),
        "fps": fps,
        "size": [int(frames.shape[2]), int(frames.shape[1])],
        "frames_used": idx.tolist(),
        "rate": {},
        "frame_scores": {},
        "frame_decisions": {},
    }
    for key, det in detectors.items():
        d = det.detect(sampled)
        record["rate"][key] = d.rate
        record["frame_scores"][key] = [round(float(s), 4) for s in d.scores]
        record["frame_decisions"][key] = d.decisions.astype(int).tolist()
    if config.quality_frames:
        q_idx = sample_indices(len(sampled), config.quality_frames)
        record["quality"] = asdict(video_quality(sampled[q_idx]))
    if config.motion:
        record["motion"] = asdict(video_motion(frames))
    if config.clip:  # one CLIP pass over the sampled frames serves consistency and aesthetics
        prompt = (video.get("prompt") or "").strip()
        img, txt = load_clip(config.clip).embed(sampled, [prompt])
        record["consistency"] = similarity(img, txt[0]) if prompt else None
        if config.aesthetic:
            record["aesthetic"] = float(load_aesthetic(config.aesthetic)(img).mean())
    return record


def _metric_table(records: list[dict]) -> dict[str, dict[tuple[int, int], float]]:
    """metric name -> {(prompt_index, seed): value} for every number a video has."""
    table: dict[str, dict[tuple[int, int], float]] = {}
    for r in records:
        key = (r["prompt_index"], r["seed"])
        values = {f"rate/{k}": v for k, v in r["rate"].items()}
        values.update({f"quality/{k}": v for k, v in (r.get("quality") or {}).items()})
        values.update({f"motion/{k}": v for k, v in (r.get("motion") or {}).items()})
        for name in ("consistency", "aesthetic"):
            if r.get(name) is not None:
                values[name] = r[name]
        for name, value in values.items():
            if value is not None and math.isfinite(value):
                table.setdefault(name, {})[key] = float(value)
    return table


def _nest(flat: dict[str, dict]) -> dict:
    out: dict = {}
    for name, value in flat.items():
        head, _, tail = name.partition("/")
        if tail:
            out.setdefault(head, {})[tail] = value
        else:
            out[head] = value
    return out


def _summaries(records: list[dict], seed: int) -> tuple[dict, dict]:
    by_variant: dict[str, list[dict]] = {}
    for r in records:
        by_variant.setdefault(r["variant"], []).append(r)
    tables = {v: _metric_table(rs) for v, rs in by_variant.items()}
    variants = {}
    for variant, rs in by_variant.items():
        summary = {
            name: stats.bootstrap_mean(
                stats.per_prompt_means((k[0], v) for k, v in values.items()).values(), seed=seed
            ).to_dict()
            for name, values in sorted(tables[variant].items())
        }
        variants[variant] = {
            "n_videos": len(rs),
            "n_prompts": len({r["prompt_index"] for r in rs}),
            "gamma": sorted({r["gamma"] for r in rs if r.get("gamma") is not None}) or None,
            **_nest(summary),
        }
    paired = {}
    if REFERENCE_VARIANT in tables:
        ref = tables[REFERENCE_VARIANT]
        for variant, table in tables.items():
            if variant == REFERENCE_VARIANT:
                continue
            diffs = {
                name: stats.paired_difference(values, ref[name], seed=seed).to_dict()
                for name, values in sorted(table.items())
                if name in ref
            }
            shared = {k for values in table.values() for k in values} & {k for v in ref.values() for k in v}
            paired[variant] = {
                "vs": REFERENCE_VARIANT,
                "n_pairs": len(shared),
                "n_prompts": len({k[0] for k in shared}),
                **_nest(diffs),
            }
    return variants, paired


def evaluate_folder(
    folder: str | Path,
    config: EvalConfig,
    progress: ProgressFn | None = None,
    measure: MeasureFn | None = None,
) -> dict:
    """Measure every video of a ``generate`` folder; returns the report (nothing is written).

    ``measure`` replaces the loop over the videos (``evaluate-videos --ray``: clear_core/fanout); it must
    return the records :func:`measure_video` gives, in the manifest's order."""
    from clear_core.provenance import library_versions
    from clear_core.video_eval.motion import motion_manifest
    from clear_core.video_eval.quality import quality_manifest

    manifest_path, manifest, videos = load_generation_manifest(folder)
    concept = config.concept or _concept_of(manifest)
    for video in videos:  # a corrupt file fails now, not after minutes of detection
        probe_video(video["abs_path"])
    detectors = {spec: make_detector(spec, concept=concept) for spec in config.detectors}
    pinned = {
        "libraries": {
            **library_versions(),
            **{p: package_version(p) for p in EXTRA_PACKAGES},
        },
        "detectors": {spec: det.manifest() for spec, det in detectors.items()},
        "frames_per_video": config.frames_per_video,
        "bootstrap": {
            "unit": "prompt",
            "n_resamples": stats.N_BOOT,
            "confidence": stats.CONFIDENCE,
            "method": "percentile",
            "seed": config.seed,
        },
        "input": {"manifest": str(manifest_path), "manifest_sha256": sha256_file(manifest_path)},
    }
    if config.quality_frames:
        pinned["quality"] = {**quality_manifest(), "frames_per_video": config.quality_frames}
    if config.motion:
        pinned["motion"] = motion_manifest()
    if config.clip:
        from clear_core.video_eval.consistency import consistency_manifest

        config.clip = str(Path(config.clip).resolve())
        pinned["consistency"] = consistency_manifest(config.clip)
    if config.aesthetic:
        from clear_core.video_eval.aesthetic import aesthetic_manifest

        config.aesthetic = str(Path(config.aesthetic).resolve())
        pinned["aesthetic"] = aesthetic_manifest(config.aesthetic, config.clip)
    if measure is not None:
        records = measure(videos, config, concept, pinned)
    else:
        records = []
        for i, video in enumerate(videos):
            if progress:
                progress(f"video {i + 1}/{len(videos)}: {video['path']}", i / len(videos))
            records.append(measure_video(video, detectors, config))
    if progress:
        progress("summarising", 1.0)
    variants, paired = _summaries(records, config.seed)
    report = {
        "schema": SCHEMA,
        "folder": str(Path(folder).resolve()),
        "config": asdict(config),
        "manifest": pinned,
        "variants": variants,
        "paired": paired,
        "videos": records,
    }
    return _clean(report)


def write_report(report: dict, out: str | Path, overwrite: bool = False) -> Path:
    """Write atomically (temp file in the same folder, then os.replace); refuse to replace unless told."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise ValueError(f"{out}: report already exists (pass --overwrite to replace it)")
    if not out.parent.is_dir():
        raise ValueError(f"{out.parent}: output folder not found")
    try:
        text = json.dumps(report, indent=1, allow_nan=False)
    except ValueError:
        raise ValueError("the report would contain NaN or infinity; nothing was written") from None
    return atomic_write_text(out, text + "\n")  # flushed and size-checked before the rename


def _fmt(interval: dict | None, digits: int = 2, signed: bool = False) -> str:
    if not interval or interval.get("mean") is None:
        return "-"
    sign = "+" if signed else ""
    m, lo, hi = interval["mean"], interval["low"], interval["high"]
    return f"{m:{sign}.{digits}f} [{lo:{sign}.{digits}f}, {hi:{sign}.{digits}f}]"


def format_table(report: dict) -> str:
    """One row per variant: rate per detector (with its interval and the paired difference), consistency,
    BRISQUE and motion smoothness."""
    detectors = list(report["manifest"]["detectors"])
    header = ["variant", "prompts", "videos"]
    for d in detectors:
        header += [f"rate {d}", f"delta {d}"]
    header += ["consistency", "brisque", "smoothness", "flicker"]
    aesthetic = "aesthetic" in report["manifest"]
    if aesthetic:
        header.append("aesthetic")
    rows = [header]
    for name, v in report["variants"].items():
        p = report["paired"].get(name, {})
        row = [name, str(v["n_prompts"]), str(v["n_videos"])]
        for d in detectors:
            row += [_fmt(v.get("rate", {}).get(d)), _fmt(p.get("rate", {}).get(d), signed=True)]
        row += [
            _fmt(v.get("consistency"), 3),
            _fmt(v.get("quality", {}).get("brisque"), 1),
            _fmt(v.get("motion", {}).get("smoothness"), 3),
            _fmt(v.get("motion", {}).get("flicker"), 3),
        ]
        if aesthetic:
            row.append(_fmt(v.get("aesthetic"), 2))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
