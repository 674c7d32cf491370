"""The fan-out's task layers without Ray (clear_core/fanout): a pool of one in-process worker runs the
same tasks, so resuming, failures and equality with the commands' own paths are tested here cheaply;
tests/test_fanout_ray.py runs them on a local Ray instance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from clear_core.encoders import TextEncoder
from clear_core.erasure import Eraser
from clear_core.fanout import FanoutConfig, config_from_args
from clear_core.fanout import generate as fanout_generate
from clear_core.fanout.engine import Pool, Task
from clear_core.generation import RenderSettings, generate_grid, load_pipeline, plan_variants
from clear_core.generation.render import Latents
from clear_core.sae import SAE, SAEConfig

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ["a stunt performer with a parachute over a desert", "a cat on a beach at sunset"]


def random_eraser(pipe, layer: int = 3, seed: int = 0) -> Eraser:
    """A random SAE eraser for the pipeline's text encoder (what a search would record about it)."""
    encoder = TextEncoder.from_pipeline(pipe)
    sae = SAE(SAEConfig(encoder.d_model, 64), torch.Generator().manual_seed(seed))
    with torch.no_grad():
        sae.b_enc.fill_(0.5)
    m_spec = torch.zeros(64)
    m_spec[:16] = 1.0
    meta = {"model_revision": encoder.revision, **encoder.provenance()}
    return Eraser(
        "parachute", encoder.model_id, layer, encoder.layout.block_names[layer - 1], 1.0, encoder.d_model,
        sae=sae, m_spec=m_spec, gamma=2.0, meta=meta,
    )  # fmt: skip


@pytest.fixture(scope="module")
def testbed():
    torch.set_num_threads(1)  # the workers' thread count: CPU floats differ in the last bits with 2
    return load_pipeline("testbed")


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` but the fan-out's bookkeeping; JSON without its timings."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or rel.startswith(".clear-tasks"):
            continue
        data = path.read_bytes()
        if path.suffix == ".json":
            record = json.loads(data)
            for key in ("wall_s", "created"):
                record.pop(key, None)
            data = json.dumps(record, sort_keys=True).encode()
        out[rel] = data
    return out


def test_ray_flags_need_ray_and_are_checked():
    from clear_core.__main__ import build_parser

    parser = build_parser()
    plain = parser.parse_args(["generate", "--pipeline", "testbed", "--prompt", "x", "--out", "o"])
    assert config_from_args(plain) is None
    args = parser.parse_args(
        ["generate", "--pipeline", "testbed", "--prompt", "x", "--out", "o", "--ray-workers", "2"]
    )
    with pytest.raises(ValueError, match="--ray-workers needs --ray"):
        config_from_args(args)
    args = parser.parse_args(["evaluate-videos", "d", "--ray", "--ray-gpus-per-task", "0.5"])
    assert config_from_args(args) == FanoutConfig("local", None, 1.0, 0.5)
    args = parser.parse_args(["testbed", "rate", "--concept", "parachute", "--ray", "head:6379"])
    assert config_from_args(args).address == "head:6379"
    for kwargs, match in (
        ({"workers": 0}, "--ray-workers must be"),
        ({"cpus_per_task": 0.0}, "--ray-cpus-per-task must be"),
        ({"gpus_per_task": -1.0}, "--ray-gpus-per-task must be"),
        ({"address": " "}, "ADDRESS is empty"),
    ):
        with pytest.raises(ValueError, match=match):
            FanoutConfig(**kwargs)
    assert FanoutConfig(cpus_per_task=0.5).threads == 1 and FanoutConfig(cpus_per_task=3).threads == 3


def test_cli_refuses_a_ray_flag_without_ray_before_loading(tmp_path, capsys):
    from clear_core.__main__ import main

    argv = [
        "generate",
        "--pipeline",
        str(tmp_path / "missing"),
        "--prompt",
        "x",
        "--out",
        str(tmp_path / "o"),
    ]
    assert main([*argv, "--ray-gpus-per-task", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --ray-gpus-per-task needs --ray" and not (tmp_path / "o").exists()
    assert main([*argv, "--ray", "--device", "cuda"]) == 2
    assert "needs --ray-gpus-per-task" in capsys.readouterr().err


class Doubler:
    """A toy worker: doubles numbers, fails on 3."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def run(self, x: int) -> int:
        if x == 3:
            raise ValueError(f"cannot double {x}\nsecond line")
        return 2 * x + self.offset


def test_pool_names_failed_tasks_and_finishes_the_others(capsys):
    got = {}

    def on_result(task: Task, value: int) -> None:
        if task.key == "t4":
            raise OSError("disk full")
        got[task.key] = value

    def unreadable():
        raise FileNotFoundError("video.mp4")

    tasks = [Task(f"t{i}", i) for i in range(6)] + [Task("lazy", lambda: 7), Task("gone", unreadable)]
    with Pool(Doubler, (1,)) as pool:
        report = pool.map(tasks, on_result)
    assert got == {"t0": 1, "t1": 3, "t2": 5, "t5": 11, "lazy": 15}
    assert [(f.key, f.error) for f in report.failures] == [
        ("t3", "ValueError: cannot double 3"),
        ("t4", "OSError: disk full"),
        ("gone", "FileNotFoundError: video.mp4"),
    ]
    assert "Traceback" in report.failures[0].detail and report.done == 5 and report.total == 8
    assert report.exit_status("toy") == 1
    err = capsys.readouterr().err
    assert "toy: 5 tasks done, 3 failed, of 8" in err and "  failed t3: ValueError: cannot double 3" in err
    assert "error: 3 of 8 tasks failed (listed above)" in err


def test_detached_latents_leave_the_generator_as_a_replaying_call_finds_it():
    def prepare_latents(batch, generator=None):
        return torch.randn(batch, 3, generator=generator)

    def noise_after(generator):  # what a stochastic scheduler would draw next
        return torch.randn(4, generator=generator)

    grid = Latents(7)
    first_gen = grid.generator()
    drawn = grid.hook(prepare_latents)(2, first_gen)  # the grid's first variant draws
    replay_gen = grid.generator()
    replayed = grid.hook(prepare_latents)(2, replay_gen)  # a later variant replays
    alone = Latents(7, detached=True)  # the later variant rendered alone (one fan-out task)
    alone_gen = alone.generator()
    own = alone.hook(prepare_latents)(2, generator=alone_gen)
    assert torch.equal(drawn, replayed) and torch.equal(own, drawn)
    assert torch.equal(noise_after(alone_gen), noise_after(replay_gen))
    assert not torch.equal(noise_after(grid.generator()), noise_after(first_gen))  # it was consumed


def test_generate_fanout_resumes_without_redoing_finished_clips(testbed, tmp_path, monkeypatch):
    eraser = random_eraser(testbed)
    settings = RenderSettings(steps=2)
    reference = tmp_path / "sequential"
    variants = plan_variants([eraser], [1.0, 4.0], ["negprompt"])
    generate_grid(testbed, PROMPTS, [0, 5], variants, settings, reference)

    class Interrupt(fanout_generate.TaskBar):  # Ctrl-C after the 5th finished clip
        def __call__(self, done, total, key, error=None):
            super().__call__(done, total, key, error)
            if done == 5:
                raise KeyboardInterrupt

    job = fanout_generate.GenerateJob("testbed", {}, PROMPTS, [0, 5], plan_variants([eraser], [1.0, 4.0], ["negprompt"]), settings)  # fmt: skip
    out = tmp_path / "fanout"
    monkeypatch.setattr(fanout_generate, "TaskBar", Interrupt)
    with pytest.raises(KeyboardInterrupt):
        fanout_generate.generate_fanout(job, out, None)
    monkeypatch.undo()
    first = {p: p.stat() for p in out.glob("*/p*_s*.*")}
    assert len(first) == 2 * 5 and not (out / "manifest.json").exists()
    with pytest.raises(ValueError, match="holds another generate run .*seeds differ"):
        other = fanout_generate.GenerateJob("testbed", {}, PROMPTS, [0], job.variants, settings)
        fanout_generate.generate_fanout(other, out, None)

    report, manifest = fanout_generate.generate_fanout(job, out, None)
    assert (report.skipped, report.done, report.total) == (5, 11, 16) and manifest is not None
    for path, stat in first.items():  # finished clips were not written again
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns), path
    assert files_of(out) == files_of(reference)
    assert not (out / ".clear-tasks" / "rows").exists()
    again, _ = fanout_generate.generate_fanout(job, out, None)  # a finished run: nothing to do
    assert (again.skipped, again.done) == (16, 0)

    # evaluate-videos' tasks (one per video) give the report of the loop without them, and resume
    import clear_core.fanout.evaluate as fanout_evaluate
    from clear_core.video_eval.report import EvalConfig, evaluate_folder

    config = dict(detectors=["testbed"], frames_per_video=4, quality_frames=1)
    plain = evaluate_folder(out, EvalConfig(**config))
    measure = fanout_evaluate.FanoutMeasure(out / "video_eval.json", None)
    monkeypatch.setattr(fanout_evaluate, "TaskBar", Interrupt)
    with pytest.raises(KeyboardInterrupt):
        evaluate_folder(out, EvalConfig(**config), measure=measure)
    monkeypatch.undo()
    kept = {p: p.stat().st_mtime_ns for p in measure.folder.glob("0*.json")}
    assert len(kept) == 5
    assert evaluate_folder(out, EvalConfig(**config), measure=measure) == plain
    assert (measure.report.skipped, measure.report.done) == (5, 11)
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    measure.cleanup()
    assert not measure.folder.exists()


def test_generate_fanout_on_a_tiny_diffusers_pipeline_equals_the_grid(tmp_path):
    pipe = load_pipeline("tiny-wan")
    eraser = random_eraser(pipe, layer=1)
    settings = RenderSettings(steps=2, frames=9, height=16, width=16, guidance=6.0, max_sequence_length=16)
    generate_grid(
        pipe, PROMPTS, [0, 3], plan_variants([eraser], [0.0, 3.0]), settings, tmp_path / "grid", "blurry"
    )
    variants = plan_variants([eraser], [0.0, 3.0])
    job = fanout_generate.GenerateJob("tiny-wan", {}, PROMPTS, [0, 3], variants, settings, "blurry")
    report, manifest = fanout_generate.generate_fanout(job, tmp_path / "fanout", None, progress=False)
    assert report.done == 12 and len(manifest["videos"]) == 12
    assert files_of(tmp_path / "fanout") == files_of(tmp_path / "grid")


def test_testbed_rate_fanout_equals_generative_rate(testbed):
    import clear_core.testbed.rate as rate
    from clear_core.fanout.rate import rate_fanout

    eraser = random_eraser(testbed)
    kwargs = dict(eraser=eraser, gamma=3.0, seeds=2, n_prompts=3, steps=2, seed=1)
    expected = rate.generative_rate("parachute", pipe=testbed, **kwargs)
    report, got = rate_fanout("parachute", **kwargs, config=None, progress=False)
    assert report.total == 4 and report.ok
    expected.pop("seconds"), got.pop("seconds")
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert got["n_clips"] == 6 and got["n_neutral_prompts"] == 3


def test_sweep_runs_search_per_concept_and_resumes(tmp_path, capsys):
    from clear_core.__main__ import main

    options = ["--", "--steps", "3", "--d-sae", "64", "--gamma", "1"]
    out = tmp_path / "sweep"
    assert main(["sweep", "--concepts", "parachute,golf_ball", "--out", str(out), *options]) == 0
    summary = json.loads((out / "sweep.json").read_text())
    assert list(summary["concepts"]) == ["parachute", "golf_ball"]
    assert summary["concepts"]["golf_ball"]["default_gamma"] == 1
    assert main(["search", "--concept", "golf_ball", "--out", str(tmp_path / "alone"), *options[1:]]) == 0
    alone = (tmp_path / "alone" / "eraser.safetensors").read_bytes()
    assert (out / "golf_ball" / "eraser.safetensors").read_bytes() == alone  # the same search
    before = {p: p.stat().st_ino for p in out.glob("*/eraser.*")}
    capsys.readouterr()
    assert main(["sweep", "--concepts", "parachute,golf_ball", "--out", str(out), *options]) == 0
    assert "0 tasks done, 2 already there" in capsys.readouterr().err
    assert {p: p.stat().st_ino for p in out.glob("*/eraser.*")} == before
    assert main(["sweep", "--concepts", "parachute", "--out", str(out), *options]) == 2
    assert "holds another sweep" in capsys.readouterr().err
    assert main(["sweep", "--concepts", "parachute", "--out", str(tmp_path / "x"), "--", "--out", "y"]) == 2
    assert "--out is set by sweep itself" in capsys.readouterr().err
    assert main(["sweep", "--concepts", "parachute,nope", "--out", str(tmp_path / "x")]) == 2
    assert "'nope' is neither a concept file" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_without_ray_flag_ray_is_never_imported(tmp_path):
    """Every command that can fan out, run without --ray in a fresh interpreter: Ray stays unimported."""
    gen, er = tmp_path / "gen", tmp_path / "er"
    script = f"""
import sys
from clear_core.__main__ import main
assert main(["search", "--concept", "parachute", "--steps", "2", "--d-sae", "32", "--gamma", "1", "--out", "{er}"]) == 0
assert main(["generate", "--pipeline", "testbed", "--prompt", "a cat", "--steps", "1", "--eraser", "{er}", "--out", "{gen}"]) == 0
assert main(["evaluate-videos", "{gen}", "--detector", "testbed", "--quality-frames", "0", "--no-motion", "--quiet"]) == 0
assert main(["testbed", "rate", "--concept", "parachute", "--n-prompts", "1", "--seeds", "1", "--steps", "1"]) == 0
assert main(["sweep", "--concepts", "golf_ball", "--out", "{tmp_path / "sweep"}", "--", "--steps", "2", "--d-sae", "32", "--gamma", "1"]) == 0
assert "ray" not in sys.modules, sorted(m for m in sys.modules if m.startswith("ray"))
print("no ray")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip().endswith("no ray"), done.stderr[-2000:]
    assert json.loads((gen / "manifest.json").read_text())["videos"]


def test_generate_job_tasks_follow_the_grid_order(testbed):
    variants = plan_variants([random_eraser(testbed)], [1.0, 2.0])
    job = fanout_generate.GenerateJob("testbed", {}, PROMPTS, [3, 1], variants, RenderSettings(steps=1))
    keys = [t.key for t in job.tasks()]
    assert keys[:4] == ["original/p000_s3", "erased_g1/p000_s3", "erased_g2/p000_s3", "original/p000_s1"]
    assert len(keys) == len(set(keys)) == 12
    assert job.plan()["variants"][2]["gamma"] == 2.0
