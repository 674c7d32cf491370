import numpy as np
import pytest

from analysis.projections import project, project_layers, subsample


def two_blobs(n: int = 40, d: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat([1, 0], n)
    X = rng.normal(size=(2 * n, d))
    X[y == 1, :3] += 6
    return X, y


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_projection_is_deterministic_under_a_seed(method):
    X, y = two_blobs()
    first, again = project(X, method, seed=3), project(X, method, seed=3)
    assert first.shape == (len(X), 2)
    np.testing.assert_array_equal(first, again)
    # the two blobs stay apart in 2-D: class centroids further apart than the spread within a class
    gap = np.linalg.norm(first[y == 1].mean(0) - first[y == 0].mean(0))
    assert gap > 2 * first[y == 1].std(0).mean()


def test_umap_small_synthetic():
    X, y = two_blobs(n=30, d=8)
    first, again = project(X, "umap", seed=0), project(X, "umap", seed=0)
    assert first.shape == (60, 2) and np.isfinite(first).all()
    np.testing.assert_array_equal(first, again)
    gap = np.linalg.norm(first[y == 1].mean(0) - first[y == 0].mean(0))
    assert gap > 2 * first[y == 1].std(0).mean()


def test_project_layers_yields_one_panel_per_layer():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3, 5))
    rows = np.arange(0, 30, 2)
    panels = list(project_layers(X, "pca", rows))
    assert [p.layer for p in panels] == [0, 1, 2]
    assert all(p.coords.shape == (15, 2) and p.method == "pca" for p in panels)
    np.testing.assert_array_equal(panels[1].coords, project(X[rows, 1], "pca"))


def test_subsample_says_so_and_keeps_the_mix():
    kinds = ["positive"] * 500 + ["negative"] * 500 + ["implicit"] * 40 + ["neutral"] * 40
    sub = subsample(kinds, max_points=600, seed=0)
    assert len(sub.indices) == 600 and sub.n_total == 1080
    assert sub.note is not None and "600 of 1080" in sub.note
    picked = np.asarray(kinds)[sub.indices]
    counts = {k: int((picked == k).sum()) for k in ("positive", "negative", "implicit", "neutral")}
    assert counts["positive"] == counts["negative"] == pytest.approx(278, abs=1)
    assert counts["implicit"] == counts["neutral"] == pytest.approx(22, abs=1)
    assert len(set(sub.indices.tolist())) == 600 and np.all(np.diff(sub.indices) > 0)
    np.testing.assert_array_equal(sub.indices, subsample(kinds, 600, seed=0).indices)


def test_no_subsample_below_the_cap():
    sub = subsample(["positive", "negative"] * 50, max_points=600)
    assert sub.note is None
    np.testing.assert_array_equal(sub.indices, np.arange(100))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: project(np.zeros((10, 3)), "mds"), "unknown projection method 'mds'"),
        (lambda: project(np.zeros((3, 3)), "pca"), "at least 4 points"),
        (lambda: project(np.zeros((10, 3, 2)), "pca"), r"shape \(n_points, d\)"),
        (lambda: list(project_layers(np.zeros((10, 3)), "pca")), r"shape \(n_prompts, n_layers, d\)"),
        (lambda: subsample(["positive"] * 20, max_points=5), "max_points must be ≥ 10"),
    ],
)
def test_bad_input_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()
