"""Step 2, Layer map: where across depth the concept is separable, streamed as it is computed.

:func:`compute_layer_map` is a generator over :func:`analysis.layer_map.iter_layer_map` snapshots:
training-free scores and PCA panels first (about a second once activations are cached), then the
probe and transfer errors block by block, then the slower t-SNE/UMAP panels one by one. Only the
figure that changed is sent at each step. "Stop" keeps the partial map.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import gradio as gr

from app.common import ProgressFn, encoder_for, require_concept, session_status, user_errors, warn_if_small
from app.state import Session

if TYPE_CHECKING:
    from analysis.layer_map import LayerMapResult

__all__ = ["check_layer_map", "chosen_layer", "compute_layer_map", "layer_map_figures", "stop_layer_map"]

METHODS = ("pca", "tsne", "umap")
POOLINGS = ("mean", "max")

JOB = "layer_map"


def chosen_layer(session: Session, result: LayerMapResult) -> int | None:
    """The session's eraser block, when the eraser was built for this map's concept and model."""
    e = session.eraser
    if e is None or e.concept != result.concept or e.model_id != result.model_id:
        return None
    return e.layer if 0 <= e.layer < len(result.layer_names) else None


def _separability(result: LayerMapResult, chosen: int | None) -> Any:
    from analysis.layer_map import separability_figure

    return separability_figure(dataclasses.replace(result, chosen_layer=chosen))


def _projections(result: LayerMapResult, method: str | None) -> Any:
    from analysis.layer_map import projection_figure

    method = method or result.config.methods[-1]
    shown = method if any(p is not None for p in result.projections.get(method, [])) else "pca"
    return projection_figure(result, shown)


def layer_map_figures(
    result: LayerMapResult, method: str | None = None, chosen: int | None = None
) -> tuple[Any, Any]:
    """(separability curve, projection small multiples) of a snapshot; PCA until ``method`` has panels.

    ``method`` defaults to the slowest projection the map was configured with; ``chosen`` (a layer
    index) is marked on the curve.
    """
    return _separability(result, chosen), _projections(result, method)


def _status(result: LayerMapResult, message: str, stopped: bool = False) -> str:
    done = "stopped early; the map below is partial" if stopped else ("done" if result.complete else message)
    times = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
    return (
        f"**{result.concept}** on `{result.model_id}`: {result.n_pairs} pairs, "
        f"{result.n_implicit} held-out paraphrases. {done}. ({times})"
    )


def check_layer_map(method: str, pooling: str, session: Session) -> None:
    """The light half of "Compute layer map", run outside the heavy queue (see check_search)."""
    with user_errors():
        warn_if_small(require_concept(session))
        if method not in METHODS:
            raise ValueError(f"projection must be one of {', '.join(METHODS)}, got {method!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")


def compute_layer_map(
    method: str, pooling: str, session: Session, progress: ProgressFn = gr.Progress()
) -> Iterator[tuple[Any, Any, str, str, Session]]:
    """Yields (separability figure, projection figure, tab status, status line, session).

    Intermediate yields skip the session (and any unchanged figure); the last one stores the map.
    """
    with user_errors():
        from analysis.layer_map import LayerMapConfig, iter_layer_map

        concept = require_concept(session)
        methods = ("pca",) if method == "pca" else ("pca", method)
        config = LayerMapConfig(methods=methods, pooling=pooling)
        progress(0.0, desc="loading the model…")
        encoder = encoder_for(session)
        message = ["capturing activations"]

        def report(msg: str, fraction: float) -> None:
            message[0] = msg
            progress(fraction, desc=msg)

        session.control.reset(JOB)
        last, stopped, previous_stage = None, False, None
        snapshots = iter_layer_map(
            encoder, concept, session.implicit or None, session.neutral or None, config, progress=report
        )
        for last in snapshots:
            stage = last.stage  # send only the figure this snapshot changed
            new_projection = previous_stage is None or stage.startswith("projection") or stage == "done"
            previous_stage = stage
            yield (
                gr.skip()
                if stage.startswith("projection")
                else _separability(last, chosen_layer(session, last)),
                _projections(last, method) if new_projection else gr.skip(),
                _status(last, message[0]),
                gr.skip(),
                gr.skip(),
            )
            if session.control.should_stop(JOB):
                stopped = True
                snapshots.close()
                break
        if last is None:
            raise ValueError("the layer map produced no result")
        new = session.with_(layer_map=last)
        sep, proj = layer_map_figures(last, method, chosen_layer(new, last))
        yield sep, proj, _status(last, message[0], stopped), session_status(new), new


def stop_layer_map(session: Session) -> str:
    """Ask this session's running layer map to stop after the current block (keeps what is done)."""
    session.control.request_stop(JOB)
    return "Stopping after the current block…"
