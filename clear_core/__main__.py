"""Command line: ``python -m clear_core <command>``, the headless twin of the app (DESIGN.md).

Errors print one line (``error: ...``) and exit with status 2; there is no traceback for bad input.
Set ``CLEAR_DEBUG=1`` to see the full traceback of an unexpected failure.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str):
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn

    return register


def _progress_bar(desc: str, total: int | None = None):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="it",
        disable=not sys.stderr.isatty() and "CLEAR_PROGRESS" not in os.environ,
    )


def _load_encoder(args: argparse.Namespace):
    from clear_core.encoders import load_encoder

    return load_encoder(args.model, subfolder=getattr(args, "text_encoder", None))


def _load_concept(path: str):
    """A concept file, or a built-in pack by slug (``parachute``)."""
    from clear_core.concepts import ConceptSet, builtin_packs, load_builtin

    if not Path(path).exists() and path in builtin_packs():
        return load_builtin(path)
    return ConceptSet.load(path)


@command("embed")
def cmd_embed(args: argparse.Namespace) -> int:
    import numpy as np

    from clear_core.concepts import load_prompts

    prompts = load_prompts(args.prompts)
    out = Path(args.out)
    if out.suffix != ".npy":
        raise ValueError(f"--out must end in .npy, got {out.name!r}")
    encoder = _load_encoder(args)
    if args.gamma is not None and not args.eraser:
        raise ValueError("--gamma needs --eraser")
    if args.eraser:
        from clear_core.erasure import Eraser, applied_many

        erasers = [Eraser.load(folder, encoder=encoder) for folder in args.eraser]
        with applied_many([(e, args.gamma) for e in erasers], encoder):
            vectors = encoder.encode(prompts, batch_size=args.batch_size)
    else:
        vectors = encoder.encode(prompts, batch_size=args.batch_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, vectors.astype(np.float32))
    print(f"wrote {out} {vectors.shape}", file=sys.stderr)
    return 0


@command("search")
def cmd_search(args: argparse.Namespace) -> int:
    from clear_core.search import SearchConfig
    from clear_core.workflow import ClearRun, EraserOptions, save_run

    concept = _load_concept(args.concept)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise ValueError(f"{out} exists and is not empty; pass --overwrite or choose another --out")
    search = SearchConfig(
        steps=args.steps,
        seed=args.seed,
        d_sae=args.d_sae,
        use_con=not args.no_con,
        batch_pairs=args.batch_pairs,
    )
    options = EraserOptions(
        kind=args.eraser_type,
        mask=args.mask,
        method="brute_force" if args.brute_force else "search",
        layer=args.layer,
        calibrate=args.gamma is None,
        gamma=1.0 if args.gamma is None else args.gamma,
    )
    encoder = _load_encoder(args)
    run = ClearRun(encoder, concept, search, options)
    with _progress_bar("search", total=100) as bar:
        for stage in run.run():
            bar.n = int(100 * stage.fraction)
            bar.set_postfix_str(stage.message, refresh=True)
    result = run.result
    save_run(result, out)
    e = result.eraser
    probs = ", ".join(
        f"{result.search.layer_names[c]}={p:.2f}"
        for c, p in zip(result.search.candidates, result.search.probs)
    )
    print(f"chosen block: {e.layer_name} (layer {e.layer}); layer probabilities: {probs}", file=sys.stderr)
    print(
        f"default gamma: {e.gamma:g}; wrote {out}/eraser.safetensors, eraser.json, history.jsonl",
        file=sys.stderr,
    )
    return 0


@command("evaluate")
def cmd_evaluate(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from clear_core.concepts import builtin_packs, load_implicit, load_prompts, unrelated_prompts
    from clear_core.erasure import Eraser
    from clear_core.evaluation import DEFAULT_GAMMAS, evaluate

    concept = _load_concept(args.concept)
    encoder = _load_encoder(args)
    eraser = Eraser.load(args.eraser, encoder=encoder)
    if args.implicit:
        implicit = load_prompts(args.implicit)
    elif concept.name in builtin_packs():
        implicit = load_implicit(concept.name)[0]
    else:
        implicit = None
    unrelated = load_prompts(args.unrelated) if args.unrelated else unrelated_prompts()
    gammas = sorted(
        {0.0, *DEFAULT_GAMMAS, eraser.gamma} | ({args.gamma} if args.gamma is not None else set())
    )
    report = evaluate(encoder, eraser, concept.positives, concept.negatives, implicit, unrelated, gammas)
    gamma = eraser.gamma if args.gamma is None else args.gamma
    chosen, base = report.row(gamma), report.row(0.0)
    out = {
        "concept": concept.name,
        "model": encoder.model_id,
        "eraser": {
            "kind": eraser.kind,
            "mask": eraser.mask,
            "layer": eraser.layer,
            "layer_name": eraser.layer_name,
            "default_gamma": eraser.gamma,
        },
        "gamma": gamma,
        "leakage": {
            "positive": chosen.leakage_positive,
            "implicit": chosen.leakage_implicit,
            "unerased_positive": base.leakage_positive,
            "unerased_implicit": base.leakage_implicit,
        },
        "preservation": {
            "negative": chosen.preservation_negative,
            "unrelated": chosen.preservation_unrelated,
        },
        "n": {"positive": report.n_positive, "implicit": report.n_implicit, "unrelated": report.n_unrelated},
        "probe_train_accuracy": report.probe_train_accuracy,
        "sweep": [asdict(r) for r in report.rows],
    }
    print(json.dumps(out, indent=2))
    return 0


@command("analyze")
def cmd_analyze(args: argparse.Namespace) -> int:
    from analysis.layer_map import LayerMapConfig, run_layer_map, write_layer_map
    from clear_core.concepts import builtin_packs, load_implicit, load_prompts

    concept = _load_concept(args.concept)
    implicit = neutral = None
    if args.implicit:
        implicit = load_prompts(args.implicit)
        neutral = load_prompts(args.neutral) if args.neutral else None
        if neutral is None:
            raise ValueError("--implicit needs --neutral (matched prompts without the concept)")
    elif concept.name in builtin_packs():
        implicit, neutral = load_implicit(concept.name)
    config = LayerMapConfig(methods=tuple(args.methods.split(",")), seed=args.seed)
    encoder = _load_encoder(args)
    with _progress_bar("analyze", total=100) as bar:

        def progress(message: str, fraction: float) -> None:
            bar.n = int(100 * fraction)
            bar.set_postfix_str(message, refresh=True)

        result = run_layer_map(encoder, concept, implicit, neutral, config, progress=progress)
    if args.eraser:
        import dataclasses

        from clear_core.erasure import Eraser

        result = dataclasses.replace(result, chosen_layer=Eraser.load(args.eraser, encoder=encoder).layer)
    paths = write_layer_map(result, args.out)
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m clear_core",
        description="CLEAR Workbench: find where a concept lives in a text encoder and erase it there.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument(
            "--model", default="minilm", help="'minilm' (default, embedded), a Hugging Face id or a folder"
        )
        p.add_argument(
            "--text-encoder", default=None, help="pipeline subfolder, e.g. text_encoder_2 for Flux's T5"
        )
        return p

    p = add("embed", "Mean-pooled final encoder output of each prompt, float32 (N, d_model), as .npy.")
    p.add_argument("--prompts", required=True, help="text file, one prompt a line")
    p.add_argument("--out", required=True, help="output .npy")
    p.add_argument(
        "--eraser",
        action="append",
        help="eraser folder (from 'search') to apply; repeat for several concepts",
    )
    p.add_argument(
        "--gamma", type=float, help="erasure strength for every eraser (default: each one's calibrated gamma)"
    )
    p.add_argument("--batch-size", type=int, default=32)

    p = add("search", "CLEAR layer search + eraser: writes eraser.safetensors, eraser.json, history.jsonl.")
    p.add_argument("--concept", required=True, help="concept file (.jsonl/.csv) or a built-in pack slug")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--d-sae", type=int, default=2048)
    p.add_argument("--batch-pairs", type=int, default=16)
    p.add_argument("--no-con", action="store_true", help="ablation: step 2 on L_SAE only (no L_con)")
    p.add_argument("--brute-force", action="store_true", help="ablation: one SAE per block, L x the cost")
    p.add_argument(
        "--eraser-type", choices=["sae", "steering"], default="sae", help="steering = dense baseline"
    )
    p.add_argument("--mask", choices=["contrastive", "paper"], default="contrastive")
    p.add_argument(
        "--layer", type=int, help="erase at this layer (1 = first block) instead of the chosen one"
    )
    p.add_argument("--gamma", type=float, help="fix the default gamma instead of calibrating it")
    p.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --out")

    p = add("evaluate", "Leakage and preservation of an eraser, with a gamma sweep, as JSON on stdout.")
    p.add_argument("--eraser", required=True, help="eraser folder")
    p.add_argument("--concept", required=True, help="concept file or built-in pack slug")
    p.add_argument("--gamma", type=float, help="gamma to report (default: the eraser's calibrated gamma)")
    p.add_argument("--implicit", help="implicit prompts file (default: the built-in pack's)")
    p.add_argument("--unrelated", help="unrelated prompts file (default: assets/prompts/unrelated.txt)")

    p = add("analyze", "Per-block separability: probes, transfer error, projections -> analysis.json + HTML.")
    p.add_argument("--concept", required=True, help="concept file or built-in pack slug")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--implicit", help="implicit prompts (default: the built-in pack's)")
    p.add_argument("--neutral", help="matched neutral prompts for --implicit")
    p.add_argument("--methods", default="pca,umap", help="projections, comma-separated: pca,tsne,umap")
    p.add_argument("--eraser", help="eraser folder from 'search': its block is marked on the curve")
    p.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if os.environ.get("CLEAR_DEBUG"):
            raise
        if isinstance(err, (ValueError, FileNotFoundError)):
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(
            f"error: unexpected {type(err).__name__}: {err} (set CLEAR_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
