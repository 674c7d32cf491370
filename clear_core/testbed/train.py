"""Train the testbed denoiser: ``python -m clear_core.testbed.train [--out DIR] [--steps N] ...``.

1. Write ``--captions`` (spec, caption) pairs from the world (captions.py, training split only) and
   encode them once with MiniLM (final token states over real tokens, fp16), cached under
   ``--cache`` — the slowest step, reused by every later run with the same captions.
2. Rectified flow on the scene latent: z_t = (1 − t) x + t ε, target ε − x; t half logit-normal,
   half uniform; ``--noise-draws`` draws of (t, ε) per caption per batch; 10% of captions replaced
   by the empty prompt's states (classifier-free guidance). AdamW, cosine decay, gradient clip 1.
3. Checkpoints every ``--ckpt-every`` steps (resumed automatically from ``--out``), a tqdm bar,
   ``log.jsonl`` and ``loss.png``; at the end ``transformer/``, ``scheduler/`` and ``recipe.json``
   (with ``vocabulary_sha256``, the digest of the caption vocabulary: loading warns when it changes).

Run with one torch thread on a shared CPU (``--threads 1``, the default): with two threads on a
contended 2-core machine a prototype ran 14× slower.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from clear_core.testbed.captions import training_captions, vocabulary_digest
from clear_core.testbed.model import TestbedTransformer, encode_specs
from clear_core.testbed.world import SceneSpec


@dataclass
class TrainConfig:
    """Everything that determines a training run (written to recipe.json)."""

    out: str = "runs/testbed"
    """Run folder: checkpoints, log, loss curve and the final weights."""
    steps: int = 4000
    """Optimizer steps."""
    captions: int = 10000
    """Training captions (each encoded once with MiniLM)."""
    batch: int = 64
    """Captions per step."""
    noise_draws: int = 4
    """(t, ε) draws per caption per step."""
    lr: float = 1e-3
    """Peak learning rate (AdamW; linear warm-up over 100 steps, cosine decay to 5%)."""
    dropout: float = 0.1
    """Share of captions replaced by the empty prompt (classifier-free guidance)."""
    d_model: int = 128
    n_layers: int = 3
    n_heads: int = 4
    seed: int = 0
    """Seeds captions, initialisation and batches."""
    threads: int = 1
    """torch threads (1 on a shared CPU)."""
    ckpt_every: int = 500
    cache: str = "~/.cache/clear_core/testbed"
    """Where caption encodings are cached."""

    def __post_init__(self) -> None:
        for name in ("steps", "captions", "batch", "noise_draws", "threads", "ckpt_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")


# ---------------------------------------------------------------------------------- caption cache
@dataclass
class CaptionSet:
    """Encoded captions: flat fp16 states (sum of lengths, 384), offsets, specs, texts, the empty prompt."""

    states: torch.Tensor
    offsets: np.ndarray
    specs: list[SceneSpec]
    texts: list[str]
    empty: torch.Tensor

    def batch(self, rows: np.ndarray) -> torch.Tensor:
        """(len(rows), T, 384) float32, zero past each caption's tokens."""
        lengths = self.offsets[rows + 1] - self.offsets[rows]
        out = torch.zeros(len(rows), int(lengths.max()), self.states.shape[1])
        for i, r in enumerate(rows):
            out[i, : lengths[i]] = self.states[self.offsets[r] : self.offsets[r + 1]].float()
        return out


def encode_texts(texts: list[str], progress: bool = True, batch: int = 64) -> list[torch.Tensor]:
    """MiniLM final states of each text's real tokens (64 tokens at most), the pipeline's way."""
    from tqdm import tqdm

    from clear_core.encoders import load_encoder

    enc = load_encoder("minilm")
    model, tok = enc.model.eval(), enc.tokenizer
    out = []
    with torch.no_grad():
        for i in tqdm(range(0, len(texts), batch), desc="encode captions", disable=not progress):
            chunk = texts[i : i + batch]
            b = tok(chunk, padding=True, max_length=64, truncation=True, return_tensors="pt")
            states = model(**{k: b[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in b})
            states = states.last_hidden_state
            for j, n in enumerate(b["attention_mask"].sum(1).tolist()):
                out.append(states[j, :n].clone())
    return out


def load_captions(cfg: TrainConfig, progress: bool = True) -> CaptionSet:
    pairs = training_captions(cfg.captions, seed=cfg.seed)
    texts = [c for _, c in pairs]
    key = hashlib.sha256(("\n".join(texts)).encode()).hexdigest()[:16]
    folder = Path(cfg.cache).expanduser()
    path = folder / f"captions-{key}.safetensors"
    if path.is_file():
        data = load_file(path)
        states, offsets, empty = data["states"], data["offsets"].numpy(), data["empty"]
    else:
        encoded = encode_texts(texts + [""], progress)
        empty = encoded.pop().half()
        lengths = np.array([len(e) for e in encoded])
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        states = torch.cat(encoded).half()
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"states": states, "offsets": torch.from_numpy(offsets), "empty": empty}, str(path))
    return CaptionSet(states, offsets, [s for s, _ in pairs], texts, empty)


# ---------------------------------------------------------------------------------------- training
def sample_t(n: int, gen: torch.Generator) -> torch.Tensor:
    """Half logit-normal, half uniform flow times in (0, 1)."""
    logit = torch.sigmoid(torch.randn(n, generator=gen))
    uni = torch.rand(n, generator=gen)
    pick = torch.rand(n, generator=gen) < 0.5
    return torch.where(pick, logit, uni).clamp(1e-4, 1 - 1e-4)


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < 100:
        return cfg.lr * (step + 1) / 100
    p = (step - 100) / max(1, cfg.steps - 100)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def plot_loss(losses: list[float], path: Path, width: int = 640, height: int = 320) -> None:
    """A loss curve (smoothed) as a PNG, drawn with PIL (no plotting library needed)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    if len(losses) >= 2:
        y = np.asarray(losses, dtype=np.float64)
        k = max(1, len(y) // 100)
        y = np.convolve(y, np.ones(k) / k, mode="valid")
        lo, hi = float(y.min()), float(y.max()) or 1.0
        m = 40
        xs = m + np.arange(len(y)) * (width - 2 * m) / max(1, len(y) - 1)
        ys = height - m - (y - lo) / max(hi - lo, 1e-9) * (height - 2 * m)
        draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=(30, 90, 200), width=2)
        draw.rectangle([m, m, width - m, height - m], outline=(0, 0, 0))
        draw.text((m, 8), f"training loss (smoothed over {k} steps): {hi:.3f} -> {y[-1]:.3f}", fill=(0, 0, 0))
        draw.text((m, height - m + 8), f"step 0 .. {len(losses)}", fill=(0, 0, 0))
    img.save(path)


def train(cfg: TrainConfig, progress: bool = True) -> Path:
    from tqdm import tqdm

    from clear_core.testbed.pipeline import default_scheduler

    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    vocabulary = vocabulary_digest()  # of the words the captions below are written with
    data = load_captions(cfg, progress)
    encode_s = time.time() - t0
    torch.manual_seed(cfg.seed)
    model = TestbedTransformer(d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    clean = encode_specs(data.specs, model.codebooks)
    start, losses, train_s = 0, [], 0.0
    ckpt = out / "checkpoint.safetensors"
    if ckpt.is_file():
        model.load_state_dict(load_file(ckpt))
        state = json.loads((out / "checkpoint.json").read_text())
        opt.load_state_dict(torch.load(out / "optimizer.pt", weights_only=True))
        start, losses, train_s = state["step"], state["losses"], state["train_s"]
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + start)
    n = len(data.specs)
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="train", disable=not progress)
    log = (out / "log.jsonl").open("a")
    tick = time.time()
    model.train()
    for step in bar:
        rows = torch.randint(0, n, (cfg.batch,), generator=gen).numpy()
        text = data.batch(rows)
        drop = torch.rand(cfg.batch, generator=gen) < cfg.dropout
        if drop.any():
            text[drop] = 0
            text[drop, : len(data.empty)] = data.empty.float()
        x = clean[torch.from_numpy(rows)].repeat(cfg.noise_draws, 1, 1)
        t = sample_t(len(x), gen)
        eps = torch.randn(x.shape, generator=gen)
        zt = (1 - t)[:, None, None] * x + t[:, None, None] * eps
        pred = model(zt, t * 1000, text, text_repeats=cfg.noise_draws)
        loss = torch.nn.functional.mse_loss(pred, eps - x)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss))
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        if (step + 1) % 50 == 0:
            log.write(
                json.dumps({"step": step + 1, "loss": float(np.mean(losses[-50:])), "lr": lr_at(step, cfg)})
                + "\n"
            )
            log.flush()
        if (step + 1) % cfg.ckpt_every == 0 or step + 1 == cfg.steps:
            train_s += time.time() - tick
            tick = time.time()
            save_file(model.state_dict(), str(ckpt))
            torch.save(opt.state_dict(), out / "optimizer.pt")
            (out / "checkpoint.json").write_text(
                json.dumps({"step": step + 1, "losses": losses, "train_s": train_s})
            )
            plot_loss(losses, out / "loss.png")
    log.close()
    model.eval()
    model.save_pretrained(out / "transformer")
    default_scheduler().save_pretrained(out / "scheduler")
    recipe = {
        "config": asdict(cfg),
        "command": "python -m clear_core.testbed.train " + " ".join(_cli_args(cfg)),
        "steps": len(losses),
        "final_loss_mean_last_100": float(np.mean(losses[-100:])),
        "train_seconds": round(train_s, 1),
        "caption_encode_seconds_this_run": round(encode_s, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
        "vocabulary_sha256": vocabulary,
    }
    (out / "recipe.json").write_text(json.dumps(recipe, indent=2))
    plot_loss(losses, out / "loss.png")
    return out


def _cli_args(cfg: TrainConfig) -> list[str]:
    default = TrainConfig()
    args = []
    for k, v in asdict(cfg).items():
        if v != getattr(default, k):
            args += [f"--{k.replace('_', '-')}", str(v)]
    return args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clear_core.testbed.train", description=__doc__.splitlines()[0]
    )
    default = TrainConfig()
    for k, v in asdict(default).items():
        parser.add_argument(f"--{k.replace('_', '-')}", type=type(v), default=v)
    args = parser.parse_args(argv)
    try:
        cfg = TrainConfig(**vars(args))
    except ValueError as err:
        parser.error(str(err))
    out = train(cfg)
    print(json.dumps(json.loads((out / "recipe.json").read_text()), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
