"""Run tasks on a pool of workers: Ray actors that each load their model once, or one in-process worker.

A *worker* is a plain class: ``__init__(*args)`` loads what every task needs (a pipeline, detectors, an
encoder) and ``run(payload)`` does one task, returning its result (bytes, arrays, dicts: what Ray can
ship). :class:`Pool` starts the workers — one Ray actor per worker, each with the CPUs/GPUs of
:class:`~clear_core.fanout.config.FanoutConfig` and ``torch.set_num_threads`` set to its CPUs, so two
workers on two cores do not fight over threads — and hands every free worker the next task, waiting
with ``ray.wait``. A task whose worker died (a lost node, out of memory) becomes a :class:`Failure`
naming it, as does an exception inside ``run``: one bad task never stops the others, and the command
run again does only what is left.

The driver (the process the user started) receives each result and writes the task's files itself
(``on_result``, atomic writes), the moment the task finishes. So workers need no shared file system,
a killed run leaves only whole files, and the command skips the tasks whose files are there when it
is run again. Ray is imported here only, and only when a :class:`Pool` is given a config; without
one the pool is a single worker in this process (what ``sweep`` without ``--ray`` and the tests use).
"""

from __future__ import annotations

import os
import socket
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from clear_core.fanout.config import LOCAL, FanoutConfig

__all__ = ["Failure", "FanoutReport", "Pool", "Task", "TaskBar", "TasksFailed"]

FORWARDED_ENV = ("CLEAR_CACHE_DIR", "CLEAR_DEBUG", "HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
"""Environment variables the workers get from the driver (caches and offline mode behave the same)."""

Progress = Callable[[int, int, str, "str | None"], None]
"""``(done, total, task key, error or None)`` after every finished task."""


@dataclass(frozen=True)
class Task:
    """One unit of work."""

    key: str
    """Unique and readable: what progress lines and the failure summary call it ("erased/p001_s0")."""
    payload: Any
    """What the worker's ``run`` receives (kept small: the worker holds the shared inputs). A function
    without arguments is called when the task is handed out, so a big input (a video's bytes) is read
    only then."""

    def resolve(self) -> Any:
        return self.payload() if callable(self.payload) else self.payload


@dataclass(frozen=True)
class Failure:
    """A task that did not finish, and why."""

    key: str
    error: str
    """One line: the exception type and message, or how the worker died."""
    detail: str = ""
    """The traceback, printed with ``CLEAR_DEBUG=1``."""


@dataclass
class FanoutReport:
    """What a fan-out did."""

    total: int
    """Tasks of the run, finished ones from an earlier run included."""
    skipped: int
    """Tasks whose files were already there (not run again)."""
    done: int = 0
    """Tasks finished in this run."""
    failures: list[Failure] = field(default_factory=list)
    workers: dict[str, int] = field(default_factory=dict)
    """``host:pid`` of each worker -> tasks it finished (a worker loads its model once)."""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self, command: str) -> list[str]:
        """Lines for stderr: counts, then one line per failed task."""
        skipped = f", {self.skipped} already there" if self.skipped else ""
        where = f" on {len(self.workers)} worker{'s' * (len(self.workers) != 1)}" if self.workers else ""
        lines = [
            f"{command}: {self.done} task{'s' * (self.done != 1)} done{skipped}, {len(self.failures)} failed, "
            f"of {self.total}{where} in {self.seconds:.1f} s"
        ]
        for failure in self.failures:
            lines.append(f"  failed {failure.key}: {failure.error}")
            if os.environ.get("CLEAR_DEBUG") and failure.detail:
                lines.extend("    " + line for line in failure.detail.rstrip().splitlines())
        return lines

    def exit_status(self, command: str) -> int:
        """Print the summary; 0 when every task finished, else 1 with an ``error:`` line."""
        for line in self.summary(command):
            print(line, file=sys.stderr)
        if self.ok:
            return 0
        print(
            f"error: {len(self.failures)} of {self.total} tasks failed (listed above); the finished ones are "
            "kept: run the same command again to retry the rest",
            file=sys.stderr,
        )
        return 1


class TasksFailed(RuntimeError):
    """Raised where a fan-out runs inside a function that cannot return its report."""

    def __init__(self, report: FanoutReport) -> None:
        super().__init__(f"{len(report.failures)} of {report.total} tasks failed")
        self.report = report


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


class _Host:
    """The Ray actor around a worker: threads and environment first, then the worker's own start-up."""

    def __init__(self, threads: int, env: dict[str, str], worker: type, args: tuple) -> None:
        os.environ.update(env)
        import torch

        torch.set_num_threads(threads)
        self.worker = worker(*args)

    def ready(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}"

    def call(self, method: str, *args: Any) -> Any:
        return getattr(self.worker, method)(*args)

    def run(self, payload: Any) -> tuple[bool, Any]:
        try:
            return True, self.worker.run(payload)
        except Exception as err:  # a failed task is data: the others go on
            return False, (_one_line(err), traceback.format_exc())


def _connect(address: str) -> bool:
    """Connect to Ray (starting a local instance for ``local``); True when this call started it."""
    import logging

    import ray

    if ray.is_initialized():  # a caller (a test, a notebook) already chose the cluster
        return False
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,  # workers' output goes to Ray's session logs; results come back here
            logging_level=logging.WARNING,
        )
    except ConnectionError as err:
        hint = {
            LOCAL: "",
            "auto": " (no 'ray start' cluster found on this machine)",
        }.get(
            address,
            " (is 'ray start --head' running there? Ray 2.60 clusters also need RAY_AUTH_MODE=token here)",
        )
        raise ValueError(
            f"cannot connect to the Ray cluster at {address!r}{hint}: {_one_line(err)}"
        ) from None
    return True


def _count_workers(config: FanoutConfig, n_tasks: int) -> int:
    import ray

    if config.workers is not None:
        return max(1, min(config.workers, n_tasks))
    resources = ray.cluster_resources()
    n = int(resources.get("CPU", 1) // config.cpus_per_task)
    if config.gpus_per_task:
        gpus = resources.get("GPU", 0)
        if gpus < config.gpus_per_task:
            raise ValueError(
                f"--ray-gpus-per-task {config.gpus_per_task:g}, but the Ray cluster has {gpus:g} GPUs"
            )
        n = min(n, int(gpus // config.gpus_per_task))
    return max(1, min(n, n_tasks))


class Pool:
    """Workers of one class: ``with Pool(Worker, args, config) as pool: pool.map(tasks, on_result)``.

    ``config`` None: one worker in this process, tasks one after another (Ray is not imported).
    ``max_workers`` caps the number of workers (no more than there are tasks to run).
    """

    def __init__(
        self,
        worker: type,
        args: tuple = (),
        config: FanoutConfig | None = None,
        max_workers: int | None = None,
    ) -> None:
        self.worker, self.args, self.config = worker, args, config
        self.max_workers = max_workers
        self._local: Any = None
        self._actors: list[Any] = []
        self._names: dict[int, str] = {}
        self._started = False

    def __enter__(self) -> Pool:
        if self.config is None:
            self._local = self.worker(*self.args)
            self._names[0] = f"{socket.gethostname()}:{os.getpid()}"
            return self
        import ray

        self._started = _connect(self.config.address)
        try:
            n = _count_workers(self.config, self.max_workers or sys.maxsize)
            env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
            # no restarts: a worker lost with its node fails its task, the others go on, and the
            # command run again does what is left (a restart would need the constructor's arguments
            # kept in the object store for the whole run)
            actor = ray.remote(_Host).options(
                num_cpus=self.config.cpus_per_task, num_gpus=self.config.gpus_per_task, max_restarts=0
            )
            self._actors = [actor.remote(self.config.threads, env, self.worker, self.args) for _ in range(n)]
            try:
                names = ray.get([a.ready.remote() for a in self._actors])
            except ray.exceptions.RayError as err:
                raise ValueError(f"a Ray worker could not start: {_cause(err)}") from None
            self._names = dict(enumerate(names))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._actors:
            import ray

            for a in self._actors:  # free their memory (a GPU's, too) now, not when the driver exits
                ray.kill(a)
            self._actors = []
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    @property
    def size(self) -> int:
        return len(self._actors) or 1

    def call_first(self, method: str, *args: Any) -> Any:
        """``method(*args)`` on the first worker (what every worker would answer alike)."""
        if self._local is not None:
            return getattr(self._local, method)(*args)
        import ray

        return ray.get(self._actors[0].call.remote(method, *args))

    def call_all(self, method: str, *args: Any) -> list[Any]:
        """``method(*args)`` on every worker (to hand them all one result of :meth:`call_first`)."""
        if self._local is not None:
            return [getattr(self._local, method)(*args)]
        import ray

        refs = [ray.put(a) for a in args]  # shipped once, not once per worker
        return ray.get([actor.call.remote(method, *refs) for actor in self._actors])

    def map(
        self,
        tasks: Sequence[Task],
        on_result: Callable[[Task, Any], None],
        progress: Progress | None = None,
        report: FanoutReport | None = None,
    ) -> FanoutReport:
        """Run ``tasks``; ``on_result(task, result)`` in this process as each one finishes (an exception
        there fails that task). Returns ``report`` (or a new one) with the counts and failures."""
        report = report or FanoutReport(total=len(tasks), skipped=0)
        start = time.perf_counter()
        finished = report.skipped

        def finish(task: Task, worker: int, ok: bool, value: Any) -> None:
            nonlocal finished
            error = None
            if ok:
                try:
                    on_result(task, value)
                except Exception as err:
                    ok, value = False, (_one_line(err), traceback.format_exc())
            if ok:
                report.done += 1
                name = self._names.get(worker, str(worker))
                report.workers[name] = report.workers.get(name, 0) + 1
            else:
                error, detail = value
                report.failures.append(Failure(task.key, error, detail))
            finished += 1
            if progress is not None:
                progress(finished, report.total, task.key, error)

        try:
            if self._local is not None:
                for task in tasks:
                    try:
                        ok, value = True, self._local.run(task.resolve())
                    except Exception as err:
                        ok, value = False, (_one_line(err), traceback.format_exc())
                    finish(task, 0, ok, value)
            else:
                self._map_ray(tasks, finish)
        finally:
            report.seconds += time.perf_counter() - start
        return report

    def _map_ray(self, tasks: Sequence[Task], finish: Callable[[Task, int, bool, Any], None]) -> None:
        import ray

        queue = deque(tasks)
        idle = list(range(len(self._actors)))
        pending: dict[Any, tuple[Task, int]] = {}
        while queue or pending:
            while idle and queue:
                task = queue.popleft()
                try:
                    payload = task.resolve()
                except Exception as err:  # its input cannot be read: that task fails, not the run
                    finish(task, -1, False, (_one_line(err), traceback.format_exc()))
                    continue
                worker = idle.pop(0)
                pending[self._actors[worker].run.remote(payload)] = (task, worker)
            if not pending:  # every worker died: what is left cannot run
                for task in queue:
                    finish(task, -1, False, ("no Ray worker left (the others died; see above)", ""))
                return
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                task, worker = pending.pop(ref)
                try:
                    ok, value = ray.get(ref)
                except ray.exceptions.RayError as err:  # the worker died: it takes no more tasks
                    finish(task, worker, False, (f"the worker died: {_cause(err)}", str(err)))
                    continue
                idle.append(worker)
                finish(task, worker, ok, value)


def _cause(err: BaseException) -> str:
    """The line that says why a Ray worker failed (its exception's last line), else the first line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception", "Interrupt")) and " " not in head:
            return line
    return lines[0] if lines else type(err).__name__


class TaskBar:
    """Progress over tasks on stderr: tqdm on a terminal, else a line per tenth of the tasks; a line
    for every failed task either way (the same convention as the CLI's other progress)."""

    def __init__(self, desc: str, total: int, done: int = 0) -> None:
        self.desc, self.last = desc, -1
        self.bar = None
        self.start = time.monotonic()
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc=desc, unit="task")

    def __call__(self, done: int, total: int, key: str, error: str | None = None) -> None:
        if error is not None:
            line = f"{self.desc}: failed {key}: {error}"
            if self.bar is not None:
                self.bar.write(line, file=sys.stderr)
            else:
                print(line, file=sys.stderr, flush=True)
        if self.bar is not None:
            self.bar.n = done
            self.bar.set_postfix_str(key, refresh=True)
            return
        tenth = 10 * done // max(total, 1)
        if tenth > self.last:
            self.last = tenth
            elapsed = time.monotonic() - self.start
            print(f"{self.desc}: {done}/{total} tasks {elapsed:6.1f} s  {key}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
