"""Capture of every block vs a plain forward pass, measured in one run (target: ≤ 1.10×).

    python -m bench.capture [--prompts 2000] [--repeats 3]

Both sides tokenize and run the same batches under ``torch.inference_mode``; capture also copies
every layer's real tokens into a float32 array. Runs are interleaved and the best of ``--repeats`` is
kept for each side, since these machines are noisy. Also prints prompts/s and the cold/warm time of
the on-disk cache.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from clear_core.concepts import builtin_packs, load_builtin
from clear_core.encoders import CaptureConfig, load_encoder


def prompts_for(n: int) -> list[str]:
    out: list[str] = []
    for slug in builtin_packs():
        concept = load_builtin(slug)
        out += concept.positives + concept.negatives
        if len(out) >= n:
            break
    return out[:n]


def plain_forward(encoder, prompts: list[str], batch_size: int) -> None:
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            encoder.model(**encoder.tokenize(prompts[start : start + batch_size]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--model", default="minilm")
    args = parser.parse_args()

    encoder = load_encoder(args.model)
    prompts = prompts_for(args.prompts)
    config = CaptureConfig(batch_size=args.batch_size, use_cache=False)
    plain_forward(encoder, prompts[:64], args.batch_size)  # warm-up
    plain, capture = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        plain_forward(encoder, prompts, args.batch_size)
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        acts = encoder.capture(prompts, config)
        capture.append(time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as tmp:
        cached = CaptureConfig(batch_size=args.batch_size, cache_dir=Path(tmp))
        t = time.perf_counter()
        encoder.capture(prompts, cached)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        warm_acts = encoder.capture(prompts, cached)
        warm = time.perf_counter() - t
        assert warm_acts.n_tokens == acts.n_tokens

    ratio = min(capture) / min(plain)
    print(
        f"model {encoder.model_id}: {len(prompts)} prompts, {acts.n_tokens:,} real tokens, {acts.n_layers} layers, "
        f"{acts.data.nbytes / 2**20:.0f} MiB captured (float32), {torch.get_num_threads()} threads"
    )
    print(f"plain forward      best {min(plain):6.2f} s  ({len(prompts) / min(plain):6.0f} prompts/s)")
    print(f"capture all blocks best {min(capture):6.2f} s  ({len(prompts) / min(capture):6.0f} prompts/s)")
    print(f"capture / plain    {ratio:.3f}x   (target <= 1.10x: {'met' if ratio <= 1.10 else 'NOT met'})")
    print(
        f"on-disk cache      cold {cold:.2f} s (capture + write), warm {warm * 1000:.1f} ms (open), "
        f"speed-up {cold / warm:.0f}x"
    )


if __name__ == "__main__":
    main()
