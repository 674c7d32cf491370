"""``evaluate-videos --ray``: one task per video, the same report as without Ray.

**Worker.** Builds the detectors once (for the folder's concept) and measures one video per task with
:func:`~clear_core.video_eval.report.measure_video`, the function the loop without Ray calls. It gets
the video's bytes from the driver, so workers need no shared folder (paths named in detector specs —
CLIP weights, face references — must exist on every node).

**Driver.** Writes each video's record to ``.<report name>.tasks/<n>.json`` beside the report as the
task finishes; a rerun keeps the records whose video has not changed (same sha256) under the same
plan (settings, detectors with their weights' hashes, libraries, input manifest), and drops the rest.
When every video has its record, :func:`~clear_core.video_eval.report.evaluate_folder` summarises them
as it summarises its own, and the folder is removed once the report is written.

A record travels as JSON: numpy scalars become Python numbers of the same value and NaN stays NaN, so
the summaries and the written report equal the ones without Ray.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from clear_core.fanout.config import FanoutConfig
from clear_core.fanout.engine import FanoutReport, Pool, Task, TaskBar, TasksFailed

__all__ = ["EvaluateWorker", "FanoutMeasure"]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} into a record")


def _as_json(record: dict) -> dict:
    return json.loads(json.dumps(record, default=_plain))


class EvaluateWorker:
    """The detectors of one evaluation; measures any video of it."""

    def __init__(self, config: Any, concept: str | None) -> None:
        from clear_core.video_eval.detectors import make_detector

        self.config = config
        self.detectors = {spec: make_detector(spec, concept=concept) for spec in config.detectors}

    def run(self, payload: tuple[dict, bytes]) -> dict:
        from clear_core.video_eval.report import measure_video

        video, data = payload
        with tempfile.TemporaryDirectory(prefix="clear-video-") as tmp:
            path = Path(tmp) / Path(video["path"]).name
            path.write_bytes(data)
            return _as_json(measure_video({**video, "abs_path": path}, self.detectors, self.config))


class FanoutMeasure:
    """The ``measure`` of :func:`~clear_core.video_eval.report.evaluate_folder` for ``--ray``: raises
    :class:`~clear_core.fanout.engine.TasksFailed` when a video fails (its record is then missing);
    call :meth:`cleanup` once the report is written."""

    def __init__(self, report_path: str | Path, config: FanoutConfig | None, progress: bool = True) -> None:
        report_path = Path(report_path)
        self.folder = report_path.parent / f".{report_path.name}.tasks"
        self.config = config
        self.progress = progress
        self.report: FanoutReport | None = None

    def _part(self, i: int) -> Path:
        return self.folder / f"{i:05d}.json"

    def __call__(self, videos: list[dict], config: Any, concept: str | None, pinned: dict) -> list[dict]:
        from clear_core.io import atomic_write_text
        from clear_core.video_eval.detectors.base import sha256_file

        plan = _as_json({"config": asdict(config), "concept": concept, "manifest": pinned})
        state = self.folder / "plan.json"
        try:
            same = json.loads(state.read_text()) == plan
        except (OSError, ValueError):
            same = False

        def finished(i: int, video: dict) -> bool:
            try:
                return json.loads(self._part(i).read_text())["sha256"] == sha256_file(video["abs_path"])
            except (OSError, ValueError, KeyError, TypeError):
                return False

        def payload(video: dict):
            rest = {k: v for k, v in video.items() if k != "abs_path"}
            return lambda: (rest, Path(video["abs_path"]).read_bytes())

        tasks = [Task(video["path"], payload(video)) for video in videos]
        index = {task.key: i for i, task in enumerate(tasks)}
        done = {i for i, video in enumerate(videos) if same and finished(i, video)}
        pending = [t for i, t in enumerate(tasks) if i not in done]
        report = FanoutReport(total=len(tasks), skipped=len(done))

        def on_result(task: Task, record: dict) -> None:
            atomic_write_text(self._part(index[task.key]), json.dumps(record) + "\n")

        bar = TaskBar("evaluate-videos", len(tasks), len(done)) if self.progress else None
        try:
            if pending:
                with Pool(EvaluateWorker, (config, concept), self.config, max_workers=len(pending)) as pool:
                    if not same:  # records of another evaluation: this command's scratch, not the user's work
                        shutil.rmtree(self.folder, ignore_errors=True)
                    atomic_write_text(state, json.dumps(plan) + "\n")
                    pool.map(pending, on_result, bar, report)
        finally:
            if bar is not None:
                bar.close()
        self.report = report
        if report.failures:
            raise TasksFailed(report)
        return [json.loads(self._part(i).read_text()) for i in range(len(videos))]

    def cleanup(self) -> None:
        """Remove the records (the report holds them now)."""
        shutil.rmtree(self.folder, ignore_errors=True)
