"""Aesthetic quality: the LAION aesthetic predictor (an MLP on CLIP image embeddings), when its weights
are on disk.

The paper's "aesthetic quality" is VBench's: LAION's improved aesthetic predictor, a 5-layer MLP
(768 -> 1024 -> 128 -> 64 -> 16 -> 1, dropout between the first four) reading the L2-normalised
CLIP ViT-L/14 image embedding, trained to predict 1-10 ratings. Neither the MLP nor CLIP can be
downloaded here, so both are the user's: ``--clip`` a local CLIPModel folder and ``--aesthetic`` the
MLP as a ``.safetensors`` file with the original state-dict keys (``layers.0``, ``layers.2``,
``layers.4``, ``layers.6``, ``layers.7``; the released ``.pth`` is a pickle, which this project
never loads: convert it once with ``safetensors.torch.save_file(torch.load(...), ...)`` where you
trust the file). The MLP's input width must equal the CLIP model's projection width.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from clear_core.video_eval.detectors.base import check_frames, sha256_file
from clear_core.video_eval.detectors.clip import load_clip

__all__ = ["LINEAR_KEYS", "AestheticMLP", "aesthetic_manifest", "load_aesthetic", "video_aesthetic"]

LINEAR_KEYS = ("layers.0", "layers.2", "layers.4", "layers.6", "layers.7")
"""The Linear layers of LAION's MLP in order (odd indices 1, 3, 5 are Dropout: identity at inference)."""


class AestheticMLP:
    """The MLP as plain matrices (no activations between layers, as in LAION's released model)."""

    def __init__(self, path: str | Path):
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"{self.path}: aesthetic predictor weights not found")
        if self.path.suffix != ".safetensors":
            raise ValueError(f"{self.path}: expected a .safetensors file (pickled .pth files are not loaded)")
        try:
            state = load_file(str(self.path))
        except (SafetensorError, OSError) as err:
            raise ValueError(f"{self.path}: not a readable safetensors file ({err})") from None
        self.layers = []
        width = None
        for key in LINEAR_KEYS:
            w, b = state.get(f"{key}.weight"), state.get(f"{key}.bias")
            if w is None or b is None:
                raise ValueError(
                    f"{self.path}: missing {key}.weight/bias (expected keys {', '.join(LINEAR_KEYS)})"
                )
            if w.ndim != 2 or b.shape != (w.shape[0],) or (width is not None and w.shape[1] != width):
                raise ValueError(f"{self.path}: {key} has shape {tuple(w.shape)}, which does not chain")
            width = w.shape[0]
            self.layers.append((w.astype(np.float64), b.astype(np.float64)))
        if width != 1:
            raise ValueError(f"{self.path}: the last layer must output 1 value, it outputs {width}")
        self.in_features = self.layers[0][0].shape[1]

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, in_features) L2-normalised CLIP image embeddings -> (N,) scores."""
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"{self.path}: the MLP reads {self.in_features}-d embeddings, the CLIP model gives {x.shape[-1]}-d"
            )
        for w, b in self.layers:
            x = x @ w.T + b
        return x[:, 0]


@lru_cache(maxsize=2)
def load_aesthetic(path: str) -> AestheticMLP:
    return AestheticMLP(path)


def aesthetic_manifest(path: str, clip_path: str) -> dict:
    mlp = load_aesthetic(path)
    return {
        "method": "LAION aesthetic MLP on L2-normalised CLIP image embeddings, mean over frames",
        "weights_sha256": {mlp.path.name: sha256_file(mlp.path)},
        "in_features": mlp.in_features,
        "clip": load_clip(clip_path).manifest(),
    }


def video_aesthetic(frames: np.ndarray, path: str, clip_path: str) -> float:
    """Mean aesthetic score over the given frames."""
    frames = check_frames(frames)
    img, _ = load_clip(clip_path).embed(frames, [""])
    return float(load_aesthetic(path)(img).mean())
