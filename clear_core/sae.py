"""The sparse autoencoder shared by every candidate block (DESIGN.md, "Search").

    pre = (x − b_dec) W_enc + b_enc,   f = σ(pre),   x̂ = f W_dec + b_dec

Shapes follow SAELens: ``W_enc (d_model, d_sae)``, ``W_dec (d_sae, d_model)``. Three activations σ,
chosen by ``SAEConfig.kind``:

* ``"relu"`` — f = ReLU(pre), L = ||x − x̂||² + λ Σᵢ fᵢ·||W_dec,i|| (SAELens' standard SAE: the L1 is
  weighted by each decoder row's norm instead of forcing rows to unit norm, so the penalty cannot be
  dodged by shrinking f and growing W_dec, and the optimiser is never fought by a projection).
* ``"topk"`` — f keeps the k largest ReLU(pre) of each row (Gao et al. 2024). L0 is exactly k; no λ
  to tune. An auxiliary loss (AuxK) makes dead features reconstruct the residual error so they revive.
* ``"batchtopk"`` — the k·n largest activations over a batch of n rows while training (L0 is k on
  average, rows may use more or fewer); at inference a learned threshold replaces the batch (JumpReLU),
  so every token is edited on its own. The same AuxK loss.

After training, :meth:`SAE.fold_decoder_norm` rescales every feature so its decoder row has unit norm
without changing the function (SAELens' ``fold_W_dec_norm``): a feature's activation is then its
coefficient along a unit direction, which is what the erasure masks compare.

The SAE sees *normalised* activations (each block divided by its mean token norm, see search.py), so
λ and k are comparable across blocks and encoders. Erasers saved before ``kind`` existed store only
``{"d_model", "d_sae", "l1_coefficient"}``; they load as ``kind="relu"``, which they are.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clear_core.config import SAE_KINDS

__all__ = ["SAE", "SAE_KINDS", "SAEConfig", "SAEOutput", "SAEStats", "SparseSAEOutput", "sae_update"]


@dataclass
class SAEConfig:
    """Shape and sparsity of the SAE (defaults of a plain ``SAEConfig(d_model)``: the L1 SAE)."""

    d_model: int
    """Width of the activations it reads (384 for MiniLM, 4096 for T5-XXL)."""
    d_sae: int = 2048
    """Number of features (the paper uses 131,072 for d_model 4096; this default fits a 2-core CPU)."""
    l1_coefficient: float = 3e-2
    """λ on the decoder-norm-weighted L1 of f (kind "relu" only). Inputs have unit mean norm."""
    kind: str = "relu"
    """"relu" (L1 penalty), "topk" or "batchtopk" (fixed number of active features)."""
    k: int = 32
    """Active features per row for "topk" (exact) and "batchtopk" (on average)."""
    aux_coefficient: float = 1 / 32
    """Weight of the AuxK loss on dead features (Gao et al.'s 1/32); top-k kinds only."""
    dead_after: int = 50
    """A feature that has not fired for this many training updates counts as dead for AuxK."""
    decoder_init_norm: float = 0.1
    """Decoder row norm at initialisation of the L1 SAE (SAELens' default; top-k SAEs start at 1)."""

    def __post_init__(self) -> None:
        if self.d_model < 1 or self.d_sae < 1:
            raise ValueError(f"d_model and d_sae must be ≥ 1, got {self.d_model} and {self.d_sae}")
        if self.l1_coefficient < 0:
            raise ValueError(f"l1_coefficient must be ≥ 0, got {self.l1_coefficient}")
        if self.kind not in SAE_KINDS:
            raise ValueError(f"kind must be one of {SAE_KINDS}, got {self.kind!r}")
        if self.k < 1 or (self.kind != "relu" and self.k > self.d_sae):
            raise ValueError(f"k must be in 1..d_sae ({self.d_sae}), got {self.k}")
        if self.aux_coefficient < 0 or self.dead_after < 1 or not self.decoder_init_norm > 0:
            raise ValueError("aux_coefficient must be ≥ 0, dead_after ≥ 1 and decoder_init_norm > 0")


class SAEOutput(NamedTuple):
    features: torch.Tensor
    """(n, d_sae) feature activations f."""
    recon: torch.Tensor
    """(n, d_model) reconstruction x̂."""
    mse: torch.Tensor
    """Scalar: mean over rows of ||x − x̂||²."""
    l1: torch.Tensor
    """Scalar: mean over rows of ||f||₁ (reported for every kind; penalised only by "relu")."""
    loss: torch.Tensor
    """Scalar: L_SAE = mse + λ·(decoder-weighted l1) for "relu"; mse + aux_coefficient·aux for top-k."""
    aux: torch.Tensor | float = 0.0
    """Scalar AuxK loss (0 for "relu", outside training, or when no feature is dead)."""


class SparseSAEOutput(NamedTuple):
    """A top-k SAE's forward pass kept sparse: the k active features of every row, by index.

    The search's hot path (:meth:`SAE.forward_topk`): decoding k of d_sae features per row as an
    ``embedding_bag`` costs k/d_sae of a dense ``f @ W_dec``, its backward likewise, and statistics
    over features (masks, L_con, firing counts) are sums over the active entries only.
    """

    values: torch.Tensor
    """(n, k) activations of the active features (ReLU of the top-k pre-activations; may hold zeros)."""
    indices: torch.Tensor
    """(n, k) int64 feature index of each value."""
    recon: torch.Tensor
    """(n, d_model) reconstruction x̂."""
    mse: torch.Tensor
    """Scalar: mean over rows of ||x − x̂||²."""
    l1: torch.Tensor
    """Scalar: mean over rows of ||f||₁."""
    loss: torch.Tensor
    """Scalar: mse + aux_coefficient·aux."""
    d_sae: int
    """Number of features (the width of :attr:`features`)."""
    aux: torch.Tensor | float = 0.0
    """Scalar AuxK loss (0 outside training or when no feature is dead)."""

    @property
    def features(self) -> torch.Tensor:
        """(n, d_sae) dense activations, built on demand (equal to :meth:`SAE.forward`'s)."""
        dense = self.values.new_zeros(self.values.shape[0], self.d_sae)
        return dense.scatter(-1, self.indices, self.values)

    def feature_means(self, rows: slice = slice(None)) -> torch.Tensor:
        """(d_sae,) mean activation of every feature over ``rows`` (zeros included), without densifying."""
        values, indices = self.values[rows], self.indices[rows]
        total = torch.zeros(self.d_sae, dtype=values.dtype).index_add_(0, indices.flatten(), values.flatten())
        return total / max(values.shape[0], 1)


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
    """A sparse autoencoder with a pre-encoder bias; see the module docstring for the three kinds."""

    def __init__(self, config: SAEConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        d, k = config.d_model, config.d_sae
        w = torch.randn(k, d, generator=generator)
        norm = config.decoder_init_norm if config.kind == "relu" else 1.0  # top-k rows stay unit
        w = w / w.norm(dim=1, keepdim=True) * norm
        self.W_dec = nn.Parameter(w)
        self.W_enc = nn.Parameter(w.t().clone())  # tied initialisation, untied training
        self.b_enc = nn.Parameter(torch.zeros(k))
        self.b_dec = nn.Parameter(torch.zeros(d))
        if config.kind == "batchtopk":
            # Inference threshold (JumpReLU): running mean of the smallest activation kept per batch.
            self.register_buffer("threshold", torch.zeros(()))
        # Updates since each feature last fired (AuxK's notion of dead); not part of the artifact.
        self.register_buffer("_since_fired", torch.zeros(k, dtype=torch.long), persistent=False)

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.config.d_model:
            raise ValueError(f"SAE expects (n, {self.config.d_model}) inputs, got {tuple(x.shape)}")

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """(n, d_model) -> (n, d_sae) encoder output before the sparsifying activation."""
        self._check(x)
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        """The kind's sparsifying activation σ on pre-activations ``(n, d_sae)``."""
        kind, k = self.config.kind, self.config.k
        if kind == "relu":
            return torch.relu(pre)
        if kind == "topk":
            values, idx = top_k(pre, k)
            return torch.zeros_like(pre).scatter(-1, idx, torch.relu(values))
        if self.training:  # batchtopk: top k·n over the whole batch
            flat = torch.relu(pre).flatten()
            values, idx = flat.topk(min(k * pre.shape[0], flat.numel()))
            return torch.zeros_like(flat).scatter(-1, idx, values).view_as(pre)
        return pre * (pre > self.threshold)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(n, d_model) -> (n, d_sae) feature activations."""
        return self.activate(self.pre_activation(x))

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """(n, d_sae) -> (n, d_model) reconstruction, b_dec included."""
        return f @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> SAEOutput:
        c = self.config
        pre = self.pre_activation(x)
        f = self.activate(pre)
        recon = self.decode(f)
        mse = (x - recon).pow(2).sum(-1).mean()
        l1 = f.abs().sum(-1).mean()
        if c.kind == "relu":
            penalty = (f.abs() * self.W_dec.norm(dim=1)).sum(-1).mean()
            return SAEOutput(f, recon, mse, l1, mse + c.l1_coefficient * penalty)
        aux = self._aux_loss(x, recon, pre) if self.training else 0.0
        return SAEOutput(f, recon, mse, l1, mse + c.aux_coefficient * aux, aux)

    def forward_topk(self, x: torch.Tensor) -> SparseSAEOutput:
        """:meth:`forward` of a ``"topk"`` SAE with the features kept sparse (same function and loss up
        to float rounding; gradients reach the same parameters and the input)."""
        c = self.config
        if c.kind != "topk":
            raise ValueError(f"forward_topk needs a 'topk' SAE, not {c.kind!r}")
        with torch.no_grad():  # dense pre-activations only rank the features; gradients stay sparse
            pre = self.pre_activation(x)
        centred = x - self.b_dec
        top, indices = top_k(pre, c.k)
        chosen = _Chosen(indices, c.d_sae)
        values = torch.relu(_SparseEncode.apply(centred, self.W_enc, self.b_enc, top, chosen))
        recon = _SparseDecode.apply(values, self.W_dec, chosen) + self.b_dec
        mse = (x - recon).pow(2).sum(-1).mean()
        l1 = values.sum(-1).mean()
        aux = self._aux_loss(x, recon, pre, centred) if self.training else 0.0
        return SparseSAEOutput(values, indices, recon, mse, l1, mse + c.aux_coefficient * aux, c.d_sae, aux)

    def _aux_loss(
        self, x: torch.Tensor, recon: torch.Tensor, pre: torch.Tensor, centred: torch.Tensor | None = None
    ) -> torch.Tensor | float:
        """AuxK: the dead features' top activations reconstruct the (detached) residual error.
        With ``centred`` (x − b_dec; :meth:`forward_topk`), ``pre`` is the detached ranking and the
        chosen activations get their gradient sparsely."""
        dead = self._since_fired >= self.config.dead_after
        n_dead = int(dead.sum())
        if n_dead == 0:
            return 0.0
        k_aux = self.config.d_model // 2
        scale = min(n_dead / k_aux, 1.0)
        residual = (x - recon).detach()
        if centred is not None:  # select among the dead columns only (a mostly −inf row stalls introselect)
            columns = dead.nonzero().flatten()
            values, picked = top_k(pre[:, columns], min(k_aux, n_dead))
            idx = columns[picked]
            chosen = _Chosen(idx, self.config.d_sae)
            values = torch.relu(_SparseEncode.apply(centred, self.W_enc, self.b_enc, values, chosen))
            aux_recon = _SparseDecode.apply(values, self.W_dec, chosen)
        else:
            masked = torch.where(dead, pre, torch.full_like(pre, -torch.inf))
            values, idx = masked.topk(min(k_aux, n_dead), dim=-1)
            aux_recon = torch.zeros_like(pre).scatter(-1, idx, torch.relu(values)) @ self.W_dec
        return scale * (aux_recon - residual).pow(2).sum(-1).mean()

    @torch.no_grad()
    def record_firing(self, features: torch.Tensor | SparseSAEOutput) -> None:
        """After a training update: count updates since each feature fired; refresh the threshold.
        ``features``: dense (n, d_sae) activations, or a :class:`SparseSAEOutput`."""
        if isinstance(features, SparseSAEOutput):
            fired = torch.zeros(self.config.d_sae, dtype=torch.bool)
            fired[features.indices[features.values > 0]] = True
            self._since_fired.add_(1).masked_fill_(fired, 0)
            return
        fired = (features > 0).any(0)
        self._since_fired.add_(1).masked_fill_(fired, 0)
        if self.config.kind == "batchtopk":
            active = features[features > 0]
            if active.numel():
                lowest = active.min()
                if float(self.threshold) == 0:
                    self.threshold.copy_(lowest)
                else:
                    self.threshold.mul_(0.99).add_(0.01 * lowest)

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Project decoder rows back to unit norm (changes the function; see fold_decoder_norm)."""
        self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8))

    @torch.no_grad()
    def fold_decoder_norm(self) -> None:
        """Give every decoder row unit norm and scale its feature by the old norm: same x̂, same L0.

        Exact for "relu" (ReLU commutes with a positive scale). Top-k SAEs are trained with unit rows
        (see :func:`sae_update`), so for them this is a no-op.
        """
        norms = self.W_dec.norm(dim=1).clamp_min(1e-8)
        self.W_dec.div_(norms[:, None])
        self.W_enc.mul_(norms)
        self.b_enc.mul_(norms)

    @property
    def dead_share(self) -> float:
        """Share of features that have not fired for ``dead_after`` updates (0 before training)."""
        return float((self._since_fired >= self.config.dead_after).float().mean())

    @torch.no_grad()
    def stats(self, x: torch.Tensor, chunk: int = 4096) -> SAEStats:
        """Health of the SAE on rows ``x`` (in eval mode): FVU, L0 and dead features."""
        self._check(x)
        was_training = self.training
        self.eval()
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
        self.train(was_training)
        return SAEStats(err / max(total, 1e-12), l0 / max(len(x), 1), int((~fired).sum()), len(x))

    def config_dict(self) -> dict:
        return asdict(self.config)


def top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, indices) of the k largest entries in every row of ``scores (n, d)``, in no particular
    order within a row: the set ``scores.topk(k, sorted=False)`` gives (ties broken either way).

    On CPU, numpy's introselect (``argpartition``) on one thread takes about two thirds of
    ``torch.topk``'s time on two at the search's shape (970 × 2048, k = 64), right after a matrix
    product as in the search. (Two numpy threads are faster on a quiet machine but not there: torch's
    OpenMP workers spin for milliseconds after each parallel op and take the second core.) Anything
    small, on another device or keeping a gradient goes to ``torch.topk``."""
    n, d = scores.shape
    if (
        scores.device.type != "cpu"
        or scores.dtype not in (torch.float32, torch.float64)
        or scores.requires_grad
        or n < 64
        or not 0 < k < d
    ):
        return scores.topk(k, dim=-1, sorted=False)
    array = scores.numpy()  # in blocks of rows: argpartition's full (rows, d) index array stays small
    blocks = [np.argpartition(array[i : i + 4096], d - k, axis=-1)[:, d - k :] for i in range(0, n, 4096)]
    indices = torch.from_numpy(np.concatenate(blocks))
    return scores.gather(1, indices), indices


class _Chosen:
    """The features a top-k pass chose, ``indices (n, m)``, and the same entries grouped by feature
    (built on first use, once for the encoder's and the decoder's backward): the weight gradients are
    then (d_sae × n) sparse matrices with n·m entries times a dense (n, d_model) block."""

    def __init__(self, indices: torch.Tensor, d_sae: int) -> None:
        self.indices, self.d_sae = indices, d_sae
        self._grouped: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def weight_grad(self, weights: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """(d_sae, d): row j = Σ over the entries (r, i) that chose feature j of weights[r, i]·other[r]."""
        if self._grouped is None:
            flat = self.indices.flatten()
            order = flat.argsort(stable=True)
            crow = torch.zeros(self.d_sae + 1, dtype=torch.long, device=flat.device)
            crow[1:] = torch.bincount(flat, minlength=self.d_sae).cumsum(0)
            self._grouped = order, crow, order // self.indices.shape[1]
        order, crow, rows = self._grouped
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the product itself is not
            warnings.simplefilter("ignore", UserWarning)
            matrix = torch.sparse_csr_tensor(
                crow, rows, weights.flatten()[order], (self.d_sae, other.shape[0]), check_invariants=False
            )
            return matrix @ other


class _SparseEncode(torch.autograd.Function):
    """The pre-activations at the chosen features, ``top (n, m)`` = ((x − b_dec) W_enc + b_enc) at
    columns ``chosen.indices``, already computed densely for the ranking: passed through, with a
    backward over the chosen entries only (n·m·d_model work instead of two n·d_sae·d_model products
    over a gradient that is zero elsewhere): ∂/∂(x − b_dec) row r is Σᵢ gᵣᵢ·W_enc[:, jᵣᵢ],
    ∂/∂W_enc[:, j] and ∂/∂b_enc[j] sum gᵣᵢ·(x − b_dec)ᵣ and gᵣᵢ over the entries that chose j. The same
    gradients as the dense path up to float rounding (tests/test_sae.py)."""

    @staticmethod
    def forward(ctx, centred, w_enc, b_enc, top, chosen):
        ctx.save_for_backward(centred, w_enc)
        ctx.chosen = chosen
        return top.clone()

    @staticmethod
    def backward(ctx, grad):
        centred, w_enc = ctx.saved_tensors
        chosen = ctx.chosen
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        g_x = g_w = g_b = None
        if need_x:
            g_x = F.embedding_bag(chosen.indices, w_enc.t().contiguous(), per_sample_weights=grad, mode="sum")
        if need_w:
            g_w = chosen.weight_grad(grad, centred.detach()).t()
        if need_b:
            flat = chosen.indices.flatten()
            g_b = grad.new_zeros(chosen.d_sae).index_add_(0, flat, grad.flatten())
        return g_x, g_w, g_b, None, None


class _SparseDecode(torch.autograd.Function):
    """x̂ − b_dec = Σᵢ valuesᵣᵢ·W_dec[jᵣᵢ] (an ``embedding_bag``), with W_dec's gradient taken over the
    chosen entries grouped by feature (:class:`_Chosen`) instead of embedding_bag's own backward."""

    @staticmethod
    def forward(ctx, values, w_dec, chosen):
        ctx.save_for_backward(values, w_dec)
        ctx.chosen = chosen
        return F.embedding_bag(chosen.indices, w_dec, per_sample_weights=values, mode="sum")

    @staticmethod
    def backward(ctx, grad):
        values, w_dec = ctx.saved_tensors
        chosen = ctx.chosen
        g_values = g_w = None
        if ctx.needs_input_grad[0]:  # embedding_bag's own kernel for ⟨∂/∂x̂ᵣ, W_dec[jᵣᵢ]⟩
            n, m = chosen.indices.shape
            g_values = torch.ops.aten._embedding_bag_per_sample_weights_backward(
                grad.contiguous(),
                w_dec.detach(),
                chosen.indices.flatten(),
                torch.arange(0, n * m, m, device=grad.device),  # bag r starts at entry r·m
                torch.arange(n, device=grad.device).repeat_interleave(m),  # the bag of every entry
                0,  # mode "sum"
            ).view(n, m)
        if ctx.needs_input_grad[1]:
            g_w = chosen.weight_grad(values.detach(), grad)
        return g_values, g_w, None


def sae_update(
    sae: SAE, optimizer: torch.optim.Optimizer, x: torch.Tensor, clip_grad: float | None = 1.0
) -> SAEOutput | SparseSAEOutput:
    """One training update of ``sae`` on rows ``x`` (the search's step 1 and bench/sae.py's loop).

    Gradient-norm clipping as in SAELens' trainer; top-k decoders are kept at unit norm (their ranking
    compares activations, which must mean the same thing for every feature); the L1 SAE's decoder is
    free (its penalty is decoder-norm weighted) and is folded to unit rows once training ends. A top-k
    SAE trains through :meth:`SAE.forward_topk` (sparse decoder) and returns its sparse output.
    """
    out = sae.forward_topk(x) if sae.config.kind == "topk" else sae(x)
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    if clip_grad is not None:
        torch.nn.utils.clip_grad_norm_(sae.parameters(), clip_grad)
    optimizer.step()
    if sae.config.kind != "relu":
        sae.normalize_decoder()
    sae.record_firing(out if isinstance(out, SparseSAEOutput) else out.features.detach())
    return out
