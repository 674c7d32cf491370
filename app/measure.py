"""The "Measure" button of Erase & preview: run a detector over the clips just generated.

Callbacks only (the lead wires the button in ``app/layout.py``): :func:`measure_clips` is the plain
function (tests call it), :func:`on_measure` is the Gradio callback with errors shown as ``gr.Error``.
Detectors are loaded once per spec and shared (they are read-only at inference).
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

__all__ = ["DEFAULT_FRAMES", "MeasureResult", "measure_clips", "on_measure", "rates_chart"]

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
