"""Inference-time erasure at one block, and the eraser artifact (DESIGN.md "Erasure").

For every token at the chosen block, with x = h / s (s: the block's normalisation scale):

    f = SAE_enc(x),   v = W_dec (f ⊙ m_spec),   h' = h − γ · s · v

No model weight changes: the edit is a forward hook installed by :meth:`Eraser.applied`, a context
manager scoped to the calling context (see hooks.py), so a web app's concurrent requests on one shared
model never see each other's erasers, and the model is exactly as before once the block exits.

Masks. ``paper`` is m_spec = 1 − f̄_neg / max f̄_neg, taken literally; it is close to 1 for almost
every feature, so the edit removes nearly the whole reconstruction (DESIGN.md measured h' ≈ (1 − γ)h
and unrelated prompts destroyed). ``contrastive`` (the default) is m_spec ∝ ReLU(f̄_pos − f̄_neg)
normalised to max 1, with f̄ the mean over prompts of each prompt's *max* over its real tokens: the
concept lives in a few tokens, and max pooling keeps prompts of different lengths comparable.

A ``steering`` eraser (the paper's dense baseline) subtracts γ·(mean positive − mean negative) at
the block instead, the same vector for every token.

Artifacts are ``eraser.safetensors`` (tensors) + ``eraser.json`` (everything else); never pickle.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from clear_core.config import ERASER_KINDS, GATE_SCOPES, MASKS
from clear_core.encoders import TextEncoder, find_blocks
from clear_core.eraser_checks import check_eraser_fields, check_eraser_files
from clear_core.fingerprint import fingerprints_match, short
from clear_core.hooks import Handler, isolated_hooks, original_forward, scoped_hooks
from clear_core.io import atomic_path, atomic_write_text, eraser_paths
from clear_core.profiles import MASKED, EncodingProfile, pipeline_encoding
from clear_core.provenance import library_versions
from clear_core.sae import SAE, SAEConfig
from clear_core.search import SearchResult
from clear_core.validation import check_finite, check_gamma, check_int, check_number

__all__ = ["MASKS", "Eraser", "applied_many", "check_erasers", "lookahead_states"]

_POSITIONS: ContextVar[torch.Tensor | None] = ContextVar("clear_prompt_positions", default=None)
"""The attention mask of the encoder call in progress, (batch, tokens), recorded by
:func:`applied_many` where a prompt-level gate needs it: pads take no part in a prompt's decision."""

_LOOKAHEAD: ContextVar[dict[int, torch.Tensor] | None] = ContextVar("clear_lookahead_states", default=None)
"""{layer: (batch, tokens, d_model) states} of the unedited first pass of the encoder call in
progress, for probe gates that read a deeper layer than their eraser's (``Eraser.probe_layer``)."""


@contextmanager
def lookahead_states(states: dict[int, torch.Tensor]) -> Iterator[None]:
    """Give the erasers called inside the unedited states of deeper layers ({layer: (batch, tokens,
    d_model) or (tokens, d_model)}) of the prompts they edit, for their probe gates to read."""
    token = _LOOKAHEAD.set(dict(states))
    try:
        yield
    finally:
        _LOOKAHEAD.reset(token)


def _lookahead(eraser: Eraser, hidden: torch.Tensor) -> torch.Tensor:
    """The unedited states the eraser's probe reads for ``hidden``'s prompts (see :data:`_LOOKAHEAD`)."""
    states = (_LOOKAHEAD.get() or {}).get(eraser.probe_layer)
    if states is None or tuple(states.shape[:-1]) != tuple(hidden.shape[:-1]):
        raise ValueError(
            f"this eraser's probe gate reads layer {eraser.probe_layer} of an unedited first pass: apply "
            "it with Eraser.applied / applied_many or measure it through clear_core.evaluation"
        )
    return states.to(hidden.device)


_BUILDERS = ("build_eraser", "feature_means", "leace_eraser", "steering_eraser")


def __getattr__(name: str):
    """The builders live in clear_core/build.py (they import this module); reachable here too."""
    if name in _BUILDERS:
        from clear_core import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


KINDS = ERASER_KINDS
ARTIFACT_FORMAT = 2
"""Newest ``eraser.json`` format this library reads. 2: a probe gate with a strength or a deeper layer
(an older library would apply it wrongly, so such artifacts say 2 and older readers refuse them); every
other artifact is still written as 1."""


@dataclass
class Eraser:
    """Everything needed to erase one concept at one block."""

    concept: str
    """Concept name."""
    model_id: str
    """Encoder the eraser was built for."""
    layer: int
    """Layer index in the capture layout (1 = output of the first block)."""
    layer_name: str
    """Module path of that block (``encoder.layer.3``): checked against the encoder at load time."""
    scale: float
    """Normalisation scale s of the block (its mean token norm)."""
    d_model: int
    """Width of the block output."""
    kind: str = "sae"
    """"sae" (CLEAR) or "steering" (dense mean-difference baseline)."""
    sae: SAE | None = None
    """The SAE (kind "sae")."""
    m_spec: torch.Tensor | None = None
    """(d_sae,) concept-specific mask in [0, 1] (kind "sae")."""
    m_shared: torch.Tensor | None = None
    """(d_sae,) shared mask (kept for inspection)."""
    direction: torch.Tensor | None = None
    """(d_model,) steering vector in raw block units (kind "steering")."""
    leace: dict[str, torch.Tensor] | None = None
    """Kind "leace": EleutherAI's LEACE eraser fitted at the block (``concept-erasure``), as
    ``{"left": (d_model, k), "right": (k, d_model), "bias": (d_model,)}``: the erased part of a token
    is ((h − bias) @ rightᵀ) @ leftᵀ, which LEACE itself subtracts (γ = 1)."""
    null_basis: torch.Tensor | None = None
    """(d_model, r) orthonormal basis of the subspace the fit negatives' token states span at the block
    (kind "sae", optional): the subtracted vector is projected off it, v − U(Uᵀv), so concept-free
    tokens' directions are left alone to first order (null-space edit, as SPEED does for weights)."""
    mask: str = "contrastive"
    """Which mask rule produced m_spec."""
    gate_floor: torch.Tensor | None = None
    """(d_sae,) look-alike gate (kind "sae", optional): per feature, the highest activation the
    protected look-alike prompts reached. A token is erased only as far as its concept-specific
    features exceed it: g = clamp((Σ ReLU(f − floor)·m_spec − gate_margin) / gate_tau, 0, 1); None
    erases every token."""
    gate_tau: float | None = None
    gate_margin: float = 0.0
    """Gate score below which nothing is erased: g = clamp((score − margin) / gate_tau, 0, 1). The
    context gate sets it to the highest score reached on negatives the floor was *not* taken from,
    so its floor's fit to its own prompts does not decide which unseen tokens get edited."""
    """Gate scale: the median gate score of the concept's positive tokens that pass the floor."""
    gate_scope: str = "token"
    """What the gate decides for: "token" edits each token as far as its own score allows; "prompt"
    gives every token of a prompt the gate of its highest-scoring token, so a prompt with one token
    past the margin is erased as the ungated eraser would, and a prompt with none is left alone."""
    prompt_margin: float | None = None
    """Prompt gate (optional, needs ``gate_floor``): a prompt is edited only as far as its highest token
    gate score goes beyond this level, the highest score any token of the calibration's concept-free
    prompts reached (fit negatives and the calibration half of the unrelated prompts); inside a prompt
    that passes, the token gate decides token by token. None: no prompt gate."""
    prompt_tau: float | None = None
    """Prompt gate scale: gp = clamp((max token score − prompt_margin) / prompt_tau, 0, 1)."""
    probe: dict[str, torch.Tensor] | None = None
    """Probe gate (optional, needs ``gate_floor``): a logistic probe on a prompt's block states, mean-pooled
    over its real tokens and divided by ``scale``, as ``{"weight": (d_model,), "bias": (1,)}`` and an
    optional ``"strength": (1,)`` s (1 when absent). A prompt it scores above 0 is erased at s times the
    eraser's γ on every token (a token the gates give more keeps it), whatever the token and prompt gates
    say; the gates decide for every other prompt. It catches paraphrases, whose concept features pass the
    token gate's margin by little (docs/precision.md); s lets the prompts it catches take the γ their own
    calibration chose while the others keep the gates' γ."""
    probe_layer: int | None = None
    """The layer (capture index, as ``layer``) whose states the probe gate reads; None: the eraser's
    own. A deeper one is read from an unedited first pass of the same prompts (:func:`applied_many`,
    ``clear_core.prefix.encode_gammas`` and :func:`lookahead_states` run it): at an early block, the
    prompts that only paraphrase the concept are told apart better further up (docs/precision.md)."""
    gamma: float = 1.0
    """Default erasure strength (calibrated; the user may override it)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Provenance: layer probabilities, calibration table, seeds, versions, model revision."""

    def __post_init__(self) -> None:
        check_eraser_fields(self.concept, self.d_model)  # clear_core/eraser_checks.py
        if self.kind not in KINDS:
            raise ValueError(f"unknown eraser kind {self.kind!r}; expected one of {KINDS}")
        if self.kind == "sae":
            if self.sae is None or self.m_spec is None:
                raise ValueError("an SAE eraser needs an SAE and an m_spec mask")
            if self.m_spec.shape != (self.sae.config.d_sae,):
                raise ValueError(
                    f"m_spec has shape {tuple(self.m_spec.shape)}, expected ({self.sae.config.d_sae},)"
                )
            if self.sae.config.d_model != self.d_model:
                raise ValueError(f"SAE width {self.sae.config.d_model} does not match d_model {self.d_model}")
        elif self.kind == "leace":
            shapes = {k: tuple(v.shape) for k, v in (self.leace or {}).items()}
            rank = shapes.get("left", (0, 0))[-1]
            expected = {"left": (self.d_model, rank), "right": (rank, self.d_model), "bias": (self.d_model,)}
            if not rank or shapes != expected:
                raise ValueError(f"a LEACE eraser needs tensors {expected} (rank ≥ 1), got {shapes}")
        elif self.direction is None or self.direction.shape != (self.d_model,):
            raise ValueError(f"a steering eraser needs a direction of shape ({self.d_model},)")
        if self.null_basis is not None and (
            self.kind != "sae" or self.null_basis.ndim != 2 or self.null_basis.shape[0] != self.d_model
        ):
            raise ValueError(
                f"null_basis needs an SAE eraser and shape ({self.d_model}, r), got {tuple(self.null_basis.shape)}"
            )
        # numbers from a file or a user: finite, in range, consistent (clear_core/validation.py)
        self.scale = check_number(self.scale, "scale", above=0.0)
        self.gamma = check_gamma(self.gamma, "default_gamma")
        self.layer = check_int(self.layer, "layer", minimum=1)
        if self.gate_floor is not None:
            if self.kind != "sae" or self.gate_floor.shape != self.m_spec.shape:
                raise ValueError(
                    f"gate_floor needs an SAE eraser and shape {tuple(self.m_spec.shape)}, "
                    f"got {tuple(self.gate_floor.shape)}"
                )
            self.gate_tau = check_number(self.gate_tau, "gate_tau", above=0.0)
            self.gate_margin = check_number(self.gate_margin, "gate_margin", minimum=0.0)
        elif self.gate_tau is not None or self.gate_margin:
            raise ValueError("gate_tau or gate_margin without gate_floor")
        if self.gate_scope not in GATE_SCOPES:
            raise ValueError(f"gate_scope must be one of {GATE_SCOPES}, got {self.gate_scope!r}")
        if (self.prompt_margin is None) != (self.prompt_tau is None):
            raise ValueError("prompt_margin and prompt_tau come together (the prompt gate)")
        if self.probe is not None:
            shapes = {k: tuple(v.shape) for k, v in self.probe.items()}
            expected = {"weight": (self.d_model,), "bias": (1,)}
            if "strength" in shapes:
                expected["strength"] = (1,)
            if shapes != expected:
                raise ValueError(f"a probe gate needs tensors {expected}, got {shapes}")
            if "strength" in self.probe:
                check_number(float(self.probe["strength"]), "probe_strength", above=0.0)
            if self.gate_floor is None:
                raise ValueError("a probe gate needs gate_floor (it widens a gated eraser)")
        if self.probe_layer is not None:
            if self.probe is None:
                raise ValueError("probe_layer without a probe gate")
            self.probe_layer = check_int(self.probe_layer, "probe_layer", minimum=self.layer)
            if self.probe_layer == self.layer:
                self.probe_layer = None
        if self.prompt_margin is not None:
            if self.gate_floor is None:
                raise ValueError("a prompt gate (prompt_margin) needs gate_floor")
            self.prompt_margin = check_number(self.prompt_margin, "prompt_margin", minimum=0.0)
            self.prompt_tau = check_number(self.prompt_tau, "prompt_tau", above=0.0)
        tensors = {
            "direction": self.direction,
            "m_spec": self.m_spec,
            "m_shared": self.m_shared,
            "gate_floor": self.gate_floor,
            "null_basis": self.null_basis,
            **{f"leace_{k}": v for k, v in (self.leace or {}).items()},
            **{f"probe_{k}": v for k, v in (self.probe or {}).items()},
        }
        if self.sae is not None:
            tensors.update({f"SAE {k}": v for k, v in self.sae.state_dict().items()})
        for name, tensor in tensors.items():
            if tensor is not None:
                check_finite(tensor, name)
        if self.m_spec is not None and not bool(((self.m_spec >= 0) & (self.m_spec <= 1)).all()):
            raise ValueError(
                f"m_spec must lie in [0, 1], got values in [{float(self.m_spec.min()):g}, "
                f"{float(self.m_spec.max()):g}]"
            )
        self._check_block_meta()

    def _check_block_meta(self) -> None:
        """The block recorded in ``meta`` (names, per-block scales) must be the block of ``layer``.

        Catches an artifact relabelled to another block by hand: its scale was measured at the
        original block, and every search stores the scale of each candidate block.
        """
        names = self.meta.get("layer_names")
        if isinstance(names, list) and self.layer < len(names) and names[self.layer] != self.layer_name:
            raise ValueError(
                f"layer {self.layer} is {names[self.layer]!r} in the stored layer names, not {self.layer_name!r}"
            )
        scales, candidates = self.meta.get("scales"), self.meta.get("candidates")
        if isinstance(scales, list) and isinstance(candidates, list) and self.layer in candidates:
            i = candidates.index(self.layer)
            stored = check_number(scales[i] if i < len(scales) else None, f"scales[{i}]", above=0.0)
            if self.kind == "sae" and not math.isclose(stored, self.scale, rel_tol=1e-4):
                raise ValueError(
                    f"scale {self.scale:g} is not the stored scale {stored:g} of layer {self.layer} "
                    f"({self.layer_name}): the eraser was moved to another block"
                )

    # ------------------------------------------------------------------------------------ edit
    def without_prompt_gate(self) -> Eraser:
        """This eraser with its prompt gate off and everything else the same (itself when it has
        none): what the γ calibration sweeps, and a way to erase paraphrases the gate lets by."""
        if self.prompt_margin is None:
            return self
        return replace(self, prompt_margin=None, prompt_tau=None, meta=dict(self.meta))

    @property
    def prompt_level(self) -> bool:
        """Whether a gate decides per prompt (prompt scope or a prompt gate), so the edit of a token
        depends on the other real tokens of its prompt."""
        return self.gate_floor is not None and (
            self.gate_scope == "prompt" or self.prompt_margin is not None or self.probe is not None
        )

    @torch.no_grad()
    def vector(self, hidden: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """v scaled back to block units, same shape as ``hidden (..., d_model)``: h' = h − γ·vector.

        ``positions``: (batch, tokens) attention mask of ``hidden (batch, tokens, d_model)``; a
        prompt-level gate reads only the positions it marks (pads are not part of the prompt). None,
        or another shape: every position counts."""
        if hidden.shape[-1] != self.d_model:
            raise ValueError(
                f"eraser for d_model {self.d_model} got hidden states of width {hidden.shape[-1]}"
            )
        if self.kind == "steering":
            return self.direction.to(hidden.device, torch.float32).expand(hidden.shape)
        if self.kind == "leace":
            t = {k: v.to(hidden.device, torch.float32) for k, v in self.leace.items()}
            return ((hidden.float() - t["bias"]) @ t["right"].T) @ t["left"].T
        sae = self.sae
        if sae.W_dec.device != hidden.device:
            sae.to(hidden.device)
        x = hidden.reshape(-1, self.d_model).float() / self.scale
        f = sae.encode(x)
        m_spec = self.m_spec.to(hidden.device)
        if self.gate_floor is not None:  # erase a token only as far as it exceeds the gate's floor
            score = self.gate_score(f, m_spec)
            g = ((score - self.gate_margin) / self.gate_tau).clamp(min=0.0, max=1.0)
            n = hidden.shape[-2] if hidden.dim() > 1 else 1
            real = None
            if positions is not None and tuple(positions.shape) == tuple(hidden.shape[:-1]):
                real = positions.reshape(-1, n).to(score.device) != 0

            def prompt_max(t: torch.Tensor) -> torch.Tensor:  # (prompts, 1): highest over real tokens
                t = t.reshape(-1, n) if real is None else t.reshape(-1, n).masked_fill(~real, 0.0)
                return t.amax(-1, keepdim=True)

            if self.gate_scope == "prompt":  # every token of a prompt: its highest-scoring token's gate
                g = prompt_max(g).expand(-1, n).reshape(-1)
            if self.prompt_margin is not None:  # a prompt none of whose tokens passes is left alone
                gp = ((prompt_max(score) - self.prompt_margin) / self.prompt_tau).clamp(0.0, 1.0)
                g = (g.reshape(-1, n) * gp).reshape(-1)
            if self.probe is not None:  # a prompt the probe calls the concept: every token at s or more
                states = _lookahead(self, hidden) if self.lookahead else hidden
                caught = (self.probe_scores(states, positions) > 0).reshape(-1, 1).to(g.device)
                g = g.reshape(-1, n)
                g = torch.where(caught, g.clamp(min=self.probe_strength), g).reshape(-1)
            f = f * g[:, None]
        v = (f * m_spec) @ sae.W_dec
        if self.null_basis is not None:
            basis = self.null_basis.to(hidden.device)
            v = v - (v @ basis) @ basis.T
        return (v * self.scale).reshape(hidden.shape)

    @property
    def probe_strength(self) -> float:
        """s of the probe gate: the prompts it catches are erased at s·γ (1 without a stored strength)."""
        if self.probe is None:
            raise ValueError("this eraser has no probe gate")
        strength = self.probe.get("strength")
        return 1.0 if strength is None else float(strength)

    @property
    def lookahead(self) -> bool:
        """Whether the probe gate reads a deeper layer than the eraser's (an unedited first pass)."""
        return self.probe is not None and self.probe_layer is not None

    def probe_only(self) -> Eraser:
        """This eraser with only its probe gate open, at strength 1: the prompts the probe catches are
        erased in full, every other prompt is left alone (the token gate's margin at the largest float).
        What the γ calibration sweeps to find the γ the caught prompts need."""
        if self.probe is None:
            raise ValueError("this eraser has no probe gate")
        probe = {k: v for k, v in self.probe.items() if k != "strength"}
        big = float(torch.finfo(torch.float32).max)
        return replace(
            self, probe=probe, gate_margin=big, prompt_margin=None, prompt_tau=None, meta=dict(self.meta)
        )

    @torch.no_grad()
    def probe_scores(self, hidden: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """(prompts,) the probe gate's logit of each prompt of ``hidden (batch, tokens, d_model)`` (or one
        prompt's ``(tokens, d_model)``): above 0, every token is erased at s·γ (needs ``probe``).
        ``positions``: see :meth:`vector`; pads it marks 0 are left out of the mean."""
        if self.probe is None:
            raise ValueError("this eraser has no probe gate")
        n = hidden.shape[-2] if hidden.dim() > 1 else 1
        x = hidden.reshape(-1, n, self.d_model).float() / self.scale
        if positions is not None and tuple(positions.shape) == tuple(hidden.shape[:-1]):
            w = (positions.reshape(-1, n, 1).to(x.device) != 0).float()
            pooled = (x * w).sum(1) / w.sum(1).clamp(min=1.0)
        else:
            pooled = x.mean(1)
        weight, bias = (self.probe[k].to(x.device, torch.float32) for k in ("weight", "bias"))
        return pooled @ weight + bias

    def gate(self, f: torch.Tensor, m_spec: torch.Tensor | None = None) -> torch.Tensor:
        """(tokens,) look-alike gate in [0, 1] for SAE activations ``f (tokens, d_sae)``; ones without a gate."""
        if self.gate_floor is None:
            return torch.ones(f.shape[0], device=f.device)
        score = self.gate_score(f, m_spec)
        return ((score - self.gate_margin) / self.gate_tau).clamp(min=0.0, max=1.0)

    def gate_score(self, f: torch.Tensor, m_spec: torch.Tensor | None = None) -> torch.Tensor:
        """(tokens,) how far each token's concept-specific features exceed the gate's floor:
        Σ ReLU(f − floor)·m_spec (needs ``gate_floor``)."""
        m_spec = self.m_spec.to(f.device) if m_spec is None else m_spec
        return (torch.relu(f - self.gate_floor.to(f.device)) * m_spec).sum(-1)

    def edit(
        self, hidden: torch.Tensor, gamma: float | None = None, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """h' = h − γ·v for block-output hidden states ``(batch, tokens, d_model)`` (``positions``: see
        :meth:`vector`)."""
        gamma = self.gamma if gamma is None else float(gamma)
        if gamma == 0:
            return hidden
        return (hidden.float() - gamma * self.vector(hidden, positions)).to(hidden.dtype)

    def features(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., d_sae) SAE feature activations of block-output hidden states."""
        if self.sae is None:
            raise ValueError("a steering eraser has no SAE features")
        with torch.no_grad():
            x = hidden.reshape(-1, self.d_model).float() / self.scale
            return self.sae.encode(x.to(self.sae.W_dec.device)).reshape(*hidden.shape[:-1], -1)

    # ---------------------------------------------------------------------------------- apply
    def block_of(self, target: Any, layer: int | None = None) -> nn.Module:
        """The module to hook in ``target``: a TextEncoder, a bare encoder, or a diffusers pipeline.
        ``layer``: another layer's block of the same encoder (the probe gate's), checked to exist."""
        which = self.component
        if isinstance(target, TextEncoder):
            layout = target.layout
        elif isinstance(target, nn.Module):
            layout = find_blocks(target)
        elif hasattr(target, which):
            layout = find_blocks(getattr(target, which))
        else:
            raise ValueError(
                f"cannot apply an eraser to {type(target).__name__}: expected a text encoder or a pipeline"
            )
        names = layout.block_names
        if layer is not None:
            self.block_of(target)  # the eraser's own block first: the same encoder
            if not 1 <= layer <= len(names):
                raise ValueError(f"layer {layer} does not exist in this encoder ({len(names)} blocks)")
            return layout.blocks[layer - 1]
        if not 1 <= self.layer <= len(names) or names[self.layer - 1] != self.layer_name:
            raise ValueError(
                f"eraser block {self.layer_name!r} (layer {self.layer}) does not exist in this encoder "
                f"({len(names)} blocks: {names[0]} ... {names[-1]})"
            )
        return layout.blocks[self.layer - 1]

    @contextmanager
    def applied(self, target: Any, gamma: float | None = None) -> Iterator[Eraser]:
        """Erase inside the ``with`` block, for forward passes made in this context only."""
        with applied_many([(self, gamma)], target):
            yield self

    # ------------------------------------------------------------------------------ artifacts
    def tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor of the artifact, by the name it has in ``eraser.safetensors`` (CPU, contiguous)."""
        tensors: dict[str, torch.Tensor] = {}
        if self.kind == "sae":
            tensors = {k: v.detach().cpu().contiguous() for k, v in self.sae.state_dict().items()}
            tensors["m_spec"] = self.m_spec.detach().cpu().float().contiguous()
            if self.m_shared is not None:
                tensors["m_shared"] = self.m_shared.detach().cpu().float().contiguous()
            if self.gate_floor is not None:
                tensors["gate_floor"] = self.gate_floor.detach().cpu().float().contiguous()
            if self.null_basis is not None:
                tensors["null_basis"] = self.null_basis.detach().cpu().float().contiguous()
            for k, v in (self.probe or {}).items():
                tensors[f"probe_{k}"] = v.detach().cpu().float().contiguous()
        elif self.kind == "leace":
            tensors = {f"leace_{k}": v.detach().cpu().float().contiguous() for k, v in self.leace.items()}
        else:
            tensors["direction"] = self.direction.detach().cpu().float().contiguous()
        return tensors

    def edit_fields(self) -> dict[str, Any]:
        """The JSON fields that decide the edit (with :meth:`tensors`, everything :meth:`edit` reads)."""
        return {
            "kind": self.kind,
            "layer": self.layer,
            "layer_name": self.layer_name,
            "component": self.component,
            "d_model": self.d_model,
            "scale": self.scale,
            "gate_tau": self.gate_tau,
            "gate_margin": self.gate_margin,
            # only when it changes the edit: the digests of token-scope erasers stay what they were
            **({"gate_scope": self.gate_scope} if self.gate_scope != "token" else {}),
            **(
                {"prompt_margin": self.prompt_margin, "prompt_tau": self.prompt_tau}
                if self.prompt_margin is not None
                else {}
            ),
            **({"probe_layer": self.probe_layer} if self.probe_layer is not None else {}),
        }

    def digest(self) -> str:
        """sha256 of everything that decides the edit (:meth:`edit_fields` and every tensor, by name):
        equal digests, equal edits. Caches and manifests key erasers by it."""
        h = hashlib.sha256(json.dumps(self.edit_fields(), sort_keys=True).encode())
        for name, tensor in sorted(self.tensors().items()):
            h.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
            h.update(tensor.float().numpy().tobytes())
        return h.hexdigest()

    def save(self, folder: str | Path) -> Path:
        """Write ``eraser.safetensors`` and ``eraser.json`` into ``folder``."""
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"{folder} is a file; expected a folder for the eraser")
        folder.mkdir(parents=True, exist_ok=True)
        tensors = self.tensors()
        for name, tensor in tensors.items():  # never write a poisoned artifact
            check_finite(tensor, f"eraser tensor {name!r}")
        check_gamma(self.gamma, "default_gamma")
        info = {
            "format": 2 if self.probe is not None and ("strength" in self.probe or self.lookahead) else 1,
            "kind": self.kind,
            "concept": self.concept,
            "model_id": self.model_id,
            "layer": self.layer,
            "block_index": self.layer - 1,
            "layer_name": self.layer_name,
            "d_model": self.d_model,
            "scale": self.scale,
            "mask": self.mask,
            "gate_tau": self.gate_tau,
            "gate_margin": self.gate_margin,
            "gate_scope": self.gate_scope,
            "prompt_margin": self.prompt_margin,
            "prompt_tau": self.prompt_tau,
            "probe_layer": self.probe_layer,
            "default_gamma": self.gamma,
            "sae": self.sae.config_dict() if self.sae is not None else None,
            "versions": library_versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **{k: v for k, v in self.meta.items() if k not in ("versions",)},
        }
        try:
            text = json.dumps(info, indent=2, ensure_ascii=False, allow_nan=False)
        except ValueError:
            raise ValueError("eraser.json would contain NaN or infinity; nothing was written") from None
        # each file is written whole or not at all, with one file mode (clear_core/io.py)
        with atomic_path(folder / "eraser.safetensors") as tmp:
            save_file(tensors, str(tmp))
        atomic_write_text(folder / "eraser.json", text)
        return folder

    @classmethod
    def load(
        cls, folder: str | Path, encoder: TextEncoder | None = None, allow_other_model: bool = False
    ) -> Eraser:
        """Read an eraser folder; with ``encoder``, refuse one built for another model or block layout."""
        json_path, st_path = eraser_paths(folder)
        try:
            info = json.loads(json_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{json_path}: not valid JSON ({err})") from None
        if not isinstance(info, dict):
            raise ValueError(f"{json_path}: expected a JSON object, got {type(info).__name__}")
        required = ("kind", "concept", "model_id", "layer", "layer_name", "d_model", "scale", "default_gamma")
        missing = [k for k in required if k not in info]
        if missing:
            raise ValueError(f"{json_path}: missing {', '.join(missing)}")
        if not isinstance(info.get("format", 0), int) or info.get("format", 0) > ARTIFACT_FORMAT:
            raise ValueError(
                f"{json_path}: artifact format {info['format']} is newer than this library supports"
            )
        check_eraser_files(info, json_path, st_path)  # sizes and numbers bounded before any allocation
        try:
            tensors = load_file(str(st_path))
        except Exception as err:  # safetensors raises its own error types
            raise ValueError(f"{st_path}: cannot read tensors ({err})") from None
        try:
            d_model = check_int(info["d_model"], "d_model", minimum=1)
            block_index = info.get("block_index")
            if (
                block_index is not None
                and check_int(block_index, "block_index") != check_int(info["layer"], "layer") - 1
            ):
                raise ValueError(
                    f"block_index {block_index} contradicts layer {info['layer']} (block_index = layer − 1)"
                )
        except ValueError as err:
            raise ValueError(f"{json_path}: {err}") from None
        kind = info["kind"]
        sae = m_spec = m_shared = direction = gate_floor = null_basis = leace = probe = None
        if kind == "sae":
            cfg = info.get("sae") or {}
            try:
                sae = SAE(SAEConfig(**cfg))
            except TypeError as err:
                raise ValueError(f"{json_path}: bad SAE config {cfg} ({err})") from None
            expected = {k: tuple(v.shape) for k, v in sae.state_dict().items()}
            expected["m_spec"] = (sae.config.d_sae,)
            for name, shape in expected.items():
                if name not in tensors:
                    raise ValueError(f"{st_path}: missing tensor {name!r}")
                if tuple(tensors[name].shape) != shape:
                    raise ValueError(
                        f"{st_path}: tensor {name!r} has shape {tuple(tensors[name].shape)}, expected {shape}"
                    )
            sae.load_state_dict({k: tensors[k] for k in sae.state_dict()})
            sae.eval()
            m_spec, m_shared, gate_floor, null_basis = (
                tensors["m_spec"],
                tensors.get("m_shared"),
                tensors.get("gate_floor"),
                tensors.get("null_basis"),
            )
            if "probe_weight" in tensors or "probe_bias" in tensors:
                probe = {k: tensors.get(f"probe_{k}") for k in ("weight", "bias")}
                if "probe_strength" in tensors:
                    probe["strength"] = tensors["probe_strength"]
                if any(v is None for v in probe.values()):
                    raise ValueError(
                        f"{st_path}: the probe gate needs tensors 'probe_weight' and 'probe_bias'"
                    )
            if gate_floor is not None and tuple(gate_floor.shape) != (sae.config.d_sae,):
                raise ValueError(
                    f"{st_path}: tensor 'gate_floor' has shape {tuple(gate_floor.shape)}, expected ({sae.config.d_sae},)"
                )
        elif kind == "leace":
            missing = [n for n in ("leace_left", "leace_right", "leace_bias") if n not in tensors]
            if missing:
                raise ValueError(f"{st_path}: missing tensor {missing[0]!r}")
            leace = {
                n.removeprefix("leace_"): tensors[n] for n in ("leace_left", "leace_right", "leace_bias")
            }
        elif "direction" not in tensors:
            raise ValueError(f"{st_path}: missing tensor 'direction'")
        else:
            direction = tensors["direction"]
        known = set(required) | {
            "format",
            "block_index",
            "mask",
            "sae",
            "created",
            "gate_tau",
            "gate_margin",
            "gate_scope",
            "prompt_margin",
            "prompt_tau",
            "probe_layer",
        }
        try:
            eraser = cls(
                concept=info["concept"],
                model_id=info["model_id"],
                layer=info["layer"],
                layer_name=info["layer_name"],
                scale=info["scale"],
                d_model=d_model,
                kind=kind,
                sae=sae,
                m_spec=m_spec,
                m_shared=m_shared,
                direction=direction,
                leace=leace,
                null_basis=null_basis,
                mask=info.get("mask", "contrastive"),
                gate_floor=gate_floor,
                gate_tau=info.get("gate_tau") if gate_floor is not None else None,
                gate_margin=(info.get("gate_margin") or 0.0) if gate_floor is not None else 0.0,
                gate_scope=info.get("gate_scope") or "token",
                prompt_margin=info.get("prompt_margin") if gate_floor is not None else None,
                prompt_tau=info.get("prompt_tau") if gate_floor is not None else None,
                probe=probe,
                probe_layer=info.get("probe_layer") if probe is not None else None,
                gamma=info["default_gamma"],
                meta={k: v for k, v in info.items() if k not in known},
            )
        except ValueError as err:  # name the file: the numbers came from it
            raise ValueError(f"{json_path}: {err}") from None
        if encoder is not None:
            eraser.check_encoder(encoder, allow_other_model)
        return eraser

    def search_result(self) -> SearchResult:
        """The search this SAE eraser was built from, as recorded in its meta (the SAE is shared by
        every candidate block): what ``ClearRun(search_result=...)`` rebuilds variants from."""
        from clear_core.config import SearchConfig

        if self.kind != "sae":
            raise ValueError(f"a {self.kind} eraser keeps no search; only SAE erasers do")
        m = self.meta
        missing = [k for k in ("layer_names", "candidates", "layer_probs", "scales", "search") if k not in m]
        if missing:
            raise ValueError(f"the eraser records no {', '.join(missing)}: it cannot stand for its search")
        return SearchResult(
            layer=self.layer,
            layer_names=list(m["layer_names"]),
            candidates=list(m["candidates"]),
            probs=list(m["layer_probs"]),
            scales=list(m["scales"]),
            sae=self.sae,
            config=SearchConfig(**m["search"]),
            cancelled=bool(m.get("search_cancelled", False)),
            stop_reason=str(m.get("search_stop", "")),
        )

    @property
    def component(self) -> str:
        """The pipeline attribute of the text encoder this eraser edits (``text_encoder_2`` for Flux)."""
        return str(self.meta.get("text_encoder") or "text_encoder")

    @property
    def encoding(self) -> EncodingProfile:
        """How the encoder was run when the eraser was searched (clear_core/profiles.py)."""
        return EncodingProfile.from_json(self.meta.get("encoding"))

    def check_encoder(self, encoder: TextEncoder, allow_other_model: bool = False) -> None:
        """Raise if this eraser does not fit ``encoder``: other weights, block layout or width.

        Erasers record a fingerprint of the encoder's weights (clear_core/fingerprint.py), so the same
        weights loaded from another folder, path spelling, pipeline or dtype are accepted and really
        different ones refused. Erasers saved before fingerprints existed fall back to the model name.
        """
        stored = self.meta.get("encoder_fingerprint")
        if allow_other_model:
            pass
        elif isinstance(stored, dict):
            if not fingerprints_match(stored, encoder.fingerprint):
                raise ValueError(
                    f"eraser for {self.concept!r} was built for encoder {self.model_id!r} (weights "
                    f"{short(stored)}), not {encoder.model_id!r} (weights {short(encoder.fingerprint)})"
                )
        elif _same_name(encoder.model_id) != _same_name(self.model_id):
            raise ValueError(
                f"eraser for {self.concept!r} was built for model {self.model_id!r}, not {encoder.model_id!r}"
            )
        if encoder.d_model != self.d_model:
            raise ValueError(
                f"eraser width {self.d_model} does not match the encoder's d_model {encoder.d_model}"
            )
        self.block_of(encoder)
        if self.lookahead:
            self.block_of(encoder, self.probe_layer)


def _same_name(model_id: str) -> str:
    """A model name with a local path's spelling normalised (``./m/``, ``m`` and ``/abs/m`` agree)."""
    base, sep, component = model_id.rpartition(":")
    if not (sep and component.startswith("text_encoder")):
        base, component = model_id, ""
    path = Path(base)
    name = str(path.resolve()) if path.exists() else base.rstrip("/")
    return f"{name}:{component}" if component else name


@contextmanager
def applied_many(erasers: Sequence[tuple[Eraser, float | None]], target: Any) -> Iterator[None]:
    """Apply several erasers at once (same or different blocks), in the order given."""
    handlers, roots = [], {}
    for eraser, gamma in erasers:
        block = eraser.block_of(target)
        handlers.append(Handler(block, lambda h, e=eraser, g=gamma: e.edit(h, g, _POSITIONS.get())))
        if eraser.prompt_level:
            root = _encoder_root(target, eraser.component)
            if root is not None:
                roots[id(root)] = root
    handlers += [Handler(root, _record_positions, kind="replace") for root in roots.values()]
    deep: dict[int, list] = {}  # root -> [root, {layer: block}]: probe gates reading deeper layers
    for eraser, _ in erasers:
        if eraser.lookahead:
            root = _encoder_root(target, eraser.component)
            if root is None:
                raise ValueError(f"cannot find the text encoder of {type(target).__name__} for a probe gate")
            deep.setdefault(id(root), [root, {}])[1][eraser.probe_layer] = eraser.block_of(
                target, eraser.probe_layer
            )
    handlers += [Handler(root, _first_pass(root, blocks), kind="replace") for root, blocks in deep.values()]
    before = _POSITIONS.set(None)
    states = _LOOKAHEAD.set({})
    try:
        with scoped_hooks(handlers):
            yield
    finally:
        _LOOKAHEAD.reset(states)
        _POSITIONS.reset(before)


def _first_pass(root: nn.Module, blocks: dict[int, nn.Module]):
    """A replace handler for ``root`` that runs it once with no edit, records the output of each of
    ``blocks`` ({layer: block}) for the probe gates that read them (:data:`_LOOKAHEAD`), and lets the
    edited pass run after it."""

    def run(args: tuple, kwargs: dict) -> None:
        recorded: dict[int, torch.Tensor] = {}

        def keep(layer: int):
            return lambda hidden: recorded.__setitem__(layer, hidden.detach())

        with isolated_hooks([Handler(block, keep(layer)) for layer, block in blocks.items()]):
            original_forward(root)(*args, **kwargs)
        _LOOKAHEAD.set({**(_LOOKAHEAD.get() or {}), **recorded})  # nested contexts keep each other's
        return None

    return run


def _encoder_root(target: Any, component: str) -> nn.Module | None:
    """The text encoder module that ``target`` calls with the attention mask."""
    if isinstance(target, TextEncoder):
        return target.model
    if isinstance(target, nn.Module):
        return target
    root = getattr(target, component, None)
    return root if isinstance(root, nn.Module) else None


def _record_positions(args: tuple, kwargs: dict) -> None:
    """A replace handler that only reads: the call's attention mask (HF order: input_ids, mask), or
    None (every position counts, as in an encoder run without a mask); the forward then runs."""
    mask = kwargs.get("attention_mask")
    if mask is None and len(args) > 1 and isinstance(args[1], torch.Tensor):
        mask = args[1]
    _POSITIONS.set(mask if isinstance(mask, torch.Tensor) and mask.dim() == 2 else None)
    return None


def check_erasers(pipe: Any, erasers: Sequence[Eraser]) -> None:
    """Refuse erasers made for another encoder of ``pipe`` (a diffusers pipeline or the testbed), or
    searched under another encoding profile than the one the pipeline runs its encoder with."""
    seen: set[int] = set()
    known = pipeline_encoding(pipe)
    for eraser in erasers:
        if id(eraser) in seen:
            raise ValueError(f"the eraser for {eraser.concept!r} is given twice")
        seen.add(id(eraser))
        encoder = TextEncoder.from_pipeline(pipe, eraser.component)
        eraser.check_encoder(encoder)
        profile = known.profile if known and known.component == eraser.component else MASKED
        if not eraser.encoding.same_states(profile):
            raise ValueError(
                f"the eraser for {eraser.concept!r} was searched on {eraser.encoding.name!r} states "
                f"(mask={eraser.encoding.attention_mask}, positions={eraser.encoding.positions}), but "
                f"{type(pipe).__name__} runs its encoder as {profile.name!r} (mask={profile.attention_mask}, "
                f"positions={profile.positions}, length {profile.max_length}); search again with "
                "--model <the pipeline folder> so the SAE sees what the denoiser reads"
            )
