"""Bad input to every command, as a careless or hostile user would give it: one row per case.

Each row runs the command line in-process (``clear_core.__main__.main``) and asserts exit status 2 and
the first (only) line of stderr. Rows marked cheap must fail before any model or pipeline loads: the
loaders are replaced by ones that fail the test. Rows whose check needs the model (an eraser made for
another encoder) are in their own test.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from clear_core.__main__ import main
from clear_core.erasure import Eraser
from clear_core.sae import SAE, SAEConfig


def run_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    """(exit status, stderr lines) of the command line, whether it returned or argparse exited."""
    capsys.readouterr()
    try:
        rc = main(argv)
    except SystemExit as exit_:
        rc = exit_.code
    return rc, capsys.readouterr().err.strip().splitlines()


@pytest.fixture
def no_models(monkeypatch):
    """Any model or pipeline load fails the test: the row must be refused before."""

    def loaded(*_args, **_kwargs):
        raise AssertionError("a model was loaded before the bad input was refused")

    import clear_core.encoders
    import clear_core.generation.loading
    import clear_core.testbed.pipeline
    import clear_core.testbed.rate

    monkeypatch.setattr(clear_core.encoders, "load_encoder", loaded)
    monkeypatch.setattr(clear_core.generation.loading, "load_pipeline", loaded)
    monkeypatch.setattr(clear_core.testbed.pipeline, "load_testbed_pipeline", loaded)
    monkeypatch.setattr(clear_core.testbed.rate, "load_testbed_pipeline", loaded)


def hand_eraser(d_model: int = 384, d_sae: int = 64, model_id: str = "minilm") -> Eraser:
    """A small SAE eraser built without any model (its numbers are what the rows tamper with)."""
    sae = SAE(SAEConfig(d_model, d_sae, kind="topk", k=8), torch.Generator().manual_seed(0))
    m_spec = torch.zeros(d_sae)
    m_spec[:8] = 1.0
    return Eraser(
        "parachute", model_id, 3, "encoder.layer.2", 1.0, d_model, sae=sae, m_spec=m_spec, gamma=2.0
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    (root / "prompts.txt").write_text("a cat on a sofa\na dog in a park\n")
    (root / "nul.txt").write_text("a cat on a sofa\na dog\x00 in a park\n")
    (root / "esc.txt").write_text("a cat \x1b[31mred\n")
    lines = [
        json.dumps({"positive": f"a cat number {i} with a hat", "negative": f"a cat number {i}"})
        for i in range(20_001)
    ]
    (root / "huge.jsonl").write_text("\n".join(lines) + "\n")
    (root / "nul.jsonl").write_text(
        json.dumps({"positive": "a cat\u0000 with a hat", "negative": "a cat"}) + "\n"
    )
    hand_eraser().save(root / "eraser")
    return root


def tampered(files: Path, name: str, patch=None, tensors=None) -> Path:
    """A copy of the good eraser with eraser.json patched (a dict, or text) or the tensors file replaced."""
    folder = files / f"eraser-{name}"
    if folder.exists():
        return folder
    shutil.copytree(files / "eraser", folder)
    if patch is not None:
        info = json.loads((folder / "eraser.json").read_text())
        text = patch(info) if callable(patch) else json.dumps({**info, **patch})
        (folder / "eraser.json").write_text(text if isinstance(text, str) else json.dumps(text))
    if tensors is not None:
        data = (folder / "eraser.safetensors").read_bytes()
        (folder / "eraser.safetensors").write_bytes(tensors(data))
    return folder


def _sae(**changes):
    return lambda info: {**info, "sae": {**info["sae"], **changes}}


ERASERS = {
    "d_sae 1e9": (_sae(d_sae=1e9), None, "sae.d_sae must be ≤ 262144, got 1000000000", None),
    "d_sae string": (_sae(d_sae="64"), None, "sae.d_sae must be an integer, got '64'", None),
    "d_sae 200k over the memory budget": (
        _sae(d_sae=200_000),
        None,
        "an SAE of 200,000 features × d_model 384 would need ~1.4 GiB of memory",
        "1G",
    ),
    "d_model 1e6": (
        lambda i: {**i, "d_model": 10**6, "sae": {**i["sae"], "d_model": 10**6}},
        None,
        "d_model must be ≤ 16384",
        None,
    ),
    "sae d_model disagrees": (_sae(d_model=512), None, "sae.d_model 512 does not match d_model 384", None),
    "k 0": (_sae(k=0), None, "sae.k must be ≥ 1, got 0", None),
    "k above d_sae": (_sae(k=65), None, "sae.k must be ≤ 64, got 65", None),
    "l1 NaN": (
        _sae(l1_coefficient=float("nan")),
        None,
        "sae.l1_coefficient must be a finite number, got nan",
        None,
    ),
    "gate_tau NaN": ({"gate_tau": float("nan")}, None, "gate_tau must be a finite number, got nan", None),
    "gate_tau negative": ({"gate_tau": -1.0}, None, "gate_tau must be > 0, got -1", None),
    "gamma 1e9": ({"default_gamma": 1e9}, None, "default_gamma must be ≤ 1000, got 1e+09", None),
    "gamma Infinity": (
        {"default_gamma": float("inf")},
        None,
        "default_gamma must be a finite number, got inf",
        None,
    ),
    "gamma as text": ({"default_gamma": "2"}, None, "default_gamma must be a number, got '2'", None),
    "scale 0": ({"scale": 0}, None, "scale must be > 0, got 0", None),
    "layer 0": ({"layer": 0, "block_index": -1}, None, "layer must be ≥ 1, got 0", None),
    "layer 1e12": ({"layer": 10**12}, None, "layer must be ≤ 10000", None),
    "concept with NUL": (
        {"concept": "para\u0000chute"},
        None,
        "concept: the name contains the control character U+0000",
        None,
    ),
    "concept as a list": ({"concept": ["x"]}, None, "concept must be text, got ['x']", None),
    "tensors cut short": (None, lambda b: b[:1024], "bytes but its header describes", None),
    "tensor header of 1 PB": (
        None,
        lambda b: (10**15).to_bytes(8, "little") + b[8:],
        "not a safetensors file (header of",
        None,
    ),
    "tensors not safetensors": (None, lambda b: b"\x00" * 4, "not a safetensors file (4 bytes)", None),
    "W_enc shape": (_sae(d_sae=128), None, "tensor 'W_enc' has shape (384, 64), expected (384, 128)", None),
}


@pytest.mark.parametrize("case", list(ERASERS), ids=list(ERASERS))
def test_a_tampered_eraser_is_one_line_before_any_model(case, files, capsys, monkeypatch, no_models):
    patch, tensors, expected, memory = ERASERS[case]
    if memory:
        monkeypatch.setenv("CLEAR_MEMORY_LIMIT", memory)
    folder = tampered(files, case.replace(" ", "_"), patch, tensors)
    argv = [
        "embed",
        "--prompts",
        str(files / "prompts.txt"),
        "--out",
        str(files / "x.npy"),
        "--eraser",
        str(folder),
    ]
    rc, err = run_cli(argv, capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"error: {folder}"), err
    assert expected in err[0], err[0]
    assert not (files / "x.npy").exists()


def test_the_untampered_eraser_loads(files):
    assert Eraser.load(files / "eraser").sae.config.d_sae == 64


# ------------------------------------------------------------------------ command-line numbers, text
TESTBED = ["testbed", "rate", "--concept", "parachute"]
GENERATE = ["generate", "--pipeline", "tiny-wan", "--prompt", "a cat", "--out", "{out}"]
CASES = [
    # testbed rate: γ, guidance, counts (negative γ would *add* the concept)
    (
        "rate gamma -5",
        [*TESTBED, "--gamma", "-5"],
        "testbed rate: argument --gamma: must be ≥ 0, got -5",
        None,
    ),
    (
        "rate gamma nan",
        [*TESTBED, "--gamma", "nan"],
        "argument --gamma: must be a finite number, got nan",
        None,
    ),
    ("rate gamma 1e9", [*TESTBED, "--gamma", "1e9"], "argument --gamma: must be ≤ 1000, got 1e+09", None),
    (
        "rate guidance nan",
        [*TESTBED, "--guidance", "nan"],
        "argument --guidance: must be a finite number, got nan",
        None,
    ),
    (
        "rate guidance inf",
        [*TESTBED, "--guidance", "inf"],
        "argument --guidance: must be a finite number, got inf",
        None,
    ),
    ("rate guidance -1", [*TESTBED, "--guidance", "-1"], "argument --guidance: must be ≥ 0, got -1", None),
    ("rate seeds 0", [*TESTBED, "--seeds", "0"], "argument --seeds: must be in 1..1,000, got 0", None),
    (
        "rate seeds 1e5",
        [*TESTBED, "--seeds", "100000"],
        "argument --seeds: must be in 1..1,000, got 100,000",
        None,
    ),
    (
        "rate steps 1e5",
        [*TESTBED, "--steps", "100000"],
        "argument --steps: must be in 1..1,000, got 100,000",
        None,
    ),
    (
        "rate seed -1",
        [*TESTBED, "--seed", "-1"],
        "argument --seed: must be in 0..9,223,372,036,854,775,807, got -1",
        None,
    ),
    (
        "rate n-prompts 0",
        [*TESTBED, "--n-prompts", "0"],
        "argument --n-prompts: must be in 1..20,000, got 0",
        None,
    ),
    ("rate gamma without eraser", [*TESTBED, "--gamma", "2"], "--gamma needs --eraser", None),
    (
        "rate NUL prompt",
        [*TESTBED, "--prompts", "{files}/nul.txt"],
        "line 2: the prompt contains the control character U+0000 at position 6",
        None,
    ),
    (
        "rate over the memory budget",
        [*TESTBED, "--seeds", "1000", "--n-prompts", "20000"],
        "8 frames of 64×64 would need ~",
        "1G",
    ),
    # generate: sizes before the pipeline loads, the memory estimate stated
    ("generate frames 1e5", [*GENERATE, "--frames", "100000"], "frames must be ≤ 1,024, got 100,000", None),
    ("generate frames 0", [*GENERATE, "--frames", "0"], "frames must be an integer ≥ 1, got 0", None),
    ("generate height 1e5", [*GENERATE, "--height", "100000"], "height must be ≤ 4,096, got 100,000", None),
    ("generate steps 1e5", [*GENERATE, "--steps", "100000"], "steps must be ≤ 1,000, got 100,000", None),
    (
        "generate text length 1e6",
        [*GENERATE, "--max-sequence-length", "1000000"],
        "max_sequence_length must be ≤ 2,048",
        None,
    ),
    (
        "generate over the memory budget",
        [*GENERATE, "--frames", "1000", "--height", "2048", "--width", "2048"],
        "1000 frames of 2048×2048 would need ~46.9 GiB of memory (frames × height × width × 3 colours × 4 bytes"
        " × 1 clip held at once), over the limit of 512.0 MiB (half of the 1.0 GiB available)",
        "1G",
    ),
    (
        "generate guidance nan",
        [*GENERATE, "--guidance", "nan"],
        "--guidance must be a finite number, got nan",
        None,
    ),
    ("generate gamma -5", [*GENERATE, "--gamma", "-5"], "--gamma must be ≥ 0, got -5", None),
    ("generate fps 1e5", [*GENERATE, "--fps", "100000"], "--fps must be in 1..240, got 100000", None),
    (
        "generate seed -1",
        [*GENERATE, "--seed", "-1"],
        "--seed values must be distinct integers in 0..2**63 − 1, got [-1]",
        None,
    ),
    (
        "generate seed 2**64",
        [*GENERATE, "--seed", str(2**64)],
        "--seed values must be distinct integers",
        None,
    ),
    (
        "generate NUL prompt",
        ["generate", "--pipeline", "tiny-wan", "--prompt", "a\x00cat", "--out", "{out}"],
        "prompt 1: the prompt contains the control character U+0000 at position 2",
        None,
    ),
    (
        "generate ESC prompt file",
        ["generate", "--pipeline", "tiny-wan", "--prompts", "{files}/esc.txt", "--out", "{out}"],
        "line 1: the prompt contains the control character U+001B",
        None,
    ),
    (
        "generate long prompt",
        ["generate", "--pipeline", "tiny-wan", "--prompt", "x" * 2001, "--out", "{out}"],
        "the prompt is 2,001 characters long; the limit is 2,000",
        None,
    ),
    # embed / search / analyze / evaluate-videos
    (
        "embed NUL prompt",
        ["embed", "--prompts", "{files}/nul.txt", "--out", "{out}.npy"],
        "nul.txt, line 2: the prompt contains the control character U+0000",
        None,
    ),
    (
        "embed batch 0",
        ["embed", "--prompts", "{files}/prompts.txt", "--out", "{out}.npy", "--batch-size", "0"],
        "argument --batch-size: must be in 1..4,096, got 0",
        None,
    ),
    (
        "search 20,001 pairs",
        ["search", "--concept", "{files}/huge.jsonl", "--out", "{out}"],
        "huge.jsonl: 20,001 pairs; the limit is 20,000 per concept",
        None,
    ),
    (
        "search NUL pair",
        ["search", "--concept", "{files}/nul.jsonl", "--out", "{out}"],
        "line 1: the positive prompt contains the control character U+0000",
        None,
    ),
    (
        "search d_sae 1e9",
        ["search", "--concept", "parachute", "--out", "{out}", "--d-sae", "1000000000"],
        "argument --d-sae: must be in 1..262,144, got 1,000,000,000",
        None,
    ),
    (
        "search k 0",
        ["search", "--concept", "parachute", "--out", "{out}", "--k", "0"],
        "argument --k: must be in 1..4,096, got 0",
        None,
    ),
    (
        "search k above d_sae",
        ["search", "--concept", "parachute", "--out", "{out}", "--d-sae", "64", "--k", "65"],
        "--k 65 is more than --d-sae 64 features",
        None,
    ),
    (
        "search lr nan",
        ["search", "--concept", "parachute", "--out", "{out}", "--lr-alpha", "nan"],
        "argument --lr-alpha: must be a finite number, got nan",
        None,
    ),
    (
        "search steps 1e9",
        ["search", "--concept", "parachute", "--out", "{out}", "--steps", "1000000000"],
        "argument --steps: must be in 1..100,000",
        None,
    ),
    (
        "search seed -1",
        ["search", "--concept", "parachute", "--out", "{out}", "--seed", "-1"],
        "argument --seed: must be in 0..",
        None,
    ),
    (
        "analyze seed 2**64",
        ["analyze", "--concept", "parachute", "--out", "{out}", "--seed", str(2**64)],
        "argument --seed: must be in 0..",
        None,
    ),
    (
        "evaluate-videos frames 1e5",
        ["evaluate-videos", "{files}", "--frames", "100000"],
        "frames per video must be ≤ 1024, got 100000",
        None,
    ),
]


@pytest.mark.parametrize(("argv", "expected", "memory"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_rc_2_before_any_model(
    argv, expected, memory, files, tmp_path, capsys, monkeypatch, no_models
):
    if memory:
        monkeypatch.setenv("CLEAR_MEMORY_LIMIT", memory)
    argv = [a.replace("{files}", str(files)).replace("{out}", str(tmp_path / "out")) for a in argv]
    rc, err = run_cli(argv, capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert expected in err[0], err[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.npy").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["embed", "--prompts", "{files}/prompts.txt", "--out", "{out}"],
        ["generate", "--pipeline", "tiny-wan", "--prompt", "a cat", "--out", "{out}"],
        ["search", "--concept", "parachute", "--out", "{out}"],
        ["analyze", "--concept", "parachute", "--out", "{out}"],
    ],
    ids=["embed", "generate", "search", "analyze"],
)
def test_a_second_run_into_the_same_output_is_refused(argv, files, tmp_path, capsys, no_models):
    from clear_core.io import output_lock

    out = tmp_path / ("out.npy" if argv[0] == "embed" else "out")
    with output_lock(out):  # a first run is writing there
        rc, err = run_cli([a.replace("{files}", str(files)).replace("{out}", str(out)) for a in argv], capsys)
    assert rc == 2 and err == [
        f"error: --out {out}: another run is writing there (pid {os.getpid()}); wait for it to finish or "
        "choose another --out"
    ]


# --------------------------------------------------------------------------- evaluate-videos manifest
@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    from clear_core.generation.media import write_mp4

    root = tmp_path_factory.mktemp("videos")
    frames = np.random.default_rng(0).random((4, 16, 16, 3)).astype(np.float32)
    for variant in ("original", "erased"):
        write_mp4(root / "gen" / variant / "p000_s0.mp4", frames)
    write_mp4(root / "outside.mp4", frames)
    return root


def _manifest(*videos):
    return {"videos": list(videos)}


ORIGINAL = {
    "variant": "original",
    "prompt_index": 0,
    "prompt": "a cat",
    "seed": 0,
    "gamma": None,
    "path": "original/p000_s0.mp4",
}
ERASED = {**ORIGINAL, "variant": "erased", "gamma": 2.0, "path": "erased/p000_s0.mp4"}
MANIFESTS = {
    "path ../": (
        _manifest(ORIGINAL, {**ERASED, "path": "../outside.mp4"}),
        "videos[1].path '../outside.mp4': must stay inside the folder (no '..')",
    ),
    "path absolute": (
        _manifest(ORIGINAL, {**ERASED, "path": "{root}/outside.mp4"}),
        "must be relative to the folder, not absolute",
    ),
    "path through a symlink": (
        _manifest(ORIGINAL, {**ERASED, "path": "link.mp4"}),
        "videos[1].path 'link.mp4': leads outside the folder (through a symbolic link)",
    ),
    "path missing": (
        _manifest(ORIGINAL, {**ERASED, "path": "erased/none.mp4"}),
        "videos[1].path 'erased/none.mp4': video file not found",
    ),
    "same path twice": (
        _manifest(ORIGINAL, {**ERASED, "path": "original/p000_s0.mp4"}),
        "videos[1] lists 'original/p000_s0.mp4' again (as videos[0])",
    ),
    "same video key twice": (
        _manifest(ORIGINAL, {**ORIGINAL, "path": "erased/p000_s0.mp4"}),
        "videos[1] repeats variant 'original', prompt 0, seed 0 (videos[0]); each would be counted twice",
    ),
    "path a number": (
        _manifest(ORIGINAL, {**ERASED, "path": 5}),
        "videos[1].path: 5 is not of type 'string'",
    ),
    "seed a list": (
        _manifest(ORIGINAL, {**ERASED, "seed": [1, 2]}),
        "videos[1].seed: [1, 2] is not of type 'integer'",
    ),
    "seed negative": (
        _manifest(ORIGINAL, {**ERASED, "seed": -1}),
        "videos[1].seed: -1 is less than the minimum of 0",
    ),
    "variant a list": (
        _manifest(ORIGINAL, {**ERASED, "variant": ["erased"]}),
        "videos[1].variant: ['erased'] is not of type 'string'",
    ),
    "prompt_index true": (
        _manifest(ORIGINAL, {**ERASED, "prompt_index": True}),
        "videos[1].prompt_index: True is not of type 'integer'",
    ),
    "gamma 'nan' text": (
        _manifest(ORIGINAL, {**ERASED, "gamma": "nan"}),
        "videos[1].gamma: 'nan' is not of type 'number', 'null'",
    ),
    "gamma NaN literal": (
        '{"videos": [{"variant": "erased", "prompt_index": 0, "path": "erased/p000_s0.mp4", "gamma": NaN}]}',
        "manifest.json: NaN is not a number JSON allows",
    ),
    "gamma negative": (
        _manifest(ORIGINAL, {**ERASED, "gamma": -1}),
        "videos[1].gamma: -1 is less than the minimum of 0",
    ),
    "no path": (
        _manifest(ORIGINAL, {k: v for k, v in ERASED.items() if k != "path"}),
        "videos[1]: 'path' is a required property",
    ),
    "videos empty": (_manifest(), "videos: [] should be non-empty"),
    "videos missing": ({"pipeline": {}}, "the manifest: 'videos' is a required property"),
    "not an object": ([ORIGINAL], "is not of type 'object'"),
    "not JSON": ("{videos", "manifest.json: not valid JSON"),
}


@pytest.mark.parametrize("case", list(MANIFESTS), ids=list(MANIFESTS))
def test_a_bad_manifest_is_one_line_and_reads_nothing_outside(case, videos, tmp_path, capsys, monkeypatch):
    import clear_core.video_eval.report as report

    folder = tmp_path / "gen"
    shutil.copytree(videos / "gen", folder)
    (folder / "link.mp4").symlink_to(videos / "outside.mp4")
    manifest, expected = MANIFESTS[case]
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (folder / "manifest.json").write_text(text.replace("{root}", str(videos)))
    opened = []
    monkeypatch.setattr(report, "probe_video", lambda p: opened.append(p))
    rc, err = run_cli(["evaluate-videos", str(folder), "--no-motion", "--quality-frames", "0"], capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"error: {folder}/manifest.json: "), err
    assert expected in err[0], err[0]
    assert opened == [] and not (folder / "video_eval.json").exists()


def test_a_good_manifest_gives_a_report_with_numbers_only(videos, tmp_path, capsys):
    folder = tmp_path / "gen"
    shutil.copytree(videos / "gen", folder)
    (folder / "manifest.json").write_text(json.dumps(_manifest(ORIGINAL, ERASED)))
    rc, err = run_cli(["evaluate-videos", str(folder), "--quality-frames", "0", "--quiet"], capsys)
    assert rc == 0, err

    def refuse(name):
        raise AssertionError(f"{name} in the report")

    report = json.loads((folder / "video_eval.json").read_text(), parse_constant=refuse)
    gammas = [v["gamma"] for v in report["videos"]]
    assert gammas == [None, 2.0]
    numbers = report["variants"]["erased"]["motion"]["smoothness"]
    assert all(isinstance(numbers[k], float) and math.isfinite(numbers[k]) for k in ("mean", "low", "high"))


# ----------------------------------------------------- erasers from another encoder or profile (need the model)
@pytest.fixture(scope="module")
def foreign_erasers(tmp_path_factory):
    from test_generation import make_eraser

    from clear_core.generation.tiny import tiny_pipeline
    from clear_core.testbed.pipeline import load_testbed_pipeline

    root = tmp_path_factory.mktemp("foreign")
    make_eraser(tiny_pipeline("tiny-wan")).save(root / "other-encoder")
    profile = make_eraser(load_testbed_pipeline(), layer=5)
    profile.meta["encoding"] = {"name": "cogvideox", "padding": "max_length", "max_length": 226,
                                "attention_mask": False, "positions": "all"}  # fmt: skip
    profile.save(root / "other-profile")
    return root


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("other-encoder", "was built for encoder"),
        ("other-profile", "was searched on 'cogvideox' states"),
    ],
)
@pytest.mark.parametrize("command", ["testbed", "generate"])
def test_testbed_rate_refuses_what_generate_refuses(
    command, folder, expected, foreign_erasers, tmp_path, capsys
):
    if command == "testbed":
        argv = [*TESTBED, "--eraser", str(foreign_erasers / folder), "--n-prompts", "2", "--seeds", "1"]
    else:
        argv = ["generate", "--pipeline", "testbed", "--prompt", "a cat", "--eraser", str(foreign_erasers / folder),
                "--out", str(tmp_path / "out"), "--steps", "1"]  # fmt: skip
    rc, err = run_cli(argv, capsys)
    assert (
        rc == 2
        and len(err) == 1
        and err[0].startswith(
            "error: the eraser for 'parachute'" if "profile" in folder else "error: eraser for 'parachute'"
        )
    ), err
    assert expected in err[0], err[0]


# ------------------------------------------------------------------------ a 1 KB file-size limit
def _limited(argv: list[str], env: dict):
    import resource
    import signal
    import subprocess
    import sys

    def limit() -> None:  # SIGXFSZ ignored: a write past the limit is cut short instead of killing
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    return subprocess.run(
        [sys.executable, "-m", "clear_core", *argv],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env, "OMP_NUM_THREADS": "1"},
    )


WRITERS = {
    "embed": (["embed", "--prompts", "{files}/prompts.txt", "--out", "{out}.npy"], "the write was cut short"),
    "search": (
        ["search", "--concept", "parachute", "--out", "{out}", "--steps", "2", "--d-sae", "64"],
        "File too large",
    ),
    "analyze": (
        ["analyze", "--concept", "parachute", "--out", "{out}", "--methods", "pca"],
        "File too large",
    ),
    "generate": (
        [
            "generate",
            "--pipeline",
            "tiny-wan",
            "--prompt",
            "a cat",
            "--out",
            "{out}",
            "--steps",
            "1",
            "--frames",
            "9",
            "--height",
            "16",
            "--width",
            "16",
            "--max-sequence-length",
            "16",
        ],
        "File too large: {out}/original/p000_s0.json",
    ),  # fmt: skip
    "evaluate-videos": (
        ["evaluate-videos", "{videos}", "--out", "{out}.json", "--no-motion", "--quality-frames", "0"],
        "File too large: {out}.json",
    ),
}


@pytest.mark.parametrize("command", list(WRITERS))
def test_a_1kb_file_size_limit_is_rc_2_with_nothing_under_the_final_name(command, files, videos, tmp_path):
    folder = tmp_path / "gen"
    shutil.copytree(videos / "gen", folder)
    (folder / "manifest.json").write_text(json.dumps(_manifest(ORIGINAL, ERASED)))
    out = tmp_path / "out"
    argv, expected = WRITERS[command]
    fill = {"{files}": str(files), "{out}": str(out), "{videos}": str(folder)}
    for key, value in fill.items():
        argv = [a.replace(key, value) for a in argv]
        expected = expected.replace(key, value)
    proc = _limited(argv, {"CLEAR_CACHE_DIR": str(tmp_path / "cache")})
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert expected in errors[0], errors[0]
    assert not (tmp_path / "out.npy").exists() and not (tmp_path / "out.json").exists()
    assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))
    assert [p for p in tmp_path.rglob("*clear-tmp*")] == [] and [
        p for p in tmp_path.rglob("*.clear-lock")
    ] == []


def test_a_rerun_removes_the_temporaries_a_killed_run_left(tmp_path, capsys):
    import subprocess

    from clear_core.io import TEMP_MARK

    dead = subprocess.Popen(["true"])
    dead.wait()
    out = tmp_path / "out"
    (out / "original").mkdir(parents=True)
    half = out / "original" / f".p000_s0.mp4{TEMP_MARK}{dead.pid}-x1.mp4"
    half.write_bytes(b"half a video")
    staging = tmp_path / f".out{TEMP_MARK}{dead.pid}-x2"
    (staging / "original").mkdir(parents=True)
    (staging / "original" / "p000_s0.mp4").write_bytes(b"a video no manifest names")
    argv = ["generate", "--pipeline", "tiny-wan", "--prompt", "a cat", "--out", str(out), "--steps", "1",
            "--frames", "9", "--height", "16", "--width", "16", "--max-sequence-length", "16"]  # fmt: skip
    rc, err = run_cli(argv, capsys)  # only the dead run's temporaries were there: the folder counts as empty
    assert rc == 0, err
    assert not half.exists() and not staging.exists()
    assert sorted(p.name for p in (out / "original").iterdir()) == ["p000_s0.json", "p000_s0.mp4"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
