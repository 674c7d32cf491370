"""The workbench's callbacks, called as plain functions (no server, no browser).

One small fitted session (24 parachute pairs, a 20-step search) is shared by the tests that need an
eraser; every other test builds what it needs. Callbacks must never change the session they are
given: each test that could break that checks it.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import gradio as gr
import pytest

from app import concept_tab, export_tab, features_tab, layer_tab, models, preview_tab, search_tab
from app.common import model_tick, session_status
from app.launch import launch_options
from app.state import Session, cleanup_session, new_session
from clear_core.concepts import ConceptSet, load_builtin, load_implicit

ROOT = Path(__file__).resolve().parent.parent
N_PAIRS = 24
FAST_SEARCH = dict(
    steps=20,
    d_sae=256,
    seed=0,
    use_con=True,
    kind="SAE (CLEAR)",
    mask="contrastive",
    method="Gumbel-softmax search",
    calibration_pairs=8,
    gammas_text="0, 1, 2",
    keep_text="kite, hot-air balloon, umbrella",
)


class Recorder:
    """Stands in for gr.Progress: records (fraction, desc) calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str | None]] = []

    def __call__(self, fraction, desc=None, **_):
        self.calls.append((fraction, desc))


def last(generator):
    """Run a streaming callback to the end; return (every yield, the last one)."""
    items = list(generator)
    return items, items[-1]


def steering_like(e):
    """A dense steering eraser at the same block as ``e`` (the baseline's shape, zero direction)."""
    import torch

    from clear_core.erasure import Eraser

    return Eraser(
        e.concept,
        e.model_id,
        e.layer,
        e.layer_name,
        e.scale,
        e.d_model,
        kind="steering",
        direction=torch.zeros(e.d_model),
        mask="none",
    )


def small_session() -> Session:
    """24 parachute pairs with their held-out paraphrases, set through the table callback."""
    rows, name, implicit, neutral, *_rest, session = concept_tab.load_pack("parachute", Session())
    _summary, _status, _keep, session = concept_tab.use_table(
        rows[:N_PAIRS], name, implicit, neutral, session
    )
    return session


@pytest.fixture(scope="module")
def search_run(tmp_path_factory) -> tuple[list, tuple]:
    """Every yield of a short search (module-scoped: one search serves every test below)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLEAR_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        return last(search_tab.run_search(**FAST_SEARCH, session=small_session()))


@pytest.fixture()
def fitted(search_run) -> Session:
    """The session after that search."""
    return search_run[1][-1]


# ------------------------------------------------------------------------------------ step 1
def test_pack_choices_list_every_pack_with_its_category():
    choices = concept_tab.pack_choices()
    slugs = [slug for _label, slug in choices]
    assert len(slugs) == 21 and "parachute" in slugs and "van_gogh" in slugs
    assert dict((s, label) for label, s in choices)["parachute"] == "parachute · object"


def test_load_pack_fills_table_and_held_out_prompts_without_touching_the_old_session():
    old = Session()
    rows, name, implicit, neutral, summary, status, keep, new = concept_tab.load_pack("parachute", old)
    assert len(rows) == 240 and rows[0] == [new.concept.pairs[0].positive, new.concept.pairs[0].negative]
    assert name == "parachute" and len(implicit.splitlines()) == len(load_implicit("parachute")[0]) == 24
    assert new.concept.name == "parachute" and len(new.implicit) == len(new.neutral) == 24
    assert "240 pairs" in summary and "parachute: 240" in status
    assert keep == "kite, hot-air balloon, umbrella" and new.keep == ("kite", "hot-air balloon", "umbrella")
    assert "look-alikes to keep: kite, hot" in summary and "umbrella" in summary
    assert old.concept is None and old.implicit == []


def test_table_errors_carry_the_library_message_and_keep_the_pairs():
    session = small_session()
    rows = [["a dog with a hat", "a dog"], ["", ""], ["a cat with a hat", ""]]
    with pytest.raises(ValueError) as lib:
        ConceptSet.from_pairs(
            [(1, "a dog with a hat", "a dog", ()), (3, "a cat with a hat", "", ())], source="table"
        )
    with pytest.raises(gr.Error) as ui:
        concept_tab.use_table(rows, "hats", "", "", session)
    assert ui.value.message == str(lib.value) == "table, line 3: the negative prompt is empty"
    assert len(session.concept) == N_PAIRS and session.concept.name == "parachute"


def test_table_skips_blank_rows_and_missing_cells():
    rows = [["a dog with a hat", "a dog"], [None, float("nan")], ["a cat with a hat", "a cat"]]
    summary, status, keep, new = concept_tab.use_table(rows, " hats ", "", "", Session())
    assert new.concept.name == "hats" and len(new.concept) == 2 and new.implicit == []
    assert "2 pairs" in summary


def test_held_out_prompts_must_pair_up():
    with pytest.raises(gr.Error, match="2 held-out paraphrases but 1 neutral prompts"):
        concept_tab.use_table([["a dog with a hat", "a dog"]], "hats", "one\ntwo", "one", Session())


def test_upload_reads_jsonl_and_reports_csv_errors_with_file_and_line(tmp_path):
    good = tmp_path / "hats.jsonl"
    pairs = [("a dog with a hat", "a dog"), ("a cat with a hat", "a cat")]
    ConceptSet.from_pairs(pairs, name="hats").save(good)
    rows, name, _implicit, _neutral, summary, _status, _keep, new = concept_tab.load_upload(
        str(good), "", "", "", Session()
    )
    assert name == "hats" and rows == [["a dog with a hat", "a dog"], ["a cat with a hat", "a cat"]]
    assert "`hats.jsonl`" in summary
    bad = tmp_path / "bad.csv"
    bad.write_text("positive,negative\na dog with a hat,a dog\na cat with a hat\n", encoding="utf-8")
    with pytest.raises(gr.Error, match=r"bad\.csv, line 3: expected 2 columns like the header, got 1"):
        concept_tab.load_upload(str(bad), "", "", "", new)
    with pytest.raises(gr.Error, match="no file uploaded"):
        concept_tab.load_upload(None, "", "", "", new)


def test_pasted_csv_and_jsonl_errors():
    rows, name, *_rest, new = concept_tab.parse_text(
        "positive,negative\na dog with a hat,a dog\n", "csv", "hats", "", "", Session()
    )
    assert rows == [["a dog with a hat", "a dog"]] and new.source == "pasted text" and name == "hats"
    with pytest.raises(gr.Error, match="pasted text, line 1: not valid JSON"):
        concept_tab.parse_text("{not json", "jsonl", "x", "", "", Session())


def test_new_pairs_clear_the_layer_map_but_keep_the_eraser(fitted):
    with_map = fitted.with_(layer_map="a map")
    *_rest, new = concept_tab.load_pack("van_gogh", with_map)
    assert new.layer_map is None and new.eraser is fitted.eraser and with_map.layer_map == "a map"
    # the header never passes the parachute eraser off as one for van Gogh's pairs
    assert "made for *parachute*, not these pairs" in session_status(new)
    assert "not these pairs" not in session_status(fitted)


KITE = "".join(
    f'{{"positive": "a {k} kite over a beach", "negative": "a beach"}}\n' for k in ("red", "box", "stunt")
)


def test_pasted_pairs_replace_the_whole_concept():
    """Pasting pairs after a pack: the pack's name, paraphrases and look-alikes are not carried over
    (before, the header said "Pairs parachute: 3, 24 held-out paraphrases" over kite pairs)."""
    rows, name, implicit, neutral, *_rest, pack = concept_tab.load_pack("parachute", Session())
    out = concept_tab.parse_text(KITE, "jsonl", name, implicit, neutral, pack)
    _rows, name, implicit, neutral, summary, status, keep, new = out
    assert (name, implicit, neutral, keep) == ("custom", "", "", "")
    assert new.concept.name == "custom" and new.implicit == [] and new.keep == ()
    assert "parachute" not in status and "held-out" not in status
    assert "Not carried over from the previous pairs: the name *parachute*; 24 paraphrases" in summary
    # a name typed for the new pairs, and paraphrases written for them, are the visitor's and stay
    out = concept_tab.parse_text(KITE, "jsonl", "kite", "a diamond of cloth on a string", "a beach", pack)
    new = out[-1]
    assert new.concept.name == "kite" and new.implicit == ["a diamond of cloth on a string"]
    # a search on them uses no pack's paraphrases behind the visitor's back
    assert out[6] == "" and "no look-alikes to keep" in out[4]


def test_uploaded_pairs_are_named_after_their_file(tmp_path):
    path = tmp_path / "kite.jsonl"
    path.write_text(KITE, encoding="utf-8")
    *_rest, pack = concept_tab.load_pack("nudity", Session())
    _rows, name, implicit, _neutral, summary, _status, _keep, new = concept_tab.load_upload(
        str(path), "nudity", "\n".join(pack.implicit), "\n".join(pack.neutral), pack
    )
    assert name == "kite" and implicit == "" and new.implicit == []
    assert "the name *nudity*" in summary


def test_the_keep_box_is_the_concepts_look_alikes(fitted):
    summary, new = concept_tab.set_keep(" kite ,  umbrella", fitted)
    assert new.keep == ("kite", "umbrella") and "look-alikes to keep: kite, umbrella" in summary


def test_model_loader_is_cached_and_reports_bad_names(tmp_path):
    info, status, new = concept_tab.load_model(" minilm ", Session())
    assert new.model == "minilm" and "6 blocks" in info and "ready" in status
    assert models.get_encoder("minilm") is models.get_encoder("minilm")
    with pytest.raises(gr.Error, match="no model given"):
        concept_tab.load_model("  ", Session())
    missing = tmp_path / "not-a-model.txt"
    missing.write_text("x")
    with pytest.raises(gr.Error, match="expected a model folder, got a file"):
        concept_tab.load_model(str(missing), Session())
    assert "failed to load" in session_status(Session(model=str(missing)))


def test_model_tick_stops_once_the_model_is_loaded():
    models.get_encoder("minilm")
    status, timer = model_tick(Session())
    assert "ready" in status and timer.active is False


# ------------------------------------------------------------------------------------ step 2
def test_layer_map_streams_figures_then_stores_the_map():
    session = small_session()
    progress = Recorder()
    items, final = last(layer_tab.compute_layer_map("pca", "mean", session, progress))
    assert len(items) > 3
    assert all(item[-1] == gr.skip() for item in items[:-1])  # the session changes only at the end
    sep, proj, status, _line, new = final
    assert new.layer_map.complete and new.layer_map.concept == "parachute" and session.layer_map is None
    assert "done" in status and sep.layout.title.text.startswith("parachute")
    assert len(proj.layout.annotations) >= 7  # one subplot title per layer
    fractions = [f for f, _ in progress.calls if f is not None]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)


def test_layer_map_stop_keeps_the_partial_map():
    session = small_session()
    gen = layer_tab.compute_layer_map("tsne", "mean", session)
    next(gen)
    assert "Stopping" in layer_tab.stop_layer_map(session)
    items = list(gen)
    new = items[-1][-1]
    assert new.layer_map is not None and not new.layer_map.complete
    assert "stopped early" in items[-1][2]


def test_layer_map_without_pairs_says_where_to_get_them():
    with pytest.raises(gr.Error, match="no prompt pairs yet"):
        next(layer_tab.compute_layer_map("pca", "mean", Session()))


# ------------------------------------------------------------------------------------ step 3
def test_search_streams_charts_and_builds_a_calibrated_eraser(fitted):
    run = fitted.run
    assert fitted.eraser is run.eraser and fitted.eraser_source == "search"
    settings = fitted.run_settings
    assert settings["search"]["seed"] == 0 and settings["options"]["gammas"] == [0.0, 1.0, 2.0]
    assert fitted.eraser.gamma in (1.0, 2.0) and not run.cancelled
    sweep = preview_tab.calibration_chart(fitted.eraser)
    names = {t.name for t in sweep.data}
    assert all(list(t.x) == [0.0, 1.0, 2.0] for t in sweep.data)
    assert "leakage: positive prompts" in names and "preservation: unrelated prompts" in names
    assert "leakage: held-out paraphrases" not in names  # calibration never sees them
    assert "leakage: calibration paraphrases" in names
    assert "calibration sample: 8 pairs, 12 calibration paraphrases" in sweep.layout.title.subtitle.text
    assert any(s.x0 == s.x1 == fitted.eraser.gamma for s in sweep.layout.shapes)
    summary = search_tab.search_summary(run)
    block = f"block {fitted.eraser.layer - 1} (`{fitted.eraser.layer_name}`)"  # block b is encoder.layer.b
    assert block in summary and fitted.eraser.layer_name.endswith(f".{fitted.eraser.layer - 1}")
    assert "seed 0" in summary


def test_search_streams_then_highlights_the_chosen_block(search_run):
    items, final = search_run
    assert all(item[-1] == gr.skip() for item in items[:-1])  # the session changes only at the end
    assert any(item[0] != gr.skip() for item in items[:-1])  # live charts before the end
    probs, losses, status, _summary, calibration, _sep, _proj, gamma, _line, new = final
    chosen = new.eraser.layer
    names = [t.name for t in probs.data]
    assert any(name.endswith("(chosen)") for name in names)
    assert names[new.run.search.candidates.index(chosen)].endswith("(chosen)")
    assert {t.name for t in losses.data} >= {"L_SAE", "L_con", "τ"}
    assert gamma == new.eraser.gamma and "done" in status
    assert calibration.layout.title.text.startswith("Calibration of the parachute eraser")


def test_search_stop_still_builds_an_eraser():
    session = small_session()
    gen = search_tab.run_search(**{**FAST_SEARCH, "steps": 400, "gammas_text": "0, 1"}, session=session)
    while True:
        item = next(gen)
        if "search" in item[2]:
            break
    search_tab.stop_search(session)
    new = list(gen)[-1][-1]
    assert new.run.cancelled and new.eraser is not None
    assert new.run.history[-1].step < 400 and "stopped early" in search_tab.search_summary(new.run)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0, x", "'x' is not a number"),
        ("0, 0", "at least one γ > 0"),
        ("", "at least one γ > 0"),
        ("1, 25", "25 is outside 0..20"),
        ("-1, 1", "-1 is outside 0..20"),
    ],
)
def test_gamma_grid_errors(text, message):
    with pytest.raises(ValueError, match=message):
        search_tab.parse_gammas(text)
    assert search_tab.parse_gammas("2; 0, 1,") == (0.0, 1.0, 2.0)


def test_ablation_labels_map_to_engine_options():
    options = search_tab.eraser_options(
        "steering vector (dense baseline)", "paper", "brute force (one SAE per block)", 16, "0, 2"
    )
    assert (options.kind, options.mask, options.method) == ("steering", "paper", "brute_force")
    assert options.calibration_pairs == 16 and options.gammas == (0.0, 2.0)
    default = search_tab.eraser_options("SAE (CLEAR)", "contrastive", "Gumbel-softmax search", 64, "1")
    assert (default.kind, default.method) == ("sae", "search")


def test_summary_says_which_lookalikes_were_kept(fitted):
    record = fitted.eraser.meta["preserve"]
    assert record["lookalikes"] == ["kite", "hot-air balloon", "umbrella"]  # from the Keep box
    summary = search_tab.search_summary(fitted.run)
    assert "Look-alikes kept: **kite, hot-air balloon, umbrella**" in summary
    assert f"({sum(record['n_protect'].values())} prompts protected" in summary
    assert "look-alikes at cosine ≥ 0.98" in summary  # the calibration's second floor
    meta = {k: v for k, v in fitted.eraser.meta.items() if k != "preserve"}
    bare = dataclasses.replace(fitted.run, eraser=dataclasses.replace(fitted.eraser, meta=meta))
    assert "Look-alikes: none protected (the Keep list was empty)" in search_tab.search_summary(bare)


def test_an_undecided_search_is_flagged_with_its_runner_up(fitted):
    run = fitted.run
    candidates = run.search.candidates
    decisive = [0.02] * len(candidates)
    decisive[-1] = 1 - 0.02 * (len(candidates) - 1)

    def with_probs(probs):
        from clear_core.search import layer_uncertainty

        search = dataclasses.replace(run.search, probs=probs, layer=candidates[probs.index(max(probs))])
        meta = {**run.eraser.meta, "layer_uncertainty": layer_uncertainty(probs).to_json()}
        return dataclasses.replace(run, search=search, eraser=dataclasses.replace(run.eraser, meta=meta))

    assert search_tab.undecided_warning(with_probs(decisive)) is None
    assert "Undecided" not in search_tab.search_summary(with_probs(decisive))
    split = [0.0] * len(candidates)
    split[1], split[3], split[0] = 0.4, 0.35, 0.25  # p = 0.40 < 0.5, runner-up block at candidates[3]
    summary = search_tab.search_summary(with_probs(split))
    runner = candidates[3]
    assert "⚠️ **Undecided search**" in summary and "margin 0.05" in summary
    assert f"runner-up **block {runner - 1} (`{run.search.layer_names[runner]}`)** p = 0.35" in summary
    assert "more steps" in summary and "brute force" in summary


def test_summary_names_the_steering_baseline(fitted):
    steering = dataclasses.replace(fitted.run, eraser=steering_like(fitted.eraser))
    summary = search_tab.search_summary(steering)
    assert "Steering-vector baseline" in summary and "mask" not in summary


def test_search_rejects_bad_settings_with_the_library_message():
    with pytest.raises(gr.Error, match="calibration_pairs must be ≥ 2"):
        next(search_tab.run_search(**{**FAST_SEARCH, "calibration_pairs": 1}, session=small_session()))


# ------------------------------------------------------------------------------------ step 4
def test_features_rank_masks_and_health(fitted):
    masks, bars, health, dropdown, new = features_tab.analyse_features(fitted)
    table = new.features
    assert fitted.features is None and table is not None
    assert list(table.spec) == sorted(table.spec, reverse=True)
    assert dropdown["value"] == int(table.ids[0]) and len(dropdown["choices"]) == len(table.ids)
    assert "FVU" in health and "L0" in health and "never fire" in health
    assert "m_spec > 0.5" in masks.layout.title.text and len(bars.data) == 3


def test_feature_detail_highlights_firing_tokens(fitted):
    *_figs, new = features_tab.analyse_features(fitted)
    feature = int(new.features.ids[0])
    bars, histogram, top_pos, top_neg, nearest = features_tab.feature_detail(feature, new)
    labels = {label for _tok, label in top_pos}
    assert "strong" in labels and labels <= {"strong", "medium", "weak", None}
    assert sum(tok.endswith("\n") for tok, _ in top_pos) == 5 and top_neg
    assert nearest.data[0].orientation == "h" and len(nearest.data[0].y) == 12
    cosines = list(nearest.data[0].x)
    assert cosines == sorted(cosines, reverse=True)
    assert (
        bars.data[0].x[0] == f"#{feature}"
        and bars.layout.title.text == f"Feature #{feature}: mean activation"
    )
    pos_peaks, neg_peaks = histogram.data[0].x, histogram.data[1].x
    n_fit = len(fitted.run.split.fit)  # the masks are statistics of the fit pairs, and so is the tab
    assert n_fit < N_PAIRS and fitted.run.pos.n_prompts == n_fit
    assert len(pos_peaks) == len(neg_peaks) == n_fit  # one peak per prompt
    # the feature table's mean activation is the mean of these per-prompt peaks
    assert sum(pos_peaks) / n_fit == pytest.approx(float(new.features.pos_mean[0]), rel=1e-4)
    assert sum(neg_peaks) / n_fit == pytest.approx(float(new.features.neg_mean[0]), rel=1e-4, abs=1e-6)
    assert next(tok for tok, _ in top_pos if tok.startswith(" (peak")) == f" (peak {max(pos_peaks):.2f})\n"


def test_features_refuse_a_steering_eraser(fitted):
    with pytest.raises(gr.Error, match="steering eraser has no features"):
        features_tab.analyse_features(fitted.with_(eraser=steering_like(fitted.eraser), run=None))


# ------------------------------------------------------------------------------------ step 5
def test_erase_reports_prompt_and_concept_scores(fitted):
    prompt = "a skydiver with a parachute over green fields"
    gamma = fitted.eraser.gamma
    scores, this, tokens, subtracted, numbers, key, new = preview_tab.erase_prompt(prompt, gamma, fitted)
    p = numbers["prompt"]
    assert 0 < p["cosine_original_vs_erased"] < 1 and p["recon_error"] is not None
    s = numbers["scores"]
    assert s["gamma"] == gamma and s["leakage"]["unerased_positive"] >= s["leakage"]["positive"]
    assert "Leakage at γ" in scores and "Preservation" in scores and "concept probability" in this
    assert prompt[:30] in this  # the prompt-level line says which prompt it describes
    assert [f"#{s['feature']}" for s in p["subtracted"]] == list(subtracted.data[0].y)
    assert subtracted.data[0].orientation == "h"
    assert any(s == 1.0 for _t, s in tokens)
    assert new.baseline is not None and fitted.baseline is None
    assert key["prompt"] == prompt and key["gamma"] == gamma and key["concept"] == "parachute"
    # the sample is named next to the numbers: every pair, the held-out half of the paraphrases
    sample = s["sample"]
    held = fitted.eraser.meta["held_out"]  # the pairs the search held out, as eraser.json records
    assert sample["n_pairs"] == held["n_pairs"] < N_PAIRS and "held out by the search" in sample["pairs"]
    assert sample["n_implicit"] == 12 and "held-out half" in sample["implicit"]
    assert f"{held['n_pairs']} pairs of parachute" in scores and "12 paraphrases (held-out half" in scores
    assert s["leakage"]["implicit"] == held["erased"]["leakage_implicit"]  # the run's own record
    # the protected look-alikes are measured on their held-out prompts, unerased and at this γ
    assert sample["lookalikes"] == fitted.eraser.meta["preserve"]["lookalikes"] and sample["n_lookalike"] >= 4
    assert 0 < s["preservation"]["lookalike"] <= 1 and 0 <= s["preservation"]["lookalike_told_apart"] <= 1
    assert "**Look-alikes kept** (kite, hot-air balloon, umbrella" in scores and "told apart" in scores
    from clear_core.lookalikes import preserve_set

    held = set(new.baseline.baseline.sets["lookalike"])
    from clear_core.splits import split_pairs

    held_pairs = split_pairs(fitted.concept).held_out_indices
    seen = preserve_set(
        fitted.concept, sample["lookalikes"], seed=0, held_out_pairs=held_pairs
    ).protect_prompts
    assert held and not held & set(seen)  # only prompts the eraser never saw


def test_the_app_and_evaluate_give_the_same_numbers(fitted, tmp_path, capsys):
    """The Erase tab and ``python -m clear_core evaluate`` measure one sample with one function: the
    same eraser at the same γ gives the same leakage and preservation (to float rounding: the command
    line encodes every γ of its sweep in one batch)."""
    from clear_core.__main__ import main

    gamma = fitted.eraser.gamma
    *_rest, numbers, _key, _new = preview_tab.erase_prompt("a parachute", gamma, fitted)
    fitted.eraser.save(tmp_path / "eraser")
    fitted.concept.save(tmp_path / "parachute.jsonl")
    (tmp_path / "implicit.txt").write_text("\n".join(fitted.implicit), encoding="utf-8")
    args = ["evaluate", "--eraser", str(tmp_path / "eraser"), "--concept", str(tmp_path / "parachute.jsonl")]
    args += ["--implicit", str(tmp_path / "implicit.txt"), "--gamma", str(gamma)]
    capsys.readouterr()
    assert main(args) == 0
    cli = json.loads(capsys.readouterr().out)
    app = numbers["scores"]
    assert cli["leakage"] == app["leakage"]
    assert cli["preservation"] == pytest.approx(app["preservation"], abs=1e-5)
    assert cli["sample"] == app["sample"]


def test_moving_gamma_reuses_the_cached_measurer(fitted, monkeypatch):
    from clear_core import concepts, measure
    from clear_core.evaluation import evaluate

    few_unrelated = concepts.unrelated_prompts()[:8]  # keeps the evaluations below quick
    monkeypatch.setattr(measure, "unrelated_prompts", lambda: few_unrelated)
    build, calls = measure.build_baseline, []

    def counting_build(encoder, sample):
        calls.append(sample)
        return build(encoder, sample)

    monkeypatch.setattr(measure, "build_baseline", counting_build)
    prompt = "a skydiver with a parachute over green fields"
    *_figs, first, _key, after_first = preview_tab.erase_prompt(prompt, 1.0, fitted)
    *_figs, second, _key, after_second = preview_tab.erase_prompt(prompt, 2.0, after_first)
    assert len(calls) == 1 and fitted.baseline is None
    assert after_second.baseline is after_first.baseline
    assert [n["scores"]["gamma"] for n in (first, second)] == [1.0, 2.0]
    assert first["scores"]["leakage"]["unerased_implicit"] == second["scores"]["leakage"]["unerased_implicit"]

    # the cached measurer gives what a fresh evaluation gives
    baseline = after_second.baseline.baseline
    fresh = evaluate(
        models.get_encoder("minilm"),
        fitted.eraser,
        baseline.sets["positive"],
        baseline.sets["negative"],
        implicit=baseline.sets.get("implicit"),
        unrelated=baseline.sets.get("unrelated"),
        gammas=(2.0,),
        lookalikes=baseline.sets.get("lookalike"),
    )
    assert fresh.rows[0].leakage_implicit == second["scores"]["leakage"]["implicit"]
    assert fresh.rows[0].preservation_unrelated == pytest.approx(
        second["scores"]["preservation"]["unrelated"], abs=1e-5
    )

    # other pairs of the same concept: a new measurer
    rows = [[p.positive, p.negative] for p in fitted.concept.pairs[: N_PAIRS // 2]]
    implicit, neutral = "\n".join(fitted.implicit), "\n".join(fitted.neutral)
    *_text, fewer = concept_tab.use_table(rows, "parachute", implicit, neutral, after_second)
    calls.clear()
    *_figs, _numbers, _key, rebuilt = preview_tab.erase_prompt(prompt, 2.0, fewer)
    assert len(calls) == 1 and len(calls[0].positives) == N_PAIRS // 2
    assert rebuilt.baseline is not after_second.baseline


def test_stale_results_are_named(fitted):
    prompt = "a skydiver with a parachute over green fields"
    *_rest, key, new = preview_tab.erase_prompt(prompt, 1.0, fitted)
    assert preview_tab.stale_note(prompt, 1.0, 0, "testbed", key, None, None, new) == ""
    note = preview_tab.stale_note(prompt, 2.0, 0, "testbed", key, None, None, new)
    assert "the scores are for a different γ" in note
    note = preview_tab.stale_note("a kite", 1.0, 0, "testbed", key, None, None, new)
    assert "different prompt" in note
    *_rest, other = concept_tab.load_pack("van_gogh", new)
    assert "different set of pairs" in preview_tab.stale_note(
        prompt, 1.0, 0, "testbed", key, None, None, other
    )


def test_erase_at_gamma_zero_changes_nothing(fitted):
    *_rest, other_pairs = concept_tab.load_pack("van_gogh", fitted)  # skips the concept-level scores
    _scores, _this, _tokens, subtracted, numbers, _key, _new = preview_tab.erase_prompt(
        "a bowl of ramen", 0.0, other_pairs
    )
    assert numbers["prompt"]["cosine_original_vs_erased"] == pytest.approx(1.0, abs=1e-6)
    assert numbers["prompt"]["norm_drift"] == pytest.approx(0.0, abs=1e-6)
    assert len(subtracted.data[0].y) == 0 and subtracted.layout.annotations[0].text == "nothing to show"


def test_erase_with_other_pairs_loaded_explains_the_missing_scores(fitted):
    *_rest, other = concept_tab.load_pack("van_gogh", fitted)
    scores, this, *_rest, numbers, _key, _new = preview_tab.erase_prompt("a parachute", 1.0, other)
    assert "Load the pairs of *parachute*" in scores and "scores" not in numbers and "cosine" in this


def test_preview_without_an_eraser_or_a_pipeline_says_so(fitted):
    with pytest.raises(gr.Error, match="no eraser yet"):
        preview_tab.erase_prompt("a parachute", 1.0, small_session())
    with pytest.raises(gr.Error, match="no eraser yet"):
        preview_tab.generate_media("a parachute", 1.0, 0, "tiny-wan", 2, small_session())
    with pytest.raises(gr.Error, match="choose a pipeline"):
        preview_tab.generate_media("a parachute", 1.0, 0, "", 2, fitted)


# ------------------------------------------------------------------------------------ step 6
def test_export_writes_artifact_and_report_then_reloads(fitted, tmp_path):
    files, message, new = export_tab.export_run(fitted)
    archive, report_json, report_html = map(Path, files)
    with zipfile.ZipFile(archive) as zf:
        assert set(zf.namelist()) == {
            "eraser.json",
            "eraser.safetensors",
            "history.jsonl",
            "concept.jsonl",
            "implicit.txt",
        }
    report = json.loads(report_json.read_text())
    assert report["settings"]["search"]["seed"] == 0 and report["versions"]["torch"]
    assert report["eraser"]["layer"] == fitted.eraser.layer and len(report["search"]["history"]) == 4
    assert "--seed 0" in report["reproduce"] and "--d-sae 256" in report["reproduce"]
    page = report_html.read_text()
    assert page.count("plotly.js v") == 1 and "Layer probabilities during the search" in page
    assert "Calibration: leakage and preservation against γ" in page
    assert (
        "--preserve 'kite,hot-air balloon,umbrella'" in report["reproduce"]
        and report["reproduce_unset"] == []
    )
    assert "clear-eraser-parachute.zip" in message and fitted.workdir is None and new.workdir

    message, calibration, gamma, _status, loaded = export_tab.load_eraser([str(archive)], new)
    assert loaded.eraser.layer == fitted.eraser.layer and loaded.run is None
    assert loaded.eraser_source == "uploaded clear-eraser-parachute.zip"
    assert gamma == fitted.eraser.gamma
    assert calibration.to_json() == preview_tab.calibration_chart(fitted.eraser).to_json()
    cleanup_session(loaded)
    assert not Path(loaded.workdir).exists()


def test_the_reports_command_line_repeats_the_app_run(fitted, tmp_path, monkeypatch):
    """The command report.html prints, run in the unzipped artifact, gives the app's eraser: the same
    block, γ, masks and SAE, bit for bit (it reads the shipped pairs and paraphrases, and names the
    concept and its preserve list)."""
    import shlex

    import torch

    from clear_core.__main__ import main
    from clear_core.erasure import Eraser

    files, _message, _new = export_tab.export_run(fitted)
    report = json.loads(Path(files[1]).read_text())
    bundle = tmp_path / "bundle"
    with zipfile.ZipFile(files[0]) as zf:
        zf.extractall(bundle)
    argv = shlex.split(report["reproduce"])
    assert argv[:4] == ["python", "-m", "clear_core", "search"]
    monkeypatch.chdir(bundle)
    assert main(argv[3:]) == 0
    cli, app = Eraser.load(bundle / "run"), fitted.eraser
    assert (cli.layer, cli.gamma, cli.concept) == (app.layer, app.gamma, app.concept)
    assert torch.equal(cli.m_spec, app.m_spec)
    assert all(
        torch.equal(a, b) for a, b in zip(cli.sae.state_dict().values(), app.sae.state_dict().values())
    )
    assert cli.meta["preserve"]["lookalikes"] == app.meta["preserve"]["lookalikes"]
    assert cli.meta["calibration"]["rows"] == app.meta["calibration"]["rows"]
    # the same pairs held out (the command names --holdout), so the same held-out numbers
    assert argv[argv.index("--holdout") + 1] == f"{fitted.eraser.meta['splits']['pairs']['share']:g}"
    assert cli.meta["splits"] == app.meta["splits"] and cli.meta["held_out"] == app.meta["held_out"]
    assert report["reproduce_unset"] == []  # every setting of the app run is on the command line


def test_upload_refuses_bad_files_and_keeps_the_eraser(fitted, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(gr.Error, match="notes.txt: unsupported file"):
        export_tab.load_eraser([str(bad)], fitted)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("../../eraser.txt", "x")
    with pytest.raises(gr.Error, match="not an eraser folder"):
        export_tab.load_eraser([str(empty)], fitted)
    assert fitted.eraser is not None and fitted.eraser_source == "search"


def test_zip_members_are_written_by_base_name_only(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../evil/eraser.json", "{}")
        zf.writestr("nested/dir/eraser.safetensors", "x")
        zf.writestr("other.py", "print('no')")
    dest = export_tab.unpack_upload([str(archive)], tmp_path / "out")
    assert sorted(p.name for p in dest.iterdir()) == ["eraser.json", "eraser.safetensors"]
    assert not (tmp_path / "evil").exists()


def test_export_without_an_eraser_explains():
    with pytest.raises(gr.Error, match="no eraser yet"):
        export_tab.export_run(Session())


# ------------------------------------------------------------------------------------ app level
def test_sessions_are_independent():
    a, b = new_session(), new_session()
    assert a is not b and a.control is not b.control
    a.control.request_stop("search")
    assert not b.control.should_stop("search")
    assert a.with_(model="x").control is a.control  # copies share the stop switch of their visitor


@pytest.mark.parametrize(
    ("env", "host", "port"),
    [
        ({}, "127.0.0.1", 7860),
        ({"PORT": "8080"}, "127.0.0.1", 8080),
        ({"PORT": "8080", "GRADIO_SERVER_PORT": "9000"}, "127.0.0.1", 9000),
        ({"SPACE_ID": "user/clear"}, "0.0.0.0", 7860),
    ],
)
def test_launch_options(env, host, port):
    opts = launch_options(env)
    assert opts["server_name"] == host and opts["server_port"] == port and opts["show_error"]


def test_launch_options_reject_a_bad_port():
    with pytest.raises(ValueError, match="must be a port number"):
        launch_options({"PORT": "http"})


def test_every_event_is_scriptable_and_the_page_builds_without_torch():
    code = (
        "import sys; from app.layout import build_demo; d = build_demo(); "
        "deps = d.config['dependencies']; "
        "print(len(deps), sum(1 for x in deps if x.get('api_name')), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    n, named, torch_loaded = out.stdout.split()
    assert int(n) >= 17 and named == n and torch_loaded == "False"


def test_new_pairs_replace_every_field_and_empty_stale_results():
    from app.layout import build_demo

    demo = build_demo()
    deps = demo.config["dependencies"]
    props = {c["id"]: c.get("props", {}) for c in demo.config["components"]}
    by_label = {p.get("label"): i for i, p in props.items() if p.get("label")}
    by_elem = {p.get("elem_id"): i for i, p in props.items() if p.get("elem_id")}
    fields = {by_label[n] for n in ("Keep (look-alikes)", "Concept name", "Paraphrases (one a line)")}
    for name in ("init", "load_pack", "upload_concept", "parse_text"):
        dep = next(d for d in deps if d["api_name"] == name)
        assert fields <= set(dep["outputs"]), name  # name, paraphrases and look-alikes, all at once
        cleared = [d for d in deps if d["trigger_after"] == dep["id"] and d["trigger_only_on_success"]]
        assert any(
            by_elem["clip-erased"] in d["outputs"] and by_elem["erase-scores"] in d["outputs"]
            for d in cleared
        )
    for name in ("search", "load_eraser"):  # a new eraser empties what the old one produced
        dep = next(d for d in deps if d["api_name"] == name)
        assert any(by_elem["clip-erased"] in d["outputs"] for d in deps if d["trigger_after"] == dep["id"])


def test_gamma_moves_rerender_the_clip_without_waiting_for_the_scores():
    from app.layout import build_demo

    demo = build_demo()
    deps = demo.config["dependencies"]
    props = {c["id"]: c.get("props", {}) for c in demo.config["components"]}
    gamma = next(i for i, p in props.items() if p.get("label") == "γ (erasure strength)")
    erased = next(i for i, p in props.items() if p.get("elem_id") == "clip-erased")
    on_release = [d for d in deps if [gamma, "release"] in [list(t) for t in d["targets"]]]
    rerender = next(d for d in on_release if d["api_name"] == "rerender")
    assert erased in rerender["outputs"] and rerender["show_progress_on"] == [erased]
    assert demo.fns[rerender["id"]].concurrency_id == "generate"  # with the other denoising jobs
    assert len(on_release) == 2  # the scores follow on their own, not chained behind the clip
    assert all(d["trigger_mode"] == "always_last" for d in on_release)
    rate = next(d for d in deps if d["api_name"] == "rate_over_seeds")
    assert deps[[d["id"] for d in deps].index(rate["trigger_after"])]["api_name"] == "generate"


def test_default_pack_exists():
    from app.layout import DEFAULT_PACK

    assert len(load_builtin(DEFAULT_PACK)) == 240
