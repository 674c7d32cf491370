"""The sparse autoencoder shared by every candidate block (DESIGN.md, "Search").

    f = ReLU((x − b_dec) W_enc + b_enc),   x̂ = f W_dec + b_dec,   L = ||x − x̂||² + λ ||f||₁

Shapes follow SAELens: ``W_enc (d_model, d_sae)``, ``W_dec (d_sae, d_model)``. Decoder rows are kept at
unit norm (renormalised after every optimiser step, as in Anthropic's and SAELens' standard SAE), so
the L1 penalty cannot be dodged by shrinking f and growing W_dec; a feature's activation is then its
coefficient along a unit direction. The SAE sees *normalised* activations (each block divided by its
mean token norm, see search.py), so λ is comparable across blocks and encoders.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn

__all__ = ["SAE", "SAEConfig", "SAEOutput", "SAEStats"]


@dataclass
class SAEConfig:
    """Shape and sparsity of the SAE."""

    d_model: int
    """Width of the activations it reads (384 for MiniLM, 4096 for T5-XXL)."""
    d_sae: int = 2048
    """Number of features (the paper uses 131,072 for d_model 4096; this default fits a 2-core CPU)."""
    l1_coefficient: float = 3e-2
    """λ on the L1 norm of f. Larger than the paper's 1e-4 because inputs here have unit mean norm."""

    def __post_init__(self) -> None:
        if self.d_model < 1 or self.d_sae < 1:
            raise ValueError(f"d_model and d_sae must be ≥ 1, got {self.d_model} and {self.d_sae}")
        if self.l1_coefficient < 0:
            raise ValueError(f"l1_coefficient must be ≥ 0, got {self.l1_coefficient}")


class SAEOutput(NamedTuple):
    features: torch.Tensor
    """(n, d_sae) feature activations f."""
    recon: torch.Tensor
    """(n, d_model) reconstruction x̂."""
    mse: torch.Tensor
    """Scalar: mean over rows of ||x − x̂||²."""
    l1: torch.Tensor
    """Scalar: mean over rows of ||f||₁."""
    loss: torch.Tensor
    """Scalar: mse + λ·l1 (L_SAE)."""


class SAEStats(NamedTuple):
    fvu: float
    """Fraction of variance unexplained: Σ||x − x̂||² / Σ||x − mean(x)||²."""
    l0: float
    """Mean number of active features per row."""
    dead: int
    """Features that never fired on the rows given."""
    n_rows: int
    """How many rows the statistics are over."""


class SAE(nn.Module):
    """A ReLU SAE with a pre-encoder bias and unit-norm decoder rows."""

    def __init__(self, config: SAEConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        d, k = config.d_model, config.d_sae
        w = torch.randn(k, d, generator=generator)
        w = w / w.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(w)
        self.W_enc = nn.Parameter(w.t().clone())  # tied initialisation, untied training
        self.b_enc = nn.Parameter(torch.zeros(k))
        self.b_dec = nn.Parameter(torch.zeros(d))

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.config.d_model:
            raise ValueError(f"SAE expects (n, {self.config.d_model}) inputs, got {tuple(x.shape)}")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(n, d_model) -> (n, d_sae) feature activations."""
        self._check(x)
        return torch.relu((x - self.b_dec) @ self.W_enc + self.b_enc)

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """(n, d_sae) -> (n, d_model) reconstruction, b_dec included."""
        return f @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> SAEOutput:
        f = self.encode(x)
        recon = self.decode(f)
        mse = (x - recon).pow(2).sum(-1).mean()
        l1 = f.abs().sum(-1).mean()
        return SAEOutput(f, recon, mse, l1, mse + self.config.l1_coefficient * l1)

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Project decoder rows back to unit norm (call after each optimiser step)."""
        self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8))

    @torch.no_grad()
    def stats(self, x: torch.Tensor, chunk: int = 4096) -> SAEStats:
        """Health of the SAE on rows ``x``: FVU, L0 and dead features."""
        self._check(x)
        err = total = l0 = 0.0
        fired = torch.zeros(self.config.d_sae, dtype=torch.bool)
        mean = x.mean(0)
        for start in range(0, len(x), chunk):
            rows = x[start : start + chunk]
            out = self(rows)
            err += float((rows - out.recon).pow(2).sum())
            total += float((rows - mean).pow(2).sum())
            active = out.features > 0
            l0 += float(active.sum())
            fired |= active.any(0)
        return SAEStats(err / max(total, 1e-12), l0 / max(len(x), 1), int((~fired).sum()), len(x))

    def config_dict(self) -> dict:
        return asdict(self.config)
