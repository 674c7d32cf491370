"""Identify a text encoder by its weights, not by the path it was loaded from.

An eraser must refuse an encoder with other weights, but accept the same weights loaded from another
folder, with a trailing slash, by a relative path, inside an in-memory pipeline, or in another dtype
(an eraser searched in float32 applies to the bfloat16 copy a GPU pipeline holds). The fingerprint is

* ``architecture``: a digest of the class name and every parameter's name and shape;
* ``weights``: a digest of evenly spaced samples (16 per tensor) rounded to bfloat16, so float32,
  bfloat16 and float16 copies of the same weights usually agree;
* ``samples``: 64 of those values, compared with a tolerance when the digests differ (a float16 copy
  can round a sample differently from a bfloat16 one).

Sampling reads a few values of every tensor: it costs milliseconds even for a T5-XXL, where hashing
all 10 GB would take seconds. Fine-tuning changes essentially every weight, so samples catch it.
"""

from __future__ import annotations

import hashlib
import weakref

import numpy as np
import torch
from torch import nn

__all__ = ["encoder_fingerprint", "fingerprints_match", "short"]

PER_TENSOR = 16
N_SAMPLES = 64
_CACHE: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()


def encoder_fingerprint(model: nn.Module) -> dict:
    """``{"architecture", "weights", "samples"}`` of ``model`` (cached per module object)."""
    cached = _CACHE.get(model)
    if cached is not None:
        return cached
    arch = hashlib.sha256(type(model).__name__.encode())
    weights = hashlib.sha256()
    values: list[np.ndarray] = []
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda item: item[0]):
            arch.update(f"{name}:{tuple(p.shape)};".encode())
            if p.device.type == "meta" or p.numel() == 0:
                continue  # offloaded to disk: architecture only
            flat = p.detach().reshape(-1)
            idx = torch.linspace(0, flat.numel() - 1, min(PER_TENSOR, flat.numel())).long()
            sample = flat[idx.to(flat.device)].to(torch.bfloat16).float().cpu().numpy()
            weights.update(sample.tobytes())
            values.append(sample)
    every = np.concatenate(values) if values else np.zeros(0, np.float32)
    pick = np.linspace(0, len(every) - 1, min(N_SAMPLES, len(every))).astype(int) if len(every) else []
    fingerprint = {
        "architecture": arch.hexdigest()[:16],
        "weights": weights.hexdigest()[:16],
        "samples": [float(v) for v in every[pick]],
    }
    _CACHE[model] = fingerprint
    return fingerprint


def fingerprints_match(stored: dict, current: dict, rtol: float = 2e-2) -> bool:
    """Same architecture, and the same weights (equal digests, or samples equal within ``rtol``)."""
    if stored.get("architecture") != current.get("architecture"):
        return False
    if stored.get("weights") == current.get("weights"):
        return True
    a = np.asarray(stored.get("samples") or [], dtype=np.float64)
    b = np.asarray(current.get("samples") or [], dtype=np.float64)
    if len(a) == 0 or a.shape != b.shape:
        return False
    return bool(np.allclose(a, b, rtol=rtol, atol=1e-3 * max(float(np.abs(a).max()), 1e-6)))


def short(fingerprint: dict | None) -> str:
    """A short label for messages: ``arch/weights`` digests."""
    if not fingerprint:
        return "no fingerprint"
    return f"{fingerprint.get('architecture', '?')[:8]}/{fingerprint.get('weights', '?')[:8]}"
