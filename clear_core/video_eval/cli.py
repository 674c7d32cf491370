"""``python -m clear_core evaluate-videos DIR --detector SPEC [...]``: the report as JSON plus a table.

``clear_core/__main__.py`` registers it with :func:`add_parser` (which sets ``run`` as the parser's
default); ``python -m clear_core.video_eval DIR ...`` runs the same thing on its own.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clear_core.fanout.config import add_ray_arguments, config_from_args
from clear_core.fanout.engine import TasksFailed

__all__ = ["add_parser", "build_parser", "main", "run"]

DEFAULT_REPORT = "video_eval.json"
HELP = "Measure generated videos: generative rate with 95% intervals, consistency, quality, motion -> JSON."


def _configure(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("folder", metavar="DIR", help="folder written by 'generate' (manifest.json + mp4s)")
    p.add_argument(
        "--detector",
        action="append",
        default=[],
        metavar="SPEC",
        help="nudenet[:threshold=0.6,classes=A+B] | faces:REFS[,tolerance=0.6] | "
        "clip:PATH[,concept=C,negative=N] | testbed[:SLUG]; repeat for several (concept and slug default "
        "to the concept of the folder's erasers)",
    )
    p.add_argument("--out", help=f"report path (default: DIR/{DEFAULT_REPORT})")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    p.add_argument("--frames", type=int, default=16, help="frames per video the detectors see (0 = all)")
    p.add_argument("--quality-frames", type=int, default=4, help="frames per video for quality (0 = off)")
    p.add_argument("--no-motion", action="store_true", help="skip optical-flow smoothness and flicker")
    p.add_argument("--clip", help="local CLIPModel folder for text-video consistency")
    p.add_argument("--aesthetic", help="LAION aesthetic MLP as .safetensors (reads --clip's embeddings)")
    p.add_argument("--concept", help="concept for clip: detectors (default: the generation manifest's)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--quiet", action="store_true", help="no table on stdout")
    add_ray_arguments(p, "video")
    return p


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``evaluate-videos`` to an argparse sub-parser collection (``run`` set as its default) and return it."""
    p = _configure(subparsers.add_parser("evaluate-videos", help=HELP.replace("%", "%%"), description=HELP))
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Evaluate, write the report atomically, print the table. ValueError for the user's mistakes."""
    from clear_core.outputs import claim_file
    from clear_core.video_eval.report import EvalConfig, evaluate_folder, format_table, write_report

    fanout = config_from_args(args)
    out = Path(args.out) if args.out else Path(args.folder) / DEFAULT_REPORT
    if out.exists() and not args.overwrite:  # fail before minutes of work, and again when writing
        raise ValueError(f"{out}: report already exists (pass --overwrite to replace it)")
    if args.out and not out.parent.is_dir():
        raise ValueError(f"{out.parent}: output folder not found")
    if not Path(args.folder).is_dir():
        raise ValueError(f"{args.folder}: folder not found")
    claim_file(out, args.overwrite, getattr(args, "exit_stack", None), "--out")  # locked for the run
    config = EvalConfig(
        detectors=list(args.detector),
        frames_per_video=args.frames or None,
        quality_frames=args.quality_frames,
        motion=not args.no_motion,
        clip=args.clip,
        seed=args.seed,
        concept=args.concept,
        aesthetic=args.aesthetic,
    )

    def progress(message: str, fraction: float) -> None:
        print(f"[{fraction:4.0%}] {message}", file=sys.stderr)

    measure = None
    if fanout is not None:  # one task per video on Ray workers, each building the detectors once
        from clear_core.fanout.evaluate import FanoutMeasure

        measure = FanoutMeasure(out, fanout, progress=not args.quiet)
    try:
        report = evaluate_folder(
            args.folder, config, progress=None if args.quiet else progress, measure=measure
        )
    except TasksFailed as err:  # the summary names the videos that failed and why
        return err.report.exit_status("evaluate-videos")
    write_report(report, out, overwrite=args.overwrite)
    if measure is not None:
        measure.cleanup()
        measure.report.exit_status("evaluate-videos")
    if not args.quiet:
        print(format_table(report))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    return _configure(argparse.ArgumentParser(prog="python -m clear_core.video_eval", description=HELP))


def main(argv: list[str] | None = None) -> int:
    from contextlib import ExitStack

    args = build_parser().parse_args(argv)
    try:
        with ExitStack() as stack:
            args.exit_stack = stack  # the report stays locked until the run ends
            return run(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
