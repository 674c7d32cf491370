"""The CPU testbed's own detector (``clear_core.testbed.detector``), registered like the others.

The testbed renders a synthetic world of the paper's concepts and trains a detector on those renders;
``load_detector()`` returns an object with ``predict(frames) -> dict[str, ndarray]``, ``name``,
``version`` and ``sha256``, and the module's ``concept_present(predictions, slug) -> bool array`` says
in which frames a built-in pack's concept is found (``concept_attribute(slug)`` names the head and
class behind it, whose probability is the frame's score). It is imported lazily so that the rest of
video_eval works without it.
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
            import clear_core.testbed.detector as module
        except ImportError as err:
            raise ValueError(
                f"testbed: the testbed detector is not available (clear_core.testbed.detector: {err})"
            ) from None
        self.slug = slug
        self._module = module
        self._model = module.load_detector()
        self._present = getattr(module, "concept_present", None) or self._model.concept_present
        self._head = None
        if hasattr(module, "concept_attribute"):
            self._head = module.concept_attribute(slug)  # ValueError for a slug the testbed does not know
        # the testbed decides by argmax of a head; only its binary 'unclothed' head has a 0.5 threshold
        self.threshold = 0.5 if self._head and self._head[0] == "unclothed" else None

    def _weights(self) -> dict:
        for attr in ("weights_path", "path", "weights"):
            value = getattr(self._model, attr, None)
            if isinstance(value, (str, Path)) and Path(value).is_file():
                return {Path(value).name: sha256_file(value)}
        digest = getattr(self._model, "sha256", None) or getattr(self._model, "weights_sha256", None)
        return {"detector.safetensors": digest} if isinstance(digest, str) else {}

    def manifest(self) -> dict:
        return {
            "name": self.name,
            "package": "clear_core.testbed",
            "model": str(getattr(self._model, "name", "testbed")),
            "version": str(getattr(self._model, "version", "unknown")),
            "weights_sha256": self._weights(),
            "threshold": self.threshold,
            "classes": [self.slug],
            "head": list(self._head) if self._head else None,
            "accuracy": (getattr(self._model, "meta", None) or {}).get("accuracy"),
            "rule": "frame counted where clear_core.testbed.detector.concept_present(predictions, slug) is true",
        }

    def detect(self, frames: np.ndarray) -> FrameDetections:
        frames = check_frames(frames)
        predictions = self._model.predict(frames)
        decisions = np.asarray(self._present(predictions, self.slug), dtype=bool).reshape(-1)
        if decisions.shape != (len(frames),):
            raise ValueError(f"testbed: concept_present gave {decisions.shape} for {len(frames)} frames")
        scores = self._scores(predictions)
        if scores is None or scores.shape != decisions.shape:
            scores = decisions.astype(np.float64)
        extras = {k: np.asarray(v) for k, v in predictions.items()}
        return FrameDetections(scores, decisions, None, extras)

    def _scores(self, predictions: dict) -> np.ndarray | None:
        """The probability of the concept's class per frame, when the testbed says which head it is."""
        if not self._head:
            return None
        head, cls = self._head
        if head == "unclothed" and "unclothed_prob" in predictions:
            return np.asarray(predictions["unclothed_prob"], dtype=np.float64)
        names = getattr(self._module, "HEADS", {}).get(head)
        probs = predictions.get(f"{head}_probs")
        if names is None or probs is None or cls not in names:
            return None
        return np.asarray(probs, dtype=np.float64)[:, list(names).index(cls)]
