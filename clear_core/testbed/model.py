"""The testbed's denoiser and its scene latent.

Scene latent (what the diffusion model generates, as a real model generates VAE latents): one
16-dim slot per discrete attribute of a :class:`~clear_core.testbed.world.SceneSpec` (setting, subject,
action, object, style, identity, clothing, camera), each a fixed random codebook vector of norm 4
(per-dimension variance ≈ 1, like the noise), plus one slot of the six continuous values ×1.7.
Decoding takes the nearest codebook entry by cosine; the renderer then draws the clip.

Denoiser: a small transformer over the 9 slot tokens with adaLN on the flow time t, self-attention
between slots and cross-attention to the caption's MiniLM token states (LayerNorm + Linear 384 -> d)
plus one learned null token; positions whose text row is all zero are masked (Wan's convention:
the pipeline zeroes states past the prompt's real tokens). Rectified flow: z_t = (1 - t) x + t ε,
the network predicts the velocity ε - x, which is what diffusers' FlowMatchEulerDiscreteScheduler
integrates with timesteps t·1000.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from clear_core.testbed.world import ADULTS, CONTINUOUS, IDENTITY_SUBJECT, SLOTS, VOCAB, SceneSpec

SLOT_DIM = 16
N_SLOTS = len(SLOTS) + 1
CODE_NORM = 4.0
CONT_SCALE = 1.7


def make_codebooks(seed: int = 0) -> torch.Tensor:
    """(n_discrete_slots, max_classes, SLOT_DIM): random unit vectors × CODE_NORM (unused rows zero)."""
    g = torch.Generator().manual_seed(seed)
    n_max = max(len(VOCAB[s]) for s in SLOTS)
    books = torch.zeros(len(SLOTS), n_max, SLOT_DIM)
    for i, slot in enumerate(SLOTS):
        v = torch.randn(len(VOCAB[slot]), SLOT_DIM, generator=g)
        books[i, : len(v)] = F.normalize(v, dim=-1) * CODE_NORM
    return books


def _timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = (t.float() * 1000.0)[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class _Block(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm_x = nn.LayerNorm(d)
        self.cross = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.ada = nn.Linear(d, 6 * d)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, x, temb, text, text_pad):
        s1, b1, g1, s2, b2, g2 = self.ada(temb)[:, None].chunk(6, dim=-1)
        h = self.norm1(x) * (1 + s1) + b1
        x = x + (1 + g1) * self.attn(h, h, h, need_weights=False)[0]
        h = self.norm_x(x)
        x = x + self.cross(h, text, text, key_padding_mask=text_pad, need_weights=False)[0]
        h = self.norm2(x) * (1 + s2) + b2
        return x + (1 + g2) * self.mlp(h)


class TestbedTransformer(ModelMixin, ConfigMixin):
    """Velocity predictor over scene-latent slots, conditioned on MiniLM token states.

    ``forward(latents (B, 9, 16), timestep (B,) in [0, 1000], encoder_hidden_states (B, T, 384))``
    returns the velocity (B, 9, 16). Text rows that are all zero are masked out.
    """

    __test__ = False  # not a pytest class

    @register_to_config
    def __init__(
        self,
        n_slots: int = N_SLOTS,
        slot_dim: int = SLOT_DIM,
        d_model: int = 128,
        n_layers: int = 3,
        n_heads: int = 4,
        text_dim: int = 384,
        codebook_seed: int = 0,
    ):
        super().__init__()
        self.inp = nn.Linear(slot_dim, d_model)
        self.slot_pos = nn.Parameter(torch.randn(n_slots, d_model) * 0.02)
        self.t_mlp = nn.Sequential(nn.Linear(d_model, d_model), nn.SiLU(), nn.Linear(d_model, d_model))
        self.text_norm = nn.LayerNorm(text_dim)
        self.text_proj = nn.Linear(text_dim, d_model)
        self.null_token = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        self.blocks = nn.ModuleList([_Block(d_model, n_heads) for _ in range(n_layers)])
        self.norm_out = nn.LayerNorm(d_model, elementwise_affine=False)
        self.ada_out = nn.Linear(d_model, 2 * d_model)
        nn.init.zeros_(self.ada_out.weight)
        nn.init.zeros_(self.ada_out.bias)
        self.out = nn.Linear(d_model, slot_dim)
        self.register_buffer("codebooks", make_codebooks(codebook_seed), persistent=True)

    def prepare_text(self, encoder_hidden_states: torch.Tensor, text_repeats: int = 1):
        """(projected text with the null token first, key padding mask): constant over sampling steps,
        so the pipeline computes it once per call. All-zero rows are masked."""
        ehs = encoder_hidden_states.float()
        if ehs.ndim != 3 or ehs.shape[-1] != self.config.text_dim:
            raise ValueError(
                f"encoder_hidden_states must be (B, T, {self.config.text_dim}), got {tuple(ehs.shape)}"
            )
        pad = ehs.abs().sum(-1) == 0  # (B, T): zeroed positions
        keep = int((~pad).sum(0).nonzero().max()) + 1 if (~pad).any() else 0
        ehs, pad = ehs[:, :keep], pad[:, :keep]  # trailing positions that are zero everywhere
        text = self.text_proj(self.text_norm(ehs))
        if text_repeats > 1:
            text, pad = text.repeat(text_repeats, 1, 1), pad.repeat(text_repeats, 1)
        b = text.shape[0]
        text = torch.cat([self.null_token.expand(b, 1, -1), text], dim=1)
        pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=pad.device), pad], dim=1)
        return text, pad

    def forward(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        text_repeats: int = 1,
        text_cache: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Velocity (B, 9, 16). ``text_repeats`` > 1 (training): the text batch is tiled that many times
        after its projection. ``text_cache``: the output of :meth:`prepare_text` (skips the projection)."""
        b, n, d = latents.shape
        if (n, d) != (self.config.n_slots, self.config.slot_dim):
            raise ValueError(
                f"latents must be (B, {self.config.n_slots}, {self.config.slot_dim}), got {tuple(latents.shape)}"
            )
        text, pad = (
            text_cache if text_cache is not None else self.prepare_text(encoder_hidden_states, text_repeats)
        )
        if text.shape[0] != b:
            raise ValueError(f"{text.shape[0]} text rows for {b} latents")
        timestep = timestep.reshape(-1).expand(b) if timestep.numel() == 1 else timestep.reshape(b)
        temb = self.t_mlp(_timestep_embedding(timestep.float() / 1000.0, self.config.d_model))
        x = self.inp(latents) + self.slot_pos
        for block in self.blocks:
            x = block(x, temb, text, pad)
        shift, scale = self.ada_out(temb)[:, None].chunk(2, dim=-1)
        return self.out(self.norm_out(x) * (1 + scale) + shift)


# ------------------------------------------------------------------------------- latent codec
def encode_specs(specs: list[SceneSpec], codebooks: torch.Tensor) -> torch.Tensor:
    """(B, 9, 16) clean latents of specs."""
    out = torch.zeros(len(specs), N_SLOTS, SLOT_DIM)
    idx = torch.tensor([[s.index(slot) for slot in SLOTS] for s in specs])
    for i in range(len(SLOTS)):
        out[:, i] = codebooks[i, idx[:, i]]
    cont = torch.tensor([[getattr(s, k) for k in CONTINUOUS] for s in specs], dtype=torch.float32)
    out[:, -1, : len(CONTINUOUS)] = cont * CONT_SCALE
    return out


def decode_latents(latents: torch.Tensor, codebooks: torch.Tensor) -> list[SceneSpec]:
    """Nearest codebook entry per slot (cosine), continuous values clipped; world rules enforced."""
    lat = latents.detach().float().cpu()
    specs = []
    classes = []
    for i, slot in enumerate(SLOTS):
        book = F.normalize(codebooks[i, : len(VOCAB[slot])].float().cpu(), dim=-1)
        classes.append((F.normalize(lat[:, i], dim=-1) @ book.T).argmax(-1).numpy())
    cont = np.clip(lat[:, -1, : len(CONTINUOUS)].numpy() / CONT_SCALE, -1, 1)
    for b in range(lat.shape[0]):
        d = {slot: VOCAB[slot][int(classes[i][b])] for i, slot in enumerate(SLOTS)}
        if d["identity"] != "none":
            d["subject"] = IDENTITY_SUBJECT[d["identity"]]
        if d["clothing"] == "unclothed" and (d["subject"] not in ADULTS or d["identity"] != "none"):
            d["clothing"] = "clothed"
        d.update({k: float(v) for k, v in zip(CONTINUOUS, cont[b], strict=True)})
        specs.append(SceneSpec(**d))
    return specs
