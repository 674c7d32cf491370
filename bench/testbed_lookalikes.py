"""Erase the concept, keep its look-alike — measured on generated clips of the CPU testbed.

    python -m clear_core search --concept golf_ball --out /tmp/look/golf_ball                 # preserve list on
    python -m clear_core search --concept golf_ball --out /tmp/look/golf_ball-off --no-preserve
    python -m clear_core search --concept golf_ball --out /tmp/look/golf_ball-gate --gate        # optional
    python -m bench.testbed_lookalikes --erasers /tmp/look --concepts golf_ball,french_horn --json out.json

For each concept, the eraser without and with its preserve list (and with the look-alike gate, when
``<slug>-gate`` exists) is swept over γ on the testbed
(clear_core/testbed), same latents before and after. Per γ:

* **concept rate**: share of frames where the detector finds the concept, on the pack's positives and
  on its held-out implicit prompts (odd positions, ``split_implicit``);
* **look-alike kept**: the look-alike's rate after erasure over its rate before, on the look-alike's
  *held-out* prompts (clear_core/lookalikes.py: the concept's scenes with the look-alike swapped in,
  never seen by the eraser), and how often those frames show the erased concept instead.

A γ is in the testbed window when the concept's rate at least halves (on the positives, and separately
on the implicit prompts) while the look-alike keeps ≥ 90% of its rate. Every number is measured here.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from clear_core.concepts import load_builtin, load_implicit
from clear_core.erasure import Eraser
from clear_core.evaluation import split_implicit
from clear_core.lookalikes import default_preserve, preserve_set
from clear_core.testbed.detector import load_detector
from clear_core.testbed.pipeline import load_testbed_pipeline
from clear_core.testbed.rate import _flat, generate_frames, pack_prompts

GAMMAS = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0)
KEEP_MIN = 0.9


def _slug(name: str) -> str:
    return name.lower().replace(" ", "_").replace("-", "_")


def _objects(pipe, det, prompts, latents, eraser=None, gamma=None) -> np.ndarray:
    """Detected object per frame, (len(prompts)·seeds·frames,)."""
    return det.predict(_flat(generate_frames(pipe, prompts, latents, eraser, gamma)))["object"]


def sweep(pipe, det, slug: str, eraser: Eraser, gammas, n: int, seeds: int) -> dict:
    concept = load_builtin(slug)
    positives = pack_prompts(slug, n)[0]
    implicit = split_implicit(load_implicit(slug)[0])[1]
    names = default_preserve(slug)
    held = preserve_set(concept, names, seed=0).held_out
    sets = {"positives": positives, "implicit": implicit, **{f"look:{k}": held[k][:n] for k in names}}
    gen = torch.Generator().manual_seed(0)
    lats = {k: torch.randn((len(v) * seeds, 9, 16), generator=gen) for k, v in sets.items()}
    before = {k: _objects(pipe, det, v, lats[k]) for k, v in sets.items()}
    rows = []
    for g in gammas:
        after = {k: _objects(pipe, det, v, lats[k], eraser, g) for k, v in sets.items()}
        row = {
            "gamma": g,
            "rate_positives": float(np.mean(after["positives"] == slug)),
            "rate_implicit": float(np.mean(after["implicit"] == slug)),
        }
        for name in names:
            k, obj = f"look:{name}", _slug(name)
            base = float(np.mean(before[k] == obj))
            row[f"{name}: kept"] = float(np.mean(after[k] == obj)) / base if base > 0 else None
            row[f"{name}: read as concept"] = float(np.mean(after[k] == slug))
        rows.append(row)
    base = {
        "rate_positives": float(np.mean(before["positives"] == slug)),
        "rate_implicit": float(np.mean(before["implicit"] == slug)),
        **{f"{name}: rate": float(np.mean(before[f"look:{name}"] == _slug(name))) for name in names},
    }
    window = {}
    for target in ("positives", "implicit"):
        for name in names:
            ok = [
                r["gamma"]
                for r in rows
                if r[f"rate_{target}"] <= base[f"rate_{target}"] / 2
                and base[f"rate_{target}"] > 0
                and (r[f"{name}: kept"] or 0) >= KEEP_MIN
            ]
            window[f"{target} vs {name}"] = ok
    return {
        "concept": slug,
        "block": eraser.layer_name,
        "calibrated_gamma": eraser.gamma,
        "preserve": (eraser.meta.get("preserve") or {}).get("lookalikes", []),
        "n_prompts": {k: len(v) for k, v in sets.items()},
        "seeds": seeds,
        "unerased": base,
        "rows": rows,
        "window": window,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--erasers", type=Path, required=True, help="folder with <slug> and <slug>-off erasers"
    )
    parser.add_argument("--concepts", default="golf_ball,french_horn")
    parser.add_argument("--gammas", default=",".join(f"{g:g}" for g in GAMMAS))
    parser.add_argument("--n", type=int, default=16, help="prompts per set")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    pipe, det = load_testbed_pipeline(), load_detector()
    gammas = [float(g) for g in args.gammas.split(",")]
    out = []
    for slug in [s.strip() for s in args.concepts.split(",") if s.strip()]:
        for suffix, label in (("-off", "off"), ("", "on"), ("-gate", "on, gate")):
            if not (args.erasers / f"{slug}{suffix}").is_dir():
                continue
            t0 = time.time()
            res = sweep(
                pipe, det, slug, Eraser.load(args.erasers / f"{slug}{suffix}"), gammas, args.n, args.seeds
            )
            res["preserve_list"] = label
            res["seconds"] = round(time.time() - t0, 1)
            out.append(res)
            print(
                f"== {slug}, preserve list {res['preserve_list']}, {res['block']}, unerased {res['unerased']}"
            )
            for r in res["rows"]:
                print("  ", json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}))
            print("   window:", res["window"], flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
