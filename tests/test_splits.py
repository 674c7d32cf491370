import json
import random

import pytest

from clear_core.concepts import ConceptPair, ConceptSet, load_builtin
from clear_core.lookalikes import lookalike_prompts
from clear_core.splits import alternate, prompts_digest, split_pairs


def _concept(n: int) -> ConceptSet:
    return ConceptSet("c", [ConceptPair(f"a parachute over town {i}", f"over town {i}") for i in range(n)])


def test_pair_split_is_fixed_by_text_not_by_order_or_seed():
    concept = load_builtin("parachute")
    split = split_pairs(concept)
    assert len(split.held_out) == 60 and len(split.fit) == 180
    assert not set(split.fit.positives) & set(split.held_out.positives)
    shuffled = list(concept.pairs)
    random.Random(3).shuffle(shuffled)
    again = split_pairs(ConceptSet("parachute", shuffled))
    assert sorted(again.held_out.positives) == sorted(split.held_out.positives)
    record = split.to_json()
    assert record["held_out_digest"] == prompts_digest(again.held_out.positives)
    assert record["n_fit"] == 180 and "sha256" in record["rule"]
    # adding pairs never moves a held-out pair into the fit part unless a new one ranks below it
    grown = split_pairs(ConceptSet("parachute", concept.pairs + _concept(4).pairs))
    assert len(set(grown.held_out.positives) & set(split.held_out.positives)) >= 58


@pytest.mark.parametrize(("n", "held"), [(2, 0), (3, 0), (4, 1), (8, 2), (9, 3)])
def test_small_concepts_keep_enough_to_fit(n, held):
    split = split_pairs(_concept(n))
    assert len(split.held_out) == held and len(split.fit) == n - held


def test_no_holdout_and_bad_share():
    assert len(split_pairs(_concept(10), share=0).held_out) == 0
    with pytest.raises(ValueError, match="held-out share"):
        split_pairs(_concept(10), share=1.0)


def test_alternate_halves():
    assert alternate(["a", "b", "c", "d", "e"]) == (["a", "c", "e"], ["b", "d"])


def test_run_never_sees_held_out_pairs_and_records_the_split(minilm, tmp_path):
    """The search, masks and calibration get the fit pairs only; eraser.json records the split and the
    held-out measurement, whose look-alike prompts come from held-out pairs only."""
    from clear_core.search import SearchConfig
    from clear_core.workflow import ClearRun, EraserOptions, save_run

    full = load_builtin("golf_ball")
    concept = ConceptSet("golf_ball", full.pairs[::8])  # 30 pairs
    run = ClearRun(
        minilm,
        concept,
        SearchConfig(steps=10, d_sae=128),
        EraserOptions(calibration_pairs=8, gammas=(0.0, 1.0, 2.0)),
        unrelated=[f"a bowl of soup number {i}" for i in range(8)],
    )
    list(run.run())
    result = run.result
    held = set(result.split.held_out.positives)
    assert len(held) == 8 and not held & set(result.pos.prompts)
    assert not set(result.split.held_out.negatives) & set(result.neg.prompts)
    pair_of = {text: i for i, text in lookalike_prompts(concept, "tennis ball", seed=0)}
    held_ids = set(result.split.held_out_indices)
    assert result.preserve.held_out_prompts and result.preserve.protect_prompts
    assert {pair_of[t] for t in result.preserve.held_out_prompts} <= held_ids
    assert not {pair_of[t] for t in result.preserve.protect_prompts} & held_ids
    save_run(result, tmp_path)
    info = json.loads((tmp_path / "eraser.json").read_text())
    assert info["splits"]["pairs"]["n_held_out"] == 8 and info["splits"]["pairs"]["n_fit"] == 22
    assert info["splits"]["unrelated"]["n_held_out"] == 4
    assert info["held_out"]["n_pairs"] == 8 and info["held_out"]["gamma"] == result.eraser.gamma
    assert info["held_out"]["erased"]["gamma"] == result.eraser.gamma
    assert info["held_out"]["unerased"]["gamma"] == 0.0
    assert result.held_out.n_unrelated == 4
