"""Reading clips: an mp4 (or any ffmpeg-readable video) to a (T, H, W, 3) uint8 RGB array."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["probe_video", "read_video", "sample_indices"]


def _decode(path: Path, first_only: bool) -> tuple[list[np.ndarray], float]:
    import imageio.v2 as imageio

    if not path.is_file():
        raise ValueError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file, not a video")
    try:
        reader = imageio.get_reader(str(path), format="FFMPEG")
        try:
            meta = reader.get_meta_data()
            fps = float(meta.get("fps") or 0.0)
            _check_size(path, meta, fps)
            frames = []
            for f in reader:
                frames.append(np.asarray(f)[..., :3])
                if first_only:
                    break
        finally:
            reader.close()
    except _TooLarge:
        raise
    except Exception as err:  # imageio/ffmpeg raise OSError, RuntimeError, IndexError... for a bad file
        lines = str(err).strip().splitlines()
        why = lines[0][:160] if lines else type(err).__name__
        raise ValueError(f"{path}: cannot decode video ({type(err).__name__}: {why})") from None
    if not frames:
        raise ValueError(f"{path}: video has no frames")
    return frames, fps


def _check_size(path: Path, meta: dict, fps: float) -> None:
    """Refuse a video whose decoded frames would not fit the memory budget (from ffmpeg's header)."""
    from clear_core.limits import check_video_size

    size, duration = meta.get("size"), meta.get("duration")
    if not (isinstance(size, (tuple, list)) and len(size) == 2 and duration and fps):
        return
    frames = int(float(duration) * fps + 1)
    try:
        check_video_size(frames, int(size[1]), int(size[0]), fix="this video is too large to evaluate here")
    except ValueError as err:
        raise _TooLarge(f"{path}: {err}") from None


class _TooLarge(ValueError):
    """A video refused for its size (passed through the decoder's error wrapping as it is)."""


def probe_video(path: str | Path) -> None:
    """Cheap check that a video opens and has a first frame (run on every video before the real work)."""
    _decode(Path(path), first_only=True)


def read_video(path: str | Path) -> tuple[np.ndarray, float]:
    """All frames of a video and its frame rate; ValueError naming the file if it cannot be decoded."""
    frames, fps = _decode(Path(path), first_only=False)
    return np.ascontiguousarray(np.stack(frames).astype(np.uint8)), fps


def sample_indices(n_frames: int, n: int | None) -> np.ndarray:
    """``n`` frame indices spread evenly over the clip (all frames when ``n`` is None or >= n_frames)."""
    if n is None or n >= n_frames:
        return np.arange(n_frames)
    if n < 1:
        raise ValueError(f"frames per video must be >= 1, got {n}")
    return np.unique(np.round(np.linspace(0, n_frames - 1, n)).astype(int))
