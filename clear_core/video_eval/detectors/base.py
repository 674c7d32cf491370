"""The one interface every detector meets: frames in, per-frame scores and a decision out.

A detector also describes itself (:meth:`Detector.manifest`): name, package version, a SHA-256 of its
weights, its threshold and its class list. The report stores that description so that another
machine can check it runs the very same detector before comparing numbers.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["Box", "Detector", "FrameDetections", "check_frames", "package_version", "sha256_file"]


@dataclass(frozen=True)
class Box:
    """One detection in pixel coordinates of the frame it came from (x0, y0 top-left; x1, y1 exclusive)."""

    x0: int
    y0: int
    x1: int
    y1: int
    label: str
    score: float
    counted: bool = True
    """Whether this box is of a class (or identity) the detector counts, at or above its threshold."""

    def to_dict(self) -> dict:
        return {
            "box": [self.x0, self.y0, self.x1, self.y1],
            "label": self.label,
            "score": round(float(self.score), 4),
            "counted": self.counted,
        }


@dataclass
class FrameDetections:
    """What one detector saw in a clip of T frames.

    ``scores`` (T,) float: the detector's confidence that the concept is in the frame (0 when nothing
    was found). ``decisions`` (T,) bool: the frame counts as showing the concept. ``boxes``: per frame a
    list of :class:`Box`, or None for detectors that do not localise (CLIP, the testbed).
    """

    scores: np.ndarray
    decisions: np.ndarray
    boxes: list[list[Box]] | None = None
    extras: dict = field(default_factory=dict)
    """Detector-specific per-frame arrays (e.g. the testbed's raw predictions), shape (T, ...)."""

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float64)
        self.decisions = np.asarray(self.decisions, dtype=bool)
        if self.scores.ndim != 1 or self.decisions.shape != self.scores.shape:
            raise ValueError(
                f"detections: scores {self.scores.shape} and decisions {self.decisions.shape} "
                "must both be (T,)"
            )
        if self.boxes is not None and len(self.boxes) != len(self.scores):
            raise ValueError(f"detections: {len(self.boxes)} box lists for {len(self.scores)} frames")

    @property
    def rate(self) -> float:
        """Share of frames where the concept was found (the paper's per-video generative rate)."""
        return float(self.decisions.mean()) if len(self.decisions) else float("nan")


def check_frames(frames: np.ndarray) -> np.ndarray:
    """Validate a clip as (T, H, W, 3) uint8 RGB and return it contiguous."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or frames.shape[0] == 0:
        raise ValueError(
            f"frames must be a non-empty (T, H, W, 3) uint8 RGB array, got {frames.shape} {frames.dtype}"
        )
    return np.ascontiguousarray(frames)


class Detector(ABC):
    """Frames in, per-frame scores and decisions out; describes itself for the report."""

    name: str
    threshold: float | None

    @abstractmethod
    def manifest(self) -> dict:
        """name, package and version, weights SHA-256 (file -> hash), threshold, class list, options."""

    @abstractmethod
    def detect(self, frames: np.ndarray) -> FrameDetections:
        """Score every frame of a (T, H, W, 3) uint8 RGB clip."""


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file, cached per (path, size, mtime) so a report does not rehash gigabytes."""
    st = os.stat(path)
    return _sha256_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
