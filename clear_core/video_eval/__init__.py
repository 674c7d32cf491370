"""Metrics on generated frames: detectors (NudeNet, dlib faces, CLIP, the testbed), generative rate with
bootstrap intervals over prompts, text-video consistency, no-reference quality and motion, all pinned in
the report's manifest. One metric a module; heavy packages are imported only when used."""

from clear_core.video_eval.detectors import Detector, FrameDetections, make_detector
from clear_core.video_eval.report import EvalConfig, evaluate_folder, format_table, write_report

__all__ = [
    "Detector",
    "EvalConfig",
    "FrameDetections",
    "evaluate_folder",
    "format_table",
    "make_detector",
    "write_report",
]
