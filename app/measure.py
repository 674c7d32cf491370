"""The "Measure" button of Erase & preview, and the testbed's generative rate over seeds.

:func:`measure_clips` runs a detector over the clips just generated (:func:`on_measure` is its Gradio
callback with errors shown as ``gr.Error``). Detectors are loaded once per spec and shared (they are
read-only at inference).

:func:`seed_rates` renders the preview prompt on the CPU testbed with :data:`RATE_SEEDS` seeds, without
and with the eraser from the same latents, and counts the clips in which the testbed detector finds the
concept: one clip says little, a handful of seeds with a 95% Wilson interval says how
sure the difference is. :func:`seed_rate_chart` draws it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from clear_core.video_eval.detectors import Detector, FrameDetections, make_detector
from clear_core.video_eval.frames import read_video, sample_indices

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "DEFAULT_FRAMES",
    "RATE_SEEDS",
    "MeasureResult",
    "measure_clips",
    "on_measure",
    "paraphrase_frame_shares",
    "rates_chart",
    "seed_rate_chart",
    "seed_rates",
    "testbed_detector",
]

DEFAULT_FRAMES = 8
THUMB_HEIGHT = 128
HIT, MISS, BOX = (220, 40, 40), (60, 160, 60), (255, 200, 0)


@dataclass
class MeasureResult:
    strip: np.ndarray
    """(H, W, 3) uint8: one row per clip of sampled frames, boxes drawn, red border = concept found."""
    figure: go.Figure
    """Bar chart of the generative rate per clip."""
    numbers: dict[str, Any]
    """Per clip: rate, frames seen, frames detected, per-frame scores; plus the detector's manifest."""


@lru_cache(maxsize=4)
def _detector(spec: str, concept: str | None) -> Detector:
    return make_detector(spec, concept=concept)


@lru_cache(maxsize=1)
def testbed_detector() -> Any:
    """The shipped testbed detector, loaded once and shared (read-only at inference)."""
    from clear_core.testbed.detector import load_detector

    return load_detector()


def _thumbnail(frame: np.ndarray, det: FrameDetections, i: int) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    scale = THUMB_HEIGHT / h
    thumb = cv2.resize(frame, (max(round(w * scale), 1), THUMB_HEIGHT), interpolation=cv2.INTER_AREA)
    for box in det.boxes[i] if det.boxes else []:
        p0 = (round(box.x0 * scale), round(box.y0 * scale))
        p1 = (round(box.x1 * scale), round(box.y1 * scale))
        colour = HIT if box.counted else BOX
        cv2.rectangle(thumb, p0, p1, colour, 2 if box.counted else 1)
        cv2.putText(thumb, f"{box.label[:14]} {box.score:.2f}", (p0[0], max(p0[1] - 3, 9)), 0, 0.3, colour, 1)
    border = HIT if det.decisions[i] else MISS
    thumb = cv2.copyMakeBorder(thumb, 3, 3, 3, 3, cv2.BORDER_CONSTANT, value=border)
    cv2.putText(thumb, f"{det.scores[i]:.2f}", (6, THUMB_HEIGHT - 2), 0, 0.4, (255, 255, 255), 1)
    return thumb


def _row(label: str, thumbs: list[np.ndarray]) -> np.ndarray:
    import cv2

    caption = np.full((18, sum(t.shape[1] for t in thumbs), 3), 255, np.uint8)
    cv2.putText(caption, label, (4, 13), 0, 0.45, (0, 0, 0), 1)
    return np.vstack([caption, np.hstack(thumbs)])


def rates_chart(numbers: dict[str, Any], detector_name: str) -> go.Figure:
    """Generative rate per clip (share of sampled frames where the detector found the concept)."""
    import plotly.graph_objects as go

    clips = [k for k in numbers if k != "detector"]
    fig = go.Figure(
        go.Bar(
            x=clips,
            y=[numbers[c]["rate"] for c in clips],
            text=[f"{numbers[c]['detected']}/{numbers[c]['frames']} frames" for c in clips],
            marker_color=["#d62728" if numbers[c]["rate"] > 0 else "#2ca02c" for c in clips],
        )
    )
    fig.update_layout(
        title=f"Generative rate ({detector_name})",
        yaxis={"title": "share of frames with the concept", "range": [0, 1]},
        height=320,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
    )
    return fig


def measure_clips(
    paths: list[str] | dict[str, str],
    detector_spec: str,
    frames: int = DEFAULT_FRAMES,
    concept: str | None = None,
) -> MeasureResult:
    """Run ``detector_spec`` over each clip (``{label: path}`` or a list, labelled by file name)."""
    if not detector_spec or not detector_spec.strip():
        raise ValueError("choose a detector (nudenet, faces:REFS, clip:PATH or testbed:SLUG)")
    from app.public import check_detector

    detector_spec = check_detector(detector_spec)  # a public server runs only the operator's detectors
    labelled = paths if isinstance(paths, dict) else {Path(p).stem if p else "": p for p in paths or []}
    labelled = {k: v for k, v in labelled.items() if v}
    if not labelled:
        raise ValueError("no clips to measure: generate original and erased videos first")
    if frames < 1:
        raise ValueError(f"frames per clip must be >= 1, got {frames}")
    clips = {
        label: read_video(path)[0] for label, path in labelled.items()
    }  # bad files fail before detection
    det = _detector(detector_spec.strip(), concept)
    rows, numbers = [], {}
    for label, video in clips.items():
        idx = sample_indices(len(video), frames)
        found = det.detect(video[idx])
        rows.append(
            _row(f"{label}: {found.rate:.0%}", [_thumbnail(video[j], found, i) for i, j in enumerate(idx)])
        )
        numbers[label] = {
            "rate": found.rate,
            "frames": len(idx),
            "detected": int(found.decisions.sum()),
            "frame_indices": idx.tolist(),
            "scores": [round(float(s), 4) for s in found.scores],
        }
    width = max(r.shape[1] for r in rows)
    strip = np.vstack(
        [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    )
    numbers["detector"] = det.manifest()
    return MeasureResult(strip, rates_chart(numbers, det.name), numbers)


def on_measure(original: str | None, erased: str | None, detector_spec: str, concept: str | None = None):
    """Gradio callback: (frame strip image, rate chart, numbers) for the original and erased clips.

    ``concept`` fills a ``clip:PATH`` spec that names none (pass the eraser's concept)."""
    from app.common import user_errors

    with user_errors():
        result = measure_clips({"original": original, "erased": erased}, detector_spec, concept=concept)
        return result.strip, result.figure, result.numbers


RATE_SEEDS = 8
"""Seeds of the testbed's rate over seeds: a testbed clip takes ~0.05 s, and 8 clips narrow a 95% Wilson
interval from [0.51, 1] (4 of 4) to [0.68, 1] (8 of 8)."""


def seed_latents(seed: int, seeds: int) -> Any:
    """(seeds, 9, 16) testbed latents, row i drawn from seed ``seed + i`` the way the pipeline draws
    them (so row 0 is the latent of the preview clip with seed ``seed``)."""
    import torch

    return torch.cat(
        [torch.randn((1, 9, 16), generator=torch.Generator().manual_seed(seed + i)) for i in range(seeds)]
    )


def seed_rates(
    pipe: Any,
    detector: Any,
    prompt: str,
    eraser: Any,
    gamma: float,
    seed: int = 0,
    steps: int = 10,
    seeds: int = RATE_SEEDS,
    progress: Any = None,
) -> dict[str, Any]:
    """Generative rate of the eraser's concept on ``prompt`` over ``seeds`` testbed clips (seeds
    ``seed`` … ``seed + seeds − 1``), original and erased at ``gamma`` from the same latents.

    A clip counts when the detector finds the concept in at least half of its frames; the interval is
    the 95% Wilson interval over clips (frames of one clip are not independent draws). The share of
    frames is reported too. ValueError when the concept has no testbed attribute (only built-in packs
    do: :func:`clear_core.testbed.detector.concept_attribute`).
    """
    import torch

    from clear_core.generation.render import pipeline_lock
    from clear_core.testbed.detector import concept_attribute, concept_present
    from clear_core.testbed.rate import generate_frames, wilson

    slug = eraser.concept
    head, cls = concept_attribute(slug)
    if seeds < 1:
        raise ValueError(f"seeds must be ≥ 1, got {seeds}")
    latents = seed_latents(int(seed), seeds)
    numbers: dict[str, Any] = {}
    arms = (("original", None, None), (f"erased γ={gamma:g}", eraser, gamma))
    for i, (label, e, g) in enumerate(arms):
        if progress is not None:
            progress(i / len(arms), desc=f"rate over {seeds} seeds: {label}")
        if e is not None and g == 0:
            numbers[label] = {**numbers["original"]}
            continue
        with pipeline_lock(pipe), torch.no_grad():
            frames = generate_frames(pipe, [prompt], latents, e, g, steps)
        found = concept_present(detector.predict(frames.reshape(-1, *frames.shape[2:])), slug)
        per_clip = found.reshape(seeds, -1).mean(1)
        k = int((per_clip >= 0.5).sum())
        numbers[label] = {
            "rate": k / seeds,
            "ci95": list(wilson(k, seeds)),
            "clips_with_concept": k,
            "clips": seeds,
            "frame_share": float(found.mean()),
            "per_seed_frame_share": [round(float(x), 4) for x in per_clip],
        }
    if progress is not None:
        progress(1.0, desc="rate over seeds: done")
    numbers["setup"] = {
        "prompt": prompt,
        "concept": slug,
        "detector_attribute": head if cls is None else f"{head} = {cls}",
        "seeds": list(range(int(seed), int(seed) + seeds)),
        "steps": steps,
        "gamma": gamma,
        "detector": detector.report(),
    }
    return numbers


def seed_rate_chart(numbers: dict[str, Any]) -> go.Figure:
    """Bars of the share of seeds whose clip shows the concept, original vs erased, with 95% Wilson
    intervals as error bars (``numbers`` from :func:`seed_rates`)."""
    import plotly.graph_objects as go

    arms = [k for k in numbers if k != "setup"]
    rates = [numbers[a]["rate"] for a in arms]
    lo = [numbers[a]["rate"] - numbers[a]["ci95"][0] for a in arms]
    hi = [numbers[a]["ci95"][1] - numbers[a]["rate"] for a in arms]
    setup = numbers["setup"]
    fig = go.Figure(
        go.Bar(
            x=arms,
            y=rates,
            error_y={"type": "data", "symmetric": False, "array": hi, "arrayminus": lo, "thickness": 1.5},
            text=[
                f"{numbers[a]['clips_with_concept']}/{numbers[a]['clips']} seeds · "
                f"{100 * numbers[a]['frame_share']:.0f}% of frames"
                for a in arms
            ],
            textposition="inside",
            marker_color=["#d62728" if r > 0 else "#2ca02c" for r in rates],
            customdata=[numbers[a]["ci95"] for a in arms],
            hovertemplate="%{x}: %{y:.2f} (95% CI %{customdata[0]:.2f}–%{customdata[1]:.2f})<extra></extra>",
        )
    )
    seeds = setup["seeds"]
    fig.update_layout(
        title=f"Testbed generative rate of {setup['concept']} over seeds {seeds[0]}–{seeds[-1]} (95% Wilson)",
        yaxis={"title": "share of seeds whose clip shows it", "range": [0, 1.05]},
        height=320,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
    )
    return fig


def paraphrase_frame_shares(prompts: list[str], slug: str, seed: int = 0, steps: int = 10) -> list[float]:
    """For each prompt, the share of its testbed clip's frames (seed ``seed``, no eraser) in which the
    testbed detector finds the concept of pack ``slug``: which of a concept's paraphrases the testbed
    actually draws. ValueError when the testbed has no attribute for ``slug``."""
    import torch

    from app.generation import get_pipeline
    from clear_core.generation.render import pipeline_lock
    from clear_core.testbed.detector import concept_attribute, concept_present
    from clear_core.testbed.rate import generate_frames

    concept_attribute(slug)
    if not prompts:
        return []
    pipe = get_pipeline("testbed")
    latents = seed_latents(int(seed), 1).repeat(len(prompts), 1, 1)
    with pipeline_lock(pipe), torch.no_grad():
        frames = generate_frames(pipe, list(prompts), latents, steps=steps)
    found = concept_present(testbed_detector().predict(frames.reshape(-1, *frames.shape[2:])), slug)
    return [float(x) for x in found.reshape(len(prompts), -1).mean(1)]
