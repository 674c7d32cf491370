"""Progress of a long command-line step: a tqdm bar on a terminal, plain lines on stderr otherwise.

Every step of the command line that can take more than a few seconds reports through
:func:`progress_lines`, so a terminal shows a bar and a log shows the run is alive (one line per tenth
of the step and per new stage, with the seconds since it started).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["ProgressFn", "progress_lines"]

ProgressFn = Callable[[float, str], None]
"""``(fraction in [0, 1], message)``."""


@contextmanager
def progress_lines(desc: str) -> Iterator[ProgressFn]:
    """A ``(fraction, message)`` callback for the step ``desc`` (see the module docstring)."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        with tqdm(total=100, desc=desc, unit="%") as bar:

            def update(fraction: float, message: str) -> None:
                bar.n = int(100 * fraction)
                bar.set_postfix_str(message, refresh=True)

            yield update
        return
    start, last = time.monotonic(), {"tenth": -1, "stage": ""}

    def update(fraction: float, message: str) -> None:
        tenth, stage = int(10 * fraction), message.split(":")[0].split(" ")[0]
        if tenth > last["tenth"] or stage != last["stage"]:
            last.update(tenth=tenth, stage=stage)
            elapsed = time.monotonic() - start
            print(f"{desc}: {100 * fraction:3.0f}% {elapsed:6.1f} s  {message}", file=sys.stderr, flush=True)

    yield update
