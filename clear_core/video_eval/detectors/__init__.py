"""Detectors behind one interface, and the registry that builds one from a spec string.

Specs (the CLI's ``--detector`` and the app's detector box), options after commas as key=value:

- ``nudenet[:threshold=0.6,classes=BUTTOCKS_EXPOSED+FEMALE_BREAST_EXPOSED]``
- ``faces:REFS[,tolerance=0.6,upsample=1]``  (REFS: a folder with one sub-folder of photos per identity)
- ``clip:PATH[,concept=parachute,negative=a video,threshold=0.5]``  (PATH: a local CLIPModel folder)
- ``testbed:SLUG``  (the CPU testbed's detector, concept slug e.g. ``parachute``)
"""

from __future__ import annotations

from clear_core.video_eval.detectors.base import Box, Detector, FrameDetections, check_frames

__all__ = ["KINDS", "Box", "Detector", "FrameDetections", "check_frames", "make_detector", "parse_spec"]

KINDS = ("nudenet", "faces", "clip", "testbed")
_OPTIONS = {
    "nudenet": {"threshold", "classes"},
    "faces": {"tolerance", "upsample"},
    "clip": {"concept", "negative", "threshold", "template"},
    "testbed": set(),
}


def parse_spec(spec: str) -> tuple[str, str | None, dict[str, str]]:
    """``"faces:/refs,tolerance=0.5"`` -> ``("faces", "/refs", {"tolerance": "0.5"})``."""
    kind, _, rest = spec.strip().partition(":")
    if kind not in KINDS:
        raise ValueError(f"detector {spec!r}: unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    arg, options = None, {}
    for part in rest.split(",") if rest else []:
        key, eq, value = part.partition("=")
        if eq and key.strip() in _OPTIONS[kind]:
            options[key.strip()] = value.strip()
        elif eq and arg is not None:
            raise ValueError(
                f"detector {spec!r}: unknown option {key.strip()!r} for {kind}; "
                f"known: {', '.join(sorted(_OPTIONS[kind])) or 'none'}"
            )
        elif arg is None:
            arg = part.strip()
        else:
            raise ValueError(f"detector {spec!r}: more than one argument ({arg!r}, {part!r})")
    return kind, arg, options


def _float(spec: str, options: dict, key: str, default: float) -> float:
    try:
        return float(options.get(key, default))
    except ValueError:
        raise ValueError(f"detector {spec!r}: {key} must be a number, got {options[key]!r}") from None


def make_detector(spec: str, concept: str | None = None) -> Detector:
    """Build a detector from its spec; ``concept`` fills ``clip``'s concept when the spec has none."""
    kind, arg, options = parse_spec(spec)
    if kind == "nudenet":
        from clear_core.video_eval.detectors.nudenet import (
            DEFAULT_CLASSES,
            DEFAULT_THRESHOLD,
            NudeNetDetector,
        )

        if arg:
            raise ValueError(f"detector {spec!r}: nudenet takes options only (nudenet:threshold=0.6)")
        classes = (
            tuple(c for c in options["classes"].split("+") if c) if "classes" in options else DEFAULT_CLASSES
        )
        return NudeNetDetector(_float(spec, options, "threshold", DEFAULT_THRESHOLD), classes)
    if kind == "faces":
        from clear_core.video_eval.detectors.faces import DEFAULT_TOLERANCE, FaceDetector

        if not arg:
            raise ValueError(f"detector {spec!r}: faces needs a reference folder (faces:REFS)")
        return FaceDetector(
            arg,
            _float(spec, options, "tolerance", DEFAULT_TOLERANCE),
            int(_float(spec, options, "upsample", 1)),
        )
    if kind == "clip":
        from clear_core.video_eval.detectors.clip import ClipDetector

        if not arg:
            raise ValueError(f"detector {spec!r}: clip needs a local CLIPModel folder (clip:PATH)")
        kwargs = {k: options[k] for k in ("negative", "template") if k in options}
        return ClipDetector(
            arg,
            options.get("concept") or concept or "",
            threshold=_float(spec, options, "threshold", 0.5),
            **kwargs,
        )
    from clear_core.video_eval.detectors.testbed import TestbedDetector

    return TestbedDetector(arg or concept or "")
