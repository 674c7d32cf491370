"""Identity: dlib's face embeddings (the model behind ``face_recognition``) against reference photos.

Weights come from ``face-recognition-models`` on PyPI (dlib's HOG face detector is built into dlib; the
5-point shape predictor and the ResNet embedding model ship in that package). dlib itself comes from
``dlib-bin`` (prebuilt wheels, ``import dlib``), so nothing compiles. We call dlib the way
``face_recognition`` does (HOG detector, 5 landmarks, ``compute_face_descriptor``) without that
wrapper, which would pull the source build of ``dlib``.

References: a folder with one sub-folder per identity, each holding photos (jpg/png/webp) of that
person; a folder of photos with no sub-folders is one identity named after the folder. Every reference
photo must show a face (the largest one is used).

Per frame: every face found is embedded; its distance to an identity is the smallest Euclidean
distance to that identity's reference embeddings. A frame counts when some face is within
``tolerance`` (dlib's and face_recognition's convention: 0.6) of some identity. The score is
1 - (smallest distance), so higher means more alike; a frame without a face scores 0 and never counts.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from clear_core.video_eval.detectors.base import (
    Box,
    Detector,
    FrameDetections,
    check_frames,
    package_version,
    sha256_file,
)

__all__ = ["DEFAULT_TOLERANCE", "FaceDetector", "FaceModels"]

DEFAULT_TOLERANCE = 0.6
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


class FaceModels:
    """dlib's detector, 5-point landmarks and ResNet embedding, loaded once."""

    def __init__(self, upsample: int = 1):
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise ValueError(
                "faces: the 'face-recognition-models' package (dlib weights) is not installed "
                "(pip install -r requirements.txt)"
            )
        # Found without importing it: its __init__ needs pkg_resources, absent from new setuptools.
        root = Path(spec.submodule_search_locations[0]) / "models"
        self.files = {
            "shape_predictor": root / "shape_predictor_5_face_landmarks.dat",
            "embedding": root / "dlib_face_recognition_resnet_model_v1.dat",
        }
        for path in self.files.values():
            if not path.is_file():
                raise ValueError(f"{path}: dlib weights missing from face-recognition-models")
        try:
            import dlib
        except ImportError as err:
            raise ValueError("faces: dlib is not installed (pip install dlib-bin)") from err
        self.upsample = int(upsample)
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(self.files["shape_predictor"]))
        self._embed = dlib.face_recognition_model_v1(str(self.files["embedding"]))

    def faces(self, image: np.ndarray) -> tuple[list[tuple[int, int, int, int]], np.ndarray]:
        """Face boxes (x0, y0, x1, y1) and their 128-d embeddings (n, 128) in one RGB uint8 image."""
        image = np.ascontiguousarray(image)
        rects = self._detector(image, self.upsample)
        boxes, embeddings = [], []
        for r in rects:
            shape = self._shape(image, r)
            embeddings.append(np.array(self._embed.compute_face_descriptor(image, shape, 1)))
            boxes.append((max(r.left(), 0), max(r.top(), 0), r.right(), r.bottom()))
        return boxes, np.array(embeddings, dtype=np.float64).reshape(len(boxes), 128)


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: not a readable image ({type(err).__name__})") from None


def _reference_photos(refs: Path) -> dict[str, list[Path]]:
    if not refs.is_dir():
        raise ValueError(f"{refs}: face reference folder not found (expected one sub-folder per identity)")
    photos = lambda d: sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)  # noqa: E731
    subdirs = sorted(d for d in refs.iterdir() if d.is_dir() and not d.name.startswith("."))
    ids = {d.name: photos(d) for d in subdirs} if subdirs else {refs.name: photos(refs)}
    ids = {k: v for k, v in ids.items() if v}
    if not ids:
        raise ValueError(f"{refs}: no reference photos (.jpg/.png/.webp) found")
    return ids


class FaceDetector(Detector):
    """Counts frames that show one of the reference identities (dlib embedding distance <= tolerance)."""

    name = "faces"

    def __init__(self, refs: str | Path, tolerance: float = DEFAULT_TOLERANCE, upsample: int = 1):
        if not 0.0 < tolerance < 2.0:
            raise ValueError(f"faces: tolerance must be in (0, 2), got {tolerance}")
        self.refs = Path(refs)
        self.tolerance = float(tolerance)
        self.threshold = 1.0 - self.tolerance
        self.models = FaceModels(upsample=upsample)
        self.identities: list[str] = []
        embeddings, owners, self.ref_hashes = [], [], {}
        for identity, paths in _reference_photos(self.refs).items():
            self.identities.append(identity)
            for path in paths:
                boxes, emb = self.models.faces(_read_image(path))
                if not boxes:
                    raise ValueError(f"{path}: no face found in this reference photo")
                largest = int(np.argmax([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]))
                embeddings.append(emb[largest])
                owners.append(len(self.identities) - 1)
                self.ref_hashes[str(path.relative_to(self.refs))] = sha256_file(path)
        self._refs = np.stack(embeddings)  # (R, 128)
        self._owner = np.array(owners)  # (R,) identity index of each reference

    def manifest(self) -> dict:
        return {
            "name": self.name,
            "package": "dlib-bin",
            "version": package_version("dlib-bin"),
            "weights_package": {"face-recognition-models": package_version("face-recognition-models")},
            "weights_sha256": {p.name: sha256_file(p) for p in self.models.files.values()},
            "detector": f"dlib HOG frontal face detector, upsample {self.models.upsample}",
            "threshold": self.threshold,
            "tolerance": self.tolerance,
            "classes": list(self.identities),
            "references_sha256": self.ref_hashes,
            "rule": "frame counted if a face is within `tolerance` (Euclidean, 128-d) of a reference; "
            "score = 1 - smallest distance",
        }

    def detect(self, frames: np.ndarray) -> FrameDetections:
        frames = check_frames(frames)
        scores, decisions, all_boxes = [], [], []
        for frame in frames:
            boxes, emb = self.models.faces(frame)
            frame_boxes = []
            best = np.inf
            for (x0, y0, x1, y1), e in zip(boxes, emb, strict=True):
                dist = np.linalg.norm(self._refs - e, axis=1)  # (R,)
                i = int(np.argmin(dist))
                best = min(best, float(dist[i]))
                label = self.identities[self._owner[i]]
                frame_boxes.append(
                    Box(x0, y0, x1, y1, label, 1.0 - float(dist[i]), bool(dist[i] <= self.tolerance))
                )
            all_boxes.append(frame_boxes)
            scores.append(0.0 if not np.isfinite(best) else 1.0 - best)
            decisions.append(bool(np.isfinite(best) and best <= self.tolerance))
        return FrameDetections(np.array(scores), np.array(decisions), all_boxes)
