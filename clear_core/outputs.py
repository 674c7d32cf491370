"""Claiming a command's output for one run: checked, locked, cleared of stale temporaries, or refused.

Every writing command (``embed``, ``search``, ``analyze``, ``generate``, ``evaluate-videos``) claims its
output after its cheap checks and before any model loads:

1. the path is writable and of the right kind (a folder, or a file name);
2. an exclusive lock on it is taken for the rest of the run (clear_core/io.py ``output_lock``), so a
   second run into the same output is refused in one line instead of both passing the "empty folder"
   check and overwriting each other;
3. temporaries left there by a run that was killed (``.NAME.clear-tmp-PID-*`` of a process that no
   longer runs) are removed: inside an output folder, and those named after the output beside it;
4. only then is the output checked to be empty (a folder: no file in it, empty sub-folders left by a
   killed run do not count) or absent (a file) unless ``overwrite``.

The lock is held until the ``ExitStack`` given is closed (the CLI's :func:`clear_core.__main__.main`
closes it when the command returns, fails or is interrupted); with no stack nothing is locked.

:func:`write_whole` is how a folder output is written: into a temporary folder beside it, every file
verified on disk, then each moved in with ``os.replace``; a failure (a short write, SIGTERM, an
error halfway through a grid of videos) leaves nothing new under the output's name.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from clear_core.io import (
    check_writable,
    output_lock,
    publish,
    remove_stale_temporaries,
    temp_path,
    verify_written,
)

__all__ = ["claim_file", "claim_folder", "write_whole"]


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
        if not overwrite and any(not p.is_dir() or p.is_symlink() for p in out.rglob("*")):  # files only
            raise ValueError(f"{out} exists and is not empty; pass --overwrite or choose another {what}")
    return out


def claim_file(path: str | Path, overwrite: bool, stack: ExitStack | None, what: str = "--out") -> Path:
    """Claim the output file ``path`` (see the module docstring); returns it."""
    out = check_writable(path, what, folder=False)
    _claim(out, stack, what)
    if out.exists() and not overwrite:
        raise ValueError(f"{out} exists; pass --overwrite or choose another {what}")
    return out


def write_whole(out: str | Path, write: Callable[[Path], list[Path] | None]) -> list[Path]:
    """Run ``write(folder)`` into a temporary folder beside ``out``, then move every file it wrote into
    ``out`` (the paths it returns, or every file in the folder when it returns None); returns the
    final paths. A file in ``out`` is the old one or the new one, never half of one."""
    out = Path(out)
    tmp = temp_path(out, folder=True)
    try:
        try:
            written = write(tmp)
        except OSError as err:  # name the file the user asked for, not its temporary twin
            name = str(err.filename or "")
            if err.errno is not None and name.startswith(str(tmp) + "/"):
                raise OSError(err.errno, err.strerror, str(out / Path(name).relative_to(tmp))) from None
            raise
        files = (
            sorted(p for p in tmp.rglob("*") if p.is_file())
            if written is None
            else [Path(p) for p in written]
        )
        for path in files:  # every file whole on disk before any of them is moved
            verify_written(path, out / path.relative_to(tmp))
        final = []
        for path in files:
            target = out / path.relative_to(tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            publish(path, target)
            final.append(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
