"""Why one eraser read 46% paraphrase leakage in the app and 21% from ``evaluate``: the sample.

    python -m bench.evaluation_sample --eraser runs/parachute            # at the eraser's γ and γ 1
    python -m bench.evaluation_sample --eraser runs/parachute --gamma 2

Measures one eraser on its pack four ways, crossing the pairs the leakage probe is trained on (an
evenly spaced 32, as the app's Erase tab once did, or all of them) with the paraphrases measured (all,
or the held-out half the calibration never saw), then on the shared sample of clear_core/measure.py
(what the search held out), and prints the leakage each reports. See docs/measurement.md.
"""

from __future__ import annotations

import argparse

from clear_core.concepts import load_builtin, load_implicit, unrelated_prompts
from clear_core.encoders import load_encoder
from clear_core.erasure import Eraser
from clear_core.evaluation import Baseline, evaluate, split_implicit
from clear_core.measure import evaluation_sample, measure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eraser", required=True, help="eraser folder of a built-in pack")
    parser.add_argument("--gamma", type=float, action="append", help="γ (default: the eraser's and 1)")
    args = parser.parse_args(argv)
    eraser = Eraser.load(args.eraser)
    encoder = load_encoder("minilm")
    concept = load_builtin(eraser.concept)
    implicit = load_implicit(eraser.concept)[0]
    subset = concept.pairs[:: len(concept) // 32][:32]
    few = ([p.positive for p in subset], [p.negative for p in subset])
    every = (concept.positives, concept.negatives)
    held = split_implicit(implicit)[1]
    cases = {
        f"probe on 32 pairs, all {len(implicit)} paraphrases (the app before)": (*few, implicit),
        f"probe on all {len(concept)} pairs, all {len(implicit)} paraphrases (evaluate before)": (
            *every,
            implicit,
        ),
        f"probe on 32 pairs, {len(held)} held-out paraphrases": (*few, held),
        f"probe on all {len(concept)} pairs, {len(held)} held-out paraphrases": (*every, held),
    }
    gammas = sorted(set(args.gamma or [eraser.gamma, 1.0]))
    print(f"{eraser.concept}, eraser at {eraser.layer_name}, default γ {eraser.gamma:g}")
    for name, (positives, negatives, paraphrases) in cases.items():
        baseline = Baseline.build(
            encoder, positives, negatives, paraphrases, unrelated_prompts(), concept_probe=False
        )
        report = evaluate(encoder, eraser, gammas=[0.0, *gammas], baseline=baseline)
        base = report.rows[0]
        cells = "; ".join(
            f"γ {r.gamma:g}: paraphrases {base.leakage_implicit:.2f} -> {r.leakage_implicit:.2f}, "
            f"positives {base.leakage_positive:.2f} -> {r.leakage_positive:.2f}"
            for r in report.rows[1:]
        )
        print(f"{name}: {cells}")
    sample = evaluation_sample(concept, eraser, implicit)
    report = measure(encoder, eraser, sample, gammas).report
    base = report.rows[0]
    cells = "; ".join(
        f"γ {r.gamma:g}: paraphrases {base.leakage_implicit:.2f} -> {r.leakage_implicit:.2f}, "
        f"positives {base.leakage_positive:.2f} -> {r.leakage_positive:.2f}, unrelated {r.preservation_unrelated:.3f}"
        for r in report.rows[1:]
    )
    print(f"the shared sample (app and evaluate now: {sample.describe()}): {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
