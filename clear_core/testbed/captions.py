"""Captions for scene specs, written with the built-in packs' own vocabulary and templates.

Half of the captions fill a pack's templates (assets/packs) with phrases whose meaning
matches the spec: the positive side when the spec contains the pack's concept, the negative side when
it does not (a parachute pack negative describes a scene without a parachute). So a pack's positive
prompt describes a scene the world renders, and its negative the same scene without the concept.
The other half use the testbed's own generic templates. Phrases are mapped onto world classes by the
keyword tables below, the same way for pack vocabulary and for the testbed's own. The testbed's own
words are data, ``assets/testbed/captions.json``; :func:`vocabulary_digest` fingerprints them with the
borrowed pack fields for ``recipe.json``.

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
from pathlib import Path

import numpy as np

from clear_core.packs import PACKS
from clear_core.paths import asset
from clear_core.testbed.world import (
    ADULTS,
    IDENTITY_SUBJECT,
    LOOKALIKE_OF,
    PAPER_OBJECTS,
    SceneSpec,
    sample_spec,
)

# ------------------------------------------------------------------------------- vocabulary tables
VOCABULARY_FILE = asset("testbed", "captions.json")
"""The testbed's own caption words (the tables below); the packs' come from ``assets/packs``."""
_TABLES = {
    "setting_keywords": list,
    "subject_keywords": list,
    "action_keywords": list,
    "camera_phrases": dict,
    "look_phrases": list,
    "medium_phrases": dict,
    "style_wraps": list,
    "object_forms": dict,
    "implicit_forms": dict,
    "implicit_styles": dict,
    "implicit_identities": dict,
    "nude_markers": list,
    "implicit_nude": list,
    "clothed_markers": list,
    "subject_forms": dict,
    "action_forms": dict,
    "scene_forms": dict,
    "generic_templates": list,
    "heldout_templates": list,
    "color_hues": list,
}


def _frozen(value):
    """JSON lists as tuples, all the way down (the tables are constants)."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


def load_tables(path: Path = VOCABULARY_FILE) -> dict:
    """The tables of the testbed's caption vocabulary file, as tuples; ValueError names the file and table."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{path}: cannot read the testbed's caption vocabulary ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of tables")
    for name, kind in _TABLES.items():
        if not isinstance(data.get(name), kind) or not data[name]:
            raise ValueError(f"{path}: table {name!r} must be a non-empty JSON {kind.__name__}")
    unknown = sorted(set(data) - set(_TABLES) - {"about"})
    if unknown:
        raise ValueError(f"{path}: unknown table(s) {unknown}")
    return {name: _frozen(data[name]) for name in _TABLES}


_T = load_tables()
SETTING_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = _T["setting_keywords"]
"""Setting of a phrase: the first entry with a keyword that starts a word of it."""
SUBJECT_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = _T["subject_keywords"]
"""Subject of a phrase (first match wins)."""
ACTION_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = _T["action_keywords"]
CAMERA_PHRASES: dict[str, tuple[str, ...]] = _T["camera_phrases"]
"""Camera phrases (the packs' own wherever they have one)."""
LOOK_PHRASES: tuple[str, ...] = _T["look_phrases"]
"""Look phrases that say nothing about camera or style (an unmentioned camera move)."""
MEDIUM_PHRASES: dict[str, tuple[str, ...]] = _T["medium_phrases"]
ARTIST_FORMS = {
    slug: PACKS[slug].forms for slug in ("van_gogh", "picasso", "rembrandt", "andy_warhol", "caravaggio")
}
STYLE_WRAPS: tuple[str, ...] = _T["style_wraps"]
OBJECT_FORMS: dict[str, tuple[str, ...]] = {slug: PACKS[slug].forms for slug in PAPER_OBJECTS} | _T[
    "object_forms"
]
"""How each object is written: the paper objects' pack forms, then the testbed's own look-alikes."""
IMPLICIT_FORMS: dict[str, tuple[str, ...]] = _T["implicit_forms"]
"""Paraphrases of the objects; the last phrasing of each concept is held out (as in the next two)."""
IMPLICIT_STYLES: dict[str, tuple[str, ...]] = _T["implicit_styles"]
IDENTITY_FORMS = {slug: PACKS[slug].forms for slug in IDENTITY_SUBJECT}
IMPLICIT_IDENTITIES: dict[str, tuple[str, ...]] = _T["implicit_identities"]
NUDE_MARKERS: tuple[str, ...] = _T["nude_markers"]
IMPLICIT_NUDE: tuple[str, ...] = _T["implicit_nude"]
CLOTHED_MARKERS: tuple[str, ...] = _T["clothed_markers"]
SUBJECT_FORMS: dict[str, tuple[str, ...]] = _T["subject_forms"]
ACTION_FORMS: dict[str, tuple[str, ...]] = _T["action_forms"]
SCENE_FORMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = _T["scene_forms"]
"""(prepositional, bare) scene phrases per setting, which the testbed adds to the packs' own."""
GENERIC_TEMPLATES: tuple[str, ...] = _T["generic_templates"]
HELDOUT_TEMPLATES: tuple[str, ...] = _T["heldout_templates"]
COLOR_HUES: dict[str, float] = dict(_T["color_hues"])
"""Hue of a colour word (in file order: the first colour found in a phrase wins)."""


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
