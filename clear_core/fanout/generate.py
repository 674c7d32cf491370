"""``generate --ray``: one task per (prompt, seed, variant), the same files as a run without Ray.

**Worker.** Loads the pipeline once and checks the erasers against it; one worker calibrates the
steering baseline and every worker takes that one (a run never mixes two calibrations). A task renders one clip the way the
grid (clear_core/generation/grid.py) renders it: the prompt's conditioning is encoded for every
variant at once (so a γ sweep shares the blocks below the eraser as it does there; kept for the
worker's next task of the same prompt), the initial latents come from the seed as the grid's first
variant draws them (``Latents(detached=True)`` for every later variant: the latents and scheduler
noise the grid replays), and :func:`~clear_core.generation.grid.write_clip` writes the mp4 and JSON
into a scratch folder. The worker returns those files' bytes and the frames the contact sheet shows.

**Driver.** Writes each finished task's files under ``OUT`` atomically, the JSON last: a clip is
finished when its JSON is there. It keeps the contact-sheet frames in ``OUT/.clear-tasks/rows`` until
every variant of that (prompt, seed) is in and the sheet is written, and writes ``manifest.json`` once
every clip is there. ``OUT/.clear-tasks/plan.json`` records what the run renders; running the same
command again skips finished clips, a different plan is refused (``--overwrite`` starts over).

**Same bytes.** mp4s, per-clip JSON (but its ``wall_s``), contact sheets and the manifest's
``videos`` equal a run without ``--ray`` at the same torch thread count: float arithmetic on the CPU
differs in the last bits between 1 and 2 threads (measured on the testbed), and each worker runs
``--ray-cpus-per-task`` threads (default 1), so compare with ``OMP_NUM_THREADS=1`` or a matching
``--ray-cpus-per-task``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from clear_core.fanout.config import FanoutConfig
from clear_core.fanout.engine import FanoutReport, Pool, Task, TaskBar
from clear_core.generation.grid import clip_stem, sheet_name
from clear_core.generation.render import RenderSettings
from clear_core.generation.variants import Variant

__all__ = ["ClipFiles", "GenerateJob", "GenerateWorker", "generate_fanout", "run_generate"]

TASKS_DIR = ".clear-tasks"
"""The run's own bookkeeping inside ``OUT``: ``plan.json`` and, until the sheets are written, ``rows/``."""


@dataclass
class GenerateJob:
    """Everything a worker needs to render any clip of the grid."""

    pipeline: str
    """What ``--pipeline`` names: loaded by every worker."""
    load: dict[str, Any]
    """Keyword arguments of :func:`~clear_core.generation.loading.load_pipeline` (dtype, device, ...)."""
    prompts: list[str]
    seeds: list[int]
    variants: list[Variant]
    settings: RenderSettings
    negative_prompt: str | None = ""
    fps: int = 8
    steering_pairs: tuple[list[str], list[str]] | None = None
    """The concept's (positives, negatives) for the steering baseline; None: its built-in pack."""

    def plan(self) -> dict:
        """What decides the files, as JSON: two runs with equal plans write equal files."""
        pairs = self.steering_pairs
        return json.loads(
            json.dumps(
                {
                    "command": "generate",
                    "pipeline": self.pipeline,
                    "load": self.load,
                    "prompts": self.prompts,
                    "seeds": self.seeds,
                    "variants": [v.to_json() for v in self.variants],
                    "settings": self.settings.to_json(),
                    "negative_prompt": self.negative_prompt,
                    "fps": self.fps,
                    "steering_pairs_sha256": None
                    if pairs is None
                    else hashlib.sha256(json.dumps(pairs).encode()).hexdigest(),
                }
            )
        )

    def tasks(self) -> list[Task]:
        """One task per clip, in the grid's order (prompt, then seed, then variant)."""
        return [
            Task(f"{v.name}/{clip_stem(i, seed)}", (i, seed, k))
            for i in range(len(self.prompts))
            for seed in self.seeds
            for k, v in enumerate(self.variants)
        ]


class ClipFiles(NamedTuple):
    """What a worker returns for one clip."""

    files: dict[str, bytes]
    """Path under ``OUT`` -> bytes: the mp4, then its JSON."""
    sheet: np.ndarray
    """(columns, H, W, 3) uint8: the frames the contact sheet shows (media.sheet_frames)."""


class GenerateWorker:
    """One loaded pipeline; renders any clip of a :class:`GenerateJob`."""

    def __init__(self, job: GenerateJob) -> None:
        from clear_core.erasure import check_erasers
        from clear_core.generation.loading import describe, load_pipeline
        from clear_core.provenance import library_versions

        self.job = job
        self.pipe = load_pipeline(job.pipeline, **job.load)
        job.settings.call_kwargs(self.pipe)  # refuses a setting the pipeline does not take
        used = {id(e): e for v in job.variants for e, _ in v.erasers if v.info.get("baseline") != "steering"}
        check_erasers(self.pipe, list(used.values()))
        self.pipeline = describe(self.pipe)
        self.versions = library_versions()
        self._conditioning: tuple[int, dict] | None = None

    def calibrate(self) -> tuple | None:
        """Calibrate the steering baseline (grid.prepare_steering) and return what
        :meth:`use_calibration` sets; None without that baseline."""
        from clear_core.generation.grid import prepare_steering

        prepare_steering(self.pipe, self.job.variants, *(self.job.steering_pairs or ()))
        row = next((v for v in self.job.variants if v.info.get("baseline") == "steering"), None)
        return None if row is None else (row.erasers, row.gamma, row.info)

    def use_calibration(self, calibration: tuple | None) -> None:
        """Take the steering baseline one worker calibrated: every clip of a run uses the same one."""
        if calibration is not None:
            row = next(v for v in self.job.variants if v.info.get("baseline") == "steering")
            row.erasers, row.gamma, row.info = calibration

    def summary(self) -> dict:
        """What the manifest records about the pipeline and the (calibrated) variants."""
        return {
            "pipeline": self.pipeline,
            "variants": [v.to_json() for v in self.job.variants],
            "versions": self.versions,
        }

    def run(self, payload: tuple[int, int, int]) -> ClipFiles:
        from clear_core.generation.grid import encode_variants, render_clip, write_clip
        from clear_core.generation.media import sheet_frames
        from clear_core.generation.render import Latents

        i, seed, k = payload
        job, variant, prompt = self.job, self.job.variants[k], self.job.prompts[i]
        if self._conditioning is None or self._conditioning[0] != i:
            self._conditioning = (
                i,
                encode_variants(self.pipe, prompt, job.variants, job.settings, job.negative_prompt),
            )
        cond = self._conditioning[1][variant.name]
        latents = Latents(seed, detached=k > 0)  # the grid's first variant draws, the others replay
        clip, seconds = render_clip(self.pipe, prompt, variant, cond, job.settings, latents)
        with tempfile.TemporaryDirectory(prefix="clear-clip-") as tmp:
            entry = write_clip(
                Path(tmp), variant, prompt, i, seed, cond.negative, clip, seconds, self.pipeline,
                job.settings, job.fps, self.versions,
            )  # fmt: skip
            files = {rel: (Path(tmp) / rel).read_bytes() for rel in (entry["path"], entry["meta"])}
        return ClipFiles(files, sheet_frames(clip))


def _differences(old: dict, new: dict) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def _check_out(out: Path, plan: dict, overwrite: bool) -> bool:
    """Check ``out`` for this plan (nothing is written); True when its finished clips may be kept."""
    from clear_core.generation.grid import check_out

    state = out / TASKS_DIR / "plan.json"
    resume = False
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        if not state.is_file():
            raise ValueError(f"{out} exists and is not empty; pass --overwrite or choose another --out")
        try:
            old = json.loads(state.read_text())
        except (OSError, ValueError):
            old = {}
        if old != plan:
            what = ", ".join(_differences(old, plan)) or "its plan"
            raise ValueError(
                f"{out} holds another generate run ({what} differ); pass --overwrite to start over or "
                "choose another --out"
            )
        resume = True
    check_out(out, overwrite=True)  # a file, or a folder that cannot be written
    return resume


def _record_plan(out: Path, plan: dict, resume: bool) -> None:
    """Write the plan (a fresh run also drops the sheet frames a run before it left)."""
    from clear_core.io import atomic_write_text

    if not resume:
        shutil.rmtree(out / TASKS_DIR / "rows", ignore_errors=True)
    atomic_write_text(out / TASKS_DIR / "plan.json", json.dumps(plan, indent=1, ensure_ascii=False) + "\n")


def generate_fanout(
    job: GenerateJob,
    out: str | Path,
    config: FanoutConfig | None,
    overwrite: bool = False,
    progress: bool = True,
) -> tuple[FanoutReport, dict | None]:
    """Render ``job`` into ``out`` on the workers of ``config`` (None: one worker in this process);
    returns the report and the manifest (None until every clip is there)."""
    from clear_core.generation.grid import grid_manifest, video_entry
    from clear_core.generation.media import contact_sheet, write_json
    from clear_core.io import atomic_path, atomic_write_bytes

    start = time.perf_counter()
    out = Path(out)
    plan = job.plan()
    resume = _check_out(out, plan, overwrite)
    if out.is_dir():  # half-written temporaries of a killed run (their writer is gone)
        from clear_core.io import remove_stale_temporaries

        remove_stale_temporaries(out)
    rows = out / TASKS_DIR / "rows"
    names = [v.name for v in job.variants]
    groups = [(i, seed) for i in range(len(job.prompts)) for seed in job.seeds]

    def row_path(name: str, i: int, seed: int) -> Path:
        return rows / name / f"{clip_stem(i, seed)}.npy"

    def clip_done(name: str, i: int, seed: int) -> bool:
        stem = out / name / clip_stem(i, seed)
        return (
            stem.with_suffix(".json").is_file()
            and stem.with_suffix(".mp4").is_file()
            and ((out / sheet_name(i, seed)).is_file() or row_path(name, i, seed).is_file())
        )

    tasks = job.tasks()
    done = {t.key for t in tasks if resume and clip_done(job.variants[t.payload[2]].name, *t.payload[:2])}
    report = FanoutReport(total=len(tasks), skipped=len(done))
    manifest_path = out / "manifest.json"
    if len(done) == len(tasks) and manifest_path.is_file():
        return report, json.loads(manifest_path.read_text())

    def write_sheet(i: int, seed: int) -> None:
        if not (out / sheet_name(i, seed)).is_file():
            frames = [np.load(row_path(name, i, seed)) for name in names]
            contact_sheet(out / sheet_name(i, seed), frames, names)

    def on_result(task: Task, result: ClipFiles) -> None:
        i, seed, k = task.payload
        with atomic_path(row_path(names[k], i, seed)) as tmp:
            np.save(tmp, result.sheet)
        for rel, data in result.files.items():  # the mp4, then the JSON that marks the clip finished
            atomic_write_bytes(out / rel, data)
        done.add(task.key)
        if all(f"{name}/{clip_stem(i, seed)}" in done for name in names):
            write_sheet(i, seed)

    pending = [t for t in tasks if t.key not in done]
    bar = TaskBar("generate", len(tasks), len(done)) if progress else None
    try:
        with Pool(GenerateWorker, (job,), config, max_workers=len(pending) or 1) as pool:
            _record_plan(out, plan, resume)  # once the workers are up: a run that cannot start writes nothing
            pool.call_all("use_calibration", pool.call_first("calibrate"))
            summary = pool.call_first("summary")
            pool.map(pending, on_result, bar, report)
    finally:
        if bar is not None:
            bar.close()
    complete = [g for g in groups if all(f"{name}/{clip_stem(*g)}" in done for name in names)]
    for i, seed in complete:  # groups finished by an earlier run that stopped before their sheet
        write_sheet(i, seed)
    if report.failures or len(complete) < len(groups):
        return report, None
    gamma = {v["name"]: v.get("gamma") for v in summary["variants"]}
    videos = [
        video_entry(name, gamma[name], i, job.prompts[i], seed)
        for i in range(len(job.prompts))
        for seed in job.seeds
        for name in names
    ]
    manifest = grid_manifest(
        summary["pipeline"], job.settings, job.prompts, job.negative_prompt, job.seeds, summary["variants"],
        videos, [sheet_name(i, seed) for i, seed in groups], summary["versions"], time.perf_counter() - start,
    )  # fmt: skip
    write_json(manifest_path, manifest)
    shutil.rmtree(rows, ignore_errors=True)
    return report, manifest


def run_generate(
    args: argparse.Namespace,
    config: FanoutConfig,
    prompts: list[str],
    seeds: list[int],
    variants: list[Variant],
    settings: RenderSettings,
    steering_pairs: tuple[list[str], list[str]] | None,
) -> int:
    """The ``generate --ray`` command after its cheap checks; returns the exit status."""
    if args.device.startswith("cuda") and not config.gpus_per_task:
        raise ValueError(
            f"--device {args.device} on Ray needs --ray-gpus-per-task (e.g. 1): a worker sees no GPU"
        )
    stack = getattr(args, "exit_stack", None)
    if stack is not None:  # a second run into the same --out is refused while this one runs
        from clear_core.io import output_lock

        stack.enter_context(output_lock(Path(args.out), "--out"))
    load = {
        "dtype": args.dtype,
        "device": args.device,
        "offload": args.offload,
        "vae_tiling": args.vae_tiling,
    }
    job = GenerateJob(
        args.pipeline,
        load,
        prompts,
        seeds,
        variants,
        settings,
        args.negative_prompt,
        args.fps,
        steering_pairs,
    )
    report, manifest = generate_fanout(job, args.out, config, args.overwrite)
    status = report.exit_status("generate")
    if manifest is not None:
        print(
            f"wrote {len(manifest['videos'])} videos ({len(variants)} variants × {len(prompts)} prompts × "
            f"{len(seeds)} seeds) and {len(manifest['contact_sheets'])} contact sheets to {args.out}",
            file=sys.stderr,
        )
    return status
