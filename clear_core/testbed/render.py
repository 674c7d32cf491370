"""Procedural renderer: a :class:`~clear_core.testbed.world.SceneSpec` to a short clip, numpy only.

``render(spec)`` returns float32 frames (F, H, W, 3) in [0, 1]. It is a pure function of the spec
(fixed textures come from constant seeds), so the pipeline's decode is deterministic given the latent.
Order: background (panned) -> object sprite (moving) -> mannequin (animated) -> camera -> style filter.
A 8-frame 64×64 clip takes a few milliseconds.
"""

from __future__ import annotations

import colorsys
from functools import cache, lru_cache

import numpy as np

from clear_core.testbed.sprites import (
    AVATAR_PALETTE,
    OBJECT_PALETTE,
    OBJECT_SATURATION,
    OBJECT_SIZE,
    SKIN,
    SUBJECT_PALETTE,
    figure_sprite,
    object_sprite,
)
from clear_core.testbed.world import SKY_OBJECTS, WATER_OBJECTS, WATER_SETTINGS, SceneSpec

H = W = 64
BG_W = 96
"""Backgrounds are wider than the frame so that a pan has somewhere to go."""
GROUND = 56
"""Row of the figures' feet and of ground objects' bottom edge."""


# ------------------------------------------------------------------------------------ backgrounds
def _grid(h: int, w: int):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return y / h, x / w


def _fill(img, mask, color):
    img[mask] = color


@cache
def background(setting: str) -> np.ndarray:
    """(H, BG_W, 3) float32 backdrop of a setting."""
    h, w = H, BG_W
    y, x = _grid(h, w)
    rng = np.random.default_rng(sum(map(ord, setting)))
    img = np.zeros((h, w, 3), np.float32)
    sky = np.stack([0.45 + 0.3 * y, 0.65 + 0.2 * y, 0.95 + 0 * y], -1)
    img[:] = sky
    xs = x * w

    def horizon(level, color, wave=0.0, freq=1.0):
        m = y > level + wave * np.sin(xs / w * 2 * np.pi * freq)
        _fill(img, m, color)
        return m

    if setting == "sky":
        for cx, cy, r in [(0.15, 0.3, 0.1), (0.5, 0.55, 0.12), (0.8, 0.25, 0.09), (0.35, 0.8, 0.1)]:
            _fill(img, ((x - cx) * 1.5) ** 2 + (y - cy) ** 2 < r * r, (0.97, 0.97, 1.0))
    elif setting == "sea":
        m = horizon(0.45, (0.08, 0.25, 0.55))
        _fill(img, m & (np.sin(xs * 0.7 + y * 40) > 0.85), (0.6, 0.75, 0.9))
    elif setting == "beach":
        horizon(0.42, (0.1, 0.35, 0.65))
        horizon(0.6, (0.93, 0.85, 0.6), 0.03, 2)
    elif setting == "desert":
        img[:] = np.stack([0.95 + 0 * y, 0.85 - 0.1 * y, 0.6 + 0.1 * y], -1)
        horizon(0.55, (0.9, 0.7, 0.35), 0.06, 1.5)
        _fill(img, (x - 0.8) ** 2 * 2.25 + (y - 0.15) ** 2 < 0.006, (1.0, 0.95, 0.5))
    elif setting == "canyon":
        img[:] = np.stack([1.0 + 0 * y, 0.65 + 0.1 * y, 0.4 + 0.1 * y], -1)
        mesa = ((xs % 40) < 24) & (y > 0.3 + 0.05 * ((xs // 40) % 2))
        _fill(img, mesa, (0.65, 0.25, 0.12))
        horizon(0.7, (0.75, 0.35, 0.18))
    elif setting == "mountains":
        peak = y > 0.25 + np.abs(((xs / 30) % 1) - 0.5) * 0.8
        _fill(img, peak, (0.45, 0.45, 0.5))
        _fill(img, peak & (y < 0.38 + 0 * x), (0.98, 0.98, 1.0))
        horizon(0.7, (0.92, 0.93, 0.97))
    elif setting == "forest":
        horizon(0.6, (0.15, 0.35, 0.12))
        trees = y > 0.2 + np.abs(((xs / 12) % 1) - 0.5) * 1.2
        _fill(img, trees & (y < 0.65), (0.05, 0.3, 0.12))
    elif setting == "field":
        m = horizon(0.5, (0.45, 0.7, 0.25))
        _fill(img, m & (np.sin(y * 90) > 0.6), (0.55, 0.78, 0.3))
    elif setting == "lake":
        horizon(0.4, (0.25, 0.5, 0.25))
        m = horizon(0.5, (0.2, 0.45, 0.7))
        _fill(img, m & (((xs + 3) % 17) < 1) & (y > 0.85), (0.2, 0.4, 0.15))
    elif setting == "town":
        img[:] = (0.75, 0.85, 0.95)
        cols = [(0.9, 0.7, 0.5), (0.8, 0.5, 0.45), (0.95, 0.9, 0.7), (0.6, 0.7, 0.8)]
        for i in range(0, w, 16):
            top = 0.15 + 0.1 * ((i // 16) % 3)
            _fill(img, (xs >= i) & (xs < i + 16) & (y > top) & (y < 0.7), cols[(i // 16) % 4])
        _fill(img, (y > 0.2) & (y < 0.66) & ((xs % 8) < 3) & ((y * h % 10) < 4), (0.3, 0.35, 0.45))
        m = horizon(0.7, (0.6, 0.58, 0.55))
        _fill(img, m & (((xs % 6) < 1) | ((y * h % 5) < 1)), (0.45, 0.43, 0.4))
    elif setting == "street":
        img[:] = (0.7, 0.75, 0.8)
        for i in range(0, w, 20):
            top = 0.05 + 0.12 * ((i // 20) % 2)
            _fill(img, (xs >= i) & (xs < i + 18) & (y > top) & (y < 0.62), (0.5, 0.5, 0.55))
        _fill(img, (y < 0.6) & (y > 0.1) & ((xs % 6) < 2) & ((y * h % 8) < 3), (0.85, 0.85, 0.6))
        horizon(0.62, (0.7, 0.7, 0.7))
        horizon(0.72, (0.25, 0.25, 0.28))
        _fill(img, (np.abs(y - 0.86) < 0.015) & ((xs % 12) < 6), (1.0, 1.0, 1.0))
    elif setting == "library":
        img[:] = (0.35, 0.22, 0.12)
        shelf = (y * h % 14) < 2
        books = ~shelf & (y < 0.75)
        hues = (np.floor(xs / 3) * 0.37) % 1
        book_col = np.stack(
            [0.4 + 0.4 * hues, 0.2 + 0.3 * ((hues * 3) % 1), 0.15 + 0.3 * ((hues * 7) % 1)], -1
        )
        img[books] = book_col[books]
        _fill(img, shelf, (0.25, 0.15, 0.08))
        horizon(0.75, (0.45, 0.3, 0.18))
    elif setting == "garden":
        m = horizon(0.55, (0.3, 0.65, 0.25))
        _fill(img, (y > 0.42) & (y < 0.56), (0.12, 0.42, 0.15))
        pts = rng.integers(0, [h, w], size=(60, 2))
        pts = pts[pts[:, 0] > 0.6 * h]
        cols = np.array([(1, 0.3, 0.4), (1, 0.9, 0.2), (0.9, 0.5, 1.0)], np.float32)
        for k, (py, px) in enumerate(pts):
            img[py, px] = cols[k % 3]
        del m
    elif setting == "living_room":
        img[:] = (0.9, 0.85, 0.7)
        _fill(img, (xs % 8) < 2, (0.8, 0.72, 0.55))
        _fill(img, (xs > 60) & (xs < 84) & (y > 0.12) & (y < 0.45), (0.7, 0.85, 1.0))
        horizon(0.72, (0.6, 0.4, 0.22))
        _fill(img, (xs > 8) & (xs < 40) & (y > 0.5) & (y < 0.75), (0.35, 0.55, 0.45))
    elif setting == "classroom":
        img[:] = (0.92, 0.92, 0.85)
        _fill(img, (xs > 10) & (xs < 70) & (y > 0.1) & (y < 0.45), (0.1, 0.35, 0.2))
        _fill(img, (xs > 14) & (xs < 60) & (np.abs(y - 0.25) < 0.01), (0.9, 0.9, 0.9))
        horizon(0.75, (0.75, 0.6, 0.4))
    elif setting == "stage":
        img[:] = (0.08, 0.05, 0.1)
        curtain = (xs < 18) | (xs > w - 18) | (y < 0.12)
        _fill(img, curtain, (0.6, 0.05, 0.08))
        _fill(img, curtain & ((xs % 5) < 1), (0.4, 0.02, 0.05))
        horizon(0.75, (0.5, 0.32, 0.15))
        _fill(img, ((x - 0.5) * 2) ** 2 + ((y - 0.88) * 5) ** 2 < 0.2, (0.95, 0.85, 0.55))
    elif setting == "studio":
        img[:] = np.stack([0.55 + 0.2 * y, 0.6 + 0.15 * y, 0.68 + 0.1 * y], -1)
        horizon(0.78, (0.4, 0.42, 0.45))
        _fill(img, (xs > 80) & (xs < 92) & (y > 0.1) & (y < 0.3), (1.0, 1.0, 0.95))
    else:
        raise ValueError(f"unknown setting {setting!r}")
    return np.clip(img, 0, 1)


# -------------------------------------------------------------------------------------- compositing
def _hue_rgb(hue: float, sat: float = 0.8) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb((hue + 1) / 2, sat, 0.92)
    return np.array([r, g, b], np.float32)


def _object_palette(name: str, hue: float) -> np.ndarray:
    pal = np.zeros((9, 3), np.float32)
    second, accent = OBJECT_PALETTE.get(name, ((0.55, 0.55, 0.58), (1.0, 1.0, 1.0)))
    sat = OBJECT_SATURATION.get(name, 0.8)
    pal[1] = _hue_rgb(hue, 0.85) * sat + (1 - sat) * 0.95
    pal[2], pal[3], pal[4], pal[5] = second, (0.08, 0.08, 0.1), (0.97, 0.97, 0.97), accent
    return pal


def _figure_palette(subject: str, identity: str) -> np.ndarray:
    pal = np.zeros((9, 3), np.float32)
    pal[3], pal[4], pal[5] = (0.12, 0.08, 0.06), (0.97, 0.97, 0.97), SKIN
    if identity != "none":
        top, bottom, emblem = AVATAR_PALETTE[identity]
        pal[1], pal[7], pal[6] = top, bottom, emblem
    else:
        top, bottom, hat = SUBJECT_PALETTE[subject]
        pal[1], pal[7], pal[8] = top, bottom, hat
    pal[2] = (0.45, 0.3, 0.18)  # seat
    return pal


def _paste(
    frame: np.ndarray, labels: np.ndarray, pal: np.ndarray, cx: float, cy: float, size: int, flip: bool
):
    """Paste a label sprite, resized to ``size`` px (nearest), centred at (cx, cy)."""
    if size < 2:
        return
    n = labels.shape[0]
    idx = (np.arange(size) * n // size).astype(np.intp)
    cols = idx[::-1] if flip else idx
    sprite = labels[idx][:, cols]
    y0, x0 = int(round(cy - size / 2)), int(round(cx - size / 2))
    ys0, xs0 = max(0, -y0), max(0, -x0)
    ys1, xs1 = min(size, frame.shape[0] - y0), min(size, frame.shape[1] - x0)
    if ys1 <= ys0 or xs1 <= xs0:
        return
    sub = sprite[ys0:ys1, xs0:xs1]
    region = frame[y0 + ys0 : y0 + ys1, x0 + xs0 : x0 + xs1]
    mask = sub > 0
    region[mask] = pal[sub[mask]]


def _poses(action: str, n: int) -> list[str]:
    if action == "walking":
        return ["walk_a" if i % 2 == 0 else "walk_b" for i in range(n)]
    if action == "waving":
        return ["wave_up" if i % 2 == 0 else "wave_down" for i in range(n)]
    if action == "sitting":
        return ["sit"] * n
    return ["stand"] * n


def _camera_scale(camera: str, t: float) -> float:
    return {"close_up": 1.45, "zoom": 1.0 + 0.5 * t}.get(camera, 1.0)


@lru_cache(maxsize=64)
def _zoom_index(scale: float, cy: float, cx: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    i = np.arange(n, dtype=np.float32)
    ys = np.clip(np.round(cy + (i - cy) / scale), 0, n - 1).astype(np.intp)
    xs = np.clip(np.round(cx + (i - cx) / scale), 0, n - 1).astype(np.intp)
    return ys, xs


def compose(spec: SceneSpec, num_frames: int = 8) -> np.ndarray:
    """The unfiltered clip (F, H, W, 3) float32: background, object, figure, camera."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be ≥ 1, got {num_frames}")
    bg = background(spec.setting)
    wide = 0.72 if spec.camera == "wide" else 1.0
    frames = np.empty((num_frames, H, W, 3), np.float32)
    obj = spec.object
    has_fig = spec.subject != "none"
    fig_left = spec.x > 0  # the figure stands on the side away from the object
    ox = W / 2 + spec.x * (16 if has_fig else 20)
    if has_fig:
        ox = W / 2 + (10 + 10 * abs(spec.x)) * (1 if fig_left else -1)
    if obj != "none":
        osize = int(round(22 * OBJECT_SIZE.get(obj, 1.0) * (1 + 0.22 * spec.size) * wide))
        # legibility floor: a wide shot never shrinks a sprite below the smallest size it has in the
        # other shots (10 px, a small tennis ball), where dimples vs seams can still be told apart
        osize = max(osize, 10)
        if obj in SKY_OBJECTS:
            oy = 16 + 6 * spec.y
        elif obj in WATER_OBJECTS and spec.setting in WATER_SETTINGS:
            oy = 50 + 4 * spec.y
        else:
            oy = GROUND - osize / 2 + 2 * spec.y
        pal = _object_palette(obj, spec.hue)
        labels = object_sprite(obj)
    if has_fig:
        fsize = int(round(30 * (0.72 if spec.subject == "child" else 1.0) * wide))
        fx = W / 2 + (-1 if fig_left else 1) * 14
        fy = GROUND - fsize / 2
        fpal = _figure_palette(spec.subject, spec.identity)
        poses = _poses(spec.action, num_frames)
    for f in range(num_frames):
        t = f / max(1, num_frames - 1)
        off = int(round(30 * t)) if spec.camera == "pan" else 0
        frame = frames[f]
        frame[:] = bg[:, off : off + W]
        if obj != "none":
            _paste(frame, labels, pal, ox + 2.0 * spec.dx * f, oy + 1.2 * spec.dy * f, osize, spec.dx > 0.3)
        if has_fig:
            walk = (1.5 * f * (1 if fig_left else -1)) if spec.action == "walking" else 0.0
            figure = figure_sprite(spec.subject, spec.identity, spec.clothing, poses[f])
            _paste(frame, figure, fpal, fx + walk, fy, fsize, not fig_left and spec.action == "walking")
        scale = _camera_scale(spec.camera, t)
        if scale != 1.0:
            ys, xs = _zoom_index(round(scale, 3), H / 2, W / 2, H)
            frames[f] = frame[ys][:, xs]
    return frames


# ------------------------------------------------------------------------------------------ styles
def _lum(x: np.ndarray) -> np.ndarray:
    return x @ np.array([0.299, 0.587, 0.114], np.float32)


def _edges(lum: np.ndarray) -> np.ndarray:
    gx = np.abs(np.roll(lum, -1, axis=-1) - np.roll(lum, 1, axis=-1))
    gy = np.abs(np.roll(lum, -1, axis=-2) - np.roll(lum, 1, axis=-2))
    e = gx + gy
    e[..., 0, :] = e[..., -1, :] = 0
    e[..., :, 0] = e[..., :, -1] = 0
    return e


def _blur(x: np.ndarray) -> np.ndarray:
    out = x.copy()
    for axis in (1, 2):
        out = (np.roll(out, 1, axis) + out + np.roll(out, -1, axis)) / 3
    return out


@cache
def _static(name: str) -> np.ndarray:
    """Fixed textures and maps for the filters."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    rng = np.random.default_rng(7)
    if name == "paper":
        return (0.94 + 0.06 * rng.random((H, W))).astype(np.float32)
    if name == "hatch":
        return (((x + y) % 4) < 1).astype(np.float32)
    if name == "swirl":
        dy = 2.2 * np.sin(x / 4.0 + y / 9.0)
        dx = 2.2 * np.cos(y / 4.0 - x / 11.0)
        ys = np.clip(np.round(y + dy), 0, H - 1).astype(np.intp)
        xs = np.clip(np.round(x + dx), 0, W - 1).astype(np.intp)
        return np.stack([ys, xs])
    if name == "strokes":
        return (0.82 + 0.18 * np.sin(x * 1.3 + 2 * np.sin(y / 3)) ** 2).astype(np.float32)
    if name == "facets":
        pts = rng.random((40, 2)) * [H, W]
        d = (y[..., None] - pts[:, 0]) ** 2 + (x[..., None] - pts[:, 1]) ** 2
        return d.argmin(-1).astype(np.intp)
    if name == "quadrant":
        return ((y >= H / 2) * 2 + (x >= W / 2)).astype(np.intp)
    if name == "rembrandt_light":
        return np.clip(1.2 - np.sqrt(((x - 18) / 50) ** 2 + ((y - 16) / 50) ** 2), 0.4, 1).astype(np.float32)
    if name == "side_light":
        return (0.42 + 0.85 / (1 + np.exp((x - 46) / 2.5))).astype(np.float32)
    raise KeyError(name)


_WARHOL = np.array(
    [
        [(0.1, 0.1, 0.4), (1.0, 0.2, 0.6), (1.0, 0.95, 0.2)],
        [(0.05, 0.3, 0.2), (0.2, 0.9, 1.0), (1.0, 0.5, 0.1)],
        [(0.4, 0.0, 0.3), (1.0, 0.85, 0.0), (0.6, 1.0, 0.4)],
        [(0.0, 0.15, 0.5), (1.0, 0.3, 0.2), (0.95, 0.6, 0.9)],
    ],
    np.float32,
)


def stylize(frames: np.ndarray, style: str) -> np.ndarray:
    """Apply a style filter to (F, H, W, 3) float32 frames."""
    if style == "photo":
        return frames
    lum = _lum(frames)
    if style == "sketch":
        e = np.clip(_edges(lum) * 3.0, 0, 1)
        dark = (lum < 0.35) * _static("hatch") * 0.5
        g = np.clip(1 - e - dark, 0, 1) * _static("paper")
        return np.repeat(g[..., None], 3, -1) * np.array([1.0, 0.98, 0.94], np.float32)
    if style == "watercolour":
        soft = _blur(_blur(frames))
        washed = 0.55 * soft + 0.45 * np.array([0.98, 0.96, 0.92], np.float32)
        rim = np.clip(_edges(_lum(soft)) * 1.5, 0, 0.35)[..., None]
        return np.clip((washed - rim * 0.5) * _static("paper")[..., None], 0, 1)
    if style == "van_gogh":
        ys, xs = _static("swirl")
        warped = frames[:, ys, xs]
        wl = _lum(warped)[..., None]
        blue, yellow = np.array([0.08, 0.18, 0.6], np.float32), np.array([1.0, 0.85, 0.15], np.float32)
        tone = blue + (yellow - blue) * wl
        out = 0.45 * warped + 0.55 * tone
        return np.clip(out * _static("strokes")[..., None], 0, 1)
    if style == "picasso":
        cells = _static("facets")
        out = np.empty_like(frames)
        counts = np.bincount(cells.ravel(), minlength=40).astype(np.float32)
        for f in range(frames.shape[0]):
            for c in range(3):
                mean = np.bincount(cells.ravel(), frames[f, :, :, c].ravel(), minlength=40) / counts
                # 0.3 facet mean (was 0.5) and 5 tone levels (was 4): small sprites stay legible
                out[f, :, :, c] = 0.3 * mean[cells] + 0.7 * frames[f, :, :, c]
        q = np.round(out * 4) / 4
        border = (cells != np.roll(cells, 1, 0)) | (cells != np.roll(cells, 1, 1))
        q[:, border] = (0.1, 0.08, 0.05)
        ochre = np.array([0.85, 0.6, 0.3], np.float32)
        return np.clip(0.75 * q + 0.25 * ochre * _lum(q)[..., None] * 1.6, 0, 1)
    if style == "rembrandt":
        light = _static("rembrandt_light")[..., None]
        warm = np.array([1.0, 0.72, 0.38], np.float32)
        out = (0.25 + 0.75 * lum[..., None]) * warm * light * 0.95
        out = 0.7 * out + 0.3 * frames * warm * light
        return np.clip(out + np.array([0.08, 0.04, 0.01], np.float32), 0, 1)
    if style == "andy_warhol":
        level = np.clip((lum * 3).astype(np.intp), 0, 2)
        quad = _static("quadrant")
        out = _WARHOL[quad[None], level]
        edges = _edges(lum) > 0.25
        out[edges] = 0.0
        return out
    if style == "caravaggio":
        lit = np.clip((frames - 0.08) * 1.35, 0, 1) * _static("side_light")[..., None]
        out = np.where((_lum(lit) < 0.12)[..., None], 0.0, lit)
        return np.clip(out, 0, 1).astype(np.float32)
    raise ValueError(f"unknown style {style!r}")


def render(spec: SceneSpec, num_frames: int = 8) -> np.ndarray:
    """(F, 64, 64, 3) float32 in [0, 1]: the clip of ``spec``. Deterministic."""
    return stylize(compose(spec, num_frames), spec.style).astype(np.float32, copy=False)


def to_uint8(frames: np.ndarray) -> np.ndarray:
    return (np.clip(frames, 0, 1) * 255 + 0.5).astype(np.uint8)
