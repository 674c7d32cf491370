import numpy as np
import pytest

from clear_core.evaluation import (
    GammaRow,
    Report,
    calibrate_gamma,
    calibration_leakage,
    evaluate,
    fit_probe,
    split_implicit,
)


def _report(rows):
    return Report("c", "b", 10, 0, 5, 1.0, [GammaRow(g, lp, None, 1.0, pu) for g, lp, pu in rows])


def test_calibration_picks_lowest_leakage_within_preservation():
    rows = [(0.0, 1.0, 1.0), (1.0, 0.6, 0.99), (2.0, 0.1, 0.97), (4.0, 0.1, 0.96), (8.0, 0.0, 0.80)]
    assert calibrate_gamma(_report(rows), preserve_min=0.95) == 2.0  # 8 is too destructive; tie -> smaller
    assert calibrate_gamma(_report(rows), preserve_min=0.95, strongest=True) == 4.0  # tie -> larger
    assert calibrate_gamma(_report(rows), preserve_min=0.75) == 8.0
    assert calibrate_gamma(_report(rows[:1] + [(1.0, 0.5, 0.5)]), preserve_min=0.95) == 1.0  # nothing passes


def test_calibration_weighs_implicit_leakage():
    # explicit positives are erased by γ = 2; the implicit prompts only by γ = 6 (still above the floor)
    rows = [
        GammaRow(0.0, 1.0, 0.9, 1.0, 1.0),
        GammaRow(2.0, 0.0, 0.8, 0.99, 0.98),
        GammaRow(4.0, 0.0, 0.5, 0.98, 0.97),
        GammaRow(6.0, 0.0, 0.2, 0.97, 0.955),
        GammaRow(8.0, 0.0, 0.0, 0.90, 0.90),
    ]
    report = Report("c", "b", 10, 4, 5, 1.0, rows)
    assert calibrate_gamma(report, preserve_min=0.95) == 6.0
    assert calibration_leakage(rows[2]) == pytest.approx(0.25)
    explicit_only = Report(
        "c",
        "b",
        10,
        0,
        5,
        1.0,
        [
            GammaRow(r.gamma, r.leakage_positive, None, r.preservation_negative, r.preservation_unrelated)
            for r in rows
        ],
    )
    assert calibrate_gamma(explicit_only, preserve_min=0.95) == 2.0  # the old rule stops early


def test_split_implicit_is_disjoint_and_deterministic():
    prompts = [f"p{i}" for i in range(7)]
    cal, held = split_implicit(prompts)
    assert cal == ["p0", "p2", "p4", "p6"] and held == ["p1", "p3", "p5"]
    assert not set(cal) & set(held) and split_implicit(prompts) == (cal, held)


def test_calibration_needs_unrelated():
    report = Report("c", "b", 1, 0, 0, 1.0, [GammaRow(1.0, 0.5, None, 1.0, None)])
    with pytest.raises(ValueError, match="unrelated"):
        calibrate_gamma(report)


def test_probe_detects_a_shift_and_refuses_tiny_sets():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1.0, 1, (40, 8)), rng.normal(-1.0, 1, (40, 8))
    probe = fit_probe(pos, neg)
    assert probe.detect(pos).mean() > 0.9 and probe.detect(neg).mean() < 0.1
    with pytest.raises(ValueError, match="at least 2"):
        fit_probe(pos[:1], neg)


def test_evaluate_sweep_on_a_real_eraser(minilm, small_run, small_concept):
    report = evaluate(
        minilm,
        small_run.eraser,
        small_concept.positives,
        small_concept.negatives,
        implicit=["a skydiver drifting under an open canopy"],
        unrelated=["a bowl of soup", "a red car"],
        gammas=(0.0, 2.0, 8.0),
    )
    base, strong = report.row(0.0), report.row(8.0)
    assert base.preservation_unrelated == pytest.approx(1.0) and base.preservation_negative == pytest.approx(
        1.0
    )
    assert base.leakage_positive > 0.9  # the probe sees the concept before erasure
    assert strong.leakage_positive < base.leakage_positive
    assert strong.preservation_negative > 0.99  # the context gate (default) leaves concept-free prompts be
    with pytest.raises(ValueError, match="was not evaluated"):
        report.row(3.0)


def test_baseline_reuse_gives_the_same_report(minilm, small_run, small_concept):
    from clear_core.evaluation import Baseline

    baseline = Baseline.build(
        minilm, small_concept.positives, small_concept.negatives, unrelated=["a bowl of soup"]
    )
    direct = evaluate(
        minilm,
        small_run.eraser,
        small_concept.positives,
        small_concept.negatives,
        unrelated=["a bowl of soup"],
        gammas=(0.0, 2.0),
    )
    reused = evaluate(minilm, small_run.eraser, baseline=baseline, gammas=(0.0, 2.0))
    assert direct.rows == reused.rows
    p = baseline.probe.probability(baseline.original["positive"])
    assert p.shape == (len(small_concept),) and np.all((p >= 0) & (p <= 1)) and p.mean() > 0.9


def test_concept_probe_reads_unrelated_prompts_near_zero(minilm, small_concept):
    from clear_core.concepts import unrelated_prompts
    from clear_core.evaluation import Baseline, split_unrelated

    unrelated = unrelated_prompts()
    baseline = Baseline.build(minilm, small_concept.positives, small_concept.negatives, unrelated=unrelated)
    held = baseline.original["unrelated"][split_unrelated(len(unrelated))[1]]
    p_pairs = baseline.probe.probability(held)
    p, low, high = baseline.concept_probe.probability_interval(held)
    # calibrated against unrelated prompts: held-out unrelated prompts read lower than with the pair probe
    assert p.mean() < 0.2 and p.mean() < p_pairs.mean()
    assert baseline.unrelated_false_positive == pytest.approx(float((p > 0.5).mean()))
    assert np.all(low <= high) and len(baseline.concept_probe.ensemble) == 20
    pos = baseline.original["positive"]
    assert baseline.concept_probe.probability(pos).mean() > 0.8  # still detects the concept
    quick = Baseline.build(
        minilm, small_concept.positives[:4], small_concept.negatives[:4], concept_probe=False
    )
    assert quick.concept_probe is None and quick.unrelated_false_positive is None
