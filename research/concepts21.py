"""The 21 built-in concepts, searched with one set of options and measured on held-out prompts.

    python -m research.concepts21 search  --out runs/c21/default                 # 21 default erasers
    python -m research.concepts21 search  --out runs/c21/nogate --no-context-gate  # any EraserOptions flag
    python -m research.concepts21 search  --out runs/c21/probe --from runs/c21/default --probe-gate  # same searches
    python -m research.concepts21 measure --erasers runs/c21/default --out runs/c21/default.json
    python -m research.concepts21 together --erasers runs/c21/default --out runs/c21/default-all.json
    python -m research.concepts21 table   --results runs/c21/default.json [--together ...] --md docs/...

Text side (from each eraser.json's ``held_out``, measured by the search on prompts it never used):
positive and implicit leakage before/after, unrelated cosine. Testbed side (``measure``): generative
rate on held-out pack positives, preservation on held-out pack negatives and on testbed captions
naming none of the 21 concepts, and the rate on the held-out half of the implicit prompts; all with
the same latents before and after. ``together`` applies all erasers at once. Every prompt reported on
is held out of the eraser's fit (clear_core/splits.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch

from clear_core.concepts import builtin_packs, load_builtin, load_implicit
from clear_core.config import EraserOptions, SearchConfig
from clear_core.erasure import Eraser
from clear_core.io import atomic_write_text
from clear_core.splits import alternate

HALVED = 0.5
BAR_PRESERVATION = 0.95


def _log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def search_all(
    out: Path, slugs: list[str], options: EraserOptions, search: SearchConfig, reuse: Path | None = None
) -> dict:
    """One default-style search per concept into ``out/<slug>``; returns seconds per concept.
    ``reuse``: a folder of earlier erasers whose searches (SAE, block distribution) are reused, so only
    the eraser is built and calibrated again with ``options`` (variants of the same searches)."""
    from clear_core.encoders import load_encoder
    from clear_core.lookalikes import default_preserve
    from clear_core.workflow import ClearRun, save_run

    encoder = load_encoder("minilm")
    times = {}
    for slug in slugs:
        if (out / slug / "eraser.json").is_file():
            _log(slug, "exists, skipped")
            continue
        t = time.perf_counter()
        opts = options
        if options.gate and options.preserve is None and not default_preserve(slug):
            opts = replace(options, gate=False)  # --gate: the look-alike gate where the pack has look-alikes
        earlier = Eraser.load(reuse / slug).search_result() if reuse is not None else None
        run = ClearRun(encoder, load_builtin(slug), search, opts, search_result=earlier)
        for _ in run.run():
            pass
        save_run(run.result, out / slug)
        times[slug] = time.perf_counter() - t
        e = run.result.eraser
        _log(f"{slug}: {e.layer_name} γ {e.gamma:g} {times[slug]:.0f} s ({run.result.search.stop_reason})")
    return times


def text_row(eraser: Eraser) -> dict:
    held = eraser.meta.get("held_out") or {}
    base, row = held.get("unerased", {}), held.get("erased", {})
    return {
        "block": eraser.layer - 1,
        "gamma": eraser.gamma,
        "layer_probs": eraser.meta.get("layer_probs"),
        "leakage_positive": (base.get("leakage_positive"), row.get("leakage_positive")),
        "leakage_implicit": (base.get("leakage_implicit"), row.get("leakage_implicit")),
        "unrelated_cosine": row.get("preservation_unrelated"),
        "negative_cosine": row.get("preservation_negative"),
        "lookalike_cosine": row.get("preservation_lookalike"),
        "n_held_out_pairs": held.get("n_pairs"),
    }


def testbed_row(eraser: Eraser, slug: str, pipe, det, seeds: int, n: int, concept_free: int) -> dict:
    from clear_core.testbed.rate import generative_rate

    explicit = generative_rate(
        slug, eraser=eraser, seeds=seeds, n_prompts=n, pipe=pipe, detector=det, concept_free=concept_free
    )
    implicit, neutral = load_implicit(slug)
    imp = generative_rate(
        slug,
        prompts=alternate(implicit)[1],
        neutral_prompts=alternate(neutral)[1],
        eraser=eraser,
        seeds=seeds,
        pipe=pipe,
        detector=det,
    )
    before, after = explicit["rate_original"], explicit["rate"]
    return {
        "rate": (before, after),
        "halved": bool(before > 0 and after <= HALVED * before),
        "preservation": explicit["preservation"],
        "preservation_per_attribute": explicit["preservation_per_attribute"],
        "preservation_concept_free": explicit.get("concept_free", {}).get("preservation"),
        "implicit_rate": (imp["rate_original"], imp["rate"]),
        "prompts": explicit["prompts"],
    }


def measure(erasers: Path, slugs: list[str], seeds: int, n: int, concept_free: int) -> dict:
    from clear_core.testbed.detector import load_detector
    from clear_core.testbed.pipeline import load_testbed_pipeline

    torch.set_num_threads(1)
    pipe, det = load_testbed_pipeline(), load_detector()
    rows = {}
    for slug in slugs:
        eraser = Eraser.load(erasers / slug)
        t = time.perf_counter()
        rows[slug] = {
            "text": text_row(eraser),
            "testbed": testbed_row(eraser, slug, pipe, det, seeds, n, concept_free),
        }
        _log(
            slug,
            json.dumps(rows[slug]["testbed"]["rate"]),
            rows[slug]["testbed"]["preservation"],
            f"{time.perf_counter() - t:.0f} s",
        )
    return {
        "concepts": rows,
        "seeds": seeds,
        "n_prompts": n,
        "concept_free": concept_free,
        "bars": bars(rows),
    }


def bars(rows: dict) -> dict:
    """The issue's bars, counted on the rows."""
    tb = {s: r["testbed"] for s, r in rows.items()}
    ok = [s for s, r in tb.items() if r["halved"] and r["preservation"] >= BAR_PRESERVATION]
    ok_free = [
        s for s, r in tb.items() if r["halved"] and (r["preservation_concept_free"] or 0) >= BAR_PRESERVATION
    ]
    text = {s: r["text"] for s, r in rows.items()}
    imp_halved = [
        s
        for s, r in text.items()
        if r["leakage_implicit"][0]
        and r["leakage_implicit"][1] is not None
        and r["leakage_implicit"][1] <= HALVED * r["leakage_implicit"][0]
    ]
    cos_ok = [s for s, r in text.items() if (r["unrelated_cosine"] or 0) >= 0.95]
    return {
        "testbed_halved_and_pack_negatives_0.95": ok,
        "testbed_halved_and_concept_free_0.95": ok_free,
        "text_implicit_halved": imp_halved,
        "text_unrelated_cosine_0.95": cos_ok,
    }


DRAWN = 0.25
"""A concept's held-out paraphrases count as drawn when the testbed draws it for ≥ this share of frames."""


def drawn_halved(rows: dict) -> tuple[list[str], list[str]]:
    """(halved, drawn): the concepts whose held-out paraphrases the testbed draws (≥ :data:`DRAWN` of
    frames before erasure), and those of them whose paraphrase rate erasure at least halves."""
    rates = {s: r["testbed"].get("implicit_rate") for s, r in rows.items()}
    drawn = [s for s, r in rates.items() if r and r[0] is not None and r[0] >= DRAWN]
    return [s for s in drawn if rates[s][1] <= HALVED * rates[s][0]], drawn


def together(
    erasers: Path,
    slugs: list[str],
    seeds: int,
    n: int,
    concept_free: int,
    free_seed: int = 0,
    rates: bool = True,
) -> dict:
    """All erasers applied at once: each concept's rate (held-out positives) and the preservation of
    captions naming none of them (``concept_free`` of them, drawn with ``free_seed``: another seed
    is another list, for a check on captions nobody looked at)."""
    from clear_core.testbed.detector import load_detector
    from clear_core.testbed.pipeline import load_testbed_pipeline
    from clear_core.testbed.rate import concept_free_captions, generative_rate, preservation

    torch.set_num_threads(1)
    pipe, det = load_testbed_pipeline(), load_detector()
    all_erasers = [Eraser.load(erasers / s) for s in slugs]
    rows = {}
    for slug in slugs if rates else []:
        r = generative_rate(slug, eraser=all_erasers, seeds=seeds, n_prompts=n, pipe=pipe, detector=det)
        rows[slug] = {
            "rate": (r["rate_original"], r["rate"]),
            "halved": r["rate"] <= HALVED * r["rate_original"],
        }
        _log(slug, rows[slug])
    free = preservation(pipe, det, concept_free_captions(concept_free, free_seed), all_erasers, seeds=seeds)
    return {
        "concepts": rows,
        "preservation_concept_free": free,
        "free_seed": free_seed,
        "n_halved": sum(r["halved"] for r in rows.values()) if rates else None,
    }


def lookalikes(erasers: Path, slugs: list[str]) -> dict:
    """For the objects with look-alikes in the testbed world: each look-alike's rate before/after the
    concept's eraser (16 testbed captions × 2 seeds per look-alike; they are not the pack-derived
    look-alike prompts the eraser protected)."""
    from clear_core.testbed.world import LOOKALIKE_OF
    from research.testbed_experiments import lookalikes as measure_lookalikes

    torch.set_num_threads(1)
    with_lookalikes = [s for s in slugs if s in set(LOOKALIKE_OF.values())]
    return measure_lookalikes(erasers, with_lookalikes)


def _fmt(pair) -> str:
    a, b = pair
    return "–" if a is None or b is None else f"{a:.2f} → {b:.2f}"


def table(results: dict, together_results: dict | None = None) -> str:
    rows = results["concepts"]
    lines = [
        "| concept | block | γ | text: implicit leakage | text: unrelated cos | testbed: rate | halved "
        "| preservation: pack negatives / concept-free | testbed: implicit rate |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for slug, r in rows.items():
        t, b = r["text"], r["testbed"]
        free = b["preservation_concept_free"]
        lines.append(
            f"| {slug} | {t['block']} | {t['gamma']:g} | {_fmt(t['leakage_implicit'])} | "
            f"{t['unrelated_cosine']:.3f} | {_fmt(b['rate'])} | {'yes' if b['halved'] else 'no'} | "
            f"{b['preservation']:.3f} / {'–' if free is None else f'{free:.3f}'} | {_fmt(b['implicit_rate'])} |"
        )
    bars_ = results["bars"]
    n = len(rows)
    lines.append("")
    lines.append(
        f"Halved with preservation ≥ 0.95 on held-out pack negatives: **{len(bars_['testbed_halved_and_pack_negatives_0.95'])} of {n}**; "
        f"on concept-free captions: **{len(bars_['testbed_halved_and_concept_free_0.95'])} of {n}**; "
        f"text: held-out implicit leakage halved **{len(bars_['text_implicit_halved'])} of {n}**, "
        f"unrelated cosine ≥ 0.95 **{len(bars_['text_unrelated_cosine_0.95'])} of {n}**; "
        "testbed: held-out paraphrases halved **{} of {}** drawn.".format(*map(len, drawn_halved(rows)))
    )
    if together_results:
        tr = together_results
        lines.append("")
        lines.append(
            f"All {n} erasers at once: rate halved for **{tr['n_halved']} of {n}**; preservation of "
            f"concept-free captions **{tr['preservation_concept_free']['preservation']:.3f}**."
        )
    return "\n".join(lines)


def compare(named: dict[str, dict]) -> str:
    """One row per measured configuration: the issue's bars side by side, then per-concept preservation."""
    lines = [
        "| eraser | halved, pack negatives ≥ 0.95 | halved, concept-free ≥ 0.95 | text: implicit halved "
        "| text: unrelated cos ≥ 0.95 | testbed: implicit halved (of drawn) | rate not halved |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, res in named.items():
        rows, b = res["concepts"], res["bars"]
        n = len(rows)
        missed = [s for s, r in rows.items() if not r["testbed"]["halved"]]
        lines.append(
            f"| {name} | {len(b['testbed_halved_and_pack_negatives_0.95'])} of {n} "
            f"| {len(b['testbed_halved_and_concept_free_0.95'])} of {n} | {len(b['text_implicit_halved'])} of {n} "
            f"| {len(b['text_unrelated_cosine_0.95'])} of {n} "
            "| {} of {} ".format(*map(len, drawn_halved(rows)))
            + f"| {', '.join(missed) or '–'} |"
        )
    slugs = sorted(set.intersection(*(set(r["concepts"]) for r in named.values())))
    lines += [
        "",
        "Preservation on held-out pack negatives (share of frames reading the same), rate after erasure:",
        "",
    ]
    lines.append("| concept | " + " | ".join(named) + " |")
    lines.append("| --- |" + " --- |" * len(named))
    for slug in slugs:
        cells = []
        for res in named.values():
            tb = res["concepts"][slug]["testbed"]
            mark = "" if tb["halved"] and tb["preservation"] >= BAR_PRESERVATION else " ✗"
            cells.append(f"{tb['preservation']:.3f} ({tb['rate'][1]:.2f}){mark}")
        lines.append(f"| {slug} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _options_parser(p: argparse.ArgumentParser) -> None:
    from clear_core.options import add_field

    for name in (
        "kind",
        "holdout",
        "context_gate",
        "prompt_gate",
        "probe_gate",
        "gate_ramp",
        "gate_scope",
        "null_space",
        "gate",
        "preserve_min",
        "calibrate_on",
    ):
        add_field(
            p,
            EraserOptions,
            name,
            flag="--eraser-type" if name == "kind" else None,
            type=None
            if name in ("kind",)
            else (float if name in ("holdout", "null_space", "preserve_min", "gate_ramp") else None),
        )
    for name in ("steps", "seed", "verdict_seeds"):
        add_field(p, SearchConfig, name, type=int)
    p.add_argument("--no-early-stop", action="store_true")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m research.concepts21")
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("search")
    s.add_argument("--out", required=True)
    s.add_argument("--from", dest="reuse", help="reuse the searches of the erasers in this folder")
    _options_parser(s)
    k = sub.add_parser("lookalikes")
    k.add_argument("--erasers", required=True)
    k.add_argument("--out", required=True)
    for name in ("measure", "together"):
        m = sub.add_parser(name)
        m.add_argument("--erasers", required=True)
        m.add_argument("--out", required=True)
        m.add_argument("--seeds", type=int, default=2)
        m.add_argument("--n", type=int, default=24)
        m.add_argument("--concept-free", type=int, default=48)
        if name == "together":
            m.add_argument("--free-seed", type=int, default=0, help="seed of the concept-free caption list")
            m.add_argument("--free-only", action="store_true", help="only the concept-free preservation")
    c = sub.add_parser("compare", help="measured configurations side by side: NAME=RESULTS.json ...")
    c.add_argument("results", nargs="+", metavar="NAME=RESULTS")
    t = sub.add_parser("table")
    t.add_argument("--results", required=True)
    t.add_argument("--together")
    for p in sub.choices.values():
        if p not in (t, c):
            p.add_argument("--only", nargs="*")
    args = parser.parse_args(argv)
    slugs = getattr(args, "only", None) or builtin_packs()
    if args.what == "search":
        from clear_core.options import config_from_args

        names = {f.name for f in fields(EraserOptions)}
        options = config_from_args(
            EraserOptions, argparse.Namespace(**{k: v for k, v in vars(args).items() if k in names})
        )
        search = config_from_args(SearchConfig, args, early_stop=not args.no_early_stop)
        out = Path(args.out)
        times = search_all(out, slugs, options, search, Path(args.reuse) if args.reuse else None)
        atomic_write_text(out / "times.json", json.dumps(times, indent=2))
        return 0
    if args.what == "compare":
        named = {}
        for item in args.results:
            name, sep, path = item.partition("=")
            if not sep:
                parser.error(f"compare: {item!r} is not NAME=RESULTS.json")
            named[name] = json.loads(Path(path).read_text())
        print(compare(named))
        return 0
    if args.what == "table":
        res = json.loads(Path(args.results).read_text())
        tog = json.loads(Path(args.together).read_text()) if args.together else None
        print(table(res, tog))
        return 0
    if args.what == "lookalikes":
        res = lookalikes(Path(args.erasers), slugs)
    else:
        if args.what == "measure":
            res = measure(Path(args.erasers), slugs, args.seeds, args.n, args.concept_free)
        else:
            res = together(
                Path(args.erasers),
                slugs,
                args.seeds,
                args.n,
                args.concept_free,
                args.free_seed,
                rates=not args.free_only,
            )
    atomic_write_text(
        Path(args.out),
        json.dumps(res, indent=2, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
