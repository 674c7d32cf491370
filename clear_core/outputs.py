"""Claiming a command's output for one run: checked, locked, cleared of stale temporaries, or refused.

Every writing command (``embed``, ``search``, ``analyze``, ``generate``, ``evaluate-videos``) claims its
output after its cheap checks and before any model loads:

1. the path is writable and of the right kind (a folder, or a file name);
2. an exclusive lock on it is taken for the rest of the run (clear_core/io.py ``output_lock``), so a
   second run into the same output is refused in one line instead of both passing the "empty folder"
   check and overwriting each other;
3. temporaries left there by a run that was killed (``.NAME.clear-tmp-PID-*`` of a process that no
   longer runs) are removed: inside an output folder, and those named after the output beside it;
4. only then is the output checked to be empty (a folder) or absent (a file) unless ``overwrite``.

The lock is held until the ``ExitStack`` given is closed (the CLI's :func:`clear_core.__main__.main`
closes it when the command returns, fails or is interrupted); with no stack nothing is locked.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from clear_core.io import check_writable, output_lock, remove_stale_temporaries

__all__ = ["claim_file", "claim_folder"]


def _claim(path: Path, stack: ExitStack | None, what: str) -> None:
    if stack is not None:
        stack.enter_context(output_lock(path, what))
    remove_stale_temporaries(path.parent, recursive=False, of=path.name)


def claim_folder(path: str | Path, overwrite: bool, stack: ExitStack | None, what: str = "--out") -> Path:
    """Claim the output folder ``path`` (see the module docstring); returns it."""
    out = check_writable(path, what, folder=True)
    _claim(out, stack, what)
    if out.is_dir():
        remove_stale_temporaries(out)
        if any(out.iterdir()) and not overwrite:
            raise ValueError(f"{out} exists and is not empty; pass --overwrite or choose another {what}")
    return out


def claim_file(path: str | Path, overwrite: bool, stack: ExitStack | None, what: str = "--out") -> Path:
    """Claim the output file ``path`` (see the module docstring); returns it."""
    out = check_writable(path, what, folder=False)
    _claim(out, stack, what)
    if out.exists() and not overwrite:
        raise ValueError(f"{out} exists; pass --overwrite or choose another {what}")
    return out
