"""The issue's erasure target, end to end with the default configuration (slow: ~45 s on 2 cores).

Run with ``python -m pytest -q -m slow``.
"""

import pytest

from clear_core.concepts import load_builtin, load_implicit, unrelated_prompts
from clear_core.evaluation import evaluate
from clear_core.workflow import ClearRun


@pytest.mark.slow
def test_default_search_on_parachute_meets_the_target(minilm):
    run = ClearRun(minilm, load_builtin("parachute"))
    for _ in run.run():
        pass
    eraser = run.result.eraser
    implicit, _ = load_implicit("parachute")
    concept = load_builtin("parachute")
    report = evaluate(
        minilm,
        eraser,
        concept.positives,
        concept.negatives,
        implicit,
        unrelated_prompts(),
        gammas=(0.0, eraser.gamma),
    )
    before, after = report.row(0.0), report.row(eraser.gamma)
    assert after.leakage_implicit <= before.leakage_implicit / 2
    assert after.preservation_unrelated >= 0.95
    assert after.leakage_positive < before.leakage_positive
