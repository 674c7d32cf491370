"""clear_core/measure.py: the one sample and function behind the app's scores and ``evaluate``."""

from __future__ import annotations

import dataclasses

import pytest

from clear_core.concepts import ConceptSet
from clear_core.measure import Measurer, evaluation_sample, measure


def unsplit(eraser):
    """The eraser as one searched before fit / held-out splits (no ``splits`` in its eraser.json)."""
    return dataclasses.replace(eraser, meta={k: v for k, v in eraser.meta.items() if k != "splits"})


UNRELATED = [
    "a bowl of soup on a table",
    "a red car on a coastal road",
    "a cat asleep on a sofa",
    "a lighthouse",
]
IMPLICIT = [f"a skydiver drifting under an open canopy, take {i}" for i in range(6)]


def test_the_sample_holds_out_the_paraphrases_the_calibration_saw(small_run, small_concept):
    eraser = unsplit(small_run.eraser)
    calibrated = dataclasses.replace(eraser, meta={**eraser.meta, "calibration": {"n_implicit": 3}})
    sample = evaluation_sample(small_concept, calibrated, IMPLICIT, UNRELATED)
    assert sample.implicit == tuple(IMPLICIT[1::2]) and "held-out half" in sample.implicit_note
    assert sample.positives == tuple(small_concept.positives)  # every pair, not a subset
    uncalibrated = dataclasses.replace(eraser, meta={**eraser.meta, "calibration": {"n_implicit": 0}})
    assert evaluation_sample(small_concept, uncalibrated, IMPLICIT, UNRELATED).implicit == tuple(IMPLICIT)
    none = evaluation_sample(small_concept, uncalibrated, None, UNRELATED)
    assert none.implicit == () and "no paraphrases" in none.describe()
    text = sample.describe()
    assert f"{len(small_concept)} pairs of parachute" in text and "3 paraphrases (held-out half" in text
    assert (
        sample.key() != none.key()
        and sample.key() == evaluation_sample(small_concept, calibrated, IMPLICIT, UNRELATED).key()
    )


def test_look_alikes_are_the_held_out_prompts_of_the_protected_ones(small_run, small_concept):
    from clear_core.lookalikes import preserve_set

    eraser = unsplit(small_run.eraser)
    protected = dataclasses.replace(
        eraser, meta={**eraser.meta, "preserve": {"lookalikes": ["kite"], "seed": 0}}
    )
    sample = evaluation_sample(small_concept, protected, None, UNRELATED)
    held = preserve_set(small_concept, ["kite"], seed=0)
    assert sample.lookalike_names == ("kite",) and set(sample.lookalikes) == set(held.held_out_prompts)
    assert not set(sample.lookalikes) & set(held.protect_prompts)
    custom = ConceptSet("hats", [dataclasses.replace(p) for p in small_concept.pairs])  # no built-in list
    plain = dataclasses.replace(eraser, meta={k: v for k, v in eraser.meta.items() if k != "preserve"})
    assert evaluation_sample(custom, plain, None, UNRELATED).lookalikes == ()


def test_measurer_gives_what_measure_gives_and_keeps_each_gamma(
    minilm, small_run, small_concept, monkeypatch
):
    eraser = unsplit(small_run.eraser)
    sample = evaluation_sample(small_concept, eraser, IMPLICIT, UNRELATED)
    once = measure(minilm, eraser, sample, [1.0, 2.0])
    m = Measurer(minilm, eraser, sample)
    first = m.measure([2.0])
    import clear_core.evaluation as evaluation

    calls = []
    real = evaluation.evaluate
    monkeypatch.setattr(evaluation, "evaluate", lambda *a, **k: calls.append(k["gammas"]) or real(*a, **k))
    second = m.measure([1.0, 2.0])
    assert calls == [[1.0]]  # γ 0 and 2 were measured before
    assert [r.gamma for r in second.report.rows] == [0.0, 1.0, 2.0]
    for a, b in zip(once.report.rows, second.report.rows):
        assert a.leakage_positive == b.leakage_positive and a.leakage_implicit == b.leakage_implicit
        assert a.preservation_unrelated == pytest.approx(b.preservation_unrelated, abs=1e-5)
    summary = first.summary(2.0)
    assert summary["sample"]["n_pairs"] == len(small_concept) and summary["gamma"] == 2.0
    assert summary["leakage"]["unerased_positive"] == once.unerased.leakage_positive


def test_the_sample_is_what_the_search_held_out(minilm, small_run, small_concept):
    """For an eraser searched with splits, the shared sample is the run's held-out part, so the app,
    ``evaluate`` and eraser.json's ``held_out`` record give the same numbers at the eraser's γ."""
    from clear_core.concepts import load_implicit

    eraser = small_run.eraser
    record = eraser.meta["held_out"]
    unrelated = ["a bowl of soup on a table", "a red car on a coastal road", "a cat asleep on a sofa"]
    sample = evaluation_sample(small_concept, eraser, load_implicit("parachute")[0], unrelated)
    assert len(sample.positives) == record["n_pairs"] == eraser.meta["splits"]["pairs"]["n_held_out"]
    assert "held out by the search" in sample.describe()
    assert (len(sample.implicit), len(sample.unrelated)) == (record["n_implicit"], record["n_unrelated"])
    assert len(sample.lookalikes) == record["n_lookalike"]
    row = measure(minilm, eraser, sample, [eraser.gamma]).row(eraser.gamma)
    assert row.leakage_positive == record["erased"]["leakage_positive"]
    assert row.leakage_implicit == record["erased"]["leakage_implicit"]
    assert row.preservation_negative == pytest.approx(record["erased"]["preservation_negative"], abs=1e-5)
    # pairs the search did not hold out (other pairs of the pack): every pair given is measured
    from clear_core.concepts import load_builtin

    other = ConceptSet("parachute", load_builtin("parachute").pairs[1::10][:24])
    assert len(evaluation_sample(other, eraser, None, unrelated).positives) == len(other)
