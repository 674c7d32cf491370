"""Layer-map speed on MiniLM, 500 pairs, measured in one run: ``python -m bench.analysis``.

Prints capture time (cold: empty cache; warm: from the cache), the time until the probe curve is
ready, and the time for all UMAP and all t-SNE panels, with ratios against the issue's targets
(probe curve ≤ 20 s, all UMAP panels ≤ 60 s). Uses the pairs of ``assets/concepts/parachute.jsonl``
when it exists, topped up to 500 from the templates below, and the pack's implicit/neutral prompts
(else templates). A throwaway cache directory is used, never yours.

``python -m bench.analysis --curves parachute,nudity,van_gogh`` instead prints, for each built-in pack
(its own pairs, implicit and neutral prompts), the depth curves of the layer map side by side: the
explicit probe error (reads the concept's word), the word-blind context probe error and the transfer
error on implicit vs neutral prompts, each with its 95% interval, and the transfer AUC.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import tempfile
import time

SUBJECTS = [
    "a stunt performer", "a soldier", "an old man", "a young woman", "a dog", "a team of athletes",
    "a photographer", "a child", "a firefighter", "a tourist", "a robot", "a cat",
]  # fmt: skip
PLACES = [
    "over a desert", "above the ocean", "over snowy mountains", "above a city at night", "over a forest",
    "above green farmland", "over a canyon", "above a tropical island", "over a frozen lake", "near a volcano",
]  # fmt: skip
STYLES = [
    "motion blur", "cinematic lighting", "aerial drone footage", "slow motion", "golden hour", "35mm film",
    "handheld camera",
]  # fmt: skip
IMPLICIT = [
    ("a skydiver drifting under an open canopy {p}", "a man standing on a hill {p}"),
    ("a jumper floating down beneath a nylon wing {p}", "a jumper resting on a bench {p}"),
    ("a paratrooper descending slowly with lines above him {p}", "a soldier walking slowly {p}"),
    (
        "a base jumper gliding to the ground under a billowing chute {p}",
        "a climber walking on the ground {p}",
    ),
]


def synth_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` distinct (with parachute, without) pairs from the templates."""
    combos = list(itertools.product(SUBJECTS, PLACES, STYLES))
    random.Random(seed).shuffle(combos)
    if n > len(combos):
        raise ValueError(f"the templates give at most {len(combos)} pairs")
    return [(f"{s} with a parachute {p}, {st}", f"{s} {p}, {st}") for s, p, st in combos[:n]]


def implicit_prompts() -> tuple[list[str], list[str], str]:
    """(paraphrases that evoke a parachute without naming it, their matched neutral scenes, source)."""
    from clear_core.concepts import load_implicit

    try:
        implicit, neutral = load_implicit("parachute")
        return implicit, neutral, "assets/concepts/parachute.implicit*.txt"
    except ValueError:
        pairs = [(i.format(p=p), ne.format(p=p)) for (i, ne), p in itertools.product(IMPLICIT, PLACES)]
        return [i for i, _ in pairs], [ne for _, ne in pairs], "templates"


def load_concept(n: int):
    """``n`` parachute pairs: the built-in pack's first, then template pairs; and where they came from."""
    from clear_core.concepts import CONCEPTS_DIR, ConceptSet

    path = CONCEPTS_DIR / "parachute.jsonl"
    pack = [(p.positive, p.negative) for p in ConceptSet.load(path).pairs] if path.is_file() else []
    seen = set(pack)
    extra = [pair for pair in synth_pairs(len(SUBJECTS) * len(PLACES) * len(STYLES)) if pair not in seen]
    pairs = (pack + extra)[:n]
    n_pack = min(len(pack), n)
    source = f"{n_pack} from {path.name}, {len(pairs) - n_pack} from templates"
    return ConceptSet.from_pairs(pairs, name="parachute"), source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--curves", default="", help="comma-separated built-in packs: print depth curves")
    parser.add_argument(
        "--probability", default="", help="comma-separated built-in packs: concept probability calibration"
    )
    args = parser.parse_args()
    if args.curves:
        curves(args.curves.split(","))
    if args.probability:
        probability(args.probability.split(","))
    if args.curves or args.probability:
        return
    with tempfile.TemporaryDirectory(prefix="clear-bench-") as cache:
        os.environ["CLEAR_CACHE_DIR"] = cache
        run(args.pairs)


def probability(slugs: list[str]) -> None:
    """Concept probability of held-out unrelated prompts: the pair-trained leakage probe vs the concept
    probe calibrated on the other half of the unrelated prompts (evaluation.Baseline.concept_probe)."""
    import numpy as np
    import torch

    from clear_core.concepts import load_builtin, load_implicit, unrelated_prompts
    from clear_core.encoders import load_encoder
    from clear_core.evaluation import Baseline, split_implicit, split_unrelated

    torch.set_num_threads(1)
    encoder = load_encoder("minilm")
    unrelated = unrelated_prompts()
    held = split_unrelated(len(unrelated))[1]
    probes = ("leakage probe (pairs only)", "concept probe (+ unrelated)")
    print(
        "| concept | probe | unrelated held out: mean p | share p > 0.5 | implicit held out: mean p "
        "| positives: mean p | 'a bowl of ramen' p [90% bootstrap] |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for slug in slugs:
        concept = load_builtin(slug)
        implicit = split_implicit(load_implicit(slug)[0])[1]
        base = Baseline.build(encoder, concept.positives, concept.negatives, implicit, unrelated)
        ramen = encoder.encode(["a bowl of ramen"])
        for name, probe in zip(probes, (base.probe, base.concept_probe)):
            p_un = probe.probability(base.original["unrelated"][held])
            p_im = probe.probability(base.original["implicit"])
            p_pos = probe.probability(base.original["positive"])
            p, lo, hi = (
                probe.probability_interval(ramen) if probe.ensemble else (probe.probability(ramen),) * 3
            )
            interval = f" [{lo[0]:.2f}, {hi[0]:.2f}]" if probe.ensemble else ""
            print(
                f"| {slug} | {name} | {p_un.mean():.3f} | {np.mean(p_un > 0.5):.3f} | {p_im.mean():.2f} | "
                f"{p_pos.mean():.2f} | {p[0]:.2f}{interval} |",
                flush=True,
            )


def curves(slugs: list[str]) -> None:
    """Explicit, word-blind and transfer error per layer for built-in packs (uses your activation cache)."""
    import torch

    from analysis.layer_map import LayerMapConfig, run_layer_map
    from clear_core.concepts import load_builtin, load_implicit
    from clear_core.encoders import load_encoder

    torch.set_num_threads(1)
    encoder = load_encoder("minilm")
    for slug in slugs:
        concept = load_builtin(slug)
        implicit, neutral = load_implicit(slug)
        r = run_layer_map(encoder, concept, implicit, neutral, LayerMapConfig(methods=("pca",)))
        print(
            f"\n{slug}: {r.n_pairs} pairs (n = {r.probe.n_test}), {r.n_implicit} implicit + neutral "
            f"(n = {r.transfer.n_test}); 5-fold grouped by pair; [95% Wilson interval]"
        )
        print(
            "| layer | explicit probe error | word-blind probe error | transfer error (implicit) | transfer AUC |"
        )
        print("| --- | --- | --- | --- | --- |")
        for i, name in enumerate(r.layer_names):
            c = r.context
            ctx = "n/a" if c is None else f"{c.error[i]:.3f} [{c.ci_low[i]:.2f}, {c.ci_high[i]:.2f}]"
            print(
                f"| {name} | {r.probe.error[i]:.3f} [{r.probe.ci_low[i]:.2f}, {r.probe.ci_high[i]:.2f}] | {ctx} | "
                f"{r.transfer.error[i]:.3f} [{r.transfer.ci_low[i]:.2f}, {r.transfer.ci_high[i]:.2f}] | "
                f"{r.transfer.auc[i]:.3f} |",
                flush=True,
            )


def run(n_pairs: int) -> None:
    """Measure and print everything, in the cache directory set by :func:`main`."""
    from analysis.layer_map import LayerMapConfig, iter_layer_map
    from clear_core.encoders import CaptureConfig, load_encoder

    encoder = load_encoder("minilm")
    concept, source = load_concept(n_pairs)
    implicit, neutral, implicit_source = implicit_prompts()
    prompts = concept.positives + concept.negatives
    print(
        f"MiniLM, {len(concept)} pairs ({source}), {len(implicit)} implicit + {len(neutral)} neutral prompts ({implicit_source})"
    )
    print(f"torch threads {__import__('torch').get_num_threads()}, CPUs {os.cpu_count()}")

    t = time.perf_counter()
    for kind in (concept.positives, concept.negatives, implicit, neutral):
        encoder.capture(kind)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    for kind in (concept.positives, concept.negatives, implicit, neutral):
        encoder.capture(kind)
    warm = time.perf_counter() - t
    n_tokens = sum(len(x) for x in encoder.tokenizer(prompts)["input_ids"])
    print(
        f"capture cold        {cold:7.2f} s   ({len(prompts) + 2 * len(implicit)} prompts, {n_tokens} pair tokens)"
    )
    print(f"capture warm        {warm:7.2f} s   (from the cache)")

    config = LayerMapConfig(methods=("pca", "umap", "tsne"), capture=CaptureConfig())
    start = time.perf_counter()
    marks: dict[str, float] = {}
    for snap in iter_layer_map(encoder, concept, implicit, neutral, config):
        marks.setdefault(snap.stage, time.perf_counter() - start)
        marks[snap.stage + ":end"] = time.perf_counter() - start
    result = snap
    probe_ready = marks["probe:end"]
    umap_s, tsne_s = result.timings["umap"], result.timings["tsne"]
    print(f"first view (scores + PCA) {marks['scores']:7.2f} s after start (warm cache)")
    print(f"probe curve ready   {probe_ready:7.2f} s   target 20 s -> ratio {probe_ready / 20:.2f}")
    print(f"transfer ready      {marks.get('transfer:end', float('nan')):7.2f} s")
    print(
        f"all UMAP panels     {umap_s:7.2f} s   target 60 s -> ratio {umap_s / 60:.2f}  (first includes numba JIT)"
    )
    print(f"all t-SNE panels    {tsne_s:7.2f} s")
    print(f"whole run           {marks['done']:7.2f} s   stage timings {result.timings}")
    cold_probe = cold + probe_ready
    print(
        f"probe curve from a cold cache (capture + probes) {cold_probe:.2f} s -> ratio {cold_probe / 20:.2f}"
    )
    print("layer   probe error [95% CI]     transfer  AUC    Fisher  silhouette")
    tr = result.transfer
    for i, name in enumerate(result.layer_names):
        print(
            f"{name:16s} {result.probe.error[i]:.3f} [{result.probe.ci_low[i]:.3f}, {result.probe.ci_high[i]:.3f}]"
            f"   {tr.error[i]:.3f}   {tr.auc[i]:.3f}  {result.separability.fisher[i]:7.2f}  "
            f"{result.separability.silhouette[i]:.3f}"
        )
    print(f"points note: {result.points.note}")
    compare_probe_dims(encoder, concept, implicit, neutral, result)


def compare_probe_dims(encoder, concept, implicit, neutral, result) -> None:
    """Every dimension (the default) vs a PCA to 128 dims first: time and the largest change in error."""
    import numpy as np

    from analysis.probes import fold_indices, probe_layer, transfer_layer

    pooled = [
        encoder.capture(p).pooled("mean") for p in (concept.positives, concept.negatives, implicit, neutral)
    ]
    X, X_eval = np.concatenate(pooled[:2]), np.concatenate(pooled[2:])
    n, m = len(concept), len(implicit)
    y, groups, y_eval = np.repeat([1, 0], n), np.tile(np.arange(n), 2), np.repeat([1, 0], m)
    folds = fold_indices(y, groups, 5, 0)
    t = time.perf_counter()
    probe = np.array([probe_layer(X[:, i], y, folds, 128) for i in range(X.shape[1])])
    transfer = np.array([transfer_layer(X[:, i], y, X_eval[:, i], y_eval, 128)[0] for i in range(X.shape[1])])
    reduced = time.perf_counter() - t
    full = result.timings["probe"] + result.timings["transfer"]
    print(
        f"probe + transfer, all {X.shape[2]} dims (default): {full:.2f} s; PCA to 128 first: {reduced:.2f} s; "
        f"max |Δ probe error| {np.abs(probe - result.probe.error).max():.3f}, "
        f"max |Δ transfer error| {np.abs(transfer - result.transfer.error).max():.3f} "
        f"(transfer CI half-width ≈ {np.mean(result.transfer.ci_high - result.transfer.ci_low) / 2:.3f})"
    )


if __name__ == "__main__":
    main()
