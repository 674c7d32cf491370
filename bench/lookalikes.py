"""Erase the concept, keep its look-alikes: the γ window of each fine-grained pair.

    python -m bench.lookalikes                                  # golf_ball, french_horn (the bar)
    python -m bench.lookalikes --concepts golf_ball,tench,van_gogh --weights 0.5,1
    python -m bench.lookalikes --all --json runs/lookalikes.json # every pack with a built-in list
    python -m bench.lookalikes --concepts golf_ball --block 2    # erase at block 2 instead
    python -m bench.lookalikes --from-json runs/lookalikes.json  # the table again, re-judged, no encoding

For each concept: the default search without the preserve list and one with it (its look-alike
prompts as extra negatives: the SAE learns them, L_con counts them as shared), then for each look-alike
of its built-in preserve list the γ sweep of the eraser without the preserve list and with it (at each
protect weight w of m_spec ∝ ReLU(f̄_pos − max(f̄_neg, w·f̄_protected))). A γ is in the window when
the held-out implicit leakage is at most half its unerased value, the look-alike's held-out prompts
keep a mean cosine ≥ 0.98 and a probe trained on clean outputs still tells them from the concept
≥ 90% of the time (research/window.py). Leakage is judged twice: by the project's leakage probe
(positives vs negatives: the window's bar) and by a look-alike-aware probe (positives vs negatives and
the look-alike), because the first reads most clean look-alike prompts as the concept (the column
"look-alike read as concept"). Every number is measured in this run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from clear_core.encoders import load_encoder
from clear_core.lookalikes import DEFAULT_LOOKALIKES
from clear_core.search import SearchConfig
from research.window import WINDOW_GAMMAS, WindowCriteria, concept_windows, from_json, judge


def _span(gammas: list[float]) -> str:
    return f"γ {min(gammas):g}–{max(gammas):g}" if gammas else "none"


def _row_text(r) -> str:
    """One table row: the window by each judge, and the numbers at its best γ (or the closest miss)."""
    mask = f"preserve list (w {r.protect_weight:g}{', gate' if r.gate else ''})" if r.protected else "none"
    rows = [x for x in r.rows if x.ok] or [x for x in r.rows if x.ok_vs_lookalike]
    if rows:
        row = min(rows, key=lambda x: (x.leakage_implicit_vs_lookalike, x.leakage_implicit, x.gamma))
    else:  # the closest miss: among γ that halve the leakage, the one keeping the look-alike best
        halving = [x for x in r.rows if x.leakage_implicit <= 0.5 * r.unerased_implicit]
        row = max(halving, key=lambda x: x.preservation_lookalike, default=r.rows[-1])
    detail = (
        f"γ {row.gamma:g}: implicit {r.unerased_implicit:.2f} → {row.leakage_implicit:.2f} "
        f"(aware {r.unerased_implicit_vs_lookalike:.2f} → {row.leakage_implicit_vs_lookalike:.2f}), "
        f"look-alike cosine {row.preservation_lookalike:.3f}, told apart {row.lookalike_told_apart:.2f}, "
        f"unrelated {row.preservation_unrelated:.3f}"
    )
    return (
        f"| {r.concept} | {r.lookalike} | {r.layer_name} | {mask} | {_span(r.window)} | "
        f"{_span(r.window_vs_lookalike)} | {r.lookalike_read_as_concept:.2f} | {detail} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concepts", default="golf_ball,french_horn", help="comma-separated pack slugs")
    parser.add_argument("--all", action="store_true", help="every pack with a built-in preserve list")
    parser.add_argument("--weights", default="1", help="protect weights w, comma-separated")
    parser.add_argument("--gammas", default=",".join(f"{g:g}" for g in WINDOW_GAMMAS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gate", action="store_true", help="erasers with the preserve list also gate tokens")
    parser.add_argument(
        "--block", type=int, help="erase at block B (encoder.layer.B) instead of the search's"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on shared cores)")
    parser.add_argument("--json", type=Path, help="also write every sweep here")
    parser.add_argument("--sweeps", action="store_true", help="print every γ row, not only the table")
    parser.add_argument(
        "--from-json", type=Path, help="re-print the table of an earlier --json dump (no encoding)"
    )
    args = parser.parse_args(argv)
    if args.from_json:
        results = [judge(from_json(d)) for d in json.loads(args.from_json.read_text())]
        _print_table([_row_text(r) for r in results])
        return 0
    torch.set_num_threads(args.threads)
    slugs = (
        list(DEFAULT_LOOKALIKES) if args.all else [s.strip() for s in args.concepts.split(",") if s.strip()]
    )
    weights = [float(w) for w in args.weights.split(",")]
    gammas = [float(g) for g in args.gammas.split(",")]
    encoder = load_encoder("minilm")
    criteria = WindowCriteria()
    lines, dump = [], []
    for slug in slugs:
        t = time.perf_counter()
        results = concept_windows(
            encoder,
            slug,
            search=SearchConfig(seed=args.seed),
            gammas=gammas,
            criteria=criteria,
            seed=args.seed,
            protect_weights=weights,
            layer=None if args.block is None else args.block + 1,
            gate=args.gate,
        )
        print(f"{slug}: block {results[0].layer_name}, {time.perf_counter() - t:.0f} s", file=sys.stderr)
        for r in results:
            lines.append(_row_text(r))
            dump.append(r.to_json())
            if args.sweeps:
                print(
                    f"-- {r.concept} vs {r.lookalike}, protected {r.protected or 'nothing'}, w {r.protect_weight}"
                )
                print("   γ   implicit  (aware)  look-alike cos  told apart  unrelated cos  window (aware)")
                for x in r.rows:
                    print(
                        f"  {x.gamma:4g}   {x.leakage_implicit:.2f}     {x.leakage_implicit_vs_lookalike:.2f}"
                        f"     {x.preservation_lookalike:.3f}          {x.lookalike_told_apart:.2f}"
                        f"        {x.preservation_unrelated:.3f}          {'yes' if x.ok else 'no'}"
                        f" ({'yes' if x.ok_vs_lookalike else 'no'})"
                    )
    _print_table(lines)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dump, indent=2))
    return 0


def _print_table(lines: list[str]) -> None:
    print(
        "\n| concept | look-alike | block | protected | window (leakage probe) | window (look-alike-aware "
        "probe) | look-alike read as concept, unerased | at the best γ (no window: the halving γ keeping "
        "the look-alike best) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
