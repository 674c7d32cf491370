"""Files a visitor uploads: sizes checked before anything is read or unpacked, temp folders never left.

* every uploaded file is refused above :attr:`app.public.Policy.max_upload_bytes` before it is read;
* a zip is refused when its members' uncompressed sizes add up to more than that, before a byte is
  extracted, and extraction stops at the limit too (a zip's header can lie about sizes);
* only the artifact's known member names are written, by base name (no path from an archive is
  trusted), and a name that appears twice is refused;
* the folder an upload was unpacked into is removed when loading it fails (:func:`unpacked`).
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.public import policy
from clear_core.limits import check_file_size, format_bytes

__all__ = ["ARTIFACT_MEMBERS", "MAX_ZIP_ENTRIES", "check_upload", "unpack_artifact", "unpacked"]

ARTIFACT_MEMBERS = ("eraser.json", "eraser.safetensors", "history.jsonl", "concept.jsonl")
MAX_ZIP_ENTRIES = 1000
"""Most entries a zip may list (an exported artifact has four)."""
_CHUNK = 1024**2


def check_upload(path: str | Path, what: str = "upload") -> int:
    """The size of an uploaded file, or a ValueError naming it (its own name) when it is too large."""
    return check_file_size(path, what, policy().max_upload_bytes, shown=Path(path).name)


def _copy_capped(src, dst: Path, budget: int, name: str) -> int:
    """Copy at most ``budget`` bytes; a ValueError when the member holds more."""
    written = 0
    with dst.open("wb") as out:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > budget:
                raise ValueError(
                    f"{name}: the archive unpacks to more than {format_bytes(policy().max_upload_bytes)}"
                )
            out.write(chunk)
    return written


def _unzip(path: Path, dest: Path) -> None:
    limit = policy().max_upload_bytes
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ZIP_ENTRIES:
                raise ValueError(f"{path.name}: {len(infos):,} entries; an exported artifact has four")
            members = [i for i in infos if Path(i.filename).name in ARTIFACT_MEMBERS and not i.is_dir()]
            names = [Path(i.filename).name for i in members]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"{path.name}: {', '.join(twice)} appears more than once in the archive")
            total = sum(i.file_size for i in members)
            if total > limit:
                raise ValueError(
                    f"{path.name}: the archive unpacks to {format_bytes(total)}; the limit is {format_bytes(limit)}"
                )
            budget = limit
            for info in members:
                with zf.open(info) as src:
                    budget -= _copy_capped(src, dest / Path(info.filename).name, budget, path.name)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError):
        raise ValueError(f"{path.name}: not a valid zip archive") from None
    except RuntimeError as err:  # an encrypted member
        raise ValueError(f"{path.name}: cannot unpack ({str(err).splitlines()[0][:80]})") from None


def unpack_artifact(paths: list[str], dest: Path) -> Path:
    """Put an uploaded artifact (the exported zip, or eraser.json + eraser.safetensors) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for raw in paths:
        path = Path(raw)
        check_upload(path, "file")
        suffix = path.suffix.lower()
        if suffix == ".zip":
            _unzip(path, dest)
        elif suffix == ".json":
            shutil.copyfile(path, dest / "eraser.json")
        elif suffix == ".safetensors":
            shutil.copyfile(path, dest / "eraser.safetensors")
        else:
            raise ValueError(
                f"{path.name}: unsupported file; expected the exported .zip, or eraser.json with eraser.safetensors"
            )
    return dest


@contextmanager
def unpacked(paths: list[str], dest: Path) -> Iterator[Path]:
    """:func:`unpack_artifact` into ``dest``, removed again if the block fails (a bad upload leaves nothing)."""
    try:
        yield unpack_artifact(paths, dest)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
