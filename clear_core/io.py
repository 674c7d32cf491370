"""Writing files so that a crash, a full disk or a size limit never leaves half a file under its name.

Every artifact and output is written to a temporary file in the destination folder and renamed over
the final path (``os.replace`` is atomic within one file system), so a reader sees the old file or the
new one, never a mix. Before the rename the temporary file is flushed to disk (``fsync``) and its size
checked: against the byte count when the bytes are known, and against the header of ``.npy`` and
``.safetensors`` files (``np.save`` and some C writers ignore a short write: under a file-size limit
``np.save`` leaves 1,024 bytes of a larger array and raises nothing). A short file is an error and
nothing is renamed. Files end up with mode ``0o666 & ~umask`` (0644 under the usual umask) whatever
the library that wrote the temporary file used (``tempfile`` creates 0600 files).

Temporary names carry the writer's process id (``.NAME.clear-tmp-PID-XXXX.SUFFIX``):
:func:`remove_stale_temporaries` deletes those of processes that no longer run (a run killed with
SIGKILL cannot clean up after itself), never those of a live one. :func:`output_lock` keeps two runs
from writing into one output at the same time.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import json
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "FILE_MODE",
    "TEMP_MARK",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_writable",
    "eraser_paths",
    "output_lock",
    "publish",
    "remove_stale_temporaries",
    "temp_path",
    "verify_written",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()
"""Mode of every file written (read once at import: changing the umask is process-wide and racy)."""
TEMP_MARK = ".clear-tmp-"
"""Part of every temporary name this library makes (followed by the writer's pid)."""
_TEMP = re.compile(r"^\..*\.clear-tmp-(\d+)-")


def temp_path(path: str | Path, folder: bool = False) -> Path:
    """A new empty temporary file (or folder) beside ``path``, named after it and this process.

    The name keeps ``path``'s suffix (``np.save`` appends ``.npy`` to a path without it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}{TEMP_MARK}{os.getpid()}-"
    if folder:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=path.parent))
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=path.suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _short(final: Path, size: int, expected: int) -> ValueError:
    return ValueError(
        f"{final}: the write was cut short ({size:,} of {expected:,} bytes reached the disk: disk full or "
        "a file-size limit?); nothing was written under that name"
    )


def _expected_size(tmp: Path) -> int | None:
    """The size a ``.npy`` or ``.safetensors`` file must have, from its own header (None: other files)."""
    suffix = tmp.suffix.lower()
    with open(tmp, "rb") as f:
        if suffix == ".npy":
            import numpy as np

            version = np.lib.format.read_magic(f)
            reader = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = reader(f)
            if dtype.hasobject:
                return None
            count = 1
            for n in shape:
                count *= n
            return f.tell() + count * dtype.itemsize
        if suffix == ".safetensors":
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
            ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
            return 8 + n + max(ends, default=0)
    return None


def verify_written(
    tmp: str | Path, final: str | Path | None = None, expected_size: int | None = None
) -> None:
    """Flush ``tmp`` to disk and check it is whole: ``expected_size`` bytes when given, else what its
    header says for ``.npy`` / ``.safetensors``; a ValueError naming ``final`` when it is not."""
    tmp = Path(tmp)
    final = Path(final) if final is not None else tmp
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    size = tmp.stat().st_size
    if expected_size is None:
        try:
            expected_size = _expected_size(tmp)
        except (ValueError, OSError, KeyError, TypeError, struct.error, json.JSONDecodeError):
            raise ValueError(
                f"{final}: the write was cut short (only {size:,} bytes reached the disk: disk full or a "
                "file-size limit?); nothing was written under that name"
            ) from None
    if expected_size is not None and size != expected_size:
        raise _short(final, size, expected_size)


def publish(tmp: str | Path, path: str | Path, expected_size: int | None = None) -> Path:
    """Verify ``tmp`` (:func:`verify_written`), give it :data:`FILE_MODE` and rename it onto ``path``."""
    verify_written(tmp, path, expected_size)
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)
    return Path(path)


@contextmanager
def atomic_path(path: str | Path, expected_size: int | None = None) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; verified and renamed onto ``path`` when the block
    succeeds. On an exception (or a short write) the temporary file is removed and ``path`` untouched."""
    path = Path(path)
    tmp_path = temp_path(path)
    try:
        yield tmp_path
        publish(tmp_path, path, expected_size)
    except OSError as err:
        tmp_path.unlink(missing_ok=True)
        if err.filename is None and err.errno is not None:  # a failed write() names no file: name it
            raise OSError(err.errno, err.strerror, str(path)) from None
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    with atomic_path(path, expected_size=len(data)) as tmp, open(tmp, "wb") as f:
        f.write(data)
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


# ------------------------------------------------------------------------------ stale temporaries
def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(folder: str | Path, recursive: bool = True, of: str | None = None) -> list[Path]:
    """Delete this library's temporary files and folders in ``folder`` whose writer no longer runs.

    Only names made by :func:`temp_path` are touched (``.NAME.clear-tmp-PID-...``), and only when
    process PID is gone; ``of``: only the temporaries of that NAME. Returns what was removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    pattern = f".{glob.escape(of)}{TEMP_MARK}*" if of is not None else ".*"
    entries = folder.rglob(pattern) if recursive else folder.glob(pattern)
    for entry in sorted(entries, key=lambda p: len(p.parts), reverse=True):
        m = _TEMP.match(entry.name)
        if not m or _alive(int(m.group(1))):
            continue
        with contextlib.suppress(FileNotFoundError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


# ------------------------------------------------------------------------------------ output lock
@contextmanager
def output_lock(path: str | Path, what: str = "--out") -> Iterator[Path]:
    """Hold an exclusive lock on the output ``path`` (a file or a folder) for the block.

    The lock is an ``flock`` on ``.NAME.clear-lock`` beside ``path``: the kernel releases it when the
    process ends however it ends, so a killed run never leaves a stale lock. A second run that asks
    for the same output while the first holds it gets a one-line ValueError at once.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.parent / f".{path.name}.clear-lock"
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                holder = f" (pid {int(os.pread(fd, 32, 0).decode().strip())})"
            os.close(fd)
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise ValueError(
                f"{what} {path}: another run is writing there{holder}; wait for it to finish or choose "
                f"another {what}"
            ) from None
        try:  # the file may have been removed by the run that held it just before: lock the new one
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)
