"""Writing files so that a crash or a full disk never leaves half a file, and every file gets one mode.

Every artifact and output is written to a temporary file in the destination folder and renamed over
the final path (``os.replace`` is atomic within one file system), so a reader sees the old file or the
new one, never a mix. Files end up with mode ``0o666 & ~umask`` (0644 under the usual umask) whatever
the library that wrote the temporary file used (``tempfile`` creates 0600 files).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["FILE_MODE", "atomic_path", "atomic_write_bytes", "atomic_write_text", "check_writable", "eraser_paths"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()
"""Mode of every file written (read once at import: changing the umask is process-wide and racy)."""


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` when the block succeeds.

    The temporary name keeps ``path``'s suffix (``np.save`` appends ``.npy`` to a path without it).
    On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, FILE_MODE)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def check_writable(path: str | Path, what: str, *, folder: bool) -> Path:
    """Raise a one-line ValueError unless ``path`` could be written (checked before any long work).

    ``folder``: the output is a folder (it must not be a file) rather than a file (not a folder).
    Nothing is created: the nearest existing ancestor must be a writable folder.
    """
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            raise ValueError(f"{what} {path} is a file; expected a folder")
        if not folder and path.is_dir():
            raise ValueError(f"{what} {path} is a folder; expected a file name")
    parent = path if folder and path.is_dir() else path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{what} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {path}: no permission to write in {parent}")
    return path


def eraser_paths(folder: str | Path) -> tuple[Path, Path]:
    """(eraser.json, eraser.safetensors) of an eraser folder (a file of the artifact names its folder),
    or a one-line ValueError saying what is missing; cheap, so commands check it before loading torch."""
    folder = Path(folder)
    if folder.is_file() and folder.name in ("eraser.json", "eraser.safetensors"):
        folder = folder.parent
    elif not folder.exists():
        raise ValueError(f"{folder}: not an eraser folder (no such folder)")
    elif not folder.is_dir():
        raise ValueError(f"{folder}: expected an eraser folder (with eraser.json and eraser.safetensors)")
    json_path, st_path = folder / "eraser.json", folder / "eraser.safetensors"
    for path in (json_path, st_path):
        if not path.is_file():
            raise ValueError(f"{folder}: not an eraser folder ({path.name} missing)")
    return json_path, st_path
