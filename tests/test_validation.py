"""Numbers at the boundaries: the shared checks, and eraser artifacts with bad numbers refused on load."""

import json
import math
import warnings

import pytest
from safetensors.torch import load_file, save_file

from clear_core.erasure import Eraser
from clear_core.validation import ClearWarning, check_finite, check_gamma, check_int, check_number


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (math.nan, "must be a finite number, got nan"),
        (math.inf, "must be a finite number, got inf"),
        (-1, "must be ≥ 0, got -1"),
        (1e9, "must be ≤ 1000, got 1e\\+09"),
        ("three", "must be a number, got 'three'"),
        (True, "must be a number, got True"),
        (None, "must be a number, got None"),
    ],
)
def test_check_gamma_refuses(value, match):
    with pytest.raises(ValueError, match=f"^γ {match}"):
        check_gamma(value)


def test_check_gamma_warns_above_the_usual_range():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert check_gamma(3) == 3.0
        assert not caught
        assert check_gamma(50) == 50.0
    assert len(caught) == 1 and issubclass(caught[0].category, ClearWarning)
    assert "γ = 50 is far above the usual range" in str(caught[0].message)


def test_number_and_int_checks():
    assert check_number(0.5, "x", minimum=0, maximum=1) == 0.5
    with pytest.raises(ValueError, match="x must be > 0, got 0"):
        check_number(0, "x", above=0)
    assert check_int(4.0, "n", minimum=1) == 4
    with pytest.raises(ValueError, match="n must be an integer, got 4.5"):
        check_int(4.5, "n")
    with pytest.raises(ValueError, match="n must be ≥ 1, got 0"):
        check_int(0, "n", minimum=1)


def test_check_finite_counts_the_bad_values():
    import numpy as np

    check_finite(np.zeros(3), "ok")
    with pytest.raises(ValueError, match="w: 2 of 4 values are not finite"):
        check_finite(np.array([1.0, np.nan, np.inf, 0.0]), "w")


# ------------------------------------------------------------------------------- eraser artifacts
@pytest.fixture
def artifact(small_run, tmp_path):
    folder = small_run.eraser.save(tmp_path / "eraser")
    return folder, json.loads((folder / "eraser.json").read_text())


def _write_json(folder, info):
    # json.dumps writes NaN / Infinity literals, as a hand-edited or foreign artifact may contain
    (folder / "eraser.json").write_text(json.dumps(info))


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("scale", math.inf, "scale must be a finite number, got inf"),
        ("scale", -2.0, "scale must be > 0, got -2"),
        ("default_gamma", math.nan, "default_gamma must be a finite number, got nan"),
        ("default_gamma", -5, "default_gamma must be ≥ 0, got -5"),
        ("default_gamma", "three", "default_gamma must be a number, got 'three'"),
        ("block_index", 99, "block_index 99 contradicts layer"),
        ("d_model", "384", "d_model must be an integer, got '384'"),
    ],
)
def test_bad_numbers_in_eraser_json_are_refused(artifact, field, value, match):
    folder, info = artifact
    _write_json(folder, {**info, field: value})
    with pytest.raises(ValueError, match=f"^{folder / 'eraser.json'}: {match}"):
        Eraser.load(folder)


def test_an_eraser_relabelled_to_another_block_is_refused(artifact):
    folder, info = artifact
    layer = info["layer"] - 1 if info["layer"] > 1 else info["layer"] + 1
    moved = {**info, "layer": layer, "block_index": layer - 1, "layer_name": info["layer_names"][layer]}
    _write_json(folder, moved)
    with pytest.raises(ValueError, match="the eraser was moved to another block"):
        Eraser.load(folder)


@pytest.mark.parametrize(
    ("tensor", "rows", "value", "match"),
    [
        ("W_dec", slice(0, 6), math.nan, "SAE W_dec: 2,304 of .* values are not finite"),
        ("m_spec", slice(0, 1), -50.0, "m_spec must lie in \\[0, 1\\], got values in \\[-50"),
        ("m_spec", slice(0, 1), math.inf, "m_spec: 1 of 256 values are not finite"),
    ],
)
def test_bad_tensors_are_refused(artifact, tensor, rows, value, match):
    folder, _ = artifact
    tensors = load_file(str(folder / "eraser.safetensors"))
    tensors[tensor][rows] = value
    save_file(tensors, str(folder / "eraser.safetensors"))
    with pytest.raises(ValueError, match=match):
        Eraser.load(folder)


def test_the_json_file_names_its_folder(artifact):
    folder, _ = artifact
    assert Eraser.load(folder / "eraser.json").layer_name == Eraser.load(folder).layer_name


def test_save_refuses_a_poisoned_eraser_and_writes_nothing(small_run, tmp_path):
    import copy

    eraser = copy.deepcopy(small_run.eraser)
    eraser.gamma = math.nan  # set after construction: only save can still catch it
    with pytest.raises(ValueError, match="default_gamma must be a finite number"):
        eraser.save(tmp_path / "bad")
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())
