"""Look-alikes: preserve lists, protected masks, look-alike preservation and the window."""

import json

import numpy as np
import pytest
import torch

from clear_core.__main__ import main
from clear_core.build import build_eraser, feature_means
from clear_core.concepts import ConceptSet, load_builtin
from clear_core.evaluation import GammaRow, Report, calibrate_gamma, evaluate
from clear_core.lookalikes import (
    DEFAULT_LOOKALIKES,
    default_preserve,
    lookalike_prompts,
    parse_preserve,
    preserve_set,
)
from clear_core.packs import PACKS
from clear_core.search import SearchConfig
from clear_core.workflow import ClearRun, EraserOptions
from research.window import WindowCriteria, sweep_window

UNRELATED = ["a bowl of soup on a table", "a red car on a coastal road", "a cat asleep on a sofa"]


def test_swapped_prompts_name_the_lookalike_and_never_the_concept():
    golf = lookalike_prompts(load_builtin("golf_ball"), "tennis ball")
    assert len(golf) > 40
    for _, text in golf:
        assert "tennis ball" in text and "golf" not in text.lower()
    dogs = [t for _, t in lookalike_prompts(load_builtin("english_springer"), "golden retriever")]
    assert any("a golden retriever" in t for t in dogs)
    assert not any("an golden" in t or "spaniel" in t for t in dogs)
    horn = [t for _, t in lookalike_prompts(load_builtin("french_horn"), "tuba")]
    assert not any("French" in t or "horn" in t for t in horn)


def test_artist_lookalikes_carry_the_other_artists_details():
    prompts = [t for _, t in lookalike_prompts(load_builtin("van_gogh"), "Picasso")]
    assert prompts and all("Picasso" in t and "Gogh" not in t for t in prompts)
    assert not any(d in t for t in prompts for d in PACKS["van_gogh"].details)
    assert any(d in t for t in prompts for d in PACKS["picasso"].details)


def test_every_builtin_preserve_list_writes_prompts():
    for slug, names in DEFAULT_LOOKALIKES.items():
        ps = preserve_set(load_builtin(slug), names)
        assert ps.names == list(names)
        for name in names:
            assert len(ps.protect[name]) >= 20 and len(ps.held_out[name]) >= 20, (slug, name)
    assert default_preserve("nudity") == [] and "tennis ball" in default_preserve("golf_ball")


def test_split_is_seeded_and_disjoint_by_pair():
    concept = load_builtin("golf_ball")
    a, b = preserve_set(concept, ["tennis ball"]), preserve_set(concept, ["tennis ball"])
    assert a.protect == b.protect and a.held_out == b.held_out
    assert not set(a.protect["tennis ball"]) & set(a.held_out["tennis ball"])
    other = preserve_set(concept, ["tennis ball"], seed=1)
    assert other.held_out != a.held_out
    record = a.to_json()
    assert record["lookalikes"] == ["tennis ball"] and record["n_held_out"]["tennis ball"] == 48


def test_the_concept_itself_is_not_a_lookalike():
    with pytest.raises(ValueError, match="the concept itself"):
        preserve_set(load_builtin("parachute"), ["kite", "Parachute"])


def test_bad_preserve_input_is_refused():
    with pytest.raises(ValueError, match="listed twice"):
        parse_preserve("tennis ball, Tennis Ball")
    assert parse_preserve(" kite,, umbrella ,") == ["kite", "umbrella"]
    custom = ConceptSet.from_pairs([("a cat on a sofa", "a sofa"), ("a cat in a box", "a box")], name="x")
    with pytest.raises(ValueError, match="--preserve-file"):
        preserve_set(custom, ["dog"])
    files = preserve_set(custom, [], prompts=["a dog on a sofa", "a dog in a box", "a fox", "an owl"])
    assert files.names == ["file"] and len(files.protect["file"]) == len(files.held_out["file"]) == 2


def test_custom_concept_swaps_its_name():
    pairs = [(f"a cat on sofa {i}", f"sofa {i}") for i in range(6)]
    concept = ConceptSet.from_pairs(pairs, name="cat")
    prompts = [t for _, t in lookalike_prompts(concept, "dog")]
    assert len(prompts) == 6 and all(t.startswith("a dog on sofa") for t in prompts)


def test_protected_mask_by_hand(small_run, minilm):
    run = small_run
    layer, scale = run.search.layer, run.search.scale
    protected = minilm.capture(["a red kite high over a beach", "a kite above the dunes at dusk"])
    e = build_eraser(run.search, run.pos, run.neg, "p", "minilm", protected=protected)
    f_pos, f_neg, f_prot = (
        feature_means(run.search.sae, a, layer, scale) for a in (run.pos, run.neg, protected)
    )
    diff = torch.relu(f_pos - torch.maximum(f_neg, f_prot))
    torch.testing.assert_close(e.m_spec, (diff / (diff.max() + run.search.config.eps)).float())
    assert e.meta["n_protected"] == 2
    plain = build_eraser(run.search, run.pos, run.neg, "p", "minilm")
    assert (e.m_spec > 0).sum() < (plain.m_spec > 0).sum()
    # protecting the positives themselves leaves nothing specific to erase
    nothing = build_eraser(run.search, run.pos, run.neg, "p", "minilm", protected=run.pos)
    assert float(nothing.m_spec.max()) == 0.0
    with pytest.raises(ValueError, match="contrastive"):
        build_eraser(run.search, run.pos, run.neg, "p", "minilm", mask="paper", protected=protected)


def test_evaluation_reports_lookalikes_apart(minilm, small_run, small_concept):
    lookalikes = [t for _, t in lookalike_prompts(small_concept, "kite")][:8]
    run = small_run  # an eraser without the context gate, which would leave the look-alikes untouched
    ungated = build_eraser(run.search, run.pos, run.neg, "p", "minilm")
    report = evaluate(
        minilm,
        ungated,
        small_concept.positives[:8],
        small_concept.negatives[:8],
        unrelated=UNRELATED,
        gammas=(0.0, 3.0),
        lookalikes=lookalikes,
    )
    clean, erased = report.rows
    assert report.n_lookalike == 8
    assert clean.preservation_lookalike == pytest.approx(1.0) and erased.preservation_lookalike < 1.0
    for row in report.rows:  # judged on the 4 odd-position look-alikes, never the probe's own 4
        assert 0.0 <= row.lookalike_told_apart <= 1.0 and (4 * row.lookalike_told_apart).is_integer()
    without = evaluate(
        minilm,
        small_run.eraser,
        small_concept.positives[:8],
        small_concept.negatives[:8],
        unrelated=UNRELATED,
        gammas=(3.0,),
    )
    assert without.rows[0].preservation_lookalike is None and without.n_lookalike == 0


def test_calibration_respects_the_lookalike_floor():
    def row(gamma, leak, lookalike):
        return GammaRow(gamma, leak, None, 0.99, 0.99, preservation_lookalike=lookalike)

    report = Report("c", "b", 1, 0, 1, 1.0, rows=[row(1, 0.5, 0.995), row(2, 0.2, 0.985), row(4, 0.0, 0.9)])
    assert calibrate_gamma(report) == 4
    assert calibrate_gamma(report, lookalike_min=0.98) == 2
    assert calibrate_gamma(report, lookalike_min=0.99) == 1


def test_run_protects_and_records_the_preserve_list(minilm, small_concept):
    opts = EraserOptions(calibration_pairs=8, gammas=(0.0, 1.0, 2.0, 4.0), preserve=("kite", "umbrella"))
    run = ClearRun(minilm, small_concept, SearchConfig(steps=10, d_sae=64), opts, unrelated=UNRELATED)
    for _ in run.run():
        pass
    eraser = run.result.eraser
    record = eraser.meta["preserve"]
    assert record["lookalikes"] == ["kite", "umbrella"] and record["lookalike_min"] == 0.98
    assert eraser.meta["n_protected"] == sum(record["n_protect"].values())
    rows = eraser.meta["calibration"]["rows"]
    assert rows[0]["preservation_lookalike"] == pytest.approx(1.0)
    chosen = next(r for r in rows if r["gamma"] == eraser.gamma)
    assert chosen["preservation_lookalike"] >= 0.98 or eraser.gamma == 1.0
    off = ClearRun(
        minilm,
        small_concept,
        SearchConfig(steps=4, d_sae=32),
        EraserOptions(calibrate=False, preserve=()),
        unrelated=UNRELATED,
    )
    assert off.preserve is None
    default = ClearRun(minilm, small_concept, SearchConfig(steps=4, d_sae=32), unrelated=UNRELATED)
    assert default.preserve.names == default_preserve("parachute")


def test_window_flags_only_gammas_meeting_every_criterion(minilm, small_run, small_concept):
    kites = [t for _, t in lookalike_prompts(small_concept, "kite")]
    result = sweep_window(
        minilm,
        small_run.eraser,
        small_concept.positives,
        small_concept.negatives,
        ["a skydiver drifting under an open canopy", "jumping out of a plane over the sea"],
        kites[:6],
        kites[6:12],
        UNRELATED,
        "kite",
        gammas=(0.5, 4.0),
        criteria=WindowCriteria(leakage_ratio=1.0, cosine_min=0.5, told_apart_min=0.5, min_unerased=0.5),
    )
    for r in result.rows:
        expected = (
            r.leakage_implicit <= result.unerased_implicit
            and result.unerased_implicit >= 0.5
            and r.preservation_lookalike >= 0.5
            and r.lookalike_told_apart >= 0.5
        )
        assert r.ok == expected
        aware = r.leakage_implicit_vs_lookalike <= result.unerased_implicit_vs_lookalike
        assert r.ok_vs_lookalike == (
            aware
            and result.unerased_implicit_vs_lookalike >= 0.5
            and r.preservation_lookalike >= 0.5
            and r.lookalike_told_apart >= 0.5
        )
    assert result.window == [r.gamma for r in result.rows if r.ok]
    assert 0.0 <= result.lookalike_read_as_concept <= 1.0
    assert json.loads(json.dumps(result.to_json()))["lookalike"] == "kite"


def test_cli_preserve_flags_are_checked_before_models_load(tmp_path, capsys):
    out = str(tmp_path / "e")
    assert main(["search", "--concept", "golf_ball", "--out", out, "--no-preserve", "--preserve", "x"]) == 2
    assert "contradict" in capsys.readouterr().err
    assert main(["search", "--concept", "golf_ball", "--out", out, "--preserve", " , "]) == 2
    assert "--preserve is empty" in capsys.readouterr().err
    custom = tmp_path / "cat.jsonl"
    custom.write_text('{"positive": "a cat on a sofa", "negative": "a sofa"}\n' * 1)
    code = main(
        ["search", "--concept", str(custom), "--out", out, "--preserve", "dog", "--model", "/nonexistent"]
    )
    assert code == 2 and "--preserve-file" in capsys.readouterr().err  # before the (missing) model loads


def test_cli_search_records_preserve_and_evaluate_reports_lookalikes(tmp_path, capsys):
    full = load_builtin("golf_ball")  # a file named like the pack: its phrases, 32 pairs to stay fast
    concept = str(ConceptSet("golf_ball", full.pairs[::7][:32]).save(tmp_path / "golf_ball.jsonl"))
    out = tmp_path / "e"
    args = ["search", "--concept", concept, "--out", str(out), "--steps", "10", "--d-sae", "64"]
    assert main([*args, "--preserve", "tennis ball"]) == 0
    info = json.loads((out / "eraser.json").read_text())
    assert info["preserve"]["lookalikes"] == ["tennis ball"]
    assert info["calibration"]["rows"][-1]["preservation_lookalike"] is not None
    capsys.readouterr()
    assert main(["evaluate", "--eraser", str(out), "--concept", concept, "--gamma", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    # the look-alike prompts written from the held-out pairs, as eraser.json's held-out record measured
    assert report["lookalikes"] == ["tennis ball"]
    assert report["n"]["lookalike"] == info["held_out"]["n_lookalike"] == 8
    assert 0 < report["preservation"]["lookalike"] <= 1


@pytest.mark.slow
def test_protection_keeps_tennis_balls_closer(minilm):
    """Behaviour on MiniLM: the same SAE and block, the mask with the preserve list keeps held-out
    tennis-ball prompts closer to their originals than the mask without it."""
    concept = load_builtin("golf_ball")
    ps = preserve_set(concept, ["tennis ball"])
    run = ClearRun(
        minilm,
        concept,
        SearchConfig(steps=60, d_sae=512, seed=0),
        EraserOptions(calibrate=False, preserve=()),
        unrelated=UNRELATED,
    )
    for _ in run.run():
        pass
    res = run.result
    plain = res.eraser
    kept = build_eraser(
        res.search,
        res.pos,
        res.neg,
        "golf_ball",
        "minilm",
        protected=minilm.capture(ps.protect["tennis ball"]),
    )
    held = ps.held_out["tennis ball"]
    original = minilm.encode(held)

    def cosine(eraser):
        with eraser.applied(minilm, gamma=3.0):
            erased = minilm.encode(held)
        return float(
            np.mean(
                (original * erased).sum(-1)
                / np.linalg.norm(original, axis=-1)
                / np.linalg.norm(erased, axis=-1)
            )
        )

    assert cosine(kept) > cosine(plain) + 0.01


def test_gamma_chart_draws_lookalikes_as_their_own_curve_and_floor():
    from analysis.figures import gamma_sweep_chart

    series = {
        "leakage_positive": [1.0, 0.2, 0.0],
        "preservation_unrelated": [1.0, 0.99, 0.97],
        "preservation_lookalike": [1.0, 0.985, 0.9],
    }
    fig = gamma_sweep_chart([0, 1, 2], series, chosen=1, preserve_min=0.95, lookalike_min=0.98)
    trace = next(t for t in fig.data if t.name == "preservation: look-alikes")
    assert list(trace.y) == [1.0, 0.985, 0.9] and trace.yaxis == "y2" and trace.line.dash == "dot"
    floors = [s for s in fig.layout.shapes if s.yref == "y2"]
    assert sorted(s.y0 for s in floors) == [0.95, 0.98]
    assert fig.layout.yaxis2.range[0] <= 0.9


def test_gate_leaves_the_protected_prompts_alone_and_round_trips(small_run, minilm, tmp_path):
    """The gate's floor is the highest level the protected prompts reach, so on exactly those prompts
    every token scores 0 and nothing is subtracted; the concept's own prompts are still edited."""
    from clear_core.erasure import Eraser

    run = small_run
    kites = ["a red kite high over a beach", "a kite above the dunes at dusk"]
    protected = minilm.capture(kites)
    gated = build_eraser(run.search, run.pos, run.neg, "p", "minilm", protected=protected, gate=True)
    assert gated.gate_floor.shape == gated.m_spec.shape and gated.gate_tau > 0
    ungated = build_eraser(run.search, run.pos, run.neg, "p", "minilm", protected=protected)
    torch.testing.assert_close(gated.m_spec, ungated.m_spec)  # the gate does not change the mask
    plain = build_eraser(run.search, run.pos, run.neg, "p", "minilm")
    kite_tokens = torch.from_numpy(protected.layer(gated.layer))[None]
    assert float(gated.vector(kite_tokens).abs().max()) == 0.0
    assert float(plain.vector(kite_tokens).abs().max()) > 1e-2  # there was something to protect
    positives = run.pos.layer(gated.layer)[: run.pos.offsets[4]]
    assert float(gated.vector(torch.from_numpy(positives)[None]).abs().max()) > 0.0
    original = minilm.encode(kites)
    with gated.applied(minilm, gamma=4.0):
        np.testing.assert_allclose(minilm.encode(kites), original, atol=1e-5)
    gated.save(tmp_path / "g")
    back = Eraser.load(tmp_path / "g")
    torch.testing.assert_close(back.gate_floor, gated.gate_floor)
    assert back.gate_tau == gated.gate_tau
    x = torch.from_numpy(positives)[None]
    torch.testing.assert_close(back.vector(x), gated.vector(x))
    # the digest that caches and manifests key erasers by covers the gate: a gated and an ungated
    # eraser of one search never share a cached clip; a reloaded one is the same edit
    assert gated.digest() != ungated.digest() and back.digest() == gated.digest()
    back.gate_tau *= 2
    assert back.digest() != gated.digest()
    with pytest.raises(ValueError, match="gate needs"):
        build_eraser(run.search, run.pos, run.neg, "p", "minilm", gate=True)


def test_cli_gate_needs_lookalikes_before_models_load(tmp_path, capsys):
    custom = tmp_path / "cat.jsonl"
    custom.write_text('{"positive": "a cat on a sofa", "negative": "a sofa"}\n')
    out = str(tmp_path / "e")
    assert main(["search", "--concept", str(custom), "--out", out, "--gate", "--model", "/nonexistent"]) == 2
    assert "gate needs look-alikes" in capsys.readouterr().err
    assert main(["search", "--concept", "golf_ball", "--out", out, "--gate", "--mask", "paper"]) == 2
    assert "contrastive" in capsys.readouterr().err
