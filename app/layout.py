"""The page: six steps in tabs, wired to the plain callbacks of the ``app/*_tab.py`` modules.

Layout only: the components of each tab (the Search tab's from the config dataclasses, app/controls.py);
app/events.py wires them to the callbacks, which hold the work. Building the page imports neither torch
nor transformers, so the first screen appears while the default model loads in the background.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from app import controls, events
from app.common import session_status
from app.concept_tab import concept_summary, pack_choices
from app.features_tab import ACTIVATION_COLORS
from app.generation import NO_PIPELINE, default_pipeline, pipeline_choices
from app.preview_tab import DETECTORS
from app.search_tab import GAMMA_MAX, KINDS, METHODS
from app.state import DEFAULT_MODEL, Session, cleanup_session, new_session
from clear_core.config import MASKS, EraserOptions, SearchConfig
from clear_core.lookalikes import default_preserve
from clear_core.options import field_default

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
    ui.probe_gate = controls.checkbox(
        EraserOptions,
        "probe_gate",
        "Probe gate",
        "on the 21 built-in concepts, held-out paraphrases halved for 19 of 21 on text (3 without) and "
        "11 of 14 on frames (4), at ×1.20 the run time; nudity's eraser then changes clothed people too",
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
            # until an eraser sets its calibrated default: EraserOptions.gamma, the γ of an uncalibrated eraser
            ui.gamma = gr.Slider(
                0,
                GAMMA_MAX,
                value=field_default(EraserOptions, "gamma"),
                step=0.05,
                label="γ (erasure strength)",
            )
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

        page = SimpleNamespace(
            demo=demo,
            session=session,
            status=status,
            timer=timer,
            preview=preview,
            c=c,
            lm=lm,
            s=s,
            f=f,
            p=p,
            x=x,
        )
        events.wire(page)
    return demo
