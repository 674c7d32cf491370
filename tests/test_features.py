import numpy as np
import pytest

from analysis.features import explain_prompt, feature_table, nearest_tokens, sae_health, top_prompts
from clear_core.build import steering_eraser


def test_feature_table_ranked_by_specificity(small_run):
    table = feature_table(small_run.eraser, small_run.pos, small_run.neg, top_k=10)
    assert len(table.ids) == 10 and np.all(np.diff(table.spec) <= 1e-7)
    assert table.spec[0] == pytest.approx(1.0, abs=1e-4)
    assert table.pos_mean[0] > table.neg_mean[0]  # the most specific feature fires more on positives
    assert table.n_specific == int((small_run.eraser.m_spec > 0.5).sum())


def test_top_prompts_have_token_strings(minilm, small_run):
    feature = int(feature_table(small_run.eraser, small_run.pos, small_run.neg, top_k=1).ids[0])
    tops = top_prompts(small_run.eraser, small_run.pos, feature, k=3, tokenizer=minilm.tokenizer)
    assert len(tops) == 3 and tops[0].peak >= tops[1].peak >= tops[2].peak
    assert tops[0].tokens[0] == "[CLS]" and len(tops[0].tokens) == len(tops[0].values)
    assert max(tops[0].values) == pytest.approx(tops[0].peak)
    with pytest.raises(ValueError, match="out of range"):
        top_prompts(small_run.eraser, small_run.pos, 10_000)


def test_nearest_tokens_and_health(minilm, small_run):
    tokens = nearest_tokens(small_run.eraser, minilm, 0, k=5)
    assert len(tokens) == 5 and tokens[0][1] >= tokens[-1][1]
    health = sae_health(small_run.eraser, small_run.pos)
    assert 0 < health.fvu < 1 and health.l0 > 0 and health.n_rows == small_run.pos.n_tokens


def test_explain_prompt(minilm, small_run):
    strong = explain_prompt(small_run.eraser, minilm, "a skydiver with a parachute over the sea", gamma=4.0)
    none = explain_prompt(small_run.eraser, minilm, "a skydiver with a parachute over the sea", gamma=0.0)
    assert none.cosine == pytest.approx(1.0, abs=1e-6) and none.norm_drift == pytest.approx(0.0, abs=1e-6)
    assert strong.cosine < 1.0 and strong.subtracted and strong.subtracted[0][1] > 0
    assert len(strong.tokens) == len(strong.token_erased) and 0 <= strong.recon_error < 1
    with pytest.raises(ValueError, match="enter a prompt"):
        explain_prompt(small_run.eraser, minilm, "  ")


def test_steering_eraser_has_no_features(small_run):
    steer = steering_eraser(small_run.pos, small_run.neg, 2, "c", "minilm")
    with pytest.raises(ValueError, match="steering eraser has no features"):
        feature_table(steer, small_run.pos, small_run.neg)
