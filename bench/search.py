"""What a default search costs, as ratios measured in one run (run it on a quiet machine).

    python -m bench.search                                   # parachute, andy_warhol, nudity
    python -m bench.search --concepts parachute --brute      # and brute force beside the search
    python -m bench.search --threads 2

For each concept, with a cold activation cache: the default run's stages (capture, search, γ
calibration, held-out measurement), each also as a multiple of **one plain forward pass** (``encode``)
over the same prompts, so the numbers travel between machines. Then, once:

* the γ sweep: 10 γ on 300 prompts, encoded once per γ under the eraser (before) vs
  ``clear_core.prefix.encode_gammas`` (the blocks below the eraser once, all γ in one batch), with the
  largest difference between the two;
* the search step: a top-k SAE update with the dense pass (``SAE.forward``), with the sparse decoder
  alone (the step before the sparse encoder backward) and as the search runs it now (``sae_update``:
  sparse encoder and decoder backward, fused Adam), milliseconds per update on the search's batch shape;
* start-up: ``python -m clear_core --help`` and an input error, wall seconds (median of 5);
* with ``--brute``: the brute-force search (one SAE per block, the same steps) beside CLEAR's, as a
  ratio; the paper claims CLEAR costs ≤ 1/L of it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from clear_core.concepts import load_builtin, unrelated_prompts
from clear_core.config import DEFAULT_GAMMAS, EraserOptions, SearchConfig
from clear_core.encoders import CaptureConfig, load_encoder
from clear_core.prefix import encode_gammas
from clear_core.sae import SAE, SAEConfig, SparseSAEOutput, sae_update
from clear_core.search import run_brute_force
from clear_core.workflow import ClearRun

TARGET_SECONDS = 30.0


def timed(fn, repeats: int = 1) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def default_run(encoder, slug: str) -> dict:
    """The default run of ``slug`` with a cold cache; stage seconds and ratios to one forward pass."""
    concept = load_builtin(slug)
    with tempfile.TemporaryDirectory() as tmp:
        run = ClearRun(encoder, concept, SearchConfig(), EraserOptions(), CaptureConfig(cache_dir=Path(tmp)))
        marks, t = {}, time.perf_counter()
        for stage in run.run():
            marks.setdefault(stage.name, time.perf_counter() - t)
        total = time.perf_counter() - t
    result = run.result
    order = ["capture", "search", "calibrate", "held-out", "done"]
    starts = [marks[n] for n in order if n in marks] + [total]
    seconds = {
        n: b - a for n, a, b in zip([n for n in order if n in marks], starts, starts[1:]) if n != "done"
    }
    prompts = result.pos.prompts + result.neg.prompts
    if run.preserve:
        prompts += run.preserve.protect_prompts
    forward = timed(lambda: encoder.encode(prompts), repeats=2)
    return {
        "concept": slug,
        "total": total,
        "seconds": seconds,
        "forward": forward,
        "n_prompts": len(prompts),
        "block": result.eraser.layer_name,
        "gamma": result.eraser.gamma,
        "stop": result.search.stop_reason,
        "search": result.search,
        "pos": result.pos,
        "neg": result.neg,
        "eraser": result.eraser,
    }


def gamma_sweep(encoder, eraser, n: int = 300) -> dict:
    prompts = (unrelated_prompts() * 3 + load_builtin(eraser.concept).positives)[:n]
    gammas = list(DEFAULT_GAMMAS)

    def before():
        out = {}
        for g in gammas:
            with eraser.applied(encoder, gamma=g):
                out[g] = encoder.encode(prompts, batch_size=64)
        return out

    t = time.perf_counter()
    old = before()
    t_old = time.perf_counter() - t
    t = time.perf_counter()
    new = encode_gammas(encoder, prompts, eraser, gammas, batch_size=64)
    t_new = time.perf_counter() - t
    diff = max(float(np.abs(old[g] - new[g]).max()) for g in gammas)
    return {"n": len(prompts), "block": eraser.layer_name, "before": t_old, "after": t_new, "max_diff": diff}


def _topk_sparse_decoder_only(sae: SAE, x: torch.Tensor) -> SparseSAEOutput:
    """The search's top-k pass before the sparse encoder backward (e26063f), for comparison: dense
    pre-activations with autograd (two more n × d_model × d_sae products in the backward), sparse
    decoder through embedding_bag's own backward."""
    pre = sae.pre_activation(x)
    values, indices = pre.topk(sae.config.k, dim=-1, sorted=False)
    values = torch.relu(values)
    recon = F.embedding_bag(indices, sae.W_dec, per_sample_weights=values, mode="sum") + sae.b_dec
    mse = (x - recon).pow(2).sum(-1).mean()
    return SparseSAEOutput(values, indices, recon, mse, values.sum(-1).mean(), mse, sae.config.d_sae)


def sae_step(pos, neg, layer: int, repeats: int = 30) -> dict:
    """ms per top-k SAE update on a search-sized batch, the variants interleaved: the dense pass
    (``SAE.forward``), the sparse decoder alone with Adam's per-parameter loop (the step before this
    change), and the search's step now (``sae_update``: sparse encoder and decoder backward, fused
    Adam)."""
    rows = 16 * (pos.n_tokens + neg.n_tokens) // pos.n_prompts
    x = torch.from_numpy(np.concatenate([pos.layer(layer), neg.layer(layer)])[:rows])
    x = x / x.norm(dim=-1).mean()
    steps = {}
    for name in ("dense", "sparse decoder", "now"):
        sae = SAE(SAEConfig(x.shape[1], 2048, kind="topk", k=64), torch.Generator().manual_seed(0))
        opt = torch.optim.Adam(sae.parameters(), lr=1e-3, fused=name == "now")

        def step(sae=sae, opt=opt, name=name):
            if name == "now":
                sae_update(sae, opt, x)
                return
            o = sae(x) if name == "dense" else _topk_sparse_decoder_only(sae, x)
            opt.zero_grad(set_to_none=True)
            o.loss.backward()
            torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
            opt.step()
            sae.normalize_decoder()

        step()
        steps[name] = step
    out = dict.fromkeys(steps, 0.0)
    for _ in range(repeats):
        for name, step in steps.items():
            t = time.perf_counter()
            step()
            out[name] += 1000 * (time.perf_counter() - t) / repeats
    out["rows"] = rows
    return out


def startup() -> dict:
    def wall(cmd):
        times = []
        for _ in range(5):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "clear_core", *cmd], capture_output=True, check=False)
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    return {
        "--help": wall(["--help"]),
        "search, missing concept file": wall(["search", "--concept", "missing.jsonl", "--out", "/tmp/x"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concepts", default="parachute,andy_warhol,nudity")
    parser.add_argument("--brute", action="store_true", help="also time brute force (one SAE per block)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    encoder = load_encoder()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    runs = []
    for slug in args.concepts.split(","):
        r = default_run(encoder, slug)
        runs.append(r)
        s, f = r["seconds"], r["forward"]
        stages = ", ".join(f"{n} {v:.1f} s (×{v / f:.1f})" for n, v in s.items())
        print(
            f"{slug}: {r['total']:.1f} s [{'≤' if r['total'] <= TARGET_SECONDS else '>'} {TARGET_SECONDS:g} s] — "
            f"{stages}; one forward pass over its {r['n_prompts']} prompts {f:.2f} s; "
            f"block {r['block']}, γ {r['gamma']:g}; search {r['stop']}"
        )
        if args.brute:
            t = time.perf_counter()
            brute = run_brute_force(r["pos"], r["neg"], SearchConfig(early_stop=False))
            t_brute = time.perf_counter() - t
            n_blocks = len(brute.candidates)
            ratio = s["search"] / t_brute
            print(
                f"  brute force (one SAE per block, {n_blocks} blocks, 300 steps each, no look-alikes): "
                f"{t_brute:.1f} s, best {brute.layer - 1}; CLEAR's search / brute force = {ratio:.2f} "
                f"(1/L = {1 / n_blocks:.2f}: {'met' if ratio <= 1 / n_blocks else 'not met'})"
            )
    sweep = gamma_sweep(encoder, runs[0]["eraser"])
    print(
        f"γ sweep, 10 γ × {sweep['n']} prompts at {sweep['block']}: {sweep['before']:.1f} s -> "
        f"{sweep['after']:.1f} s (×{sweep['after'] / sweep['before']:.2f}; max difference {sweep['max_diff']:.1e})"
    )
    step = sae_step(runs[0]["pos"], runs[0]["neg"], runs[0]["search"].layer)
    print(
        f"SAE update on {step['rows']} rows: dense {step['dense']:.1f} ms, sparse decoder only "
        f"{step['sparse decoder']:.1f} ms (×{step['sparse decoder'] / step['dense']:.2f}), now (sparse encoder "
        f"backward too, fused Adam) {step['now']:.1f} ms (×{step['now'] / step['dense']:.2f})"
    )
    for what, seconds in startup().items():
        print(f"start-up, python -m clear_core {what}: {seconds:.2f} s (target ≤ 1.5 s)")


if __name__ == "__main__":
    main()
