"""What the probe gate adds to a default run, as ratios measured in one run.

    python -m bench.probe_gate                                # parachute, nudity, andy_warhol
    python -m bench.probe_gate --concepts golf_ball --repeats 3

Each concept is searched once (the default search); then the eraser is built, calibrated and measured
on the held-out prompts from that same search, with and without ``--probe-gate``, alternating
``--repeats`` times, captures uncached both ways. Printed: the seconds of the part after the search
each way, and the whole default run (search + the rest) with the probe gate as a ratio to without.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from clear_core.concepts import load_builtin
from clear_core.config import EraserOptions, SearchConfig
from clear_core.encoders import CaptureConfig, load_encoder
from clear_core.workflow import ClearRun

CONCEPTS = ["parachute", "nudity", "andy_warhol"]


def _run(encoder, concept, options, capture, search_result=None) -> tuple[float, ClearRun]:
    start = time.perf_counter()
    run = ClearRun(encoder, concept, SearchConfig(), options, capture, search_result=search_result)
    for _ in run.run():
        pass
    return time.perf_counter() - start, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concepts", nargs="+", default=CONCEPTS)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    encoder = load_encoder("minilm")
    capture = CaptureConfig(use_cache=False)
    plain, probed = EraserOptions(), replace(EraserOptions(), probe_gate=True)
    totals = {"default": 0.0, "probe gate": 0.0}
    for slug in args.concepts:
        concept = load_builtin(slug)
        whole, first = _run(encoder, concept, plain, capture)
        rest = {"default": [], "probe gate": []}
        for _ in range(args.repeats):
            for name, options in (("default", plain), ("probe gate", probed)):
                seconds, _ = _run(encoder, concept, options, capture, first.result.search)
                rest[name].append(seconds)
        search = whole - min(rest["default"])  # the search's own share of the first, whole run
        best = {name: min(times) for name, times in rest.items()}
        for name in totals:
            totals[name] += search + best[name]
        print(
            f"{slug}: search alone {search:.1f} s; the rest (captures, build, calibration, held-out): "
            f"default {best['default']:.1f} s, probe gate {best['probe gate']:.1f} s (best of {args.repeats}); whole run "
            f"×{(search + best['probe gate']) / (search + best['default']):.2f}",
            flush=True,
        )
    print(
        f"all: whole default run {totals['default']:.1f} s, with the probe gate {totals['probe gate']:.1f} s "
        f"(×{totals['probe gate'] / totals['default']:.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
