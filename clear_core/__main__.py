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

    return tqdm(total=total, desc=desc, unit="it", disable=not sys.stderr.isatty() and "CLEAR_PROGRESS" not in os.environ)


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
    eraser = None
    if args.eraser:
        from clear_core.erasure import Eraser

        eraser = Eraser.load(args.eraser, encoder=encoder)
    elif args.gamma is not None:
        raise ValueError("--gamma needs --eraser")
    if eraser is None:
        vectors = encoder.encode(prompts, batch_size=args.batch_size)
    else:
        with eraser.applied(encoder, gamma=args.gamma):
            vectors = encoder.encode(prompts, batch_size=args.batch_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, vectors.astype(np.float32))
    print(f"wrote {out} {vectors.shape}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m clear_core",
        description="CLEAR Workbench: find where a concept lives in a text encoder and erase it there.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--model", default="minilm", help="'minilm' (default, embedded), a Hugging Face id or a folder")
        p.add_argument("--text-encoder", default=None, help="pipeline subfolder, e.g. text_encoder_2 for Flux's T5")
        return p

    p = add("embed", "Mean-pooled final encoder output of each prompt, float32 (N, d_model), as .npy.")
    p.add_argument("--prompts", required=True, help="text file, one prompt a line")
    p.add_argument("--out", required=True, help="output .npy")
    p.add_argument("--eraser", help="eraser folder (from 'search') to apply while encoding")
    p.add_argument("--gamma", type=float, help="erasure strength (default: the eraser's calibrated gamma)")
    p.add_argument("--batch-size", type=int, default=32)
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
        print(f"error: unexpected {type(err).__name__}: {err} (set CLEAR_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
