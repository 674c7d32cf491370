"""Metrics on generated frames: detectors (NudeNet, dlib faces, CLIP, the testbed), generative rate with
bootstrap intervals over prompts, text-video consistency, no-reference quality and motion, all pinned in
the report's manifest. One metric a module; heavy packages are imported only when used."""

from clear_core.lazy import lazy_names

_WHERE = {
    "Detector": "clear_core.video_eval.detectors",
    "EvalConfig": "clear_core.video_eval.report",
    "FrameDetections": "clear_core.video_eval.detectors",
    "evaluate_folder": "clear_core.video_eval.report",
    "format_table": "clear_core.video_eval.report",
    "make_detector": "clear_core.video_eval.detectors",
    "write_report": "clear_core.video_eval.report",
}


__getattr__ = lazy_names(__name__, _WHERE)


__all__ = [
    "Detector",
    "EvalConfig",
    "FrameDetections",
    "evaluate_folder",
    "format_table",
    "make_detector",
    "write_report",
]
