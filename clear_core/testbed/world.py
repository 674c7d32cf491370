"""The testbed's world: what a scene can contain, and seeded scene specs.

A :class:`SceneSpec` is one short clip: a setting, an optional subject figure (a mannequin: clothed or
unclothed, or one of five abstract public-figure avatars, each an emblem and a palette, never a
likeness) doing an action, an optional object (the paper's 10 objects or a look-alike), a painting
style or medium, a camera move, and six continuous values (object position, size, hue, motion).

The vocabulary here is the single source of class names; the renderer (render.py), the captions
(captions.py), the scene latent (model.py) and the detector (detector.py) all index into it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

SETTINGS = (
    "sky",
    "sea",
    "beach",
    "desert",
    "canyon",
    "mountains",
    "forest",
    "field",
    "lake",
    "town",
    "street",
    "library",
    "garden",
    "living_room",
    "classroom",
    "stage",
    "studio",
)
"""Backgrounds. Pack scene phrases are mapped onto these by keywords (captions.py)."""

SUBJECTS = ("none", "man", "woman", "child", "elder", "worker", "musician")
"""The figure in the scene; "none" for an empty scene."""

ACTIONS = ("still", "walking", "waving", "sitting")
"""How the figure moves."""

PAPER_OBJECTS = (
    "parachute",
    "church",
    "golf_ball",
    "french_horn",
    "cassette_player",
    "chain_saw",
    "garbage_truck",
    "gas_pump",
    "tench",
    "english_springer",
)
"""The paper's 10 object concepts (slugs of the built-in packs)."""

LOOKALIKES = (
    "kite",
    "hot_air_balloon",
    "umbrella",
    "tower",
    "house",
    "tennis_ball",
    "trumpet",
    "tuba",
    "radio",
    "truck",
    "bus",
    "fish",
    "poodle",
    "dalmatian",
)
"""Distractors that make the object task fine-grained."""

OBJECTS = ("none", *PAPER_OBJECTS, *LOOKALIKES)
"""Index 0 is no object."""

LOOKALIKE_OF = {
    "kite": "parachute",
    "hot_air_balloon": "parachute",
    "umbrella": "parachute",
    "tower": "church",
    "house": "church",
    "tennis_ball": "golf_ball",
    "trumpet": "french_horn",
    "tuba": "french_horn",
    "radio": "cassette_player",
    "truck": "garbage_truck",
    "bus": "garbage_truck",
    "fish": "tench",
    "poodle": "english_springer",
    "dalmatian": "english_springer",
}
"""Which paper object each look-alike is confusable with (captions reuse that pack's templates)."""

ARTISTS = ("van_gogh", "picasso", "rembrandt", "andy_warhol", "caravaggio")
"""The style packs' artists (slugs)."""

STYLES = ("photo", *ARTISTS, "sketch", "watercolour")
"""Image filters; "photo" is no filter."""

IDENTITIES = ("none", "angela_merkel", "barack_obama", "donald_trump", "joe_biden", "queen_elizabeth_ii")
"""Public figures, drawn as abstract avatars (an emblem and a palette)."""

IDENTITY_SUBJECT = {
    "angela_merkel": "woman",
    "barack_obama": "man",
    "donald_trump": "elder",
    "joe_biden": "elder",
    "queen_elizabeth_ii": "elder",
}
"""The figure an avatar stands on (the packs' gender- and age-matched stand-in)."""

CLOTHING = ("clothed", "unclothed")
"""Mannequin state: garment shapes, or a plain figure with no anatomy."""

ADULTS = ("man", "woman", "elder")
"""Only these subjects may be unclothed (never a child, never an avatar)."""

CAMERAS = ("static", "close_up", "wide", "zoom", "pan")
"""Camera moves."""

SKY_OBJECTS = ("parachute", "kite", "hot_air_balloon")
WATER_OBJECTS = ("tench", "fish")
WATER_SETTINGS = ("sea", "lake")

CONTINUOUS = ("x", "y", "size", "hue", "dx", "dy")
"""Continuous attributes, each in [-1, 1]: object position, size, hue, motion per clip."""

SLOTS = ("setting", "subject", "action", "object", "style", "identity", "clothing", "camera")
"""Discrete attributes of a spec, in latent slot order."""

VOCAB: dict[str, tuple[str, ...]] = {
    "setting": SETTINGS,
    "subject": SUBJECTS,
    "action": ACTIONS,
    "object": OBJECTS,
    "style": STYLES,
    "identity": IDENTITIES,
    "clothing": CLOTHING,
    "camera": CAMERAS,
}


@dataclass(frozen=True)
class SceneSpec:
    """One clip. Discrete fields are names from :data:`VOCAB`; continuous ones lie in [-1, 1]."""

    setting: str = "field"
    subject: str = "none"
    action: str = "still"
    object: str = "none"
    style: str = "photo"
    identity: str = "none"
    clothing: str = "clothed"
    camera: str = "static"
    x: float = 0.0
    y: float = 0.0
    size: float = 0.0
    hue: float = 0.0
    dx: float = 0.0
    dy: float = 0.0

    def __post_init__(self) -> None:
        for slot in SLOTS:
            value = getattr(self, slot)
            if value not in VOCAB[slot]:
                raise ValueError(f"{slot} must be one of {VOCAB[slot]}, got {value!r}")
        for name in CONTINUOUS:
            v = getattr(self, name)
            if not -1.0 <= v <= 1.0:
                raise ValueError(f"{name} must lie in [-1, 1], got {v}")
        if self.identity != "none" and self.subject == "none":
            raise ValueError("an identity needs a subject figure")
        if self.clothing == "unclothed" and (self.subject not in ADULTS or self.identity != "none"):
            raise ValueError("only an adult mannequin without an identity can be unclothed")

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> SceneSpec:
        data = self.to_dict()
        data.update(changes)
        return SceneSpec(**data)

    def index(self, slot: str) -> int:
        """The class index of a discrete slot."""
        return VOCAB[slot].index(getattr(self, slot))


def spec_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(SceneSpec))


def sample_spec(rng: np.random.Generator) -> SceneSpec:
    """A random scene: every slot drawn independently, respecting the world's rules."""
    setting = str(rng.choice(SETTINGS))
    u = rng.random()
    obj = "none" if u < 0.12 else str(rng.choice(PAPER_OBJECTS if u < 0.56 else LOOKALIKES))
    subject = "none" if rng.random() < 0.15 else str(rng.choice(SUBJECTS[1:]))
    identity, clothing, action = "none", "clothed", "still"
    if subject != "none":
        action = str(rng.choice(ACTIONS))
        r = rng.random()
        if r < 0.18:
            identity = str(rng.choice(IDENTITIES[1:]))
            subject = IDENTITY_SUBJECT[identity]
        elif r < 0.36 and subject in ADULTS:
            clothing = "unclothed"
    style = "photo" if rng.random() < 0.3 else str(rng.choice(STYLES[1:]))
    camera = "static" if rng.random() < 0.4 else str(rng.choice(CAMERAS[1:]))
    cont = rng.uniform(-1, 1, size=len(CONTINUOUS))
    if rng.random() < 0.5:
        cont[4:] = 0.0  # half the objects stay put
    return SceneSpec(
        setting=setting,
        subject=subject,
        action=action,
        object=obj,
        style=style,
        identity=identity,
        clothing=clothing,
        camera=camera,
        **{k: float(v) for k, v in zip(CONTINUOUS, cont, strict=True)},
    )
