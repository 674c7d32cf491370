"""Motion smoothness and temporal flicker without learned weights (OpenCV Farneback optical flow).

- ``warp_error``: for each pair of consecutive frames, the flow from t to t+1 is estimated and frame
  t+1 is warped back onto frame t; the error is the mean absolute grey difference in [0, 1]. Motion
  that optical flow can explain (smooth, coherent movement) warps back well; jumps, jitter and
  content that pops in and out do not.
- ``smoothness`` (VBench's idea, with optical flow instead of a learned interpolator): for each frame t
  with two neighbours, the flow from t-1 to t+1 is halved to synthesise frame t from both neighbours;
  smoothness = 1 - mean |synthesised - real| in [0, 1]. Constant-velocity motion interpolates almost
  perfectly; shuffled, jittery or popping frames do not (a static clip also scores 1).
- ``flicker`` = mean absolute difference of consecutive frames in [0, 1] (VBench's temporal flickering
  is 1 - this); ``brightness_flicker`` = mean absolute change of mean frame brightness in [0, 1].
- ``flow_magnitude``: mean flow length in pixels per frame at the analysed size (how much moves;
  a clip that barely moves is trivially "smooth", so read smoothness next to it).

Frames are analysed in grey at most ``MAX_SIDE`` pixels on the long side (recorded in the report).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from clear_core.video_eval.detectors.base import check_frames, package_version

__all__ = ["FARNEBACK", "MAX_SIDE", "MotionScores", "motion_manifest", "video_motion"]

MAX_SIDE = 256
FARNEBACK = {
    "pyr_scale": 0.5,
    "levels": 3,
    "winsize": 15,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.2,
    "flags": 0,
}


@dataclass(frozen=True)
class MotionScores:
    smoothness: float
    interpolation_error: float
    warp_error: float
    flicker: float
    brightness_flicker: float
    flow_magnitude: float

    def to_dict(self) -> dict:
        return {k: (None if not np.isfinite(v) else round(float(v), 5)) for k, v in asdict(self).items()}


def motion_manifest() -> dict:
    return {
        "smoothness": "1 - mean |frame t - (t-1, t+1) interpolated with half the Farneback flow|, grey [0, 1]",
        "warp_error": "OpenCV Farneback flow t->t+1, warp t+1 onto t, mean |grey difference| in [0, 1]",
        "max_side": MAX_SIDE,
        "farneback": FARNEBACK,
        "opencv": package_version("opencv-python-headless"),
    }


def _grey_small(frames: np.ndarray) -> np.ndarray:
    import cv2

    h, w = frames.shape[1:3]
    scale = min(1.0, MAX_SIDE / max(h, w))
    size = (max(round(w * scale), 8), max(round(h * scale), 8))
    return np.stack(
        [cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA) for f in frames]
    )


def video_motion(frames: np.ndarray) -> MotionScores:
    """Scores of a (T, H, W, 3) uint8 clip; NaN for a single frame (smoothness needs three)."""
    import cv2

    frames = check_frames(frames)
    if len(frames) < 2:
        nan = float("nan")
        return MotionScores(nan, nan, nan, nan, nan, nan)
    grey = _grey_small(frames)
    h, w = grey.shape[1:]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    errors, magnitudes = [], []
    for a, b in zip(grey[:-1], grey[1:], strict=True):
        flow = cv2.calcOpticalFlowFarneback(a, b, None, **FARNEBACK)  # (h, w, 2): a(y, x) ~ b(y+fy, x+fx)
        warped = cv2.remap(
            b, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        errors.append(np.abs(warped.astype(np.float32) - a.astype(np.float32)).mean() / 255.0)
        magnitudes.append(float(np.hypot(flow[..., 0], flow[..., 1]).mean()))
    interp = []
    for a, mid, b in zip(grey[:-2], grey[1:-1], grey[2:], strict=True):
        flow = cv2.calcOpticalFlowFarneback(a, b, None, **FARNEBACK) / 2.0  # half-way, t-1 -> t+1
        from_a = cv2.remap(
            a, grid_x - flow[..., 0], grid_y - flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        from_b = cv2.remap(
            b, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        synth = (from_a.astype(np.float32) + from_b.astype(np.float32)) / 2.0
        interp.append(np.abs(synth - mid.astype(np.float32)).mean() / 255.0)
    g = grey.astype(np.float32) / 255.0
    interp_error = float(np.mean(interp)) if interp else float("nan")
    return MotionScores(
        smoothness=1.0 - interp_error,
        interpolation_error=interp_error,
        warp_error=float(np.mean(errors)),
        flicker=float(np.abs(np.diff(g, axis=0)).mean()),
        brightness_flicker=float(np.abs(np.diff(g.mean(axis=(1, 2)))).mean()),
        flow_magnitude=float(np.mean(magnitudes)),
    )
