"""clear_core/preview.py: one prompt erased at one γ, the engine half of the app's Erase tab."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from clear_core.measure import Measurer, evaluation_sample
from clear_core.preview import explain_prompt, preview_prompt

PROMPT = "a skydiver with a parachute over the sea"
UNRELATED = [
    "a bowl of soup on a table",
    "a red car on a coastal road",
    "a cat asleep on a sofa",
    "a lighthouse",
]


def test_without_a_measurer_it_is_the_prompt_alone(minilm, small_run):
    preview = preview_prompt(minilm, small_run.eraser, PROMPT, 2.0)
    assert preview.explanation == explain_prompt(small_run.eraser, minilm, PROMPT, 2.0)
    assert preview.concept_probability is None and preview.measurement is None
    numbers = preview.to_json()
    assert numbers["block"] == small_run.eraser.layer - 1 and numbers["gamma"] == 2.0
    assert "scores" not in numbers and "concept_probability" not in numbers["prompt"]


def test_with_a_measurer_it_adds_the_verdict_and_the_concepts_numbers(minilm, small_run, small_concept):
    eraser = small_run.eraser
    measurer = Measurer(minilm, eraser, evaluation_sample(small_concept, eraser, None, UNRELATED))
    steps = []
    preview = preview_prompt(minilm, eraser, PROMPT, 4.0, measurer, progress=lambda f, m: steps.append(m))
    original = minilm.encode([PROMPT])
    with eraser.applied(minilm, gamma=4.0):
        erased = minilm.encode([PROMPT])
    expected = measurer.baseline.probe.probability(np.concatenate([original, erased]))
    assert preview.concept_probability == pytest.approx(tuple(expected), abs=1e-5)
    assert preview.measurement.summary(4.0) == measurer.measure([4.0]).summary(4.0)
    numbers = preview.to_json()
    assert numbers["scores"]["gamma"] == 4.0 and set(numbers["prompt"]["concept_probability"]) == {
        "original",
        "erased",
    }
    assert steps == ["leakage and preservation at γ = 4"]
    other = dataclasses.replace(eraser, direction=None, m_spec=eraser.m_spec.flip(0))
    with pytest.raises(ValueError, match="the measurer was built for another eraser"):
        preview_prompt(minilm, other, PROMPT, 1.0, measurer)
