import json
import subprocess
import sys

import numpy as np
import pytest

from clear_core.__main__ import build_parser, main


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
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["gamma"] == 2.0 and {"leakage", "preservation", "sweep"} <= set(report)
    # the sample is named, and a long evaluation says it is alive (the unerased pass, then each γ)
    assert report["sample"]["n_pairs"] == report["n"]["positive"] and report["sample"]["description"]
    err = captured.err.splitlines()
    assert err[0].startswith("sample: ") and any("evaluate:" in line and "γ sweep" in line for line in err)
    assert report["eraser"]["m_spec_above_0.5"] <= report["eraser"]["m_spec_above_0.1"] <= 64
    assert report["leakage"]["unerased_positive"] >= report["leakage"]["positive"]
    assert report["preservation"]["unrelated"] <= 1.0 + 1e-6 and report["n"]["unrelated"] >= 60

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


def test_top_level_help_lists_every_command(capsys):
    """argparse %-formats every command's help line: a bare "%" in one broke ``--help`` for all."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    for command in ("embed", "search", "evaluate", "analyze", "generate", "testbed", "evaluate-videos"):
        assert command in out
    assert "95%" in out and "95%%" not in out


@pytest.mark.parametrize("command", ["embed", "search", "evaluate", "analyze"])
def test_help_for_every_command(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0 and "--model" in capsys.readouterr().out


def test_gamma_without_eraser(files, tmp_path, capsys):
    _, prompts = files
    assert main(["embed", "--prompts", str(prompts), "--out", str(tmp_path / "x.npy"), "--gamma", "2"]) == 2
    assert "--gamma needs --eraser" in capsys.readouterr().err


# ------------------------------------------------------------------- bad input: one line, nothing harmed
@pytest.fixture
def eraser_dir(small_run, tmp_path):
    return small_run.eraser.save(tmp_path / "eraser")


def _one_line_error(capsys, code, expected):
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert expected in err[0], err[0]


@pytest.mark.parametrize(
    ("gamma", "expected"),
    [
        ("nan", "argument --gamma: must be a finite number, got nan"),
        ("inf", "argument --gamma: must be a finite number, got inf"),
        ("-1", "argument --gamma: must be ≥ 0, got -1"),
        ("1e9", "argument --gamma: must be ≤ 1000, got 1e+09"),
    ],
)
@pytest.mark.parametrize("command", ["embed", "evaluate", "search"])
def test_bad_gamma_is_refused_everywhere(command, gamma, expected, files, eraser_dir, tmp_path, capsys):
    concept, prompts = files
    args = {
        "embed": ["--prompts", str(prompts), "--out", str(tmp_path / "x.npy"), "--eraser", str(eraser_dir)],
        "evaluate": ["--eraser", str(eraser_dir), "--concept", str(concept)],
        "search": ["--concept", str(concept), "--out", str(tmp_path / "run")],
    }[command]
    with pytest.raises(SystemExit) as exit_info:
        main([command, *args, "--gamma", gamma])
    _one_line_error(capsys, exit_info.value.code, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["eraser", "para.jsonl", "prompts.txt"])


def test_large_gamma_warns_in_one_line(files, eraser_dir, tmp_path, capsys):
    _, prompts = files
    out = tmp_path / "x.npy"
    code = main(
        ["embed", "--prompts", str(prompts), "--out", str(out), "--eraser", str(eraser_dir), "--gamma", "50"]
    )
    err = capsys.readouterr().err
    assert code == 0 and "warning: --gamma = 50 is far above the usual range" in err
    assert np.isfinite(np.load(out)).all()


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("scale", float("inf"), "eraser.json: scale must be a finite number, got inf"),
        ("default_gamma", float("nan"), "eraser.json: default_gamma must be a finite number, got nan"),
        ("default_gamma", "three", "eraser.json: default_gamma must be a number, got 'three'"),
        ("default_gamma", -5, "eraser.json: default_gamma must be ≥ 0, got -5"),
    ],
)
def test_poisoned_eraser_is_refused_before_anything_is_written(
    field, value, expected, files, eraser_dir, tmp_path, capsys
):
    _, prompts = files
    info = json.loads((eraser_dir / "eraser.json").read_text())
    (eraser_dir / "eraser.json").write_text(json.dumps({**info, field: value}))
    out = tmp_path / "x.npy"
    code = main(["embed", "--prompts", str(prompts), "--out", str(out), "--eraser", str(eraser_dir)])
    _one_line_error(capsys, code, expected)
    assert not out.exists()


def test_nan_weights_are_refused(files, eraser_dir, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    concept, prompts = files
    tensors = load_file(str(eraser_dir / "eraser.safetensors"))
    tensors["W_dec"][:6] = float("nan")
    save_file(tensors, str(eraser_dir / "eraser.safetensors"))
    out = tmp_path / "x.npy"
    code = main(["embed", "--prompts", str(prompts), "--out", str(out), "--eraser", str(eraser_dir)])
    _one_line_error(capsys, code, "SAE W_dec: 2,304 of")
    assert not out.exists()
    code = main(["evaluate", "--eraser", str(eraser_dir), "--concept", str(concept)])
    _one_line_error(capsys, code, "values are not finite (NaN or infinity)")


def test_embed_never_clobbers(files, eraser_dir, tmp_path, capsys):
    _, prompts = files
    before = prompts.read_bytes()
    code = main(["embed", "--prompts", str(prompts), "--out", str(prompts), "--overwrite"])
    _one_line_error(capsys, code, "must end in .npy")
    npy_prompts = tmp_path / "q.npy"
    npy_prompts.write_text(prompts.read_text())
    code = main(["embed", "--prompts", str(npy_prompts), "--out", str(npy_prompts), "--overwrite"])
    _one_line_error(capsys, code, "is the --prompts file")
    assert npy_prompts.read_bytes() == before and prompts.read_bytes() == before

    out = tmp_path / "x.npy"
    out.write_bytes(b"earlier output")
    code = main(["embed", "--prompts", str(prompts), "--out", str(out)])
    _one_line_error(capsys, code, "exists; pass --overwrite")
    assert out.read_bytes() == b"earlier output"
    assert main(["embed", "--prompts", str(prompts), "--out", str(out), "--overwrite"]) == 0
    assert np.load(out).shape == (2, 384)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "eraser",
        "para.jsonl",
        "prompts.txt",
        "q.npy",
        "x.npy",
    ]


def test_the_same_eraser_twice_is_refused(files, eraser_dir, tmp_path, capsys):
    _, prompts = files
    args = ["embed", "--prompts", str(prompts), "--out", str(tmp_path / "x.npy")]
    code = main([*args, "--eraser", str(eraser_dir), "--eraser", str(eraser_dir / "eraser.json")])
    _one_line_error(capsys, code, "is given twice")
    assert main([*args, "--eraser", str(eraser_dir / "eraser.json")]) == 0  # the file names its folder


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["embed", "--batch-size", "0"], "argument --batch-size: must be in 1..4,096, got 0"),
        (["search", "--concept", "parachte"], "did you mean 'parachute'? built-in: andy_warhol"),
        (["search", "--out", "{file}"], "is a file; expected a folder"),
        (["search", "--out", "{file}/sub"], "is a file, not a folder"),
        (["search", "--block", "99"], "--block 99 does not exist: minilm has blocks 0..5"),
        (["analyze", "--eraser", "{corrupt}"], "eraser.json: not valid JSON"),
        (["analyze", "--out", "{full}"], "exists and is not empty; pass --overwrite"),
        (["embed", "--prompts", "{invisible}"], "line 2: the prompt is empty (only invisible characters)"),
    ],
)
def test_cheap_checks_fail_fast(argv, expected, files, tmp_path, capsys):
    import time

    concept, prompts = files
    (tmp_path / "file").write_text("keep me")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "eraser.json").write_text("{not json")
    (tmp_path / "corrupt" / "eraser.safetensors").write_bytes(b"")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "analysis.json").write_text("earlier")
    (tmp_path / "invisible.txt").write_text("a cat\n\u200b\u200b\n")
    names = {k: str(tmp_path / k) for k in ("file", "corrupt", "full")} | {
        "invisible": str(tmp_path / "invisible.txt")
    }
    defaults = {
        "embed": {"--prompts": str(prompts), "--out": str(tmp_path / "x.npy")},
        "search": {"--concept": str(concept), "--out": str(tmp_path / "run")},
        "analyze": {"--concept": str(concept), "--out": str(tmp_path / "map")},
    }[argv[0]]
    given = [a.format(**names) for a in argv[1:]]
    options = {**defaults, **dict(zip(given[::2], given[1::2]))}
    args = [argv[0], *[x for option, value in options.items() for x in (option, value)]]
    start = time.perf_counter()
    try:
        code = main(args)
    except SystemExit as exit_info:
        code = exit_info.code
    _one_line_error(capsys, code, expected)
    assert time.perf_counter() - start < 30  # refused before any search or analysis
    assert (tmp_path / "file").read_text() == "keep me" and (
        tmp_path / "full" / "analysis.json"
    ).read_text() == "earlier"
    assert (
        not (tmp_path / "run").exists()
        and not (tmp_path / "map").exists()
        and not (tmp_path / "x.npy").exists()
    )


def test_os_errors_exit_2_in_one_line(monkeypatch, capsys):
    from clear_core import __main__ as cli

    def denied(args):
        raise PermissionError(13, "Permission denied", "/somewhere/out.npy")

    monkeypatch.setitem(cli.COMMANDS, "embed", denied)
    code = main(["embed", "--prompts", "p.txt", "--out", "x.npy"])
    _one_line_error(capsys, code, "error: Permission denied: /somewhere/out.npy")


def test_small_concept_warns_and_progress_is_plain_lines_without_a_terminal(tmp_path, small_concept):
    import os
    import stat

    from clear_core.concepts import ConceptSet

    tiny = ConceptSet("tiny", small_concept.pairs[:3]).save(tmp_path / "tiny.jsonl")
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "clear_core", "search", "--concept", str(tiny), "--out", str(out)]
        + ["--steps", "20", "--d-sae", "64", "--gamma", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert any(line.startswith("warning: concept 'tiny' has only 3 pairs") for line in lines), lines
    progress = [line for line in lines if line.startswith("search: ")]
    assert len(progress) >= 3 and "capture" in progress[0] and "100%" in progress[-1], lines
    modes = {
        stat.S_IMODE(os.stat(out / name).st_mode)
        for name in ("eraser.json", "eraser.safetensors", "history.jsonl")
    }
    assert len(modes) == 1, modes


def test_analyze_writes_whole_files_and_never_replaces_them_silently(files, tmp_path, capsys):
    import os
    import stat

    from clear_core.io import FILE_MODE

    concept, _ = files
    out = tmp_path / "map"
    args = ["analyze", "--concept", str(concept), "--out", str(out), "--methods", "pca"]
    assert main(args) == 0
    names = {"analysis.json", "separability.html", "projections_pca.html"}
    assert {p.name for p in out.iterdir()} == names
    assert {stat.S_IMODE(os.stat(out / n).st_mode) for n in names} == {FILE_MODE}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    before = (out / "analysis.json").read_bytes()
    capsys.readouterr()
    _one_line_error(capsys, main(args), "exists and is not empty; pass --overwrite")
    assert (out / "analysis.json").read_bytes() == before
    assert main([*args, "--overwrite"]) == 0


def test_search_options_come_from_the_config_dataclasses(monkeypatch, capsys):
    """One source of defaults: a default changed in SearchConfig / EraserOptions shows in --help and
    reaches the run without another edit."""
    from clear_core.config import EraserOptions, SearchConfig
    from clear_core.options import config_from_args

    monkeypatch.setattr(SearchConfig.__dataclass_fields__["steps"], "default", 123)
    monkeypatch.setattr(EraserOptions.__dataclass_fields__["holdout"], "default", 0.4)
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Optimisation steps" in text and "(default: 123)" in text and "(default: 0.4)" in text
    args = build_parser().parse_args(["search", "--concept", "parachute", "--out", "x"])
    assert config_from_args(SearchConfig, args).steps == 123
    assert config_from_args(EraserOptions, args).holdout == 0.4


def test_search_names_its_concept_and_paraphrases(files, tmp_path, capsys):
    """--name, --implicit / --no-implicit, --calibration-pairs and --gammas (what an app run's report
    command needs) reach the eraser; contradictions are refused before any model loads."""
    concept, prompts = files
    out = tmp_path / "named"
    args = ["search", "--concept", str(concept), "--steps", "5", "--d-sae", "64", "--no-preserve"]
    args += ["--name", "parachute", "--implicit", str(prompts), "--calibration-pairs", "4", "--gammas", "0,1"]
    assert main([*args, "--out", str(out)]) == 0
    info = json.loads((out / "eraser.json").read_text())
    assert info["concept"] == "parachute" and info["calibration"]["n_pairs"] == 4
    assert [r["gamma"] for r in info["calibration"]["rows"]] == [0.0, 1.0]
    assert info["calibration"]["n_implicit"] == 1  # the even half of the 2 prompts calibrate
    capsys.readouterr()
    assert main([*args, "--no-implicit", "--out", str(tmp_path / "x")]) == 2
    assert "contradict" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # argparse refuses it: one line, status 2
        main([*args[:-2], "--gammas", "0", "--out", str(tmp_path / "y")])
    assert exit_.value.code == 2 and "at least one γ > 0" in capsys.readouterr().err
