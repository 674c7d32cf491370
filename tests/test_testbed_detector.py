"""The shipped testbed weights: detector schema and accuracy, pipeline loading, the rate CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from clear_core.testbed.detector import DETECTOR_DIR, HEADS, concept_attribute, concept_present, load_detector
from clear_core.testbed.pipeline import ASSETS, load_testbed_pipeline
from clear_core.testbed.render import render, to_uint8
from clear_core.testbed.world import SceneSpec

pytestmark = pytest.mark.skipif(
    not (DETECTOR_DIR / "detector.safetensors").is_file() or not (ASSETS / "transformer").is_dir(),
    reason="testbed weights not shipped yet",
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def det():
    return load_detector()


def test_detector_schema_and_report(det):
    frames = np.stack([render(SceneSpec(object="parachute", subject="man"))[0]] * 3)
    for inp in (frames, to_uint8(frames)):
        pred = det.predict(inp)
        for head, names in HEADS.items():
            if head == "unclothed":
                assert pred["unclothed"].dtype == bool and pred["unclothed_prob"].shape == (3,)
            else:
                assert pred[head].shape == (3,) and pred[f"{head}_probs"].shape == (3, len(names))
                np.testing.assert_allclose(pred[f"{head}_probs"].sum(1), 1, atol=1e-5)
    report = det.report()
    assert report["name"] == "testbed-cnn" and len(report["sha256"]) == 64
    acc = report["accuracy"]
    assert set(HEADS) <= set(acc)
    # regression guard at the measured level (README): objects are the hard head
    assert min(acc[k] for k in ("style", "avatar", "unclothed", "setting")) >= 0.97 and acc["object"] >= 0.9
    assert acc["avatar_present"] >= 0.97
    with pytest.raises(ValueError, match=r"frames must be \(N, H, W, 3\)"):
        det.predict(np.zeros((64, 64, 3)))


def test_detector_reads_clear_renders(det):
    specs = [
        SceneSpec(object="golf_ball", setting="field"),
        SceneSpec(object="tennis_ball", setting="field"),
        SceneSpec(subject="man", identity="barack_obama", setting="studio"),
        SceneSpec(subject="woman", clothing="unclothed", setting="studio"),
        SceneSpec(subject="woman", setting="garden", style="van_gogh"),
    ]
    frames = np.concatenate([render(s)[:2] for s in specs])
    pred = det.predict(frames)
    assert list(pred["object"][:4]) == ["golf_ball"] * 2 + ["tennis_ball"] * 2
    assert (
        concept_present(pred, "barack_obama")[4:6].all()
        and not concept_present(pred, "barack_obama")[:4].any()
    )
    assert concept_present(pred, "nudity")[6:8].all() and not concept_present(pred, "nudity")[4:6].any()
    assert concept_present(pred, "van_gogh")[8:].all()
    assert concept_attribute("church") == ("object", "church")
    assert concept_attribute("tennis_ball") == ("object", "tennis_ball")  # a look-alike to keep
    with pytest.raises(ValueError, match="no testbed attribute"):
        concept_attribute("none")
    with pytest.raises(ValueError, match="no testbed attribute"):
        concept_attribute("zeppelin")


def test_shipped_pipeline_follows_a_caption():
    pipe = load_testbed_pipeline()
    out = pipe(
        ["a parachute over a desert", "a golf ball on a putting green"],
        generator=torch.Generator().manual_seed(0),
    )
    assert [s.object for s in out.specs] == ["parachute", "golf_ball"]


def test_rate_cli_prints_json(capsys, tmp_path):
    from clear_core.testbed import cli

    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    prompts = tmp_path / "p.txt"
    prompts.write_text("a parachute over a desert, 4k video\na man walking on a city street\n")
    args = parser.parse_args(
        ["testbed", "rate", "--concept", "parachute", "--prompts", str(prompts), "--seeds", "2"]
    )
    assert args.run(args) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n_clips"] == 4 and res["n_frames"] == 32
    assert 0.25 <= res["rate"] <= 0.75  # one prompt with, one without the concept
    bad = parser.parse_args(["testbed", "rate", "--concept", "zeppelin"])
    with pytest.raises(ValueError, match="no testbed attribute"):
        bad.run(bad)
