"""The testbed world: specs, renderer and captions (clear_core/testbed/world.py, render.py, captions.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from clear_core.packs import PACKS, find_forbidden
from clear_core.testbed.captions import (
    HELDOUT_TEMPLATES,
    IMPLICIT_FORMS,
    IMPLICIT_STYLES,
    caption,
    is_heldout_combo,
    sample_heldout_spec,
    setting_of,
    subject_of,
    training_captions,
)
from clear_core.testbed.render import render
from clear_core.testbed.world import (
    CAMERAS,
    OBJECTS,
    PAPER_OBJECTS,
    SETTINGS,
    STYLES,
    SceneSpec,
    sample_spec,
)


def test_spec_rules_are_checked():
    with pytest.raises(ValueError, match="object must be one of"):
        SceneSpec(object="zeppelin")
    with pytest.raises(ValueError, match="only an adult"):
        SceneSpec(subject="child", clothing="unclothed")
    with pytest.raises(ValueError, match="only an adult"):
        SceneSpec(subject="man", identity="barack_obama", clothing="unclothed")
    with pytest.raises(ValueError, match="needs a subject"):
        SceneSpec(identity="joe_biden")
    with pytest.raises(ValueError, match=r"x must lie in \[-1, 1\]"):
        SceneSpec(x=1.5)


def test_sample_spec_is_seeded_and_valid():
    a = [sample_spec(np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1]
    specs = [sample_spec(np.random.default_rng(i)) for i in range(300)]
    assert {s.object for s in specs} >= set(PAPER_OBJECTS)
    assert any(s.clothing == "unclothed" for s in specs) and any(s.identity != "none" for s in specs)


def test_render_shape_range_and_determinism():
    spec = SceneSpec(setting="desert", subject="man", action="walking", object="parachute", camera="pan")
    a, b = render(spec), render(spec)
    assert a.shape == (8, 64, 64, 3) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], a[-1])  # motion: walking figure and a panning camera
    assert render(spec, num_frames=12).shape == (12, 64, 64, 3)


def test_every_attribute_changes_the_picture():
    base = SceneSpec(setting="field", subject="woman", object="kite")
    frame = render(base)[0]
    changes = [
        {"object": "parachute"},
        {"object": "none"},
        {"setting": "stage"},
        {"identity": "angela_merkel"},
        {"clothing": "unclothed"},
        {"camera": "close_up"},
        *({"style": s} for s in STYLES[1:]),
    ]
    for change in changes:
        assert not np.array_equal(render(base.replace(**change))[0], frame), change


def test_all_objects_styles_settings_cameras_render_distinct_and_fast():
    frames = [render(SceneSpec(object=o))[0] for o in OBJECTS]
    flat = np.stack(frames).reshape(len(frames), -1)
    assert len({f.tobytes() for f in flat}) == len(OBJECTS)
    for s in SETTINGS:
        for c in CAMERAS:
            render(SceneSpec(setting=s, camera=c, subject="child"))
    specs = [sample_spec(np.random.default_rng(i)) for i in range(50)]
    t0 = time.perf_counter()
    for s in specs:
        render(s)
    assert (time.perf_counter() - t0) / len(specs) < 0.05  # a few ms per clip; generous on a busy CPU


def test_keyword_tables_map_pack_vocabulary():
    assert setting_of("over a red rock canyon") == "canyon"
    assert setting_of("in a concert hall") == "stage"
    assert subject_of("an old man in a flat cap") == "elder"
    assert subject_of("a sanitation worker") == "worker"
    assert setting_of("in a quantum flux") is None


def test_captions_describe_the_spec():
    rng = np.random.default_rng(0)
    pairs = training_captions(400, seed=1)
    for spec, text in pairs:
        assert not is_heldout_combo(spec)
        low = text.lower()
        if spec.object in PAPER_OBJECTS:
            named = find_forbidden(low, PACKS[spec.object].forbidden)
            implicit = any(f.lower() in low for f in IMPLICIT_FORMS[spec.object])
            assert named or implicit, (spec, text)
        if spec.object == "none":
            for slug in PAPER_OBJECTS:
                assert not find_forbidden(low, PACKS[slug].forbidden), (slug, text)
        if spec.style in IMPLICIT_STYLES:
            named = find_forbidden(low, PACKS[spec.style].forbidden)
            assert named or any(p.lower() in low for p in IMPLICIT_STYLES[spec.style]), text
        else:
            for artist in IMPLICIT_STYLES:
                assert not find_forbidden(low, PACKS[artist].forbidden), text
        if spec.clothing == "clothed":
            assert not find_forbidden(low, ("nude", "naked", "unclothed", "topless")), text
    held = sample_heldout_spec(rng)
    assert is_heldout_combo(held)
    text = caption(held, rng, heldout=True)
    assert isinstance(text, str) and len(text) > 5


def test_heldout_templates_and_phrasings_never_in_training():
    texts = [c for _, c in training_captions(1500, seed=2, implicit_share=0.5)]
    heldout_phrases = [v[-1] for v in IMPLICIT_FORMS.values()]
    for phrase in heldout_phrases:
        assert not any(phrase in t for t in texts), phrase
    assert not any(" while " in t and " is visible" in t for t in texts)
    assert any(" is visible" in t for t in HELDOUT_TEMPLATES)
