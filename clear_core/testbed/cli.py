"""``python -m clear_core testbed rate --concept SLUG [--prompts FILE] [--eraser DIR --gamma G] [--seeds N]``.

Prints JSON: the testbed's generative rate of the concept (share of generated frames in which the
detector finds it), and with an eraser the rate after erasure and the preservation (see rate.py).
The command line's plugin loader calls :func:`add_parser`; :func:`run` is what it runs.
"""

from __future__ import annotations

import argparse
import json

from clear_core import limits
from clear_core.cli_args import count_arg, finite_arg, gamma_arg, seed_arg
from clear_core.fanout.config import add_ray_arguments, config_from_args


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
    r.add_argument(
        "--eraser",
        action="append",
        default=[],
        help="eraser folder from 'search'; repeat to erase several concepts at once (each at its own γ)",
    )
    r.add_argument(
        "--concept-free",
        type=count_arg(limits.MAX_PROMPTS, minimum=0),
        default=0,
        help="also measure preservation on this many testbed captions naming none of the 21 concepts",
    )
    r.add_argument(
        "--gamma", type=gamma_arg, help="erasure strength, ≥ 0 (default: the eraser's calibrated one)"
    )
    r.add_argument("--seeds", type=count_arg(limits.MAX_SEEDS), default=4, help="latents per prompt")
    r.add_argument(
        "--n-prompts",
        type=count_arg(limits.MAX_PROMPTS),
        default=24,
        help="pack prompts used when --prompts is not given",
    )
    r.add_argument("--steps", type=count_arg(limits.MAX_STEPS), default=10, help="sampling steps")
    r.add_argument(
        "--guidance", type=finite_arg(minimum=0.0), default=4.0, help="classifier-free guidance scale"
    )
    r.add_argument("--seed", type=seed_arg, default=0)
    add_ray_arguments(r, "batch of 64 clips")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``testbed rate``; print the JSON report; 0 on success (ValueError for bad input)."""
    import torch

    from clear_core.concepts import load_prompts
    from clear_core.testbed.detector import concept_attribute
    from clear_core.testbed.rate import generative_rate

    torch.set_num_threads(1)
    fanout = config_from_args(args)
    concept_attribute(args.concept)  # refuses an unknown concept before loading anything
    if args.gamma is not None and not args.eraser:
        raise ValueError("--gamma needs --eraser")
    if fanout is not None and args.concept_free:
        raise ValueError("--concept-free is not available with --ray; run it without --ray")
    prompts = load_prompts(args.prompts) if args.prompts else None
    neutral = load_prompts(args.neutral_prompts) if args.neutral_prompts else None
    n = len(prompts) if prompts is not None else args.n_prompts
    n += len(neutral) if neutral is not None else n  # preservation renders the neutral prompts
    arms = 2 if args.eraser else 1  # every clip is rendered without and with the eraser, all kept
    limits.check_video_size(8, 64, 64, arms * n * args.seeds, "use fewer --seeds or prompts")  # 8×64×64 clips
    erasers, pipe = [], None
    if args.eraser:
        from clear_core.__main__ import _load_erasers
        from clear_core.erasure import check_erasers
        from clear_core.testbed.pipeline import load_testbed_pipeline

        erasers = _load_erasers(args.eraser)  # paths first; the same folder twice is refused
        pipe = load_testbed_pipeline()
        check_erasers(pipe, erasers)  # generate's check: the encoder's weights and encoding profile
    if fanout is not None:  # the batches of clips on Ray workers, each loading the testbed once
        from clear_core.fanout.rate import run_rate

        return run_rate(args, fanout, erasers or None)
    result = generative_rate(
        args.concept,
        prompts=prompts,
        eraser=erasers or None,
        gamma=args.gamma,
        seeds=args.seeds,
        neutral_prompts=neutral,
        n_prompts=args.n_prompts,
        steps=args.steps,
        guidance_scale=args.guidance,
        seed=args.seed,
        pipe=pipe,
        concept_free=args.concept_free,
    )
    print(json.dumps(result, indent=2))
    return 0
