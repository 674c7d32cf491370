"""CLEAR's SAE eraser vs LEACE vs the steering vector, at the same block and matched preservation.

    python -m bench.erasers                                   # 5 concepts, text and frames
    python -m bench.erasers --concepts parachute,nudity --no-frames

For each concept one default run fits CLEAR's eraser on the fit pairs (and, from the same search, the
eraser with the context gate switched the other way); LEACE (EleutherAI's
``concept-erasure``, fitted on the fit pairs' mean-pooled states) and the steering vector (mean positive −
mean negative) are built at the same block from the same captures. Every method then gets its γ by the
same rule on calibration prompts only — the lowest leakage (text) or rate (frames) whose preservation
stays ≥ the floor — and is reported on prompts held out of everything: held-out pairs, the held-out
halves of the implicit and unrelated prompts (text), held-out pack positives and negatives on the
testbed (frames). The prompt gate (on by default) is off while γ is chosen, as in the search: its
margin was fitted on the calibration prompts. So preservation is matched by construction on the calibration side and measured on
the held-out side; a method that cannot keep the floor at any γ gets its smallest γ and says so.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace

import torch

from clear_core.build import leace_eraser, steering_eraser
from clear_core.concepts import load_builtin
from clear_core.config import DEFAULT_GAMMAS, EraserOptions, SearchConfig
from clear_core.encoders import load_encoder
from clear_core.evaluation import calibrate_gamma, evaluate
from clear_core.splits import alternate
from clear_core.workflow import ClearRun

GAMMAS = tuple(g for g in DEFAULT_GAMMAS if g > 0) + (12.0, 16.0)


def methods(run, encoder) -> dict:
    r = run.result
    layer = r.eraser.layer
    gated = ClearRun(
        encoder,
        run.concept,
        run.search_config,
        replace(run.options, context_gate=not run.options.context_gate, prompt_gate=None),
        search_result=r.search,
    )
    for _ in gated.run():
        pass
    label = "CLEAR, no gate" if run.options.context_gate else "CLEAR + context gate"
    out = {
        "CLEAR (default)": r.eraser,
        **({"CLEAR, no prompt gate": r.eraser.without_prompt_gate()} if r.eraser.prompt_margin else {}),
        label: gated.result.eraser,
        "LEACE": leace_eraser(r.pos, r.neg, layer, r.eraser.concept, encoder.model_id),
        "steering": steering_eraser(r.pos, r.neg, layer, r.eraser.concept, encoder.model_id),
    }
    for eraser in out.values():  # the encoder it fits, and the run's split: the same held-out pairs
        eraser.meta.update(encoder.provenance())
        eraser.meta["splits"] = r.eraser.meta["splits"]
    return out


def text_side(run, encoder, eraser, floor: float) -> dict:
    """γ chosen on the calibration prompts, then leakage and preservation on the held-out ones."""
    split, implicit, unrelated = run.split, run.implicit, run.unrelated
    fit = split.fit.pairs[:: max(1, len(split.fit) // 64)][:64]
    cal = evaluate(  # γ swept without the prompt gate, fitted on these unrelated prompts (as the search does)
        encoder,
        eraser.without_prompt_gate(),
        [p.positive for p in fit],
        [p.negative for p in fit],
        implicit=alternate(implicit)[0] or None,
        unrelated=alternate(unrelated)[0],
        gammas=(0.0, *GAMMAS),
    )
    kept = any(row.preservation_unrelated >= floor for row in cal.rows if row.gamma > 0)
    gamma = calibrate_gamma(cal, floor)
    held = evaluate(
        encoder,
        eraser,
        split.held_out.positives,
        split.held_out.negatives,
        implicit=alternate(implicit)[1] or None,
        unrelated=alternate(unrelated)[1],
        gammas=(0.0, gamma),
    )
    base, row = held.row(0.0), held.row(gamma)
    return {
        "gamma": gamma,
        "floor_kept_on_calibration": kept,
        "leakage_positive": (base.leakage_positive, row.leakage_positive),
        "leakage_implicit": (base.leakage_implicit, row.leakage_implicit),
        "unrelated_cosine": row.preservation_unrelated,
        "negative_cosine": row.preservation_negative,
    }


def frame_side(run, eraser, floor: float, pipe, det) -> dict:
    from clear_core.testbed.calibrate import calibrate_on_frames
    from clear_core.testbed.rate import generative_rate

    fit = run.split.fit.pairs[:: max(1, len(run.split.fit) // 16)][:16]
    cal = calibrate_on_frames(  # without the prompt gate, fitted on fit negatives like these
        eraser.without_prompt_gate(),
        [p.positive for p in fit],
        [p.negative for p in fit],
        GAMMAS,
        implicit=alternate(run.implicit)[0],
        preserve_min=floor,
        seeds=1,
        pipe=pipe,
        detector=det,
    )
    kept = any(r.preservation >= floor for r in cal.rows if r.gamma > 0)
    res = generative_rate(
        eraser.concept,
        eraser=eraser,
        gamma=cal.chosen_gamma,
        seeds=2,
        pipe=pipe,
        detector=det,
    )
    return {
        "gamma": cal.chosen_gamma,
        "floor_kept_on_calibration": kept,
        "rate": (res["rate_original"], res["rate"]),
        "preservation": res["preservation"],
        "prompts": res["prompts"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concepts", default="parachute,van_gogh,barack_obama,nudity,golf_ball")
    parser.add_argument("--floor", type=float, default=0.95, help="preservation floor of the γ choice")
    parser.add_argument("--no-frames", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    encoder = load_encoder()
    pipe = det = None
    if not args.no_frames:
        from clear_core.testbed.detector import load_detector
        from clear_core.testbed.pipeline import load_testbed_pipeline

        pipe, det = load_testbed_pipeline(), load_detector()
    out = {}
    for slug in args.concepts.split(","):
        run = ClearRun(encoder, load_builtin(slug), SearchConfig(), EraserOptions())
        for _ in run.run():
            pass
        print(f"\n{slug}: block {run.result.eraser.layer - 1}, held-out pairs {len(run.split.held_out)}")
        out[slug] = {}
        for name, eraser in methods(run, encoder).items():
            row = {"text": text_side(run, encoder, eraser, args.floor)}
            t = row["text"]
            line = (
                f"  {name:12s} text γ {t['gamma']:>4g}: implicit leakage {t['leakage_implicit'][0]:.2f} -> "
                f"{t['leakage_implicit'][1]:.2f}, positive {t['leakage_positive'][0]:.2f} -> "
                f"{t['leakage_positive'][1]:.2f}, unrelated cos {t['unrelated_cosine']:.3f}"
                + ("" if t["floor_kept_on_calibration"] else " (no γ kept the floor)")
            )
            if pipe is not None:
                row["frames"] = f = frame_side(run, eraser, args.floor, pipe, det)
                line += (
                    f" | frames γ {f['gamma']:>4g}: rate {f['rate'][0]:.2f} -> {f['rate'][1]:.2f}, "
                    f"preservation {f['preservation']:.3f}"
                    + ("" if f["floor_kept_on_calibration"] else " (no γ kept the floor)")
                )
            print(line, flush=True)
            out[slug][name] = row
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                out,
                f,
                indent=2,
                default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o),
            )


if __name__ == "__main__":
    main()
