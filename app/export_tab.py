"""Step 6, Export: download the eraser artifact and the run report; upload an artifact to continue.

The artifact is a zip of the folder :func:`clear_core.workflow.save_run` writes (``eraser.safetensors``,
``eraser.json``, ``history.jsonl``) plus the concept's pairs as ``concept.jsonl``, so that the report's
command line reproduces the run. Uploads go through :meth:`clear_core.erasure.Eraser.load` (safetensors
and JSON only, never pickle) and are checked against the session's model.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

import gradio as gr

from app.common import (
    ProgressFn,
    block_label,
    encoder_for,
    hide_path,
    require_eraser,
    session_status,
    user_errors,
)
from app.preview_tab import calibration_chart
from app.report import build_report, render_html, report_figures
from app.search_tab import GAMMA_MAX
from app.state import Session

__all__ = ["MAX_UPLOAD_BYTES", "export_run", "load_eraser", "unpack_upload"]

MAX_UPLOAD_BYTES = 8 * 1024**3
"""Largest uncompressed artifact accepted (an SAE for d_model 4096 × 131,072 features is ~4 GB)."""
_MEMBERS = ("eraser.json", "eraser.safetensors", "history.jsonl", "concept.jsonl")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "concept"


def export_run(session: Session, progress: ProgressFn = gr.Progress()) -> tuple[list[str], str, Session]:
    """Write the artifact zip, report.json and report.html: (file paths, message, session)."""
    with user_errors():
        from clear_core.workflow import save_run

        eraser = require_eraser(session)
        new, root = session.folder()
        out = root / f"export-{time.strftime('%Y%m%d-%H%M%S')}-{time.perf_counter_ns() % 10**6}"
        folder = out / "eraser"
        progress(0.1, desc="saving the eraser")
        if new.run is not None and new.run.eraser is eraser:
            save_run(new.run, folder)
        else:
            eraser.save(folder)
        if new.concept is not None and new.concept.name == eraser.concept:
            new.concept.save(folder / "concept.jsonl")
        archive = out / f"clear-eraser-{_slug(eraser.concept)}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(folder.iterdir()):
                zf.write(path, path.name)
        progress(0.5, desc="writing the report")
        report = build_report(new)
        json_path = out / "report.json"
        json_path.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
        html_path = out / "report.html"
        html_path.write_text(render_html(report, report_figures(new)), encoding="utf-8")
    size = archive.stat().st_size / 2**20  # binary megabytes, as the file list below counts them
    message = (
        f"Wrote `{archive.name}` ({size:.1f} MiB: eraser.safetensors, eraser.json"
        f"{', history.jsonl' if (folder / 'history.jsonl').exists() else ''}"
        f"{', concept.jsonl' if (folder / 'concept.jsonl').exists() else ''}), `report.json` and `report.html`."
    )
    return [str(archive), str(json_path), str(html_path)], message, new


def unpack_upload(paths: list[str], dest: Path) -> Path:
    """Put an uploaded artifact (a zip, or eraser.json + eraser.safetensors) into ``dest``.

    Only the known member names are written, by base name (no path from the archive is trusted), and
    a zip whose content would exceed :data:`MAX_UPLOAD_BYTES` is refused.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for raw in paths:
        path = Path(raw)
        if path.suffix.lower() == ".zip":
            try:
                with zipfile.ZipFile(path) as zf:
                    infos = [i for i in zf.infolist() if Path(i.filename).name in _MEMBERS and not i.is_dir()]
                    if sum(i.file_size for i in infos) > MAX_UPLOAD_BYTES:
                        raise ValueError(
                            f"{path.name}: the archive is larger than {MAX_UPLOAD_BYTES / 1024**3:.0f} GB"
                        )
                    for info in infos:
                        with zf.open(info) as src, (dest / Path(info.filename).name).open("wb") as dst:
                            shutil.copyfileobj(src, dst)
            except zipfile.BadZipFile:
                raise ValueError(f"{path.name}: not a valid zip archive") from None
        elif path.suffix.lower() == ".json":
            shutil.copyfile(path, dest / "eraser.json")
        elif path.suffix.lower() == ".safetensors":
            shutil.copyfile(path, dest / "eraser.safetensors")
        else:
            raise ValueError(
                f"{path.name}: unsupported file; expected the exported .zip, or eraser.json with eraser.safetensors"
            )
    return dest


def load_eraser(files: list[str] | str | None, session: Session) -> tuple[str, Any, float, str, Session]:
    """Continue from an uploaded artifact: (message, calibration plot, γ slider, status, session)."""
    with user_errors():
        from clear_core.erasure import Eraser

        paths = [files] if isinstance(files, str) else list(files or [])
        if not paths:
            raise ValueError(
                "no file uploaded; expected the exported .zip, or eraser.json with eraser.safetensors"
            )
        new, root = session.folder()
        name = ", ".join(Path(p).name for p in paths)
        folder = root / f"upload-{time.perf_counter_ns()}"
        try:
            unpack_upload(paths, folder)
            eraser = Eraser.load(folder)
            eraser.check_encoder(encoder_for(new))
        except ValueError as err:  # name the user's file, not the server's temp folder
            raise ValueError(hide_path(str(err), folder, f"uploaded {name}")) from None
    new = new.with_(eraser=eraser, eraser_source=f"uploaded {name}", run=None, run_settings={}, features=None)
    message = (
        f"Loaded the **{eraser.kind}** eraser for *{eraser.concept}* at "
        f"{block_label(eraser.layer, eraser.layer_name)}, default γ = {eraser.gamma:g}. Preview it in the Erase tab."
    )
    return message, calibration_chart(eraser), min(eraser.gamma, GAMMA_MAX), session_status(new), new
