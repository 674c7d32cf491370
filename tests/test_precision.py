"""The precision options of an eraser: context gate, null-space edit, and the LEACE baseline."""

import dataclasses
import json
import math
import re

import numpy as np
import pytest
import torch

from clear_core.build import build_eraser, leace_eraser
from clear_core.config import EraserOptions
from clear_core.erasure import Eraser


def _tokens(acts, layer):
    return torch.from_numpy(acts.layer(layer))[None]


def test_context_gate_leaves_the_fit_negatives_untouched(small_run, tmp_path):
    """The floor is the highest level each feature reaches on the fit negatives' tokens, so on exactly
    those tokens nothing is subtracted; the positives are still edited."""
    run = small_run
    gated = build_eraser(run.search, run.pos, run.neg, "p", "minilm", context_gate=True)
    plain = build_eraser(run.search, run.pos, run.neg, "p", "minilm")
    layer = gated.layer
    assert float(gated.vector(_tokens(run.neg, layer)).abs().max()) == 0.0
    assert float(plain.vector(_tokens(run.neg, layer)).abs().max()) > 1e-3  # there was something to keep
    assert float(gated.vector(_tokens(run.pos, layer)).abs().max()) > 1e-3
    assert gated.meta["gate_sources"] == ["negatives"]
    split = gated.meta["gate_split"]
    assert split["n_floor"] + split["n_margin"] == run.neg.n_prompts and gated.gate_margin > 0
    # the margin is the highest score the odd half reaches over the even half's floor
    odd = run.neg.select(range(1, run.neg.n_prompts, 2))
    f = gated.features(torch.from_numpy(odd.layer(layer)))
    score = (torch.relu(f - gated.gate_floor) * gated.m_spec).sum(-1)
    assert float(score.max()) == pytest.approx(gated.gate_margin, rel=1e-5)
    gated.save(tmp_path / "g")
    back = Eraser.load(tmp_path / "g")
    torch.testing.assert_close(back.vector(_tokens(run.pos, layer)), gated.vector(_tokens(run.pos, layer)))
    assert back.digest() == gated.digest() != plain.digest()


def test_gate_ramp_sharpens_the_gate_beyond_its_margin(small_run):
    """The ramp scales the gate's tau only: tokens at or below the margin stay untouched either way,
    and a token beyond it gets at least as much of the edit as under the soft ramp (more where it passes
    by less than tau)."""
    run = small_run
    soft = build_eraser(run.search, run.pos, run.neg, "p", "minilm", context_gate=True)
    sharp = build_eraser(run.search, run.pos, run.neg, "p", "minilm", context_gate=True, gate_ramp=0.01)
    assert sharp.gate_tau == pytest.approx(0.01 * soft.gate_tau) and sharp.gate_margin == soft.gate_margin
    assert sharp.meta["gate_split"]["ramp"] == 0.01
    x = torch.from_numpy(run.pos.layer(soft.layer))
    g_soft, g_sharp = soft.gate(soft.features(x)), sharp.gate(sharp.features(x))
    assert bool(((g_soft == 0) == (g_sharp == 0)).all()) and bool((g_sharp >= g_soft - 1e-6).all())
    assert bool((g_sharp > g_soft + 1e-3).any())
    assert float(sharp.vector(_tokens(run.neg, soft.layer)).abs().max()) == 0.0
    with pytest.raises(ValueError, match="gate_ramp"):
        build_eraser(run.search, run.pos, run.neg, "p", "minilm", context_gate=True, gate_ramp=0.0)


def test_prompt_scope_gates_every_token_by_the_prompts_strongest(small_run, tmp_path):
    """gate_scope "prompt": a prompt with a token past the margin is edited on every token, as the
    ungated eraser edits it (times that token's gate); a prompt with none is left alone."""
    run = small_run
    kw = dict(context_gate=True, gate_ramp=0.01)
    token = build_eraser(run.search, run.pos, run.neg, "p", "minilm", **kw)
    prompt = build_eraser(run.search, run.pos, run.neg, "p", "minilm", gate_scope="prompt", **kw)
    plain = build_eraser(run.search, run.pos, run.neg, "p", "minilm")
    layer, n = token.layer, 8
    pos = torch.from_numpy(run.pos.layer(layer))
    g = token.gate(token.features(pos))
    i = min(int(g.argmax()), pos.shape[0] - n)
    batch = torch.stack([pos[i : i + n], torch.from_numpy(run.neg.layer(layer))[:n]])
    top = float(token.gate(token.features(batch[0])).max())
    assert top > 0
    v = prompt.vector(batch)
    torch.testing.assert_close(v[0], top * plain.vector(batch)[0], atol=1e-5, rtol=1e-4)
    assert float(v[1].abs().max()) == 0.0 == float(token.vector(batch)[1].abs().max())
    assert not torch.allclose(token.vector(batch)[0], v[0])  # some window token is below the margin
    assert "gate_scope" not in token.edit_fields()  # token-scope digests stay what they were
    prompt.save(tmp_path / "s")
    back = Eraser.load(tmp_path / "s")
    assert back.gate_scope == "prompt" and back.digest() == prompt.digest() != token.digest()
    with pytest.raises(ValueError, match="gate_scope"):
        EraserOptions(gate_scope="sentence")


def test_null_space_edit_is_orthogonal_to_the_negatives_subspace(small_run, tmp_path):
    run = small_run
    eraser = build_eraser(run.search, run.pos, run.neg, "p", "minilm", null_space=0.9)
    basis = eraser.null_basis
    d, r = basis.shape
    assert d == 384 and 1 <= r < d and eraser.meta["null_space"] == {"energy": 0.9, "rank": r}
    torch.testing.assert_close(basis.T @ basis, torch.eye(r), atol=1e-4, rtol=0)
    x = _tokens(run.pos, eraser.layer)
    v = eraser.vector(x)
    assert float((v @ basis).abs().max()) < 1e-3 * float(v.abs().max())
    # the projection keeps what lies outside the subspace: v equals the plain vector minus its projection
    plain = build_eraser(run.search, run.pos, run.neg, "p", "minilm").vector(x)
    torch.testing.assert_close(v, plain - (plain @ basis) @ basis.T, atol=1e-4, rtol=1e-4)
    eraser.save(tmp_path / "n")
    torch.testing.assert_close(Eraser.load(tmp_path / "n").vector(x), v)
    with pytest.raises(ValueError, match="null_space"):
        build_eraser(run.search, run.pos, run.neg, "p", "minilm", null_space=1.5)


def test_leace_removes_the_linear_class_difference_at_the_block(small_run, minilm, tmp_path):
    """LEACE (concept-erasure) fitted on mean-pooled block states: after its edit the two classes have
    the same mean pooled state at the block (no linear probe can do better than chance), and γ scales it."""
    run = small_run
    layer = run.eraser.layer
    eraser = leace_eraser(run.pos, run.neg, layer, "p", "minilm")
    assert eraser.kind == "leace" and eraser.layer == layer

    def pooled_mean(acts, gamma):
        rows = []
        for i in range(acts.n_prompts):
            h = torch.from_numpy(acts.layer(layer)[acts.offsets[i] : acts.offsets[i + 1]])[None]
            rows.append(eraser.edit(h, gamma)[0].mean(0))
        return torch.stack(rows).mean(0)

    gap_before = (pooled_mean(run.pos, 0.0) - pooled_mean(run.neg, 0.0)).norm()
    gap_after = (pooled_mean(run.pos, 1.0) - pooled_mean(run.neg, 1.0)).norm()
    assert gap_before > 1.0 and gap_after < 1e-3 * gap_before
    eraser.save(tmp_path / "l")
    back = Eraser.load(tmp_path / "l", encoder=minilm)
    x = torch.randn(1, 5, 384)
    torch.testing.assert_close(back.edit(x, 0.7), eraser.edit(x, 0.7))
    with back.applied(minilm, gamma=1.0):
        erased = minilm.encode(["a parachute over the sea"])
    assert not np.allclose(erased, minilm.encode(["a parachute over the sea"]), atol=1e-4)


def test_precision_options_need_the_contrastive_sae_eraser():
    from clear_core.config import EraserOptions

    for bad in ({"kind": "steering", "context_gate": True}, {"mask": "paper", "null_space": 0.9}):
        with pytest.raises(ValueError, match="contrastive"):
            EraserOptions(**bad)
    with pytest.raises(ValueError, match="holdout"):
        EraserOptions(holdout=1.0)


def test_choose_gamma_on_frames_rule():
    from clear_core.testbed.calibrate import FrameRow, choose_gamma

    rows = [
        FrameRow(0.0, 1.0, 0.8, 1.0),
        FrameRow(1.0, 0.5, 0.6, 0.99),
        FrameRow(2.0, 0.0, 0.2, 0.97),
        FrameRow(3.0, 0.0, 0.2, 0.96),  # same score, larger γ: not chosen
        FrameRow(4.0, 0.0, 0.0, 0.90),  # best rate, but below the preservation floor
    ]
    assert choose_gamma(rows, 0.95) == 2.0
    assert choose_gamma(rows, 0.999) == 1.0  # nothing keeps it: the smallest γ > 0


def test_frame_calibration_renders_only_the_prompts_given(small_run):
    """γ = 0 reads every concept-free frame as unchanged; the concept is drawn before erasure; the chosen
    γ follows the rule on the rows (renders on the testbed, a few prompts, one seed)."""
    from clear_core.testbed.calibrate import calibrate_on_frames, choose_gamma

    pos = [p.positive for p in small_run.split.fit.pairs[:4]]
    neg = [p.negative for p in small_run.split.fit.pairs[:4]]
    result = calibrate_on_frames(small_run.eraser, pos, neg, [2.0, 6.0], seeds=1, preserve_min=0.5)
    assert [r.gamma for r in result.rows] == [0.0, 2.0, 6.0]
    assert result.rows[0].preservation == 1.0 and result.rows[0].rate > 0.5
    assert result.chosen_gamma == choose_gamma(result.rows, 0.5)
    assert result.to_json()["rows"][1]["gamma"] == 2.0 and result.n_positive == 4


def test_a_context_gate_with_nothing_beyond_its_margin_warns_and_stays_off(small_run):
    """Negatives that are the positives themselves leave no concept token past the margin: the
    eraser is built without the gate, with a warning and a record of why."""
    from clear_core.validation import ClearWarning

    run = small_run
    with pytest.warns(ClearWarning, match="context gate off"):
        eraser = build_eraser(
            run.search, run.pos, run.neg, "p", "minilm", context_gate=True, gate_negatives=run.pos
        )
    assert eraser.gate_floor is None and "gate_sources" not in eraser.meta
    assert "context gate off" in eraser.meta["context_gate_skipped"]


def test_prompt_gate_leaves_prompts_below_its_margin_alone(small_run, minilm, tmp_path):
    """The prompt gate's margin is the highest gate score any token of the unrelated prompts (or the
    gate's margin negatives) reaches: a prompt whose tokens all stay below it is left alone, and a
    prompt whose strongest token passes it by more than prompt_tau is edited as the token gate alone
    edits it."""
    run = small_run
    unrelated = minilm.capture(["a bowl of soup on a table", "a red car on a coastal road at dusk"])
    kw = dict(context_gate=True, gate_ramp=0.01)
    token = build_eraser(run.search, run.pos, run.neg, "p", "minilm", **kw)
    both = build_eraser(run.search, run.pos, run.neg, "p", "minilm", prompt_negatives=unrelated, **kw)
    layer = both.layer
    x = torch.from_numpy(unrelated.layer(layer))
    assert both.prompt_margin == pytest.approx(
        max(token.gate_margin, float(both.gate_score(both.features(x)).max())), rel=1e-5
    )
    assert both.prompt_margin >= both.gate_margin == token.gate_margin
    assert both.prompt_tau > 0 and both.meta["prompt_gate"]["n_unrelated"] == 2
    pos = torch.from_numpy(run.pos.layer(layer))
    score = both.gate_score(both.features(pos))
    bounds = run.pos.offsets
    tops = [float(score[bounds[i] : bounds[i + 1]].max()) for i in range(run.pos.n_prompts)]
    above = [i for i, t in enumerate(tops) if t >= both.prompt_margin + both.prompt_tau]
    assert above
    i = above[0]
    prompt = pos[bounds[i] : bounds[i + 1]][None]
    torch.testing.assert_close(both.vector(prompt), token.vector(prompt))
    # a prompt whose strongest token sits at the margin: nothing, though the token gate edits it
    lifted = dataclasses.replace(both, prompt_margin=tops[i], meta=dict(both.meta))
    assert float(lifted.vector(prompt).abs().max()) == 0.0 < float(token.vector(prompt).abs().max())
    # in a batch, each prompt is gated by its own strongest token
    neg = torch.from_numpy(run.neg.layer(layer))[: prompt.shape[1]][None]
    batch = torch.cat([prompt, neg])
    torch.testing.assert_close(both.vector(batch)[0], token.vector(prompt)[0])
    assert float(both.vector(batch)[1].abs().max()) == 0.0
    assert "prompt_margin" not in token.edit_fields()  # erasers without it keep their digests
    assert both.without_prompt_gate().digest() == token.digest() and token.without_prompt_gate() is token
    both.save(tmp_path / "pg")
    back = Eraser.load(tmp_path / "pg")
    assert (back.prompt_margin, back.prompt_tau) == (both.prompt_margin, both.prompt_tau)
    assert back.digest() == both.digest() != token.digest()


def test_prompt_gate_checks(small_run, minilm):
    run = small_run
    base = build_eraser(run.search, run.pos, run.neg, "p", "minilm", context_gate=True)
    with pytest.raises(ValueError, match="prompt_margin and prompt_tau"):
        dataclasses.replace(base, prompt_margin=0.1, meta=dict(base.meta))
    with pytest.raises(ValueError, match="prompt_tau must be > 0"):
        dataclasses.replace(base, prompt_margin=0.1, prompt_tau=0.0, meta=dict(base.meta))
    plain = build_eraser(run.search, run.pos, run.neg, "p", "minilm")
    with pytest.raises(ValueError, match="needs gate_floor"):
        dataclasses.replace(plain, prompt_margin=0.1, prompt_tau=0.1, meta=dict(plain.meta))
    # options: on with the context gate, off without it, refused alone
    assert EraserOptions().prompt_gate is True
    assert EraserOptions(context_gate=False).prompt_gate is False
    assert EraserOptions(kind="leace").prompt_gate is False
    with pytest.raises(ValueError, match="prompt gate needs"):
        EraserOptions(context_gate=False, prompt_gate=True)
    # concept prompts themselves as "unrelated": no prompt passes, the prompt gate stays off and says so
    with pytest.warns(UserWarning, match="prompt gate off"):
        off = build_eraser(
            run.search, run.pos, run.neg, "p", "minilm", context_gate=True, prompt_negatives=run.pos
        )
    assert off.prompt_margin is None and "prompt_gate_skipped" in off.meta


def test_prompt_level_gates_do_not_read_pads(small_run, minilm):
    """Under the hook, a prompt-level gate reads only the positions the attention mask marks: a prompt
    is erased the same alone and padded beside a longer one, in the encoder and in the γ sweep."""
    from clear_core.prefix import encode_gammas

    run = small_run
    unrelated = minilm.capture(["a bowl of soup on a table", "a red car on a coastal road at dusk"])
    kw = dict(context_gate=True, gate_ramp=0.01)
    for eraser in (
        build_eraser(run.search, run.pos, run.neg, "p", "minilm", prompt_negatives=unrelated, **kw),
        build_eraser(run.search, run.pos, run.neg, "p", "minilm", gate_scope="prompt", **kw),
    ):
        assert eraser.prompt_level
        short = "a parachute"
        long = "a parachute drifting over a wide green valley with a red barn and a winding river below"
        with eraser.applied(minilm, gamma=4.0):
            alone = minilm.encode([short])
            padded = minilm.encode([short, long])
        np.testing.assert_allclose(alone[0], padded[0], atol=1e-5)
        swept = encode_gammas(minilm, [short, long], eraser, [4.0])[4.0]
        np.testing.assert_allclose(swept[0], padded[0], atol=1e-5)
        np.testing.assert_allclose(swept[1], padded[1], atol=1e-5)


def test_prompt_gate_ignores_positions_the_mask_marks_as_pads(small_run, minilm, monkeypatch):
    """A prompt whose real tokens stay below the prompt margin is left alone whatever its pad
    positions hold; the hook hands the encoder call's attention mask to the eraser."""
    run = small_run
    unrelated = minilm.capture(["a bowl of soup on a table", "a red car on a coastal road at dusk"])
    eraser = build_eraser(
        run.search,
        run.pos,
        run.neg,
        "p",
        "minilm",
        context_gate=True,
        gate_ramp=0.01,
        prompt_negatives=unrelated,
    )
    layer = eraser.layer
    pos, neg = torch.from_numpy(run.pos.layer(layer)), torch.from_numpy(run.neg.layer(layer))
    strongest = pos[eraser.gate_score(eraser.features(pos)).argsort(descending=True)[:4]]
    hidden = torch.cat([neg[:4], strongest])[None]  # 4 concept-free real tokens, then 4 "pads"
    mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0, 0]])
    assert float(eraser.vector(hidden, mask).abs().max()) == 0.0
    assert float(eraser.vector(hidden).abs().max()) > 0  # read as real tokens, they would pass
    seen = []
    vector = Eraser.vector
    monkeypatch.setattr(Eraser, "vector", lambda self, h, p=None: seen.append(p) or vector(self, h, p))
    with eraser.applied(minilm, gamma=1.0):
        minilm.encode(["a parachute", "a parachute over a long green valley with a river"])
    assert seen and seen[0] is not None and seen[0].shape == (2, seen[0].shape[1])
    assert int(seen[0][0].sum()) < int(seen[0][1].sum()) == seen[0].shape[1]


def test_gamma_is_calibrated_with_the_prompt_gate_off(small_run, minilm, small_concept):
    """The prompt gate's margin is fitted on the calibration half of the unrelated prompts, so the γ
    sweep runs without it (those prompts would read 1.0 at every γ): the same γ and table as the run
    without a prompt gate, and the prompt gate on the eraser."""
    from clear_core.search import SearchConfig
    from clear_core.workflow import ClearRun

    unrelated = [
        "a bowl of soup on a table",
        "a red car on a coastal road",
        "a cat asleep on a sofa",
        "a lighthouse on a rocky cape at dawn",
        "two children flying a kite on a beach",
        "a bicycle leaning on a brick wall",
    ]
    runs = {}
    for gate in (True, False):
        run = ClearRun(
            minilm,
            small_concept,
            SearchConfig(steps=30, d_sae=256, seed=0),
            EraserOptions(calibration_pairs=8, gammas=(0.0, 1.0, 2.0, 4.0), prompt_gate=gate),
            unrelated=unrelated,
            search_result=small_run.search,
        )
        for _ in run.run():
            pass
        runs[gate] = run.result.eraser
    on, off = runs[True], runs[False]
    assert on.prompt_margin is not None and off.prompt_margin is None
    assert on.gamma == off.gamma
    assert on.meta["calibration"]["rows"] == off.meta["calibration"]["rows"]
    assert on.meta["calibration"]["prompt_gate"] == "off while sweeping γ"
    assert off.meta["calibration"]["prompt_gate"] is None


UNRELATED = ["a bowl of soup on a table", "a red car on a coastal road", "a cat asleep on a sofa"] * 2
"""Concept-free prompts of the small runs below (their even half calibrates, their odd half reports)."""


def _prompt_states(acts, layer: int) -> list[torch.Tensor]:
    """Each prompt's (1, tokens, d_model) states at ``layer``."""
    x, b = torch.from_numpy(acts.layer(layer)), acts.offsets
    return [x[b[i] : b[i + 1]][None] for i in range(acts.n_prompts)]


def _ungated(eraser):
    """``eraser`` with every gate off: each token edited in full."""
    return dataclasses.replace(
        eraser,
        gate_floor=None,
        gate_tau=None,
        gate_margin=0.0,
        prompt_margin=None,
        prompt_tau=None,
        probe=None,
        meta=dict(eraser.meta),
    )


def _probe_eraser(run, minilm, **kw):
    unrelated = minilm.capture(["a bowl of soup on a table", "a red car on a coastal road at dusk"])
    paraphrases = minilm.capture(["a canopy of silk opening above a falling skydiver"])
    return build_eraser(
        run.search,
        run.pos,
        run.neg,
        "p",
        "minilm",
        context_gate=True,
        gate_ramp=0.01,
        prompt_negatives=unrelated,
        probe_sets=([paraphrases], [unrelated]),
        **kw,
    )


def test_probe_gate_erases_the_prompts_it_catches_in_full(small_run, minilm, tmp_path):
    """A prompt the probe scores above 0 gets every token's ungated edit; a prompt it scores at or
    below 0 gets exactly what the token and prompt gates give; the probe reads real tokens only; the
    probe travels with the artifact and its digest."""
    run = small_run
    probed = _probe_eraser(run, minilm)
    gated = dataclasses.replace(probed, probe=None, meta=dict(probed.meta))
    ungated = _ungated(probed)
    layer = probed.layer
    assert probed.prompt_level and probed.meta["probe_gate"]["n_concept"] == run.pos.n_prompts + 1
    prompts = _prompt_states(run.pos, layer)
    scores = [float(probed.probe_scores(p)) for p in prompts]
    caught = [i for i, s in enumerate(scores) if s > 0]
    assert len(caught) >= 0.9 * len(prompts)  # fitted on them
    p = prompts[caught[0]]
    torch.testing.assert_close(probed.vector(p), ungated.vector(p))
    assert not torch.allclose(gated.vector(p), ungated.vector(p))  # the gates alone edit it less
    # the same prompt with the probe's bias pushed below it: the gates decide, as without a probe
    missed = dataclasses.replace(
        probed,
        probe={**probed.probe, "bias": probed.probe["bias"] - scores[caught[0]] - 1.0},
        meta=dict(probed.meta),
    )
    torch.testing.assert_close(missed.vector(p), gated.vector(p))
    # the negatives: the probe calls few of them the concept (18 pairs, a regularised fit)
    neg_scores = [float(probed.probe_scores(p)) for p in _prompt_states(run.neg, layer)]
    assert sum(s > 0 for s in neg_scores) <= 0.15 * len(neg_scores)
    assert np.mean(neg_scores) < 0 < np.mean(scores)
    # pads marked 0 are left out of the mean
    padded = torch.cat([p, torch.randn(1, 5, p.shape[-1]) * 50], 1)
    mask = torch.cat([torch.ones(1, p.shape[1]), torch.zeros(1, 5)], 1)
    assert float(probed.probe_scores(padded, mask)) == pytest.approx(scores[caught[0]], rel=1e-4, abs=1e-4)
    probed.save(tmp_path / "probe")
    back = Eraser.load(tmp_path / "probe")
    torch.testing.assert_close(back.vector(p), probed.vector(p))
    assert back.digest() == probed.digest() != gated.digest()
    assert probed.without_prompt_gate().probe is probed.probe  # the γ sweep keeps the probe gate


def test_probe_gate_checks(small_run, minilm, tmp_path):
    run = small_run
    probed = _probe_eraser(run, minilm)
    with pytest.raises(ValueError, match="probe gate needs tensors"):
        dataclasses.replace(probed, probe={"weight": torch.zeros(3), "bias": torch.zeros(1)}, meta={})
    plain = build_eraser(run.search, run.pos, run.neg, "p", "minilm")
    with pytest.raises(ValueError, match="needs gate_floor"):
        dataclasses.replace(plain, probe=probed.probe, meta=dict(plain.meta))
    with pytest.raises(ValueError, match="probe gate needs the context gate"):
        build_eraser(run.search, run.pos, run.neg, "p", "minilm", probe_sets=([], [run.neg]))
    with pytest.raises(ValueError, match="probe gate needs the context gate"):
        EraserOptions(context_gate=False, probe_gate=True)
    assert EraserOptions().probe_gate is False
    # an artifact with half a probe is refused with the file named
    from safetensors.torch import load_file, save_file

    probed.save(tmp_path / "half")
    tensors = load_file(str(tmp_path / "half" / "eraser.safetensors"))
    del tensors["probe_bias"]
    save_file(tensors, str(tmp_path / "half" / "eraser.safetensors"))
    with pytest.raises(ValueError, match="probe_weight' and 'probe_bias'"):
        Eraser.load(tmp_path / "half")


def test_reference_prompts_leave_out_the_concepts_own_pack():
    from clear_core.concepts import builtin_packs, load_builtin
    from clear_core.splits import REFERENCE_PER_PACK, reference_prompts, split_pairs

    golf = reference_prompts("Golf ball")
    assert len(golf) == REFERENCE_PER_PACK * (len(builtin_packs()) - 1)
    assert not set(golf) & set(load_builtin("golf_ball").positives)
    held = {p for s in builtin_packs() for p in split_pairs(load_builtin(s)).held_out.positives}
    assert not set(golf) & held  # the other packs' held-out pairs stay unseen
    assert len(reference_prompts("kite")) == REFERENCE_PER_PACK * len(builtin_packs())


def test_a_run_with_the_probe_gate_calibrates_its_strength_with_a_probe_fitted_out_of_sample(
    small_run, minilm, small_concept, tmp_path, monkeypatch
):
    """The artifact's probe learns from the calibration paraphrases and unrelated prompts; the γ sweep's
    probe from none of them, so what the sweep reads is what unseen prompts would show. γ stays the
    gates' own; the prompts the probe catches get the γ their own sweep chose, as a strength."""
    from clear_core import workflow
    from clear_core.search import SearchConfig
    from clear_core.workflow import ClearRun, save_run

    implicit = [
        "a canopy of silk opening above a falling skydiver",
        "a skydiver's canopy billowing open",
        "a nylon canopy lowering a jumper onto a field",
        "a jumper drifting down under a round canopy",
    ]
    kw = dict(search_result=small_run.search, unrelated=UNRELATED)
    cfg = SearchConfig(steps=30, d_sae=256, seed=0)
    opts = EraserOptions(
        calibration_pairs=8, gammas=(0.0, 1.0, 2.0, 4.0), probe_gate=True, preserve=(), preserve_min=0.5
    )
    monkeypatch.setattr(workflow, "SWEEP_PROBE_MIN_PAIRS", 8)  # 10 fit pairs beside the 8 calibrating
    run = ClearRun(minilm, small_concept, cfg, opts, implicit=implicit, **kw)
    for _ in run.run():
        pass
    eraser = run.result.eraser
    assert eraser.probe is not None and run._sweep_probe is not None
    assert not torch.equal(run._sweep_probe["weight"], eraser.probe["weight"])
    assert eraser.meta["probe_gate"]["n_concept"] == len(run.split.fit) + 2  # the even paraphrases
    assert eraser.meta["probe_gate"]["reference_dropped"] == []  # a built-in pack drops by name
    # the layer it reads: the best-scoring on the calibration prompts, from the eraser's own up
    layers = eraser.meta["probe_gate"]["layers"]
    assert sorted(map(int, layers)) == list(range(eraser.layer, run.result.pos.n_layers))
    score = {int(k): v["paraphrases"] - max(v["unrelated"], v["lookalikes"]) for k, v in layers.items()}
    chosen = eraser.probe_layer or eraser.layer
    assert score[chosen] == max(score.values()) and eraser.meta["probe_gate"]["layer"] == chosen
    # the sweep's probe, rebuilt by hand: the fit pairs but the calibration pairs, the other packs'
    # prompts, the look-alikes the calibration does not measure (none here) and the empty prompt
    from clear_core.build import probe_gate
    from clear_core.splits import reference_prompts

    res, layer, scale = run.result, eraser.layer, eraser.scale
    cal = run._calibration_indices()
    rest = [i for i in range(res.pos.n_prompts) if i not in cal]
    assert len(rest) >= workflow.SWEEP_PROBE_MIN_PAIRS
    by_hand = probe_gate(
        [res.pos.select(rest)],
        [res.neg.select(rest), minilm.capture(reference_prompts("parachute"))],
        layer,
        scale,
        None,
        minilm.capture([""], empty_ok=True),
    )
    for k in ("weight", "bias"):
        torch.testing.assert_close(run._sweep_probe[k], by_hand[k], rtol=1e-4, atol=1e-5)
    # the share of calibration negatives that probe (which never saw them) calls the concept
    cal_neg = res.neg.select(cal).pooled("mean", layer) / scale
    scores = cal_neg @ by_hand["weight"].numpy() + float(by_hand["bias"])
    assert eraser.meta["probe_gate"]["calibration_negatives_caught"] == pytest.approx(
        float((scores > 0).mean())
    )
    cal = eraser.meta["calibration"]
    assert (
        "none of the calibration" in cal["probe_gate"]["probe"]
        and "other fit pairs" in cal["probe_gate"]["probe"]
    )
    # γ is the gates' own; the caught prompts' γ over it is the strength, stored with the probe
    probe_cal = cal["probe_gate"]
    assert eraser.gamma == probe_cal["gamma_gates"]
    ratio = probe_cal["gamma_probe"] / probe_cal["gamma_gates"]
    assert eraser.probe_strength == pytest.approx(max(ratio, 1.0))  # no floor to cost here
    assert len(probe_cal["rows_probe"]) == len(cal["rows"]) == len(opts.gammas)
    assert [t["row"]["gamma"] for t in probe_cal["tried"]] == [eraser.gamma]
    save_run(run.result, tmp_path / "run")
    back = Eraser.load(tmp_path / "run")
    assert back.digest() == eraser.digest() and back.probe_strength == pytest.approx(eraser.probe_strength)
    # a probe that costs a floor is switched off and said so (a floor this small set cannot break, so
    # the check is stood in for)
    monkeypatch.setattr(
        workflow, "_costs", lambda row, gates, opts: "the calibration's unrelated preservation 0.1 is below"
    )
    monkeypatch.setattr(workflow, "PROBE_NEGATIVES_WARN", 0.0)  # and any share of negatives is too many
    off = ClearRun(minilm, small_concept, cfg, opts, implicit=implicit, **kw)
    with pytest.warns(UserWarning) as caught:
        for _ in off.run():
            pass
    said = " ".join(str(w.message) for w in caught)
    assert "the calibration pairs' negatives the concept" in said
    assert re.search("probe gate off: with it at γ .* unrelated preservation 0.1", said)
    e = off.result.eraser
    assert e.probe is None and "probe_gate" not in e.meta and "probe gate off" in e.meta["probe_gate_skipped"]
    assert e.gamma == e.meta["calibration"]["probe_gate"]["gamma_gates"]
    tried = [t["strength"] for t in e.meta["calibration"]["probe_gate"]["tried"]]
    assert tried == list(dict.fromkeys([max(ratio, 1.0), 1.0, ratio]))  # each strength, then off


def test_the_probe_is_switched_off_only_for_a_floor_it_breaks_or_lowers():
    from types import SimpleNamespace

    from clear_core.workflow import _costs

    opts = EraserOptions(preserve_min=0.95, lookalike_min=0.9)

    def row(u, look=None, neg=1.0):
        return SimpleNamespace(
            preservation_unrelated=u, preservation_lookalike=look, preservation_negative=neg
        )

    assert _costs(row(0.96, 0.92), row(0.97, 0.95), opts) == ""  # lower, but above the floors
    assert _costs(row(0.96), row(0.97), opts) == ""  # no look-alikes
    assert _costs(row(0.93, 0.95), row(0.97, 0.95), opts) == (
        "the calibration's unrelated preservation 0.930 is below its floor 0.95 (0.970 without the probe)"
    )
    assert "look-alike preservation 0.850" in _costs(row(0.97, 0.85), row(0.97, 0.95), opts)
    # a floor the gates already break: only a probe that takes it lower still is blamed
    assert _costs(row(0.90), row(0.90), opts) == ""
    assert "0.880" in _costs(row(0.88), row(0.90), opts)
    # the pair negatives: a floor for the probe alone (the gates keep them whole)
    assert _costs(row(0.97, neg=0.93), row(0.97), opts) == (
        "the calibration's pair-negative preservation 0.930 is below its floor 0.95 (1.000 without the probe)"
    )


def test_probe_strength_and_the_probe_alone(small_run, minilm, tmp_path):
    """A caught prompt is erased at s·γ on every token (the gates' larger values kept where s < 1);
    ``probe_only`` leaves every prompt the probe does not catch alone."""
    run = small_run
    probed = _probe_eraser(run, minilm)
    ungated = _ungated(probed)
    layer = probed.layer
    caught = next(p for p in _prompt_states(run.pos, layer) if float(probed.probe_scores(p)) > 0)
    strong = dataclasses.replace(probed, probe={**probed.probe, "strength": torch.tensor([2.5])}, meta={})
    assert strong.probe_strength == 2.5 and probed.probe_strength == 1.0
    torch.testing.assert_close(strong.vector(caught), 2.5 * ungated.vector(caught))
    weak = dataclasses.replace(probed, probe={**probed.probe, "strength": torch.tensor([0.0001])}, meta={})
    gated = dataclasses.replace(probed, probe=None, meta={})
    # s below the gates: each token keeps the larger of its gate and s (here s is nearly 0)
    gap = (weak.vector(caught) - gated.vector(caught)).norm(dim=-1)
    assert (gap <= 1.01e-4 * ungated.vector(caught).norm(dim=-1) + 1e-6).all()
    # the probe alone: caught prompts in full, a prompt it misses (a negative) untouched
    alone = strong.probe_only()
    assert alone.probe_strength == 1.0
    torch.testing.assert_close(alone.vector(caught), ungated.vector(caught))
    missed = next(p for p in _prompt_states(run.neg, layer) if float(probed.probe_scores(p)) < 0)
    assert ungated.vector(missed).abs().sum() > 0
    assert alone.vector(missed).abs().sum() == 0
    # saved and loaded with the strength; a wrong-shaped strength is refused
    strong.save(tmp_path / "strong")
    back = Eraser.load(tmp_path / "strong")
    assert back.probe_strength == 2.5 and back.digest() == strong.digest() != probed.digest()
    with pytest.raises(ValueError, match="probe gate needs tensors"):
        dataclasses.replace(probed, probe={**probed.probe, "strength": torch.ones(2)}, meta={})
    with pytest.raises(ValueError, match="probe_strength"):
        dataclasses.replace(probed, probe={**probed.probe, "strength": torch.zeros(1)}, meta={})


def test_a_probe_gate_whose_context_gate_switches_off_warns_and_stays_off(small_run):
    from clear_core.validation import ClearWarning

    run = small_run
    with pytest.warns(ClearWarning, match="probe gate off"):
        eraser = build_eraser(
            run.search,
            run.pos,
            run.neg,
            "p",
            "minilm",
            context_gate=True,
            gate_negatives=run.pos,
            probe_sets=([], [run.neg]),
        )
    assert eraser.probe is None and "probe gate off" in eraser.meta["probe_gate_skipped"]
    with pytest.raises(ValueError, match="calibrated on text"):
        EraserOptions(probe_gate=True, calibrate_on="frames")
    EraserOptions(probe_gate=True, calibrate_on="frames", calibrate=False)  # nothing to calibrate


def test_a_concept_by_another_name_drops_its_built_in_pack_from_the_probes_concept_free_prompts(
    small_run, minilm, small_concept
):
    """ "chute" is the parachute pack under a name no pack has: the parachute pack's prompts read as
    the concept to a probe fitted without them, so the probe gate does not learn them as concept-free."""
    from clear_core.concepts import ConceptSet
    from clear_core.search import SearchConfig
    from clear_core.validation import ClearWarning
    from clear_core.workflow import ClearRun

    chute = ConceptSet("chute", small_concept.pairs)
    opts = EraserOptions(
        calibration_pairs=8, gammas=(0.0, 2.0), probe_gate=True, preserve=(), preserve_min=0.5
    )
    run = ClearRun(
        minilm,
        chute,
        SearchConfig(steps=30, d_sae=256, seed=0),
        opts,
        implicit=[],
        search_result=small_run.search,
        unrelated=UNRELATED,
    )
    with pytest.warns(ClearWarning, match="does not take the built-in packs .*parachute"):
        for _ in run.run():
            pass
    dropped = run.result.eraser.meta["probe_gate"]["reference_dropped"]
    assert dropped == ["parachute"]


def test_probe_gate_weighs_kept_prompts_as_much_as_every_other_concept_free_prompt(small_run, minilm):
    """Protected look-alikes are the concept-free prompts the probe must tell apart: given as ``kept``,
    they weigh as much as all the other concept-free prompts together, so they score lower than when
    they are three ordinary concept-free prompts among twenty (here concept prompts themselves stand
    in for look-alikes, the hardest case)."""
    from clear_core.build import probe_gate

    run = small_run
    layer, scale = run.eraser.layer, run.eraser.scale
    free = minilm.capture(["a bowl of soup on a table", "a red car on a coastal road at dusk"])
    kept = run.pos.select(range(3))
    weighted = probe_gate([run.pos], [run.neg, free], layer, scale, kept=kept)
    ordinary = probe_gate([run.pos], [run.neg, free, kept], layer, scale)
    probed = _probe_eraser(run, minilm)
    prompts = _prompt_states(kept, layer)

    def mean_score(probe):
        gate = dataclasses.replace(probed, probe=probe, meta={})
        return np.mean([float(gate.probe_scores(p)) for p in prompts])

    assert mean_score(weighted) < mean_score(ordinary)
    # deterministic: the same fit twice
    again = probe_gate([run.pos], [run.neg, free], layer, scale, kept=kept)
    assert torch.equal(again["weight"], weighted["weight"]) and torch.equal(again["bias"], weighted["bias"])


def test_the_probe_learns_that_the_empty_prompt_is_never_the_concept(small_run, minilm):
    """Classifier-free guidance encodes the empty prompt for every video: a probe that caught it would
    edit them all. Given as ``null`` it scores lower than without, below 0."""
    from clear_core.build import probe_gate

    run = small_run
    layer, scale = run.eraser.layer, run.eraser.scale
    with pytest.raises(ValueError, match="empty"):
        minilm.capture([""])
    null = minilm.capture([""], empty_ok=True)
    assert null.n_prompts == 1 and null.n_tokens == 2  # [CLS] [SEP]

    def score(probe):
        return float(null.pooled("mean", layer)[0] / scale @ probe["weight"].numpy() + float(probe["bias"]))

    plain = probe_gate([run.pos], [run.neg], layer, scale)
    guarded = probe_gate([run.pos], [run.neg], layer, scale, null=null)
    assert score(guarded) < min(score(plain), 0.0)


def test_a_probe_that_calls_the_empty_prompt_the_concept_is_switched_off(
    small_run, minilm, small_concept, monkeypatch
):
    """Stood in for by a concept prompt in the empty prompt's place (the real one is learnt away)."""
    from clear_core.search import SearchConfig
    from clear_core.validation import ClearWarning
    from clear_core.workflow import ClearRun

    original = ClearRun._probe_sets

    def swapped(self, *args):
        artifact, sweep = original(self, *args)
        concept_prompt = minilm.capture([small_concept.pairs[0].positive])
        return (*artifact[:3], concept_prompt), sweep

    monkeypatch.setattr(ClearRun, "_probe_sets", swapped)
    opts = EraserOptions(
        calibration_pairs=8, gammas=(0.0, 2.0), probe_gate=True, preserve=(), preserve_min=0.5
    )
    run = ClearRun(
        minilm,
        small_concept,
        SearchConfig(steps=30, d_sae=256, seed=0),
        opts,
        implicit=[],
        search_result=small_run.search,
        unrelated=UNRELATED,
    )
    with pytest.warns(ClearWarning, match="calls the empty prompt the concept"):
        for _ in run.run():
            pass
    e = run.result.eraser
    assert e.probe is None and "empty prompt" in e.meta["probe_gate_skipped"]
    assert e.meta["calibration"]["probe_gate"] is None


def test_the_sweep_probe_learns_only_from_look_alikes_the_calibration_does_not_measure(
    small_run, minilm, small_concept
):
    """The artifact's probe keeps every protected look-alike prompt; the γ sweep's probe only those
    past the first CALIBRATION_LOOKALIKES of each look-alike (the calibration measures those), and
    never the calibration's unrelated prompts."""
    from clear_core.search import SearchConfig
    from clear_core.workflow import CALIBRATION_LOOKALIKES, ClearRun

    opts = EraserOptions(
        calibration_pairs=8, gammas=(0.0, 2.0), probe_gate=True, preserve=("kite", "umbrella")
    )
    run = ClearRun(
        minilm,
        small_concept,
        SearchConfig(steps=30, d_sae=256, seed=0),
        opts,
        implicit=[],
        search_result=small_run.search,
        unrelated=UNRELATED,
    )
    protect = run.preserve.protect
    assert all(len(protect[n]) > CALIBRATION_LOOKALIKES for n in run.preserve.names)
    protected = minilm.capture(run.preserve.protect_prompts)
    unrelated_cal = run._prompt_negatives()
    layer = small_run.eraser.layer
    artifact, sweep = run._probe_sets(
        small_run.search, small_run.pos, small_run.neg, unrelated_cal, protected, layer
    )
    assert artifact[2] is protected and artifact[1][0] is unrelated_cal and artifact[3].n_prompts == 1
    assert all(a is not unrelated_cal for a in sweep[1]) and sweep[0] == []
    # the sweep's look-alikes: each look-alike's prompts from position CALIBRATION_LOOKALIKES on
    expected = [p for n in run.preserve.names for p in protect[n][CALIBRATION_LOOKALIKES:]]
    assert sweep[2].n_prompts == len(expected)
    np.testing.assert_allclose(  # the same prompts (batched otherwise: float rounding apart)
        sweep[2].pooled("mean", layer), minilm.capture(expected).pooled("mean", layer), atol=1e-4
    )
    assert not set(expected) & set(run._calibration_lookalikes())


def test_a_small_concept_with_the_default_calibration_pairs_gets_a_probe_gate(
    small_run, minilm, small_concept
):
    """With fewer fit pairs than the calibration takes, the sweep's probe learns from all of them (said
    so) instead of from none; without calibration there is no sweep probe at all."""
    from clear_core.search import SearchConfig
    from clear_core.workflow import ClearRun

    kw = dict(
        implicit=[],
        search_result=small_run.search,
        unrelated=UNRELATED,
    )
    cfg = SearchConfig(steps=30, d_sae=256, seed=0)
    opts = EraserOptions(gammas=(0.0, 2.0), probe_gate=True, preserve=(), preserve_min=0.5)
    assert opts.calibration_pairs > len(small_concept)  # every fit pair calibrates
    run = ClearRun(minilm, small_concept, cfg, opts, **kw)
    for _ in run.run():
        pass
    probe = run.result.eraser.meta["calibration"]["probe_gate"]
    assert "every fit pair (too few others)" in probe["probe"]
    assert "calibration_negatives_caught" not in run.result.eraser.meta.get("probe_gate", {})
    bare = ClearRun(minilm, small_concept, cfg, dataclasses.replace(opts, calibrate=False), **kw)
    for _ in bare.run():
        pass
    assert bare._sweep_probe is None and bare.result.eraser.probe is not None


def test_a_probe_gate_that_reads_a_deeper_layer_decides_from_an_unedited_first_pass(
    small_run, minilm, tmp_path
):
    """Every path that applies the eraser (hooks, the prefix sweep, the explanation) gives its probe
    the unedited states of the deeper layer: a prompt it catches there is erased as if the probe caught
    everything, one it misses as if it caught nothing."""
    from clear_core.prefix import encode_gammas
    from clear_core.preview import explain_prompt

    run = small_run
    layer, deeper = run.eraser.layer, run.pos.n_layers - 1  # the last layer
    assert deeper > layer
    deep = _probe_eraser(run, minilm, probe_layer=deeper)
    assert deep.lookahead and deep.probe_layer == deeper and deep.meta["probe_gate"]["layer"] == deeper
    prompts = [
        "a parachute opening above a field",
        "a skydiver's canopy billowing open over the sea",
        "a bowl of soup on a table",
        "a red car on a coastal road at dusk",
    ]
    acts = minilm.capture(prompts)
    caught = [float(deep.probe_scores(p)) > 0 for p in _prompt_states(acts, deeper)]
    assert any(caught) and not all(caught)
    always = dataclasses.replace(deep, probe={**deep.probe, "bias": torch.tensor([100.0])}, meta={})
    never = dataclasses.replace(deep, probe={**deep.probe, "bias": torch.tensor([-100.0])}, meta={})
    gamma = 4.0

    def encoded(eraser):
        with eraser.applied(minilm, gamma=gamma):
            return minilm.encode(prompts)

    hooked, yes, no = encoded(deep), encoded(always), encoded(never)
    for i, c in enumerate(caught):
        np.testing.assert_allclose(hooked[i], (yes if c else no)[i], atol=1e-5)
    # the prefix sweep (calibration, measurement) reads the same first pass
    np.testing.assert_allclose(encode_gammas(minilm, prompts, deep, [gamma])[gamma], hooked, atol=1e-5)
    # without a first pass, the eraser says what it needs
    with pytest.raises(ValueError, match="unedited first pass"):
        deep.vector(_prompt_states(acts, layer)[0])
    explain_prompt(deep, minilm, prompts[0], gamma)  # runs with its own first pass
    # saved and loaded with its layer; the layer is part of the digest
    deep.save(tmp_path / "deep")
    back = Eraser.load(tmp_path / "deep")
    assert back.probe_layer == deeper and back.digest() == deep.digest()
    assert dataclasses.replace(deep, probe_layer=None, meta={}).digest() != deep.digest()
    with pytest.raises(ValueError, match="probe_layer"):
        dataclasses.replace(deep, probe_layer=layer - 1, meta={})


def test_fitted_probe_at_a_deeper_layer_gives_that_layers_own_logits(small_run):
    """Rescaled to read states divided by the eraser's scale, the probe's logits are those of the
    probe fitted at its own layer's scale."""
    from clear_core.build import fitted_probe, probe_gate
    from clear_core.search import layer_scales

    run = small_run
    layer, deeper = run.eraser.layer, run.pos.n_layers - 1
    folded = fitted_probe([run.pos], [run.neg], deeper, layer, run.eraser.scale)
    own_scale = layer_scales([run.pos, run.neg], [deeper])[0]
    assert not math.isclose(own_scale, run.eraser.scale, rel_tol=1e-3)
    own = probe_gate([run.pos], [run.neg], deeper, own_scale)
    x = run.neg.pooled("mean", deeper)
    np.testing.assert_allclose(
        x / run.eraser.scale @ folded["weight"].numpy() + float(folded["bias"]),
        x / own_scale @ own["weight"].numpy() + float(own["bias"]),
        rtol=1e-4,
        atol=1e-4,
    )


def test_a_run_whose_probe_reads_a_deeper_layer(small_run, minilm, small_concept, tmp_path, monkeypatch):
    """The whole run with the probe's layer forced deeper: the sweep probe, the empty-prompt check and
    the calibration all read that layer; the artifact says format 2 and loads back the same; nested
    contexts keep each other's first passes; an encoder without that layer is refused."""
    from clear_core import workflow
    from clear_core.build import fitted_probe
    from clear_core.erasure import applied_many
    from clear_core.search import SearchConfig
    from clear_core.splits import reference_prompts
    from clear_core.workflow import ClearRun, save_run

    deeper = small_run.pos.n_layers - 1
    monkeypatch.setattr(workflow.ClearRun, "_probe_layer", lambda self, *a: (deeper, {"forced": True}))
    monkeypatch.setattr(workflow, "SWEEP_PROBE_MIN_PAIRS", 8)
    opts = EraserOptions(
        calibration_pairs=8, gammas=(0.0, 2.0, 4.0), probe_gate=True, preserve=(), preserve_min=0.5
    )
    run = ClearRun(
        minilm,
        small_concept,
        SearchConfig(steps=30, d_sae=256, seed=0),
        opts,
        implicit=["a canopy of silk opening above a falling skydiver", "a skydiver's canopy billowing open"],
        search_result=small_run.search,
        unrelated=UNRELATED,
    )
    for _ in run.run():
        pass
    e = run.result.eraser
    assert e.probe is not None and e.probe_layer == deeper and e.meta["probe_gate"]["layer"] == deeper
    assert e.meta["held_out"]["erased"]["leakage_positive"] is not None  # measured through the first pass
    cal = run._calibration_indices()
    rest = [i for i in range(run.result.pos.n_prompts) if i not in cal]
    by_hand = fitted_probe(
        [run.result.pos.select(rest)],
        [run.result.neg.select(rest), minilm.capture(reference_prompts("parachute"))],
        deeper,
        e.layer,
        e.scale,
        None,
        minilm.capture([""], empty_ok=True),
    )
    for k in ("weight", "bias"):
        torch.testing.assert_close(run._sweep_probe[k], by_hand[k], rtol=1e-4, atol=1e-5)
    save_run(run.result, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "eraser.json").read_text())["format"] == 2
    back = Eraser.load(tmp_path / "run")
    assert back.probe_layer == deeper and back.digest() == e.digest()
    # nested contexts: each keeps its own first pass (the same eraser twice stands in for two)
    other = dataclasses.replace(e, probe_layer=deeper - 1, meta={})
    prompts = ["a parachute opening above a field", "a bowl of soup on a table"]
    with applied_many([(e, 2.0)], minilm), applied_many([(other, 2.0)], minilm):
        minilm.encode(prompts)  # both probes find their layer
    # an encoder too shallow for the probe's layer is refused before anything runs
    with pytest.raises(ValueError, match=f"layer {deeper + 1} does not exist"):
        dataclasses.replace(e, probe_layer=deeper + 1, meta={}).check_encoder(minilm)
