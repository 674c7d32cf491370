"""Named callback outputs: a dataclass per event, whose fields name the components it updates.

Gradio takes a callback's outputs as a tuple in the order of the event's ``outputs`` list. A subclass
of :class:`Outputs` names each place once: the callback fills fields by name (a field it leaves keeps
what the page shows, ``gr.skip()``), :meth:`Outputs.values` gives the tuple, and the layout wires the
event with :meth:`Outputs.components`, which takes the components by the same names, so the two orders
cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gradio as gr

__all__ = ["Outputs", "keep"]


def keep() -> Any:
    """A field's default: leave the component as the page shows it."""
    return dataclasses.field(default_factory=gr.skip)


@dataclasses.dataclass
class Outputs:
    """Base of the named outputs (subclasses are dataclasses whose fields default to :func:`keep`)."""

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def components(cls, **by_name: Any) -> list:
        """The event's ``outputs`` list, in field order (ValueError naming a missing or unknown field)."""
        names = cls.names()
        missing, unknown = set(names) - set(by_name), set(by_name) - set(names)
        if missing or unknown:
            raise ValueError(
                f"{cls.__name__}: components missing for {sorted(missing)}, unknown {sorted(unknown)}"
            )
        return [by_name[n] for n in names]

    def values(self) -> tuple:
        """The callback's return value, in field order."""
        return tuple(getattr(self, n) for n in self.names())
