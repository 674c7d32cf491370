"""Metrics on generated frames: detectors (NudeNet, dlib faces, CLIP, the testbed), generative rate with
bootstrap intervals over prompts, text-video consistency, no-reference quality and motion, all pinned in
the report's manifest. One metric a module; heavy packages are imported only when used."""

import importlib

_WHERE = {
    "Detector": "clear_core.video_eval.detectors",
    "EvalConfig": "clear_core.video_eval.report",
    "FrameDetections": "clear_core.video_eval.detectors",
    "evaluate_folder": "clear_core.video_eval.report",
    "format_table": "clear_core.video_eval.report",
    "make_detector": "clear_core.video_eval.detectors",
    "write_report": "clear_core.video_eval.report",
}


def __getattr__(name: str):
    """Import a submodule only when one of its names is used: the command line's ``--help`` and
    error paths must not pay for torch and diffusers."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


__all__ = [
    "Detector",
    "EvalConfig",
    "FrameDetections",
    "evaluate_folder",
    "format_table",
    "make_detector",
    "write_report",
]
