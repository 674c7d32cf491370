"""Where would the probe gate find a concept's paraphrases? The same probe fitted at every block.

    python -m research.probe_blocks [SLUG ...]      # default: the probe gate's three text misses

For each concept and each block of MiniLM, the probe is fitted as the probe gate fits it (fit pairs and
the calibration half of the paraphrases against the fit negatives, the calibration half of the
unrelated prompts and the other packs' prompts; the protected look-alikes and the empty prompt
weighted, clear_core/build.py:probe_gate) and prints the share of held-out paraphrases, held-out
look-alike prompts, held-out pair negatives and held-out unrelated prompts it calls the concept. The
eraser can only read blocks up to its own; a deeper block would need an unedited first pass. About a
minute a concept on 2 cores.
"""

from __future__ import annotations

import argparse

import numpy as np

from clear_core.build import probe_gate, probe_logits
from clear_core.concepts import load_builtin, load_implicit, unrelated_prompts
from clear_core.encoders import load_encoder
from clear_core.lookalikes import resolve_preserve
from clear_core.splits import alternate, reference_prompts, split_pairs

MISSES = ["english_springer", "rembrandt", "garbage_truck"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("slugs", nargs="*", default=MISSES)
    args = parser.parse_args(argv)
    encoder = load_encoder("minilm")
    null = encoder.capture([""], empty_ok=True)
    unrelated_cal, unrelated_held = (encoder.capture(x) for x in alternate(unrelated_prompts()))
    for slug in args.slugs:
        concept = load_builtin(slug)
        split = split_pairs(concept)
        pos, neg = encoder.capture(split.fit.positives), encoder.capture(split.fit.negatives)
        implicit_cal, implicit_held = (encoder.capture(x) for x in alternate(load_implicit(slug)[0]))
        reference = encoder.capture(reference_prompts(slug))
        preserve = resolve_preserve(concept, None, [], held_out_pairs=split.held_out_indices)
        protected = encoder.capture(preserve.protect_prompts) if preserve else None
        held = {
            "paraphrases": implicit_held,
            "look-alikes": encoder.capture(preserve.held_out_prompts) if preserve else None,
            "negatives": encoder.capture(split.held_out.negatives),
            "unrelated": unrelated_held,
        }
        print(slug, flush=True)
        for block in range(1, pos.n_layers):
            scale = float(np.linalg.norm(pos.layer(block), axis=-1).mean())
            probe = probe_gate(
                [pos, implicit_cal], [neg, unrelated_cal, reference], block, scale, protected, null
            )
            cells = [
                f"{name} {float((probe_logits(probe, acts, block, scale) > 0).mean()):.2f}"
                for name, acts in held.items()
                if acts is not None
            ]
            print(f"  block {block - 1} (layer {block}): " + ", ".join(cells), flush=True)


if __name__ == "__main__":
    main()
