"""``python -m clear_core testbed rate --concept SLUG [--prompts FILE] [--eraser DIR --gamma G] [--seeds N]``.

Prints JSON: the testbed's generative rate of the concept (share of generated frames in which the
detector finds it), and with an eraser the rate after erasure and the preservation (see rate.py).
The command line's plugin loader calls :func:`add_parser`; :func:`run` is what it runs.
"""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``testbed`` command (sub-command ``rate``) to the CLI's subparsers."""
    help_text = "CPU testbed text-to-video model: generative rate of a concept, before/after an eraser"
    p = subparsers.add_parser("testbed", help=help_text, description=help_text)
    sub = p.add_subparsers(dest="testbed_command", required=True, metavar="SUBCOMMAND")
    r = sub.add_parser("rate", help="generative rate (and preservation with --eraser) as JSON")
    r.add_argument("--concept", required=True, help="built-in pack slug (parachute, van_gogh, nudity, ...)")
    r.add_argument("--prompts", help="prompt file (one a line); default: the pack's positive prompts")
    r.add_argument(
        "--neutral-prompts",
        help="prompts without the concept for preservation; default: the pack's negatives",
    )
    r.add_argument("--eraser", help="eraser folder from 'search'")
    r.add_argument("--gamma", type=float, help="erasure strength (default: the eraser's calibrated one)")
    r.add_argument("--seeds", type=int, default=4, help="latents per prompt")
    r.add_argument("--n-prompts", type=int, default=24, help="pack prompts used when --prompts is not given")
    r.add_argument("--steps", type=int, default=10, help="sampling steps")
    r.add_argument("--guidance", type=float, default=4.0, help="classifier-free guidance scale")
    r.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``testbed rate``; print the JSON report; 0 on success (ValueError for bad input)."""
    import torch

    from clear_core.concepts import load_prompts
    from clear_core.testbed.detector import concept_attribute
    from clear_core.testbed.rate import generative_rate

    torch.set_num_threads(1)
    concept_attribute(args.concept)  # refuses an unknown concept before loading anything
    if args.gamma is not None and not args.eraser:
        raise ValueError("--gamma needs --eraser")
    eraser = None
    if args.eraser:
        from clear_core.erasure import Eraser

        eraser = Eraser.load(args.eraser)
    result = generative_rate(
        args.concept,
        prompts=load_prompts(args.prompts) if args.prompts else None,
        eraser=eraser,
        gamma=args.gamma,
        seeds=args.seeds,
        neutral_prompts=load_prompts(args.neutral_prompts) if args.neutral_prompts else None,
        n_prompts=args.n_prompts,
        steps=args.steps,
        guidance_scale=args.guidance,
        seed=args.seed,
    )
    print(json.dumps(result, indent=2))
    return 0
