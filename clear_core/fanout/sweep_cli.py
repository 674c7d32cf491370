"""``python -m clear_core sweep --concepts A,B|all --out DIR [--ray [ADDRESS]] [-- SEARCH OPTIONS]``:
``search`` for many concepts, one task per concept, each eraser in ``DIR/<concept>/``.

A task runs the ``search`` command itself — its parser and ``cmd_search``: the same checks, defaults
and files — into a scratch folder, with the encoder its worker loaded once for every concept it
searches. The driver publishes the files as ``DIR/<concept>/`` with one rename, so a concept's folder
is there whole or not at all. ``DIR/.clear-tasks/plan.json`` holds the concepts and search options:
the same command run again skips the concepts whose folder is there, a different plan is refused
(``--overwrite`` starts over). Without ``--ray`` the concepts run one after another in this process and
Ray is not imported. When every concept is done, ``DIR/sweep.json`` lists each one's block and γ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from clear_core.fanout.config import add_ray_arguments, config_from_args

__all__ = ["SearchWorker", "add_parser", "run"]

TASKS_DIR = ".clear-tasks"
OWN_FLAGS = ("--concept", "--out", "--overwrite")
"""``search`` flags the sweep sets itself."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    text = "Search many concepts (one eraser folder each), one task per concept; --ray fans them out."
    p = subparsers.add_parser("sweep", help=text, description=text)
    p.add_argument(
        "--concepts",
        required=True,
        help="comma-separated built-in slugs or concept files, or 'all' (every built-in pack)",
    )
    p.add_argument("--out", required=True, help="output folder: DIR/<concept>/ per concept, DIR/sweep.json")
    p.add_argument("--overwrite", action="store_true", help="start over in a non-empty --out")
    add_ray_arguments(p, "concept")
    p.add_argument(
        "search",
        nargs=argparse.REMAINDER,
        metavar="-- SEARCH OPTIONS",
        help="after --: options of 'search' for every concept (e.g. -- --steps 300 --seed 1 --model minilm)",
    )
    p.set_defaults(run=run)
    return p


def _search_args(concept: str, out: str, options: list[str]) -> argparse.Namespace:
    from clear_core.__main__ import build_parser

    return build_parser().parse_args(["search", "--concept", concept, "--out", out, *options])


class SearchWorker:
    """Runs ``search`` for any concept; one loaded encoder per ``--model``."""

    def __init__(self, options: list[str]) -> None:
        self.options = options
        self.encoders: dict[tuple, object] = {}

    def run(self, concept: str) -> dict[str, bytes]:
        from clear_core.__main__ import _load_encoder, cmd_search

        with tempfile.TemporaryDirectory(prefix="clear-search-") as tmp:
            folder = Path(tmp) / "eraser"
            args = _search_args(concept, str(folder), self.options)
            key = (args.model, args.text_encoder)
            if key not in self.encoders:
                self.encoders[key] = _load_encoder(args)
            cmd_search(args, encoder=self.encoders[key])
            return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _concepts(text: str) -> dict[str, str]:
    """Folder name -> concept (a slug or a file), every one read once now (a bad one fails here)."""
    from clear_core.concepts import builtin_packs, load_concept

    names = builtin_packs() if text.strip() == "all" else [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise ValueError("--concepts is empty; give built-in slugs or files separated by commas, or 'all'")
    out: dict[str, str] = {}
    for name in names:
        load_concept(name)
        key = Path(name).stem if Path(name).suffix else name
        if key in out:
            raise ValueError(f"--concepts names {key!r} twice ({out[key]!r} and {name!r})")
        out[key] = name
    return out


def _file_digest(concept: str) -> str | None:
    path = Path(concept)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _publish(out: Path, key: str, files: dict[str, bytes]) -> None:
    """Write the files into a temporary folder beside ``out/key``, then rename it to ``out/key``."""
    from clear_core.io import atomic_write_bytes, temp_path

    target = out / key
    tmp = temp_path(target, folder=True)  # a killed run's is removed by the next (io.py)
    try:
        for name, data in files.items():
            atomic_write_bytes(tmp / name, data)
        if target.exists():  # only with --overwrite: done tasks are skipped otherwise
            shutil.rmtree(target)
        os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    """Run ``sweep``; 0 when every concept has its eraser, 1 when some failed (listed), 2 for bad input."""
    from clear_core.fanout.engine import FanoutReport, Pool, Task, TaskBar
    from clear_core.io import atomic_write_text, check_writable, output_lock, remove_stale_temporaries

    fanout = config_from_args(args)
    options = list(args.search)
    if options[:1] == ["--"]:
        options = options[1:]
    own = [o for o in options if o.split("=")[0] in OWN_FLAGS]
    if own:
        raise ValueError(f"{own[0]} is set by sweep itself; give it to sweep, not after --")
    concepts = _concepts(args.concepts)
    _search_args(next(iter(concepts.values())), "x", options)  # bad search options fail here, once
    out = check_writable(args.out, "--out", folder=True)
    stack = getattr(args, "exit_stack", None)
    if stack is not None:  # a second sweep into the same --out is refused while this one runs
        stack.enter_context(output_lock(out, "--out"))
    remove_stale_temporaries(out)
    plan = {
        "command": "sweep",
        "concepts": concepts,
        "files_sha256": {k: _file_digest(c) for k, c in concepts.items()},
        "search": options,
    }
    state = out / TASKS_DIR / "plan.json"
    resume = False
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        try:
            old = json.loads(state.read_text())
        except (OSError, ValueError):
            raise ValueError(
                f"{out} exists and is not empty; pass --overwrite or choose another --out"
            ) from None
        if old != plan:
            raise ValueError(
                f"{out} holds another sweep (other concepts or search options); pass --overwrite to start "
                "over or choose another --out"
            )
        resume = True

    tasks = [Task(key, concept) for key, concept in concepts.items()]
    done = {t.key for t in tasks if resume and (out / t.key / "eraser.json").is_file()}
    pending = [t for t in tasks if t.key not in done]
    report = FanoutReport(total=len(tasks), skipped=len(done))
    bar = TaskBar("sweep", len(tasks), len(done))
    try:
        if pending:
            with Pool(SearchWorker, (options,), fanout, max_workers=len(pending)) as pool:
                atomic_write_text(state, json.dumps(plan, indent=1) + "\n")  # the workers are up
                pool.map(pending, lambda task, files: _publish(out, task.key, files), bar, report)
    finally:
        bar.close()
    status = report.exit_status("sweep")
    if report.ok:
        rows = {}
        for key in concepts:
            e = json.loads((out / key / "eraser.json").read_text())
            rows[key] = {
                "folder": key,
                "block": e["layer"] - 1,
                "layer_name": e["layer_name"],
                "default_gamma": e["default_gamma"],
                "elapsed_s": e.get("elapsed_s"),
            }
            print(
                f"  {key}: block {e['layer'] - 1} ({e['layer_name']}), γ {e['default_gamma']:g}",
                file=sys.stderr,
            )
        atomic_write_text(
            out / "sweep.json", json.dumps({"search": options, "concepts": rows}, indent=1) + "\n"
        )
        print(f"wrote {len(rows)} erasers and sweep.json to {out}", file=sys.stderr)
    return status
