"""``python -m clear_core generate``: original vs erased videos with one seed, γ sweeps, baselines.

Everything cheap is checked before the pipeline loads (the folder, prompts, seeds, γ values, the
eraser folders), then every eraser is checked against the loaded pipeline's encoder before the first
frame; errors are one line and exit with status 2 (clear_core/__main__.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from clear_core import limits
from clear_core.fanout.config import add_ray_arguments, config_from_args

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    text = "Render prompts with and without erasers (same seed): mp4s, contact sheets, a JSON per video."
    p = sub.add_parser("generate", help=text, description=text)
    p.add_argument(
        "--pipeline",
        required=True,
        help="'testbed' (the CPU testbed), a diffusers pipeline folder or Hugging Face id, or tiny-wan / "
        "tiny-cogvideox / tiny-sd (random weights: plumbing only)",
    )
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--prompt", help="one prompt")
    group.add_argument("--prompts", help="text file, one prompt a line")
    p.add_argument("--negative-prompt", default="", help="negative prompt for classifier-free guidance")
    p.add_argument(
        "--negative-unerased",
        action="store_true",
        help="encode the negative prompt without the eraser (default: the eraser applies to it too)",
    )
    p.add_argument(
        "--eraser", action="append", default=[], help="eraser folder; repeat to erase several concepts"
    )
    p.add_argument(
        "--gamma", type=float, action="append", default=[], help="erasure strength; repeat for a γ sweep"
    )
    p.add_argument("--baselines", default="", help="comma-separated: negprompt,steering")
    p.add_argument(
        "--concept", help="the concept's pairs for the steering baseline (default: its built-in pack)"
    )
    p.add_argument(
        "--seed", type=int, action="append", default=[], help="seed; repeat for several (default 0)"
    )
    p.add_argument("--steps", type=int, help="denoising steps (default: 10 on the testbed, else 30)")
    p.add_argument("--frames", type=int, help="frames (default: the pipeline's; tiny-*: 9)")
    p.add_argument("--height", type=int, help="pixels (default: the pipeline's; tiny-*: 16)")
    p.add_argument("--width", type=int, help="pixels (default: the pipeline's; tiny-*: 16)")
    p.add_argument("--guidance", type=float, help="guidance scale (default: the pipeline's)")
    p.add_argument("--max-sequence-length", type=int, help="text tokens (default: the pipeline's own)")
    p.add_argument(
        "--dtype", default="auto", help="auto (bfloat16 on CUDA, float32 on CPU), float32, bfloat16, float16"
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument(
        "--offload", action="store_true", help="model CPU offload (one component on the GPU at a time)"
    )
    p.add_argument("--vae-tiling", action="store_true", help="decode the video in tiles (less GPU memory)")
    p.add_argument("--fps", type=int, default=8, help="frames per second of the mp4s")
    p.add_argument("--out", required=True, help="output folder (must be empty unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --out")
    add_ray_arguments(p, "prompt × seed × variant")
    p.set_defaults(run=run)


class _Bar:
    """tqdm when stderr is a terminal, else a plain line every 10% (logs and CI stay readable)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty() or "CLEAR_PROGRESS" in os.environ
        self.bar = None
        self.last = -1

    def __call__(self, done: int, total: int, label: str) -> None:
        if self.tty:
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc="generate", unit="step")
            self.bar.n = done
            self.bar.set_postfix_str(label, refresh=True)
            return
        tenth = 10 * done // max(total, 1)
        if tenth != self.last:
            self.last = tenth
            print(f"generate: {done}/{total} denoising steps ({label})", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    from clear_core.concepts import ConceptSet, load_prompts
    from clear_core.erasure import Eraser
    from clear_core.generation.grid import check_out, check_prompts, generate_grid, prepare_steering
    from clear_core.generation.loading import load_pipeline
    from clear_core.generation.render import RenderSettings
    from clear_core.generation.tiny import tiny_settings
    from clear_core.generation.variants import plan_variants
    from clear_core.outputs import claim_folder, write_whole
    from clear_core.validation import check_gamma, check_number

    # cheap checks first: nothing below loads a model
    fanout = config_from_args(args)
    prompts = check_prompts([args.prompt] if args.prompt is not None else load_prompts(args.prompts))
    seeds = args.seed or [0]
    if any(not 0 <= s < 2**63 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seed values must be distinct integers in 0..2**63 − 1, got {seeds}")
    if len(seeds) > limits.MAX_SEEDS:
        raise ValueError(f"--seed is given {len(seeds):,} times; the limit is {limits.MAX_SEEDS:,}")
    gammas = [check_gamma(g, "--gamma") for g in args.gamma]
    if gammas and not args.eraser:
        raise ValueError("--gamma needs --eraser")
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    folders = [Path(e) for e in args.eraser]
    resolved = [str((f.parent if f.is_file() else f).resolve()) for f in folders]
    if len(set(resolved)) != len(resolved):
        raise ValueError("the same --eraser is given twice")
    erasers = [Eraser.load(f) for f in folders]
    variants = plan_variants(erasers, gammas, baselines, args.negative_prompt, not args.negative_unerased)
    steps = args.steps if args.steps is not None else (10 if args.pipeline == "testbed" else 30)
    sizes = tiny_settings(  # a tiny pipeline's own sizes where none is given
        args.pipeline.strip(),
        frames=args.frames,
        height=args.height,
        width=args.width,
        max_sequence_length=args.max_sequence_length,
    )
    settings = RenderSettings(
        steps=steps,
        guidance=None if args.guidance is None else check_number(args.guidance, "--guidance", minimum=0.0),
        **sizes,
    )
    if not 1 <= args.fps <= limits.MAX_FPS:
        raise ValueError(f"--fps must be in 1..{limits.MAX_FPS}, got {args.fps}")
    settings.check_memory(len(variants) + 1)  # every variant of a (prompt, seed) and the one rendering
    concept = ConceptSet.load(args.concept) if args.concept else None
    if fanout is not None:  # one task per clip on Ray workers, each loading the pipeline once
        from clear_core.fanout.generate import run_generate

        pairs = (list(concept.positives), list(concept.negatives)) if concept else None
        return run_generate(args, fanout, prompts, seeds, variants, settings, pairs)
    check_out(args.out, overwrite=True)  # a writable folder; empty is checked under the lock (outputs.py)
    out = claim_folder(args.out, args.overwrite, getattr(args, "exit_stack", None))

    pipe = load_pipeline(
        args.pipeline, dtype=args.dtype, device=args.device, offload=args.offload, vae_tiling=args.vae_tiling
    )
    settings.call_kwargs(pipe)  # refuses a setting the pipeline does not take, before rendering
    settings.check_memory(len(variants) + 1, pipe)  # with the pipeline's own default size
    if any(v.info.get("baseline") == "steering" for v in variants):
        from clear_core.progress import progress_lines

        with progress_lines("steering") as progress:
            prepare_steering(
                pipe,
                variants,
                *((concept.positives, concept.negatives) if concept else ()),
                progress=progress,
            )
    bar, done = _Bar(), []

    def write(folder: Path) -> None:  # rendered into a temporary folder, moved into --out when whole
        done.append(
            generate_grid(
                pipe,
                prompts,
                seeds,
                variants,
                settings,
                folder,
                args.negative_prompt,
                progress=bar,
                fps=args.fps,
            )
        )

    try:
        write_whole(out, write)
    finally:
        bar.close()
    result = done[0]
    m = result.manifest
    print(
        f"wrote {len(m['videos'])} videos ({len(variants)} variants × {len(prompts)} prompts × {len(seeds)} "
        f"seeds) and {len(m['contact_sheets'])} contact sheets to {out} in {m['wall_s']:.1f} s",
        file=sys.stderr,
    )
    return 0
