"""Text-video consistency: CLIP similarity between a video's frames and its prompt (when weights exist).

The paper's "overall consistency" is ViCLIP's video-text similarity (VBench). No video-CLIP weights are
available offline here, so this is the frame-level variant used by CLIPScore-style evaluations: the
mean over frames of the cosine between the frame's and the prompt's CLIP embeddings (in [-1, 1]; the
report also gives 100 x max(cos, 0), CLIPScore's scale). It needs a local CLIPModel folder (``--clip``
or the folder of a ``clip:`` detector); without one the report says "not computed".
"""

from __future__ import annotations

import numpy as np

from clear_core.video_eval.detectors.base import check_frames
from clear_core.video_eval.detectors.clip import load_clip

__all__ = ["consistency_manifest", "similarity", "text_video_similarity"]


def consistency_manifest(clip_path: str) -> dict:
    clip = load_clip(clip_path)
    return {"method": "mean over frames of cos(CLIP image, CLIP text(prompt))", **clip.manifest()}


def similarity(images: np.ndarray, text: np.ndarray) -> float:
    """Mean cosine of (T, D) normalised frame embeddings with one (D,) normalised text embedding."""
    if images.ndim != 2 or text.shape != (images.shape[1],):
        raise ValueError(f"consistency: embeddings {images.shape} and {text.shape} do not match")
    return float((images @ text).mean())


def text_video_similarity(frames: np.ndarray, prompt: str, clip_path: str) -> float:
    """Mean cosine between each frame and the prompt (the frames are the sampled ones)."""
    frames = check_frames(frames)
    if not prompt or not prompt.strip():
        raise ValueError("consistency: the video has no prompt to compare with")
    img, txt = load_clip(clip_path).embed(frames, [prompt])
    return similarity(img, txt[0])
