"""Detector training recipe (clear_core/testbed/detector.py): config checks, fresh-render training and
the metadata it writes (width, recipe, command, per-class measurements)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from clear_core.testbed.detector import DetectorNet, TrainConfig, load_detector, render_dataset, train


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"width": 0}, "width must be ≥ 1"),
        ({"avatar_share": 1.0}, "avatar_share must lie in"),
        ({"frames_per_clip": 9}, "frames_per_clip must lie in"),
        ({"clips": -1}, "must be ≥ 0"),
    ],
)
def test_train_config_rejects_bad_values(change, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**change)


def test_avatar_share_oversamples_avatars():
    _, y, specs = render_dataset(60, seed=3, frames_per_clip=1, avatar_share=0.5)
    assert len(specs) == 60 and (y["avatar"] > 0).mean() > 0.3  # random specs: ≈ 0.13


def test_fresh_render_training_writes_loadable_detector(tmp_path):
    cfg = TrainConfig(steps=2, batch=8, width=4, stem=1, heldout_clips=6, avatar_share=0.3)
    meta = train(tmp_path, cfg, progress=False)
    saved = json.loads((tmp_path / "detector.json").read_text())
    assert saved["width"] == 4 and saved["stem"] == 1 and saved["recipe"]["frames_per_clip"] == 2
    assert "--width 4 --stem 1" in saved["command"] and saved["steps_done"] == 2
    assert set(meta["accuracy"]) >= {"object", "avatar", "unclothed", "setting", "style"}
    det = load_detector(tmp_path)
    assert isinstance(det.net, DetectorNet) and len(det.net.features) == 4 * 4 + 3 + 3
    assert det.predict(np.zeros((2, 64, 64, 3), np.uint8))["object"].shape == (2,)
