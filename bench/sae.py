"""SAE quality on the same tensors: the project's SAEs (and, if installed, SAELens') side by side.

    python -m bench.sae                          # parachute, block 3, 300 steps of 512 tokens
    python -m bench.sae --concept nudity --layers 3,6 --steps 300

Every variant trains on identical batches (one seeded sequence of token rows drawn from the pack's
normalised block activations, the search's input), with Adam at lr 1e-3, and is scored on all the
pack's tokens at that block: FVU, L0 (mean active features per token), dead share (never fired on
those tokens), seconds per update. Variants:

* ``old relu``: this project's first SAE (unit-norm decoder init, renormalised after every
  step, no gradient clipping, b_dec started at the data mean).
* ``relu``: the current L1 SAE (decoder init norm 0.1, L1 weighted by decoder-row norm, no forced
  renormalisation, grad clip 1.0, b_dec started at 0, decoder norm folded at the end); and the same
  with one of those changes undone at a time, to show which matter.
* ``topk`` / ``batchtopk``: k features per token, AuxK against dead features.
* ``saelens standard|topk|batchtopk``: SAELens' training SAEs (``pip install -r bench/requirements.txt``)
  driven by the same loop, with SAELens' own trainer details (clip 1.0, dead window as ours).

Nothing here is copied from elsewhere; every number is measured in this run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from clear_core.concepts import load_builtin
from clear_core.encoders import load_encoder
from clear_core.sae import SAE, SAEConfig, sae_update


def block_tokens(encoder, slug: str, layer: int) -> torch.Tensor:
    """All real tokens of the pack's prompts at ``layer``, divided by their mean norm (the search's input)."""
    concept = load_builtin(slug)
    acts = encoder.capture(concept.positives + concept.negatives)
    x = torch.from_numpy(np.ascontiguousarray(acts.layer(layer))).float()
    return x / x.norm(dim=-1).mean()


def fvu_l0_dead(encode, decode, x: torch.Tensor) -> tuple[float, float, float]:
    with torch.no_grad():
        f = encode(x)
        recon = decode(f)
        fvu = float((x - recon).pow(2).sum() / (x - x.mean(0)).pow(2).sum())
        active = f > 0
        return fvu, float(active.sum(-1).float().mean()), float((~active.any(0)).float().mean())


def train_project(
    x, batches, kind, l1, k, d_sae, old=False, init_norm=0.1, clip=1.0, mean_b_dec=False, renorm=False, seed=0
):
    cfg = SAEConfig(x.shape[1], d_sae, l1, kind=kind, k=k, decoder_init_norm=1.0 if old else init_norm)
    sae = SAE(cfg, torch.Generator().manual_seed(seed))
    if old or mean_b_dec:
        with torch.no_grad():
            sae.b_dec.copy_(x[batches[0]].mean(0))
    opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
    t = time.perf_counter()
    for rows in batches:
        sae_update(sae, opt, x[rows], None if old else clip)
        if (old or renorm) and kind == "relu":
            sae.normalize_decoder()
    seconds = (time.perf_counter() - t) / len(batches)
    sae.fold_decoder_norm()
    sae.eval()
    return (*fvu_l0_dead(sae.encode, sae.decode, x), seconds)


def train_saelens(x, batches, kind, l1, k, d_sae, dead_after=50, seed=0):
    from sae_lens.saes.sae import TrainStepInput

    torch.manual_seed(seed)
    common = dict(d_in=x.shape[1], d_sae=d_sae, dtype="float32", device="cpu")
    if kind == "standard":
        from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig

        sae = StandardTrainingSAE(StandardTrainingSAEConfig(l1_coefficient=l1, **common))
    elif kind == "topk":
        from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig

        sae = TopKTrainingSAE(TopKTrainingSAEConfig(k=k, **common))
    else:
        from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig

        sae = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(k=k, **common))
    opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
    since = torch.zeros(d_sae, dtype=torch.long)
    t = time.perf_counter()
    for step, rows in enumerate(batches):
        out = sae.training_forward_pass(TrainStepInput(x[rows], {"l1": l1}, since >= dead_after, step, False))
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
        opt.step()
        fired = (out.feature_acts > 0).any(0)
        since += 1
        since[fired] = 0
    seconds = (time.perf_counter() - t) / len(batches)
    sae.eval()  # SAELens' training batchtopk still selects over the batch (here: all tokens) in eval
    return (*fvu_l0_dead(sae.encode, sae.decode, x), seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concept", default="parachute")
    parser.add_argument("--layers", default="3", help="comma-separated capture layers (1..6 on MiniLM)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument(
        "--rows", type=int, default=512, help="token rows per update (the search's ~16 pairs)"
    )
    parser.add_argument("--d-sae", type=int, default=2048)
    parser.add_argument("--l1", type=float, default=3e-2)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="skip the one-change-at-a-time ablations")
    args = parser.parse_args()
    torch.set_num_threads(1)

    try:
        import sae_lens  # noqa: F401

        have_saelens = True
    except ImportError:
        have_saelens = False
        print("sae-lens not installed: SAELens rows skipped (pip install -r bench/requirements.txt)")

    encoder = load_encoder()
    for layer in map(int, args.layers.split(",")):
        x = block_tokens(encoder, args.concept, layer)
        gen = torch.Generator().manual_seed(0)
        batches = [torch.randint(len(x), (args.rows,), generator=gen) for _ in range(args.steps)]
        c = (args.l1, args.k, args.d_sae)
        variants = [
            ("old relu (the first SAE)", train_project, "relu", {"old": True}),
            ("relu (default L1 SAE)", train_project, "relu", {}),
        ]
        if not args.quick:
            variants += [
                ("relu, decoder init norm 1", train_project, "relu", {"init_norm": 1.0}),
                ("relu, no grad clip", train_project, "relu", {"clip": None}),
                ("relu, b_dec at data mean", train_project, "relu", {"mean_b_dec": True}),
                ("relu, renormalised decoder", train_project, "relu", {"renorm": True}),
            ]
        variants += [
            (f"topk k={args.k}", train_project, "topk", {}),
            (f"batchtopk k={args.k}", train_project, "batchtopk", {}),
        ]
        if have_saelens:
            variants += [
                ("SAELens standard (L1)", train_saelens, "standard", {}),
                (f"SAELens topk k={args.k}", train_saelens, "topk", {}),
                (f"SAELens batchtopk k={args.k} (batch top-k at evaluation)", train_saelens, "batchtopk", {}),
            ]
        print(
            f"\n{args.concept}, capture layer {layer}: {len(x):,} tokens × {x.shape[1]}, d_sae {args.d_sae}, "
            f"{args.steps} updates of {args.rows} rows, Adam 1e-3, λ {args.l1:g}, 1 thread"
        )
        print("| SAE | FVU | L0 | dead share | s/update |\n| --- | --- | --- | --- | --- |")
        for name, train, kind, kwargs in variants:
            fvu, l0, dead, sec = train(x, batches, kind, *c, **kwargs)
            print(f"| {name} | {fvu:.3f} | {l0:.1f} | {dead:.2f} | {sec:.3f} |", flush=True)


if __name__ == "__main__":
    main()
