"""The CPU testbed's own detector (``clear_core.testbed.detector``), registered like the others.

The testbed renders a synthetic world of the paper's concepts and trains a detector on those renders;
``load_detector()`` returns an object with ``predict(frames) -> dict[str, ndarray]``, ``name``,
``version`` and ``concept_present(predictions, slug) -> bool array``. It is imported lazily so that the
rest of video_eval works without it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clear_core.video_eval.detectors.base import Detector, FrameDetections, check_frames, sha256_file

__all__ = ["TestbedDetector"]


class TestbedDetector(Detector):
    """Frames of the testbed in, the testbed detector's per-frame concept decision out."""

    name = "testbed"

    def __init__(self, slug: str):
        if not slug:
            raise ValueError("testbed: a concept slug is needed (testbed:parachute)")
        try:
            from clear_core.testbed.detector import load_detector
        except ImportError as err:
            raise ValueError(
                f"testbed: the testbed detector is not available (clear_core.testbed.detector: {err})"
            ) from None
        self.slug = slug
        self._model = load_detector()
        self.threshold = float(getattr(self._model, "threshold", 0.5))

    def _weights(self) -> dict:
        for attr in ("weights_path", "path", "weights"):
            value = getattr(self._model, attr, None)
            if isinstance(value, (str, Path)) and Path(value).is_file():
                return {Path(value).name: sha256_file(value)}
        digest = getattr(self._model, "weights_sha256", None)
        return {"weights": digest} if digest else {}

    def manifest(self) -> dict:
        return {
            "name": self.name,
            "package": "clear_core.testbed",
            "model": str(getattr(self._model, "name", "testbed")),
            "version": str(getattr(self._model, "version", "unknown")),
            "weights_sha256": self._weights(),
            "threshold": self.threshold,
            "classes": [self.slug],
            "rule": "frame counted where the testbed detector's concept_present(predictions, slug) is true",
        }

    def detect(self, frames: np.ndarray) -> FrameDetections:
        frames = check_frames(frames)
        predictions = self._model.predict(frames)
        decisions = np.asarray(self._model.concept_present(predictions, self.slug), dtype=bool).reshape(-1)
        if decisions.shape != (len(frames),):
            raise ValueError(f"testbed: concept_present gave {decisions.shape} for {len(frames)} frames")
        raw = np.asarray(predictions.get(self.slug, decisions), dtype=np.float64)
        scores = raw if raw.shape == decisions.shape else decisions.astype(np.float64)
        extras = {k: np.asarray(v) for k, v in predictions.items()}
        return FrameDetections(scores, decisions, None, extras)
