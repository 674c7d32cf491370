"""What the search's defaults cost, as ratios measured in one run on one concept.

    python -m bench.search_cost                    # parachute, 100 steps each, scaled to 300
    python -m bench.search_cost --concept golf_ball --steps 300

Times the 300-step search (no capture, no calibration) four ways: TopK (the default) or ReLU/L1 SAE,
each without and with the concept's look-alike prompts in the search (the default for a pack with a
preserve list: each step adds a batch of them to the negatives).
"""

from __future__ import annotations

import argparse
import time

import torch

from clear_core.concepts import load_builtin
from clear_core.encoders import load_encoder
from clear_core.lookalikes import default_preserve, preserve_set
from clear_core.search import LayerSearch, SearchConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concept", default="parachute", help="a built-in pack with a preserve list")
    parser.add_argument("--steps", type=int, default=100, help="steps timed (reported per 300)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    encoder = load_encoder("minilm")
    concept = load_builtin(args.concept)
    names = default_preserve(args.concept)
    if not names:
        raise SystemExit(f"{args.concept!r} has no built-in look-alikes")
    pos, neg = encoder.capture(concept.positives), encoder.capture(concept.negatives)
    looks = encoder.capture(preserve_set(concept, names).protect_prompts)
    times = {}
    for kind in ("topk", "relu"):
        for label, protected in (("plain", None), ("look-alikes", looks)):
            search = LayerSearch(pos, neg, SearchConfig(sae_kind=kind, steps=args.steps), protected=protected)
            start = time.perf_counter()
            for _ in search.run():
                pass
            times[kind, label] = (time.perf_counter() - start) * 300 / args.steps
            print(f"{kind:5s} {label:12s} {times[kind, label]:6.1f} s per 300 steps", flush=True)
    print(
        f"look-alikes in the search: x{times['topk', 'look-alikes'] / times['topk', 'plain']:.2f} (TopK), "
        f"x{times['relu', 'look-alikes'] / times['relu', 'plain']:.2f} (ReLU); "
        f"TopK vs ReLU: x{times['topk', 'plain'] / times['relu', 'plain']:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
