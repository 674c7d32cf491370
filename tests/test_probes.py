import numpy as np
import pytest

from analysis.probes import (
    auc_interval,
    check_labelled,
    context_masks,
    fisher_ratio,
    fold_indices,
    make_probe,
    probe_errors,
    separability_scores,
    shared_token_masks,
    transfer_layer,
    wilson_interval,
)

N_PAIRS, N_LAYERS, D, PLANTED = 150, 4, 24, 2


def planted(seed: int = 0):
    """Pairs sharing a scene vector at every layer; only layer PLANTED carries the concept direction."""
    rng = np.random.default_rng(seed)
    scene = rng.normal(size=(N_PAIRS, N_LAYERS, D))
    X = np.concatenate([scene, scene]) + rng.normal(size=(2 * N_PAIRS, N_LAYERS, D))
    y = np.repeat([1, 0], N_PAIRS)
    direction = np.cos(np.arange(D))  # the same concept direction for every seed
    X[y == 1, PLANTED] += 8 * direction / np.linalg.norm(direction)
    groups = np.tile(np.arange(N_PAIRS), 2)
    return X, y, groups


def test_probe_finds_the_planted_layer_only():
    X, y, groups = planted()
    result = probe_errors(X, y, groups, k=5)
    assert result.error.shape == (N_LAYERS,) and result.n_test == 2 * N_PAIRS
    assert result.error[PLANTED] < 0.05
    others = np.delete(result.error, PLANTED)
    assert np.all((others > 0.35) & (others < 0.65)), others
    assert np.all(result.ci_low <= result.error) and np.all(result.error <= result.ci_high)


def test_probe_is_at_chance_on_shuffled_labels():
    X, y, _ = planted()
    shuffled = np.random.default_rng(1).permutation(y)
    result = probe_errors(X, shuffled, k=5)
    assert np.all(np.abs(result.error - 0.5) < 0.12), result.error


def test_probe_with_pca_agrees():
    X, y, groups = planted()
    reduced = probe_errors(X, y, groups, k=5, max_dims=8)
    assert reduced.error[PLANTED] < 0.05


def test_wilson_interval_known_values():
    low, high = wilson_interval(0.5, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
    low, high = wilson_interval(0.0, 100)
    assert low == 0 and high == pytest.approx(0.0370, abs=1e-4)
    with pytest.raises(ValueError, match="at least one prediction"):
        wilson_interval(0.1, 0)


def test_group_folds_keep_pairs_together():
    _, y, groups = planted()
    folds = fold_indices(y, groups, 5, seed=0)
    assert len(folds) == 5
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested.tolist()) == list(range(len(y)))  # every prompt predicted once
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])
        assert (y[test] == 1).sum() == (y[test] == 0).sum()


def test_fisher_is_cross_fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 150))  # pure noise: the in-sample ratio would be ≈ d / n ≈ 1.5
    y = np.repeat([1, 0], 100)
    assert fisher_ratio(X, y) < 0.2
    X[y == 1, 0] += 4
    assert fisher_ratio(X, y) > 2


def test_separability_scores_peak_at_planted_layer():
    X, y, groups = planted()
    scores = separability_scores(X, y, groups)
    assert np.argmax(scores.fisher) == PLANTED and scores.fisher[PLANTED] > 3
    assert np.argmax(scores.silhouette) == PLANTED
    assert np.all(np.delete(scores.fisher, PLANTED) < 0.3)


def test_transfer_to_held_out_prompts():
    X, y, _ = planted()
    Xt, yt, _ = planted(seed=5)
    error, auc = transfer_layer(X[:, PLANTED], y, Xt[:, PLANTED], yt)
    assert error < 0.05 and auc > 0.98
    error, auc = transfer_layer(X[:, 0], y, Xt[:, 0], yt)
    assert 0.3 < error < 0.7 and 0.3 < auc < 0.7


def test_make_probe_reduces_only_when_needed():
    assert [name for name, _ in make_probe(800, 384, 128).steps] == [
        "standardscaler",
        "pca",
        "logisticregression",
    ]
    assert make_probe(800, 384, 128).named_steps["pca"].n_components == 128
    assert "pca" not in make_probe(800, 64, 128).named_steps
    assert "pca" not in make_probe(800, 384, None).named_steps
    assert "pca" not in make_probe(10, 384).named_steps  # no silent reduction by default


@pytest.mark.parametrize(
    ("X", "y", "groups", "k", "match"),
    [
        (np.zeros((10, 2, 3)), np.ones(10, int), None, 2, "both classes"),
        (np.zeros((10, 2, 3)), np.repeat([1, 0], [8, 2]), None, 5, "class 0 has 2 examples; 5-fold"),
        (np.zeros((10, 2, 3)), np.repeat([1, 0], 5), np.zeros(10), 2, "class 0 has 1 pairs; 2-fold"),
        (np.zeros((10, 3)), np.repeat([1, 0], 5), None, 2, r"shape \(n_prompts, n_layers, d\)"),
        (np.zeros((10, 2, 3)), np.repeat([1, 0], 4), None, 2, "expected 10 labels"),
        (np.zeros((10, 2, 3)), np.repeat([1, 2], 5), None, 2, "labels must be 0"),
        (np.zeros((10, 2, 3)), np.repeat([1, 0], 5), np.zeros(3), 2, "expected 10 group ids"),
        (np.full((10, 2, 3), np.nan), np.repeat([1, 0], 5), None, 2, "NaN"),
    ],
)
def test_bad_input_is_refused(X, y, groups, k, match):
    with pytest.raises(ValueError, match=match):
        probe_errors(X, y, groups, k=k)
    with pytest.raises(ValueError, match=match):
        separability_scores(X, y, groups) if k == 2 else check_labelled(X, y, groups, k)


def test_shared_token_masks_drop_the_inserted_words():
    # [CLS] a man with a parachute over the sea [SEP] vs [CLS] a man over the sea [SEP]
    pos = [101, 1037, 2158, 2007, 1037, 11693, 2058, 1996, 2712, 102]
    neg = [101, 1037, 2158, 2058, 1996, 2712, 102]
    pm, nm = shared_token_masks(pos, neg)
    assert pm.tolist() == [True, True, True, False, False, False, True, True, True, True]
    assert nm.all() and pm.sum() == nm.sum()
    pm, nm = shared_token_masks([5, 6, 7], [5, 8, 7])  # a replaced word is dropped on both sides
    assert pm.tolist() == nm.tolist() == [True, False, True]


def test_context_masks_keep_the_common_prefix():
    pos = [101, 1037, 2158, 2007, 1037, 11693, 2058, 1996, 2712, 102]
    neg = [101, 1037, 2158, 2058, 1996, 2712, 102]
    pm, nm = context_masks(pos, neg)
    assert pm.tolist() == [True] * 3 + [False] * 7 and nm.tolist() == [True] * 3 + [False] * 4
    pm, nm = context_masks([9, 5, 6], [5, 6])  # no common prefix: fall back to the shared tokens
    assert pm.tolist() == [False, True, True] and nm.all()


def test_auc_interval_hanley_mcneil():
    low, high = auc_interval(0.9, 24, 24)
    # Hanley & McNeil's SE for A = 0.9, 24 + 24 examples, by hand
    q1, q2 = 0.9 / 1.1, 2 * 0.81 / 1.9
    se = np.sqrt((0.9 * 0.1 + 23 * (q1 - 0.81) + 23 * (q2 - 0.81)) / 576)
    assert low == pytest.approx(0.9 - 1.959964 * se, abs=1e-6) and high == pytest.approx(
        0.9 + 1.959964 * se, abs=1e-6
    )
    assert auc_interval(1.0, 10, 10) == (1.0, 1.0)
    wide, narrow = auc_interval(0.8, 10, 10), auc_interval(0.8, 200, 200)
    assert wide[1] - wide[0] > narrow[1] - narrow[0]
    with pytest.raises(ValueError, match="both classes"):
        auc_interval(0.5, 0, 3)
