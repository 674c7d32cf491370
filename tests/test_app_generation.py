"""The Erase & preview tab's video panel, through its callbacks, on a tiny random CogVideoX pipeline."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from test_generation import make_eraser

from app import generation, preview_tab
from app.state import Session
from clear_core.concepts import ConceptSet, load_builtin
from clear_core.generation.media import read_video


def quiet(*_args, **_kwargs):
    return None


@pytest.fixture(scope="module")
def session():
    pipe = generation.get_pipeline("tiny-cogvideox")
    concept = ConceptSet("parachute", load_builtin("parachute").pairs[:8])
    return Session(
        concept=concept, eraser=make_eraser(pipe), implicit=["a canopy drifting down behind a plane"]
    )


def test_generate_renders_original_and_erased_with_one_seed_and_caches_each_gamma(session):
    out = preview_tab.generate_media("a parachute over the sea", 3.0, 0, "tiny-cogvideox", 2, session, quiet)
    original, erased, strip, files, info = out
    assert Path(strip).is_file() and len(files) == 4 and all(Path(f).is_file() for f in files)
    a, b = read_video(original), read_video(erased)
    assert a.shape == b.shape == (9, 16, 16, 3) and not np.array_equal(a, b)
    again = preview_tab.generate_media(
        "a parachute over the sea", 3.0, 0, "tiny-cogvideox", 2, session, quiet
    )
    assert again[:2] == out[:2] and "original: cached · erased: cached" in again[4]
    other = preview_tab.generate_media(
        "a parachute over the sea", 1.0, 0, "tiny-cogvideox", 2, session, quiet
    )
    assert other[0] == original and other[1] != erased and "original: cached" in other[4]
    zero = preview_tab.generate_media("a parachute over the sea", 0.0, 0, "tiny-cogvideox", 2, session, quiet)
    assert zero[1] == original  # γ = 0 is the original clip itself


def test_rerender_follows_gamma_only_when_asked(session):
    skipped = preview_tab.rerender_media(False, "x.mp4", "a cat", 2.0, 0, "tiny-cogvideox", 2, session, quiet)
    assert all(isinstance(x, dict) or x == gr.skip() for x in skipped)
    none_yet = preview_tab.rerender_media(True, None, "a cat", 2.0, 0, "tiny-cogvideox", 2, session, quiet)
    assert len(none_yet) == 5 and none_yet[0] == gr.skip()
    done = preview_tab.rerender_media(True, "x.mp4", "a cat", 2.0, 0, "tiny-cogvideox", 2, session, quiet)
    assert Path(done[1]).is_file()


@pytest.mark.parametrize(
    ("prompt", "gamma", "seed", "pipeline", "message"),
    [
        ("x" * 2001, 1.0, 0, "tiny-cogvideox", "2,000"),
        ("\u200b\u200b", 1.0, 0, "tiny-cogvideox", "empty"),
        ("a cat", float("nan"), 0, "tiny-cogvideox", "finite"),
        ("a cat", 1.0, -1, "tiny-cogvideox", "seed"),
        ("a cat", 1.0, 0, "tiny-wan", "was built for encoder"),
    ],
)
def test_bad_input_is_one_clear_error(session, prompt, gamma, seed, pipeline, message):
    with pytest.raises(gr.Error, match=message):
        preview_tab.generate_media(prompt, gamma, seed, pipeline, 2, session, quiet)


def test_examples_come_from_the_loaded_concept(session):
    assert preview_tab.example_prompt("explicit", session) == session.concept.positives[0]
    assert preview_tab.example_prompt("implicit", session) == "a canopy drifting down behind a plane"
    assert "parachute" not in preview_tab.example_prompt("unrelated", session)
    assert preview_tab.fill_prompt("", session) == session.concept.positives[0]
    assert preview_tab.fill_prompt("mine", session) == "mine"
    with pytest.raises(gr.Error, match="no prompt pairs"):
        preview_tab.example_prompt("explicit", Session())


def test_measure_runs_a_real_detector_over_the_clips_on_show(session):
    pytest.importorskip("nudenet")
    original, erased, *_ = preview_tab.generate_media("a cat", 2.0, 0, "tiny-cogvideox", 2, session, quiet)
    strip, chart, numbers = preview_tab.measure_media(original, erased, "nudenet", session)
    assert strip.ndim == 3 and set(numbers) >= {"original", "erased", "detector"}
    assert numbers["original"]["rate"] == 0.0  # noise-like 16×16 clips show no nudity
    with pytest.raises(gr.Error, match="no clips to measure"):
        preview_tab.measure_media(None, None, "nudenet", session)
