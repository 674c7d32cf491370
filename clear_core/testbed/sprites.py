"""Sprites of the testbed's world as label maps: objects, the mannequin figure and its avatars.

A sprite is a (S, S) uint8 map of palette labels drawn from shapes on a [-1, 1]² grid (u right, v down);
the renderer colours it (label 1 takes the object's hue) and pastes it at any size. Label meanings:
0 transparent, 1 primary (hue / garment top), 2 secondary, 3 dark, 4 white, 5 accent / skin,
6 emblem, 7 garment bottom, 8 hat. Drawn once per (kind, pose) and cached.
"""

from __future__ import annotations

from functools import cache

import numpy as np

S = 32
"""Sprite canvas side in pixels."""

_g = (np.arange(S) + 0.5) / S * 2 - 1
V, U = np.meshgrid(_g, _g, indexing="ij")


def _circle(cx, cy, r):
    return (U - cx) ** 2 + (V - cy) ** 2 <= r * r


def _ellipse(cx, cy, rx, ry):
    return ((U - cx) / rx) ** 2 + ((V - cy) / ry) ** 2 <= 1


def _rect(x0, y0, x1, y1):
    return (x0 <= U) & (x1 >= U) & (y0 <= V) & (y1 >= V)


def _tri(a, b, c):
    def side(p, q):
        return (U - q[0]) * (p[1] - q[1]) - (p[0] - q[0]) * (V - q[1])

    d1, d2, d3 = side(a, b), side(b, c), side(c, a)
    neg = (d1 < 0) | (d2 < 0) | (d3 < 0)
    pos = (d1 > 0) | (d2 > 0) | (d3 > 0)
    return ~(neg & pos)


def _line(x0, y0, x1, y1, w=0.06):
    px, py = U - x0, V - y0
    dx, dy = x1 - x0, y1 - y0
    t = np.clip((px * dx + py * dy) / (dx * dx + dy * dy + 1e-9), 0, 1)
    return (px - t * dx) ** 2 + (py - t * dy) ** 2 <= w * w


def _ring(cx, cy, r0, r1):
    d = (U - cx) ** 2 + (V - cy) ** 2
    return (d <= r1 * r1) & (d >= r0 * r0)


def _dots(mask, step, r, phase=0.0):
    a = ((U + 1 + phase) / step) % 1 - 0.5
    b = ((V + 1 + phase) / step) % 1 - 0.5
    return mask & (a * a + b * b <= (r / step) ** 2)


def _paint(layers) -> np.ndarray:
    out = np.zeros((S, S), np.uint8)
    for label, mask in layers:
        out[mask] = label
    return out


# ----------------------------------------------------------------------------------------- objects
def _parachute():
    dome = _ellipse(0, -0.3, 0.95, 0.6) & (V <= -0.3)
    stripes = dome & ((np.floor((U + 1) * 3.5) % 2) == 0)
    lines = (
        _line(-0.9, -0.32, 0, 0.55, 0.035)
        | _line(-0.3, -0.32, 0, 0.55, 0.035)
        | _line(0.3, -0.32, 0, 0.55, 0.035)
        | _line(0.9, -0.32, 0, 0.55, 0.035)
    )
    return _paint(
        [(3, lines), (1, dome), (4, stripes), (3, _circle(0, 0.62, 0.11)), (3, _rect(-0.06, 0.6, 0.06, 0.9))]
    )


def _kite():
    body = np.abs(U) / 0.55 + np.abs(V + 0.3) / 0.65 <= 1
    half = body & (U > 0) & (V < -0.3)
    spars = (_line(0, -0.95, 0, 0.35, 0.03) | _line(-0.55, -0.3, 0.55, -0.3, 0.03)) & body
    tail = np.abs(U - 0.15 * np.sin((V - 0.35) * 9)) < 0.04
    tail &= V > 0.35
    bows = _tri((-0.12, 0.55), (0.12, 0.6), (-0.12, 0.65)) | _tri((-0.12, 0.8), (0.12, 0.85), (-0.12, 0.9))
    return _paint([(1, body), (5, half), (3, spars), (3, tail), (5, bows)])


def _balloon():
    env = _circle(0, -0.35, 0.6) | _tri((-0.5, -0.1), (0.5, -0.1), (0, 0.35))
    gores = env & ((np.floor((U + 1) * 4) % 2) == 0)
    ropes = _line(-0.2, 0.3, -0.15, 0.62, 0.03) | _line(0.2, 0.3, 0.15, 0.62, 0.03)
    return _paint([(1, env), (5, gores), (3, ropes), (2, _rect(-0.17, 0.6, 0.17, 0.88))])


def _umbrella():
    canopy = _ellipse(0, -0.1, 0.9, 0.65) & (-0.12 - 0.1 * np.abs(np.sin(U * 7)) >= V)
    shaft = _line(0, -0.75, 0, 0.7, 0.04)
    hook = _ring(0.15, 0.7, 0.1, 0.18) & (V >= 0.7)
    return _paint([(1, canopy), (3, shaft), (3, hook)])


def _church():
    body = _rect(-0.75, 0.05, 0.45, 0.95)
    roof = _tri((-0.85, 0.08), (0.55, 0.08), (-0.15, -0.35))
    steeple = _rect(0.42, -0.45, 0.78, 0.95)
    spire = _tri((0.36, -0.45), (0.84, -0.45), (0.6, -0.82))
    cross = _line(0.6, -0.98, 0.6, -0.8, 0.035) | _line(0.52, -0.91, 0.68, -0.91, 0.035)
    door = _ellipse(-0.15, 0.72, 0.14, 0.3) & (V <= 0.95)
    rose = _circle(-0.15, 0.35, 0.1) | _circle(0.6, -0.15, 0.08)
    return _paint([(4, body), (1, roof), (4, steeple), (1, spire), (3, cross), (3, door), (3, rose)])


def _tower():
    shaft = _rect(-0.35, -0.6, 0.35, 0.95)
    top = _rect(-0.48, -0.85, 0.48, -0.6) & ~((np.floor((U + 0.48) / 0.16) % 2 == 1) & (V < -0.73))
    slits = _rect(-0.04, -0.4, 0.04, -0.2) | _rect(-0.04, 0.1, 0.04, 0.3) | _rect(-0.1, 0.7, 0.1, 0.95)
    bricks = shaft & (np.abs(((V + 1) / 0.2) % 1 - 0.5) < 0.08)
    return _paint([(2, shaft), (2, top), (1, bricks), (3, slits)])


def _house():
    body = _rect(-0.7, 0.0, 0.7, 0.92)
    roof = _tri((-0.88, 0.02), (0.88, 0.02), (0, -0.6))
    chimney = _rect(0.35, -0.55, 0.52, -0.2)
    win = _rect(-0.55, 0.2, -0.2, 0.5) | _rect(0.2, 0.2, 0.55, 0.5)
    cross = win & ((np.abs(U + 0.375) < 0.03) | (np.abs(U - 0.375) < 0.03) | (np.abs(V - 0.35) < 0.03))
    return _paint(
        [(3, chimney), (1, body), (2, roof), (4, win), (3, cross), (3, _rect(-0.12, 0.55, 0.12, 0.92))]
    )


def _golf_ball():
    ball = _circle(0, -0.15, 0.55)
    dimples = _dots(ball & ~_circle(0, -0.15, 0.1), 0.2, 0.045)
    tee = _rect(-0.06, 0.42, 0.06, 0.95) | _rect(-0.22, 0.38, 0.22, 0.47)
    return _paint([(2, tee), (1, ball), (3, dimples)])


def _tennis_ball():
    ball = _circle(0, 0, 0.62)
    seam = ball & (np.abs(np.abs(U) - (0.12 + 0.55 * V**2)) < 0.06)
    return _paint([(1, ball), (4, seam)])


def _french_horn():
    coil = _ring(-0.2, 0.05, 0.34, 0.55) | _ring(-0.2, 0.05, 0.1, 0.2)
    bell = _tri((0.15, 0.0), (0.95, -0.55), (0.95, 0.55))
    rim = bell & (U > 0.86)
    pipe = _line(-0.2, 0.05, -0.85, 0.65, 0.05)
    return _paint([(1, coil), (1, bell), (3, rim), (3, pipe), (3, _circle(-0.87, 0.68, 0.07))])


def _trumpet():
    tube = _rect(-0.9, -0.05, 0.45, 0.07) | (_ring(0.0, 0.25, 0.12, 0.22) & (V > 0.1))
    bell = _tri((0.35, 0.01), (0.95, -0.38), (0.95, 0.4))
    valves = (
        _rect(-0.42, -0.42, -0.32, -0.05)
        | _rect(-0.22, -0.42, -0.12, -0.05)
        | _rect(-0.02, -0.42, 0.08, -0.05)
    )
    return _paint([(1, tube), (1, bell), (2, valves), (3, bell & (U > 0.88))])


def _tuba():
    body = _rect(-0.32, -0.35, 0.2, 0.75) | _circle(-0.06, 0.72, 0.26)
    bell = (V < -0.3) & (V > -0.95) & (np.abs(U + 0.06) < 0.26 + (-0.3 - V) * 0.55)
    coil = _ring(0.35, 0.35, 0.12, 0.24)
    return _paint([(1, body), (1, bell), (1, coil), (3, bell & (V < -0.88)), (2, _rect(0.2, 0.0, 0.55, 0.1))])


def _cassette():
    body = _rect(-0.88, -0.5, 0.88, 0.55)
    window = _rect(-0.62, -0.3, 0.62, 0.22)
    reels = _circle(-0.3, -0.04, 0.16) | _circle(0.3, -0.04, 0.16)
    hubs = _circle(-0.3, -0.04, 0.06) | _circle(0.3, -0.04, 0.06)
    keys = _rect(-0.8, -0.68, 0.8, -0.5) & (np.floor((U + 0.8) / 0.2) % 2 == 0)
    return _paint([(1, body), (2, keys), (3, window), (4, reels), (3, hubs)])


def _radio():
    body = _rect(-0.88, -0.45, 0.88, 0.6)
    grill = _circle(-0.4, 0.08, 0.36)
    holes = _dots(grill, 0.14, 0.035)
    antenna = _line(0.6, -0.45, 0.95, -1.0, 0.035)
    return _paint(
        [
            (1, body),
            (3, grill),
            (4, holes),
            (4, _circle(0.45, 0.05, 0.16)),
            (3, antenna),
            (4, _rect(0.15, 0.35, 0.75, 0.45)),
        ]
    )


def _chain_saw():
    bar = _rect(-0.1, -0.02, 0.85, 0.24) | _circle(0.85, 0.11, 0.13)
    teeth = (np.abs(V + 0.04) < 0.05) | (np.abs(V - 0.26) < 0.05)
    teeth &= (U > -0.1) & (U < 0.95) & (np.floor(U * 12) % 2 == 0)
    body = _rect(-0.9, -0.3, -0.1, 0.45)
    handle = _ring(-0.5, -0.3, 0.2, 0.3) & (V < -0.3)
    return _paint([(2, bar), (3, teeth), (1, body), (3, handle), (3, _rect(-0.8, 0.15, -0.55, 0.3))])


def _garbage_truck():
    body = _rect(-0.95, -0.6, 0.4, 0.55) & ~_tri((-0.96, -0.61), (-0.6, -0.61), (-0.96, -0.1))
    ribs = body & (np.abs(((U + 1) / 0.22) % 1 - 0.5) < 0.12) & (V < 0.4)
    cab = _rect(0.45, -0.25, 0.95, 0.55)
    win = _rect(0.6, -0.15, 0.9, 0.1)
    wheels = _circle(-0.55, 0.62, 0.2) | _circle(0.65, 0.62, 0.2)
    arm = _line(0.42, -0.4, 0.7, -0.6, 0.05)
    return _paint([(1, body), (2, ribs), (1, cab), (4, win), (3, wheels), (3, arm)])


def _truck():
    cab = _rect(0.4, -0.35, 0.95, 0.55)
    bed = _rect(-0.95, 0.25, 0.4, 0.45)
    crates = _rect(-0.85, -0.05, -0.45, 0.25) | _rect(-0.35, 0.0, 0.05, 0.25)
    wheels = _circle(-0.6, 0.6, 0.2) | _circle(0.65, 0.6, 0.2)
    return _paint([(2, bed), (5, crates), (1, cab), (4, _rect(0.55, -0.25, 0.9, 0.05)), (3, wheels)])


def _bus():
    body = _rect(-0.95, -0.5, 0.95, 0.55)
    wins = _rect(-0.85, -0.35, 0.85, -0.05) & (np.abs(((U + 1) / 0.3) % 1 - 0.5) < 0.38)
    door = _rect(0.6, 0.0, 0.8, 0.5)
    wheels = _circle(-0.6, 0.58, 0.18) | _circle(0.6, 0.58, 0.18)
    return _paint([(1, body), (4, wins), (3, door), (3, wheels), (2, _rect(-0.95, 0.2, 0.95, 0.27))])


def _gas_pump():
    body = _rect(-0.4, -0.7, 0.35, 0.9)
    sign = _rect(-0.5, -0.98, 0.45, -0.72)
    screen = _rect(-0.28, -0.55, 0.23, -0.2)
    digits = screen & (np.abs(((U + 1) / 0.12) % 1 - 0.5) < 0.15) & (np.abs(V + 0.37) < 0.06)
    hose = (_ring(0.35, 0.2, 0.32, 0.4) & (U > 0.35)) | _line(0.35, 0.55, 0.6, 0.55, 0.04)
    nozzle = _rect(0.55, 0.45, 0.8, 0.6)
    return _paint(
        [
            (1, body),
            (2, sign),
            (4, screen),
            (3, digits),
            (3, hose),
            (3, nozzle),
            (3, _rect(-0.5, 0.85, 0.45, 0.98)),
        ]
    )


def _tench():
    body = _ellipse(-0.1, 0.0, 0.68, 0.38)
    back = body & (V < -0.15)
    tail = _circle(0.78, 0.0, 0.3) & (U > 0.55)
    fins = _ellipse(-0.05, 0.38, 0.18, 0.1) | _ellipse(-0.15, -0.4, 0.22, 0.1)
    eye = _circle(-0.55, -0.08, 0.08)
    return _paint(
        [(1, fins), (1, tail), (1, body), (2, back), (5, eye), (3, _line(-0.78, 0.05, -0.9, 0.22, 0.025))]
    )


def _fish():
    body = _ellipse(-0.05, 0.0, 0.62, 0.22)
    stripes = body & (np.floor((U + 1) * 6) % 2 == 0)
    tail = _tri((0.5, 0.0), (0.95, -0.35), (0.8, 0.0)) | _tri((0.5, 0.0), (0.95, 0.35), (0.8, 0.0))
    fin = _tri((-0.2, -0.18), (0.2, -0.2), (0.05, -0.5))
    return _paint([(1, body), (3, stripes), (1, tail), (1, fin), (3, _circle(-0.5, -0.05, 0.05))])


def _dog_legs(x0, x1, top, bottom, w):
    return _rect(x0 - w, top, x0 + w, bottom) | _rect(x1 - w, top, x1 + w, bottom)


def _springer():
    body = _ellipse(0.05, 0.1, 0.55, 0.27)
    patches = body & (_circle(0.2, 0.0, 0.25) | _circle(-0.2, 0.2, 0.15))
    legs = _dog_legs(-0.3, 0.4, 0.2, 0.75, 0.07) | _dog_legs(-0.15, 0.25, 0.2, 0.75, 0.06)
    head = _circle(-0.58, -0.22, 0.22)
    ear = _ellipse(-0.55, 0.05, 0.11, 0.28)
    tail = _line(0.55, 0.0, 0.8, -0.3, 0.06)
    return _paint(
        [
            (4, legs),
            (4, body),
            (1, patches),
            (4, head),
            (1, ear),
            (1, tail),
            (3, _circle(-0.72, -0.28, 0.05)),
            (3, _circle(-0.8, -0.15, 0.06)),
        ]
    )


def _poodle():
    puffs = (
        _circle(-0.1, 0.0, 0.3)
        | _circle(0.3, 0.0, 0.25)
        | _circle(-0.55, -0.45, 0.24)
        | _circle(0.72, -0.3, 0.13)
    )
    legs = _dog_legs(-0.25, 0.35, 0.1, 0.85, 0.05)
    poms = _circle(-0.25, 0.82, 0.1) | _circle(0.35, 0.82, 0.1)
    curls = _dots(puffs | poms, 0.16, 0.03)
    neck = _rect(-0.5, -0.3, -0.3, 0.05)
    return _paint([(1, legs), (1, neck), (1, puffs), (1, poms), (3, curls), (3, _circle(-0.62, -0.5, 0.045))])


def _dalmatian():
    body = _ellipse(0.05, 0.0, 0.55, 0.24)
    legs = _dog_legs(-0.3, 0.4, 0.1, 0.9, 0.055)
    head = _ellipse(-0.62, -0.35, 0.2, 0.15)
    neck = _line(-0.35, -0.05, -0.58, -0.3, 0.1)
    spots_area = body | legs | head | neck
    spots = spots_area & (np.sin(U * 23) * np.sin(V * 19 + 1.3) > 0.55)
    ear = _tri((-0.55, -0.48), (-0.42, -0.48), (-0.48, -0.28))
    return _paint([(4, spots_area), (3, spots), (3, ear), (4, _line(0.6, -0.05, 0.9, -0.35, 0.04))])


_OBJECT_DRAW = {
    "parachute": _parachute,
    "church": _church,
    "golf_ball": _golf_ball,
    "french_horn": _french_horn,
    "cassette_player": _cassette,
    "chain_saw": _chain_saw,
    "garbage_truck": _garbage_truck,
    "gas_pump": _gas_pump,
    "tench": _tench,
    "english_springer": _springer,
    "kite": _kite,
    "hot_air_balloon": _balloon,
    "umbrella": _umbrella,
    "tower": _tower,
    "house": _house,
    "tennis_ball": _tennis_ball,
    "trumpet": _trumpet,
    "tuba": _tuba,
    "radio": _radio,
    "truck": _truck,
    "bus": _bus,
    "fish": _fish,
    "poodle": _poodle,
    "dalmatian": _dalmatian,
}

OBJECT_PALETTE = {
    # label 2 (secondary) and 5 (accent) per object; label 1 is the hue, 3 dark, 4 white
    "golf_ball": ((0.55, 0.35, 0.2), (1, 1, 1)),
    "chain_saw": ((0.6, 0.62, 0.65), (1, 1, 1)),
    "garbage_truck": ((0.3, 0.32, 0.3), (1, 1, 1)),
    "tench": ((0.2, 0.28, 0.12), (0.9, 0.1, 0.1)),
    "tower": ((0.6, 0.58, 0.55), (1, 1, 1)),
    "house": ((0.55, 0.12, 0.1), (1, 1, 1)),
    "hot_air_balloon": ((0.5, 0.32, 0.15), (1.0, 0.9, 0.2)),
    "kite": ((0.3, 0.3, 0.3), (1.0, 0.95, 0.3)),
    "truck": ((0.5, 0.35, 0.2), (0.75, 0.55, 0.3)),
}
"""(secondary, accent) colours; objects not listed use grey and white."""

OBJECT_SATURATION = {"golf_ball": 0.25, "church": 0.6, "english_springer": 0.55, "dalmatian": 0.5}
"""How strongly the hue colours label 1 (golf balls stay nearly white)."""

OBJECT_SIZE = {
    "church": 1.6,
    "tower": 1.5,
    "house": 1.45,
    "garbage_truck": 1.5,
    "truck": 1.5,
    "bus": 1.55,
    "hot_air_balloon": 1.25,
    "parachute": 1.2,
    "golf_ball": 0.7,
    "tennis_ball": 0.6,
    "gas_pump": 1.05,
}
"""Relative sprite size (1 = 22 px on a 64 px frame)."""


@cache
def object_sprite(name: str) -> np.ndarray:
    """(S, S) label map of an object."""
    return _OBJECT_DRAW[name]()


# ------------------------------------------------------------------------------------------ figure
POSES = ("stand", "walk_a", "walk_b", "wave_up", "wave_down", "sit")

EMBLEMS = {
    "angela_merkel": "diamond",
    "barack_obama": "circle",
    "donald_trump": "square",
    "joe_biden": "triangle",
    "queen_elizabeth_ii": "crown",
}


def _emblem(shape: str, cx: float, cy: float, r: float) -> np.ndarray:
    if shape == "circle":
        return _circle(cx, cy, r)
    if shape == "diamond":
        return np.abs(U - cx) + np.abs(V - cy) <= r * 1.2
    if shape == "square":
        return _rect(cx - r * 0.85, cy - r * 0.85, cx + r * 0.85, cy + r * 0.85)
    if shape == "triangle":
        return _tri((cx - r, cy + r * 0.8), (cx + r, cy + r * 0.8), (cx, cy - r))
    # crown: a band with three points
    band = _rect(cx - r, cy, cx + r, cy + r * 0.7)
    points = _tri((cx - r, cy), (cx - r * 0.4, cy), (cx - r * 0.7, cy - r)) | _tri(
        (cx - r * 0.3, cy), (cx + r * 0.3, cy), (cx, cy - r * 1.1)
    )
    points |= _tri((cx + r * 0.4, cy), (cx + r, cy), (cx + r * 0.7, cy - r))
    return band | points


@cache
def figure_sprite(subject: str, identity: str, clothing: str, pose: str) -> np.ndarray:
    """(S, S) label map of the mannequin (no anatomy: a plain figure of primitives)."""
    sit = pose == "sit"
    head = _circle(0, -0.74, 0.16)
    torso = _rect(-0.21, -0.56, 0.21, 0.12 if not sit else 0.15)
    if sit:
        legs = _rect(-0.21, 0.08, 0.55, 0.26) | _rect(0.42, 0.08, 0.55, 0.75)
        seat = _rect(-0.35, 0.27, 0.5, 0.36) | _rect(-0.3, 0.27, -0.22, 0.95) | _rect(0.4, 0.36, 0.48, 0.95)
    else:
        swing = {"walk_a": 0.17, "walk_b": -0.17}.get(pose, 0.0)
        legs = _line(-0.1, 0.12, -0.1 + swing, 0.93, 0.09) | _line(0.1, 0.12, 0.1 - swing, 0.93, 0.09)
        seat = np.zeros_like(head)
    left_arm = _line(-0.23, -0.5, -0.38, 0.05, 0.07)
    if pose == "wave_up":
        right_arm = _line(0.23, -0.5, 0.45, -0.95, 0.07)
    elif pose == "wave_down":
        right_arm = _line(0.23, -0.5, 0.55, -0.7, 0.07)
    else:
        right_arm = _line(0.23, -0.5, 0.38, 0.05, 0.07)
    arms = left_arm | right_arm
    layers = [(2, seat)]
    hair = _circle(0, -0.79, 0.17) & (V < -0.78)
    if identity != "none":
        layers.append((6, _ring(0, -0.74, 0.2, 0.28)))  # halo ring in the emblem colour
    if subject == "woman" and identity == "none":
        layers.append((3, _ellipse(0, -0.66, 0.2, 0.24)))
    if clothing == "unclothed":
        layers += [(5, legs), (5, arms), (5, torso), (5, head), (3, hair)]
        return _paint(layers)
    if subject == "woman" and identity == "none":
        bottom = _tri((-0.21, -0.3), (0.21, -0.3), (0.0, -0.3)) | _tri((-0.42, 0.5), (0.42, 0.5), (0, -0.5))
        layers += [(5, legs), (1, bottom)]
    else:
        layers += [(7, legs)]
    sleeves = arms & (V < -0.15) if identity == "none" else arms
    layers += [(5, arms), (1, sleeves), (1, torso), (5, head)]
    layers.append((3, _rect(-0.21, 0.02, 0.21, 0.07)))  # belt
    layers.append((4, _tri((-0.1, -0.56), (0.1, -0.56), (0, -0.42))))  # collar
    if subject == "elder":
        layers.append((4, hair))
        layers.append((3, _line(-0.42, 0.0, -0.45, 0.95, 0.04)))  # cane
    elif subject == "worker":
        layers.append((4, torso & (np.abs(V + 0.2) < 0.05)))  # reflective stripe
        layers.append((8, _ellipse(0, -0.84, 0.22, 0.1)))  # hard hat
    else:
        layers.append((3, hair))
    if subject == "musician":
        layers.append((4, _tri((-0.08, -0.52), (0.08, -0.52), (0, -0.38))))
        layers.append((3, _rect(-0.05, -0.5, 0.05, -0.45)))
    if identity != "none":
        layers.append((4, _emblem(EMBLEMS[identity], 0.0, -0.22, 0.17)))
        layers.append((6, _emblem(EMBLEMS[identity], 0.0, -0.22, 0.12)))
    return _paint(layers)


SUBJECT_PALETTE = {
    # top, bottom, hat
    "man": ((0.2, 0.35, 0.8), (0.15, 0.15, 0.22), (0, 0, 0)),
    "woman": ((0.82, 0.18, 0.3), (0.82, 0.18, 0.3), (0, 0, 0)),
    "child": ((0.98, 0.8, 0.15), (0.2, 0.45, 0.85), (0, 0, 0)),
    "elder": ((0.5, 0.33, 0.18), (0.4, 0.4, 0.42), (0, 0, 0)),
    "worker": ((1.0, 0.5, 0.0), (0.12, 0.18, 0.4), (1.0, 0.85, 0.0)),
    "musician": ((0.06, 0.06, 0.08), (0.06, 0.06, 0.08), (0, 0, 0)),
}

AVATAR_PALETTE = {
    # suit top, trousers, emblem/halo
    "angela_merkel": ((0.12, 0.35, 0.9), (0.1, 0.1, 0.15), (1.0, 0.82, 0.05)),
    "barack_obama": ((0.32, 0.32, 0.34), (0.2, 0.2, 0.22), (0.15, 0.85, 0.35)),
    "donald_trump": ((0.08, 0.1, 0.3), (0.08, 0.1, 0.3), (0.95, 0.08, 0.08)),
    "joe_biden": ((0.55, 0.75, 0.95), (0.12, 0.2, 0.45), (0.1, 0.9, 0.95)),
    "queen_elizabeth_ii": ((0.96, 0.62, 0.75), (0.96, 0.62, 0.75), (0.55, 0.15, 0.8)),
}

SKIN = (0.86, 0.74, 0.62)
