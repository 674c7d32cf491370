"""The testbed's detector: a small CNN that reads one rendered frame and reports its object, style,
public-figure avatar, whether the mannequin is unclothed, and the setting — the testbed's NudeNet and
face-ID. Trained on renders of random specs in every style; held-out accuracy per attribute is
measured at the end of training and stored next to the weights (``assets/testbed/detector/``).

Train: ``python -m clear_core.testbed.detector [--out DIR] [--clips N] [--steps N] [--budget-s S]``
(``--clips 0``, the default, renders fresh clips for every batch; the shipped command is in detector.json).
Use: ``det = load_detector(); preds = det.predict(frames)``; ``concept_present(preds, "parachute")``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from clear_core.paths import asset
from clear_core.testbed.render import render, to_uint8
from clear_core.testbed.world import (
    ARTISTS,
    IDENTITIES,
    OBJECTS,
    PAPER_OBJECTS,
    SETTINGS,
    STYLES,
    SceneSpec,
    sample_spec,
)

HEADS: dict[str, tuple[str, ...]] = {
    "object": OBJECTS,
    "style": STYLES,
    "avatar": IDENTITIES,
    "unclothed": ("no", "yes"),
    "setting": SETTINGS,
}
"""Attribute -> class names, in output order."""

DETECTOR_DIR = asset("testbed", "detector")
NAME = "testbed-cnn"
VERSION = "2"


def labels_of(spec: SceneSpec) -> dict[str, int]:
    """Ground-truth class index per head for every frame of a spec's clip."""
    return {
        "object": OBJECTS.index(spec.object),
        "style": STYLES.index(spec.style),
        "avatar": IDENTITIES.index(spec.identity),
        "unclothed": int(spec.clothing == "unclothed"),
        "setting": SETTINGS.index(spec.setting),
        "figure": int(spec.subject != "none"),
    }


class DetectorNet(nn.Module):
    """Conv blocks from full resolution (fine details: dimples vs seams), then global max and mean
    pooling (an object may be anywhere in the frame) and one linear head per attribute.

    ``stem`` extra conv layers run at full 64×64 resolution before the first pooling, so that a
    10 px sprite is seen by more than one layer before it is halved (0 = the version-2 layout)."""

    def __init__(self, width: int = 16, stem: int = 0):
        super().__init__()
        if width < 1 or stem < 0:
            raise ValueError(f"width must be ≥ 1 and stem ≥ 0, got width={width}, stem={stem}")
        chans = [3, width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(chans[:-1], chans[1:], strict=True)):
            layers += [nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
            if i == 0:
                for _ in range(stem):
                    layers += [nn.Conv2d(b, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
            layers.append(nn.MaxPool2d(2))
        layers += [
            nn.Conv2d(8 * width, 8 * width, 3, padding=1),
            nn.BatchNorm2d(8 * width),
            nn.ReLU(inplace=True),
        ]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(16 * width + 8 * width * 16, 256), nn.ReLU(inplace=True))
        self.heads = nn.ModuleDict({k: nn.Linear(256, len(v)) for k, v in HEADS.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: (N, 3, 64, 64) float in [0, 1] -> logits per head."""
        f = self.features(x * 2 - 1)  # (N, 8w, 4, 4)
        pooled = torch.cat([f.amax((2, 3)), f.mean((2, 3)), f.flatten(1)], dim=1)
        h = self.fc(pooled)
        return {k: head(h) for k, head in self.heads.items()}


def _as_input(frames: np.ndarray) -> torch.Tensor:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (N, H, W, 3), got {frames.shape}")
    if frames.dtype == np.uint8:
        x = torch.from_numpy(frames).float() / 255.0
    else:
        x = torch.from_numpy(np.clip(frames, 0, 1).astype(np.float32))
    x = x.permute(0, 3, 1, 2)
    if x.shape[-2:] != (64, 64):
        x = torch.nn.functional.interpolate(x, size=(64, 64), mode="nearest")
    return x


@dataclass
class Detector:
    """A loaded detector. ``predict`` works on any (N, H, W, 3) frames (uint8, or float in [0, 1])."""

    net: DetectorNet
    meta: dict
    sha256: str
    name: str = NAME
    version: str = VERSION

    @torch.no_grad()
    def predict(self, frames: np.ndarray, batch: int = 512) -> dict[str, np.ndarray]:
        """Per frame: ``<head>`` the predicted class name (str array), ``<head>_probs`` (N, C) float32;
        ``unclothed`` is a bool array and ``unclothed_prob`` its probability."""
        x = _as_input(frames)
        probs: dict[str, list[np.ndarray]] = {k: [] for k in HEADS}
        for i in range(0, len(x), batch):
            out = self.net(x[i : i + batch])
            for k, v in out.items():
                probs[k].append(torch.softmax(v, -1).numpy())
        result: dict[str, np.ndarray] = {}
        for k, names in HEADS.items():
            p = np.concatenate(probs[k]) if probs[k] else np.zeros((0, len(names)), np.float32)
            if k == "unclothed":
                result["unclothed_prob"] = p[:, 1].astype(np.float32)
                result["unclothed"] = p[:, 1] > 0.5
            else:
                result[f"{k}_probs"] = p.astype(np.float32)
                result[k] = np.asarray(names)[p.argmax(-1)] if len(p) else np.zeros(0, dtype="<U1")
        return result

    def report(self) -> dict:
        """Name, version, weights hash and measured held-out accuracy (for run reports)."""
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "accuracy": self.meta.get("accuracy"),
        }


def concept_attribute(slug: str) -> tuple[str, str | None]:
    """The detector head and class that stand for a built-in pack's concept, or for one of the world's
    look-alike objects (``tennis_ball``, ``trumpet``, ...: their rate is what a preserve list keeps)."""
    if slug in PAPER_OBJECTS or slug in OBJECTS[1:]:
        return "object", slug
    if slug in ARTISTS:
        return "style", slug
    if slug in IDENTITIES[1:]:
        return "avatar", slug
    if slug == "nudity":
        return "unclothed", None
    raise ValueError(f"no testbed attribute for concept {slug!r}")


def concept_present(predictions: dict[str, np.ndarray], slug: str) -> np.ndarray:
    """(N,) bool: frames in which the detector finds the concept of pack ``slug``."""
    head, cls = concept_attribute(slug)
    if head == "unclothed":
        return np.asarray(predictions["unclothed"], dtype=bool)
    return np.asarray(predictions[head]) == cls


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_detector(path: str | Path | None = None) -> Detector:
    """The shipped detector (``assets/testbed/detector``) or one trained into ``path``."""
    folder = Path(path) if path else DETECTOR_DIR
    weights, meta_path = folder / "detector.safetensors", folder / "detector.json"
    if not weights.is_file() or not meta_path.is_file():
        raise ValueError(f"no detector in {folder}; train one: python -m clear_core.testbed.detector")
    meta = json.loads(meta_path.read_text())
    net = DetectorNet(meta.get("width", 16), meta.get("stem", 0))
    net.load_state_dict(load_file(weights))
    net.eval()
    return Detector(net, meta, _sha256(weights))


# ---------------------------------------------------------------------------------------- training
def _spec(rng: np.random.Generator, avatar_share: float = 0.0) -> SceneSpec:
    """A random spec; with probability ``avatar_share`` one redrawn until it shows an avatar (avatars
    are only ~13% of random frames, so their recall needs more examples than accuracy suggests)."""
    spec = sample_spec(rng)
    if avatar_share > 0 and rng.random() < avatar_share:
        while spec.identity == "none":
            spec = sample_spec(rng)
    return spec


def render_dataset(
    n_clips: int, seed: int, frames_per_clip: int = 2, avatar_share: float = 0.0
) -> tuple[np.ndarray, dict[str, np.ndarray], list[SceneSpec]]:
    """uint8 frames (n_clips·frames_per_clip, 64, 64, 3) of random specs, their labels, and the spec
    of every frame."""
    rng = np.random.default_rng(seed)
    xs, specs, ys = [], [], {k: [] for k in [*HEADS, "figure"]}
    for _ in range(n_clips):
        spec = _spec(rng, avatar_share)
        clip = render(spec)
        for f in rng.choice(len(clip), size=frames_per_clip, replace=False):
            xs.append(to_uint8(clip[f]))
            specs.append(spec)
            for k, v in labels_of(spec).items():
                ys[k].append(v)
    return np.stack(xs), {k: np.asarray(v) for k, v in ys.items()}, specs


def accuracy(
    det: Detector, frames: np.ndarray, labels: dict[str, np.ndarray], specs: list[SceneSpec] | None = None
) -> dict[str, float]:
    """Share of frames where each head is right; ``unclothed_on_figures``: on frames with a figure;
    ``avatar_present``: avatar recall on frames that show one, ``avatar_recall/<name>`` per avatar;
    with ``specs``, ``object_by_style/<style>`` and ``object_by_camera/<camera>``."""
    pred = det.predict(frames)
    out = {}
    for k, names in HEADS.items():
        if k == "unclothed":
            right = pred["unclothed"].astype(int) == labels[k]
            out[k] = float(np.mean(right))
            out["unclothed_on_figures"] = float(np.mean(right[labels["figure"] == 1]))
        else:
            out[k] = float(np.mean(pred[k] == np.asarray(names)[labels[k]]))
    avatar_right = pred["avatar"] == np.asarray(IDENTITIES)[labels["avatar"]]
    if (labels["avatar"] > 0).any():
        out["avatar_present"] = float(np.mean(avatar_right[labels["avatar"] > 0]))
    for i, name in enumerate(IDENTITIES):
        if (labels["avatar"] == i).any():
            out[f"avatar_recall/{name}"] = float(np.mean(avatar_right[labels["avatar"] == i]))
    if specs is not None:
        object_right = pred["object"] == np.asarray(OBJECTS)[labels["object"]]
        for attr in ("style", "camera"):
            values = np.asarray([getattr(s, attr) for s in specs])
            for v in sorted(set(values)):
                out[f"object_by_{attr}/{v}"] = float(np.mean(object_right[values == v]))
    return out


def _augment(x: torch.Tensor, gen: np.random.Generator) -> torch.Tensor:
    """Random horizontal flips and shifts of up to 4 px (edge-replicated): more views of the same labels."""
    flip = torch.from_numpy(gen.random(len(x)) < 0.5)
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    dy, dx = (int(v) for v in gen.integers(-4, 5, size=2))
    x = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="replicate")
    return x[:, :, 4 + dy : 4 + dy + 64, 4 + dx : 4 + dx + 64]


@dataclass
class TrainConfig:
    """A detector training run; ``command`` in detector.json rebuilds it."""

    clips: int = 0
    """Pre-rendered training clips; 0 renders fresh clips for every batch (endless data)."""
    steps: int = 2500
    """Optimiser steps (the learning-rate schedule spans them, or ``budget_s`` if that ends first)."""
    batch: int = 128
    lr: float = 2e-3
    seed: int = 0
    threads: int = 1
    frames_per_clip: int = 2
    """Frames taken from each rendered clip."""
    width: int = 16
    """Channels of the first conv block (the net is ~0.85 M parameters at 16)."""
    stem: int = 0
    """Extra full-resolution conv layers before the first pooling."""
    avatar_share: float = 0.0
    """Share of training clips redrawn until they show an avatar."""
    budget_s: float = 0.0
    """Wall-clock budget of the optimisation in seconds (0: none); the schedule ends with it."""
    heldout_clips: int = 1500
    init: str | None = None
    """Detector folder to start from (fine-tuning; same width and stem)."""
    augment: bool = True

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "threads", "frames_per_clip", "width", "heldout_clips"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.clips < 0 or self.budget_s < 0 or self.stem < 0:
            raise ValueError("clips, budget_s and stem must be ≥ 0")
        if not 0 <= self.avatar_share < 1:
            raise ValueError(f"avatar_share must lie in [0, 1), got {self.avatar_share}")
        if not 1 <= self.frames_per_clip <= 8:
            raise ValueError(f"frames_per_clip must lie in 1..8, got {self.frames_per_clip}")

    def command(self, out: Path) -> str:
        cmd = (
            f"python -m clear_core.testbed.detector --out {out} --clips {self.clips} --steps {self.steps} "
            f"--batch {self.batch} --lr {self.lr} --seed {self.seed} --frames-per-clip {self.frames_per_clip} "
            f"--width {self.width} --stem {self.stem} --avatar-share {self.avatar_share} "
            f"--budget-s {self.budget_s:g}"
        )
        cmd += f" --init {self.init}" if self.init else ""
        return cmd + ("" if self.augment else " --no-augment")


def _fresh_batch(cfg: TrainConfig, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    n_clips = -(-cfg.batch // cfg.frames_per_clip)
    x, y, _ = render_dataset(n_clips, int(rng.integers(2**31)), cfg.frames_per_clip, cfg.avatar_share)
    return x[: cfg.batch], {k: v[: cfg.batch] for k, v in y.items()}


def _save(net: DetectorNet, out: Path, meta: dict) -> Detector:
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "detector.safetensors"
    save_file(net.state_dict(), str(weights))
    (out / "detector.json").write_text(json.dumps(meta, indent=2))
    return Detector(net, meta, _sha256(weights))


def train(out: Path, cfg: TrainConfig, progress: bool = True, checkpoint_every: int = 500) -> dict:
    """Train (or fine-tune) a detector into ``out``; returns the metadata written to detector.json,
    with held-out accuracy on ``cfg.heldout_clips`` × 2 fresh renders (seed + 10,000)."""
    from tqdm import tqdm

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    t0 = time.time()
    x_train, y_train = None, None
    if cfg.clips:
        x_train, y_train, _ = render_dataset(cfg.clips, cfg.seed, cfg.frames_per_clip, cfg.avatar_share)
    x_test, y_test, test_specs = render_dataset(cfg.heldout_clips, cfg.seed + 10_000)
    render_s = time.time() - t0
    net = DetectorNet(cfg.width, cfg.stem)
    if cfg.init is not None:
        net.load_state_dict(load_file(Path(cfg.init) / "detector.safetensors"))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    gen = np.random.default_rng(cfg.seed)
    loss_fn = nn.CrossEntropyLoss()
    meta = {
        "name": NAME,
        "version": VERSION,
        "width": cfg.width,
        "stem": cfg.stem,
        "heads": {k: list(v) for k, v in HEADS.items()},
        "recipe": asdict(cfg),
        "command": cfg.command(out),
    }
    t1 = time.time()
    net.train()
    bar = tqdm(range(cfg.steps), desc="detector", disable=not progress)
    steps_done = 0
    for step in bar:
        # warm-up over 5%, then cosine to zero, over whichever ends first: steps or the time budget
        done = step / cfg.steps
        if cfg.budget_s:
            done = max(done, (time.time() - t1) / cfg.budget_s)
        if done >= 1:
            break
        warm = min(1.0, done / 0.05)
        for g in opt.param_groups:
            g["lr"] = cfg.lr * warm * 0.5 * (1 + np.cos(np.pi * done))
        if x_train is None:
            xb, yb = _fresh_batch(cfg, gen)
        else:
            rows = gen.integers(0, len(x_train), cfg.batch)
            xb, yb = x_train[rows], {k: v[rows] for k, v in y_train.items()}
        x = _as_input(xb)
        if cfg.augment:
            x = _augment(x, gen)
        outs = net(x)
        loss = sum(loss_fn(outs[k], torch.from_numpy(yb[k]).long()) for k in HEADS)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
        steps_done = step + 1
        if checkpoint_every and step and step % checkpoint_every == 0:
            net.eval()
            _save(net, out / "checkpoint", {**meta, "steps_done": steps_done})
            net.train()
    net.eval()
    train_s = time.time() - t1
    det = _save(net, out, meta)
    t2 = time.time()
    meta.update(
        steps_done=steps_done,
        accuracy=accuracy(det, x_test, y_test, test_specs),
        heldout_frames=int(len(x_test)),
        render_seconds=round(render_s, 1),
        train_seconds=round(train_s, 1),
        eval_seconds=round(time.time() - t2, 1),
    )
    (out / "detector.json").write_text(json.dumps(meta, indent=2))
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clear_core.testbed.detector", description="Train the testbed detector."
    )
    d = TrainConfig()
    parser.add_argument("--out", default=str(DETECTOR_DIR))
    parser.add_argument("--clips", type=int, default=d.clips, help="0: fresh renders every batch")
    parser.add_argument("--steps", type=int, default=d.steps)
    parser.add_argument("--batch", type=int, default=d.batch)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--threads", type=int, default=d.threads)
    parser.add_argument("--frames-per-clip", type=int, default=d.frames_per_clip)
    parser.add_argument("--width", type=int, default=d.width)
    parser.add_argument("--stem", type=int, default=d.stem)
    parser.add_argument("--avatar-share", type=float, default=d.avatar_share)
    parser.add_argument("--budget-s", type=float, default=d.budget_s, help="wall-clock budget (0: none)")
    parser.add_argument("--heldout-clips", type=int, default=d.heldout_clips)
    parser.add_argument("--init", help="start from the weights in this detector folder (fine-tuning)")
    parser.add_argument("--no-augment", action="store_true")
    args = parser.parse_args(argv)
    cfg = TrainConfig(
        clips=args.clips,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        seed=args.seed,
        threads=args.threads,
        frames_per_clip=args.frames_per_clip,
        width=args.width,
        stem=args.stem,
        avatar_share=args.avatar_share,
        budget_s=args.budget_s,
        heldout_clips=args.heldout_clips,
        init=args.init,
        augment=not args.no_augment,
    )
    meta = train(Path(args.out), cfg)
    print(json.dumps(meta["accuracy"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
