"""Per-user session state: everything one visitor has built, held in a ``gr.State``.

Nothing here lives at module level: Gradio gives every browser tab (and every ``gradio_client``
session) its own :class:`Session`. Callbacks treat a session as a value: they build the next one with
:meth:`Session.with_` and return it only once their work has succeeded, so a failure in one step
leaves the pairs and results of the previous steps untouched. The one mutable part is
:class:`Control`, shared by every copy of a session, through which a "Stop" button reaches the
long job that is running for the same visitor.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clear_core.concepts import ConceptSet

if TYPE_CHECKING:  # heavy modules: imported lazily by the callbacks (see app/layout.py)
    from analysis.layer_map import LayerMapResult
    from clear_core.erasure import Eraser
    from clear_core.workflow import RunResult

__all__ = ["DEFAULT_MODEL", "Control", "Session", "cleanup_session", "new_session"]

DEFAULT_MODEL = "minilm"
"""The embedded encoder (clear_core.encoders.DEFAULT_MODEL, repeated here to avoid importing torch)."""


@dataclass
class Control:
    """Stop requests for a session's long jobs ("layer_map", "search"); mutated in place."""

    stopping: set[str] = field(default_factory=set)
    """Jobs asked to stop; a job clears its own entry when it starts."""

    def request_stop(self, job: str) -> None:
        self.stopping.add(job)

    def should_stop(self, job: str) -> bool:
        return job in self.stopping

    def reset(self, job: str) -> None:
        self.stopping.discard(job)


@dataclass
class Session:
    """One visitor's pairs, model choice and results (see the module docstring)."""

    model: str = DEFAULT_MODEL
    """Text encoder name: "minilm", a Hugging Face id or a local folder."""
    concept: ConceptSet | None = None
    """The validated prompt pairs."""
    source: str = ""
    """Where the pairs came from ("built-in pack", a file name, "pasted text", "table")."""
    implicit: list[str] = field(default_factory=list)
    """Held-out paraphrases that evoke the concept without naming it (evaluation only)."""
    neutral: list[str] = field(default_factory=list)
    """The same scenes without the concept, line by line with ``implicit``."""
    layer_map: LayerMapResult | None = None
    """The last (possibly partial) layer map of ``concept``."""
    run: RunResult | None = None
    """The last search run (None after an eraser is uploaded)."""
    run_settings: dict[str, Any] = field(default_factory=dict)
    """What that run was asked to do: search config, eraser options (for the report)."""
    eraser: Eraser | None = None
    """The eraser being inspected / previewed / exported (from the run or uploaded)."""
    eraser_source: str = ""
    """"search" or "uploaded <file name>"."""
    features: Any = None
    """Cached analysis.features.FeatureTable of ``eraser`` (None until the Features tab runs)."""
    baseline: Any = None
    """Cached (key, clear_core.evaluation.Baseline) of the preview: the original outputs of its
    evaluation prompts and the leakage probe, so that moving γ re-encodes only the erased side. The
    key names the model and every prompt set; a change of either rebuilds it."""
    workdir: str | None = None
    """Private folder for exports and uploads (deleted when the session ends)."""
    control: Control = field(default_factory=Control)
    """Stop requests; shared by every copy made with :meth:`with_`."""

    def with_(self, **changes: Any) -> Session:
        """A shallow copy with ``changes`` applied (the session passed in stays as it was)."""
        return dataclasses.replace(self, **changes)

    def folder(self) -> tuple[Session, Path]:
        """This session's private folder, created on first use (returns the updated session too)."""
        if self.workdir and Path(self.workdir).is_dir():
            return self, Path(self.workdir)
        path = Path(tempfile.mkdtemp(prefix="clear-workbench-"))
        return self.with_(workdir=str(path)), path


def new_session() -> Session:
    """``gr.State`` factory: a fresh session for every visitor (a function, not the class, because
    Gradio serialises a dataclass *type* given as a value)."""
    return Session()


def cleanup_session(session: Session | None) -> None:
    """``gr.State`` delete callback: remove the session's private folder."""
    if isinstance(session, Session) and session.workdir:
        shutil.rmtree(session.workdir, ignore_errors=True)
