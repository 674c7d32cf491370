"""The paper-claims runner (research/testbed_paper.py): decisions, plumbing, caching, replayed builds.

The runner's erasers normally come from CLI searches (minutes); here a stub bank hands out steering
erasers built in a second, so the whole runner runs on the real testbed pipe and detector at tiny
sizes. One test builds a real forced-block eraser through the CLI's code path from a tiny search.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from research import testbed_paper as paper
from research.testbed_paper import EraserBank, PaperConfig, best_block, choose_pairs, run_paper


def _row(block, rate, pres, r0=1.0):
    return {"block": block, "rate": rate, "preservation": pres, "rate_original": r0}


def test_best_block_prefers_lowest_rate_above_the_floor_then_preservation():
    rows = [
        _row(0, 0.0, 0.5),
        _row(1, 0.2, 0.95),
        _row(2, 0.005, 0.92),
        _row(3, 0.0, 0.97),
        _row(4, 0.6, 1.0),
    ]
    best = best_block(rows, 0.9)
    assert best == {"block": 3, "tied": [2, 3], "qualifies": True}  # block 0 erases but breaks the scene


def test_best_block_without_a_qualifying_block_falls_back_to_the_trade_off():
    rows = [_row(0, 0.0, 0.5), _row(1, 0.5, 0.8), _row(2, 0.1, 0.85)]
    best = best_block(rows, 0.9)
    assert best["block"] == 2 and best["qualifies"] is False  # 0.9 * 0.85 beats 1.0 * 0.5 and 0.5 * 0.8
    with pytest.raises(ValueError, match="no per-block rows"):
        best_block([], 0.9)


def test_choose_pairs_gives_one_same_block_and_one_different_block_pair():
    blocks = {"parachute": 3, "golf_ball": 3, "van_gogh": 3, "church": 2}
    same, different = choose_pairs(blocks)
    assert blocks[same[0]] == blocks[same[1]] and blocks[different[0]] != blocks[different[1]]
    # different detector heads first: an object with a style, not two objects
    assert {same[0], same[1]} == {"parachute", "van_gogh"}
    assert choose_pairs({"parachute": 1, "church": 1}) == [("parachute", "church")]


def test_config_checks_its_input():
    with pytest.raises(ValueError, match="no testbed attribute"):
        PaperConfig(concepts=("parachute", "unicorn"))
    with pytest.raises(ValueError, match="not a built-in pack"):
        PaperConfig(concepts=("parachute", "kite"))  # the detector reads kites, but there is no kite pack
    with pytest.raises(ValueError, match="unknown experiment"):
        PaperConfig(experiments=("blocks", "fig9"))
    with pytest.raises(ValueError, match="gammas"):
        PaperConfig(gammas=(1.0, -2.0))
    with pytest.raises(ValueError, match="pair"):
        PaperConfig(concepts=("parachute", "church"), pairs=(("parachute", "nudity"),))


_ACTS: dict = {}


class _StubBank(EraserBank):
    """Steering erasers at every block (built in a second) stand in for the searched ones."""

    def __init__(self, root, encoder):
        super().__init__(root, log=lambda _: None)
        self._encoder = encoder
        self.builds = 0

    def _build(self, slug, variant):
        from clear_core.build import steering_eraser
        from clear_core.concepts import load_concept

        self.builds += 1
        if slug not in _ACTS:
            pairs = load_concept(slug).pairs[:8]
            _ACTS[slug] = (
                self.encoder.capture([p.positive for p in pairs]),
                self.encoder.capture([p.negative for p in pairs]),
            )
        pos, neg = _ACTS[slug]
        layer = {"clear": 4, "nocon": 2, "paper": 4, "steering": 4}.get(variant)
        layer = layer or int(variant.removeprefix("block")) + 1
        e = steering_eraser(pos, neg, layer, slug, self.encoder.model_id, gamma=3.0)
        e.meta.update(layer_probs=[0.05, 0.05, 0.1, 0.6, 0.15, 0.05], candidates=[1, 2, 3, 4, 5, 6])
        return e


@pytest.fixture(scope="module")
def testbed():
    from clear_core.testbed.detector import load_detector
    from clear_core.testbed.pipeline import load_testbed_pipeline

    torch.set_num_threads(1)
    return load_testbed_pipeline(), load_detector()


def test_runner_plumbing_equivalences_and_cache(tmp_path, minilm, testbed):
    pipe, det = testbed
    cfg = PaperConfig(concepts=("parachute", "van_gogh"), n_prompts=2, seeds=1, steps=2, gammas=(0.0, 3.0))
    bank = _StubBank(tmp_path / "erasers", minilm)
    res = run_paper(cfg, bank, pipe, det, log=lambda _: None, png_dir=None)
    json.dumps(res, allow_nan=False)  # JSON-able as written
    for slug in cfg.concepts:
        r = res["concepts"][slug]
        assert set(r) >= {*paper.PER_CONCEPT, "clear_eraser"}
        rows = r["blocks"]["rows"]
        assert [row["block"] for row in rows] == list(range(6)) and r["blocks"]["clear_block"] == 3
        assert r["blocks"]["best"]["block"] in range(6)
        assert r["blocks"]["low"]["gamma"] == 1.5 and len(r["blocks"]["low"]["rows"]) == 6
        assert r["top2"]["top2_block"] == 4  # the second most probable block of the stub
        g0, g3 = r["gamma"]["rows"]
        # γ = 0 is the unerased model: same rate, every frame of the negatives read the same
        assert g0["rate"] == g0["rate_original"] and g0["preservation"] == 1.0
        # γ = 3 is the eraser's own default: the γ sweep and the ablation measure the same clips
        assert g3["rate"] == r["ablations"]["clear"]["rate"]
        for m in (g3, r["implicit"], r["negprompt"]["negprompt"], r["ablations"]["steering"]):
            assert 0 <= m["rate"] <= 1 and 0 <= m["preservation"] <= 1 and m["n_frames"] == 16
        assert (
            r["negprompt"]["negative_prompt"]
            == {"parachute": "parachute", "van_gogh": "Van Gogh style"}[slug]
        )
    (pair,) = res["pairs"]  # both stub erasers sit on block 3: only a same-block pair exists
    assert res["pairs"][pair]["same_block"] is True
    assert res["summary"]["n"] == 2 and res["clips_generated"] > 0
    md = paper.markdown_tables(res)
    assert md.count("| van_gogh |") >= 7 and "Two concepts at once" in md
    # the pipe is left unhooked: an unerased clip equals the cached original
    bench = paper.ConceptBench("parachute", pipe, det, cfg)
    again = bench.predictions("pack", "pos")
    first = paper.ConceptBench("parachute", pipe, det, cfg, tmp_path / "erasers" / "parachute" / "latents")
    for k in again:
        np.testing.assert_array_equal(again[k], first.predictions("pack", "pos")[k])
    assert first.generated == 0
    # a rerun builds nothing and generates nothing: erasers and latents come from the cache
    cfg2 = PaperConfig(concepts=("parachute",), experiments=("blocks",), n_prompts=2, seeds=1, steps=2)
    bank2 = _StubBank(tmp_path / "erasers", minilm)
    res2 = run_paper(cfg2, bank2, pipe, det, log=lambda _: None)
    assert res2["clips_generated"] == 0 and bank2.builds == 0
    assert res2["concepts"]["parachute"]["blocks"] == res["concepts"]["parachute"]["blocks"]


def test_figures_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    rows = [dict(_row(b, 0.1 * b, 1 - 0.1 * b), search_prob=1 / 6) for b in range(6)]
    res = {
        "concepts": {
            "parachute": {
                "blocks": {
                    "rows": rows,
                    "clear_block": 3,
                    "best": {"block": 0},
                    "gamma": 2.0,
                    "low": {"gamma": 1.0, "rows": rows},
                },
                "gamma": {
                    "calibrated_gamma": 2.0,
                    "rows": [{"gamma": g, "rate": 0.5, "preservation": 0.9} for g in (0, 2)],
                },
            }
        }
    }
    paths = paper.write_figures(res, tmp_path)
    assert [p.name for p in paths] == ["blocks_parachute.png", "gamma.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_forced_block_is_built_from_clears_own_search(tmp_path, minilm):
    """``block<b>`` goes through ClearRun with the finished search replayed: same SAE, CLEAR's γ,
    masks rebuilt at block b — what ``search --block b --gamma γ`` builds, without a second search."""
    from clear_core.build import build_eraser
    from clear_core.concepts import ConceptSet, load_concept
    from clear_core.search import LayerSearch, SearchConfig

    concept = ConceptSet("golf_ball", load_concept("golf_ball").pairs[::15])  # 16 pairs: fast
    pos, neg = minilm.capture(concept.positives), minilm.capture(concept.negatives)
    runner = LayerSearch(pos, neg, SearchConfig(steps=4, d_sae=256, batch_pairs=4))
    for _ in runner.run():
        pass
    clear = build_eraser(runner.result, pos, neg, "golf_ball", minilm.model_id, gamma=2.5)
    clear.save(tmp_path / "v2" / "golf_ball")
    bank = EraserBank(
        tmp_path / "bank", clear_from=tmp_path / "v2", log=lambda _: None, concept_of=lambda s: concept
    )
    bank._encoder = minilm
    target = 0 if clear.layer != 1 else 1
    forced = bank.get("golf_ball", f"block{target}")
    assert forced.layer == target + 1 and forced.gamma == 2.5 and forced.kind == "sae"
    for k, v in clear.sae.state_dict().items():
        assert torch.equal(v, forced.sae.state_dict()[k])
    assert not torch.equal(forced.m_spec, clear.m_spec)
    assert (tmp_path / "bank" / "golf_ball" / f"block{target}" / "eraser.json").is_file()
    assert bank.get("golf_ball", f"block{clear.layer - 1}") is bank.get("golf_ball", "clear")
