"""CLEAR search on the default model: time, SAE step efficiency, and erasure quality, in one run.

    python bench/search.py                       # parachute: timing + targets
    python bench/search.py --all                 # every built-in concept: chosen block + γ table
    python bench/search.py --ablation parachute,van_gogh,barack_obama   # with vs without L_con
    python bench/search.py --all --json runs/bench_search.json

Targets (issue 3): the default search (capture + search + γ calibration) of a built-in concept takes
≤ 60 s on this 2-core machine; on parachute at the default γ, implicit-prompt leakage is at most half
the unerased leakage while unrelated prompts keep a mean cosine ≥ 0.95. The SAE training step's
achieved GFLOP/s is reported as a fraction of a plain matmul of the same shapes, measured here.
Every number is measured in this run; nothing is copied from elsewhere.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clear_core.concepts import builtin_packs, load_builtin, load_implicit, unrelated_prompts  # noqa: E402
from clear_core.encoders import CaptureConfig, load_encoder  # noqa: E402
from clear_core.evaluation import DEFAULT_GAMMAS, evaluate  # noqa: E402
from clear_core.search import LayerSearch, SearchConfig  # noqa: E402
from clear_core.workflow import ClearRun, EraserOptions  # noqa: E402


def sae_step_efficiency(run: ClearRun, pos, neg, repeats: int = 20) -> dict:
    """Achieved GFLOP/s of one search step (steps 1 + 2) vs a plain matmul of the same shapes."""
    search = LayerSearch(pos, neg, SearchConfig(steps=repeats + 5, seed=1))
    gen = search.run()
    first = next(gen)  # the first event_every steps are the warm-up
    t = time.perf_counter()
    last = first
    for event in gen:
        last = event
    elapsed = time.perf_counter() - t
    n_steps = last.step - first.step
    d, k = pos.d_model, search.config.d_sae
    tokens = (pos.n_tokens + neg.n_tokens) / pos.n_prompts * search.config.batch_pairs
    # step 1: forward (enc + dec: 4·T·d·k) + backward (2x forward); step 2: forward + input gradients only
    flops_per_step = 12 * tokens * d * k + 8 * tokens * d * k
    achieved = flops_per_step * n_steps / elapsed / 1e9
    a, b = torch.randn(int(tokens), d), torch.randn(d, k)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    reps = 200
    for _ in range(reps):
        a @ b
    matmul = 2 * tokens * d * k * reps / (time.perf_counter() - t) / 1e9
    return {
        "tokens_per_step": tokens,
        "step_ms": 1000 * elapsed / n_steps,
        "gflops": achieved,
        "matmul_gflops": matmul,
        "fraction": achieved / matmul,
    }


def one_concept(encoder, slug: str, use_con: bool = True, timing: bool = False) -> dict:
    concept = load_builtin(slug)
    implicit, _ = load_implicit(slug)
    unrelated = unrelated_prompts()
    with tempfile.TemporaryDirectory() as tmp:  # cold cache: the capture is part of the timing
        run = ClearRun(
            encoder,
            concept,
            SearchConfig(use_con=use_con),
            EraserOptions(),
            CaptureConfig(cache_dir=Path(tmp)),
            unrelated,
        )
        t = time.perf_counter()
        marks = {}
        for stage in run.run():
            marks.setdefault(stage.name, time.perf_counter() - t)
        total = time.perf_counter() - t
    result = run.result
    eraser = result.eraser
    gammas = sorted({*DEFAULT_GAMMAS, eraser.gamma})
    report = evaluate(encoder, eraser, concept.positives, concept.negatives, implicit, unrelated, gammas)
    out = {
        "concept": slug,
        "use_con": use_con,
        "layer": eraser.layer,
        "layer_name": eraser.layer_name,
        "probs": [round(p, 3) for p in result.search.probs],
        "default_gamma": eraser.gamma,
        "seconds": {
            "total": total,
            "capture": marks.get("search", 0.0),
            "search": marks.get("calibrate", total) - marks.get("search", 0.0),
            "calibrate": total - marks.get("calibrate", total),
        },
        "at_default": asdict(report.row(eraser.gamma)),
        "unerased": asdict(report.row(0.0)),
        "sweep": [asdict(r) for r in report.rows],
    }
    if timing:
        out["sae_step"] = sae_step_efficiency(run, result.pos, result.neg)
    return out


def print_concept(r: dict, table: bool = True) -> None:
    s, d, u = r["seconds"], r["at_default"], r["unerased"]
    print(
        f"\n{r['concept']} ({'L_con' if r['use_con'] else 'no L_con'}): block {r['layer_name']} (layer {r['layer']}), "
        f"probs {r['probs']}, default γ {r['default_gamma']:g}; {s['total']:.1f} s "
        f"(capture {s['capture']:.1f}, search {s['search']:.1f}, calibrate {s['calibrate']:.1f})"
    )
    print(
        f"  at default γ: implicit leakage {u['leakage_implicit']:.2f} -> {d['leakage_implicit']:.2f}, "
        f"positive {u['leakage_positive']:.2f} -> {d['leakage_positive']:.2f}, "
        f"preservation unrelated {d['preservation_unrelated']:.3f}, negative {d['preservation_negative']:.3f}"
    )
    if table:
        print("     γ   leak_pos  leak_impl  pres_neg  pres_unrel  min_unrel")
        for row in r["sweep"]:
            print(
                f"  {row['gamma']:5.2f}   {row['leakage_positive']:6.2f}   {row['leakage_implicit']:7.2f}   "
                f"{row['preservation_negative']:7.3f}   {row['preservation_unrelated']:8.3f}   "
                f"{row['min_preservation_unrelated']:7.3f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="every built-in concept")
    parser.add_argument("--concepts", default="parachute", help="comma-separated slugs (ignored with --all)")
    parser.add_argument("--ablation", default="", help="comma-separated slugs to run with and without L_con")
    parser.add_argument("--json", help="also write every result to this JSON file")
    args = parser.parse_args()

    encoder = load_encoder()
    print(f"torch threads: {torch.get_num_threads()}; defaults: {SearchConfig()}")
    slugs = builtin_packs() if args.all else args.concepts.split(",")
    results = []
    for i, slug in enumerate(slugs):
        r = one_concept(encoder, slug, timing=i == 0)
        results.append(r)
        print_concept(r)
        if "sae_step" in r:
            e = r["sae_step"]
            print(
                f"  SAE search step: {e['step_ms']:.0f} ms for ~{e['tokens_per_step']:.0f} tokens -> "
                f"{e['gflops']:.1f} GFLOP/s = {e['fraction']:.2f} of a plain matmul ({e['matmul_gflops']:.1f} GFLOP/s)"
            )
        if slug == "parachute":
            d, u = r["at_default"], r["unerased"]
            half = d["leakage_implicit"] <= u["leakage_implicit"] / 2
            print(
                f"  TARGETS parachute: time {r['seconds']['total']:.1f} s <= 60 s: {r['seconds']['total'] <= 60}; "
                f"implicit leakage {d['leakage_implicit']:.2f} <= half of {u['leakage_implicit']:.2f}: {half}; "
                f"unrelated preservation {d['preservation_unrelated']:.3f} >= 0.95: {d['preservation_unrelated'] >= 0.95}"
            )
    for slug in filter(None, args.ablation.split(",")):
        with_con = next((r for r in results if r["concept"] == slug), None) or one_concept(encoder, slug)
        without = one_concept(encoder, slug, use_con=False)
        results += [with_con, without] if with_con not in results else [without]
        print_concept(without, table=False)
        print(
            f"  ABLATION {slug}: block with L_con {with_con['layer_name']} vs without {without['layer_name']}; "
            f"implicit leakage at default γ {with_con['at_default']['leakage_implicit']:.2f} vs "
            f"{without['at_default']['leakage_implicit']:.2f}; unrelated preservation "
            f"{with_con['at_default']['preservation_unrelated']:.3f} vs {without['at_default']['preservation_unrelated']:.3f}"
        )
    times = [r["seconds"]["total"] for r in results if r["use_con"]]
    print(
        f"\nsearch time over {len(times)} concept(s): max {max(times):.1f} s, mean {sum(times) / len(times):.1f} s "
        f"(target <= 60 s)"
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
