"""The page: six steps in tabs, wired to the plain callbacks of the ``app/*_tab.py`` modules.

Layout only: every event names a callback and gets an ``api_name`` (so ``gradio_client`` can drive the
whole flow); the callbacks hold the work. Building the page imports neither torch nor transformers,
so the first screen appears while the default model loads in the background.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from app.common import checked, model_tick, session_status
from app.concept_tab import (
    concept_summary,
    load_model,
    load_pack,
    load_upload,
    pack_choices,
    parse_text,
    use_table,
)
from app.export_tab import export_run, load_eraser
from app.features_tab import ACTIVATION_COLORS, analyse_features, feature_detail
from app.generation import NO_PIPELINE, default_pipeline, pipeline_choices
from app.launch import HEAVY_CONCURRENCY
from app.layer_tab import check_layer_map, compute_layer_map, stop_layer_map
from app.preview_tab import (
    DETECTORS,
    erase_prompt,
    example_prompt,
    fill_prompt,
    generate_media,
    measure_media,
    rate_over_seeds,
    rerate_media,
    rerender_media,
)
from app.search_tab import GAMMA_MAX, KINDS, check_search, default_keep, run_search, stop_search
from app.state import DEFAULT_MODEL, Session, cleanup_session, new_session
from clear_core.lookalikes import default_preserve

__all__ = ["DEFAULT_PACK", "TITLE", "build_demo"]

TITLE = "CLEAR Workbench"
DEFAULT_PACK = "parachute"
DEFAULT_GAMMAS = "0, 0.25, 0.5, 1, 1.5, 2, 3, 4, 6, 8"

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
        ui.steps = gr.Slider(20, 3000, value=300, step=10, label="Steps")
        ui.d_sae = gr.Dropdown([256, 512, 1024, 2048, 4096, 8192], value=2048, label="SAE features (d_sae)")
        ui.seed = gr.Number(0, precision=0, label="Seed")
    ui.keep = gr.Textbox(
        ", ".join(default_preserve(DEFAULT_PACK)),
        label="Keep (look-alikes)",
        info="comma-separated neighbours of the concept that must survive its erasure (a pack's own list "
        "is filled in when its pairs load); prompts about them are written from the pairs and protected "
        "in the mask and the γ calibration. Empty: protect nothing",
        max_lines=1,
        max_length=1000,
    )
    ui.gate = gr.Checkbox(
        False,
        label="Look-alike gate",
        info="erase a token only as far as its concept features go beyond what the look-alikes use "
        "(keeps look-alikes closer; on MiniLM it opened the golf ball / tennis ball and French horn / "
        "trumpet windows, at a higher γ)",
    )
    with gr.Accordion("Ablations and calibration", open=False):
        with gr.Row():
            ui.use_con = gr.Checkbox(
                True, label="Contrastive loss L_con", info="untick: reconstruction-only ablation"
            )
            ui.kind = gr.Radio(list(KINDS), value=next(iter(KINDS)), label="Eraser")
            ui.mask = gr.Radio(
                ["contrastive", "paper"],
                value="contrastive",
                label="Feature mask",
                info="'paper' is the literal mask of the paper: it erases almost every feature",
            )
            ui.method = gr.Radio(
                ["Gumbel-softmax search", "brute force (one SAE per block)"],
                value="Gumbel-softmax search",
                label="Layer selection",
            )
        with gr.Row():
            ui.calibration_pairs = gr.Slider(8, 256, value=64, step=8, label="Calibration pairs")
            ui.gammas = gr.Textbox(DEFAULT_GAMMAS, label="γ grid searched by the calibration")
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
        "Type any prompt and move γ: see whether the concept probe still detects the concept, how much "
        "of the rest survives, where on the prompt the edit lands and which features were subtracted. "
        "γ starts at the eraser's calibrated default."
    )
    ui = SimpleNamespace()
    with gr.Row():
        ui.prompt = gr.Textbox(
            "",
            label="Prompt",
            placeholder="a prompt to erase — or take an example of the loaded concept below",
            max_length=2000,
            scale=3,
            submit_btn=False,
        )
        ui.gamma = gr.Slider(0, GAMMA_MAX, value=1.0, step=0.05, label="γ (erasure strength)", scale=2)
    with gr.Row():
        gr.Markdown("Examples from the loaded concept:")
        ui.ex_explicit = gr.Button("explicit (names it)", size="sm")
        ui.ex_implicit = gr.Button("implicit (evokes it)", size="sm")
        ui.ex_unrelated = gr.Button("unrelated", size="sm")
    ui.run = gr.Button("Erase", variant="primary")
    ui.scores = gr.Markdown()
    ui.this = gr.Markdown()
    with gr.Row():
        ui.tokens = gr.HighlightedText(label="Where the edit lands (relative change per token at the block)")
        ui.subtracted = gr.Plot(label="Subtracted SAE features")
    ui.calibration = gr.Plot(
        label="Calibration: leakage (lower is better) and preservation (higher is better) against γ"
    )
    with gr.Accordion("All numbers (JSON)", open=False):
        ui.numbers = gr.JSON()
    gr.Markdown("### Original vs erased video")
    default = default_pipeline()
    ui.media_note = gr.Markdown(
        "Render the prompt twice with the **same seed and initial latents**: without the eraser and with it "
        "at this γ. The default pipeline is the CPU testbed, a small synthetic world of the paper's concepts "
        "(not a real video model); name a diffusers folder or Hugging Face id to use another."
        if default
        else NO_PIPELINE
    )
    with gr.Row():
        ui.pipeline = gr.Dropdown(
            pipeline_choices(),
            value=default or None,
            allow_custom_value=True,
            label="Pipeline",
            info="'testbed', tiny-* (random weights), a diffusers folder or a Hugging Face id",
            scale=2,
        )
        ui.media_seed = gr.Number(0, precision=0, minimum=0, label="Seed", scale=1)
        ui.media_steps = gr.Slider(1, 50, value=10, step=1, label="Denoising steps", scale=2)
        ui.auto = gr.Checkbox(True, label="Re-render when γ moves", scale=1)
    ui.generate = gr.Button("Generate original and erased", variant="primary")
    ui.media_info = gr.Markdown()
    with gr.Row():
        ui.original = gr.Video(label="Original", interactive=False, autoplay=True, loop=True)
        ui.erased = gr.Video(label="Erased", interactive=False, autoplay=True, loop=True)
    ui.strip = gr.Image(
        label="Frame strip: original (top) and erased (bottom)", type="filepath", interactive=False
    )
    ui.rate_note = gr.Markdown()
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
        pack_outputs = [c.table, c.name, c.implicit, c.neutral, c.summary, status, session]
        light = dict(concurrency_limit=None, show_progress="hidden")
        private = dict(light, api_visibility="private")
        # new pairs refill the Search tab's Keep box with their pack's look-alikes ("" for a custom set)
        keep = dict(fn=default_keep, inputs=[session], outputs=[s.keep], **private)
        demo.load(
            load_pack, [c.pack, session], pack_outputs, api_name="init", show_progress="hidden"
        ).success(**keep)
        c.load_pack.click(load_pack, [c.pack, session], pack_outputs, api_name="load_pack").success(**keep)
        # a bad file or paste fails in a first event without outputs: the message shows and the pairs
        # table keeps its pairs instead of wearing an error badge
        upload_inputs = [c.upload, c.implicit, c.neutral, session]
        c.upload.upload(checked(load_upload), upload_inputs, None, **private).success(
            load_upload,
            upload_inputs,
            [c.table, c.name, c.summary, status, session],
            api_name="upload_concept",
        ).success(**keep)
        parse_inputs = [c.paste, c.fmt, c.name, c.implicit, c.neutral, session]
        c.parse.click(checked(parse_text), parse_inputs, None, **private).success(
            parse_text, parse_inputs, [c.table, c.summary, status, session], api_name="parse_text"
        ).success(**keep)
        table_inputs = [c.table, c.name, c.implicit, c.neutral, session]
        c.use_table.click(checked(use_table), table_inputs, None, **private).success(
            use_table, table_inputs, [c.summary, status, session], api_name="use_table"
        ).success(**keep)
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
            [
                s.probs,
                s.losses,
                s.status,
                s.summary,
                p.calibration,
                lm.separability,
                lm.projections,
                p.gamma,
                status,
                session,
            ],
            api_name="search",
            concurrency_limit=HEAVY_CONCURRENCY,
            concurrency_id="search",
            show_progress="minimal",
            show_progress_on=[s.status],
        )
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
        gr.on(
            [p.run.click, p.prompt.submit, p.gamma.release],
            erase_prompt,
            [p.prompt, p.gamma, session],
            [p.scores, p.this, p.tokens, p.subtracted, p.numbers, session],
            api_name="erase",
            show_progress="minimal",
        )
        # the testbed's rate over seeds follows the clips in the same pipeline queue (one denoising
        # job at a time); with another pipeline it only hides its chart, without model work
        media_inputs = [p.prompt, p.gamma, p.media_seed, p.pipeline, p.media_steps, session]
        rate_outputs = [p.rate_chart, p.rate_note, p.rate_numbers]
        pipeline_queue = dict(concurrency_limit=1, concurrency_id="generate")
        p.generate.click(
            generate_media,
            media_inputs,
            [p.original, p.erased, p.strip, p.media_files, p.media_info],
            api_name="generate",
            **pipeline_queue,
        ).success(
            rate_over_seeds,
            media_inputs,
            rate_outputs,
            api_name="rate_over_seeds",
            show_progress_on=[p.rate_note],
            **pipeline_queue,
        )
        p.measure.click(
            measure_media,
            [p.original, p.erased, p.detector, session],
            [p.measure_strip, p.measure_chart, p.measure_numbers],
            api_name="measure",
            concurrency_limit=1,
            concurrency_id="generate",
        )
        rerender_inputs = [p.auto, p.original, *media_inputs]
        p.gamma.release(
            rerender_media,
            rerender_inputs,
            [p.original, p.erased, p.strip, p.media_files, p.media_info],
            api_name="rerender",
            **pipeline_queue,
        ).success(rerate_media, rerender_inputs, rate_outputs, api_name="rerate", **pipeline_queue)
        for button, kind in (
            (p.ex_explicit, "explicit"),
            (p.ex_implicit, "implicit"),
            (p.ex_unrelated, "unrelated"),
        ):
            button.click(
                lambda s, k=kind: example_prompt(k, s),
                [session],
                [p.prompt],
                api_name=f"example_{kind}",
                concurrency_limit=None,
            )
        preview.select(
            fill_prompt, [p.prompt, session], [p.prompt], concurrency_limit=None, show_progress="hidden"
        )

        # Step 6 ----------------------------------------------------------------------------------
        x.run.click(export_run, [session], [x.files, x.message, session], api_name="export")
        x.load.click(
            load_eraser,
            [x.upload, session],
            [x.load_message, p.calibration, p.gamma, status, session],
            api_name="load_eraser",
        )
    return demo
