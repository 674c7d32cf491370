"""Helpers every tab's callbacks share: error translation, preconditions, the session status line.

Errors pass through :func:`app.public.scrub` (no server path reaches a visitor of a public server), and
text a visitor chose (a concept name, a file name, an uploaded eraser's concept) goes into Markdown
only through :func:`escape_md` / :func:`code_md`, so it shows as the characters typed, never as a link,
markup or HTML.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from app import models, public
from app.state import Session

if TYPE_CHECKING:
    from clear_core.encoders import TextEncoder
    from clear_core.erasure import Eraser

__all__ = [
    "ProgressFn",
    "block_label",
    "checked",
    "code_md",
    "escape_md",
    "encoder_for",
    "hide_path",
    "model_tick",
    "require_concept",
    "warn_if_small",
    "require_eraser",
    "session_status",
    "user_errors",
]

log = logging.getLogger("clear_workbench")
ProgressFn = Callable[..., object]
"""``gr.Progress()`` or any callable taking (fraction, desc=...) (tests pass a recorder)."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Show library errors as ``gr.Error`` with the library's own message (STYLE.md, "Bad input").

    A ValueError is the user's to fix and is shown verbatim; anything else is a bug, shown with its
    type so that the page never just freezes, and logged with its traceback.
    """
    try:
        yield
    except gr.Error:
        raise
    except ValueError as err:
        raise gr.Error(public.scrub(str(err)), print_exception=False) from None
    except Exception as err:
        log.exception("unexpected error in a workbench callback")
        if public.policy().public:  # a visitor learns nothing about the server from a bug
            raise gr.Error(f"unexpected {type(err).__name__}; the details are in the server's log") from None
        raise gr.Error(f"unexpected {type(err).__name__}: {err}") from None


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>:$])")


def escape_md(text: object) -> str:
    """``text`` as literal Markdown: HTML escaped, Markdown punctuation backslashed, one line."""
    flat = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def code_md(text: object) -> str:
    """``text`` as an inline code span (backticks cannot close it: they are dropped), one line."""
    flat = " ".join(str(text).replace("`", "'").split())
    return f"`{flat}`" if flat else "``"


def block_label(layer: int, layer_name: str) -> str:
    """A block as the UI names it: the module's own number, counted from 0 (README "Block numbers").

    ``layer`` is the capture index (0 = embeddings), so block b = layer − 1 = ``encoder.layer.b``.
    """
    return f"block {layer - 1} (`{layer_name}`)"


def hide_path(message: str, path: str | Path, shown: str) -> str:
    """``message`` with the server-side ``path`` (a temp upload folder or file) replaced by ``shown``,
    the name the user knows: error messages never show /tmp/gradio/<hash>/... paths."""
    path = str(path)
    return message.replace(path + "/", f"{shown}: " if shown else "").replace(path, shown)


def checked(fn: Callable[..., object]) -> Callable[..., None]:
    """``fn`` run only for its errors, with no outputs: the light first event of a chain
    (``btn.click(checked(f), inputs, None).success(f, inputs, outputs)``). A failing event marks its
    output components with an error badge; one without outputs shows only the message."""

    def check(*args: object) -> None:
        fn(*args)

    check.__name__ = check.__qualname__ = f"check_{fn.__name__}"
    return check


def require_concept(session: Session):
    """The session's concept set, or a ValueError telling the user where to make one."""
    if session.concept is None:
        raise ValueError("no prompt pairs yet: pick a built-in pack or enter pairs in the Concept tab")
    return session.concept


def warn_if_small(concept) -> None:
    """A toast when the pairs are too few to trust (the CLI prints the same as a ``warning:`` line)."""
    from clear_core.workflow import MIN_PAIRS

    if len(concept) < MIN_PAIRS:
        gr.Warning(
            f"only {len(concept)} pairs: below {MIN_PAIRS} the results rest on too few prompts to trust "
            "(the paper uses 500-3000)"
        )


def require_eraser(session: Session) -> Eraser:
    """The session's eraser, or a ValueError telling the user how to get one."""
    if session.eraser is None:
        raise ValueError(
            "no eraser yet: run a search in the Search tab, or upload an artifact in the Export tab"
        )
    return session.eraser


def encoder_for(session: Session) -> TextEncoder:
    """The session's text encoder from the shared cache (ValueError if it cannot be loaded)."""
    return models.get_encoder(session.model)


def session_status(session: Session | None) -> str:
    """One markdown line: model, pairs, eraser (shown under the title, updated by every step)."""
    session = session or Session()
    name = session.model
    if models.is_loaded(name):
        model = f"**Model** {code_md(name)} ready"
    elif models.load_error(name):
        model = f"**Model** {code_md(name)} failed to load (see the Concept tab)"
    else:
        model = f"**Model** {code_md(name)} loading in the background…"
    concept = "**Pairs** none yet"
    if session.concept is not None:
        extra = f", {len(session.implicit)} held-out paraphrases" if session.implicit else ""
        concept = f"**Pairs** {escape_md(session.concept.name)}: {len(session.concept)}{extra}"
    eraser = "**Eraser** none yet"
    if session.eraser is not None:
        e = session.eraser
        eraser = (
            f"**Eraser** {escape_md(e.concept)} at {block_label(e.layer, e.layer_name)}, {e.kind}, "
            f"γ = {e.gamma:g}"
        )
        if session.eraser_matches() is False:  # never let it pass for an eraser of the pairs on show
            made_for = "other pairs" if e.concept == session.concept.name else f"*{escape_md(e.concept)}*"
            eraser += f" (⚠ made for {made_for}, not these pairs)"
    return " · ".join((model, concept, eraser))


def model_tick(session: Session | None) -> tuple[str, gr.Timer]:
    """Timer callback: refresh the status line until the session's model is loaded (or failed).

    Starts loading the model in the background if nobody has yet, so the first page view warms it.
    """
    session = session or Session()
    name = session.model
    settled = models.is_loaded(name) or models.load_error(name) is not None
    if not settled:
        models.ensure_loading(name)
    return session_status(session), gr.Timer(active=not settled)
