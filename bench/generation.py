"""What erasure costs in a generation, as ratios measured in one run (``python -m bench.generation``).

1. The eraser hook on the encoding step: ``encode_prompt`` with an SAE eraser (γ = 3) vs without.
2. The same on a whole generation (encode + denoise + decode), against the target of < 1%.
3. A γ sweep of 5 values (the original + 5 erased clips: 5 encodings with the eraser, 6 denoising
   loops) vs 5 plain generations of the same size.

Pipelines: the CPU testbed when its weights are installed (``--pipeline testbed``, the default then),
else the tiny random Wan (``--pipeline tiny-wan``). Timings are medians of interleaved repeats, so a
busy machine slows both sides alike; absolute seconds are printed for context only.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from clear_core.encoders import TextEncoder
from clear_core.erasure import Eraser
from clear_core.generation import Latents, RenderSettings, encode, load_pipeline
from clear_core.generation.render import render
from clear_core.sae import SAE, SAEConfig

PROMPT = "a stunt performer with a parachute over a desert, motion blur"
SIZES = {
    "tiny-wan": {"frames": 9, "height": 16, "width": 16, "max_sequence_length": 16},
    "tiny-cogvideox": {"frames": 9, "height": 16, "width": 16, "max_sequence_length": 16},
}


def random_eraser(pipe, d_sae: int = 2048) -> Eraser:
    """An SAE eraser of the default size at the middle block (its values do not change the cost)."""
    encoder = TextEncoder.from_pipeline(pipe)
    layer = max(1, encoder.n_blocks // 2)
    sae = SAE(SAEConfig(encoder.d_model, d_sae), torch.Generator().manual_seed(0))
    m_spec = torch.zeros(d_sae)
    m_spec[:32] = 1.0
    return Eraser(
        "parachute", encoder.model_id, layer, encoder.layout.block_names[layer - 1], 1.0, encoder.d_model,
        sae=sae, m_spec=m_spec, gamma=3.0, meta=encoder.provenance(),
    )  # fmt: skip


def timed(fn, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def median_pair(a, b, rounds: int, repeats: int) -> tuple[float, float]:
    ta, tb = [], []
    for _ in range(rounds):  # interleaved: load changes hit both sides
        ta.append(timed(a, repeats))
        tb.append(timed(b, repeats))
    return statistics.median(ta), statistics.median(tb)


def main() -> None:
    from app.generation import testbed_available

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="testbed" if testbed_available() else "tiny-wan")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe = load_pipeline(args.pipeline)
    eraser = random_eraser(pipe)
    settings = RenderSettings(steps=args.steps, **SIZES.get(args.pipeline, {}))
    length = settings.max_sequence_length
    erasers = [(eraser, 3.0)]

    def enc_plain():
        encode(pipe, [PROMPT], [""], (), True, length)

    def enc_erased():
        encode(pipe, [PROMPT], [""], erasers, True, length)

    plain_cond, erased_cond = (
        encode(pipe, [PROMPT], [""], (), True, length),
        encode(pipe, [PROMPT], [""], erasers, True, length),
    )

    def gen_plain():
        enc_plain()
        render(pipe, plain_cond.kwargs(), settings, Latents(0))

    def gen_erased():
        enc_erased()
        render(pipe, erased_cond.kwargs(), settings, Latents(0))

    enc_plain(), enc_erased(), gen_plain(), gen_erased()  # warm-up
    e0, e1 = median_pair(enc_plain, enc_erased, args.rounds, 20)
    g0, g1 = median_pair(gen_plain, gen_erased, args.rounds, 3)

    gammas = [1.0, 2.0, 3.0, 4.0, 6.0]

    def sweep():
        latents = Latents(0)
        render(pipe, plain_cond.kwargs(), settings, latents)
        for g in gammas:
            cond = encode(pipe, [PROMPT], [""], [(eraser, g)], True, length)
            render(pipe, cond.kwargs(), settings, latents)

    def five_plain():
        for _ in gammas:
            gen_plain()

    s1, s0 = median_pair(sweep, five_plain, max(2, args.rounds // 2), 1)
    print(
        f"pipeline {args.pipeline}: {args.steps} steps, eraser d_sae {eraser.sae.config.d_sae} at {eraser.layer_name}"
    )
    print(
        f"encode_prompt: plain {1e3 * e0:.1f} ms, with eraser {1e3 * e1:.1f} ms -> hook overhead x{e1 / e0:.2f}"
    )
    print(
        f"whole generation: plain {1e3 * g0:.1f} ms, erased {1e3 * g1:.1f} ms -> overhead "
        f"{100 * (g1 - g0) / g0:+.2f}% (target < 1%); the eraser's own cost is {100 * (e1 - e0) / g0:.2f}% "
        f"of a generation; encoding is {100 * e0 / g0:.1f}% of it"
    )
    print(
        f"γ sweep of {len(gammas)} values (original + {len(gammas)} erased clips) {s1:.2f} s vs "
        f"{len(gammas)} plain generations {s0:.2f} s -> x{s1 / s0:.2f}"
    )


if __name__ == "__main__":
    main()
