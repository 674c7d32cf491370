import json
import subprocess
import sys

import numpy as np
import pytest

from clear_core.__main__ import main


@pytest.fixture
def files(tmp_path, small_concept):
    concept = small_concept.save(tmp_path / "para.jsonl")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a skydiver with a parachute\na bowl of soup\n")
    return concept, prompts


def test_embed_matches_the_api(minilm, files, tmp_path):
    _, prompts = files
    assert main(["embed", "--prompts", str(prompts), "--out", str(tmp_path / "x.npy")]) == 0
    x = np.load(tmp_path / "x.npy")
    assert x.dtype == np.float32 and x.shape == (2, 384)
    np.testing.assert_allclose(x, minilm.encode(["a skydiver with a parachute", "a bowl of soup"]), atol=1e-5)


def test_search_embed_evaluate(files, tmp_path, capsys):
    concept, prompts = files
    out = tmp_path / "eraser"
    args = ["search", "--concept", str(concept), "--out", str(out), "--steps", "10", "--d-sae", "64"]
    assert main(args) == 0
    assert {p.name for p in out.iterdir()} == {"eraser.json", "eraser.safetensors", "history.jsonl"}
    info = json.loads((out / "eraser.json").read_text())
    assert info["concept"] == "para" and info["sae"]["d_sae"] == 64 and info["search"]["steps"] == 10

    assert main(["embed", "--prompts", str(prompts), "--out", str(tmp_path / "o.npy")]) == 0
    assert (
        main(
            [
                "embed",
                "--prompts",
                str(prompts),
                "--out",
                str(tmp_path / "e.npy"),
                "--eraser",
                str(out),
                "--gamma",
                "4",
            ]
        )
        == 0
    )
    original, erased = np.load(tmp_path / "o.npy"), np.load(tmp_path / "e.npy")
    assert erased.shape == original.shape and not np.allclose(original[0], erased[0], atol=1e-3)

    capsys.readouterr()
    assert main(["evaluate", "--eraser", str(out), "--concept", str(concept), "--gamma", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["gamma"] == 2.0 and {"leakage", "preservation", "sweep"} <= set(report)
    assert report["leakage"]["unerased_positive"] >= report["leakage"]["positive"]
    assert report["preservation"]["unrelated"] <= 1.0 + 1e-6 and report["n"]["unrelated"] >= 100

    assert main(args) == 2  # refuses to overwrite a finished run
    assert "--overwrite" in capsys.readouterr().err


def test_errors_are_one_line_without_traceback(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"positive": "a cat"}\n')
    proc = subprocess.run(
        [sys.executable, "-m", "clear_core", "search", "--concept", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {bad}, line 1: missing key 'negative'"]


@pytest.mark.parametrize("command", ["embed", "search", "evaluate", "analyze"])
def test_help_for_every_command(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0 and "--model" in capsys.readouterr().out


def test_gamma_without_eraser(files, tmp_path, capsys):
    _, prompts = files
    assert main(["embed", "--prompts", str(prompts), "--out", str(tmp_path / "x.npy"), "--gamma", "2"]) == 2
    assert "--gamma needs --eraser" in capsys.readouterr().err
