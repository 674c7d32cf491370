"""Open vocabulary: zero-shot CLIP, "a video of a {concept}" against a negative text, per frame.

No CLIP weights can be downloaded where this project runs, so the user points at a local folder
holding a transformers ``CLIPModel`` with its processor (``save_pretrained`` layout: config.json,
model.safetensors, tokenizer and preprocessor files). Nothing is fetched from a hub.

Per frame: p = softmax(logit_scale * cos(image, [positive, negative]))[positive]; the frame counts when
p >= threshold (0.5 by default: the positive text is the better description).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from clear_core.video_eval.detectors.base import (
    Detector,
    FrameDetections,
    check_frames,
    package_version,
    sha256_file,
)

__all__ = ["ClipDetector", "ClipModel", "load_clip"]

WEIGHT_SUFFIXES = (".safetensors",)


class ClipModel:
    """A local CLIPModel + processor with the two things the metrics need: image and text embeddings."""

    def __init__(self, path: str | Path):
        import torch
        import transformers as tf

        self.path = Path(path)
        config_file = self.path / "config.json"
        if not self.path.is_dir():
            raise ValueError(f"{self.path}: CLIP weights folder not found")
        if not config_file.is_file():
            raise ValueError(f"{config_file}: missing; {self.path} is not a saved transformers CLIP model")
        try:
            model_type = json.loads(config_file.read_text()).get("model_type")
        except json.JSONDecodeError:
            raise ValueError(f"{config_file}: not valid JSON") from None
        if model_type != "clip":
            raise ValueError(f"{config_file}: model_type is {model_type!r}, expected 'clip' (a CLIPModel)")
        self.weight_files = sorted(p for p in self.path.iterdir() if p.suffix in WEIGHT_SUFFIXES)
        if not self.weight_files:
            raise ValueError(f"{self.path}: no .safetensors weights (pickled .bin files are not loaded)")
        try:
            self.model = tf.CLIPModel.from_pretrained(self.path, local_files_only=True).eval()
            self.processor = tf.CLIPProcessor.from_pretrained(self.path, local_files_only=True)
        except (OSError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(f"{self.path}: cannot load CLIPModel/CLIPProcessor ({first})") from None
        self._torch = torch

    def manifest(self) -> dict:
        return {
            "folder": str(self.path),
            "weights_sha256": {p.name: sha256_file(p) for p in self.weight_files},
            "transformers": package_version("transformers"),
        }

    def embed(self, frames: np.ndarray, texts: list[str], batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """L2-normalised image (T, D) and text (K, D) embeddings, and nothing else."""
        torch = self._torch
        images = []
        with torch.no_grad():
            text_in = self.processor(text=texts, return_tensors="pt", padding=True, truncation=True)
            for i in range(0, len(frames), batch):
                img_in = self.processor(images=list(frames[i : i + batch]), return_tensors="pt")
                out = self.model(**text_in, pixel_values=img_in["pixel_values"])
                images.append(out.image_embeds.float().numpy())
            text = out.text_embeds.float().numpy()
            self.logit_scale = float(self.model.logit_scale.exp())
        norm = lambda x: x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)  # noqa: E731
        return norm(np.concatenate(images)), norm(text)


@lru_cache(maxsize=2)
def load_clip(path: str) -> ClipModel:
    """One loaded copy per folder (a CLIP model is read-only at inference, safe to share)."""
    return ClipModel(path)


class ClipDetector(Detector):
    """Zero-shot: the share of frames closer to "a video of a {concept}" than to the negative text."""

    name = "clip"

    def __init__(
        self,
        path: str | Path,
        concept: str,
        negative: str = "a video",
        template: str = "a video of a {concept}",
        threshold: float = 0.5,
    ):
        if not concept or not concept.strip():
            raise ValueError("clip: a concept is needed (clip:PATH,concept=parachute)")
        if "{concept}" not in template:
            raise ValueError(f"clip: template {template!r} must contain '{{concept}}'")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"clip: threshold must be in [0, 1], got {threshold}")
        self.clip = load_clip(str(Path(path).resolve()))
        self.positive = template.format(concept=concept.strip())
        self.negative = negative
        self.threshold = float(threshold)

    def manifest(self) -> dict:
        return {
            "name": self.name,
            "package": "transformers",
            "version": package_version("transformers"),
            **self.clip.manifest(),
            "threshold": self.threshold,
            "classes": [self.positive],
            "negative": self.negative,
            "rule": "frame counted if softmax(logit_scale * cos)[positive] >= threshold",
        }

    def detect(self, frames: np.ndarray) -> FrameDetections:
        frames = check_frames(frames)
        img, txt = self.clip.embed(frames, [self.positive, self.negative])
        logits = self.clip.logit_scale * img @ txt.T  # (T, 2)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return FrameDetections(p[:, 0], p[:, 0] >= self.threshold)
