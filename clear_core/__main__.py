"""Command line: ``python -m clear_core <command>``, the headless twin of the app (DESIGN.md).

Errors print one line (``error: ...``) and exit with status 2; there is no traceback for bad input.
Set ``CLEAR_DEBUG=1`` to see the full traceback of an unexpected failure.

Cheap checks come before expensive work: every path, number and artifact named on the command line is
checked before a model is loaded, and no command overwrites a file it did not create in this run
unless given ``--overwrite``. Outputs are written whole or not at all (clear_core/io.py: flushed and
size-checked before the rename, so a full disk or a file-size limit is an error, never a short file),
and never when they hold NaN or infinity. A run holds a lock on its output until it ends, so a second
run into the same output is refused (clear_core/outputs.py). SIGTERM is handled like Ctrl-C:
temporary files are removed and the exit status is 143. Every size a user can ask for is bounded
before anything is allocated (clear_core/limits.py). Warnings (a huge γ, a tiny concept) are one
``warning:`` line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from clear_core import limits
from clear_core.cli_args import count_arg, finite_arg, gamma_arg, seed_arg
from clear_core.concepts import load_concept
from clear_core.config import (
    CALIBRATE_ON,
    ERASER_KINDS,
    GATE_SCOPES,
    MASKS,
    SAE_KINDS,
    EraserOptions,
    SearchConfig,
)
from clear_core.options import add_field
from clear_core.progress import progress_lines
from clear_core.validation import ClearWarning, check_int

_gamma_arg = gamma_arg  # the name other modules and tests know

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}
PLUGINS = (
    "clear_core.generation.cli",
    "clear_core.testbed.cli",
    "clear_core.video_eval.cli",
    "clear_core.fanout.sweep_cli",
)
"""Modules whose ``add_parser(subparsers)`` adds a command (``generate``, ``testbed``, ``evaluate-videos``, ``sweep``)."""


def command(name: str):
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn

    return register


_progress = progress_lines


def _load_encoder(args: argparse.Namespace):
    from clear_core.encoders import load_encoder

    if not sys.stderr.isatty():  # a log gets our plain progress lines, not transformers' bars
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    return load_encoder(args.model, subfolder=getattr(args, "text_encoder", None))


def _output_folder(path: str, overwrite: bool, args: argparse.Namespace | None = None):
    """``--out`` for a folder output, checked before any work: writable, not a file, and empty
    unless ``--overwrite``; locked for the rest of the run (clear_core/outputs.py)."""
    from clear_core.outputs import claim_folder

    return claim_folder(path, overwrite, getattr(args, "exit_stack", None))


def _load_erasers(folders: list[str] | None):
    """The ``--eraser`` artifacts, read and checked before the model loads; the same one twice is an
    error (it would be applied twice)."""
    from clear_core.io import eraser_paths

    for folder in folders or []:  # cheap path checks first, before torch is imported
        eraser_paths(folder)
    if not folders:
        return []
    from clear_core.erasure import Eraser

    erasers, seen = [], {}
    for folder in folders or []:
        path = Path(folder)
        key = (path.parent if path.is_file() else path).resolve()
        if key in seen:
            raise ValueError(
                f"--eraser {folder} is given twice (as {seen[key]!r}); it would be applied twice"
            )
        seen[key] = folder
        erasers.append(Eraser.load(path))
    return erasers


def _block_arg(text: str) -> int:
    """argparse type for ``--block``: a block number ≥ 0 (block b is ``encoder.layer.b``)."""
    try:
        return check_int(int(text), "value", minimum=0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a block number ≥ 0, got {text!r}") from None


def _check_finite_output(array, what: str) -> None:
    from clear_core.validation import check_finite

    try:
        check_finite(array, what)
    except ValueError as err:
        raise ValueError(f"{err}; nothing was written") from None


@command("embed")
def cmd_embed(args: argparse.Namespace) -> int:
    import numpy as np

    from clear_core.concepts import load_prompts
    from clear_core.io import atomic_path, check_writable

    if args.gamma is not None and not args.eraser:
        raise ValueError("--gamma needs --eraser")
    prompts = load_prompts(args.prompts)
    out = check_writable(args.out, "--out", folder=False)
    if out.suffix != ".npy":
        raise ValueError(f"--out must end in .npy, got {out.name!r}")
    if out.exists() and out.resolve() == Path(args.prompts).resolve():
        raise ValueError(f"--out {out} is the --prompts file; choose another --out")
    from clear_core.outputs import claim_file

    out = claim_file(out, args.overwrite, getattr(args, "exit_stack", None))
    erasers = _load_erasers(args.eraser)
    encoder = _load_encoder(args)
    if erasers:
        from clear_core.erasure import applied_many

        for e in erasers:
            e.check_encoder(encoder)
        with applied_many([(e, args.gamma) for e in erasers], encoder):
            vectors = encoder.encode(prompts, batch_size=args.batch_size)
    else:
        vectors = encoder.encode(prompts, batch_size=args.batch_size)
    vectors = vectors.astype(np.float32)
    _check_finite_output(vectors, "the encoder outputs")
    with atomic_path(out) as tmp:
        np.save(tmp, vectors)
    print(f"wrote {out} {vectors.shape}", file=sys.stderr)
    return 0


@command("search")
def cmd_search(args: argparse.Namespace, encoder=None) -> int:
    """``search``; ``encoder``: the loaded ``--model`` (a ``sweep`` worker loads it once for all its concepts)."""
    from clear_core.config import EraserOptions, SearchConfig
    from clear_core.lookalikes import resolve_preserve
    from clear_core.options import config_from_args
    from clear_core.splits import split_pairs

    concept = _named(load_concept(args.concept), args.name)
    if args.k is not None and args.k > args.d_sae:
        raise ValueError(f"--k {args.k} is more than --d-sae {args.d_sae} features")
    out = _output_folder(args.out, args.overwrite, args)
    implicit = _implicit_arg(args)
    preserve, preserve_prompts = _preserve_args(args)
    search = config_from_args(SearchConfig, args, use_con=not args.no_con)
    options = config_from_args(
        EraserOptions,
        args,
        method="brute_force" if args.brute_force else "search",
        layer=None if args.block is None else args.block + 1,
        calibrate=args.gamma is None,
        gamma=1.0 if args.gamma is None else args.gamma,
        preserve=preserve,
        preserve_prompts=preserve_prompts,
    )
    split = split_pairs(concept, options.holdout)  # cheap: write the look-alike prompts before loading
    resolve_preserve(
        concept,
        preserve,
        preserve_prompts,
        kind=options.kind,
        mask=options.mask,
        gate=options.gate,
        held_out_pairs=split.held_out_indices if len(split.held_out) else None,
    )
    from clear_core.workflow import ClearRun, save_run

    encoder = _load_encoder(args) if encoder is None else encoder
    limits.check_sae_size(args.d_sae, encoder.d_model, min(search.k, search.d_sae), "--d-sae: ")
    if args.block is not None and args.block >= encoder.n_blocks:
        raise ValueError(
            f"--block {args.block} does not exist: {encoder.model_id} has blocks 0..{encoder.n_blocks - 1}"
        )
    run = ClearRun(encoder, concept, search, options, implicit=implicit)
    if run.preserve:
        print(f"keeping look-alikes: {', '.join(run.preserve.names)}", file=sys.stderr)
    with _progress("search") as progress:
        for stage in run.run():
            progress(stage.fraction, f"{stage.name}: {stage.message}")
    result = run.result
    save_run(result, out)
    e = result.eraser
    probs = ", ".join(f"{c - 1}={p:.2f}" for c, p in zip(result.search.candidates, result.search.probs))
    print(f"chosen block {e.layer - 1} ({e.layer_name}); block probabilities: {probs}", file=sys.stderr)
    if result.search.stop_reason:
        print(f"block search ended: {result.search.stop_reason}", file=sys.stderr)
    verdict = e.meta.get("block_verdict")
    if verdict:
        print(f"block verdict over seeds {verdict['seeds']}: {verdict['verdict']}", file=sys.stderr)
    held = e.meta.get("held_out")
    if held:
        row, base = held["erased"], held["unerased"]
        print(
            f"held out ({held['n_pairs']} pairs, {held['n_implicit']} implicit, {held['n_unrelated']} unrelated"
            f" prompts) at gamma {e.gamma:g}: positive leakage {base['leakage_positive']:.2f} -> "
            f"{row['leakage_positive']:.2f}"
            + (
                f", implicit {base['leakage_implicit']:.2f} -> {row['leakage_implicit']:.2f}"
                if row.get("leakage_implicit") is not None
                else ""
            )
            + (
                f", unrelated cosine {row['preservation_unrelated']:.3f}"
                if row.get("preservation_unrelated") is not None
                else ""
            ),
            file=sys.stderr,
        )
    print(
        f"default gamma: {e.gamma:g}; wrote {out}/eraser.safetensors, eraser.json, history.jsonl",
        file=sys.stderr,
    )
    return 0


def _named(concept, name: str | None):
    """``concept`` under ``--name`` when given: the name decides which words of the pairs name the
    concept (look-alike prompts) and the pack it borrows defaults from, so a file can stand for any."""
    import dataclasses

    from clear_core.concepts import is_blank

    if name is None:
        return concept
    if is_blank(name):
        raise ValueError("--name is empty; give the concept's name, e.g. --name parachute")
    return dataclasses.replace(concept, name=name.strip())


def _implicit_arg(args: argparse.Namespace) -> list[str] | None:
    """Paraphrases for the search's γ calibration: ``--implicit FILE``, none with ``--no-implicit``,
    else None (a built-in pack's own when the concept's name is a pack's)."""
    from clear_core.concepts import load_prompts

    if args.implicit and args.no_implicit:
        raise ValueError("--implicit and --no-implicit contradict each other; give one")
    if args.no_implicit:
        return []
    return load_prompts(args.implicit) if args.implicit else None


def _gammas_arg(text: str) -> tuple[float, ...]:
    """argparse type for ``--gammas``: comma-separated γ values ≥ 0, at least one above 0."""
    values = []
    for part in text.split(","):
        if part.strip():
            values.append(_gamma_arg(part.strip()))
    if not any(v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"needs at least one γ > 0, got {text!r}")
    return tuple(sorted(set(values)))


def _preserve_args(args: argparse.Namespace) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """(preserve names or None for the built-in list, whole prompts) from --preserve, --preserve-file
    and --no-preserve, checked before any model loads."""
    from clear_core.concepts import load_prompts
    from clear_core.lookalikes import parse_preserve

    if args.no_preserve and args.preserve is not None:
        raise ValueError("--no-preserve and --preserve contradict each other; give one")
    names = () if args.no_preserve else None
    if args.preserve is not None:
        names = tuple(parse_preserve(args.preserve))
        if not names:
            raise ValueError(
                "--preserve is empty; name look-alikes separated by commas, or use --no-preserve"
            )
    prompts = tuple(load_prompts(args.preserve_file)) if args.preserve_file else ()
    return names, prompts


@command("evaluate")
def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from clear_core.concepts import builtin_packs, load_implicit, load_prompts
    from clear_core.config import DEFAULT_GAMMAS
    from clear_core.measure import evaluation_sample

    concept = load_concept(args.concept)
    eraser = _load_erasers([args.eraser])[0]
    if args.implicit:
        implicit = load_prompts(args.implicit)
    elif concept.name in builtin_packs():
        implicit = load_implicit(concept.name)[0]
    else:
        implicit = None
    unrelated = load_prompts(args.unrelated) if args.unrelated else None
    sample = evaluation_sample(concept, eraser, implicit, unrelated)
    print(f"sample: {sample.describe()}", file=sys.stderr)
    from clear_core.measure import build_baseline, measure  # torch: after the cheap checks

    encoder = _load_encoder(args)
    eraser.check_encoder(encoder)
    gamma = eraser.gamma if args.gamma is None else args.gamma
    gammas = sorted({0.0, *DEFAULT_GAMMAS, eraser.gamma, gamma})
    n = sum(sample.counts().values()) + len(sample.negatives)
    with _progress("evaluate") as progress:
        progress(0.0, f"unerased: encoding {n} prompts, fitting the leakage probe")
        baseline = build_baseline(encoder, sample)

        def swept(done: int, total: int) -> None:
            g = gammas[min(done, total) - 2] if done >= 2 else 0.0
            progress(0.1 + 0.9 * done / total, f"γ sweep: {max(done - 1, 0)}/{total - 1} (γ = {g:g})")

        measurement = measure(encoder, eraser, sample, gammas, baseline=baseline, progress=swept)
    report = measurement.report
    summary = measurement.summary(gamma)
    out = {
        "concept": concept.name,
        "model": encoder.model_id,
        "eraser": {
            "kind": eraser.kind,
            "mask": eraser.mask,
            "block": eraser.layer - 1,
            "layer_name": eraser.layer_name,
            "default_gamma": eraser.gamma,
            **_mask_counts(eraser),
        },
        "gamma": gamma,
        "leakage": summary["leakage"],
        "preservation": summary["preservation"],
        "lookalikes": list(sample.lookalike_names),
        "n": {
            "positive": report.n_positive,
            "implicit": report.n_implicit,
            "unrelated": report.n_unrelated,
            "lookalike": report.n_lookalike,
        },
        "sample": summary["sample"],
        "probe_train_accuracy": report.probe_train_accuracy,
        "sweep": measurement.rows_json(),
    }
    try:
        text = json.dumps(out, indent=2, allow_nan=False)
    except ValueError:
        raise ValueError("the evaluation produced NaN or infinity; nothing was printed") from None
    print(text)
    return 0


def _mask_counts(eraser) -> dict:
    """How many SAE features the eraser's mask marks concept-specific (m_spec above 0.5 and 0.1)."""
    if eraser.kind != "sae" or eraser.m_spec is None:
        return {}
    m = eraser.m_spec
    return {
        "d_sae": int(m.numel()),
        "m_spec_above_0.5": int((m > 0.5).sum()),
        "m_spec_above_0.1": int((m > 0.1).sum()),
    }


@command("analyze")
def cmd_analyze(args: argparse.Namespace) -> int:
    from analysis.layer_map import LayerMapConfig, run_layer_map, write_layer_map
    from clear_core.concepts import builtin_packs, load_implicit, load_prompts

    concept = load_concept(args.concept)
    out = _output_folder(args.out, args.overwrite, args)
    eraser = _load_erasers([args.eraser] if args.eraser else None)
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
    for e in eraser:
        e.check_encoder(encoder)
    with _progress("analyze") as progress:
        result = run_layer_map(
            encoder, concept, implicit, neutral, config, progress=lambda msg, frac: progress(frac, msg)
        )
    if eraser:
        import dataclasses

        result = dataclasses.replace(result, chosen_layer=eraser[0].layer)
    from clear_core.outputs import write_whole

    paths = write_whole(out, lambda folder: write_layer_map(result, folder))
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``error: embed: argument --gamma: ...``), exit status 2."""

    def error(self, message: str):
        self.exit(
            2,
            f"error: {self.prog.removeprefix('python -m clear_core').strip() or 'usage'}: "
            f"{message} (see --help)\n",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
        "--gamma",
        type=_gamma_arg,
        help="erasure strength for every eraser, ≥ 0 (default: each one's calibrated gamma)",
    )
    p.add_argument("--batch-size", type=count_arg(limits.MAX_BATCH), default=32)
    p.add_argument("--overwrite", action="store_true", help="allow replacing an existing --out")

    p = add("search", "CLEAR layer search + eraser: writes eraser.safetensors, eraser.json, history.jsonl.")
    p.add_argument("--concept", required=True, help="concept file (.jsonl/.csv) or a built-in pack slug")
    p.add_argument("--out", required=True, help="output folder")
    add_field(p, SearchConfig, "steps", type=count_arg(limits.MAX_SEARCH_STEPS))
    add_field(p, SearchConfig, "seed", type=seed_arg)
    add_field(p, SearchConfig, "d_sae", type=count_arg(limits.MAX_D_SAE))
    add_field(p, SearchConfig, "batch_pairs", type=count_arg(limits.MAX_BATCH))
    add_field(p, SearchConfig, "sae_kind", "--sae", choices=SAE_KINDS)
    add_field(p, SearchConfig, "k", type=count_arg(limits.MAX_K), unset=True)
    add_field(p, SearchConfig, "lr_alpha", type=finite_arg(above=0.0))
    add_field(p, SearchConfig, "verdict_seeds", type=count_arg(16, minimum=0))
    p.add_argument("--no-con", action="store_true", help="ablation: step 2 on L_SAE only (no L_con)")
    p.add_argument("--brute-force", action="store_true", help="ablation: one SAE per block, L x the cost")
    add_field(p, EraserOptions, "kind", "--eraser-type", choices=ERASER_KINDS)
    add_field(p, EraserOptions, "mask", choices=MASKS)
    p.add_argument(
        "--block",
        type=_block_arg,
        help="erase at this block (block b is encoder.layer.b / encoder.block.b) instead of the chosen one",
    )
    p.add_argument("--gamma", type=_gamma_arg, help="fix the default gamma (≥ 0) instead of calibrating it")
    add_field(p, EraserOptions, "calibrate_on", choices=CALIBRATE_ON)
    add_field(p, EraserOptions, "holdout", type=finite_arg(minimum=0.0))
    p.add_argument(
        "--preserve",
        metavar="NAMES",
        help='look-alikes to keep, comma-separated ("tennis ball,ping-pong ball"); replaces the built-in list',
    )
    p.add_argument("--preserve-file", help="prompts to keep, one a line (added to the preserve list)")
    p.add_argument(
        "--no-preserve", action="store_true", help="switch the built-in preserve list of a pack off"
    )
    add_field(p, EraserOptions, "gate")
    add_field(p, EraserOptions, "context_gate")
    add_field(p, EraserOptions, "prompt_gate")
    add_field(p, EraserOptions, "probe_gate")
    add_field(p, EraserOptions, "gate_ramp", type=float)
    add_field(p, EraserOptions, "gate_scope", choices=GATE_SCOPES)
    add_field(p, EraserOptions, "null_space", type=finite_arg(minimum=0.0))
    p.add_argument("--name", help="the concept's name (default: the file's stem, or the pack's slug)")
    p.add_argument(
        "--implicit",
        help="paraphrases that evoke the concept, one a line: half calibrate gamma, half are held out "
        "(default: a built-in pack's own)",
    )
    p.add_argument("--no-implicit", action="store_true", help="calibrate gamma on the pairs only")
    add_field(p, EraserOptions, "calibration_pairs", type=count_arg(limits.MAX_PAIRS))
    add_field(
        p,
        EraserOptions,
        "gammas",
        type=_gammas_arg,
        help='comma-separated, e.g. "0,0.5,1,2"',
    )
    p.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --out")

    p = add("evaluate", "Leakage and preservation of an eraser, with a gamma sweep, as JSON on stdout.")
    p.add_argument("--eraser", required=True, help="eraser folder")
    p.add_argument("--concept", required=True, help="concept file or built-in pack slug")
    p.add_argument(
        "--gamma", type=_gamma_arg, help="gamma (≥ 0) to report (default: the eraser's calibrated gamma)"
    )
    p.add_argument("--implicit", help="implicit prompts file (default: the built-in pack's)")
    p.add_argument("--unrelated", help="unrelated prompts file (default: assets/prompts/unrelated.txt)")

    p = add("analyze", "Per-block separability: probes, transfer error, projections -> analysis.json + HTML.")
    p.add_argument("--concept", required=True, help="concept file or built-in pack slug")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--implicit", help="implicit prompts (default: the built-in pack's)")
    p.add_argument("--neutral", help="matched neutral prompts for --implicit")
    p.add_argument("--methods", default="pca,umap", help="projections, comma-separated: pca,tsne,umap")
    p.add_argument("--eraser", help="eraser folder from 'search': its block is marked on the curve")
    p.add_argument("--seed", type=seed_arg, default=0)
    p.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --out")

    for module in PLUGINS:  # commands that live next to their engines: add_parser(sub) sets `run`
        try:
            plugin = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
            continue
        plugin.add_parser(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our warnings as one ``warning:`` line; anything else the usual way."""
    if issubclass(category, ClearWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so that every ``finally`` removes its temporaries."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside: SIGTERM raises :class:`Terminated` (in the main thread only; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _plain_log() -> None:
    """When stderr is a log, not a terminal: no Hugging Face progress bars in it (every command,
    whatever loads the model), so an error stays the one line a log shows."""
    if sys.stderr.isatty():
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read when huggingface_hub is imported
    if "transformers" in sys.modules:  # already imported (the CLI called from Python)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _show_warning
    args = build_parser().parse_args(argv)
    _plain_log()
    try:
        with sigterm_as_interrupt(), ExitStack() as stack:
            args.exit_stack = stack  # outputs claimed by the command stay locked until it ends
            return (COMMANDS.get(args.command) or args.run)(args)
    except Terminated:
        print("terminated (SIGTERM); temporary files removed", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if os.environ.get("CLEAR_DEBUG"):
            raise
        if isinstance(err, ValueError):
            print(f"error: {err}", file=sys.stderr)
            return 2
        if isinstance(err, OSError):  # a user path that cannot be read or written: the user's to fix
            where = f": {err.filename}" if err.filename else ""
            print(f"error: {err.strerror or err}{where}", file=sys.stderr)
            return 2
        print(
            f"error: unexpected {type(err).__name__}: {err} (set CLEAR_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
