"""``--ray`` on a local Ray instance with 2 CPUs, started inside this module (no cluster needed): the
same bytes as without Ray, an interrupted run resumed without redoing finished clips, failures named.

The runs without Ray use one torch thread, as each Ray worker does (``--ray-cpus-per-task 1``): CPU
float arithmetic differs in the last bits between 1 and 2 threads.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_fanout import Doubler, files_of, random_eraser

from clear_core.__main__ import main
from clear_core.fanout import FanoutConfig
from clear_core.fanout import generate as fanout_generate
from clear_core.fanout.engine import Pool, Task
from clear_core.generation import load_pipeline

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

PROMPTS = ["a stunt performer with a parachute over a desert", "a cat on a beach at sunset"]


@pytest.fixture(scope="module")
def local_ray():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def generated(local_ray, tmp_path_factory):
    """The testbed grid rendered without Ray: (argv without --out, its folder)."""
    root = tmp_path_factory.mktemp("testbed")
    random_eraser(load_pipeline("testbed")).save(root / "eraser")
    (root / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
    argv = ["generate", "--pipeline", "testbed", "--prompts", str(root / "prompts.txt"), "--steps", "2",
            "--seed", "0", "--seed", "5", "--eraser", str(root / "eraser"), "--gamma", "1", "--gamma", "4",
            "--baselines", "negprompt"]  # fmt: skip
    assert main([*argv, "--out", str(root / "sequential")]) == 0
    return argv, root / "sequential"


def test_generate_on_ray_interrupted_then_resumed_writes_the_same_bytes(
    generated, tmp_path, monkeypatch, capsys
):
    argv, sequential = generated
    out = tmp_path / "ray"

    class Interrupt(fanout_generate.TaskBar):  # Ctrl-C once 6 of the 16 clips are in
        def __call__(self, done, total, key, error=None):
            super().__call__(done, total, key, error)
            if done == 6:
                raise KeyboardInterrupt

    monkeypatch.setattr(fanout_generate, "TaskBar", Interrupt)
    assert main([*argv, "--out", str(out), "--ray"]) == 130
    monkeypatch.undo()
    first = {p: p.stat() for p in out.glob("*/p*_s*.*")}
    assert len(first) == 2 * 6 and not (out / "manifest.json").exists()
    capsys.readouterr()
    assert main([*argv, "--out", str(out), "--ray"]) == 0
    err = capsys.readouterr().err
    assert "10 tasks done, 6 already there, 0 failed, of 16 on 2 workers" in err
    for path, stat in first.items():  # finished clips were not rendered or written again
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns), path
    assert files_of(out) == files_of(sequential)  # every mp4, sheet and JSON (but timings) the same
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["videos"] == json.loads((sequential / "manifest.json").read_text())["videos"]


@pytest.mark.slow
def test_generate_on_ray_tiny_wan_same_bytes(local_ray, tmp_path):
    from clear_core.generation.tiny import tiny_pipeline

    random_eraser(tiny_pipeline("tiny-wan"), layer=1).save(tmp_path / "eraser")
    argv = ["generate", "--pipeline", "tiny-wan", "--prompt", PROMPTS[0], "--seed", "0", "--seed", "3",
            "--eraser", str(tmp_path / "eraser"), "--gamma", "0", "--gamma", "3", "--steps", "2", "--frames", "9",
            "--height", "16", "--width", "16", "--max-sequence-length", "16", "--negative-prompt", "blurry"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "sequential")]) == 0
    assert main([*argv, "--out", str(tmp_path / "ray"), "--ray"]) == 0
    ray_files, sequential_files = files_of(tmp_path / "ray"), files_of(tmp_path / "sequential")
    assert ray_files == sequential_files and sum(k.endswith(".mp4") for k in ray_files) == 6


@pytest.mark.slow
def test_evaluate_videos_on_ray_writes_the_same_report(generated, capsys):
    _, folder = generated
    argv = [str(folder), "--detector", "testbed", "--quality-frames", "1", "--frames", "4", "--quiet"]
    assert main(["evaluate-videos", *argv, "--out", str(folder / "plain.json")]) == 0
    capsys.readouterr()
    assert main(["evaluate-videos", *argv, "--out", str(folder / "ray.json"), "--ray"]) == 0
    assert "16 tasks done, 0 failed, of 16 on 2 workers" in capsys.readouterr().err
    assert (folder / "ray.json").read_bytes() == (folder / "plain.json").read_bytes()
    assert not (folder / ".ray.json.tasks").exists()


class Crasher(Doubler):
    """Doubles numbers; its process dies on 5 (a worker lost with its node)."""

    def run(self, x: int) -> int:
        if x == 5:
            os._exit(1)
        return super().run(x)


def test_ray_pool_spreads_tasks_over_workers_and_names_failures(local_ray):
    for module in {Doubler.__module__, __name__}:  # workers cannot import tests/: ship the classes
        ray.cloudpickle.register_pickle_by_value(sys.modules[module])
    got = {}
    with Pool(Doubler, (1,), FanoutConfig(), max_workers=8) as pool:
        assert pool.size == 2  # the 2 CPUs of the instance, one per worker
        report = pool.map([Task(f"t{i}", i) for i in range(8)], lambda t, v: got.update({t.key: v}))
    assert got == {f"t{i}": 2 * i + 1 for i in range(8) if i != 3}
    assert [(f.key, f.error) for f in report.failures] == [("t3", "ValueError: cannot double 3")]
    assert len(report.workers) == 2 and sum(report.workers.values()) == 7

    got.clear()
    with Pool(Crasher, (0,), FanoutConfig(workers=2)) as pool:
        report = pool.map([Task(f"t{i}", i) for i in range(10)], lambda t, v: got.update({t.key: v}))
    assert set(got) == {f"t{i}" for i in range(10)} - {"t3", "t5"}  # the other worker did the rest
    failures = {f.key: f.error for f in report.failures}
    assert sorted(failures) == ["t3", "t5"] and failures["t5"].startswith("the worker died: ")


@pytest.mark.slow
def test_generate_killed_with_sigkill_resumes_without_redoing_finished_clips(generated, tmp_path):
    """A driver killed outright (no cleanup runs): the rerun keeps every clip it had finished."""
    argv, _ = generated
    argv = [
        *argv[: argv.index("--steps")],
        "--steps",
        "25",
        *argv[argv.index("--steps") + 2 :],
        "--seed",
        "9",
    ]
    assert main([*argv, "--out", str(tmp_path / "sequential")]) == 0
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    root = Path(__file__).resolve().parent.parent
    with subprocess.Popen(
        [sys.executable, "-m", "clear_core", *argv, "--out", str(out), "--ray"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ) as driver:  # fmt: skip
        deadline = time.monotonic() + 300
        while (
            len(list(out.glob("*/p*_s*.json"))) < 4 and driver.poll() is None and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        driver.send_signal(signal.SIGKILL)
    first = {p: p.stat() for p in out.glob("*/p*_s*.*")}
    if (out / "manifest.json").exists():
        pytest.skip("the run finished before it could be killed")
    assert len(first) >= 8
    assert main([*argv, "--out", str(out), "--ray"]) == 0
    for path, stat in first.items():
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns), path
    assert files_of(out) == files_of(tmp_path / "sequential")
