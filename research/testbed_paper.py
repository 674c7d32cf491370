"""The paper's claims measured on the CPU testbed.

``python -m research.testbed_paper all --erasers /tmp/tb_paper --out paper.json --png-dir DIR``
runs every experiment on the default concepts (``--only`` to choose); one experiment by name runs
just that one. Each measurement is the testbed's generative rate (share of frames in which the
detector finds the concept, on the pack's positive prompts) and preservation (share of frames of the
pack's negatives, generated from the same latents, on which the detector reads the same object,
style, avatar, clothing and setting with and without the edit), exactly as :mod:`rate` defines them.

* ``blocks`` (Fig. 1 and brute force): the concept erased at every block of MiniLM with the same SAE
  and masks built at that block, at one **fixed γ per concept, CLEAR's calibrated γ**, so only the
  block changes (a γ calibrated per block would mix the block's effect with the calibration's).
  The *brute-force best* block is the one with the lowest rate after among those with preservation ≥
  ``preservation_min`` (ties within 0.01 broken by higher preservation, then the earlier block); when
  none keeps the floor, the one with the highest reduction × preservation. CLEAR agrees when its
  searched block is that block (``clear_is_best``) or is tied with it (``clear_among_best``).
* ``ablations``: CLEAR vs the search without L_con (``--no-con``), the dense steering vector at the
  γ whose unrelated-prompt cosine matches CLEAR's (:func:`variants.steering_baseline`), and the
  paper's literal mask, calibrated by the CLI's own rule and at CLEAR's γ.
* ``negprompt``: the concept's name as the negative prompt under CFG, no eraser (and with CLEAR).
* ``top2``: CLEAR's block together with the search's second most probable block (both at CLEAR's γ).
* ``gamma``: CLEAR's eraser at each γ of ``gammas``.
* ``pairs``: two concepts erased together (one pair whose erasers share a block, one pair on
  different blocks, unless ``pairs`` names them): each concept's rate and preservation vs alone.
* ``implicit``: rate before/after on the pack's implicit prompts (Ring-A-Bell analogue), preservation
  on their matched neutral prompts.

Erasers are built once through the CLI's own :class:`~clear_core.workflow.ClearRun` and cached under
``erasers/<slug>/<variant>``; every variant of a concept reuses its CLEAR search (the SAE is shared
by all blocks), so only ``clear`` and ``nocon`` train. Final scene latents are cached too
(``erasers/<slug>/latents``, keyed by the erasers' digests), so a rerun with a new detector only
decodes and detects.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clear_core.testbed.detector import HEADS, concept_attribute, concept_present
from clear_core.testbed.rate import _flat, pack_prompts

__all__ = [
    "DEFAULT_CONCEPTS",
    "EXPERIMENTS",
    "ConceptBench",
    "EraserBank",
    "PaperConfig",
    "best_block",
    "choose_pairs",
    "run_paper",
]

DEFAULT_CONCEPTS = (
    "parachute",
    "golf_ball",
    "french_horn",
    "church",
    "van_gogh",
    "picasso",
    "barack_obama",
    "nudity",
)
EXPERIMENTS = ("blocks", "ablations", "negprompt", "top2", "gamma", "pairs", "implicit")
Erasers = Sequence[tuple[Any, float | None]]
"""(eraser, γ) pairs applied together; γ None is the eraser's own default."""


@dataclass
class PaperConfig:
    """What the runner measures and how much."""

    concepts: tuple[str, ...] = DEFAULT_CONCEPTS
    """Built-in pack slugs with a testbed detector attribute."""
    experiments: tuple[str, ...] = EXPERIMENTS
    """Which of :data:`EXPERIMENTS` to run."""
    n_prompts: int = 24
    """Pack prompts per concept (evenly spaced through the pack), as in ``experiments erasure``."""
    seeds: int = 2
    """Latents per prompt."""
    seed: int = 0
    """Seed of the latents (drawn as :func:`rate.generative_rate` draws them)."""
    steps: int = 10
    """Denoising steps per clip (as :func:`rate.generative_rate`)."""
    guidance_scale: float = 4.0
    """Classifier-free guidance scale (as :func:`rate.generative_rate`)."""
    gammas: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)
    """The γ sweep."""
    low_gamma_factor: float | None = 0.5
    """``blocks`` is repeated at this fraction of CLEAR's γ, where a weaker edit separates the blocks
    (None: not repeated)."""
    preservation_min: float = 0.9
    """Preservation floor of the brute-force best block (and of the issue's bar)."""
    pairs: tuple[tuple[str, str], ...] | None = None
    """Concept pairs erased together; None picks one same-block and one different-block pair."""
    skip_variants: tuple[str, ...] = ()
    """Ablation erasers not built here (e.g. "nocon", whose search is the slow one): measured where
    already cached under the bank's folder, reported as null elsewhere."""

    def __post_init__(self) -> None:
        self.concepts = tuple(self.concepts)
        if not self.concepts:
            raise ValueError("no concepts")
        from clear_core.concepts import builtin_packs

        for slug in self.concepts:
            concept_attribute(slug)  # raises for a slug the detector cannot read
            if slug not in builtin_packs():
                raise ValueError(f"{slug!r} is not a built-in pack (the runner measures on its prompts)")
        unknown = [e for e in self.experiments if e not in EXPERIMENTS]
        if unknown:
            raise ValueError(f"unknown experiment(s) {unknown}; expected {', '.join(EXPERIMENTS)}")
        self.experiments = tuple(self.experiments)
        if self.steps < 1 or not self.guidance_scale >= 0:
            raise ValueError(
                f"steps must be ≥ 1 and guidance_scale ≥ 0, got {self.steps}, {self.guidance_scale}"
            )
        if self.n_prompts < 1 or self.seeds < 1:
            raise ValueError(f"n_prompts and seeds must be ≥ 1, got {self.n_prompts}, {self.seeds}")
        self.gammas = tuple(float(g) for g in self.gammas)
        if not self.gammas or not all(math.isfinite(g) and g >= 0 for g in self.gammas):
            raise ValueError(f"gammas must be finite numbers ≥ 0, got {self.gammas}")
        if self.low_gamma_factor is not None and not 0 < self.low_gamma_factor <= 1:
            raise ValueError(f"low_gamma_factor must be in (0, 1] or None, got {self.low_gamma_factor}")
        if not 0 < self.preservation_min <= 1:
            raise ValueError(f"preservation_min must be in (0, 1], got {self.preservation_min}")
        self.skip_variants = tuple(self.skip_variants)
        bad = [v for v in self.skip_variants if v not in EraserBank.VARIANTS or v == "clear"]
        if bad:
            raise ValueError(f"skip_variants: {bad} are not ablation variants (nocon, paper, steering)")
        if self.pairs is not None:
            self.pairs = tuple((a, b) for a, b in self.pairs)
            for a, b in self.pairs:
                if a == b or a not in self.concepts or b not in self.concepts:
                    raise ValueError(f"pair {a}+{b}: two different concepts of {self.concepts} expected")


# --------------------------------------------------------------------------------------- erasers
def search_of(eraser):
    """The :class:`SearchResult` an SAE eraser was built from (its SAE is shared by every block)."""
    return eraser.search_result()


class EraserBank:
    """Every eraser the experiments need, built once and cached under ``root/<slug>/<variant>``.

    Variants: ``clear`` (the CLI default; copied from ``clear_from/<slug>`` when there), ``nocon``,
    ``block<b>`` (CLEAR's SAE at block b, CLEAR's γ), ``paper`` (the literal mask, calibrated),
    ``steering`` (at CLEAR's block, matched unrelated-prompt cosine).
    """

    VARIANTS = ("clear", "nocon", "paper", "steering")

    def __init__(
        self,
        root: str | Path,
        clear_from: str | Path | None = None,
        search_steps: int | None = None,
        log: Callable[[str], None] = print,
        concept_of: Callable[[str], Any] | None = None,
    ) -> None:
        """``concept_of``: slug -> ConceptSet (default: the built-in pack, ``load_concept``)."""
        from clear_core.concepts import load_concept

        self.concept_of = concept_of or load_concept
        self.root = Path(root)
        self.clear_from = Path(clear_from) if clear_from else None
        self.search_steps = search_steps
        self.log = log
        self._encoder = None
        self._memo: dict[tuple[str, str], Any] = {}

    @property
    def encoder(self):
        if self._encoder is None:
            from clear_core.encoders import load_encoder

            self._encoder = load_encoder("minilm")
        return self._encoder

    def has(self, slug: str, variant: str) -> bool:
        """Whether the variant is built (in memory or under ``root``)."""
        return (slug, variant) in self._memo or (self.root / slug / variant / "eraser.json").is_file()

    def get(self, slug: str, variant: str):
        from clear_core.erasure import Eraser

        if variant not in self.VARIANTS and not variant.startswith("block"):
            raise ValueError(f"unknown eraser variant {variant!r}")
        key = (slug, variant)
        if key not in self._memo:
            folder = self.root / slug / variant
            if (folder / "eraser.json").is_file():
                self._memo[key] = Eraser.load(folder)
            else:
                t0 = time.perf_counter()
                self.log(f"[erasers] building {slug}/{variant} ...")
                eraser = self._build(slug, variant)
                eraser.save(folder)
                self._memo[key] = eraser
                self.log(
                    f"[erasers] {slug}/{variant}: {eraser.layer_name}, γ = {eraser.gamma:g} "
                    f"({time.perf_counter() - t0:.0f} s)"
                )
        return self._memo[key]

    def _search_config(self, **kw):
        from clear_core.search import SearchConfig

        if self.search_steps is not None:
            kw["steps"] = self.search_steps
        return SearchConfig(**kw)

    def _run(self, slug: str, options, search=None, replay=None):
        from clear_core import workflow

        concept = self.concept_of(slug)
        config = search_of(replay).config if replay is not None else search
        done = search_of(replay) if replay is not None else None
        run = workflow.ClearRun(self.encoder, concept, config, options, search_result=done)
        for _ in run.run():
            pass
        return run.result.eraser

    def _build(self, slug: str, variant: str):
        from clear_core.erasure import Eraser
        from clear_core.workflow import EraserOptions

        if variant == "clear":
            if self.clear_from is not None and (self.clear_from / slug / "eraser.json").is_file():
                shutil.copytree(self.clear_from / slug, self.root / slug / "clear", dirs_exist_ok=True)
                return Eraser.load(self.root / slug / "clear")
            return self._run(slug, EraserOptions(), search=self._search_config())
        if variant == "nocon":
            return self._run(slug, EraserOptions(), search=self._search_config(use_con=False))
        clear = self.get(slug, "clear")
        if variant == "paper":
            return self._run(slug, EraserOptions(mask="paper"), replay=clear)
        if variant == "steering":
            from clear_core.concepts import unrelated_prompts
            from clear_core.generation.variants import steering_baseline

            concept = self.concept_of(slug)
            steer, _, info = steering_baseline(
                self.encoder, clear, clear.gamma, concept.positives, concept.negatives, unrelated_prompts()
            )
            steer.meta.update(info)
            return steer
        block = int(variant.removeprefix("block"))
        if block + 1 == clear.layer:
            return clear
        options = EraserOptions(layer=block + 1, calibrate=False, gamma=clear.gamma)
        return self._run(slug, options, replay=clear)


# --------------------------------------------------------------------------------------- measuring
def _eraser_digest(eraser) -> str:
    from clear_core.generation.variants import eraser_id

    return eraser_id(eraser)


class ConceptBench:
    """Generates and reads one concept's clips; the unerased ones once, every clip's latents cached.

    Prompt sets: ``pack`` (``n_prompts`` pack positives and their negatives) and ``implicit`` (up to
    ``n_prompts`` of the pack's implicit prompts and their matched neutral prompts). Latents are drawn per set as
    :func:`rate.generative_rate` draws them (positives, then negatives, from ``seed``).
    """

    def __init__(self, slug: str, pipe, detector, cfg: PaperConfig, cache: Path | None = None) -> None:
        from clear_core.concepts import load_implicit

        self.slug, self.pipe, self.detector, self.cfg = slug, pipe, detector, cfg
        self.cache = cache
        implicit, neutral = load_implicit(slug)
        idx = np.linspace(0, len(implicit) - 1, num=min(cfg.n_prompts, len(implicit))).round().astype(int)
        self.sets = {
            "pack": pack_prompts(slug, cfg.n_prompts),
            "implicit": ([implicit[i] for i in idx], [neutral[i] for i in idx]),
        }
        self._latents: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._pred: dict[str, dict[str, np.ndarray]] = {}
        self.generated = 0
        """Clips generated by this bench (cache misses), for tests and progress."""
        h = hashlib.sha256()
        for k, v in sorted(pipe.transformer.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().float().contiguous().numpy().tobytes())
        self._model = h.hexdigest()[:12]

    def _start(self, set_name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if set_name not in self._latents:
            pos, neg = self.sets[set_name]
            gen = torch.Generator().manual_seed(self.cfg.seed)
            self._latents[set_name] = (
                torch.randn((len(pos) * self.cfg.seeds, 9, 16), generator=gen),
                torch.randn((len(neg) * self.cfg.seeds, 9, 16), generator=gen),
            )
        return self._latents[set_name]

    def _key(self, set_name: str, side: str, erasers: Erasers, negative_prompt: str | None) -> str:
        what = [
            self._model,
            self.slug,
            set_name,
            self.cfg.n_prompts,
            self.cfg.seeds,
            self.cfg.seed,
            self.cfg.steps,
            self.cfg.guidance_scale,
            side,
            [[_eraser_digest(e), float(e.gamma if g is None else g)] for e, g in erasers],
            negative_prompt,
        ]
        return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:20]

    def _final_latents(
        self, set_name: str, side: str, erasers: Erasers, negative_prompt, key
    ) -> torch.Tensor:
        from clear_core.erasure import applied_many

        path = self.cache / f"{key}.pt" if self.cache is not None else None
        if path is not None and path.is_file():
            return torch.load(path)
        prompts = self.sets[set_name][0 if side == "pos" else 1]
        start = self._start(set_name)[0 if side == "pos" else 1]
        expanded = [p for p in prompts for _ in range(self.cfg.seeds)]
        out = []
        for i in range(0, len(expanded), 64):
            chunk = expanded[i : i + 64]
            with applied_many(list(erasers), self.pipe):
                res = self.pipe(
                    chunk,
                    negative_prompt=negative_prompt,
                    latents=start[i : i + 64],
                    output_type="latent",
                    num_inference_steps=self.cfg.steps,
                    guidance_scale=self.cfg.guidance_scale,
                )
            out.append(res.latents)
        latents = torch.cat(out)
        self.generated += len(expanded)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(latents, path)
        return latents

    def predictions(
        self, set_name: str, side: str, erasers: Erasers = (), negative_prompt: str | None = None
    ) -> dict[str, np.ndarray]:
        """Per-frame detector readings of one side ("pos"/"neg") of a prompt set under ``erasers``."""
        key = self._key(set_name, side, erasers, negative_prompt)
        if key not in self._pred:
            latents = self._final_latents(set_name, side, erasers, negative_prompt, key)
            _, frames = self.pipe.decode(latents)
            self._pred[key] = self.detector.predict(_flat(frames))
        return self._pred[key]

    def measure(
        self, erasers: Erasers = (), negative_prompt: str | None = None, set_name: str = "pack"
    ) -> dict:
        """Rate before/after and preservation of ``erasers`` (and/or a negative prompt) vs neither."""
        before = concept_present(self.predictions(set_name, "pos"), self.slug)
        after = concept_present(self.predictions(set_name, "pos", erasers, negative_prompt), self.slug)
        a = self.predictions(set_name, "neg")
        b = self.predictions(set_name, "neg", erasers, negative_prompt)
        agree = np.all([a[k] == b[k] for k in HEADS], axis=0)
        r0, r1 = float(before.mean()), float(after.mean())
        return {
            "rate_original": r0,
            "rate": r1,
            "reduction": 1 - r1 / r0 if r0 > 0 else None,
            "halved": r1 <= r0 / 2 if r0 > 0 else None,
            "preservation": float(agree.mean()),
            "preservation_per_attribute": {k: float(np.mean(a[k] == b[k])) for k in HEADS},
            "n_frames": int(after.size),
        }


# --------------------------------------------------------------------------------------- decisions
def best_block(rows: Sequence[dict], preservation_min: float = 0.9, tol: float = 0.01) -> dict:
    """The brute-force best of per-block rows (``block``, ``rate``, ``preservation``, ``rate_original``).

    Lowest rate among blocks with preservation ≥ ``preservation_min``; blocks within ``tol`` of that
    rate are tied (``tied``), the best of them has the highest preservation, then the lowest index.
    When no block keeps the floor: the highest (rate reduction × preservation), ``qualifies`` False.
    """
    if not rows:
        raise ValueError("no per-block rows")
    ok = [r for r in rows if r["preservation"] >= preservation_min]
    if ok:
        low = min(r["rate"] for r in ok)
        tied = [r for r in ok if r["rate"] <= low + tol]
        best = max(tied, key=lambda r: (r["preservation"], -r["block"]))
        return {"block": best["block"], "tied": sorted(r["block"] for r in tied), "qualifies": True}

    def score(r: dict) -> float:
        red = 1 - r["rate"] / r["rate_original"] if r["rate_original"] > 0 else 0.0
        return red * r["preservation"]

    best = max(rows, key=lambda r: (score(r), -r["block"]))
    return {"block": best["block"], "tied": [best["block"]], "qualifies": False}


def choose_pairs(blocks: dict[str, int]) -> list[tuple[str, str]]:
    """One pair of concepts whose CLEAR erasers share a block and one whose blocks differ, preferring
    concepts read by different detector heads (so each concept's rate is measured cleanly) and the
    given order."""
    slugs = list(blocks)
    combos = list(itertools.combinations(slugs, 2))
    combos.sort(key=lambda p: concept_attribute(p[0])[0] == concept_attribute(p[1])[0])  # stable
    out = []
    for same in (True, False):
        pick = next((p for p in combos if (blocks[p[0]] == blocks[p[1]]) == same), None)
        if pick is not None:
            out.append(pick)
    return out


# --------------------------------------------------------------------------------------- experiments
@dataclass
class _Context:
    cfg: PaperConfig
    bank: EraserBank
    benches: dict[str, ConceptBench]
    log: Callable[[str], None] = print
    results: dict[str, dict] = field(default_factory=dict)

    def clear(self, slug: str):
        return self.bank.get(slug, "clear")

    def report(self, slug: str, label: str, m: dict) -> dict:
        self.log(
            f"[{slug}] {label}: rate {m['rate_original']:.3f} -> {m['rate']:.3f}, "
            f"preservation {m['preservation']:.3f}"
        )
        return m


def _slim(m: dict, **extra) -> dict:
    return {**extra, **m}


def _block_rows(ctx: _Context, slug: str, gamma: float) -> list[dict]:
    clear, bench = ctx.clear(slug), ctx.benches[slug]
    rows = []
    for i, layer in enumerate(clear.meta["candidates"]):
        e = ctx.bank.get(slug, f"block{layer - 1}")
        m = ctx.report(slug, f"block {layer - 1} (γ {gamma:g})", bench.measure([(e, gamma)]))
        rows.append(_slim(m, block=layer - 1, gamma=gamma, search_prob=clear.meta["layer_probs"][i]))
    return rows


def exp_blocks(ctx: _Context, slug: str) -> dict:
    clear = ctx.clear(slug)
    chosen = clear.layer - 1
    rows = _block_rows(ctx, slug, clear.gamma)
    best = best_block(rows, ctx.cfg.preservation_min)
    out = {
        "clear_block": chosen,
        "gamma": clear.gamma,
        "rows": rows,
        "best": best,
        "clear_is_best": chosen == best["block"],
        "clear_among_best": chosen in best["tied"],
    }
    if ctx.cfg.low_gamma_factor is not None:
        g = clear.gamma * ctx.cfg.low_gamma_factor
        low = _block_rows(ctx, slug, g)
        best_low = best_block(low, ctx.cfg.preservation_min)
        out["low"] = {
            "gamma": g,
            "rows": low,
            "best": best_low,
            "clear_is_best": chosen == best_low["block"],
            "clear_among_best": chosen in best_low["tied"],
        }
    return out


def exp_ablations(ctx: _Context, slug: str) -> dict:
    clear, bench = ctx.clear(slug), ctx.benches[slug]
    out = {}
    for variant in EraserBank.VARIANTS:
        if variant in ctx.cfg.skip_variants and not ctx.bank.has(slug, variant):
            out[variant] = None
            continue
        e = ctx.bank.get(slug, variant)
        m = ctx.report(slug, f"{variant} (γ {e.gamma:g})", bench.measure([(e, None)]))
        out[variant] = _slim(m, block=e.layer - 1, gamma=e.gamma)
    if out["paper"] is None:
        out["paper_at_clear_gamma"] = None
        return out
    paper = ctx.bank.get(slug, "paper")
    m = ctx.report(slug, f"paper mask at CLEAR's γ {clear.gamma:g}", bench.measure([(paper, clear.gamma)]))
    out["paper_at_clear_gamma"] = _slim(m, block=paper.layer - 1, gamma=clear.gamma)
    return out


def exp_negprompt(ctx: _Context, slug: str) -> dict:
    from clear_core.generation.variants import concept_phrase

    clear, bench = ctx.clear(slug), ctx.benches[slug]
    phrase = concept_phrase(clear)
    return {
        "negative_prompt": phrase,
        "clear": ctx.report(slug, "CLEAR", bench.measure([(clear, None)])),
        "negprompt": ctx.report(slug, f"NegPrompt {phrase!r}", bench.measure([], phrase)),
        "clear+negprompt": ctx.report(slug, "CLEAR + NegPrompt", bench.measure([(clear, None)], phrase)),
    }


def exp_top2(ctx: _Context, slug: str) -> dict:
    clear, bench = ctx.clear(slug), ctx.benches[slug]
    probs, cands = clear.meta["layer_probs"], clear.meta["candidates"]
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    second = cands[order[1]] - 1 if cands[order[0]] == clear.layer else cands[order[0]] - 1
    e2 = ctx.bank.get(slug, f"block{second}")
    return {
        "top1_block": clear.layer - 1,
        "top2_block": second,
        "top2_prob": probs[cands.index(second + 1)],
        "gamma": clear.gamma,
        "top1": ctx.report(slug, "top-1", bench.measure([(clear, None)])),
        "top1+2": ctx.report(
            slug, f"top-1 + block {second}", bench.measure([(clear, None), (e2, clear.gamma)])
        ),
    }


def exp_gamma(ctx: _Context, slug: str) -> dict:
    clear, bench = ctx.clear(slug), ctx.benches[slug]
    rows = [_slim(ctx.report(slug, f"γ {g:g}", bench.measure([(clear, g)])), gamma=g) for g in ctx.cfg.gammas]
    return {"calibrated_gamma": clear.gamma, "block": clear.layer - 1, "rows": rows}


def exp_implicit(ctx: _Context, slug: str) -> dict:
    clear, bench = ctx.clear(slug), ctx.benches[slug]
    m = bench.measure([(clear, None)], set_name="implicit")
    return ctx.report(slug, "implicit prompts", {**m, "n_prompts": len(bench.sets["implicit"][0])})


def exp_pairs(ctx: _Context) -> dict:
    blocks = {s: ctx.clear(s).layer - 1 for s in ctx.cfg.concepts}
    pairs = list(ctx.cfg.pairs) if ctx.cfg.pairs is not None else choose_pairs(blocks)
    out = {}
    for a, b in pairs:
        both = [(ctx.clear(a), None), (ctx.clear(b), None)]
        row: dict[str, Any] = {"same_block": blocks[a] == blocks[b], "blocks": [blocks[a], blocks[b]]}
        for s in (a, b):
            row[s] = {
                "alone": ctx.report(s, "alone", ctx.benches[s].measure([(ctx.clear(s), None)])),
                "together": ctx.report(s, f"with {a}+{b}", ctx.benches[s].measure(both)),
            }
        out[f"{a}+{b}"] = row
    return out


PER_CONCEPT = {
    "blocks": exp_blocks,
    "ablations": exp_ablations,
    "negprompt": exp_negprompt,
    "top2": exp_top2,
    "gamma": exp_gamma,
    "implicit": exp_implicit,
}


def summarise(res: dict, cfg: PaperConfig) -> dict:
    """Headline counts across concepts."""
    c = res["concepts"]
    out: dict[str, Any] = {}
    if "blocks" in cfg.experiments:
        rows = [c[s]["blocks"] for s in c]
        out["clear_is_best"] = sum(r["clear_is_best"] for r in rows)
        out["clear_among_best"] = sum(r["clear_among_best"] for r in rows)
        out["n"] = len(rows)
        low = [r["low"] for r in rows if "low" in r]
        if low:
            out["low_gamma"] = {
                "clear_is_best": sum(r["clear_is_best"] for r in low),
                "clear_among_best": sum(r["clear_among_best"] for r in low),
                "n": len(low),
            }
    if "ablations" in cfg.experiments:
        ok = {}
        for v in (*EraserBank.VARIANTS, "paper_at_clear_gamma"):
            measured = [c[s]["ablations"][v] for s in c if c[s]["ablations"][v] is not None]
            ok[v] = {
                "n": len(measured),
                "halved_with_preservation": sum(
                    bool(m["halved"]) and m["preservation"] >= cfg.preservation_min for m in measured
                ),
            }
        out["ablations_halved_with_preservation"] = ok
    return out


def run_paper(
    cfg: PaperConfig,
    bank: EraserBank,
    pipe=None,
    detector=None,
    log: Callable[[str], None] = print,
    png_dir: str | Path | None = None,
) -> dict:
    """Run ``cfg.experiments`` on ``cfg.concepts``; returns the JSON-able results (and writes PNGs)."""
    from clear_core.testbed.detector import load_detector
    from clear_core.testbed.pipeline import load_testbed_pipeline

    t0 = time.perf_counter()
    pipe = pipe or load_testbed_pipeline()
    detector = detector or load_detector()
    benches = {s: ConceptBench(s, pipe, detector, cfg, bank.root / s / "latents") for s in cfg.concepts}
    ctx = _Context(cfg, bank, benches, log)
    res: dict[str, Any] = {
        "config": asdict(cfg),
        "detector": detector.report(),
        "concepts": {},
    }
    for slug in cfg.concepts:
        res["concepts"][slug] = {}
        for name in cfg.experiments:
            if name in PER_CONCEPT:
                res["concepts"][slug][name] = PER_CONCEPT[name](ctx, slug)
        res["concepts"][slug]["clear_eraser"] = {
            "block": ctx.clear(slug).layer - 1,
            "gamma": ctx.clear(slug).gamma,
            "layer_probs": ctx.clear(slug).meta["layer_probs"],
        }
        log(f"[{slug}] done ({time.perf_counter() - t0:.0f} s so far)")
    if "pairs" in cfg.experiments:
        res["pairs"] = exp_pairs(ctx)
    res["summary"] = summarise(res, cfg)
    res["clips_generated"] = sum(b.generated for b in benches.values())
    res["seconds"] = round(time.perf_counter() - t0, 1)
    if png_dir is not None:
        res["figures"] = [str(p) for p in write_figures(res, Path(png_dir))]
    return res


# --------------------------------------------------------------------------------------- figures
def write_figures(res: dict, folder: Path) -> list[Path]:
    """``blocks_<slug>.png`` per concept (rate after and preservation vs block) and ``gamma.png``."""
    try:
        import matplotlib
    except ImportError:
        raise ValueError(
            "the figures need matplotlib (pip install matplotlib); or leave --png-dir out"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for slug, r in res["concepts"].items():
        if "blocks" not in r:
            continue
        b = r["blocks"]
        x = [row["block"] for row in b["rows"]]
        fig, ax = plt.subplots(figsize=(4.2, 2.9), dpi=90)
        ax.bar(x, [row["search_prob"] for row in b["rows"]], color="0.85", label="search p(block)")
        ax.plot(x, [row["rate"] for row in b["rows"]], "o-", color="tab:red", label="rate after")
        ax.plot(x, [row["preservation"] for row in b["rows"]], "s-", color="tab:blue", label="preservation")
        if "low" in b:
            lo = b["low"]["rows"]
            g = b["low"]["gamma"]
            ax.plot(
                x,
                [row["rate"] for row in lo],
                "o--",
                color="tab:red",
                alpha=0.5,
                mfc="none",
                label=f"rate after, γ {g:g}",
            )
            ax.plot(
                x,
                [row["preservation"] for row in lo],
                "s--",
                color="tab:blue",
                alpha=0.5,
                mfc="none",
                label=f"preservation, γ {g:g}",
            )
        ax.axhline(b["rows"][0]["rate_original"], color="tab:red", ls=":", lw=1, label="rate before")
        ax.axvline(b["clear_block"], color="k", ls="--", lw=1, label="CLEAR's block")
        ax.plot([b["best"]["block"]], [1.06], "v", color="tab:green", ms=8, label="brute-force best")
        ax.set_ylim(-0.03, 1.12)
        ax.set_xticks(x)
        ax.set_xlabel("MiniLM block (encoder.layer.B)")
        ax.set_title(f"{slug}: erased at each block (solid: γ {b['gamma']:g})", fontsize=8, loc="left")
        ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
        fig.tight_layout()
        path = folder / f"blocks_{slug}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    sweeps = {s: r["gamma"] for s, r in res["concepts"].items() if "gamma" in r}
    if sweeps:
        fig, axes = plt.subplots(1, 2, figsize=(8, 3), dpi=90)
        for slug, g in sweeps.items():
            xs = [row["gamma"] for row in g["rows"]]
            (line,) = axes[0].plot(xs, [row["rate"] for row in g["rows"]], "o-", ms=3, label=slug)
            axes[1].plot(xs, [row["preservation"] for row in g["rows"]], "o-", ms=3, color=line.get_color())
            for ax, key in zip(axes, ("rate", "preservation"), strict=True):
                cal = [row[key] for row in g["rows"] if row["gamma"] == g["calibrated_gamma"]]
                if cal:
                    ax.plot([g["calibrated_gamma"]], cal, "*", ms=9, color=line.get_color())
        axes[0].set_ylabel("generative rate")
        axes[1].set_ylabel("preservation")
        axes[1].axhline(0.9, color="0.5", ls=":", lw=1)
        for ax in axes:
            ax.set_xlabel("γ (★ calibrated)")
            ax.set_ylim(-0.03, 1.03)
        axes[0].legend(fontsize=6)
        fig.tight_layout()
        path = folder / "gamma.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------------------- tables
def _rp(m: dict | None) -> str:
    return "—" if m is None else f"{m['rate']:.2f} / {m['preservation']:.2f}"


def markdown_tables(res: dict) -> str:
    """The results as Markdown tables (what the README shows); cells are "rate after / preservation"."""
    c = res["concepts"]
    out = []

    def table(title: str, head: list[str], rows: list[list[str]]) -> None:
        out.append(f"**{title}**\n")
        out.append("| " + " | ".join(head) + " |")
        out.append("| " + " | ".join("---" for _ in head) + " |")
        out.extend("| " + " | ".join(map(str, r)) + " |" for r in rows)
        out.append("")

    have = [s for s in c if "blocks" in c[s]]
    if have:
        n = len(c[have[0]]["blocks"]["rows"])
        rows = []
        for s in have:
            b = c[s]["blocks"]
            cells = []
            for r in b["rows"]:
                cell = _rp(r)
                if r["block"] == b["clear_block"]:
                    cell = f"**{cell}**"
                if r["block"] == b["best"]["block"]:
                    cell += " ✓"
                cells.append(cell)
            rows.append([s, f"{b['gamma']:g}", f"{b['rows'][0]['rate_original']:.2f}", *cells])
        table(
            "Erasure forced at each block (rate after / preservation; bold: CLEAR's block, ✓: brute-force best)",
            ["concept", "γ", "rate before", *(f"block {i}" for i in range(n))],
            rows,
        )
        low = [s for s in have if "low" in c[s]["blocks"]]
        if low:
            rows = []
            for s in low:
                b, lo = c[s]["blocks"], c[s]["blocks"]["low"]
                cells = []
                for r in lo["rows"]:
                    cell = _rp(r)
                    if r["block"] == b["clear_block"]:
                        cell = f"**{cell}**"
                    if r["block"] == lo["best"]["block"]:
                        cell += " ✓"
                    cells.append(cell)
                agree = "yes" if lo["clear_is_best"] else ("tied" if lo["clear_among_best"] else "no")
                rows.append([s, f"{lo['gamma']:g}", *cells, agree])
            table(
                "The same at a weaker edit (rate after / preservation)",
                ["concept", "γ", *(f"block {i}" for i in range(n)), "CLEAR agrees"],
                rows,
            )
        rows = [
            [
                s,
                c[s]["blocks"]["clear_block"],
                f"{max(c[s]['clear_eraser']['layer_probs']):.2f}",
                c[s]["blocks"]["best"]["block"],
                ", ".join(map(str, c[s]["blocks"]["best"]["tied"])),
                "yes" if c[s]["blocks"]["best"]["qualifies"] else "no",
                "yes"
                if c[s]["blocks"]["clear_is_best"]
                else ("tied" if c[s]["blocks"]["clear_among_best"] else "no"),
            ]
            for s in have
        ]
        table(
            "CLEAR's block vs the brute-force best",
            [
                "concept",
                "CLEAR's block",
                "search p",
                "best block",
                "tied best",
                "preservation ≥ floor",
                "agree",
            ],
            rows,
        )
    have = [s for s in c if "ablations" in c[s]]
    if have:
        rows = []
        for s in have:
            a = c[s]["ablations"]

            def cell(k: str, a: dict = a) -> str:
                m = a.get(k)
                return "—" if m is None else f"{_rp(m)} (b{m['block']}, γ {m['gamma']:g})"

            rows.append(
                [
                    s,
                    f"{a['clear']['rate_original']:.2f}",
                    *(cell(k) for k in ("clear", "nocon", "steering", "paper", "paper_at_clear_gamma")),
                ]
            )
        table(
            "Ablations (rate after / preservation, block, γ)",
            [
                "concept",
                "rate before",
                "CLEAR",
                "no L_con",
                "steering (matched cosine)",
                "paper's mask (calibrated)",
                "paper's mask at CLEAR's γ",
            ],
            rows,
        )
    have = [s for s in c if "negprompt" in c[s]]
    if have:
        rows = [
            [
                s,
                f"'{c[s]['negprompt']['negative_prompt']}'",
                f"{c[s]['negprompt']['clear']['rate_original']:.2f}",
                _rp(c[s]["negprompt"]["clear"]),
                _rp(c[s]["negprompt"]["negprompt"]),
                _rp(c[s]["negprompt"]["clear+negprompt"]),
            ]
            for s in have
        ]
        table(
            "NegPrompt vs CLEAR",
            ["concept", "negative prompt", "rate before", "CLEAR", "NegPrompt", "CLEAR + NegPrompt"],
            rows,
        )
    have = [s for s in c if "top2" in c[s]]
    if have:
        rows = [
            [
                s,
                f"{c[s]['top2']['top1_block']} + {c[s]['top2']['top2_block']} (p {c[s]['top2']['top2_prob']:.2f})",
                f"{c[s]['top2']['gamma']:g}",
                _rp(c[s]["top2"]["top1"]),
                _rp(c[s]["top2"]["top1+2"]),
            ]
            for s in have
        ]
        table(
            "Top-1 vs top-2 blocks", ["concept", "blocks (p of the 2nd)", "γ", "top-1", "top-1 + top-2"], rows
        )
    have = [s for s in c if "gamma" in c[s]]
    if have:
        gs = [r["gamma"] for r in c[have[0]]["gamma"]["rows"]]
        rows = [
            [s, f"{c[s]['gamma']['calibrated_gamma']:g}", *(_rp(r) for r in c[s]["gamma"]["rows"])]
            for s in have
        ]
        table(
            "γ sweep (rate after / preservation)",
            ["concept", "calibrated γ", *(f"γ {g:g}" for g in gs)],
            rows,
        )
    if res.get("pairs"):
        rows = []
        for name, p in res["pairs"].items():
            for s in name.split("+"):
                rows.append(
                    [
                        name,
                        "same" if p["same_block"] else f"{p['blocks'][0]} / {p['blocks'][1]}",
                        s,
                        _rp(p[s]["alone"]),
                        _rp(p[s]["together"]),
                    ]
                )
        table("Two concepts at once", ["pair", "blocks", "concept", "alone", "together"], rows)
    have = [s for s in c if "implicit" in c[s]]
    if have:
        rows = [
            [
                s,
                c[s]["implicit"]["n_prompts"],
                f"{c[s]['implicit']['rate_original']:.2f} → {c[s]['implicit']['rate']:.2f}",
                f"{c[s]['implicit']['preservation']:.2f}",
            ]
            for s in have
        ]
        table(
            "Implicit prompts",
            ["concept", "prompts", "rate before → after", "preservation (matched neutral)"],
            rows,
        )
    return "\n".join(out)


# --------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m research.testbed_paper", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "experiment", choices=("all", *EXPERIMENTS, "tables"), help="tables: print --out's JSON as Markdown"
    )
    parser.add_argument("--erasers", help="cache folder of the erasers (and latents); required to run")
    parser.add_argument("--clear-from", help="folder of default erasers (<slug>/) to reuse as CLEAR's")
    parser.add_argument("--only", nargs="+", help="concept slugs (default: the paper's 8)")
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--gammas", type=float, nargs="+")
    parser.add_argument("--pairs", nargs="+", help="pairs erased together, as a+b")
    parser.add_argument(
        "--low-gamma-factor", type=float, default=0.5, help="blocks also at this × CLEAR's γ (0: not)"
    )
    parser.add_argument("--skip-variants", nargs="+", default=(), help="ablations left out, e.g. nocon")
    parser.add_argument("--search-steps", type=int, help="search steps (default: the CLI's)")
    parser.add_argument("--detector", help="detector folder (default: the shipped one)")
    parser.add_argument("--erasers-only", action="store_true", help="build the erasers, measure nothing")
    parser.add_argument("--out", help="JSON file")
    parser.add_argument("--png-dir", help="folder for the PNG figures")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.experiment == "tables":
        if not args.out:
            raise ValueError("tables: give the results JSON as --out")
        print(markdown_tables(json.loads(Path(args.out).read_text())))
        return 0
    if not args.erasers:
        parser.error("--erasers is required to run an experiment")
    pairs = None
    if args.pairs:
        pairs = []
        for p in args.pairs:
            a, sep, b = p.partition("+")
            if not sep:
                raise ValueError(f"--pairs: expected a+b, got {p!r}")
            pairs.append((a, b))
    kw: dict[str, Any] = {
        "experiments": EXPERIMENTS if args.experiment == "all" else (args.experiment,),
        "n_prompts": args.prompts,
        "seeds": args.seeds,
        "pairs": tuple(pairs) if pairs else None,
        "skip_variants": tuple(args.skip_variants),
        "low_gamma_factor": args.low_gamma_factor or None,
    }
    if args.only:
        kw["concepts"] = tuple(args.only)
    if args.gammas:
        kw["gammas"] = tuple(args.gammas)
    cfg = PaperConfig(**kw)
    bank = EraserBank(args.erasers, args.clear_from, args.search_steps)
    if args.erasers_only:  # the cheap variants of every concept first, the no-L_con searches last
        for slug in cfg.concepts:
            clear = bank.get(slug, "clear")
            for v in (*(f"block{c - 1}" for c in clear.meta["candidates"]), "paper", "steering"):
                bank.get(slug, v)
        for slug in cfg.concepts:
            if "nocon" not in cfg.skip_variants:
                bank.get(slug, "nocon")
        return 0
    detector = None
    if args.detector:
        from clear_core.testbed.detector import load_detector

        detector = load_detector(args.detector)
    res = run_paper(cfg, bank, detector=detector, png_dir=args.png_dir)
    text = json.dumps(res, indent=2)
    print(json.dumps(res["summary"], indent=2))
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
