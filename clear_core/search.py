"""CLEAR's differentiable layer search (DESIGN.md "Search", the paper's Algorithm 1).

Learnable logits α over the candidate blocks; each step samples p = GumbelSoftmax(α, τ) with τ annealed
linearly from ``tau_start`` to ``tau_end``. One SAE reads the p-weighted mixture of the blocks' token
activations. Step 1 updates the SAE on L_SAE with p fixed; step 2 updates α on L_con + L_SAE with the
SAE fixed. The chosen block is argmax α.

Decisions the paper leaves open (DESIGN.md "Pitfalls"), made here:

* **Normalisation.** Each block is divided by its mean real-token L2 norm (``scales``), measured on
  the concept's own prompts, so every block enters the mixture at unit mean norm and no block wins
  by norm alone. The scale is stored with the eraser and undone at erasure time.
* **Statistics.** The SAE trains on tokens (erasure edits every token). The masks inside L_con are
  per token: f̄_neg is the mean SAE activation over the batch's negative-prompt tokens, recomputed
  every step from the current SAE (detached: they are statistics, not a path for gradients);
  S_spe and S_uni sum over the batch's positive-prompt tokens.
* **Batches.** A batch is ``batch_pairs`` pairs: all real tokens of their positive and negative
  prompts. Pad tokens never appear (captures hold real tokens only).

Seeded runs are reproducible bit for bit on the CPU: one ``torch.Generator`` drives initialisation,
batch sampling and Gumbel noise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from clear_core.config import SearchConfig
from clear_core.encoders import Activations
from clear_core.sae import SAE, SAEConfig, SparseSAEOutput, sae_update

__all__ = [
    "DECISIVE_PROB",
    "BlockVerdict",
    "block_verdict",
    "BruteForceResult",
    "LayerUncertainty",
    "LayerSearch",
    "SearchConfig",
    "SearchEvent",
    "SearchResult",
    "brute_force_search",
    "gumbel_noise",
    "gumbel_softmax",
    "layer_scales",
    "layer_uncertainty",
    "paper_masks",
]


@dataclass
class SearchEvent:
    """Progress of a search, yielded every ``event_every`` steps (what the live chart draws)."""

    step: int
    """Steps done so far (1-based)."""
    total: int
    """Steps planned."""
    tau: float
    """Temperature used at this step."""
    probs: list[float]
    """softmax(α) over the candidate layers (noise-free layer probabilities)."""
    loss_sae: float
    """L_SAE on this step's batch (after step 1)."""
    loss_con: float
    """L_con on this step's batch."""
    loss_clear: float
    """L_con + L_SAE (what step 2 minimises; L_SAE alone when use_con is False)."""
    mse: float
    """Reconstruction part of L_SAE."""
    l0: float
    """Mean active features per token."""
    n_specific: int
    """Features with m_spec > 0.5 under the paper's mask on this batch."""
    elapsed: float
    """Seconds since the search started."""
    stop_reason: str | None = None
    """On the last event only: why the search ended ("converged ...", "all N steps", "stopped")."""

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class SearchResult:
    """The outcome of a search: the chosen block and the SAE trained on the way."""

    layer: int
    """Chosen layer index into the capture's ``layer_names`` (argmax α)."""
    layer_names: list[str]
    """All layer names of the capture."""
    candidates: list[int]
    """Candidate layer indices, in the order of ``probs``."""
    probs: list[float]
    """Final softmax(α) over the candidates."""
    scales: list[float]
    """Normalisation scale (mean token norm) of each candidate."""
    sae: SAE
    """The shared SAE at the end of the search."""
    config: SearchConfig
    """The configuration that produced it."""
    history: list[SearchEvent] = field(default_factory=list)
    """Every progress event, in order."""
    cancelled: bool = False
    """True if the search stopped before ``config.steps``."""
    elapsed: float = 0.0
    """Wall-clock seconds."""
    stop_reason: str = ""
    """Why the search ended: converged early (with the step), all steps done, or stopped by the user."""

    @property
    def layer_name(self) -> str:
        return self.layer_names[self.layer]

    @property
    def scale(self) -> float:
        """Normalisation scale of the chosen layer."""
        return self.scales[self.candidates.index(self.layer)]

    @property
    def uncertainty(self) -> LayerUncertainty:
        """How decided the final layer distribution is (see :func:`layer_uncertainty`)."""
        return layer_uncertainty(self.probs)


RESIDENT_BYTES = 2 * 1024**3
"""Up to this size the search holds the candidate layers of its captures in memory as tensors
(instead of gathering every batch from the memory-mapped capture)."""

DECISIVE_PROB = 0.5
"""A search is *decisive* when its chosen block has at least this probability and at least twice
the runner-up's (the paper reports > 0.9 at 2,500 steps; uniform over MiniLM's 6 blocks is 0.17)."""


@dataclass
class LayerUncertainty:
    """How much the final softmax(α) commits to one block: what the app and eraser.json warn with."""

    top_prob: float
    """Probability of the chosen block."""
    margin: float
    """Chosen block's probability minus the runner-up's."""
    entropy: float
    """Entropy of the distribution divided by log(number of candidates): 0 one-hot, 1 uniform."""
    decisive: bool
    """top_prob ≥ DECISIVE_PROB and ≥ 2× the runner-up (always True with a single candidate)."""

    def to_json(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def layer_uncertainty(probs: list[float]) -> LayerUncertainty:
    """Summarise a layer distribution ``probs`` (sums to 1) for warnings and reports."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 1 or not len(p) or abs(p.sum() - 1) > 1e-3 or (p < 0).any():
        raise ValueError(f"expected a probability vector, got {probs}")
    if len(p) == 1:
        return LayerUncertainty(1.0, 1.0, 0.0, True)
    top2 = np.sort(p)[-2:]
    nz = p[p > 0]
    entropy = float(-(nz * np.log(nz)).sum() / np.log(len(p)))
    decisive = bool(top2[1] >= DECISIVE_PROB and top2[1] >= 2 * top2[0])
    return LayerUncertainty(float(top2[1]), float(top2[1] - top2[0]), entropy, decisive)


@dataclass
class BlockVerdict:
    """How stable the chosen block is across searches that differ only in their seed."""

    seeds: list[int]
    """Seeds searched, the run's own first."""
    blocks: list[int]
    """Block chosen by each (block numbers: layer − 1)."""
    top_probs: list[float]
    """The chosen block's probability in each."""
    agreement: float
    """Share of the searches that chose the run's block."""
    verdict: str
    """One line: "block 3 in 3 of 3 seeds" or "undecided between blocks 2 and 4 (…)"."""

    @property
    def stable(self) -> bool:
        return self.agreement == 1.0

    def to_json(self) -> dict:
        return {**asdict(self), "stable": self.stable}


def block_verdict(results: list[SearchResult]) -> BlockVerdict:
    """The verdict over searches of one concept with different seeds (the first is the run's)."""
    blocks = [r.layer - 1 for r in results]
    chosen = blocks[0]
    agree = sum(b == chosen for b in blocks) / len(blocks)
    if agree == 1.0:
        verdict = f"block {chosen} in {len(blocks)} of {len(blocks)} seeds"
    else:
        counts = {b: blocks.count(b) for b in dict.fromkeys(blocks)}
        ranked = sorted(counts, key=lambda b: (-counts[b], b != chosen))
        verdict = (
            f"undecided between blocks {ranked[0]} and {ranked[1]} ("
            + ", ".join(f"block {b}: {counts[b]} of {len(blocks)} seeds" for b in ranked)
            + ")"
        )
    return BlockVerdict(
        seeds=[r.config.seed for r in results],
        blocks=blocks,
        top_probs=[round(max(r.probs), 4) for r in results],
        agreement=agree,
        verdict=verdict,
    )


def gumbel_noise(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n,) samples of Gumbel(0, 1)."""
    u = torch.rand(n, generator=generator).clamp(1e-10, 1 - 1e-10)
    return -torch.log(-torch.log(u))


def gumbel_softmax(logits: torch.Tensor, tau: float, noise: torch.Tensor) -> torch.Tensor:
    """A relaxed one-hot sample: softmax((logits + g) / τ) for Gumbel noise g."""
    if tau <= 0:
        raise ValueError(f"temperature must be > 0, got {tau}")
    return torch.softmax((logits + noise) / tau, dim=-1)


def layer_scales(
    acts: list[Activations], layers: list[int], max_tokens: int = 20000, seed: int = 0
) -> list[float]:
    """Mean real-token L2 norm of each layer, over (a seeded sample of) the tokens of ``acts``."""
    rng = np.random.default_rng(seed)
    norms = []
    for layer in layers:
        values = []
        for a in acts:
            rows = np.arange(a.n_tokens)
            if a.n_tokens > max_tokens:
                rows = np.sort(rng.choice(a.n_tokens, max_tokens, replace=False))
            values.append(np.linalg.norm(a.tokens(rows, [layer])[0].numpy(), axis=-1))
        norms.append(float(np.concatenate(values).mean()))
    if min(norms) <= 0:
        raise ValueError("a candidate layer has zero activations; it cannot be normalised")
    return norms


def paper_masks(f_neg: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """(m_shared, m_spec) from negative-prompt activations ``f_neg (n, d_sae)``, as in the paper."""
    mean = f_neg.mean(0)
    shared = mean / (mean.max() + eps)
    return shared, 1 - shared


def _con_loss(f_pos: torch.Tensor, f_neg: torch.Tensor, eps: float) -> tuple[torch.Tensor, int]:
    shared, spec = paper_masks(f_neg.detach(), eps)
    s_spe = (f_pos * spec).sum()
    s_uni = (f_pos * shared).sum()
    return torch.log1p(s_uni / (s_spe + eps)), int((spec > 0.5).sum())


def _con_loss_sparse(out: SparseSAEOutput, n_pos: int, eps: float) -> tuple[torch.Tensor, int]:
    """:func:`_con_loss` on a sparse top-k output whose first ``n_pos`` rows are positive tokens:
    f̄_neg is a sum over the active entries, S_spe and S_uni gather the masks at the active features."""
    mean = out.feature_means(slice(n_pos, None)).detach()
    shared = mean / (mean.max() + eps)
    spec = 1 - shared
    values, indices = out.values[:n_pos], out.indices[:n_pos]
    s_spe = (values * spec[indices]).sum()
    s_uni = (values * shared[indices]).sum()
    return torch.log1p(s_uni / (s_spe + eps)), int((spec > 0.5).sum())


class LayerSearch:
    """A search over the blocks of paired captures. Iterate :meth:`run`; read :attr:`result`.

    ``pos`` and ``neg`` are captures of the positive and negative prompts (pair ``i`` is prompt ``i``
    of each). ``protected``: a capture of look-alike prompts to keep (clear_core/lookalikes.py): each
    step adds a batch of them to the negatives, so the SAE learns their features too and L_con counts
    what they use as shared. Stopping early — leaving the loop, closing the generator, or ``should_stop()`` returning
    True — still leaves a :attr:`result` (with ``cancelled=True``) built from the state reached.
    """

    def __init__(
        self,
        pos: Activations,
        neg: Activations,
        config: SearchConfig | None = None,
        protected: Activations | None = None,
    ) -> None:
        self.config = config or SearchConfig()
        if pos.layer_names != neg.layer_names or pos.d_model != neg.d_model:
            raise ValueError("positive and negative captures come from different encoders or layers")
        if protected is not None and (
            protected.layer_names != pos.layer_names or protected.d_model != pos.d_model
        ):
            raise ValueError("the look-alike capture comes from a different encoder or layer layout")
        if pos.n_prompts != neg.n_prompts:
            raise ValueError(
                f"{pos.n_prompts} positive but {neg.n_prompts} negative prompts; pairs must match"
            )
        if pos.n_prompts < 2:
            raise ValueError(f"a search needs at least 2 pairs, got {pos.n_prompts}")
        blocks = [i for i, n in enumerate(pos.layer_names) if n != "embeddings"]
        self.candidates = list(self.config.layers) if self.config.layers is not None else blocks
        bad = [i for i in self.candidates if not 0 <= i < pos.n_layers]
        if bad:
            raise ValueError(f"candidate layers {bad} out of range 0..{pos.n_layers - 1}")
        self.pos, self.neg = pos, neg
        self.protected = protected if protected is not None and protected.n_prompts else None
        self.result: SearchResult | None = None
        self._gen = torch.Generator().manual_seed(self.config.seed)
        self.scales = layer_scales([pos, neg], self.candidates, seed=self.config.seed)
        self._scale_t = torch.tensor(self.scales).view(-1, 1, 1)
        self._resident, self._starts = self._load_resident()
        c = self.config
        self.sae = SAE(
            SAEConfig(pos.d_model, c.d_sae, c.l1_coefficient, kind=c.sae_kind, k=min(c.k, c.d_sae)), self._gen
        )
        self.alpha = torch.zeros(len(self.candidates), requires_grad=True)
        self._init_b_dec()

    def _load_resident(self) -> tuple[torch.Tensor | None, dict[int, int]]:
        """The candidate layers of every capture, normalised and concatenated along tokens into one
        tensor held in memory, with the first row of each capture (keyed by ``id``), when they fit in
        :data:`RESIDENT_BYTES`; else (None, {}) and every step reads its batch from the
        (memory-mapped) captures. Same numbers either way."""
        captures = [a for a in (self.pos, self.neg, self.protected) if a is not None]
        size = sum(a.n_tokens for a in captures) * len(self.candidates) * self.pos.d_model * 4
        if size > RESIDENT_BYTES:
            return None, {}
        starts = np.cumsum([0] + [a.n_tokens for a in captures]).tolist()
        tokens = torch.cat([a.tokens(np.arange(a.n_tokens), self.candidates) for a in captures], 1)
        tokens.div_(self._scale_t)  # in place: the concatenation is the only copy held
        return tokens, {id(a): start for a, start in zip(captures, starts)}

    def _batch(self, *parts: tuple[Activations, np.ndarray]) -> torch.Tensor:
        """(n_candidates, tokens, d_model) normalised tokens of the given (capture, prompts) parts, in
        order: one gather from the resident tensor, or one read per part from the captures."""
        rows = [
            np.concatenate([np.arange(acts.offsets[i], acts.offsets[i + 1]) for i in prompts])
            for acts, prompts in parts
        ]
        if self._resident is not None:
            shifted = np.concatenate([r + self._starts[id(acts)] for r, (acts, _) in zip(rows, parts)])
            return self._resident.index_select(1, torch.from_numpy(shifted))
        batches = [acts.tokens(r, self.candidates) / self._scale_t for r, (acts, _) in zip(rows, parts)]
        return batches[0] if len(batches) == 1 else torch.cat(batches, 1)

    @torch.no_grad()
    def _init_b_dec(self) -> None:
        idx = np.arange(min(self.pos.n_prompts, 64))
        self.sae.b_dec.copy_(self._batch((self.pos, idx), (self.neg, idx)).mean((0, 1)))

    def _tau(self, step: int) -> float:
        c = self.config
        frac = step / max(c.steps - 1, 1)
        return c.tau_start + (c.tau_end - c.tau_start) * frac

    def run(self, should_stop: Callable[[], bool] | None = None) -> Iterator[SearchEvent]:
        c = self.config
        opt_sae = torch.optim.Adam(self.sae.parameters(), lr=c.lr_sae, fused=True)  # one kernel per step
        opt_alpha = torch.optim.Adam([self.alpha], lr=c.lr_alpha)
        n_pairs = self.pos.n_prompts
        batch = min(c.batch_pairs, n_pairs)
        history: list[SearchEvent] = []
        start = time.perf_counter()
        step = 0
        converged = ""
        watch = _Convergence(c, len(self.candidates))
        try:
            for step in range(1, c.steps + 1):
                if should_stop is not None and should_stop():
                    step -= 1
                    break
                tau = self._tau(step - 1)
                pairs = torch.randperm(n_pairs, generator=self._gen)[:batch].numpy()
                parts = [(self.pos, pairs), (self.neg, pairs)]
                if self.protected is not None:  # look-alikes: more negatives, and SAE training tokens
                    n_keep = self.protected.n_prompts
                    keep = torch.randperm(n_keep, generator=self._gen)[: min(batch, n_keep)].numpy()
                    parts.append((self.protected, keep))
                n_pos = int(self.pos.offsets[pairs + 1].sum() - self.pos.offsets[pairs].sum())
                x = self._batch(*parts)  # positives' tokens first, then the negatives'
                noise = gumbel_noise(len(self.candidates), self._gen)
                p_fixed = gumbel_softmax(self.alpha.detach(), tau, noise)

                # Step 1: θ on L_SAE, p fixed.
                out = sae_update(self.sae, opt_sae, torch.einsum("l,ltd->td", p_fixed, x), c.clip_grad)

                # Step 2: α on L_con + L_SAE, θ fixed (same Gumbel sample, now with a gradient path).
                # With one candidate softmax(α) is 1 whatever α is: score the batch, skip the update.
                single = len(self.candidates) == 1
                p = gumbel_softmax(self.alpha if not single else self.alpha.detach(), tau, noise)
                self.sae.requires_grad_(False)
                sparse = isinstance(out, SparseSAEOutput)
                try:
                    with torch.set_grad_enabled(not single):
                        mix = torch.einsum("l,ltd->td", p, x)
                        if sparse:
                            out2 = out if single else self.sae.forward_topk(mix)
                            con, n_spec = _con_loss_sparse(out2, n_pos, c.eps)
                        else:
                            out2 = out if single else self.sae(mix)
                            f_pos, f_neg = out2.features[:n_pos], out2.features[n_pos:]
                            con, n_spec = _con_loss(f_pos.detach() if single else f_pos, f_neg, c.eps)
                        loss = out2.loss + con if c.use_con else out2.loss
                    if not single:
                        opt_alpha.zero_grad(set_to_none=True)
                        loss.backward()
                        opt_alpha.step()
                finally:
                    self.sae.requires_grad_(True)

                probs = torch.softmax(self.alpha.detach(), -1)
                converged = watch.update(step, probs, out.loss.item())
                if step % c.event_every == 0 or step == c.steps or converged:
                    event = SearchEvent(
                        step=step,
                        total=c.steps,
                        tau=tau,
                        probs=probs.tolist(),
                        loss_sae=out.loss.item(),
                        loss_con=con.item(),
                        loss_clear=loss.item(),
                        mse=out.mse.item(),
                        l0=float((out.values > 0).float().sum(-1).mean())
                        if sparse
                        else float((out.features > 0).float().sum(-1).mean()),
                        n_specific=n_spec,
                        elapsed=time.perf_counter() - start,
                        stop_reason=converged or (f"all {c.steps} steps" if step == c.steps else None),
                    )
                    history.append(event)
                    yield event
                if converged:
                    break
        finally:
            reason = converged or (f"all {c.steps} steps" if step == c.steps else f"stopped at step {step}")
            if history and history[-1].step == step:
                history[-1].stop_reason = reason
            self.result = self._finish(
                history,
                cancelled=step < c.steps and not converged,
                elapsed=time.perf_counter() - start,
                stop_reason=reason,
            )

    def _finish(
        self, history: list[SearchEvent], cancelled: bool, elapsed: float, stop_reason: str = ""
    ) -> SearchResult:
        self.sae.fold_decoder_norm()
        self.sae.eval()
        probs = torch.softmax(self.alpha.detach(), -1)
        chosen = self.candidates[int(probs.argmax())]
        return SearchResult(
            layer=chosen,
            layer_names=list(self.pos.layer_names),
            candidates=list(self.candidates),
            probs=probs.tolist(),
            scales=list(self.scales),
            sae=self.sae,
            config=self.config,
            history=history,
            cancelled=cancelled,
            elapsed=elapsed,
            stop_reason=stop_reason,
        )


class _Convergence:
    """Tracks the block distribution and L_SAE step by step; says when the search has converged
    (``SearchConfig.early_stop``): see :attr:`SearchConfig.stop_window` for the rule."""

    def __init__(self, config: SearchConfig, n_candidates: int) -> None:
        self.config = config
        self.single = n_candidates == 1
        self.tops: list[tuple[int, float]] = []
        self.losses: list[float] = []

    def update(self, step: int, probs: torch.Tensor, loss_sae: float) -> str:
        """ "" while training should go on, else the reason it converged."""
        c = self.config
        top = int(probs.argmax())
        self.tops.append((top, float(probs[top])))
        self.losses.append(loss_sae)
        window = c.stop_window
        if not c.early_stop or step < max(c.min_steps, window) or step >= c.steps:
            return ""
        recent = self.tops[-window:]
        same_block = self.single or all(t == top and p >= c.stop_prob for t, p in recent)
        half = window // 2
        before = float(np.mean(self.losses[-window:-half]))
        after = float(np.mean(self.losses[-half:]))
        if same_block and after >= before * (1 - c.stop_tolerance):
            return (
                f"converged at step {step}: the block held p ≥ {c.stop_prob:g} for {window} steps and "
                f"L_SAE changed by {(after - before) / before:+.1%}"
            )
        return ""


@dataclass
class BruteForceResult:
    """The brute-force ablation: one SAE per block, each scored by L_CLEAR on all tokens."""

    layer: int
    """Block with the lowest score."""
    candidates: list[int]
    """Blocks tried."""
    scores: list[float]
    """L_con + L_SAE of each block's own SAE over all pairs (lower is more separable)."""
    results: list[SearchResult]
    """Each block's single-layer search result (its SAE, scale, history)."""


@torch.no_grad()
def _score(
    result: SearchResult, pos: Activations, neg: Activations, protected: Activations | None = None
) -> float:
    layer, scale = result.layer, result.scale
    xp = torch.from_numpy(pos.layer(layer)) / scale
    xn = torch.from_numpy(neg.layer(layer)) / scale
    if protected is not None and protected.n_prompts:
        xn = torch.cat([xn, torch.from_numpy(protected.layer(layer)) / scale])
    out = result.sae(torch.cat([xp, xn]))
    con, _ = _con_loss(out.features[: len(xp)], out.features[len(xp) :], result.config.eps)
    return float(out.loss + con)


def brute_force_search(
    pos: Activations,
    neg: Activations,
    config: SearchConfig | None = None,
    should_stop: Callable[[], bool] | None = None,
    protected: Activations | None = None,
) -> Iterator[tuple[int, SearchEvent]]:
    """Train an SAE per candidate block (L× the cost of one search) and score each (``protected``:
    look-alike prompts as extra negatives, as in :class:`LayerSearch`).

    Yields ``(candidate_position, event)``; the :class:`BruteForceResult` is the generator's return
    value (``StopIteration.value``; use :func:`run_brute_force` for a plain call).
    """
    config = config or SearchConfig()
    candidates = (
        list(config.layers) if config.layers is not None else LayerSearch(pos, neg, config).candidates
    )
    results, scores = [], []
    for i, layer in enumerate(candidates):
        single = SearchConfig(**{**asdict(config), "layers": (layer,)})
        search = LayerSearch(pos, neg, single, protected=protected)
        for event in search.run(should_stop):
            yield i, event
        results.append(search.result)
        scores.append(_score(search.result, pos, neg, protected))
        if search.result.cancelled:
            break
    best = candidates[int(np.argmin(scores))] if scores else candidates[0]
    return BruteForceResult(best, candidates[: len(scores)], scores, results)


def run_brute_force(
    pos: Activations, neg: Activations, config: SearchConfig | None = None
) -> BruteForceResult:
    gen = brute_force_search(pos, neg, config)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def tau_schedule(config: SearchConfig) -> list[float]:
    """The temperature at every step (for charts and tests)."""
    return [
        config.tau_start + (config.tau_end - config.tau_start) * s / max(config.steps - 1, 1)
        for s in range(config.steps)
    ]
