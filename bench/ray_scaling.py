"""Local scaling of ``generate --ray``: 1 vs 2 Ray workers on this machine, as ratios measured in one run.

    python -m bench.ray_scaling                     # testbed, 4 prompts × 3 seeds × (original, erased), 60 steps
    python -m bench.ray_scaling --steps 100 --repeats 3

One Ray instance (``num_cpus`` = this machine's cores) serves every run. Each run renders the same grid
into a fresh folder with ``generate_fanout`` (clear_core/fanout/generate.py) and 1 or 2 workers (one
CPU and one torch thread each), alternating 1, 2, 1, 2, ... so that load from other processes falls on
both alike. Reported per run: the *task phase* (first task handed out to last file written) and the
*wall* time including the workers' start-up (process, imports, pipeline load). The same grid without
Ray (``generate_grid`` in this process, one thread) is the baseline for Ray's per-task overhead.
The load average is printed before and after: on a shared machine the ratio is only as good as the
quiet it was measured in.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from clear_core.erasure import Eraser
from clear_core.fanout import FanoutConfig
from clear_core.fanout.generate import GenerateJob, generate_fanout
from clear_core.generation import RenderSettings, generate_grid, load_pipeline, plan_variants

PROMPTS = [
    "a stunt performer with a parachute over a desert",
    "a cat on a beach at sunset",
    "a painting of a harbour in the style of van gogh",
    "a golf ball on a green at dawn",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="denoising steps per clip")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="runs per worker count (alternating)")
    parser.add_argument("--eraser", help="eraser folder (default: a short parachute search made here)")
    args = parser.parse_args()
    import ray

    torch.set_num_threads(1)
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}")
    seeds = list(range(args.seeds))
    settings = RenderSettings(steps=args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.eraser
        if folder is None:  # a short search: the bench measures rendering, not the eraser's quality
            from clear_core.__main__ import main as cli

            folder = str(Path(tmp) / "eraser")
            argv = ["search", "--concept", "parachute", "--steps", "20", "--d-sae", "256", "--gamma", "2"]
            assert cli([*argv, "--out", folder]) == 0
        eraser = Eraser.load(folder)

    def variants():
        return plan_variants([eraser], [2.0])

    n_clips = len(PROMPTS) * len(seeds) * len(variants())
    pipe = load_pipeline("testbed")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        generate_grid(pipe, PROMPTS, seeds, variants(), settings, Path(tmp) / "plain")
        plain = time.perf_counter() - t
    print(f"without Ray (this process, 1 thread): {n_clips} clips of {args.steps} steps in {plain:.1f} s")

    t = time.perf_counter()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    print(f"ray.init: {time.perf_counter() - t:.1f} s")
    results: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    try:
        for r in range(args.repeats):
            for workers in (1, 2):
                job = GenerateJob("testbed", {}, PROMPTS, seeds, variants(), settings)
                with tempfile.TemporaryDirectory() as tmp:
                    t = time.perf_counter()
                    report, _ = generate_fanout(
                        job, Path(tmp) / "out", FanoutConfig(workers=workers), progress=False
                    )
                    wall = time.perf_counter() - t
                assert report.ok and report.done == n_clips, report.summary("bench")
                results[workers].append((report.seconds, wall))
                print(
                    f"run {r + 1}, {workers} worker(s): task phase {report.seconds:.1f} s, wall with start-up "
                    f"{wall:.1f} s; tasks per worker {sorted(report.workers.values())}"
                )
    finally:
        ray.shutdown()
    task1, task2 = (statistics.median(x for x, _ in results[w]) for w in (1, 2))
    wall1, wall2 = (statistics.median(y for _, y in results[w]) for w in (1, 2))
    print(f"load average after: {os.getloadavg()}")
    print(
        f"SCALING 1 -> 2 workers (medians of {args.repeats}): task phase x{task1 / task2:.2f} faster "
        f"({task1:.1f} s -> {task2:.1f} s); wall with start-up x{wall1 / wall2:.2f} ({wall1:.1f} s -> {wall2:.1f} s)"
    )
    print(f"RAY OVERHEAD: 1 worker's task phase / the same grid without Ray = x{task1 / plain:.2f}")


if __name__ == "__main__":
    main()
