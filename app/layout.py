"""The page: six steps in tabs, wired to the plain callbacks of the ``app/*_tab.py`` modules.

Layout only: every event names a callback and gets an ``api_name`` (so ``gradio_client`` can drive the
whole flow); the callbacks hold the work. Building the page imports neither torch nor transformers,
so the first screen appears while the default model loads in the background.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import gradio as gr

from app import controls
from app.common import checked, model_tick, session_status
from app.concept_tab import (
    concept_summary,
    load_model,
    load_pack,
    load_upload,
    pack_choices,
    parse_text,
    set_keep,
    use_table,
)
from app.export_tab import export_run, load_eraser
from app.features_tab import ACTIVATION_COLORS, analyse_features, feature_detail
from app.generation import NO_PIPELINE, default_pipeline, pipeline_choices
from app.launch import HEAVY_CONCURRENCY
from app.layer_tab import check_layer_map, compute_layer_map, stop_layer_map
from app.preview_tab import (
    DETECTORS,
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
from app.search_tab import (
    GAMMA_MAX,
    KINDS,
    METHODS,
    SearchOutputs,
    check_search,
    run_search,
    stop_search,
)
from app.state import DEFAULT_MODEL, Session, cleanup_session, new_session
from clear_core.config import MASKS, EraserOptions, SearchConfig
from clear_core.lookalikes import default_preserve

__all__ = ["DEFAULT_PACK", "TITLE", "build_demo"]

TITLE = "CLEAR Workbench"
DEFAULT_PACK = "parachute"
D_SAE_CHOICES = [256, 512, 1024, 2048, 4096, 8192]
"""SAE sizes the app offers (SearchConfig.d_sae's default is added when it is not among them)."""
PIPELINE_INFO = (
    "'testbed' reads the app's default encoder (MiniLM), so the erasers made here drive it. A diffusers "
    "folder or Hugging Face id works when its text encoder is the model you searched on. tiny-wan / "
    "tiny-cogvideox / tiny-sd (random weights) can be typed to check the plumbing, but no eraser made "
    "here fits their own random encoders."
)

HEADER = f"""# {TITLE}
Find **where** in a text encoder a concept lives, and erase it **there**, at inference time, without
changing a weight (CLEAR: concept-layer aligned erasure for text-to-video diffusion models).
Work through the steps left to right: **Concept → Layer map → Search → Features → Erase → Export**."""


def _intro(text: str) -> gr.Markdown:
    return gr.Markdown(text, elem_classes=["step-intro"])


def _concept_tab() -> SimpleNamespace:
    _intro(
        "A concept is a set of prompt **pairs** that share everything but the concept: "
        "*a skydiver **with a parachute** over a desert* / *a skydiver over a desert*. "
        "Pick a built-in pack, upload or paste a `.jsonl` / `.csv` file (columns `positive,negative`), "
        "or edit the table. Errors name the line to fix; your pairs are kept."
    )
    ui = SimpleNamespace()
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            ui.pack = gr.Dropdown(pack_choices(), value=DEFAULT_PACK, label="Built-in concept pack")
            ui.load_pack = gr.Button("Load pack", variant="primary")
            with gr.Accordion("Upload or paste pairs", open=False):
                ui.upload = gr.File(
                    label="Concept file (.jsonl or .csv)", file_types=[".jsonl", ".csv", ".json"]
                )
                ui.paste = gr.Textbox(
                    lines=5,
                    label="Paste pairs",
                    placeholder='{"positive": "a dog with a hat", "negative": "a dog"}',
                )
                ui.fmt = gr.Radio(["jsonl", "csv"], value="jsonl", label="Pasted format")
                ui.parse = gr.Button("Use pasted pairs")
            with gr.Accordion("Text encoder", open=False):
                ui.model = gr.Dropdown(
                    [DEFAULT_MODEL],
                    value=DEFAULT_MODEL,
                    allow_custom_value=True,
                    label="Model",
                    info="'minilm' (embedded, 6 blocks) or any T5 / UMT5 / CLIP / BERT text encoder: "
                    "a Hugging Face id or a local folder (a diffusers pipeline folder works too)",
                )
                ui.load_model = gr.Button("Load model")
                ui.model_info = gr.Markdown()
        with gr.Column(scale=3):
            ui.summary = gr.Markdown(concept_summary(Session()))
            ui.name = gr.Textbox(label="Concept name", max_lines=1, placeholder="parachute")
            ui.table = gr.Dataframe(
                headers=["positive", "negative"],
                datatype=["str", "str"],
                type="array",
                interactive=True,
                column_count=2,
                column_widths=["47%", "47%"],
                wrap=True,
                max_height=380,
                show_row_numbers=True,
                show_search="search",
                label="Prompt pairs (editable)",
            )
            ui.use_table = gr.Button("Use the table as edited")
            with gr.Accordion("Held-out paraphrases (evaluation only, never trained on)", open=False):
                gr.Markdown(
                    "Prompts that evoke the concept **without naming it**, and the same scenes without it, "
                    "line by line. They measure whether the concept (not just its word) is found and erased."
                )
                with gr.Row():
                    ui.implicit = gr.Textbox(lines=6, label="Paraphrases (one a line)")
                    ui.neutral = gr.Textbox(lines=6, label="Matched neutral prompts")
    return ui


def _layer_tab() -> SimpleNamespace:
    _intro(
        "How separable is the concept at each block? Top: probe error on the pairs (k-fold) and on "
        "held-out paraphrases (transfer) — lower is more separable; the dashed line marks the block the "
        "search chose. Below: every prompt at every block (red: with the concept, blue: without). "
        "Results stream in as they are computed: PCA panels appear within seconds, and the projection "
        "chosen here (t-SNE by default) replaces them block by block."
    )
    ui = SimpleNamespace()
    with gr.Row():
        ui.method = gr.Radio(
            [("PCA (instant)", "pca"), ("t-SNE", "tsne"), ("UMAP", "umap")], value="tsne", label="Projection"
        )
        ui.pooling = gr.Radio(["mean", "max"], value="mean", label="Pool tokens by")
        with gr.Column(min_width=200):
            ui.run = gr.Button("Compute layer map", variant="primary")
            ui.stop = gr.Button("Stop", variant="stop", size="sm")
    ui.status = gr.Markdown()
    ui.separability = gr.Plot(label="Separability by block")
    ui.projections = gr.Plot(label="Prompts at every block")
    return ui


def _search_tab() -> SimpleNamespace:
    _intro(
        "The Gumbel-softmax search learns a probability for each block while one sparse autoencoder "
        "learns features shared by all of them; the block that wins is where the concept is erased. "
        "Watch the probabilities converge (the paper's Fig. 5). Stop at any time: the eraser is built "
        "from the state reached, then its default γ is calibrated."
    )
    ui = SimpleNamespace()
    with gr.Row():
        ui.steps = controls.slider(SearchConfig, "steps", 20, 3000, 10, "Steps")
        ui.d_sae = controls.choice(SearchConfig, "d_sae", D_SAE_CHOICES, "SAE features (d_sae)")
        ui.seed = controls.number(SearchConfig, "seed", "Seed", precision=0, minimum=0)
    ui.keep = gr.Textbox(
        ", ".join(default_preserve(DEFAULT_PACK)),
        label="Keep (look-alikes)",
        info="comma-separated neighbours of the concept that must survive its erasure (a pack's own list "
        "is filled in when its pairs load); prompts about them are written from the pairs and protected "
        "in the mask and the γ calibration. Empty: protect nothing",
        max_lines=1,
        max_length=1000,
    )
    ui.gate = controls.checkbox(
        EraserOptions,
        "gate",
        "Look-alike gate",
        "on MiniLM it opened the golf ball / tennis ball and French horn / trumpet windows, at a higher γ",
    )
    with gr.Accordion("Ablations and calibration", open=False):
        with gr.Row():
            ui.use_con = controls.checkbox(SearchConfig, "use_con", "Contrastive loss L_con")
            ui.kind = controls.choice(EraserOptions, "kind", KINDS, "Eraser", radio=True, info=False)
            ui.mask = controls.choice(
                EraserOptions,
                "mask",
                list(MASKS),
                "Feature mask",
                "'paper' erases almost every feature",
                radio=True,
            )
            ui.method = controls.choice(
                EraserOptions, "method", METHODS, "Layer selection", radio=True, info=False
            )
        with gr.Row():
            ui.calibration_pairs = controls.slider(
                EraserOptions, "calibration_pairs", 8, 256, 8, "Calibration pairs"
            )
            ui.gammas = controls.textbox(EraserOptions, "gammas", "γ grid searched by the calibration")
    with gr.Row():
        ui.start = gr.Button("Start search", variant="primary")
        ui.stop = gr.Button("Stop", variant="stop")
    ui.status = gr.Markdown()
    with gr.Row():
        ui.probs = gr.Plot(label="Layer probabilities")
        ui.losses = gr.Plot(label="Losses and temperature τ")
    ui.summary = gr.Markdown()
    return ui


def _features_tab() -> SimpleNamespace:
    _intro(
        "The eraser subtracts the SAE features that fire on prompts **with** the concept and not "
        "without it (m_spec), and keeps the shared ones (m_shared). Rank them, check the SAE's health, "
        "and open a feature: where it fires, and which vocabulary tokens its direction is closest to."
    )
    ui = SimpleNamespace()
    ui.run = gr.Button("Analyse features", variant="primary")
    ui.health = gr.Markdown()
    with gr.Row():
        ui.masks = gr.Plot(label="Mask values over all features")
        ui.bars = gr.Plot(label="Most concept-specific features")
    ui.feature = gr.Dropdown([], label="Feature", info="ranked by m_spec", interactive=True)
    with gr.Row():
        ui.activation = gr.Plot(label="Mean activation: positive vs negative prompts")
        ui.histogram = gr.Plot(label="Peak activation per prompt: positive vs negative prompts")
        ui.nearest = gr.Plot(label="Nearest vocabulary tokens of the decoder direction")
    with gr.Row():
        ui.top_pos = gr.HighlightedText(
            label="Top positive prompts (tokens coloured by the feature's activation)",
            color_map=ACTIVATION_COLORS,
            show_legend=True,
        )
        ui.top_neg = gr.HighlightedText(
            label="Top negative prompts", color_map=ACTIVATION_COLORS, show_legend=True
        )
    return ui


def _preview_tab() -> SimpleNamespace:
    _intro(
        "Type any prompt and move γ: the erased clip re-renders next to the slider, then the scores "
        "follow — whether the concept probe still detects the concept, how much of the rest survives, "
        "where on the prompt the edit lands and which features were subtracted. γ starts at the "
        "eraser's calibrated default."
    )
    ui = SimpleNamespace()
    default = default_pipeline()
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            ui.prompt = gr.Textbox(
                "",
                label="Prompt",
                placeholder="a prompt to erase — or take an example of the loaded concept below",
                max_length=2000,
                lines=2,
                submit_btn=False,
            )
            ui.gamma = gr.Slider(0, GAMMA_MAX, value=1.0, step=0.05, label="γ (erasure strength)")
            with gr.Row():
                ui.ex_explicit = gr.Button("explicit (names it)", size="sm", min_width=80)
                ui.ex_implicit = gr.Button("implicit (evokes it)", size="sm", min_width=80)
                ui.ex_unrelated = gr.Button("unrelated", size="sm", min_width=80)
            ui.run = gr.Button("Erase", variant="primary")
            with gr.Accordion("Video", open=True):
                ui.pipeline = gr.Dropdown(
                    pipeline_choices(),
                    value=default or None,
                    allow_custom_value=True,
                    label="Pipeline",
                    info=PIPELINE_INFO,
                )
                with gr.Row():
                    ui.media_seed = gr.Number(0, precision=0, minimum=0, label="Seed", min_width=80)
                    ui.media_steps = gr.Slider(
                        1, 50, value=10, step=1, label="Denoising steps", min_width=120
                    )
                ui.auto = gr.Checkbox(True, label="Re-render the erased clip when γ moves")
                ui.generate = gr.Button("Generate original and erased", variant="primary")
        with gr.Column(scale=3, min_width=360):
            ui.media_note = gr.Markdown(
                "Original vs erased, rendered from the **same seed and initial latents**. The default pipeline "
                "is the CPU testbed, a small synthetic world of the paper's concepts (not a real video model)."
                if default
                else NO_PIPELINE,
                elem_id="media-note",
            )
            with gr.Row(elem_id="clips"):
                ui.original = gr.Video(
                    label="Original", interactive=False, autoplay=True, loop=True, elem_id="clip-original"
                )
                ui.erased = gr.Video(
                    label="Erased", interactive=False, autoplay=True, loop=True, elem_id="clip-erased"
                )
            ui.media_info = gr.Markdown(elem_id="media-info")
    ui.stale = gr.Markdown(elem_id="stale-note")
    ui.scores = gr.Markdown(elem_id="erase-scores")
    ui.this = gr.Markdown(elem_id="erase-this")
    ui.scores_key = gr.State(None)
    ui.media_key = gr.State(None)
    with gr.Row():
        ui.tokens = gr.HighlightedText(label="Where the edit lands (relative change per token at the block)")
        ui.subtracted = gr.Plot(label="Subtracted SAE features")
    ui.calibration = gr.Plot(label="The eraser's γ calibration", elem_id="calibration-chart")
    with gr.Accordion("All numbers (JSON)", open=False):
        ui.numbers = gr.JSON()
    gr.Markdown("#### Frame strip: original (top row) and erased (bottom row)")
    ui.strip = gr.Image(
        show_label=False, type="filepath", interactive=False, elem_id="frame-strip", buttons=["download"]
    )
    with gr.Row():
        ui.rate_note = gr.Markdown()
        ui.rate = gr.Button("Rate over seeds", scale=0, min_width=160)
    ui.rate_key = gr.State(None)
    with gr.Row():
        ui.rate_chart = gr.Plot(
            label="Testbed: generative rate over seeds, original vs erased", visible=False
        )
        ui.rate_numbers = gr.JSON(label="Rate over seeds (numbers)", visible=False)
    with gr.Row():
        ui.detector = gr.Dropdown(
            DETECTORS,
            value=DETECTORS[0] if default == "testbed" else "nudenet",
            allow_custom_value=True,
            label="Detector",
            info="testbed (the testbed's detector, for the eraser's concept), nudenet, faces:FOLDER of "
            "reference photos per identity, clip:FOLDER of local CLIP weights",
            scale=3,
        )
        ui.measure = gr.Button("Measure the clips", scale=1)
    ui.measure_strip = gr.Image(label="Detections per frame (red border: concept found)", interactive=False)
    with gr.Row():
        ui.measure_chart = gr.Plot(
            label="Generative rate: share of frames where the detector finds the concept"
        )
        ui.measure_numbers = gr.JSON(label="Rates, scores and the detector's pinned versions")
    ui.media_files = gr.File(
        label="Download the mp4s and their JSON", file_count="multiple", interactive=False
    )
    return ui


def _export_tab() -> SimpleNamespace:
    _intro(
        "Download the eraser (safetensors + JSON, with the search history and the pairs) and a run "
        "report (JSON, and HTML with the figures, seeds and library versions). Upload an artifact to "
        "continue from it: it is checked against the loaded model."
    )
    ui = SimpleNamespace()
    ui.run = gr.Button("Build artifact and report", variant="primary")
    ui.message = gr.Markdown()
    ui.files = gr.File(label="Downloads", file_count="multiple", interactive=False)
    gr.Markdown("### Continue from an artifact")
    ui.upload = gr.File(
        label="The exported .zip, or eraser.json + eraser.safetensors",
        file_count="multiple",
        file_types=[".zip", ".json", ".safetensors"],
    )
    ui.load = gr.Button("Load eraser")
    ui.load_message = gr.Markdown()
    return ui


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


def build_demo() -> gr.Blocks:
    """The whole workbench as a ``gr.Blocks`` (launch with :func:`app.launch.launch_options`)."""
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        session = gr.State(new_session, delete_callback=cleanup_session)
        gr.Markdown(HEADER, elem_id="clear-title")
        status = gr.Markdown(session_status(None), elem_id="session-status")
        timer = gr.Timer(1.0)
        with gr.Tabs():
            with gr.Tab("1 · Concept", id="concept"):
                c = _concept_tab()
            with gr.Tab("2 · Layer map", id="layer_map"):
                lm = _layer_tab()
            with gr.Tab("3 · Search", id="search"):
                s = _search_tab()
            with gr.Tab("4 · Features & masks", id="features"):
                f = _features_tab()
            with gr.Tab("5 · Erase & preview", id="preview") as preview:
                p = _preview_tab()
            with gr.Tab("6 · Export", id="export"):
                x = _export_tab()

        # Step 1 ----------------------------------------------------------------------------------
        timer.tick(model_tick, [session], [status, timer], api_name="model_status", show_progress="hidden")
        light = dict(concurrency_limit=None, show_progress="hidden")
        private = dict(light, api_visibility="private")
        # new pairs replace every field of the concept on the page at once (name, paraphrases, the
        # Search tab's Keep box) and empty every result computed from the previous pairs
        concept_outputs = [c.table, c.name, c.implicit, c.neutral, c.summary, status, s.keep, session]
        stale_for_pairs = [
            lm.separability,
            lm.projections,
            lm.status,
            *_feature_outputs(f),
            *_result_outputs(p),
        ]
        stale_for_eraser = [*_feature_outputs(f), *_result_outputs(p)]
        clear_pairs = dict(fn=_blanks(stale_for_pairs), inputs=None, outputs=stale_for_pairs, **private)
        clear_eraser = dict(fn=_blanks(stale_for_eraser), inputs=None, outputs=stale_for_eraser, **private)
        demo.load(
            load_pack, [c.pack, session], concept_outputs, api_name="init", show_progress="hidden"
        ).success(**clear_pairs)
        c.load_pack.click(load_pack, [c.pack, session], concept_outputs, api_name="load_pack").success(
            **clear_pairs
        )
        # a bad file or paste fails in a first event without outputs: the message shows and the pairs
        # table keeps its pairs instead of wearing an error badge
        upload_inputs = [c.upload, c.name, c.implicit, c.neutral, session]
        c.upload.upload(checked(load_upload), upload_inputs, None, **private).success(
            load_upload, upload_inputs, concept_outputs, api_name="upload_concept"
        ).success(**clear_pairs)
        parse_inputs = [c.paste, c.fmt, c.name, c.implicit, c.neutral, session]
        c.parse.click(checked(parse_text), parse_inputs, None, **private).success(
            parse_text, parse_inputs, concept_outputs, api_name="parse_text"
        ).success(**clear_pairs)
        table_inputs = [c.table, c.name, c.implicit, c.neutral, session]
        c.use_table.click(checked(use_table), table_inputs, None, **private).success(
            use_table, table_inputs, [c.summary, status, s.keep, session], api_name="use_table"
        ).success(**clear_pairs)
        s.keep.input(set_keep, [s.keep, session], [c.summary, session], api_name="set_keep", **light)
        c.load_model.click(
            load_model, [c.model, session], [c.model_info, status, session], api_name="load_model"
        )

        # Step 2 ----------------------------------------------------------------------------------
        # heavy jobs: a light check first, outside their queue (a missing concept is reported at once,
        # not after another visitor's search); progress "minimal" keeps the status line readable
        lm.run.click(
            check_layer_map, [lm.method, lm.pooling, session], None, api_name="check_layer_map", **light
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
        lm.stop.click(
            stop_layer_map, [session], [lm.status], api_name="stop_layer_map", concurrency_limit=None
        )

        # Step 3 ----------------------------------------------------------------------------------
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
        ]
        s.start.click(check_search, search_inputs, None, api_name="check_search", **light).success(
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
        ).success(**clear_eraser)
        s.stop.click(stop_search, [session], [s.status], api_name="stop_search", concurrency_limit=None)

        # Step 4 ----------------------------------------------------------------------------------
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

        # Step 5 ----------------------------------------------------------------------------------
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
            **private,
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
        p.pipeline.change(clear_media, None, media_stale, api_name="clear_media", **light).then(**stale)

        # Step 6 ----------------------------------------------------------------------------------
        x.run.click(export_run, [session], [x.files, x.message, session], api_name="export")
        x.load.click(
            load_eraser,
            [x.upload, session],
            [x.load_message, p.calibration, p.gamma, status, session],
            api_name="load_eraser",
        ).success(**clear_eraser)
    return demo
