"""Files a generation writes: mp4 videos, a contact sheet PNG, a JSON next to each video.

Every file is written to a temporary name in its final folder and renamed into place, so a crash or
a full disk never leaves a half-written video or JSON under the final name. The mp4 is H.264 through
imageio-ffmpeg (the ffmpeg binary ships in that wheel); H.264 is lossy, so comparisons are made on the
float frames before encoding. ``macro_block_size=1`` keeps sizes that are not multiples of 16.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clear_core.io import atomic_write_text, publish, temp_path

__all__ = ["contact_sheet", "read_video", "sheet_frames", "to_uint8", "write_json", "write_mp4"]


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """float frames in [0, 1] -> uint8 (values outside are clipped; NaN is refused)."""
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames
    if not np.isfinite(frames).all():
        raise ValueError("the frames contain NaN or infinite values; nothing was written")
    return (np.clip(frames, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def write_mp4(path: str | Path, frames: np.ndarray, fps: int = 8) -> Path:
    """Write (frames, H, W, 3) frames as an H.264 mp4 (atomically)."""
    import imageio.v2 as imageio

    path = Path(path)
    data = to_uint8(frames)
    if data.ndim != 4 or data.shape[-1] != 3 or len(data) == 0:
        raise ValueError(f"expected (frames, H, W, 3) frames, got {data.shape}")
    tmp = temp_path(path)
    try:
        with imageio.get_writer(
            str(tmp), format="FFMPEG", fps=fps, codec="libx264", quality=8, macro_block_size=1
        ) as writer:
            for frame in data:
                writer.append_data(frame)
        if tmp.stat().st_size == 0:
            raise ValueError(f"{path}: ffmpeg wrote nothing; nothing was written under that name")
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_video(path: str | Path) -> np.ndarray:
    """(frames, H, W, 3) uint8 frames of an mp4; ValueError naming the file when it cannot be read."""
    import imageio.v2 as imageio

    try:
        reader = imageio.get_reader(str(path), format="FFMPEG")
        try:
            frames = [np.asarray(f)[..., :3] for f in reader]
        finally:
            reader.close()
    except Exception as err:  # imageio/ffmpeg raise several types for a corrupt file
        raise ValueError(f"{path}: cannot read the video ({str(err).splitlines()[0]})") from None
    if not frames:
        raise ValueError(f"{path}: the video has no frames")
    return np.stack(frames)


def write_json(path: str | Path, data: dict) -> Path:
    """Write ``data`` as indented JSON (atomically); non-finite numbers are refused."""
    path = Path(path)
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def sheet_frames(frames: np.ndarray, columns: int = 8) -> np.ndarray:
    """The frames a contact sheet shows of one clip: ``min(columns, len)`` evenly spaced, as uint8.
    A clip reduced to them makes the same sheet as the whole clip (a fan-out keeps only these)."""
    frames = to_uint8(frames)
    n = min(columns, len(frames))
    return frames[np.linspace(0, len(frames) - 1, n).round().astype(int)]


LABEL_PX = 14
"""Height of a contact sheet's row labels in pixels."""


def label_font(size: int = LABEL_PX):
    """A font with Greek letters for the labels ("erased γ=2"): DejaVu Sans, which matplotlib (a
    requirement) ships; Pillow's built-in font draws γ as an empty box. Falls back to the built-in
    font (then :func:`contact_sheet` writes "gamma")."""
    from PIL import ImageFont

    try:
        import matplotlib

        return ImageFont.truetype(
            str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size
        )
    except (ImportError, OSError):
        return None


def contact_sheet(
    path: str | Path, rows: Sequence[np.ndarray], labels: Sequence[str], max_columns: int = 8, scale: int = 0
) -> Path:
    """A PNG grid: one row per variant (``rows[i]``: (frames, H, W, 3)), evenly spaced frames as columns,
    each row labelled on its left. Small frames are enlarged (nearest) to at least 96 pixels high."""
    from PIL import Image, ImageDraw

    if not rows or len(rows) != len(labels):
        raise ValueError("a contact sheet needs one label per row and at least one row")
    h, w = np.shape(rows[0])[1:3]
    scale = scale or max(1, int(np.ceil(96 / h)))
    n = min(max_columns, len(rows[0]))
    font = label_font()
    if font is None:
        labels = [label.replace("γ", "gamma ") for label in labels]
    label_w, pad = 120, 4
    sheet = Image.new("RGB", (label_w + n * (w * scale + pad), len(rows) * (h * scale + pad)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (frames, label) in enumerate(zip(rows, labels)):
        if np.shape(frames)[1:3] != (h, w):
            raise ValueError(f"row {label!r} has frames of size {np.shape(frames)[1:3]}, expected {(h, w)}")
        y = r * (h * scale + pad)
        _draw_label(draw, (4, y + 4), label, label_w - 8, font)
        for c, frame in enumerate(sheet_frames(frames, n)):
            tile = Image.fromarray(frame).resize((w * scale, h * scale), Image.NEAREST)
            sheet.paste(tile, (label_w + c * (w * scale + pad), y))
    path = Path(path)
    tmp = temp_path(path)
    try:
        sheet.save(tmp, format="PNG")
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _draw_label(draw, xy: tuple[int, int], label: str, width: int, font) -> None:
    """``label`` at ``xy``, broken into lines that fit ``width`` pixels (a long variant name wraps
    instead of running into the frames)."""
    words, lines = label.split(), []
    for word in words:
        trial = f"{lines[-1]} {word}" if lines else word
        if lines and draw.textlength(trial, font=font) <= width:
            lines[-1] = trial
        else:
            lines.append(word)
    step = (font.size if font is not None else 10) + 3
    for i, line in enumerate(lines[:4]):
        while len(line) > 1 and draw.textlength(line, font=font) > width:
            line = line[:-2] + "…"
        draw.text((xy[0], xy[1] + i * step), line, fill="black", font=font)
