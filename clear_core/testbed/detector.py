"""The testbed's detector: a small CNN that reads one rendered frame and reports its object, style,
public-figure avatar, whether the mannequin is unclothed, and the setting — the testbed's NudeNet and
face-ID. Trained on renders of random specs in every style; held-out accuracy per attribute is
measured at the end of training and stored next to the weights (``assets/testbed/detector/``).

Train: ``python -m clear_core.testbed.detector [--out DIR] [--clips N] [--steps N]``.
Use: ``det = load_detector(); preds = det.predict(frames)``; ``concept_present(preds, "parachute")``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

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

DETECTOR_DIR = Path(__file__).resolve().parents[2] / "assets" / "testbed" / "detector"
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
    pooling (an object may be anywhere in the frame) and one linear head per attribute."""

    def __init__(self, width: int = 16):
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:], strict=True):
            layers += [
                nn.Conv2d(a, b, 3, padding=1),
                nn.BatchNorm2d(b),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
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
    """The detector head and class that stand for a built-in pack's concept."""
    if slug in PAPER_OBJECTS:
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
    net = DetectorNet(meta.get("width", 16))
    net.load_state_dict(load_file(weights))
    net.eval()
    return Detector(net, meta, _sha256(weights))


# ---------------------------------------------------------------------------------------- training
def render_dataset(
    n_clips: int, seed: int, frames_per_clip: int = 2
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """uint8 frames (n_clips·frames_per_clip, 64, 64, 3) of random specs, and their labels."""
    rng = np.random.default_rng(seed)
    xs, ys = [], {k: [] for k in [*HEADS, "figure"]}
    for _ in range(n_clips):
        spec = sample_spec(rng)
        clip = render(spec)
        for f in rng.choice(len(clip), size=frames_per_clip, replace=False):
            xs.append(to_uint8(clip[f]))
            for k, v in labels_of(spec).items():
                ys[k].append(v)
    return np.stack(xs), {k: np.asarray(v) for k, v in ys.items()}


def accuracy(det: Detector, frames: np.ndarray, labels: dict[str, np.ndarray]) -> dict[str, float]:
    """Share of frames where each head is right; ``unclothed_on_figures``: on frames with a figure."""
    pred = det.predict(frames)
    out = {}
    for k, names in HEADS.items():
        if k == "unclothed":
            right = pred["unclothed"].astype(int) == labels[k]
            out[k] = float(np.mean(right))
            out["unclothed_on_figures"] = float(np.mean(right[labels["figure"] == 1]))
        else:
            out[k] = float(np.mean(pred[k] == np.asarray(names)[labels[k]]))
    return out


def _augment(x: torch.Tensor, gen: np.random.Generator) -> torch.Tensor:
    """Random horizontal flips and shifts of up to 4 px (edge-replicated): more views of the same labels."""
    flip = torch.from_numpy(gen.random(len(x)) < 0.5)
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    dy, dx = (int(v) for v in gen.integers(-4, 5, size=2))
    x = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="replicate")
    return x[:, :, 4 + dy : 4 + dy + 64, 4 + dx : 4 + dx + 64]


def train(
    out: Path,
    clips: int = 16000,
    steps: int = 2500,
    batch: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    threads: int = 1,
    progress: bool = True,
    frames_per_clip: int = 2,
    init: Path | None = None,
    augment: bool = True,
) -> dict:
    from tqdm import tqdm

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    t0 = time.time()
    x_train, y_train = render_dataset(clips, seed, frames_per_clip)
    x_test, y_test = render_dataset(1500, seed + 10_000)
    render_s = time.time() - t0
    net = DetectorNet()
    if init is not None:
        net.load_state_dict(load_file(Path(init) / "detector.safetensors"))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    gen = np.random.default_rng(seed)
    loss_fn = nn.CrossEntropyLoss()
    t1 = time.time()
    net.train()
    bar = tqdm(range(steps), desc="detector", disable=not progress)
    for _ in bar:
        rows = gen.integers(0, len(x_train), batch)
        x = _as_input(x_train[rows])
        if augment:
            x = _augment(x, gen)
        outs = net(x)
        loss = sum(loss_fn(outs[k], torch.from_numpy(y_train[k][rows]).long()) for k in HEADS)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{float(loss):.3f}")
    net.eval()
    train_s = time.time() - t1
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "detector.safetensors"
    save_file(net.state_dict(), str(weights))
    det = Detector(net, {}, _sha256(weights))
    acc = accuracy(det, x_test, y_test)
    meta = {
        "name": NAME,
        "version": VERSION,
        "width": 16,
        "heads": {k: list(v) for k, v in HEADS.items()},
        "accuracy": acc,
        "heldout_frames": int(len(x_test)),
        "recipe": {
            "clips": clips,
            "frames_per_clip": 2,
            "steps": steps,
            "batch": batch,
            "lr": lr,
            "seed": seed,
        },
        "render_seconds": round(render_s, 1),
        "train_seconds": round(train_s, 1),
        "command": (
            f"python -m clear_core.testbed.detector --out {out} --clips {clips} --frames-per-clip {frames_per_clip} "
            f"--steps {steps} --batch {batch} --lr {lr} --seed {seed}" + (f" --init {init}" if init else "")
        ),
    }
    (out / "detector.json").write_text(json.dumps(meta, indent=2))
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clear_core.testbed.detector", description="Train the testbed detector."
    )
    parser.add_argument("--out", default=str(DETECTOR_DIR))
    parser.add_argument("--clips", type=int, default=16000)
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--frames-per-clip", type=int, default=2)
    parser.add_argument("--init", help="start from the weights in this detector folder (fine-tuning)")
    parser.add_argument("--no-augment", action="store_true")
    args = parser.parse_args(argv)
    meta = train(
        Path(args.out),
        args.clips,
        args.steps,
        args.batch,
        args.lr,
        args.seed,
        args.threads,
        frames_per_clip=args.frames_per_clip,
        init=Path(args.init) if args.init else None,
        augment=not args.no_augment,
    )
    print(json.dumps(meta["accuracy"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
