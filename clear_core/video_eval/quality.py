"""No-reference image quality of generated frames, with nothing to download.

- ``brisque``: BRISQUE (Mittal, Moorthy & Bovik, 2012), natural-scene statistics of MSCN coefficients
  at two scales scored by an RBF-SVR trained on LIVE ratings. Lower is better (about 0-100). The
  features and the trained SVR come from the ``brisque`` package on PyPI (its ``svm.txt`` and scaling
  parameters ship in the wheel; their SHA-256 go into the report). Frames are resized so the long side
  is at most 512 px first (BRISQUE depends on scale; the report records it). brisque 0.2.0 breaks on
  NumPy 2 when turning features into floats; :class:`_Brisque` fixes only that conversion. A frame
  without texture (flat colour) has no defined BRISQUE and gives NaN, which is skipped in means.
- ``sharpness``: variance of the Laplacian of the grey frame (0-255 scale): higher is sharper.
- ``contrast``: RMS contrast, the standard deviation of grey intensity in [0, 1].
- ``colorfulness``: Hasler & Suesstrunk (2003) M3 on the rg/yb opponent channels.

Caveat, measured: brisque 0.2.0's SVR is steep. Mirroring the astronaut photo (which only swaps the two
diagonal pair-product features, 0.58 vs 0.59 and -0.022 vs -0.027) moves its score from 10.8 to 18.2,
while blurring (sigma 3) gives 76 and Gaussian noise (sigma 25) 52. Read per-video BRISQUE
differences of a few points as noise; the report averages frames and prompts and gives intervals.

LAION-aesthetic lives in :mod:`clear_core.video_eval.aesthetic` (weights supplied by the user).
MUSIQ needs TensorFlow or pyiqa (which imports torchvision, not installable next to this torch) and
weights not on PyPI: it is not computed.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from clear_core.video_eval.detectors.base import check_frames, package_version, sha256_file

__all__ = ["BRISQUE_MAX_SIDE", "QualityScores", "frame_quality", "quality_manifest", "video_quality"]

BRISQUE_MAX_SIDE = 512


@dataclass(frozen=True)
class QualityScores:
    """Means over the frames scored (NaN-free frames for BRISQUE)."""

    brisque: float
    sharpness: float
    contrast: float
    colorfulness: float

    def to_dict(self) -> dict:
        return {k: (None if not np.isfinite(v) else round(float(v), 4)) for k, v in asdict(self).items()}


@lru_cache(maxsize=1)
def _brisque():
    """The brisque package's model, or the reason it is unavailable (a string)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from brisque import BRISQUE
            from brisque.models import MODEL_PATH
    except Exception as err:  # ImportError, or libsvm failing to load its compiled library
        return f"brisque unavailable: {type(err).__name__}: {err}"

    class _Brisque(BRISQUE):
        def scale_features(self, features):
            return super().scale_features([np.asarray(f, dtype=np.float64).reshape(-1)[0] for f in features])

    model = _Brisque(url=False)
    model.files = {name: Path(MODEL_PATH) / name for name in ("svm.txt", "normalize.pickle")}
    return model


def quality_manifest() -> dict:
    """What decides the quality numbers: packages, the BRISQUE model hash, the resize rule."""
    model = _brisque()
    out = {
        "metrics": ["brisque (lower is better)", "sharpness", "contrast", "colorfulness"],
        "brisque_max_side": BRISQUE_MAX_SIDE,
        "packages": {p: package_version(p) for p in ("brisque", "libsvm-official", "scikit-image", "scipy")},
        "opencv": package_version("opencv-python-headless"),
    }
    if isinstance(model, str):
        out["brisque_error"] = model
    else:
        out["brisque_model_sha256"] = {n: sha256_file(p) for n, p in model.files.items()}
    return out


def _brisque_score(frame: np.ndarray) -> float:
    import cv2

    model = _brisque()
    if isinstance(model, str):
        return float("nan")
    h, w = frame.shape[:2]
    scale = BRISQUE_MAX_SIDE / max(h, w)
    if scale < 1:
        frame = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    if frame.shape[0] < 16 or frame.shape[1] < 16 or float(frame.std()) == 0.0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            score = float(model.score(frame))
        except (ValueError, ZeroDivisionError, FloatingPointError):
            return float("nan")
    return score if np.isfinite(score) else float("nan")


def frame_quality(frame: np.ndarray) -> QualityScores:
    """The four scores of one (H, W, 3) uint8 RGB frame."""
    import cv2

    frame = check_frames(frame[None])[0]
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    sharp = float(cv2.Laplacian(grey.astype(np.float64), cv2.CV_64F).var())
    contrast = float((grey / 255.0).std())
    r, g, b = (frame[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    colorful = float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
    return QualityScores(_brisque_score(frame), sharp, contrast, colorful)


def video_quality(frames: np.ndarray) -> QualityScores:
    """Mean of :func:`frame_quality` over the given frames (NaN BRISQUE frames skipped)."""
    frames = check_frames(frames)
    per = [frame_quality(f) for f in frames]
    cols = {
        k: np.array([getattr(q, k) for q in per])
        for k in ("brisque", "sharpness", "contrast", "colorfulness")
    }
    return QualityScores(
        **{k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for k, v in cols.items()}
    )
