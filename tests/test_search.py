import numpy as np
import pytest
import torch

from clear_core.search import (
    LayerSearch,
    SearchConfig,
    gumbel_noise,
    gumbel_softmax,
    layer_uncertainty,
    paper_masks,
    run_brute_force,
    tau_schedule,
)
from tests.conftest import synthetic_pairs


def test_gumbel_softmax_sums_to_one_and_sharpens():
    gen = torch.Generator().manual_seed(0)
    logits = torch.tensor([0.3, 1.0, -0.5, 0.2])
    noise = gumbel_noise(4, gen)
    entropies = []
    for tau in (1.0, 0.5, 0.1):
        p = gumbel_softmax(logits, tau, noise)
        torch.testing.assert_close(p.sum(), torch.tensor(1.0))
        assert (p >= 0).all()
        entropies.append(float(-(p * p.clamp_min(1e-30).log()).sum()))
    assert entropies[0] > entropies[1] > entropies[2]
    with pytest.raises(ValueError, match="temperature"):
        gumbel_softmax(logits, 0.0, noise)


def test_tau_anneals_linearly():
    taus = tau_schedule(SearchConfig(steps=10, tau_start=1.0, tau_end=0.1))
    assert taus[0] == pytest.approx(1.0) and taus[-1] == pytest.approx(0.1)
    assert np.allclose(np.diff(taus), -0.1)


def test_paper_masks():
    f_neg = torch.tensor([[0.0, 2.0, 1.0], [0.0, 2.0, 3.0]])
    shared, spec = paper_masks(f_neg, eps=0.0)
    torch.testing.assert_close(shared, torch.tensor([0.0, 1.0, 1.0]))
    torch.testing.assert_close(spec, torch.tensor([1.0, 0.0, 0.0]))


def test_search_finds_the_planted_block():
    pos, neg, _ = synthetic_pairs(planted_layer=3)
    search = LayerSearch(pos, neg, SearchConfig(steps=150, d_sae=64, batch_pairs=8, l1_coefficient=1e-2))
    events = list(search.run())
    result = search.result
    assert result.candidates == [1, 2, 3, 4]  # blocks only, not the embeddings
    assert result.layer == 3
    assert result.probs[result.candidates.index(3)] == max(result.probs)
    assert not result.cancelled and events[-1].step == 150
    assert all(abs(sum(e.probs) - 1) < 1e-5 for e in events)


def test_converged_search_stops_early_and_says_why():
    """A decisive planted block: the search stops once the block has held p ≥ 0.9 for the window and
    L_SAE has flattened, records why on its last event and result, and is not a cancelled run; the
    same search with early_stop=False runs every step."""
    pos, neg, _ = synthetic_pairs(planted_layer=2)
    config = SearchConfig(
        steps=400, d_sae=64, batch_pairs=8, lr_alpha=0.3, stop_window=40, min_steps=60, stop_tolerance=0.3
    )
    search = LayerSearch(pos, neg, config)
    events = list(search.run())
    result = search.result
    assert result.layer == 2 and not result.cancelled
    assert 60 <= events[-1].step < 400
    assert result.stop_reason.startswith(f"converged at step {events[-1].step}")
    assert events[-1].stop_reason == result.stop_reason
    assert all(e.stop_reason is None for e in events[:-1])
    window = [e for e in events if e.step > events[-1].step - 40]
    assert all(max(e.probs) >= 0.9 and e.probs[result.candidates.index(2)] == max(e.probs) for e in window)
    full = LayerSearch(pos, neg, SearchConfig(**{**config.to_json(), "layers": None, "early_stop": False}))
    full_events = list(full.run())
    assert full_events[-1].step == 400 and full.result.stop_reason == "all 400 steps"
    # up to the early stop both runs are the same run
    torch.testing.assert_close(
        torch.tensor(full_events[len(events) - 2].probs), torch.tensor(events[-2].probs)
    )


def test_search_stopped_by_the_user_is_cancelled():
    pos, neg, _ = synthetic_pairs()
    search = LayerSearch(pos, neg, SearchConfig(steps=100, d_sae=32))
    seen = []
    for event in search.run(should_stop=lambda: len(seen) >= 2):
        seen.append(event)
    assert search.result.cancelled and search.result.stop_reason == "stopped at step 10"


def test_seeded_search_is_bitwise_reproducible():
    pos, neg, _ = synthetic_pairs()
    config = SearchConfig(steps=20, d_sae=32, seed=7)
    a, b = LayerSearch(pos, neg, config), LayerSearch(pos, neg, config)
    list(a.run())
    list(b.run())
    assert torch.equal(a.alpha, b.alpha)
    for p, q in zip(a.sae.parameters(), b.sae.parameters()):
        assert torch.equal(p, q)
    c = LayerSearch(pos, neg, SearchConfig(steps=20, d_sae=32, seed=8))
    list(c.run())
    assert not torch.equal(a.sae.W_dec, c.sae.W_dec)


def test_cancel_keeps_a_result():
    pos, neg, _ = synthetic_pairs()
    search = LayerSearch(pos, neg, SearchConfig(steps=100, d_sae=32, event_every=1))
    seen = []
    for event in search.run(should_stop=lambda: len(seen) >= 5):
        seen.append(event)
    assert search.result.cancelled
    assert len(search.result.history) == 5


def test_closing_the_generator_keeps_a_result():
    pos, neg, _ = synthetic_pairs()
    search = LayerSearch(pos, neg, SearchConfig(steps=100, d_sae=32, event_every=1))
    gen = search.run()
    for _ in range(3):
        next(gen)
    gen.close()
    assert search.result.cancelled and len(search.result.history) == 3


def test_normalisation_scales_are_mean_token_norms():
    pos, neg, _ = synthetic_pairs()
    pos.data[2] *= 50  # a block with a far larger norm must not dominate
    search = LayerSearch(pos, neg, SearchConfig(steps=1, d_sae=8))
    expected = np.linalg.norm(np.concatenate([pos.data[2], neg.data[2]]), axis=-1).mean()
    assert search.scales[1] == pytest.approx(expected, rel=1e-5)
    batch = search._batch((pos, np.arange(4)))
    norms = batch.norm(dim=-1).mean(-1)
    assert float(norms.max() / norms.min()) < 3


def test_streamed_captures_give_the_resident_search(monkeypatch):
    """Captures too large to hold (RESIDENT_BYTES) are read per step: the same search, bit for bit."""
    import clear_core.search as search_module

    pos, neg, _ = synthetic_pairs()
    protected = synthetic_pairs(seed=5)[1]
    config = SearchConfig(steps=15, d_sae=32, batch_pairs=4, early_stop=False)
    resident = LayerSearch(pos, neg, config, protected=protected)
    assert resident._resident is not None
    monkeypatch.setattr(search_module, "RESIDENT_BYTES", 0)
    streamed = LayerSearch(pos, neg, config, protected=protected)
    assert streamed._resident is None
    for search in (resident, streamed):
        for _ in search.run():
            pass
    assert resident.result.probs == streamed.result.probs
    torch.testing.assert_close(resident.result.sae.W_enc, streamed.result.sae.W_enc, rtol=0, atol=0)


def test_brute_force_scores_every_block():
    pos, neg, _ = synthetic_pairs(planted_layer=2)
    result = run_brute_force(pos, neg, SearchConfig(steps=60, d_sae=32, batch_pairs=8, l1_coefficient=1e-2))
    assert result.candidates == [1, 2, 3, 4] and len(result.scores) == 4 and len(result.results) == 4
    assert result.layer == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 0}, "steps"),
        ({"tau_end": 0}, "tau_end"),
        ({"layers": ()}, "layers"),
        ({"l1_coefficient": -1}, "l1"),
        ({"sae_kind": "gated"}, "sae_kind"),
        ({"k": 0}, "k must"),
        ({"clip_grad": 0}, "clip_grad"),
    ],
)
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SearchConfig(**kwargs)


def test_mismatched_captures_are_refused():
    pos, neg, _ = synthetic_pairs(n_pairs=8)
    short, _, _ = synthetic_pairs(n_pairs=6)
    with pytest.raises(ValueError, match="pairs must match"):
        LayerSearch(pos, short)
    with pytest.raises(ValueError, match="out of range"):
        LayerSearch(pos, neg, SearchConfig(layers=(9,)))


@pytest.mark.parametrize("kind", ["relu", "batchtopk"])
def test_other_sae_kinds_find_the_planted_block(kind):
    pos, neg, _ = synthetic_pairs(planted_layer=2)
    config = SearchConfig(steps=150, d_sae=64, batch_pairs=8, l1_coefficient=1e-2, sae_kind=kind, k=8)
    search = LayerSearch(pos, neg, config)
    list(search.run())
    assert search.result.layer == 2 and search.sae.config.kind == kind
    assert not search.sae.training  # finished SAEs are in inference mode (batchtopk: the threshold)


def test_finished_sae_has_unit_decoder_rows():
    pos, neg, _ = synthetic_pairs()
    search = LayerSearch(pos, neg, SearchConfig(steps=20, d_sae=32, sae_kind="relu"))
    list(search.run())
    torch.testing.assert_close(search.sae.W_dec.norm(dim=1), torch.ones(32))


def test_single_candidate_skips_the_alpha_update():
    pos, neg, _ = synthetic_pairs()
    search = LayerSearch(pos, neg, SearchConfig(steps=10, d_sae=32, layers=(2,), event_every=1))
    events = list(search.run())
    assert torch.equal(search.alpha, torch.zeros(1))
    assert search.result.probs == [1.0] and search.result.uncertainty.decisive
    assert all(e.loss_con >= 0 for e in events)


def test_layer_uncertainty():
    flat = layer_uncertainty([0.25, 0.25, 0.25, 0.25])
    assert flat.entropy == pytest.approx(1.0) and flat.margin == 0 and not flat.decisive
    sharp = layer_uncertainty([0.9, 0.05, 0.05])
    assert sharp.decisive and sharp.top_prob == pytest.approx(0.9) and sharp.margin == pytest.approx(0.85)
    assert 0 < sharp.entropy < 0.5
    assert not layer_uncertainty([0.55, 0.3, 0.15]).decisive  # not twice the runner-up
    with pytest.raises(ValueError, match="probability vector"):
        layer_uncertainty([0.5, 0.2])


def test_search_on_the_planted_block_is_decisive():
    pos, neg, _ = synthetic_pairs(planted_layer=3)
    search = LayerSearch(pos, neg, SearchConfig(steps=150, d_sae=64, batch_pairs=8))
    list(search.run())
    u = search.result.uncertainty
    assert search.result.layer == 3 and u.decisive, u


def _lookalike_world(seed: int = 0):
    """Positives carry a strong direction A at block 3 and a weaker B at block 2; the look-alike's
    prompts carry A at block 3 too, so only block 2 tells the concept from its look-alike."""
    from clear_core.encoders import Activations

    pos, neg, a = synthetic_pairs(planted_layer=3, seed=seed)
    rng = np.random.default_rng(seed + 1)
    b = rng.normal(size=a.shape)
    b *= 2.0 / np.linalg.norm(b)
    for i in range(pos.n_prompts):
        pos.data[2, pos.offsets[i] + 1 : pos.offsets[i] + 3] += b.astype(np.float32)
    noise = rng.normal(size=neg.data.shape).astype(np.float32) / np.sqrt(neg.d_model)
    names = [f"look {i}" for i in range(neg.n_prompts)]
    look = Activations(noise, neg.offsets.copy(), neg.layer_names, names, "synthetic")
    for i in range(look.n_prompts):
        look.data[3, look.offsets[i] + 1 : look.offsets[i] + 3] += a.astype(np.float32)
    return pos, neg, look


def test_lookalikes_in_the_search_move_it_to_the_block_that_tells_them_apart():
    pos, neg, look = _lookalike_world()
    config = SearchConfig(steps=200, d_sae=64, batch_pairs=8, k=8)
    plain = LayerSearch(pos, neg, config)
    list(plain.run())
    kept = LayerSearch(pos, neg, config, protected=look)
    list(kept.run())
    assert plain.result.layer == 3  # the strongest concept direction
    assert kept.result.layer == 2  # the only one the look-alike does not share


def test_lookalike_capture_must_match_the_encoder():
    pos, neg, _ = synthetic_pairs(n_pairs=8)
    other, _, _ = synthetic_pairs(n_pairs=8, d=8)
    with pytest.raises(ValueError, match="look-alike capture"):
        LayerSearch(pos, neg, protected=other)


def test_block_verdict_over_seeds():
    from types import SimpleNamespace

    from clear_core.search import block_verdict

    def result(layer, seed, p=0.9):
        return SimpleNamespace(layer=layer, config=SimpleNamespace(seed=seed), probs=[p, 1 - p])

    stable = block_verdict([result(4, 0), result(4, 1), result(4, 2)])
    assert stable.stable and stable.verdict == "block 3 in 3 of 3 seeds" and stable.seeds == [0, 1, 2]
    split = block_verdict([result(3, 0), result(5, 1), result(5, 2)])
    assert not split.stable and split.agreement == pytest.approx(1 / 3)
    assert split.verdict.startswith("undecided between blocks 4 and 2")
    assert split.to_json()["blocks"] == [2, 4, 4]


def test_run_with_verdict_seeds_records_the_verdict(minilm, small_concept):
    from clear_core.workflow import ClearRun, EraserOptions

    run = ClearRun(
        minilm,
        small_concept,
        SearchConfig(steps=15, d_sae=64, verdict_seeds=2),
        EraserOptions(calibrate=False),
        unrelated=["a bowl of soup", "a red car", "a cat asleep", "a city street"],
    )
    stages = [s.name for s in run.run()]
    assert stages.count("verdict") == 2
    verdict = run.result.eraser.meta["block_verdict"]
    assert verdict["seeds"] == [0, 1, 2] and len(verdict["blocks"]) == 3
    assert verdict["blocks"][0] == run.result.eraser.layer - 1
