"""Context-local forward hooks on shared modules.

A web app serves every visitor from one loaded encoder, so a hook attached for one request must not
be seen by another (STYLE.md, "Never leave state on shared objects"). Each module gets at most one
*dispatch* hook, installed while at least one ``scoped_hooks`` block uses it and removed when the
last one exits. The dispatch hook runs only the handlers registered in the *current* context
(a :class:`contextvars.ContextVar`: per thread, per asyncio task, and copied into Gradio's worker
threads), so a concurrent forward pass from another context sees the module unchanged.

After every ``scoped_hooks`` block has exited — normally or through an exception — the module has
exactly the hooks it had before.

A third kind, ``"replace"``, can stand in for a module's forward computation in the current context
(``fn(args, kwargs)`` returns the output to use, or None to run the module): a γ sweep uses it to reuse
the outputs of the blocks below the eraser instead of recomputing them. It works through a dispatch
wrapper set as the module's instance ``forward`` while a replace handler uses the module, removed with
the last one (the module's own forward hooks still run on the replaced output).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

__all__ = ["Handler", "hidden_of", "isolated_hooks", "original_forward", "scoped_hooks", "with_hidden"]

# A handler receives the block's hidden states (batch, tokens, d_model). A "post" handler may return
# a replacement tensor of the same shape (or None to leave it); a "pre" handler only observes; a
# "replace" handler receives (args, kwargs) of the forward call and returns the whole output or None.
HandlerFn = Callable[[torch.Tensor], "torch.Tensor | None"]


@dataclass(frozen=True, eq=False)
class Handler:
    """One function to run on one module's hidden states, in the context that registered it."""

    module: nn.Module
    """The block whose input ("pre") or output ("post") the function sees."""
    fn: HandlerFn
    """Called with the hidden-state tensor; a post handler may return a replacement."""
    kind: Literal["pre", "post", "replace"] = "post"
    """"pre" sees the block's input (read only), "post" its output (may edit), "replace" stands in for
    its forward computation."""


_ACTIVE: ContextVar[tuple[Handler, ...]] = ContextVar("clear_active_handlers", default=())
_LOCK = threading.Lock()
# id(module) -> [weakref(module), pre handle, post handle, users]; one entry per hooked module.
_INSTALLED: dict[int, list[Any]] = {}
# id(module) -> [weakref(module), the instance forward it had (or None), users]; modules with a replace wrapper.
_REPLACED: dict[int, list[Any]] = {}


def hidden_of(output: Any) -> torch.Tensor:
    """The hidden states inside a block's output (a tensor, or a tuple/list whose first item is)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    if hasattr(output, "last_hidden_state"):
        return output.last_hidden_state
    raise TypeError(f"cannot find hidden states in a block output of type {type(output).__name__}")


def with_hidden(output: Any, hidden: torch.Tensor) -> Any:
    """``output`` with its hidden states replaced by ``hidden`` (same container type)."""
    if isinstance(output, torch.Tensor):
        return hidden
    if isinstance(output, tuple):
        return (hidden, *output[1:])
    if isinstance(output, list):
        return [hidden, *output[1:]]
    raise TypeError(f"cannot replace hidden states in a block output of type {type(output).__name__}")


def _handlers_for(module: nn.Module, kind: str) -> list[Handler]:
    return [h for h in _ACTIVE.get() if h.module is module and h.kind == kind]


def _post_dispatch(module: nn.Module, args: Any, output: Any) -> Any:
    handlers = _handlers_for(module, "post")
    if not handlers:
        return None
    hidden = original = hidden_of(output)
    for handler in handlers:
        replaced = handler.fn(hidden)
        if replaced is not None:
            if replaced.shape != hidden.shape:
                raise ValueError(
                    f"a hook on {type(module).__name__} returned shape {tuple(replaced.shape)}, "
                    f"expected {tuple(hidden.shape)}"
                )
            hidden = replaced
    return None if hidden is original else with_hidden(output, hidden)


def _pre_dispatch(module: nn.Module, args: tuple, kwargs: dict) -> None:
    handlers = _handlers_for(module, "pre")
    if not handlers:
        return None
    hidden = args[0] if args else kwargs["hidden_states"]
    for handler in handlers:
        handler.fn(hidden)
    return None


def _forward_dispatch(module: nn.Module, forward: Callable[..., Any]) -> Callable[..., Any]:
    def dispatch(*args: Any, **kwargs: Any) -> Any:
        for handler in _handlers_for(module, "replace"):
            out = handler.fn(args, kwargs)
            if out is not None:
                return out
        return forward(*args, **kwargs)

    dispatch.__clear_dispatch__ = True
    return dispatch


def original_forward(module: nn.Module) -> Callable[..., Any]:
    """``module``'s forward without the replace dispatch of this module (an instance forward set by
    someone else, such as accelerate's, is kept): what a replace handler calls to run the module."""
    with _LOCK:
        entry = _REPLACED.get(id(module))
        if entry is not None and entry[0]() is module:
            own = entry[1]
            return own if own is not None else type(module).forward.__get__(module)
    return module.forward


def _acquire_forward(module: nn.Module) -> None:
    with _LOCK:
        entry = _REPLACED.get(id(module))
        if entry is not None and entry[0]() is module:
            entry[2] += 1
            return
        own = module.__dict__.get("forward")  # an instance forward set by someone else (accelerate)
        module.forward = _forward_dispatch(module, own if own is not None else module.forward)
        _REPLACED[id(module)] = [weakref.ref(module), own, 1]


def _release_forward(module: nn.Module) -> None:
    with _LOCK:
        entry = _REPLACED.get(id(module))
        if entry is None or entry[0]() is not module:
            return
        entry[2] -= 1
        if entry[2] == 0:
            if entry[1] is not None:
                module.forward = entry[1]
            else:
                del module.forward
            del _REPLACED[id(module)]


def _acquire(module: nn.Module) -> None:
    with _LOCK:
        entry = _INSTALLED.get(id(module))
        if entry is not None and entry[0]() is module:
            entry[3] += 1
            return
        pre = module.register_forward_pre_hook(_pre_dispatch, with_kwargs=True)
        post = module.register_forward_hook(_post_dispatch)
        _INSTALLED[id(module)] = [weakref.ref(module), pre, post, 1]


def _release(module: nn.Module) -> None:
    with _LOCK:
        entry = _INSTALLED.get(id(module))
        if entry is None or entry[0]() is not module:
            return
        entry[3] -= 1
        if entry[3] == 0:
            entry[1].remove()
            entry[2].remove()
            del _INSTALLED[id(module)]


@contextmanager
def scoped_hooks(handlers: Sequence[Handler], isolated: bool = False) -> Iterator[None]:
    """Run ``handlers`` on forward passes made in this context, inside the ``with`` block only.
    ``isolated``: only these, the handlers of the enclosing contexts paused (see :func:`isolated_hooks`)."""
    modules = list({id(h.module): h.module for h in handlers}.values())
    replaced = list({id(h.module): h.module for h in handlers if h.kind == "replace"}.values())
    acquired: list[nn.Module] = []
    wrapped: list[nn.Module] = []
    token = None
    try:
        for module in modules:
            _acquire(module)
            acquired.append(module)
        for module in replaced:
            _acquire_forward(module)
            wrapped.append(module)
        token = _ACTIVE.set((() if isolated else _ACTIVE.get()) + tuple(handlers))
        yield
    finally:
        if token is not None:
            _ACTIVE.reset(token)
        for module in wrapped:
            _release_forward(module)
        for module in acquired:
            _release(module)


def isolated_hooks(handlers: Sequence[Handler]):
    """:func:`scoped_hooks` with only ``handlers`` running inside: a pass with no edit of the enclosing
    contexts (the probe gate's unedited first pass, clear_core/erasure.py)."""
    return scoped_hooks(handlers, isolated=True)
