"""The Erase & preview tab's video panel, through its callbacks, on a tiny random CogVideoX pipeline."""

from __future__ import annotations

import dataclasses
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
    original, erased, strip, files, info, key = out
    assert key["gamma"] == 3.0 and key["seed"] == 0 and key["pipeline"] == "tiny-cogvideox"
    assert "γ = 3" in info and "a parachute over the sea" in info  # the info names what it shows
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
    assert len(none_yet) == 6 and none_yet[0] == gr.skip()
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


@pytest.fixture(scope="module")
def testbed_session():
    if not generation.testbed_available():
        pytest.skip("the testbed's weights are not installed")
    import torch

    torch.set_num_threads(1)
    eraser = make_eraser(generation.get_pipeline("testbed"), layer=5)
    return Session(concept=ConceptSet("parachute", load_builtin("parachute").pairs[:8]), eraser=eraser)


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, fraction, desc=None, **_):
        self.calls.append((fraction, desc))


def test_rate_over_seeds_on_the_testbed_has_wilson_intervals_and_shared_latents(testbed_session):
    from app.measure import RATE_SEEDS
    from clear_core.testbed.rate import wilson

    progress = Recorder()
    prompt = "a skydiver with a parachute over a desert"
    chart, note, numbers, key = preview_tab.rate_over_seeds(
        prompt, 2.0, 3, "testbed", 10, testbed_session, progress
    )
    assert key["gamma"] == 2.0 and key["seed"] == 3 and key["prompt"] == prompt
    assert chart["visible"] and numbers["visible"]
    fig, numbers = chart["value"], numbers["value"]
    original, erased = numbers["original"], numbers["erased γ=2"]
    assert numbers["setup"]["seeds"] == list(range(3, 3 + RATE_SEEDS))
    assert original["clips"] == erased["clips"] == RATE_SEEDS
    assert (
        original["clips_with_concept"] >= RATE_SEEDS // 2
    )  # the testbed draws the parachute it is asked for
    for arm in (original, erased):
        assert arm["ci95"] == list(wilson(arm["clips_with_concept"], RATE_SEEDS))
        assert arm["ci95"][0] <= arm["rate"] <= arm["ci95"][1]
    bars = fig.data[0]
    assert list(bars.x) == ["original", "erased γ=2"] and list(bars.y) == [original["rate"], erased["rate"]]
    assert list(bars.error_y.array) == [arm["ci95"][1] - arm["rate"] for arm in (original, erased)]
    assert f"**{original['clips_with_concept']}/{RATE_SEEDS}** original" in note
    assert progress.calls and progress.calls[-1][0] == 1.0

    # an eraser that subtracts nothing renders the erased clips from the same latents: the same rate
    import torch

    noop = dataclasses.replace(testbed_session.eraser, m_spec=torch.zeros_like(testbed_session.eraser.m_spec))
    _, _, same, _ = preview_tab.rate_over_seeds(
        prompt, 2.0, 3, "testbed", 10, testbed_session.with_(eraser=noop), quiet
    )
    same = same["value"]
    assert same["erased γ=2"]["per_seed_frame_share"] == same["original"]["per_seed_frame_share"]
    assert same["original"] == original  # and the original arm does not depend on the eraser


def test_rate_over_seeds_is_skipped_off_the_testbed_and_explained_for_a_custom_concept(
    testbed_session, monkeypatch
):
    def no_model_work(name):
        raise AssertionError(f"loaded {name}")

    monkeypatch.setattr(preview_tab, "get_pipeline", no_model_work)
    chart, note, numbers, _key = preview_tab.rate_over_seeds(
        "a cat", 1.0, 0, "tiny-cogvideox", 2, testbed_session, quiet
    )
    assert chart["visible"] is False and numbers["visible"] is False and note == ""
    custom = testbed_session.with_(eraser=dataclasses.replace(testbed_session.eraser, concept="my hat"))
    chart, note, _, _ = preview_tab.rate_over_seeds("a cat", 1.0, 0, "testbed", 2, custom, quiet)
    assert chart["visible"] is False and "no attribute for* `my hat`" in note
    with pytest.raises(gr.Error, match="seed"):
        preview_tab.rate_over_seeds("a cat", 1.0, -1, "testbed", 2, testbed_session, quiet)


def test_the_implicit_example_is_one_the_testbed_draws(testbed_session):
    """Many paraphrases draw nothing on the testbed (parachute's first one does not): on the testbed
    the "implicit" example is the paraphrase whose clip shows the concept in the most frames."""
    from app.measure import paraphrase_frame_shares
    from clear_core.concepts import load_implicit

    implicit = load_implicit("parachute")[0]
    session = testbed_session.with_(implicit=implicit)
    shares = paraphrase_frame_shares(implicit, "parachute")
    chosen = preview_tab.example_prompt("implicit", session, "testbed")
    assert shares[implicit.index(chosen)] == max(shares) > 0
    assert shares[0] < max(shares)  # the first paraphrase, the example before, draws less
    assert preview_tab.example_prompt("implicit", session, "tiny-wan") == implicit[0]


def test_another_pipeline_empties_the_clips():
    cleared = preview_tab.clear_media()
    assert cleared[:4] == (None, None, None, None) and cleared[6]["visible"] is False
    assert generation.pipeline_choices() in ([], ["testbed"])  # no pipeline no app-made eraser can drive
