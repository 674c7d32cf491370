"""Erase the negative prompt or not? A measured example on the CPU testbed (``python -m bench.negative_prompt``).

With classifier-free guidance the denoiser follows ``uncond + s·(cond − uncond)``. ``generate`` applies
the eraser to the negative prompt too by default (what a hooked deployment does); ``--negative-unerased``
encodes it without. The two differ only when the negative prompt carries the concept. This prints the
testbed's generative rate of a concept (share of frames where the testbed detector finds it) on the
pack's prompts, same seeds and latents throughout, for:

* no eraser, empty negative;                       * CLEAR, empty negative (erased / unerased);
* no eraser, the concept's name as negative (NegPrompt);
* CLEAR + the concept's name as negative, the negative erased / unerased.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from clear_core.erasure import Eraser
from clear_core.generation import Latents, RenderSettings, encode, load_pipeline
from clear_core.generation.render import render
from clear_core.generation.variants import concept_phrase


def main() -> None:
    from clear_core.testbed.detector import concept_present, load_detector
    from clear_core.testbed.rate import pack_prompts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eraser", required=True, help="an eraser folder for a built-in concept (MiniLM)")
    parser.add_argument("--gamma", type=float, help="default: the eraser's calibrated γ")
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe, detector = load_pipeline("testbed"), load_detector()
    eraser = Eraser.load(args.eraser)
    gamma = eraser.gamma if args.gamma is None else args.gamma
    prompts, _ = pack_prompts(eraser.concept, args.prompts)
    name = concept_phrase(eraser)
    settings = RenderSettings(steps=10)
    rows = {
        "no eraser, negative ''": ([], "", True),
        "CLEAR, negative '' erased": ([(eraser, gamma)], "", True),
        "CLEAR, negative '' unerased": ([(eraser, gamma)], "", False),
        f"NegPrompt '{name}'": ([], name, True),
        f"CLEAR + negative '{name}' erased": ([(eraser, gamma)], name, True),
        f"CLEAR + negative '{name}' unerased": ([(eraser, gamma)], name, False),
    }
    print(f"{eraser.concept} at γ = {gamma:g}: {len(prompts)} pack prompts × {args.seeds} seeds, 10 steps")
    # one batch of all prompts per seed; each seed's latents are drawn once and replayed in every row
    latents = [Latents(seed) for seed in range(args.seeds)]
    for label, (erasers, negative, negative_erased) in rows.items():
        found = []
        for start in latents:
            cond = encode(pipe, prompts, [negative] * len(prompts), erasers, negative_erased)
            frames = render(pipe, cond.kwargs(), settings, start).frames  # (prompts, F, H, W, 3)
            found.append(
                concept_present(detector.predict(frames.reshape(-1, *frames.shape[2:])), eraser.concept)
            )
        print(f"  {label:<44} generative rate {np.mean(np.concatenate(found)):.3f}")


if __name__ == "__main__":
    main()
