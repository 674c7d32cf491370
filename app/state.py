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

__all__ = [
    "DEFAULT_MODEL",
    "Control",
    "Session",
    "cleanup_session",
    "new_session",
    "pairs_key",
    "result_key",
]

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
    keep: tuple[str, ...] = ()
    """Look-alikes to keep (the Search tab's Keep box): a pack's built-in list when its pairs load,
    none for other pairs, then whatever the visitor writes there."""
    dropped: tuple[str, ...] = ()
    """What the last change of pairs did not carry over from the previous concept ("name",
    "paraphrases", "look-alikes"), said once in the concept summary."""
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
    eraser_pairs: str | None = None
    """:func:`pairs_key` of the pairs the eraser was searched on (None: uploaded, unknown)."""
    features: Any = None
    """Cached analysis.features.FeatureTable of ``eraser`` (None until the Features tab runs)."""
    baseline: Any = None
    """The Erase tab's cached :class:`clear_core.measure.Measurer`: the unerased outputs of the
    evaluation sample, the leakage probe and every γ measured so far, so that moving γ encodes only
    the erased side. Valid for one model, eraser and sample (``Measurer.key``)."""
    workdir: str | None = None
    """Private folder for exports and uploads (deleted when the session ends)."""
    control: Control = field(default_factory=Control)
    """Stop requests; shared by every copy made with :meth:`with_`."""

    def with_(self, **changes: Any) -> Session:
        """A shallow copy with ``changes`` applied (the session passed in stays as it was)."""
        return dataclasses.replace(self, **changes)

    def with_concept(
        self,
        concept: ConceptSet,
        source: str,
        implicit: list[str],
        neutral: list[str],
        keep: tuple[str, ...],
        dropped: tuple[str, ...] = (),
    ) -> Session:
        """New pairs, replacing the whole concept at once: its name, paraphrases and look-alikes come
        only from the arguments, never from the previous pairs, and every result computed from the
        previous pairs (layer map, feature table, evaluation baseline) is dropped. The eraser stays,
        labelled with the pairs it was made for (:meth:`eraser_matches`)."""
        return self.with_(
            concept=concept,
            source=source,
            implicit=list(implicit),
            neutral=list(neutral),
            keep=tuple(keep),
            dropped=tuple(dropped),
            layer_map=None,
            features=None,
            baseline=None,
        )

    def with_eraser(self, eraser: Eraser, source: str, pairs: str | None, **changes: Any) -> Session:
        """A new eraser: results computed from the previous one (feature table, evaluation scores)
        are dropped."""
        return self.with_(
            eraser=eraser, eraser_source=source, eraser_pairs=pairs, features=None, baseline=None, **changes
        )

    def eraser_matches(self) -> bool | None:
        """Whether the eraser was made for the loaded pairs: True (same pairs), False (another concept
        or other pairs), None (no eraser or no pairs; an uploaded eraser of the same name counts as
        matching, its pairs being unknown)."""
        if self.eraser is None or self.concept is None:
            return None
        if self.eraser.concept != self.concept.name:
            return False
        return self.eraser_pairs is None or self.eraser_pairs == pairs_key(self.concept)

    def folder(self) -> tuple[Session, Path]:
        """This session's private folder, created on first use (returns the updated session too)."""
        if self.workdir and Path(self.workdir).is_dir():
            return self, Path(self.workdir)
        path = Path(tempfile.mkdtemp(prefix="clear-workbench-"))
        return self.with_(workdir=str(path)), path


def pairs_key(concept: ConceptSet) -> str:
    """A digest of a concept's name and pairs (equal keys: the same pairs)."""
    import hashlib
    import json

    payload = [concept.name, [[p.positive, p.negative] for p in concept.pairs]]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:16]


def result_key(session: Session, prompt: str, gamma: float, seed: int | None = None) -> dict[str, Any]:
    """What a result panel was computed from: the concept, the eraser, γ, the seed and the prompt.

    Kept beside each group of panels (a ``gr.State`` of the Erase tab) so that the page can say what
    they show and mark them stale when any of these changes (:func:`app.preview_tab.stale_note`)."""
    return {
        "concept": session.concept.name if session.concept is not None else None,
        "pairs": pairs_key(session.concept) if session.concept is not None else None,
        "eraser": session.eraser.digest()[:16] if session.eraser is not None else None,
        "gamma": None if gamma is None else float(gamma),
        "seed": None if seed is None else int(seed),
        "prompt": prompt,
    }


def new_session() -> Session:
    """``gr.State`` factory: a fresh session for every visitor (a function, not the class, because
    Gradio serialises a dataclass *type* given as a value)."""
    return Session()


def cleanup_session(session: Session | None) -> None:
    """``gr.State`` delete callback: remove the session's private folder."""
    if isinstance(session, Session) and session.workdir:
        shutil.rmtree(session.workdir, ignore_errors=True)
