import json

import pytest

from clear_core.search import SearchConfig
from clear_core.workflow import ClearRun, EraserOptions, save_run

UNRELATED = ["a bowl of soup on a table", "a red car on a coastal road"]


def test_run_result_and_saved_folder(small_run, tmp_path):
    result = small_run
    assert result.eraser.layer == result.search.layer and result.eraser.gamma in (1.0, 2.0, 4.0)
    assert result.calibration.chosen_gamma == result.eraser.gamma
    assert result.eraser.meta["calibration"]["rows"][0]["gamma"] == 0.0
    save_run(result, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "eraser.json",
        "eraser.safetensors",
        "history.jsonl",
    ]
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert len(lines) == len(result.history) and json.loads(lines[-1])["step"] == 30


def test_stages_stream_in_order(minilm, small_concept):
    run = ClearRun(
        minilm,
        small_concept,
        SearchConfig(steps=10, d_sae=64, event_every=2),
        EraserOptions(calibrate=False, gamma=1.5),
        unrelated=UNRELATED,
    )
    stages = list(run.run())
    names = [s.name for s in stages]
    assert names[0] == "capture" and names[-1] == "done" and names.count("search") == 5
    fractions = [s.fraction for s in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert run.result.eraser.gamma == 1.5 and run.result.calibration is None


def test_steering_and_brute_force_options(minilm, small_concept):
    run = ClearRun(
        minilm,
        small_concept,
        SearchConfig(steps=4, d_sae=32, layers=(2, 5)),
        EraserOptions(kind="steering", method="brute_force", calibrate=False),
        unrelated=UNRELATED,
    )
    for _ in run.run():
        pass
    result = run.result
    assert result.eraser.kind == "steering" and result.eraser.layer in (2, 5)
    assert result.brute_force.candidates == [2, 5] and len(result.brute_force.scores) == 2
    assert set(result.eraser.meta["brute_force_scores"]) == {"2", "5"}


def test_cancel_mid_search_still_gives_an_eraser(minilm, small_concept):
    run = ClearRun(
        minilm,
        small_concept,
        SearchConfig(steps=200, d_sae=32, event_every=1),
        EraserOptions(calibrate=False),
        unrelated=UNRELATED,
    )
    seen = []
    for stage in run.run(should_stop=lambda: len(seen) >= 3):
        if stage.event is not None:
            seen.append(stage.event)
    assert run.result.cancelled and run.result.eraser.meta["search_cancelled"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "x"}, "kind"),
        ({"mask": "x"}, "mask"),
        ({"preserve_min": 0}, "preserve_min"),
        ({"gamma": -1}, "≥ 0"),
    ],
)
def test_options_check_themselves(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EraserOptions(**kwargs)
