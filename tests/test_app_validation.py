"""Bad input in the app: refused by the light checks that run before the heavy queue, in the library's
words, naming the user's file (never a server temp path), with the session left as it was."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import gradio as gr
import pytest

from app import concept_tab, export_tab, layer_tab, search_tab
from app.common import block_label, checked, hide_path
from app.features_tab import highlight_tokens, word_pieces
from app.state import Session

FORM = dict(
    steps=20,
    d_sae=256,
    seed=0,
    use_con=True,
    kind="SAE (CLEAR)",
    mask="contrastive",
    method="Gumbel-softmax search",
    calibration_pairs=8,
    gammas_text="0, 1, 2",
    keep_text="kite, umbrella",
)


def pack_session() -> Session:
    *_outputs, session = concept_tab.load_pack("parachute", Session())
    return session


def test_checks_say_what_is_missing_without_running_anything():
    with pytest.raises(gr.Error, match="no prompt pairs yet"):
        search_tab.check_search(**FORM, session=Session())
    with pytest.raises(gr.Error, match="no prompt pairs yet"):
        layer_tab.check_layer_map("tsne", "mean", Session())
    search_tab.check_search(**FORM, session=pack_session())  # a good form passes
    layer_tab.check_layer_map("tsne", "mean", pack_session())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("seed", math.nan, "seed must be an integer, got nan"),
        ("seed", None, "seed must be an integer, got None"),
        ("steps", 0, "steps must be ≥ 1, got 0"),
        ("gammas_text", "0, nan", "γ grid: nan is outside 0..20"),
        ("gammas_text", "0, inf", "γ grid: inf is outside 0..20"),
        ("calibration_pairs", 1, "calibration_pairs must be ≥ 2"),
    ],
)
def test_bad_search_numbers_are_refused_up_front(field, value, message):
    with pytest.raises(gr.Error, match=message):
        search_tab.check_search(**{**FORM, field: value}, session=pack_session())


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        ("kite, Kite", "Keep \\(look-alikes\\): 'Kite' is listed twice"),
        ("kite, \u200b", "Keep \\(look-alikes\\): the look-alike name is empty"),
    ],
)
def test_a_bad_keep_list_is_one_line_up_front(keep, message):
    with pytest.raises(gr.Error, match=message) as err:
        search_tab.check_search(**{**FORM, "keep_text": keep}, session=pack_session())
    assert "\n" not in err.value.message and "--preserve" not in err.value.message


def test_keep_list_maps_onto_eraser_options_like_the_cli():
    options = search_tab.eraser_options(
        "SAE (CLEAR)", "contrastive", "Gumbel-softmax search", 8, "1", "kite, tuba"
    )
    assert options.preserve == ("kite", "tuba")
    assert (
        search_tab.eraser_options("SAE (CLEAR)", "contrastive", "search", 8, "1", " , ").preserve == ()
    )  # off
    assert (
        search_tab.eraser_options("SAE (CLEAR)", "contrastive", "search", 8, "1").preserve is None
    )  # built-in
    assert search_tab.default_keep(pack_session()) == "kite, hot-air balloon, umbrella"
    assert search_tab.default_keep(Session()) == ""
    custom = pack_session().with_(
        concept=concept_tab.parse_text(
            '{"positive": "a dog with a hat", "negative": "a dog"}\n{"positive": "a cat with a hat", "negative": "a cat"}',
            "jsonl",
            "hats",
            "",
            "",
            Session(),
        )[-1].concept
    )
    assert search_tab.default_keep(custom) == ""
    # a look-alike that cannot be written from a custom concept's pairs fails before any model work
    with pytest.raises(
        gr.Error, match="Keep \\(look-alikes\\): concept 'hats': cannot tell.*; empty the box"
    ) as err:
        search_tab.check_search(**FORM, session=custom)
    assert "--preserve-file" not in err.value.message
    search_tab.check_search(**{**FORM, "keep_text": ""}, session=custom)  # nothing to keep: fine
    search_tab.check_search(**{**FORM, "mask": "paper"}, session=custom)  # the paper mask protects nothing


def test_gate_box_maps_onto_eraser_options_and_needs_lookalikes():
    gated = search_tab.eraser_options("SAE (CLEAR)", "contrastive", "search", 8, "1", "kite", True)
    assert gated.gate and gated.preserve == ("kite",)
    assert not search_tab.eraser_options("SAE (CLEAR)", "contrastive", "search", 8, "1").gate
    search_tab.check_search(**FORM, session=pack_session(), gate=True)  # the pack's look-alikes: fine
    with pytest.raises(gr.Error, match="Look-alike gate: the Keep box is empty"):
        search_tab.check_search(**{**FORM, "keep_text": ""}, session=pack_session(), gate=True)
    with pytest.raises(gr.Error, match="need the SAE eraser with the contrastive mask"):
        search_tab.check_search(**{**FORM, "mask": "paper"}, session=pack_session(), gate=True)
    pairs = '{"positive": "a dog with a hat", "negative": "a dog"}\n{"positive": "a cat with a hat", "negative": "a cat"}'
    custom = concept_tab.parse_text(pairs, "jsonl", "hats", "", "", Session())[-1]
    with pytest.raises(gr.Error, match="Look-alike gate: this concept has no look-alikes") as err:
        search_tab.check_search(**{**FORM, "keep_text": None}, session=custom, gate=True)  # no built-in list
    assert "--preserve" not in err.value.message


def test_probe_gate_box_maps_onto_eraser_options_and_needs_the_sae_eraser():
    probed = search_tab.eraser_options("SAE (CLEAR)", "contrastive", "search", 8, "1", None, False, True)
    assert probed.probe_gate and not probed.gate
    assert not search_tab.eraser_options("SAE (CLEAR)", "contrastive", "search", 8, "1").probe_gate
    search_tab.check_search(**FORM, session=pack_session(), probe_gate=True)
    for bad in ({"mask": "paper"}, {"kind": "steering vector (dense baseline)"}):
        with pytest.raises(gr.Error, match="Probe gate: it needs the SAE \\(CLEAR\\) eraser"):
            search_tab.check_search(**{**FORM, **bad}, session=pack_session(), probe_gate=True)
    # the estimate counts its second sweep and its check
    import dataclasses
    from types import SimpleNamespace

    from clear_core import workflow
    from clear_core.search import SearchConfig

    def cost(options):
        run = workflow.ClearRun(SimpleNamespace(n_blocks=6), pack_session().concept, SearchConfig(), options)
        return search_tab.calibration_cost(run)

    probe, plain = cost(probed), cost(dataclasses.replace(probed, probe_gate=False))
    assert (probe.sweeps, probe.checks) == (2, 1) and (plain.sweeps, plain.checks) == (1, 0)
    assert probe.encodes(3) - 2 == pytest.approx(2 * (plain.encodes(3) - 1))  # 1 unerased pass each


def test_upload_errors_name_the_users_file_not_the_server_path(tmp_path):
    upload = tmp_path / "gradio" / "0123abcd" / "garbage.jsonl"  # where Gradio keeps an upload
    upload.parent.mkdir(parents=True)
    upload.write_text('{"positive": "a cat"}\n')
    session = pack_session()
    with pytest.raises(gr.Error) as err:
        concept_tab.load_upload(str(upload), "", "", "", session)
    assert err.value.message == "garbage.jsonl, line 1: missing key 'negative'"
    assert session.concept.name == "parachute"  # the pairs are kept


def test_a_poisoned_artifact_names_the_upload_and_keeps_the_eraser(small_run, tmp_path):
    folder = small_run.eraser.save(tmp_path / "eraser")
    info = json.loads((folder / "eraser.json").read_text())
    (folder / "eraser.json").write_text(json.dumps({**info, "default_gamma": -5}))
    archive = tmp_path / "mine.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in folder.iterdir():
            zf.write(path, path.name)
    session = Session(eraser=small_run.eraser, eraser_source="search")
    with pytest.raises(gr.Error) as err:
        export_tab.load_eraser([str(archive)], session)
    assert err.value.message == "uploaded mine.zip: eraser.json: default_gamma must be ≥ 0, got -5"
    assert session.eraser is small_run.eraser and session.eraser_source == "search"


def test_held_out_prompts_refuse_invisible_and_overlong_lines():
    with pytest.raises(
        gr.Error, match=r"paraphrases, line 2: the prompt is empty \(only invisible characters\)"
    ):
        concept_tab.parse_text(
            '{"positive": "a red hat", "negative": "a hat"}',
            "jsonl",
            "hats",
            "a\n\u200b\u200b",
            "b\nc",
            Session(),
        )
    with pytest.raises(ValueError, match="neutral prompts, line 1: the prompt is 2,001 characters long"):
        concept_tab.parse_prompt_lines("x" * 2001, "neutral prompts")


def test_checked_runs_a_callback_for_its_errors_only():
    check = checked(concept_tab.parse_text)
    assert check.__name__ == "check_parse_text"
    assert check('{"positive": "a red hat", "negative": "a hat"}', "jsonl", "hats", "", "", Session()) is None
    with pytest.raises(gr.Error, match="pasted text, line 1: not valid JSON"):
        check("{oops", "jsonl", "hats", "", "", Session())


def test_block_names_follow_the_module_numbers():
    assert block_label(4, "encoder.layer.3") == "block 3 (`encoder.layer.3`)"


def test_hide_path():
    assert hide_path("/tmp/x/up-1/eraser.json: bad", "/tmp/x/up-1", "uploaded a.zip") == (
        "uploaded a.zip: eraser.json: bad"
    )
    assert hide_path("/tmp/g/h/garbage.jsonl, line 3: bad", "/tmp/g/h/garbage.jsonl", "garbage.jsonl") == (
        "garbage.jsonl, line 3: bad"
    )


def test_wordpieces_read_as_words():
    assert "".join(word_pieces(["[CLS]", "para", "##chute", "##s", "over", "[SEP]"])) == (
        "[CLS] parachutes over [SEP]"
    )
    assert "".join(word_pieces(["▁a", "▁sky", "diver", "</s>"])) == "a skydiver </s>"
    assert "".join(word_pieces(["<|startoftext|>", "sky", "diver</w>", "ok</w>", "<|endoftext|>"])) == (
        "<|startoftext|> skydiver ok <|endoftext|>"
    )

    class Item:
        tokens, values, peak = ["a", "para", "##chute"], [0.0, 1.0, 0.5], 1.0

    spans = highlight_tokens([Item()])
    assert [text for text, _ in spans] == ["a", " para", "chute", " (peak 1.00)\n"]
    assert [label for _, label in spans][:3] == [None, "strong", "medium"]  # each piece keeps its colour


def test_export_states_the_size_the_file_list_shows(small_run):
    session = Session(eraser=small_run.eraser, eraser_source="search")
    files, message, new = export_tab.export_run(session)
    size = Path(files[0]).stat().st_size / 2**20
    assert f"({size:.1f} MiB:" in message
    from app.state import cleanup_session

    cleanup_session(new)


def test_a_tiny_concept_warns_before_the_heavy_jobs(monkeypatch):
    shown = []
    monkeypatch.setattr(gr, "Warning", lambda message, *a, **k: shown.append(message))
    pairs = '{"positive": "a red hat", "negative": "a hat"}\n{"positive": "a red cat", "negative": "a cat"}'
    *_outputs, session = concept_tab.parse_text(pairs, "jsonl", "hats", "", "", Session())
    layer_tab.check_layer_map("pca", "mean", session)
    search_tab.check_search(**{**FORM, "keep_text": ""}, session=session)  # a custom set keeps nothing
    assert (
        shown
        == ["only 2 pairs: below 8 the results rest on too few prompts to trust (the paper uses 500-3000)"]
        * 2
    )
    shown.clear()
    search_tab.check_search(**FORM, session=pack_session())
    assert shown == []


def test_search_eta_counts_the_calibration():
    from types import SimpleNamespace

    event = SimpleNamespace(step=10, total=20, elapsed=5.0)
    assert search_tab._eta(event, 10.0) == ", about 15 s left (calibration included)"
    assert search_tab._eta(SimpleNamespace(step=0, total=20, elapsed=0.0), 10.0) == ""
    # one unerased encode; the blocks up to the eraser's once more; the blocks above it once per γ > 0
    cost = search_tab.CalibrationCost(prompts=100, gammas=2, n_blocks=6)
    assert cost.encodes(6) == pytest.approx(2.0)  # the last block: nothing above it to run per γ
    assert cost.encodes(3) == pytest.approx(1 + 0.5 + 2 * 0.5)
    assert cost.seconds(0.01, [3]) == pytest.approx(0.01 * 100 * 2.5)
    assert cost.seconds(0.01, [1, 3, 6]) == pytest.approx(0.01 * 100 * (1 + 1 / 6 + 2 * 5 / 6))  # dearest
    # while the search runs, the block it currently favours; for brute force, every candidate
    probs = SimpleNamespace(probs=[0.1, 0.7, 0.2])
    assert search_tab._likely_layer(probs, [2, 4, 6], brute=False) == [4]
    assert search_tab._likely_layer(probs, [2, 4, 6], brute=True) == [2, 4, 6]
    assert search_tab._likely_layer(None, [2, 4, 6], brute=False) == [2, 4, 6]


def test_calibration_cost_counts_the_prompts_the_calibration_encodes(monkeypatch):
    """The estimate's prompt count is what ClearRun's calibration encodes (its Baseline) and sweeps."""
    from types import SimpleNamespace

    from clear_core import workflow
    from clear_core.config import EraserOptions, SearchConfig

    class Handed(Exception):
        pass

    handed = {}

    def fake_build(encoder, positives, negatives, implicit=None, unrelated=None, *args, **kw):
        sets = [positives, negatives, implicit or [], unrelated or [], kw.get("lookalikes") or []]
        handed.update(prompts=sum(map(len, sets)))
        return "baseline"

    def fake_evaluate(encoder, eraser, gammas=(), baseline=None, **kw):
        assert baseline == "baseline"
        handed.update(gammas=len({g for g in gammas if g > 0}))
        raise Handed

    monkeypatch.setattr(workflow.Baseline, "build", fake_build)
    monkeypatch.setattr(workflow, "evaluate", fake_evaluate)
    concept = pack_session().concept
    encoder = SimpleNamespace(n_blocks=6)  # the count needs no model
    for options in (
        EraserOptions(calibration_pairs=16, gammas=(0.0, 1.0, 2.0, 2.0)),  # the pack's look-alikes
        EraserOptions(preserve=(), calibrate_on_implicit=False),
        EraserOptions(kind="steering"),  # protects nothing
    ):
        run = workflow.ClearRun(encoder, concept, SearchConfig(), options)
        with pytest.raises(Handed):
            run._calibrate(SimpleNamespace(without_prompt_gate=lambda: None, probe=None))
        expected = search_tab.CalibrationCost(handed["prompts"], handed["gammas"], 6)
        assert search_tab.calibration_cost(run) == expected and expected.prompts > 0
    uncalibrated = workflow.ClearRun(encoder, concept, SearchConfig(), EraserOptions(calibrate=False))
    assert search_tab.calibration_cost(uncalibrated).prompts == 0


def test_the_search_summary_says_what_the_probe_gate_did():
    from types import SimpleNamespace

    def eraser(meta, probe=True, strength=1.0):
        return SimpleNamespace(
            concept="nudity", meta=meta, probe={"weight": None} if probe else None, probe_strength=strength
        )

    assert search_tab.probe_summary(eraser({}, probe=False)) == ""  # not asked for
    line = search_tab.probe_summary(
        eraser(
            {"probe_gate": {"calibration_negatives_caught": 0.58, "reference_dropped": []}}, strength=4 / 3
        )
    )
    assert "erased at **1.33·γ**" in line and "58% of the calibration pairs' negatives" in line
    assert "will change" in line
    quiet = search_tab.probe_summary(
        eraser({"probe_gate": {"calibration_negatives_caught": 0.05}}, strength=0.75)
    )
    assert "erased at least at **0.75·γ**" in quiet and "5%" in quiet and "will change" not in quiet
    dropped = search_tab.probe_summary(eraser({"probe_gate": {"reference_dropped": ["nudity"]}}))
    assert dropped.endswith("Built-in packs it did not take as concept-free: nudity.")
    off = search_tab.probe_summary(
        eraser(
            {"probe_gate_skipped": "probe gate off: it calls the empty prompt the concept (logit +0.25)"},
            probe=False,
        )
    )
    assert off == "Probe gate: **off** (it calls the empty prompt the concept (logit +0.25))."
