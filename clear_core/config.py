"""The run configurations: what a search and an eraser are made with, and their defaults.

One source of defaults: the command line and the app build their options from these dataclasses
(fields, defaults, and the first line of each field's docstring as help), and each checks itself in
``__post_init__``. This module imports no torch, so ``--help`` and input errors answer at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from clear_core.validation import GAMMA_LIMIT, check_gamma, check_number

__all__ = [
    "CALIBRATE_ON",
    "GATE_SCOPES",
    "DEFAULT_GAMMAS",
    "ERASER_KINDS",
    "MASKS",
    "SAE_KINDS",
    "EraserOptions",
    "SearchConfig",
]

SAE_KINDS = ("relu", "topk", "batchtopk")
"""SAE activations (clear_core/sae.py)."""
MASKS = ("contrastive", "paper")
"""Mask rules of an SAE eraser (clear_core/erasure.py)."""
ERASER_KINDS = ("sae", "steering", "leace")
"""What an eraser subtracts: CLEAR's SAE features, the dense steering vector, or LEACE's projection."""
CALIBRATE_ON = ("text", "frames")
"""What a γ calibration measures (EraserOptions.calibrate_on)."""
GATE_SCOPES = ("token", "prompt")
"""What a gate decides for (EraserOptions.gate_scope): each token, or each prompt."""
DEFAULT_GAMMAS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
"""The γ grid of a calibration sweep and of ``evaluate``."""


@dataclass
class SearchConfig:
    """Everything that defines a search run (the CLI and the app read these same defaults)."""

    steps: int = 300
    """Optimisation steps (the paper: 2,500 on GPUs; scaled so a search takes < 60 s on 2 cores)."""
    batch_pairs: int = 16
    """Prompt pairs per step (the paper's batch size)."""
    d_sae: int = 2048
    """SAE features."""
    l1_coefficient: float = 3e-2
    """λ in L_SAE of the "relu" SAE (inputs have unit mean norm)."""
    sae_kind: str = "topk"
    """SAE activation: "topk" (default: exactly ``k`` features per token), "batchtopk" or "relu" (L1)."""
    k: int = 64
    """Active features per token of the top-k SAEs (capped at ``d_sae``). Measured on parachute (held-out
    implicit leakage at the calibrated γ): k = 32 left 0.42, k = 64 reached 0.00 like the L1 SAE (L0 ≈ 120)."""
    clip_grad: float | None = 1.0
    """Gradient-norm clipping of the SAE update (SAELens' trainer); None to switch off."""
    lr_sae: float = 1e-3
    """Adam learning rate of the SAE (step 1; the paper's value)."""
    lr_alpha: float = 1e-1
    """Adam learning rate of the layer logits α (step 2). The paper's 3e-2 is tuned for 2,500 steps; at
    300 its distributions stayed undecided (top probability 0.27–0.57 on MiniLM)."""
    tau_start: float = 1.0
    """Gumbel-softmax temperature at the first step."""
    tau_end: float = 0.1
    """Temperature at the last step (linear annealing)."""
    use_con: bool = True
    """Include L_con in step 2; False is the paper's reconstruction-only ablation."""
    layers: tuple[int, ...] | None = None
    """Candidate layer indices into the capture; None means every block (not the embeddings)."""
    seed: int = 0
    """Seeds initialisation, batches and Gumbel noise."""
    eps: float = 1e-6
    """ε in the masks and in L_con."""
    event_every: int = 5
    """Yield a progress event every this many steps (and at the last step)."""
    early_stop: bool = True
    """Stop before ``steps`` once the search has converged (see :attr:`stop_window`); recorded in the
    result and its history with the reason."""
    min_steps: int = 100
    """No early stop before this many steps."""
    stop_window: int = 50
    """Converged: over the last this many steps the chosen block stayed the same with probability ≥
    ``stop_prob`` all along, and L_SAE fell by less than ``stop_tolerance`` (relative) between the two
    halves of the window."""
    stop_prob: float = 0.9
    """Block probability the chosen block must hold over the whole window to stop early."""
    stop_tolerance: float = 0.1
    """Relative fall of L_SAE between the halves of the window below which the SAE has converged."""
    verdict_seeds: int = 0
    """Extra searches with the next seeds, to say how stable the chosen block is (each costs one more
    search); 0 reports the block probabilities alone."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_pairs", "d_sae", "event_every", "min_steps", "stop_window"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        for name in ("lr_sae", "lr_alpha", "tau_start", "tau_end", "eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.verdict_seeds <= 16:
            raise ValueError(f"verdict_seeds must be in 0..16, got {self.verdict_seeds}")
        if not 0 < self.stop_prob <= 1 or not 0 <= self.stop_tolerance < 1:
            raise ValueError(
                f"stop_prob must be in (0, 1] and stop_tolerance in [0, 1), got {self.stop_prob}, "
                f"{self.stop_tolerance}"
            )
        if self.l1_coefficient < 0:
            raise ValueError(f"l1_coefficient must be ≥ 0, got {self.l1_coefficient}")
        if self.sae_kind not in SAE_KINDS:
            raise ValueError(f"sae_kind must be one of {SAE_KINDS}, got {self.sae_kind!r}")
        if self.k < 1:
            raise ValueError(f"k must be ≥ 1, got {self.k}")
        if self.clip_grad is not None and not self.clip_grad > 0:
            raise ValueError(f"clip_grad must be > 0 or None, got {self.clip_grad}")
        if self.layers is not None:
            self.layers = tuple(int(i) for i in self.layers)
            if not self.layers or len(set(self.layers)) != len(self.layers):
                raise ValueError(f"layers must be a non-empty list of distinct indices, got {self.layers}")

    def to_json(self) -> dict:
        out = asdict(self)
        out["layers"] = list(self.layers) if self.layers is not None else None
        return out


@dataclass
class EraserOptions:
    """How the eraser is built from the search (ablations included)."""

    kind: str = "sae"
    """"sae" (CLEAR), "steering" (dense mean-difference vector at the chosen block) or "leace"
    (EleutherAI's LEACE at the chosen block, package ``concept-erasure``)."""
    mask: str = "contrastive"
    """"contrastive" (default; keeps unrelated prompts) or "paper" (the paper's literal mask)."""
    method: str = "search"
    """"search" (Gumbel-softmax) or "brute_force" (one SAE per block, L× the cost)."""
    layer: int | None = None
    """Force this layer for the eraser instead of the search's choice (the search still runs)."""
    calibrate: bool = True
    """Pick the default γ from a sweep; False keeps ``gamma``."""
    calibrate_on: str = "text"
    """What the sweep measures: "text" (the encoder's output: probe leakage, cosine preservation) or
    "frames" (the CPU testbed's generated frames of the calibration prompts: detected rate and
    preservation; needs the default encoder, MiniLM, and a concept the testbed draws)."""
    gamma: float = 1.0
    """γ when not calibrating."""
    preserve_min: float = 0.95
    """Calibration floor on the mean cosine of unrelated prompts."""
    gammas: tuple[float, ...] = DEFAULT_GAMMAS
    """The γ grid of the calibration sweep."""
    calibration_pairs: int = 64
    """Pairs used for calibration (an evenly spaced subset keeps it fast)."""
    calibrate_on_implicit: bool = True
    """Also minimise leakage on the calibration half of the implicit prompts; the other half stays
    held out. False: explicit positives only."""
    holdout: float = 0.25
    """Share of the pairs held out of the search, masks, gates and calibration (clear_core/splits.py):
    every number the run reports comes from them. 0 uses every pair (nothing held out)."""
    context_gate: bool | None = None
    """Context gate, on by default for the SAE eraser with the contrastive mask (None: that rule): erase a
    token only as far as its concept-specific features go beyond the highest level the fit negatives
    reach, so the scene words that co-occur with the concept stay (docs/precision.md)."""
    gate_ramp: float = 0.01
    """Context gate's ramp: how far beyond the gate's margin a token must go to be erased in full, as a
    share of the concept tokens' median excess. 1 erases in proportion to the excess (soft: paraphrases,
    whose concept features pass the margin by little, keep the concept); 0.01 erases any token beyond
    the margin in full (sharp: chosen on the calibration half of the implicit prompts, docs/precision.md)."""
    gate_scope: str = "token"
    """What the gates decide for (``Eraser.gate_scope``): "token", each token by its own score; "prompt",
    every token of a prompt by its highest-scoring token (a prompt that evokes the concept anywhere is
    erased in full, one that does not is left alone)."""
    prompt_gate: bool | None = None
    """Prompt gate, on with the context gate by default (None: that rule): a prompt is edited only when
    one of its tokens goes beyond the highest score any token of the calibration half of the unrelated
    prompts (and the gate's negatives) reaches; inside a prompt that passes, the context gate decides
    token by token. Keeps prompts that name none of the concepts untouched when many erasers run at once
    (docs/precision.md)."""
    probe_gate: bool = False
    """Probe gate (needs the context or look-alike gate): a logistic probe on each prompt's mean-pooled
    block states, fitted on the fit pairs, the calibration halves of the implicit and unrelated prompts,
    other built-in concepts' prompts (those that read as this concept dropped), the protected look-alikes
    and the empty prompt; every token of a prompt it calls the concept is erased at s·γ, so paraphrases
    that pass the token gate's margin by little are erased too (``Eraser.probe``, docs/precision.md). It
    is switched off, with a warning, where it calls the empty prompt the concept or where every strength
    costs a calibration floor. Its strength s is calibrated on text, so it does not combine with
    ``calibrate_on="frames"``."""
    null_space: float = 0.0
    """Null-space edit: project the subtracted vector off the subspace holding this share of the fit
    negatives' token energy at the block (SPEED-style); 0 is off, 0.9 a typical value."""
    preserve: tuple[str, ...] | None = None
    """Look-alikes to keep (clear_core/lookalikes.py): prompts about them, written from the pairs, are
    protected negatives of the search and the mask, and the calibration keeps them ≥ ``lookalike_min``.
    None: the pack's built-in preserve list (none for other concepts); ``()`` switches it off."""
    preserve_prompts: tuple[str, ...] = ()
    """Whole prompts to keep as well (a user's file), protected and held out the same way."""
    lookalike_min: float = 0.98
    """Calibration floor on the mean cosine of the look-alikes' protect-half prompts."""
    protect_weight: float = 1.0
    """w in m_spec ∝ ReLU(f̄_pos − max(f̄_neg, w·f̄_protected))."""
    gate: bool = False
    """Look-alike gate (needs a preserve list): erase a token only as far as its concept-specific
    features exceed the highest level the look-alikes reach (``Eraser.gate_floor``)."""

    def __post_init__(self) -> None:
        if self.kind not in ERASER_KINDS:
            raise ValueError(f"kind must be one of {ERASER_KINDS}, got {self.kind!r}")
        if self.mask not in MASKS:
            raise ValueError(f"mask must be one of {MASKS}, got {self.mask!r}")
        if self.method not in ("search", "brute_force"):
            raise ValueError(f"method must be 'search' or 'brute_force', got {self.method!r}")
        if not 0 < self.preserve_min <= 1:
            raise ValueError(f"preserve_min must be in (0, 1], got {self.preserve_min}")
        if not 0 < self.lookalike_min <= 1:
            raise ValueError(f"lookalike_min must be in (0, 1], got {self.lookalike_min}")
        self.protect_weight = check_number(self.protect_weight, "protect_weight", minimum=0.0)
        if self.preserve is not None:
            self.preserve = tuple(self.preserve)
        self.preserve_prompts = tuple(self.preserve_prompts)
        if self.calibrate_on not in CALIBRATE_ON:
            raise ValueError(f"calibrate_on must be one of {CALIBRATE_ON}, got {self.calibrate_on!r}")
        if not 0 <= self.holdout < 1:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout}")
        self.null_space = check_number(self.null_space, "null_space", minimum=0.0, maximum=1.0)
        self.gate_ramp = check_number(self.gate_ramp, "gate_ramp", above=0.0, maximum=1.0)
        if self.gate_scope not in GATE_SCOPES:
            raise ValueError(f"gate_scope must be one of {GATE_SCOPES}, got {self.gate_scope!r}")
        if self.context_gate is None:
            self.context_gate = self.kind == "sae" and self.mask == "contrastive"
        if self.prompt_gate is None:
            self.prompt_gate = bool(self.context_gate or self.gate)
        if self.prompt_gate and not (self.context_gate or self.gate):
            raise ValueError("the prompt gate needs the context gate or the look-alike gate")
        if self.probe_gate and not (self.context_gate or self.gate):
            raise ValueError("the probe gate needs the context gate or the look-alike gate")
        if self.probe_gate and self.calibrate and self.calibrate_on == "frames":
            raise ValueError(
                "the probe gate's γ is calibrated on text; calibrate_on 'frames' does not sweep it "
                "(use one or the other)"
            )
        if (self.context_gate or self.null_space or self.gate) and (
            self.kind != "sae" or self.mask != "contrastive"
        ):
            raise ValueError(
                "the gates and the null-space edit need the SAE eraser with the contrastive mask"
            )
        if self.calibration_pairs < 2:
            raise ValueError(f"calibration_pairs must be ≥ 2, got {self.calibration_pairs}")
        self.gamma = check_gamma(self.gamma)
        if not self.gammas:
            raise ValueError("the calibration γ grid is empty")
        self.gammas = tuple(
            check_number(g, "calibration γ", minimum=0.0, maximum=GAMMA_LIMIT) for g in self.gammas
        )
