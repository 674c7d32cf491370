"""Measurements of the testbed against the issue's bar, with the shipped weights and detector.

``python -m research.testbed_experiments following [--n 200 --seeds 2]``: caption following on
held-out captions (held-out (object, setting, style) combinations written with held-out templates),
measured by the detector on every frame; ``--mode heldout`` names the concepts by their held-out
paraphrases instead. ``python -m research.testbed_experiments erasure --erasers DIR``: for every
concept with an eraser folder ``DIR/<slug>``, the generative rate before/after at the eraser's
calibrated γ, preservation, and the same on the pack's implicit prompts. ``speed``: seconds per clip.
Each prints JSON (and writes it with ``--out``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from clear_core.testbed.captions import caption, sample_heldout_spec
from clear_core.testbed.detector import load_detector
from clear_core.testbed.model import decode_latents
from clear_core.testbed.pipeline import load_testbed_pipeline
from clear_core.testbed.rate import _flat, generate_frames, generative_rate
from clear_core.testbed.world import ADULTS, PAPER_OBJECTS, SLOTS


def caption_following(
    n: int = 200, seeds: int = 2, seed: int = 0, mode: str = "explicit", pipe=None, det=None
) -> dict:
    """Detector-measured caption following on held-out specs and captions."""
    pipe = pipe or load_testbed_pipeline()
    det = det or load_detector()
    rng = np.random.default_rng(seed + 12345)
    specs = [sample_heldout_spec(rng) for _ in range(n)]
    texts = [caption(s, rng, heldout=True, mode=mode) for s in specs]
    gen = torch.Generator().manual_seed(seed)
    lat = torch.randn((n * seeds, 9, 16), generator=gen)
    frames = generate_frames(pipe, texts, lat)
    n_frames = frames.shape[1]
    pred = det.predict(_flat(frames))
    spec_of_frame = [s for s in specs for _ in range(seeds * n_frames)]

    def share(mask_fn, ok_fn) -> dict:
        rows = [i for i, s in enumerate(spec_of_frame) if mask_fn(s)]
        if not rows:
            return {"share": None, "n_frames": 0}
        ok = [ok_fn(i, spec_of_frame[i]) for i in rows]
        return {"share": float(np.mean(ok)), "n_frames": len(rows)}

    result = {
        "mode": mode,
        "n_captions": n,
        "seeds": seeds,
        "object": share(lambda s: s.object != "none", lambda i, s: pred["object"][i] == s.object),
        "paper_object": share(
            lambda s: s.object in PAPER_OBJECTS, lambda i, s: pred["object"][i] == s.object
        ),
        "no_object_no_concept": share(
            lambda s: s.object == "none", lambda i, s: pred["object"][i] not in PAPER_OBJECTS
        ),
        "style": share(lambda s: True, lambda i, s: pred["style"][i] == s.style),
        "artist_style": share(
            lambda s: s.style not in ("photo", "sketch", "watercolour"),
            lambda i, s: pred["style"][i] == s.style,
        ),
        "avatar": share(lambda s: s.identity != "none", lambda i, s: pred["avatar"][i] == s.identity),
        "no_avatar": share(lambda s: s.identity == "none", lambda i, s: pred["avatar"][i] == "none"),
        "unclothed": share(lambda s: s.clothing == "unclothed", lambda i, s: bool(pred["unclothed"][i])),
        "clothed_adult": share(
            lambda s: s.clothing == "clothed" and s.subject in ADULTS, lambda i, s: not pred["unclothed"][i]
        ),
        "setting": share(lambda s: True, lambda i, s: pred["setting"][i] == s.setting),
    }
    # latent-level diagnostic: decoded slots vs the spec (mentioned or not)
    decoded = decode_latents(
        pipe(texts, latents=lat[::seeds], output_type="latent").latents, pipe.transformer.codebooks
    )
    result["decoded_slot_match"] = {
        slot: float(
            np.mean([getattr(a, slot) == getattr(b, slot) for a, b in zip(specs, decoded, strict=True)])
        )
        for slot in SLOTS
    }
    result["examples"] = texts[:5]
    return result


def erasure_table(erasers: Path, slugs: list[str] | None = None, seeds: int = 4, pipe=None, det=None) -> dict:
    """Rate before/after, preservation and implicit-prompt rates for each concept with an eraser."""
    from clear_core.concepts import load_implicit
    from clear_core.erasure import Eraser

    pipe = pipe or load_testbed_pipeline()
    det = det or load_detector()
    slugs = slugs or sorted(p.name for p in erasers.iterdir() if (p / "eraser.json").is_file())
    rows = {}
    for slug in slugs:
        eraser = Eraser.load(erasers / slug)
        explicit = generative_rate(slug, eraser=eraser, seeds=seeds, pipe=pipe, detector=det)
        implicit, neutral = load_implicit(slug)
        imp = generative_rate(
            slug,
            prompts=implicit,
            neutral_prompts=neutral,
            eraser=eraser,
            seeds=seeds,
            pipe=pipe,
            detector=det,
        )
        rows[slug] = {
            "block": eraser.layer_name,
            "gamma": eraser.gamma,
            "rate_original": explicit["rate_original"],
            "rate_erased": explicit["rate"],
            "halved": explicit["rate"] <= explicit["rate_original"] / 2
            if explicit["rate_original"] > 0
            else None,
            "preservation": explicit["preservation"],
            "preservation_per_attribute": explicit["preservation_per_attribute"],
            "implicit_rate_original": imp["rate_original"],
            "implicit_rate_erased": imp["rate"],
            "implicit_preservation": imp["preservation"],
        }
        print(
            slug,
            json.dumps({k: v for k, v in rows[slug].items() if k != "preservation_per_attribute"}),
            flush=True,
        )
    ok = [s for s, r in rows.items() if r["halved"] and r["preservation"] >= 0.9]
    return {
        "concepts": rows,
        "halved_with_preservation_0.9": ok,
        "n_meeting_bar": len(ok),
        "n": len(rows),
        "seeds": seeds,
    }


def lookalikes(erasers: Path, slugs: list[str], n: int = 16, seeds: int = 2, pipe=None, det=None) -> dict:
    """For each erased paper object: how often its look-alikes (kite for parachute, tennis ball for golf
    ball, ...) are still generated, on ``n`` seeded explicit captions per look-alike, same latents."""
    from clear_core.erasure import Eraser
    from clear_core.testbed.world import LOOKALIKE_OF, SceneSpec

    pipe = pipe or load_testbed_pipeline()
    det = det or load_detector()
    out = {}
    for slug in slugs:
        eraser = Eraser.load(erasers / slug)
        for look in [k for k, v in LOOKALIKE_OF.items() if v == slug]:
            rng = np.random.default_rng(7)
            settings = ("field", "street", "garden", "lake", "town")
            specs = [SceneSpec(object=look, setting=str(rng.choice(settings))) for _ in range(n)]
            texts = [caption(sp, rng) for sp in specs]
            lat = torch.randn((n * seeds, 9, 16), generator=torch.Generator().manual_seed(0))
            before = det.predict(_flat(generate_frames(pipe, texts, lat)))["object"]
            after = det.predict(_flat(generate_frames(pipe, texts, lat, eraser)))["object"]
            out[f"{slug}->{look}"] = {
                "lookalike_rate_before": float(np.mean(before == look)),
                "lookalike_rate_after": float(np.mean(after == look)),
                "erased_concept_after": float(np.mean(after == slug)),
                "gamma": eraser.gamma,
            }
            print(slug, look, json.dumps(out[f"{slug}->{look}"]), flush=True)
    return out


def speed(n: int = 20, pipe=None) -> dict:
    """Wall seconds per clip (8 frames, 64×64, 10 steps, CFG), one prompt at a time, and rendering alone."""
    pipe = pipe or load_testbed_pipeline()
    pipe("warm up", num_inference_steps=2)
    t0 = time.perf_counter()
    for i in range(n):
        pipe(f"a parachute over a desert, take {i}", generator=torch.Generator().manual_seed(i))
    per_clip = (time.perf_counter() - t0) / n
    return {"seconds_per_clip": per_clip, "threads": torch.get_num_threads(), "n": n}


def contact_sheet(erasers: Path, slugs: list[str], out: Path, seed: int = 0, pipe=None) -> Path:
    """A PNG: per concept, frames 0/4/7 of the pack's first positive prompt, original | erased (same latent)."""
    from PIL import Image

    from clear_core.erasure import Eraser
    from clear_core.testbed.rate import pack_prompts
    from clear_core.testbed.render import to_uint8

    pipe = pipe or load_testbed_pipeline()
    rows = []
    for i, slug in enumerate(slugs):
        prompt = pack_prompts(slug, 1)[0][0]
        lat = torch.randn((1, 9, 16), generator=torch.Generator().manual_seed(seed + i))
        a = pipe(prompt, latents=lat).frames[0]
        with Eraser.load(erasers / slug).applied(pipe):
            b = pipe(prompt, latents=lat).frames[0]
        gap = np.ones((64, 6, 3), np.float32)
        rows.append(np.concatenate([a[0], a[4], a[7], gap, b[0], b[4], b[7]], axis=1))
    img = to_uint8(np.concatenate(rows, axis=0))
    Image.fromarray(img).resize((img.shape[1] * 2, img.shape[0] * 2), Image.NEAREST).save(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m research.testbed_experiments")
    sub = parser.add_subparsers(dest="what", required=True)
    f = sub.add_parser("following")
    f.add_argument("--n", type=int, default=200)
    f.add_argument("--seeds", type=int, default=2)
    f.add_argument("--mode", default="explicit", choices=("explicit", "heldout"))
    e = sub.add_parser("erasure")
    e.add_argument("--erasers", required=True)
    e.add_argument("--only", nargs="*")
    e.add_argument("--seeds", type=int, default=4)
    sub.add_parser("speed")
    k = sub.add_parser("lookalikes")
    k.add_argument("--erasers", required=True)
    k.add_argument("--only", nargs="+", required=True)
    k.add_argument("--out")
    c = sub.add_parser("sheet")
    c.add_argument("--erasers", required=True)
    c.add_argument("--only", nargs="+", required=True)
    c.add_argument("--png", required=True)
    for p in (f, e):
        p.add_argument("--out")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.what == "following":
        res = caption_following(args.n, args.seeds, mode=args.mode)
    elif args.what == "erasure":
        res = erasure_table(Path(args.erasers), args.only, args.seeds)
    elif args.what == "lookalikes":
        res = lookalikes(Path(args.erasers), args.only)
    elif args.what == "sheet":
        res = {"png": str(contact_sheet(Path(args.erasers), args.only, Path(args.png)))}
    else:
        res = speed()
    text = json.dumps(res, indent=2)
    print(text)
    if getattr(args, "out", None):
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
