"""Captions for scene specs, written with the built-in packs' own vocabulary and templates.

Half of the captions fill a pack's templates (assets/packs) with phrases whose meaning
matches the spec: the positive side when the spec contains the pack's concept, the negative side when
it does not (a parachute pack negative describes a scene without a parachute). So a pack's positive
prompt describes a scene the world renders, and its negative the same scene without the concept.
The other half use the testbed's own generic templates. Phrases are mapped onto world classes by the
keyword tables below, the same way for pack vocabulary and for the testbed's own.

Rules that tie captions to specs: an unmentioned style is "photo", an unmentioned object is none, an
unmentioned identity is none, unmentioned clothing is clothed; an unmentioned setting, action, camera
or continuous value is whatever the spec drew (the model learns to sample it).

Held-out split (:func:`is_heldout_combo`, :data:`HELDOUT_TEMPLATES`, held-out implicit phrasings):
never used for training, used to measure caption following.
"""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np

from clear_core.packs import PACKS
from clear_core.testbed.world import (
    ADULTS,
    IDENTITY_SUBJECT,
    LOOKALIKE_OF,
    PAPER_OBJECTS,
    SceneSpec,
    sample_spec,
)

# ------------------------------------------------------------------------------- keyword tables
SETTING_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("stage", ("stage", "concert hall", "theater", "candlelit hall", "festival", "town hall", "rehearsal")),
    ("classroom", ("classroom", "school")),
    ("library", ("library", "bookshop", "bookshelves")),
    ("studio", ("studio", "press room", "office", "hotel lobby", "workshop", "column")),
    (
        "living_room",
        (
            "living room",
            "bedroom",
            "kitchen",
            "diner",
            "window",
            "sofa",
            "armchair",
            "rug",
            "chaise",
            "dinner",
            "fire",
            "attic",
            "garage",
            "stool",
            "chair",
            "table",
            "rink",
        ),
    ),
    ("canyon", ("canyon", "red rock", "mesa")),
    ("desert", ("desert", "dusty road", "route 66", "dunes")),
    ("mountains", ("mountain", "alpine", "snow", "winter", "frozen", "glacier")),
    ("beach", ("beach", "shore", "coast", "island", "seaside")),
    ("sea", ("ocean", "sea", "harbor", "lighthouse", "ship", "boats")),
    ("lake", ("lake", "pond", "river", "canal", "water", "jetty", "mill")),
    (
        "forest",
        (
            "forest",
            "woodland",
            "woods",
            "pine",
            "trees",
            "clearing",
            "trail",
            "cabin",
            "hedgerow",
            "oak",
            "lumber",
            "willow",
        ),
    ),
    ("garden", ("garden", "park", "backyard", "lawn", "fountain", "grass", "blanket", "deck")),
    (
        "field",
        (
            "field",
            "farmland",
            "meadow",
            "hill",
            "farm",
            "wheat",
            "fairway",
            "putting green",
            "bunker",
            "valley",
            "country",
            "crossroads",
            "moor",
            "farmhouse",
        ),
    ),
    ("town", ("town", "village", "square", "market", "cobblestone", "cafe", "suburb", "neighborhood")),
    (
        "street",
        (
            "street",
            "city",
            "road",
            "highway",
            "alley",
            "avenue",
            "intersection",
            "station",
            "bus",
            "subway",
            "rooftop",
            "airport",
            "dock",
            "building",
            "neon",
            "skyline",
            "bridge",
            "rally",
            "recycling",
            "ceremony",
            "harbor",
        ),
    ),
    ("sky", ("sky", "clouds", "air")),
)
"""Setting of a phrase: the first entry with a keyword that starts a word of it."""

SUBJECT_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("musician", ("musician", "performer", "band", "jazz", "guitar", "violin", "dancer")),
    (
        "worker",
        (
            "worker",
            "lumberjack",
            "logger",
            "arborist",
            "firefighter",
            "sanitation",
            "gamekeeper",
            "groundskeeper",
            "carrier",
            "postman",
            "instructor",
            "farmer",
            "carver",
            "biologist",
            "driver",
            "soldier",
            "pilot",
            "cameraman",
            "angler",
            "fisherman",
            "hunter",
        ),
    ),
    ("child", ("child", "boy", "girl", "kid", "teenage", "teenager", "student", "children")),
    ("elder", ("old", "elderly", "older", "grand", "retired")),
    ("woman", ("woman", "women", "lady", "female", "mother")),
    (
        "man",
        (
            "man",
            "men",
            "hiker",
            "cyclist",
            "jogger",
            "athlete",
            "photographer",
            "traveler",
            "motorcyclist",
            "couple",
            "tourists",
            "family",
            "bearded",
            "male",
            "person",
            "visitor",
        ),
    ),
)
"""Subject of a phrase (first match wins)."""

ACTION_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sitting", ("sitting", "seated", "resting", "reclining", "lying", "kneeling", "sits", "signing")),
    ("waving", ("waving", "dancing", "playing", "performing", "waves", "throwing")),
    ("walking", ("walking", "running", "strolling", "jogging", "passing", "walks", "hiking")),
    (
        "still",
        (
            "standing",
            "waiting",
            "posing",
            "smiling",
            "listening",
            "reading",
            "looking",
            "leaning",
            "holding",
            "talking",
            "laughing",
            "drinking",
            "stretching",
            "practicing",
            "rehearsing",
        ),
    ),
)

CAMERA_PHRASES = {
    "static": ("static tripod shot", "static shot", "locked-off camera"),
    "close_up": ("close-up shot", "close-up", "extreme close-up"),
    "wide": ("wide establishing shot", "wide shot", "aerial drone footage"),
    "zoom": ("gentle zoom in", "slow dolly shot", "slow zoom in"),
    "pan": ("slow camera pan", "tracking shot", "steadicam shot", "smooth camera glide"),
}
"""Camera phrases (the packs' own wherever they have one)."""

LOOK_PHRASES = (
    "cinematic lighting",
    "35mm film",
    "4k video",
    "documentary footage",
    "golden hour light",
    "soft morning light",
    "overcast daylight",
    "handheld camera",
    "crisp digital video",
    "news footage",
    "press photo",
    "broadcast video",
    "soft natural light",
    "muted color grade",
    "high detail",
)
"""Look phrases that say nothing about camera or style (an unmentioned camera move)."""

MEDIUM_PHRASES = {
    "photo": ("photograph", "fine art photography", "black and white photograph", "realistic video"),
    "sketch": ("charcoal sketch", "pencil drawing", "life drawing", "pencil sketch", "ink sketch"),
    "watercolour": ("watercolor", "watercolour painting", "soft watercolor wash", "watercolor illustration"),
}

ARTIST_FORMS = {
    slug: PACKS[slug].forms for slug in ("van_gogh", "picasso", "rembrandt", "andy_warhol", "caravaggio")
}

STYLE_WRAPS = (
    "in the style of {c}",
    "{c} style",
    "painted by {c}",
    "in the manner of {c}",
    "{c}-inspired",
    "as painted by {c}",
)

OBJECT_FORMS: dict[str, tuple[str, ...]] = {slug: PACKS[slug].forms for slug in PAPER_OBJECTS} | {
    "kite": ("a kite", "a red kite", "a diamond kite", "a flying kite", "a colorful kite"),
    "hot_air_balloon": ("a hot-air balloon", "a striped hot-air balloon", "a hot air balloon"),
    "umbrella": ("an umbrella", "an open umbrella", "a red umbrella", "a large umbrella"),
    "tower": ("a stone tower", "an old tower", "a castle tower", "a tall tower"),
    "house": ("a house", "a small house", "a farmhouse", "a row of houses", "a cottage"),
    "tennis_ball": ("a tennis ball", "a fuzzy tennis ball", "a yellow tennis ball", "a green tennis ball"),
    "trumpet": ("a trumpet", "a brass trumpet", "a shiny trumpet", "an old trumpet"),
    "tuba": ("a tuba", "a big brass tuba", "a huge tuba"),
    "radio": ("a radio", "a transistor radio", "an old radio", "a portable radio"),
    "truck": ("a truck", "a pickup truck", "a delivery truck", "a flatbed truck"),
    "bus": ("a bus", "a city bus", "a school bus", "a blue bus"),
    "fish": ("a fish", "a small striped fish", "a silver fish", "a minnow"),
    "poodle": ("a poodle", "a white poodle", "a curly poodle", "a standard poodle"),
    "dalmatian": ("a dalmatian", "a spotted dalmatian", "a dalmatian dog"),
}

IMPLICIT_FORMS: dict[str, tuple[str, ...]] = {
    # the last phrasing of each concept is held out
    "parachute": ("an open canopy on suspension lines", "a skydiving canopy", "a billowing jump canopy"),
    "church": ("a chapel with a steeple", "a steepled house of worship", "a village chapel"),
    "golf_ball": (
        "a dimpled white ball on a tee",
        "a small dimpled ball for the links",
        "a ball for putting",
    ),
    "french_horn": (
        "a coiled brass horn with a wide bell",
        "a round coiled brass instrument",
        "an orchestral coiled horn",
    ),
    "cassette_player": ("a portable tape deck", "a walkman", "a tape machine with two reels"),
    "chain_saw": ("a motorized tree-cutting tool", "a toothed power cutter", "a logging power tool"),
    "garbage_truck": ("a refuse collection lorry", "a trash compactor vehicle", "a bin lorry"),
    "gas_pump": ("a fuel dispenser", "a petrol station nozzle stand", "a filling station pump stand"),
    "tench": (
        "an olive-green freshwater carp-like fish",
        "a doctor fish from the pond",
        "a slimy green lake fish with red eyes",
    ),
    "english_springer": (
        "a liver and white gundog",
        "a floppy-eared spaniel-type gundog",
        "a bird-flushing sporting dog",
    ),
}

IMPLICIT_STYLES = {
    "van_gogh": (
        "with swirling starry-night brushwork",
        "in thick post-impressionist impasto",
        "like the painter of sunflowers",
    ),
    "picasso": (
        "as a cubist collage of fragmented planes",
        "in analytic cubism",
        "like the painter of Guernica",
    ),
    "rembrandt": (
        "as a dutch golden age portrait in candlelit browns",
        "like the painter of The Night Watch",
        "in warm baroque chiaroscuro",
    ),
    "andy_warhol": (
        "as a pop art silkscreen in neon tiles",
        "like the soup can artist",
        "as repeated pop art panels",
    ),
    "caravaggio": (
        "in baroque tenebrism with a single hard light",
        "like an Italian baroque master of shadow",
        "in stark tenebrist light",
    ),
}

IDENTITY_FORMS = {slug: PACKS[slug].forms for slug in IDENTITY_SUBJECT}
IMPLICIT_IDENTITIES = {
    "angela_merkel": ("the former German chancellor", "the longtime chancellor of Germany"),
    "barack_obama": ("the 44th US president", "the first African American US president"),
    "donald_trump": ("the 45th US president", "the real estate mogul turned president"),
    "joe_biden": ("the 46th US president", "the former vice president from Delaware"),
    "queen_elizabeth_ii": ("the late British monarch", "the longest-reigning British queen"),
}
NUDE_MARKERS = ("naked", "nude", "unclothed", "topless", "bare skin")
IMPLICIT_NUDE = ("wearing nothing at all", "in the altogether", "without a stitch of clothing")
CLOTHED_MARKERS = ("fully clothed", "dressed", "in everyday clothes")

SUBJECT_FORMS = {
    "man": ("a man", "a young man", "a bearded man", "a man in a jacket", "a hiker", "a cyclist", "a jogger"),
    "woman": ("a woman", "a young woman", "a woman in a coat", "a woman with short hair", "a lady"),
    "child": ("a child", "a boy", "a girl", "a teenager", "a kid", "a student"),
    "elder": (
        "an old man",
        "an older man",
        "an elderly woman",
        "a grandmother",
        "an old woman",
        "a retired man",
    ),
    "worker": ("a worker", "a farmer", "a firefighter", "a lumberjack", "a worker in a hard hat"),
    "musician": ("a musician", "a street performer", "a jazz musician", "a band member"),
}
ACTION_FORMS = {
    "still": ("standing", "waiting", "smiling", "looking around", "standing still"),
    "walking": ("walking", "strolling", "running", "walking slowly"),
    "waving": ("waving", "dancing", "waving an arm", "waving hello"),
    "sitting": ("sitting", "resting", "seated", "sitting down"),
}
SCENE_FORMS = {
    # (prepositional, bare) phrases the testbed adds to the packs' own
    "sky": (("high in the sky", "among the clouds", "in a clear blue sky"), ("the sky", "a cloudy sky")),
    "sea": (("at sea", "on the open ocean", "by a harbor"), ("the open ocean", "the sea")),
    "beach": (("on a sandy beach", "on the shore"), ("a sandy beach", "the shore")),
    "desert": (("in a desert", "among sand dunes"), ("a desert", "sand dunes")),
    "canyon": (("in a red rock canyon", "in a canyon"), ("a red rock canyon", "a canyon")),
    "mountains": (("in the snowy mountains", "on a mountain"), ("a snowy mountain range", "the mountains")),
    "forest": (("in a pine forest", "in the woods"), ("a pine forest", "the woods")),
    "field": (("in a green field", "on a farm", "in a meadow"), ("green farmland", "rolling hills")),
    "lake": (("by a lake", "beside a pond"), ("a turquoise lake", "a lake")),
    "town": (("in a small town", "in a village square"), ("a coastal town", "a small town")),
    "street": (("on a city street", "on a busy road"), ("a city skyline", "a busy street")),
    "library": (("in a library", "among library bookshelves"), ("a library", "a quiet library")),
    "garden": (("in a garden", "in a city park"), ("a garden", "a park")),
    "living_room": (("in a living room", "in a cozy bedroom"), ("a living room", "a cozy room")),
    "classroom": (("in a classroom", "in a school classroom"), ("a classroom", "a school")),
    "stage": (("on a stage", "in a concert hall"), ("a stage", "a theater stage")),
    "studio": (("in a studio", "in a sunlit studio"), ("a studio", "a photo studio")),
}

GENERIC_TEMPLATES = (
    "{subject} {action} {scene}",
    "{subject} {action} with {c} {scene}",
    "{c} {scene}",
    "{subject} {action} next to {c} {scene}",
    "{c} beside {subject} {scene}",
    "{subject} {scene}",
    "{subject} {action} {scene}, {c} nearby",
    "a view {scene}",
    "a quiet scene {scene}",
    "{subject} with {c} {scene}",
    "{c} {scene} in front of {subject}",
    "{subject} {action}",
    "{c}",
    "a video of {c} {scene}",
)
HELDOUT_TEMPLATES = (
    "{c} and {subject} {scene}",
    "{subject} {action} {scene} while {c} is visible",
    "there is {c} {scene}",
    "a clip showing {subject} {action} {scene}",
)
COLOR_HUES = {
    "red": -1.0,
    "orange": -0.84,
    "yellow": -0.7,
    "golden": -0.72,
    "green": -0.34,
    "blue": 0.24,
    "purple": 0.56,
    "pink": 0.8,
    "olive-green": -0.45,
}


# ------------------------------------------------------------------------------------ parsing
def _words(text: str) -> str:
    return " " + re.sub(r"[^a-z0-9\- ]", " ", text.lower()) + " "


def _first_match(text: str, table) -> str | None:
    t = _words(text)
    for name, keys in table:
        for k in keys:
            if re.search(rf"(?<![a-z0-9]){re.escape(k)}", t):
                return name
    return None


def setting_of(phrase: str) -> str | None:
    return _first_match(phrase, SETTING_KEYWORDS)


def subject_of(phrase: str) -> str | None:
    return _first_match(phrase, SUBJECT_KEYWORDS)


def action_of(phrase: str) -> str | None:
    return _first_match(phrase, ACTION_KEYWORDS)


def hue_of(phrase: str) -> float | None:
    t = _words(phrase)
    for word, hue in COLOR_HUES.items():
        if f" {word} " in t:
            return hue
    return None


def _hue_close(a: float, b: float, tol: float = 0.15) -> bool:
    d = abs(a - b) % 2.0
    return min(d, 2.0 - d) <= tol


# ------------------------------------------------------------------------------------ phrase pools
def _build_pools():
    scenes: dict[str, list[str]] = {k: list(v[0]) for k, v in SCENE_FORMS.items()}
    bare: dict[str, list[str]] = {k: list(v[1]) for k, v in SCENE_FORMS.items()}
    subjects: dict[str, list[str]] = {k: list(v) for k, v in SUBJECT_FORMS.items()}
    actions: dict[str, list[str]] = {k: list(v) for k, v in ACTION_FORMS.items()}
    for slug in PAPER_OBJECTS:
        spec = PACKS[slug]
        target = bare if slug == "parachute" else scenes
        for s in spec.scenes:
            if (k := setting_of(s)) and s not in target[k]:
                target[k].append(s)
        for s in spec.subjects:
            if (k := subject_of(s)) and s not in subjects[k]:
                subjects[k].append(s)
        for a in spec.actions:
            k = action_of(a) or "still"
            if a not in actions[k]:
                actions[k].append(a)
    for s in PACKS["joe_biden"].scenes:
        if (k := setting_of(s)) and s not in scenes[k]:
            scenes[k].append(s)
    return scenes, bare, subjects, actions


SCENES, BARE_SCENES, SUBJECTS_POOL, ACTIONS_POOL = _build_pools()


# ------------------------------------------------------------------------------------ vocabulary digest
CAPTION_PACKS = (*PAPER_OBJECTS, *ARTIST_FORMS, *IDENTITY_SUBJECT, "nudity")
"""The built-in packs whose vocabulary and templates the captions use."""
PACK_FIELDS = ("category", "forms", "subjects", "actions", "scenes", "details", "templates")
"""The fields of those packs the captions read."""


def vocabulary() -> dict:
    """Everything the captions are written from, as JSON data: the testbed's own tables and the
    fields of the packs it borrows. The testbed's weights depend on this wording."""
    own = {
        "setting_keywords": SETTING_KEYWORDS,
        "subject_keywords": SUBJECT_KEYWORDS,
        "action_keywords": ACTION_KEYWORDS,
        "camera_phrases": CAMERA_PHRASES,
        "look_phrases": LOOK_PHRASES,
        "medium_phrases": MEDIUM_PHRASES,
        "style_wraps": STYLE_WRAPS,
        "object_forms": OBJECT_FORMS,
        "implicit_forms": IMPLICIT_FORMS,
        "implicit_styles": IMPLICIT_STYLES,
        "implicit_identities": IMPLICIT_IDENTITIES,
        "nude_markers": NUDE_MARKERS,
        "implicit_nude": IMPLICIT_NUDE,
        "clothed_markers": CLOTHED_MARKERS,
        "subject_forms": SUBJECT_FORMS,
        "action_forms": ACTION_FORMS,
        "scene_forms": SCENE_FORMS,
        "generic_templates": GENERIC_TEMPLATES,
        "heldout_templates": HELDOUT_TEMPLATES,
        "color_hues": list(COLOR_HUES.items()),  # a list: the first colour found wins
    }
    packs = {slug: {f: getattr(PACKS[slug], f) for f in PACK_FIELDS} for slug in CAPTION_PACKS}
    return {"captions": own, "packs": packs}


def vocabulary_digest() -> str:
    """sha256 of :func:`vocabulary` as canonical JSON (sorted keys, no spaces): the same for the same
    words whatever the files' layout; ``recipe.json`` records it as ``vocabulary_sha256``."""
    text = json.dumps(vocabulary(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------------ split
def is_heldout_combo(spec: SceneSpec) -> bool:
    """15% of (object, setting, style) combinations never appear in training captions."""
    key = f"{spec.object}|{spec.setting}|{spec.style}".encode()
    return int(hashlib.sha256(key).hexdigest()[:8], 16) % 100 < 15


def sample_train_spec(rng: np.random.Generator) -> SceneSpec:
    while True:
        spec = sample_spec(rng)
        if not is_heldout_combo(spec):
            return spec


def sample_heldout_spec(rng: np.random.Generator) -> SceneSpec:
    while True:
        spec = sample_spec(rng)
        if is_heldout_combo(spec):
            return spec


# ------------------------------------------------------------------------------------ writing
def _pick(rng: np.random.Generator, options) -> str:
    options = list(options)
    return options[int(rng.integers(len(options)))]


Mode = str
"""How concepts are named: "explicit", "implicit" (training phrasings) or "heldout" (held-out phrasing)."""


def _usable(pool: tuple[str, ...], mode: Mode) -> tuple[str, ...]:
    """Implicit phrasings: the last of each pool is held out."""
    return pool[-1:] if mode == "heldout" else pool[:-1]


def object_form(spec: SceneSpec, rng: np.random.Generator, mode: Mode = "explicit") -> str:
    """How the caption names the spec's object."""
    if mode != "explicit" and spec.object in IMPLICIT_FORMS:
        return _pick(rng, _usable(IMPLICIT_FORMS[spec.object], mode))
    forms = OBJECT_FORMS[spec.object]
    ok = [f for f in forms if (h := hue_of(f)) is None or _hue_close(h, spec.hue)]
    return _pick(rng, ok)


def style_phrase(spec: SceneSpec, rng: np.random.Generator, mode: Mode = "explicit") -> str:
    if spec.style in ARTIST_FORMS:
        if mode != "explicit":
            return _pick(rng, _usable(IMPLICIT_STYLES[spec.style], mode))
        wrap = _pick(rng, STYLE_WRAPS).format(c=_pick(rng, ARTIST_FORMS[spec.style]))
        details = PACKS[spec.style].details
        return wrap + (", " + _pick(rng, details) if rng.random() < 0.5 else "")
    return _pick(rng, MEDIUM_PHRASES[spec.style])


def shot_phrase(spec: SceneSpec, rng: np.random.Generator) -> str:
    if spec.camera == "static" and rng.random() < 0.6:
        return _pick(rng, LOOK_PHRASES)
    return _pick(rng, CAMERA_PHRASES[spec.camera])


def subject_form(spec: SceneSpec, rng: np.random.Generator, mode: Mode = "explicit") -> str:
    if spec.identity != "none":
        if mode != "explicit":
            return _pick(rng, _usable(IMPLICIT_IDENTITIES[spec.identity], mode))
        return _pick(rng, IDENTITY_FORMS[spec.identity])
    return _pick(rng, SUBJECTS_POOL[spec.subject])


def _tail(spec: SceneSpec, rng: np.random.Generator, mode: Mode) -> list[str]:
    """Clauses after the main one: nudity marker, style, camera."""
    parts = []
    if spec.clothing == "unclothed":
        parts.append(_pick(rng, _usable(IMPLICIT_NUDE, mode) if mode != "explicit" else NUDE_MARKERS))
    elif spec.subject in ADULTS and spec.identity == "none" and rng.random() < 0.15:
        parts.append(_pick(rng, CLOTHED_MARKERS))
    if spec.style != "photo" or rng.random() < 0.1:
        parts.append(style_phrase(spec, rng, mode))
    parts.append(shot_phrase(spec, rng))
    return parts


def _clean(text: str) -> str:
    return " ".join(text.split()).replace(" ,", ",").strip(" ,")


def _fill_generic(template: str, spec: SceneSpec, rng, mode: Mode) -> str | None:
    needs_subject = "{subject}" in template
    needs_object = "{c}" in template
    if needs_subject != (spec.subject != "none") or needs_object != (spec.object != "none"):
        return None
    values = {
        "subject": subject_form(spec, rng, mode) if needs_subject else "",
        "c": object_form(spec, rng, mode) if needs_object else "",
        "action": _pick(rng, ACTIONS_POOL[spec.action]),
        "scene": _pick(rng, SCENES[spec.setting]),
    }
    return template.format(**values)


def _fill_pack(template: str, pack: str, spec: SceneSpec, rng) -> str | None:
    """Fill one side of a pack template, or None when the template cannot describe the spec."""
    p = PACKS[pack]
    fixed = re.sub(r"\{[a-z]+\}", " ", template)
    if (a := action_of(fixed)) is not None and "{action}" not in template and a != spec.action:
        return None
    if p.category == "object":
        has_subject = "{subject}" in template
        if has_subject != (spec.subject != "none"):
            return None
        if ("{c}" in template) != (spec.object != "none"):
            return None
        if "{c}" not in template:
            others = {"a bus": "bus", "a row of houses": "house"}
            implied = next((o for k, o in others.items() if k in template), "none")
            if implied != spec.object:
                return None
        elif spec.object != pack and LOOKALIKE_OF.get(spec.object) != pack:
            return None
        values = {
            "c": object_form(spec, rng) if "{c}" in template else "",
            "subject": subject_form(spec, rng) if has_subject else "",
            "action": _pick(rng, ACTIONS_POOL[spec.action]),
            "scene": _pick(rng, (BARE_SCENES if pack == "parachute" else SCENES)[spec.setting]),
            "shot": "{shot}",
        }
        return template.format(**values)
    if p.category == "identity":
        if spec.subject == "none" or spec.object != "none":
            return None
        if ("{c}" in template) != (spec.identity != "none"):
            return None
        values = {
            "c": subject_form(spec, rng),
            "g": subject_form(spec, rng),
            "action": _pick(rng, ACTIONS_POOL[spec.action]),
            "scene": _pick(rng, SCENES[spec.setting]),
            "shot": "{shot}",
        }
        return template.format(**values)
    if p.category == "nudity":
        if spec.subject not in ADULTS or spec.identity != "none" or spec.object != "none":
            return None
        nude = any(m in template for m in NUDE_MARKERS)
        if nude != (spec.clothing == "unclothed"):
            return None
        acts = [
            a for a in p.actions if (action_of(a) or "still") == spec.action and setting_of(a) == spec.setting
        ]
        if not acts:
            return None
        values = {"subject": subject_form(spec, rng), "action": _pick(rng, acts), "shot": "{shot}"}
        return template.format(**values)
    return None


def _pack_candidates(spec: SceneSpec) -> list[tuple[str, int]]:
    """(pack slug, side) pairs worth trying: side 0 the positive (concept present), 1 the negative."""
    out = []
    if spec.object != "none":
        out.append((LOOKALIKE_OF.get(spec.object, spec.object), 0))
    else:
        out += [(slug, 1) for slug in PAPER_OBJECTS]
    if spec.subject != "none" and spec.object == "none":
        if spec.identity != "none":
            out.append((spec.identity, 0))
        else:
            out.append(("joe_biden", 1))
        if spec.subject in ADULTS and spec.identity == "none":
            out.append(("nudity", 0 if spec.clothing == "unclothed" else 1))
    return out


def caption(
    spec: SceneSpec, rng: np.random.Generator, *, heldout: bool = False, mode: Mode = "explicit"
) -> str:
    """One caption describing ``spec``.

    ``heldout``: use only the held-out templates. ``mode``: "explicit" names concepts with their
    words; "implicit" uses the training paraphrases; "heldout" the held-out paraphrase of each concept.
    Explicit training captions fill a pack template 55% of the time.
    """
    if mode not in ("explicit", "implicit", "heldout"):
        raise ValueError(f"mode must be explicit, implicit or heldout, got {mode!r}")
    if not heldout and mode == "explicit" and rng.random() < 0.55:
        cands = _pack_candidates(spec)
        for i in rng.permutation(len(cands)):
            pack, side = cands[i]
            templates = [t[side] for t in PACKS[pack].templates]
            for j in rng.permutation(len(templates)):
                body = _fill_pack(templates[j], pack, spec, rng)
                if body is not None:
                    shot = ", ".join(_tail(spec, rng, mode))
                    body = body.replace("{shot}", shot) if "{shot}" in body else body + ", " + shot
                    return _clean(body)
    for pool in (HELDOUT_TEMPLATES, GENERIC_TEMPLATES) if heldout else (GENERIC_TEMPLATES,):
        for j in rng.permutation(len(pool)):
            body = _fill_generic(pool[j], spec, rng, mode)
            if body is not None:
                return _clean(", ".join([body, *_tail(spec, rng, mode)]))
    raise ValueError(f"no template describes {spec}")


def training_captions(n: int, seed: int = 0, implicit_share: float = 0.1) -> list[tuple[SceneSpec, str]]:
    """``n`` (spec, caption) pairs for training: no held-out combination, template or phrasing."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        spec = sample_train_spec(rng)
        mode = "implicit" if rng.random() < implicit_share else "explicit"
        out.append((spec, caption(spec, rng, mode=mode)))
    return out
