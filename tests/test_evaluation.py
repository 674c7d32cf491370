import numpy as np
import pytest

from clear_core.evaluation import GammaRow, Report, calibrate_gamma, evaluate, fit_probe


def _report(rows):
    return Report("c", "b", 10, 0, 5, 1.0, [GammaRow(g, lp, None, 1.0, pu) for g, lp, pu in rows])


def test_calibration_picks_lowest_leakage_within_preservation():
    rows = [(0.0, 1.0, 1.0), (1.0, 0.6, 0.99), (2.0, 0.1, 0.97), (4.0, 0.1, 0.96), (8.0, 0.0, 0.80)]
    assert calibrate_gamma(_report(rows), preserve_min=0.95) == 2.0  # 8 is too destructive; tie -> smaller
    assert calibrate_gamma(_report(rows), preserve_min=0.75) == 8.0
    assert calibrate_gamma(_report(rows[:1] + [(1.0, 0.5, 0.5)]), preserve_min=0.95) == 1.0  # nothing passes


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
    assert strong.preservation_negative < 1.0
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
