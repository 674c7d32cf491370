"""App controls built from the config dataclasses (clear_core/config.py), as the CLI's options are.

A control's value is the field's default, its info line the first sentence of the field's docstring
(:func:`clear_core.options.field_docs`), read when the page is built: a default changed in
:class:`~clear_core.config.SearchConfig` or :class:`~clear_core.config.EraserOptions` shows in the app
without another edit. The app adds only what the config cannot know: a label, a slider's range, and
(where the app phrases a choice its own way) a note after the docstring. Imports no torch.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from clear_core.options import field_default, field_docs

__all__ = ["checkbox", "choice", "field_info", "gammas_text", "number", "slider", "textbox"]


def field_info(cls: type, name: str, note: str | None = None) -> str:
    """The info line of field ``name``: the first sentence of the field's docstring, then ``note`` (the
    app's own words, when it has some)."""
    doc = field_docs(cls).get(name, "").replace("``", "'")
    return f"{doc}; {note}" if note and doc else note or doc


def _in_range(cls: type, name: str, value: Any, minimum: float, maximum: float) -> Any:
    if not minimum <= value <= maximum:
        raise ValueError(
            f"{cls.__name__}.{name}: default {value} is outside the app's range {minimum}..{maximum}"
        )
    return value


def slider(
    cls: type, name: str, minimum: float, maximum: float, step: float, label: str, note: str | None = None
) -> gr.Slider:
    """A slider over ``minimum..maximum`` starting at the field's default (ValueError when the default
    falls outside the range, so a changed default cannot hide behind a clamped slider)."""
    value = _in_range(cls, name, field_default(cls, name), minimum, maximum)
    return gr.Slider(minimum, maximum, value=value, step=step, label=label, info=field_info(cls, name, note))


def choice(
    cls: type,
    name: str,
    choices: list | dict[str, Any],
    label: str,
    note: str | None = None,
    radio: bool = False,
    info: bool = True,
    **kwargs: Any,
) -> gr.Dropdown | gr.Radio:
    """A dropdown (or radio) set to the field's default. ``choices``: the values (the default is added
    when missing), or {label shown: value} where the app names values its own way (the control holds
    the label of the default; ValueError when no label maps to it). ``info=False``: no info line, for
    a field whose docstring names values the app labels its own way."""
    value = field_default(cls, name)
    if isinstance(choices, dict):
        shown = [k for k, v in choices.items() if v == value]
        if not shown:
            raise ValueError(f"{cls.__name__}.{name}: default {value!r} is not one of the app's choices")
        choices, value = list(choices), shown[0]
    elif value not in choices:
        choices = sorted([*choices, value])
    kind = gr.Radio if radio else gr.Dropdown
    text = field_info(cls, name, note) if info else note
    return kind(choices, value=value, label=label, info=text, **kwargs)


def checkbox(cls: type, name: str, label: str, note: str | None = None) -> gr.Checkbox:
    """A checkbox ticked when the (bool) field defaults to True."""
    return gr.Checkbox(bool(field_default(cls, name)), label=label, info=field_info(cls, name, note))


def number(cls: type, name: str, label: str, note: str | None = None, **kwargs: Any) -> gr.Number:
    """A number box holding the field's default."""
    return gr.Number(field_default(cls, name), label=label, info=field_info(cls, name, note), **kwargs)


def gammas_text(gammas: tuple[float, ...]) -> str:
    """A γ grid as the app's text box shows it ("0, 0.25, 1"); app/search_tab.parse_gammas reads it."""
    return ", ".join(f"{g:g}" for g in gammas)


def textbox(cls: type, name: str, label: str, note: str | None = None, **kwargs: Any) -> gr.Textbox:
    """A text box holding the field's default (a tuple of numbers written as :func:`gammas_text`)."""
    value = field_default(cls, name)
    text = gammas_text(value) if isinstance(value, tuple) else str(value)
    return gr.Textbox(text, label=label, info=field_info(cls, name, note), **kwargs)
