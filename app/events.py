"""The page's events: which callback each control runs, on what, into which components, in which queue.

Wiring only (:func:`wire`, called by :func:`app.layout.build_demo` with the page's components): every
event names a callback of an ``app/*_tab.py`` module and gets an ``api_name`` (so ``gradio_client`` can
drive the whole flow). Results computed from pairs or an eraser that is replaced are emptied at once.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import gradio as gr

from app.common import checked, model_tick
from app.concept_tab import (
    load_model,
    load_pack,
    load_upload,
    parse_text,
    set_keep,
    use_table,
)
from app.export_tab import export_run, load_eraser
from app.features_tab import analyse_features, feature_detail
from app.launch import HEAVY_CONCURRENCY
from app.layer_tab import check_layer_map, compute_layer_map, stop_layer_map
from app.preview_tab import (
    EraseOutputs,
    clear_media,
    erase_after_clips,
    erase_prompt,
    example_prompt,
    fill_prompt,
    generate_media,
    measure_media,
    rate_over_seeds,
    rerender_media,
    stale_note,
)
from app.search_tab import SearchOutputs, check_search, run_search, stop_search

__all__ = ["LIGHT", "PRIVATE", "wire"]


def _feature_outputs(f: SimpleNamespace) -> list:
    """The Features tab's results (they describe one eraser on one set of pairs)."""
    return [f.masks, f.bars, f.health, f.feature, f.activation, f.histogram, f.top_pos, f.top_neg, f.nearest]


def _result_outputs(p: SimpleNamespace) -> list:
    """The Erase tab's results (each describes a concept, an eraser, a γ, a seed and a prompt)."""
    return [
        p.stale,
        p.scores,
        p.this,
        p.tokens,
        p.subtracted,
        p.numbers,
        p.scores_key,
        p.original,
        p.erased,
        p.strip,
        p.media_files,
        p.media_info,
        p.media_key,
        p.rate_chart,
        p.rate_note,
        p.rate_numbers,
        p.rate_key,
        p.measure_strip,
        p.measure_chart,
        p.measure_numbers,
    ]


def _blank(component: gr.components.Component) -> object:
    """What an emptied result component shows: nothing (hidden, for those shown only with a value)."""
    if isinstance(component, gr.Markdown):
        return ""
    if isinstance(component, gr.Dropdown):
        return gr.update(choices=[], value=None)
    if isinstance(component, (gr.Plot, gr.JSON)) and component.visible is False:
        return gr.update(visible=False, value=None)
    return None


def _blanks(components: list) -> Callable[[], tuple]:
    """A callback emptying ``components`` (results computed from pairs or an eraser now replaced)."""
    values = [_blank(c) for c in components]

    def clear() -> tuple:
        return tuple(values)

    return clear


LIGHT = dict(concurrency_limit=None, show_progress="hidden")
"""Events that do no model work: outside every queue, no progress overlay."""
PRIVATE = dict(LIGHT, api_visibility="private")
"""Light events the API does not list."""


def _clear(*components) -> dict:
    """An event emptying ``components`` (results computed from pairs or an eraser now replaced)."""
    return dict(fn=_blanks(list(components)), inputs=None, outputs=list(components), **PRIVATE)


def _clear_eraser(page: SimpleNamespace) -> dict:
    """A new eraser empties what the old one produced: the Features and Erase tabs' results."""
    return _clear(*_feature_outputs(page.f), *_result_outputs(page.p))


def _wire_concept(page: SimpleNamespace) -> None:
    """Step 1, Concept: packs, uploads, pastes and the edited table replace the concept whole."""
    demo, session, status, timer, c, lm, s, f, p = (
        page.demo,
        page.session,
        page.status,
        page.timer,
        page.c,
        page.lm,
        page.s,
        page.f,
        page.p,
    )
    timer.tick(model_tick, [session], [status, timer], api_name="model_status", show_progress="hidden")
    # new pairs replace every field of the concept on the page at once (name, paraphrases, the
    # Search tab's Keep box) and empty every result computed from the previous pairs
    concept_outputs = [c.table, c.name, c.implicit, c.neutral, c.summary, status, s.keep, session]
    clear_pairs = _clear(
        lm.separability, lm.projections, lm.status, *_feature_outputs(f), *_result_outputs(p)
    )
    demo.load(load_pack, [c.pack, session], concept_outputs, api_name="init", show_progress="hidden").success(
        **clear_pairs
    )
    c.load_pack.click(load_pack, [c.pack, session], concept_outputs, api_name="load_pack").success(
        **clear_pairs
    )
    # a bad file or paste fails in a first event without outputs: the message shows and the pairs
    # table keeps its pairs instead of wearing an error badge
    upload_inputs = [c.upload, c.name, c.implicit, c.neutral, session]
    c.upload.upload(checked(load_upload), upload_inputs, None, **PRIVATE).success(
        load_upload, upload_inputs, concept_outputs, api_name="upload_concept"
    ).success(**clear_pairs)
    parse_inputs = [c.paste, c.fmt, c.name, c.implicit, c.neutral, session]
    c.parse.click(checked(parse_text), parse_inputs, None, **PRIVATE).success(
        parse_text, parse_inputs, concept_outputs, api_name="parse_text"
    ).success(**clear_pairs)
    table_inputs = [c.table, c.name, c.implicit, c.neutral, session]
    c.use_table.click(checked(use_table), table_inputs, None, **PRIVATE).success(
        use_table, table_inputs, [c.summary, status, s.keep, session], api_name="use_table"
    ).success(**clear_pairs)
    s.keep.input(set_keep, [s.keep, session], [c.summary, session], api_name="set_keep", **LIGHT)
    c.load_model.click(load_model, [c.model, session], [c.model_info, status, session], api_name="load_model")


def _wire_layer_map(page: SimpleNamespace) -> None:
    """Step 2, Layer map: a light check outside the queue, then the heavy job."""
    session, status, lm = page.session, page.status, page.lm
    # heavy jobs: a light check first, outside their queue (a missing concept is reported at once,
    # not after another visitor's search); progress "minimal" keeps the status line readable
    lm.run.click(
        check_layer_map, [lm.method, lm.pooling, session], None, api_name="check_layer_map", **LIGHT
    ).success(
        compute_layer_map,
        [lm.method, lm.pooling, session],
        [lm.separability, lm.projections, lm.status, status, session],
        api_name="layer_map",
        concurrency_limit=HEAVY_CONCURRENCY,
        concurrency_id="layer_map",
        show_progress="minimal",
        show_progress_on=[lm.status],
    )
    lm.stop.click(stop_layer_map, [session], [lm.status], api_name="stop_layer_map", concurrency_limit=None)


def _wire_search(page: SimpleNamespace) -> None:
    """Step 3, Search: the check, the streaming run, Stop."""
    session, status, lm, s, p = page.session, page.status, page.lm, page.s, page.p
    search_inputs = [
        s.steps,
        s.d_sae,
        s.seed,
        s.use_con,
        s.kind,
        s.mask,
        s.method,
        s.calibration_pairs,
        s.gammas,
        s.keep,
        session,
        s.gate,
        s.probe_gate,
    ]
    s.start.click(check_search, search_inputs, None, api_name="check_search", **LIGHT).success(
        run_search,
        search_inputs,
        SearchOutputs.components(
            probs=s.probs,
            losses=s.losses,
            status=s.status,
            summary=s.summary,
            calibration=p.calibration,
            separability=lm.separability,
            projections=lm.projections,
            gamma=p.gamma,
            session_status=status,
            session=session,
        ),
        api_name="search",
        concurrency_limit=HEAVY_CONCURRENCY,
        concurrency_id="search",
        show_progress="minimal",
        show_progress_on=[s.status],
    ).success(**_clear_eraser(page))
    s.stop.click(stop_search, [session], [s.status], api_name="stop_search", concurrency_limit=None)


def _wire_features(page: SimpleNamespace) -> None:
    """Step 4, Features & masks."""
    session, f = page.session, page.f
    f.run.click(
        analyse_features, [session], [f.masks, f.bars, f.health, f.feature, session], api_name="features"
    )
    f.feature.change(
        feature_detail,
        [f.feature, session],
        [f.activation, f.histogram, f.top_pos, f.top_neg, f.nearest],
        api_name="feature_detail",
        trigger_mode="always_last",
    )


def _wire_erase(page: SimpleNamespace) -> None:
    """Step 5, Erase & preview: the scores, the clips, the rate over seeds, the detector."""
    session, preview, p = page.session, page.preview, page.p
    erase_inputs = [p.prompt, p.gamma, session]
    erase_outputs = EraseOutputs.components(
        scores=p.scores,
        this=p.this,
        tokens=p.tokens,
        subtracted=p.subtracted,
        numbers=p.numbers,
        key=p.scores_key,
        session=session,
    )
    # one progress area per result group: the scores, the erased clip, the rate over seeds
    scores_progress = dict(show_progress="minimal", show_progress_on=[p.scores])
    stale = dict(
        fn=stale_note,
        inputs=[
            p.prompt,
            p.gamma,
            p.media_seed,
            p.pipeline,
            p.scores_key,
            p.media_key,
            p.rate_key,
            session,
        ],
        outputs=[p.stale],
        **PRIVATE,
    )
    gr.on(
        [p.run.click, p.prompt.submit],
        erase_prompt,
        erase_inputs,
        erase_outputs,
        api_name="erase",
        **scores_progress,
    ).then(**stale)
    media_inputs = [p.prompt, p.gamma, p.media_seed, p.pipeline, p.media_steps, session]
    media_outputs = [p.original, p.erased, p.strip, p.media_files, p.media_info, p.media_key]
    rate_outputs = [p.rate_chart, p.rate_note, p.rate_numbers, p.rate_key]
    # one denoising job at a time (the clips, the rate over seeds, the detector)
    pipeline_queue = dict(concurrency_limit=1, concurrency_id="generate")
    clip_progress = dict(show_progress="full", show_progress_on=[p.erased])
    # the rate over seeds (16 clips) has a queue of its own: it takes the pipeline's lock one arm
    # at a time, so a γ move's clip waits for one arm at most, not for the whole rate
    rate = dict(
        fn=rate_over_seeds,
        inputs=media_inputs,
        outputs=rate_outputs,
        show_progress_on=[p.rate_note],
        concurrency_limit=1,
        concurrency_id="rate",
    )
    p.generate.click(
        generate_media,
        media_inputs,
        media_outputs,
        api_name="generate",
        **clip_progress,
        **pipeline_queue,
    ).success(api_name="rate_over_seeds", **rate).then(**stale)
    p.rate.click(api_name="rate", **rate).then(**stale)
    p.measure.click(
        measure_media,
        [p.original, p.erased, p.detector, session],
        [p.measure_strip, p.measure_chart, p.measure_numbers],
        api_name="measure",
        **pipeline_queue,
    )
    # γ released: the erased clip next to the slider re-renders (the original is cached) and, apart
    # from it, the scores follow; a quick run of moves does only the last one. The rate over seeds
    # (16 clips) waits for its button, and is marked out of date meanwhile.
    rerender_inputs = [p.auto, p.original, *media_inputs]
    private_scores = dict(api_visibility="private", **scores_progress)
    rerender = dict(fn=rerender_media, inputs=rerender_inputs, outputs=media_outputs, **clip_progress)
    p.gamma.release(api_name="rerender", trigger_mode="always_last", **rerender, **pipeline_queue).then(
        **stale
    )
    p.gamma.release(
        erase_after_clips, erase_inputs, erase_outputs, trigger_mode="always_last", **private_scores
    ).then(**stale)
    for button, kind in (
        (p.ex_explicit, "explicit"),
        (p.ex_implicit, "implicit"),
        (p.ex_unrelated, "unrelated"),
    ):
        # an example replaces the prompt and the results that described the old one
        example = button.click(
            lambda s, pipe, k=kind: example_prompt(k, s, pipe),
            [session, p.pipeline],
            [p.prompt],
            api_name=f"example_{kind}",
            concurrency_limit=None,
        )
        example.success(api_visibility="private", **rerender, **pipeline_queue).then(**stale)
        example.success(erase_prompt, erase_inputs, erase_outputs, **private_scores).then(**stale)
    preview.select(
        fill_prompt, [p.prompt, session], [p.prompt], concurrency_limit=None, show_progress="hidden"
    )
    gr.on([p.prompt.input, p.media_seed.change], **stale)
    # another pipeline: the clips and what was measured on them are not its own
    media_stale = [*media_outputs, *rate_outputs, p.measure_strip, p.measure_chart, p.measure_numbers]
    p.pipeline.change(clear_media, None, media_stale, api_name="clear_media", **LIGHT).then(**stale)


def _wire_export(page: SimpleNamespace) -> None:
    """Step 6, Export: the artifact and report out, an eraser back in."""
    session, status, p, x = page.session, page.status, page.p, page.x
    x.run.click(export_run, [session], [x.files, x.message, session], api_name="export")
    x.load.click(
        load_eraser,
        [x.upload, session],
        [x.load_message, p.calibration, p.gamma, status, session],
        api_name="load_eraser",
    ).success(**_clear_eraser(page))


def wire(page: SimpleNamespace) -> None:
    """Every event of the page (``page``: the components of :func:`app.layout.build_demo`)."""
    _wire_concept(page)
    _wire_layer_map(page)
    _wire_search(page)
    _wire_features(page)
    _wire_erase(page)
    _wire_export(page)
