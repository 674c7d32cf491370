"""Step 1, Concept: prompt pairs from a built-in pack, an uploaded file, pasted text or the table; the model.

Every callback validates through :mod:`clear_core.concepts` (so errors carry the library's file/line
message) and returns the table rows, a status line and the next session. A new set of pairs clears
everything computed from the old pairs (:meth:`app.state.Session.with_concept`) and replaces the
concept whole: name, paraphrases and look-alikes never leak from one set of pairs into the next. The
search run and eraser stay, labelled with the pairs they were made for, until they are replaced.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import gradio as gr

from app import models
from app.common import ProgressFn, code_md, escape_md, hide_path, session_status, user_errors
from app.public import check_pairs
from app.state import Session
from app.uploads import check_upload
from clear_core.concepts import (
    ASSETS_DIR,
    ConceptSet,
    builtin_packs,
    load_builtin,
    load_implicit,
    prompt_lines,
)

__all__ = [
    "concept_summary",
    "load_model",
    "load_pack",
    "load_upload",
    "pack_choices",
    "parse_prompt_lines",
    "parse_text",
    "set_keep",
    "use_table",
]

Rows = list[list[str]]


def pack_choices() -> list[tuple[str, str]]:
    """(label, slug) of every built-in pack, grouped by category, from ``assets/concepts/index.json``."""
    slugs = builtin_packs()
    try:
        index = {
            e["slug"]: e for e in json.loads((ASSETS_DIR / "concepts" / "index.json").read_text("utf-8"))
        }
    except (OSError, ValueError, KeyError, TypeError):
        index = {}
    entries = [index.get(s, {"slug": s, "name": s.replace("_", " "), "category": "other"}) for s in slugs]
    entries.sort(key=lambda e: (e.get("category", ""), e.get("name", "").lower()))
    return [(f"{e.get('name', e['slug'])} · {e.get('category', 'other')}", e["slug"]) for e in entries]


def parse_prompt_lines(text: str | None, what: str = "prompts") -> list[str]:
    """One prompt a line, blank lines skipped; a line of only invisible characters or over the length
    limit is an error naming its line (the same rules as prompt files, clear_core.concepts)."""
    return prompt_lines(text or "", what)


def _held_out(implicit_text: str | None, neutral_text: str | None) -> tuple[list[str], list[str]]:
    implicit = parse_prompt_lines(implicit_text, "paraphrases")
    neutral = parse_prompt_lines(neutral_text, "neutral prompts")
    if len(implicit) != len(neutral):
        raise ValueError(
            f"{len(implicit)} held-out paraphrases but {len(neutral)} neutral prompts; "
            "each paraphrase needs its matched neutral prompt on the same line"
        )
    return implicit, neutral


def concept_summary(session: Session) -> str:
    """Markdown describing the session's concept as a whole: its name, where the pairs came from, its
    paraphrases and look-alikes, and what the last change of pairs did not carry over."""
    c = session.concept
    if c is None:
        return "No pairs yet. Pick a built-in pack, upload a `.jsonl`/`.csv` file, paste pairs or fill the table."
    held = (
        f"{len(session.implicit)} held-out paraphrases (used only to measure transfer and leakage)"
        if session.implicit
        else "no held-out paraphrases (add some below to measure transfer)"
    )
    keep = (
        f"look-alikes to keep: {escape_md(', '.join(session.keep))}"
        if session.keep
        else "no look-alikes to keep (name some in Search › Keep)"
    )
    text = f"**{escape_md(c.name)}**: {len(c)} pairs from {session.source}; {held}; {keep}."
    if session.dropped:
        text += f" Not carried over from the previous pairs: {'; '.join(session.dropped)}."
    return text


def _rows(concept: ConceptSet) -> Rows:
    return [[p.positive, p.negative] for p in concept.pairs]


ConceptOutputs = tuple[Rows, str, str, str, str, str, str, Session]
"""(table rows, name, paraphrases, neutral prompts, summary, status line, Keep box, session): every
field of the concept, so that new pairs replace all of them on the page at once."""


def _outputs(new: Session) -> ConceptOutputs:
    return (
        _rows(new.concept),
        new.concept.name,
        "\n".join(new.implicit),
        "\n".join(new.neutral),
        concept_summary(new),
        session_status(new),
        ", ".join(new.keep),
        new,
    )


def _new_concept(
    session: Session,
    concept: ConceptSet,
    source: str,
    name_text: str | None,
    implicit_text: str | None,
    neutral_text: str | None,
) -> Session:
    """Pairs from a file or a paste start a new concept. A field of the form is carried into it only
    when the visitor changed it since the last pairs loaded (a name typed, paraphrases written for
    these pairs); a field still holding the previous concept's value belonged to those pairs and is
    dropped, and the summary says so. Look-alikes follow the name (a pack's built-in list, else none)."""
    from clear_core.lookalikes import default_preserve

    old = session.concept
    old_name = old.name if old is not None else ""
    typed = (name_text or "").strip()
    dropped = []
    if typed and typed != old_name:
        concept = dataclasses.replace(concept, name=typed)
    elif old is not None and typed == old_name and concept.name != old_name:
        dropped.append(f"the name *{escape_md(old_name)}*")
    implicit, neutral = _held_out(implicit_text, neutral_text)
    if old is not None and implicit and (implicit, neutral) == (session.implicit, session.neutral):
        dropped.append(f"{len(implicit)} paraphrases")
        implicit, neutral = [], []
    keep = tuple(default_preserve(concept.name))
    if session.keep and keep != session.keep:
        dropped.append(f"look-alikes {escape_md(', '.join(session.keep))}")
    return session.with_concept(concept, source, implicit, neutral, keep, tuple(dropped))


def load_pack(slug: str, session: Session) -> ConceptOutputs:
    """A built-in pack with its own paraphrases and look-alikes (see :data:`ConceptOutputs`)."""
    from clear_core.lookalikes import default_preserve

    with user_errors():
        if not slug:
            raise ValueError("choose a built-in concept pack first")
        concept = load_builtin(slug)
        implicit, neutral = load_implicit(slug)
    new = session.with_concept(concept, "the built-in pack", implicit, neutral, tuple(default_preserve(slug)))
    return _outputs(new)


def load_upload(
    path: str | None, name_text: str, implicit_text: str, neutral_text: str, session: Session
) -> ConceptOutputs:
    """An uploaded ``.jsonl``/``.csv`` file, named after the file unless a new name was typed
    (see :func:`_new_concept` and :data:`ConceptOutputs`)."""
    with user_errors():
        if not path:
            raise ValueError("no file uploaded; expected a .jsonl or .csv concept file")
        try:
            check_upload(path, "concept file")  # before a byte is read
            concept = ConceptSet.load(path)
        except ValueError as err:  # the user's file name, not the server's /tmp/gradio/<hash>/ path
            raise ValueError(hide_path(str(err), path, Path(path).name)) from None
        check_pairs(len(concept), Path(path).name)  # a public server's cap, before any capture
        new = _new_concept(session, concept, code_md(Path(path).name), name_text, implicit_text, neutral_text)
    return _outputs(new)


def parse_text(
    text: str, fmt: str, name_text: str, implicit_text: str, neutral_text: str, session: Session
) -> ConceptOutputs:
    """Pasted JSONL or CSV text, named "custom" unless a new name was typed (see :func:`_new_concept`
    and :data:`ConceptOutputs`)."""
    with user_errors():
        concept = ConceptSet.from_text(text or "", fmt=fmt, name="custom", source="pasted text")
        check_pairs(len(concept), "pasted text")
        new = _new_concept(session, concept, "pasted text", name_text, implicit_text, neutral_text)
    return _outputs(new)


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def use_table(
    rows: Rows | None, name: str, implicit_text: str, neutral_text: str, session: Session
) -> tuple[str, str, str, Session]:
    """The (edited) table, name and paraphrases as the session's concept: (summary, status, Keep box,
    session). They are edits of the concept on show, so all of them are taken as they stand; the
    look-alikes stay unless the name changed (then: the new name's built-in list, if any).

    Fully empty rows are skipped (the table editor adds one); a half-filled row is an error that names
    its row number, in the library's words.
    """
    from clear_core.lookalikes import default_preserve

    with user_errors():
        numbered = []
        for i, row in enumerate(rows or [], start=1):
            cells = [_cell(v) for v in (list(row) + ["", ""])[:2]]
            if any(c.strip() for c in cells):
                numbered.append((i, cells[0], cells[1], ()))
        concept = ConceptSet.from_pairs(numbered, name=(name or "custom").strip() or "custom", source="table")
        check_pairs(len(concept), "table")
        implicit, neutral = _held_out(implicit_text, neutral_text)
    old = session.concept
    same_name = old is not None and old.name == concept.name
    keep = session.keep if same_name else tuple(default_preserve(concept.name))
    dropped = () if same_name or not session.keep else (f"look-alikes {escape_md(', '.join(session.keep))}",)
    new = session.with_concept(concept, "the table", implicit, neutral, keep, dropped)
    return concept_summary(new), session_status(new), ", ".join(new.keep), new


def set_keep(keep_text: str | None, session: Session) -> tuple[str, Session]:
    """The Keep box edited: the concept's look-alikes, as the summary shows them (checked when the
    search starts)."""
    names = tuple(n.strip() for n in (keep_text or "").split(",") if n.strip())
    new = session.with_(keep=names, dropped=())
    return concept_summary(new), new


class _TqdmProgress(gr.Progress):
    """``gr.Progress(track_tqdm=True)`` that does not patch tqdm when this module is imported.

    Gradio reads ``track_tqdm`` when the event runs and patches tqdm then (in the server process), so
    the weight-loading bars of transformers / huggingface_hub become the UI's bar, while importing the
    app (in a test run, say) leaves tqdm alone.
    """

    def __init__(self) -> None:
        super().__init__(track_tqdm=False)
        self.track_tqdm = True


def load_model(
    name: str, session: Session, progress: ProgressFn = _TqdmProgress()
) -> tuple[str, str, Session]:
    """Load (or reuse) a text encoder for this session: (model summary, status, session)."""
    with user_errors():
        name = models.clean_name(name)
        progress(0.05, desc=f"loading {name}…")
        encoder = models.get_encoder(name)
    new = session.with_(model=name, layer_map=None if name != session.model else session.layer_map)
    info = (
        f"**{escape_md(encoder.model_id)}** ready: {encoder.n_blocks} blocks ({encoder.layout.family} family), "
        f"d_model {encoder.d_model}, revision {code_md(encoder.revision)}."
    )
    return info, session_status(new), new
