"""``testbed rate --ray``: the testbed's generative rate, its batches of clips rendered on Ray workers.

:func:`~clear_core.testbed.rate.generative_rate` renders up to four passes — the prompts without and
with the eraser, the neutral prompts without and with it — in batches of 64 clips
(:func:`~clear_core.testbed.rate.generate_frames`) and reads every frame with the detector. Here one
batch is one task: a worker (testbed pipeline, detector and eraser loaded once) renders it with
``generate_frames`` — the same call on the same latents, drawn here in the same order from the same
seed — and returns the detector's reading of its frames. The driver assembles the result as
``generative_rate`` does (tests compare the two). The detector reads 512 frames at a time and a batch
of 64 eight-frame clips is one such read, so the readings equal those of a whole pass.

Resumable: each batch's reading is written to ``$CLEAR_CACHE_DIR/fanout/testbed-rate-<digest>/``,
the digest of every input (prompts, eraser, γ, seeds, steps, weights, detector, library versions), as
it arrives; the same command run again reads what is there instead of rendering it, and the folder is
removed once the result is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from clear_core.fanout.config import FanoutConfig
from clear_core.fanout.engine import FanoutReport, Pool, Task, TaskBar

__all__ = ["RateWorker", "rate_fanout", "run_rate"]

BATCH = 64
"""Clips per pipeline call: generate_frames' batch, so each task is one of its calls."""


class RateWorker:
    """The testbed pipeline, the detector and the eraser; renders and reads one batch per task."""

    def __init__(self, slug: str, eraser: Any, gamma: float | None, steps: int, guidance: float) -> None:
        from clear_core.testbed.detector import load_detector
        from clear_core.testbed.pipeline import load_testbed_pipeline

        self.slug, self.eraser, self.gamma, self.steps, self.guidance = slug, eraser, gamma, steps, guidance
        self.pipe = load_testbed_pipeline()
        self.detector = load_detector()

    def run(self, payload: tuple[list[str], np.ndarray, bool]) -> dict:
        import torch

        from clear_core.testbed.detector import HEADS, concept_present
        from clear_core.testbed.rate import generate_frames

        prompts, latents, erased = payload
        frames = generate_frames(
            self.pipe, prompts, torch.from_numpy(latents), self.eraser if erased else None,
            self.gamma if erased else None, self.steps, self.guidance, batch=BATCH,
        )  # fmt: skip
        readings = self.detector.predict(frames.reshape(-1, *frames.shape[2:]))
        return {
            "clips": len(frames),
            "found": concept_present(readings, self.slug).tolist(),
            "heads": {k: np.asarray(readings[k]).tolist() for k in HEADS},
        }


def _weights_digest() -> str:
    from clear_core.testbed.pipeline import ASSETS

    h = hashlib.sha256()
    for path in sorted(p for p in ASSETS.glob("*/*") if p.parent.name in ("transformer", "scheduler")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def rate_fanout(
    concept_slug: str,
    prompts: list[str] | None = None,
    eraser: Any = None,
    gamma: float | None = None,
    seeds: int = 4,
    neutral_prompts: list[str] | None = None,
    n_prompts: int = 24,
    steps: int = 10,
    guidance_scale: float = 4.0,
    seed: int = 0,
    config: FanoutConfig | None = None,
    progress: bool = True,
) -> tuple[FanoutReport, dict | None]:
    """:func:`~clear_core.testbed.rate.generative_rate`'s result (same arguments), its batches run on
    the workers of ``config`` (None: one worker in this process); None until every batch is read."""
    import torch

    from clear_core.encoders import default_cache_dir
    from clear_core.io import atomic_write_text
    from clear_core.provenance import library_versions
    from clear_core.testbed.detector import HEADS, concept_attribute, load_detector
    from clear_core.testbed.rate import erased_summary, heldout_pack_prompts, original_summary

    if seeds < 1:
        raise ValueError(f"seeds must be ≥ 1, got {seeds}")
    head, _ = concept_attribute(concept_slug)
    t0 = time.time()
    detector = load_detector()
    erasers = [] if eraser is None else list(eraser) if isinstance(eraser, (list, tuple)) else [eraser]
    eraser = erasers or None  # what the workers apply: a list, as generate_frames takes it
    source = neutral_source = "given"
    if prompts is None or (erasers and neutral_prompts is None):  # generative_rate's choice of prompts
        pos, neg, pack = heldout_pack_prompts(concept_slug, erasers, n_prompts)
        if prompts is None:
            prompts, source = pos, pack
        if neutral_prompts is None:
            neutral_prompts, neutral_source = neg, pack
    if not prompts:
        raise ValueError("no prompts")
    gen = torch.Generator().manual_seed(seed)  # drawn in generative_rate's order
    passes = {"original": (prompts, torch.randn((len(prompts) * seeds, 9, 16), generator=gen), False)}
    if eraser is not None:
        lat_n = torch.randn((len(neutral_prompts) * seeds, 9, 16), generator=gen)
        passes["erased"] = (prompts, passes["original"][1], True)
        passes["neutral"] = (neutral_prompts, lat_n, False)
        passes["neutral_erased"] = (neutral_prompts, lat_n, True)
    tasks = []
    for name, (ps, lat, erased) in passes.items():
        expanded = [p for p in ps for _ in range(seeds)]
        for start in range(0, len(expanded), BATCH):
            chunk = (expanded[start : start + BATCH], lat[start : start + BATCH].numpy(), erased)
            tasks.append(Task(f"{name}/{start // BATCH}", chunk))

    inputs = {
        "concept": concept_slug, "prompts": prompts, "neutral_prompts": neutral_prompts if eraser else None,
        "eraser": [e.digest() for e in erasers] or None, "gamma": gamma, "seeds": seeds,
        "steps": steps, "guidance_scale": guidance_scale, "seed": seed, "detector": detector.sha256,
        "weights": _weights_digest(), "versions": library_versions(),
    }  # fmt: skip
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:24]
    folder = default_cache_dir() / "fanout" / f"testbed-rate-{digest}"

    def part(task: Task) -> Path:
        return folder / f"{task.key.replace('/', '_')}.json"

    def on_result(task: Task, reading: dict) -> None:
        atomic_write_text(part(task), json.dumps(reading) + "\n")

    pending = [t for t in tasks if not part(t).is_file()]
    report = FanoutReport(total=len(tasks), skipped=len(tasks) - len(pending))
    bar = TaskBar("testbed rate", len(tasks), report.skipped) if progress else None
    try:
        if pending:
            args = (concept_slug, eraser, gamma, steps, guidance_scale)
            with Pool(RateWorker, args, config, max_workers=len(pending)) as pool:
                pool.map(pending, on_result, bar, report)
    finally:
        if bar is not None:
            bar.close()
    if report.failures:
        return report, None

    readings: dict[str, dict] = {}
    for task in tasks:  # each pass's batches, in order
        name = task.key.split("/")[0]
        r = json.loads(part(task).read_text())
        whole = readings.setdefault(name, {"clips": 0, "found": [], "heads": {k: [] for k in HEADS}})
        whole["clips"] += r["clips"]
        whole["found"] += r["found"]
        for k in HEADS:
            whole["heads"][k] += r["heads"][k]

    found = np.asarray(readings["original"]["found"], dtype=bool)
    n_clips = readings["original"]["clips"]
    result = original_summary(
        concept_slug, head, len(prompts), seeds, found, n_clips, steps, guidance_scale, detector
    )
    result["prompts"] = source
    if eraser is not None:
        found_e = np.asarray(readings["erased"]["found"], dtype=bool)
        a, b = readings["neutral"]["heads"], readings["neutral_erased"]["heads"]
        result.update(
            erased_summary(
                erasers,
                gamma,
                found,
                found_e,
                readings["erased"]["clips"],
                a,
                b,
                len(neutral_prompts),
                neutral_source,
            )
        )
    else:
        result["rate"] = result["rate_original"]
    result["seconds"] = round(time.time() - t0, 1)
    shutil.rmtree(folder, ignore_errors=True)
    return report, result


def run_rate(args: argparse.Namespace, config: FanoutConfig, eraser: Any) -> int:
    """The ``testbed rate --ray`` command after its cheap checks: prints the JSON; the exit status."""
    from clear_core.concepts import load_prompts

    report, result = rate_fanout(
        args.concept,
        prompts=load_prompts(args.prompts) if args.prompts else None,
        eraser=eraser,
        gamma=args.gamma,
        seeds=args.seeds,
        neutral_prompts=load_prompts(args.neutral_prompts) if args.neutral_prompts else None,
        n_prompts=args.n_prompts,
        steps=args.steps,
        guidance_scale=args.guidance,
        seed=args.seed,
        config=config,
    )
    status = report.exit_status("testbed rate")
    if result is not None:
        print(json.dumps(result, indent=2))
    return status
