"""Does the probe gate recognise a built-in concept under another name? (clear_core/build.py:same_concept_packs)

    python -m research.reference_packs [--layers 2 4] [--quantile 0.25]

Each of the 21 built-in packs is treated as a user concept with a name no pack has: its fit pairs are
the positives and negatives, the calibration half of the unrelated prompts is concept-free, and every
built-in pack's reference prompts (``clear_core.splits.reference_packs``) are candidates. A run should
name the concept's own pack (it would otherwise teach the probe that the concept is concept-free) and
no other pack (those are the prompts that teach it the difference). Layers are capture indices (layer
k is the output of block k − 1), scaled as a search scales them. Prints one line per pack and layer,
then the totals. About 3 minutes on MiniLM with 2 cores.
"""

from __future__ import annotations

import argparse

from clear_core.build import same_concept_packs
from clear_core.concepts import builtin_packs, load_builtin, unrelated_prompts
from clear_core.encoders import load_encoder
from clear_core.search import layer_scales
from clear_core.splits import alternate, reference_packs, split_pairs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--quantile", type=float, default=0.25)
    args = parser.parse_args(argv)
    encoder = load_encoder("minilm")
    unrelated = encoder.capture(alternate(unrelated_prompts())[0])
    packs = reference_packs("a concept by another name")
    reference = encoder.capture([p for group in packs.values() for p in group])
    sizes = {slug: len(group) for slug, group in packs.items()}
    own = wrong = cases = 0
    for slug in builtin_packs():
        fit = split_pairs(load_builtin(slug)).fit
        pos, neg = encoder.capture(fit.positives), encoder.capture(fit.negatives)
        for layer in args.layers:
            scale = layer_scales([pos, neg], [layer])[0]
            named = same_concept_packs(pos, [neg, unrelated], reference, sizes, layer, scale, args.quantile)
            cases += 1
            own += slug in named
            wrong += len(set(named) - {slug})
            print(
                f"{slug:20s} layer {layer} (block {layer - 1}): named {', '.join(named) or '-'}", flush=True
            )
    print(f"own pack named in {own} of {cases}; other packs named {wrong} times (quantile {args.quantile:g})")


if __name__ == "__main__":
    main()
