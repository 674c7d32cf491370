"""Command-line options and app controls built from the config dataclasses (clear_core/config.py).

A field's default and the first sentence of its docstring are read from the dataclass itself, so a
default changed in :class:`~clear_core.config.SearchConfig` or :class:`~clear_core.config.EraserOptions`
shows up in ``--help`` and in the app without another edit. Dataclass field docstrings are not kept by
Python at run time; :func:`field_docs` reads them from the class's source.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import textwrap
import typing
from collections.abc import Callable
from typing import Any

__all__ = ["add_field", "config_from_args", "field_default", "field_docs"]


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """{field: the first sentence of the docstring written under it} for a dataclass."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            text = " ".join(after.value.value.split())
            docs[node.target.id] = text.split(". ")[0].rstrip(".")
    return docs


def field_default(cls: type, name: str) -> Any:
    """The default of a dataclass field (read each call, so a changed default is seen)."""
    field = cls.__dataclass_fields__[name]
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise ValueError(f"{cls.__name__}.{name} has no default")


def add_field(
    parser: argparse.ArgumentParser,
    cls: type,
    name: str,
    flag: str | None = None,
    type: Callable[[str], Any] | None = None,
    choices: tuple | None = None,
    help: str | None = None,
    unset: bool = False,
) -> None:
    """``--flag`` for field ``name`` of ``cls``: its default, its docstring as help (``help`` prepends a
    note), a switch for a bool field that defaults to False; the value lands in ``args.<name>``.
    ``unset``: the parsed value is None unless the flag is given (the help still shows the default),
    for options whose checks must know whether the user asked."""
    default = field_default(cls, name)
    doc = field_docs(cls).get(name, "")
    text = f"{help}: {doc}" if help else doc
    flag = flag or "--" + name.replace("_", "-")
    if isinstance(default, bool) and not default:
        parser.add_argument(flag, dest=name, action="store_true", help=text.replace("%", "%%"))
        return
    if isinstance(default, bool) or (default is None and bool in _field_types(cls, name)):
        # --flag / --no-flag; None ("not given") leaves the field's own default, which may be "auto"
        parser.add_argument(
            flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text.replace("%", "%%")
        )
        return
    shown = f" (default: {default})" if default is not None else ""
    parser.add_argument(
        flag,
        dest=name,
        type=type,
        choices=choices,
        default=None if unset else default,
        help=(text + shown).replace("%", "%%"),
    )


def _field_types(cls: type, name: str) -> set:
    """The types a field's annotation names (``bool | None`` -> {bool, NoneType})."""
    hint = typing.get_type_hints(cls)[name]
    return set(typing.get_args(hint)) or {hint}


def config_from_args(cls: type, args: argparse.Namespace, **override: Any) -> Any:
    """An instance of ``cls`` from the fields ``args`` carries (a None there means "not given": the
    field keeps its default), with ``override`` on top."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    return cls(**{**values, **override})
