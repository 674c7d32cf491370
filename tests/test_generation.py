"""Generation on tiny random diffusers pipelines: the denoiser reads exactly the erased encoding.

The pipelines (clear_core/generation/tiny.py) are built from configs as diffusers' own tests do; their
frames are noise-like, so every assertion is an equivalence: frames equal or not, embeddings equal to
a hand computation, hooks gone, the same frames from two threads as from one.
"""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest
import torch

from clear_core.encoders import TextEncoder
from clear_core.erasure import Eraser, applied_many
from clear_core.generation import (
    Latents,
    RenderSettings,
    check_erasers,
    encode,
    generate_grid,
    load_pipeline,
    plan_variants,
)
from clear_core.generation.media import read_video, write_mp4
from clear_core.generation.render import render
from clear_core.generation.tiny import tiny_pipeline
from clear_core.hooks import hidden_of, with_hidden
from clear_core.sae import SAE, SAEConfig

PROMPT = "a stunt performer with a parachute over a desert"
VIDEO = RenderSettings(steps=2, frames=9, height=16, width=16, guidance=6.0, max_sequence_length=16)
IMAGE = RenderSettings(steps=2, height=16, width=16, guidance=6.0)


@pytest.fixture(scope="module")
def pipes():
    return {name: tiny_pipeline(name) for name in ("tiny-wan", "tiny-cogvideox", "tiny-sd")}


def make_eraser(pipe, layer: int = 1, seed: int = 0, concept: str = "parachute") -> Eraser:
    """A random SAE eraser for the pipeline's encoder (its provenance recorded as a search would)."""
    encoder = TextEncoder.from_pipeline(pipe)
    gen = torch.Generator().manual_seed(seed)
    sae = SAE(SAEConfig(encoder.d_model, 64), gen)
    with torch.no_grad():
        sae.b_enc.fill_(0.5)
    m_spec = torch.zeros(64)
    m_spec[:16] = 1.0
    meta = {"model_revision": encoder.revision, **encoder.provenance()}
    return Eraser(
        concept, encoder.model_id, layer, encoder.layout.block_names[layer - 1], 1.0, encoder.d_model,
        sae=sae, m_spec=m_spec, gamma=2.0, meta=meta,
    )  # fmt: skip


def settings_for(name: str) -> RenderSettings:
    return IMAGE if name == "tiny-sd" else VIDEO


def frames(pipe, name, erasers=(), seed=0, negative="", negative_erased=True):
    cond = encode(
        pipe, [PROMPT], [negative], erasers, negative_erased, settings_for(name).max_sequence_length
    )
    return render(pipe, cond.kwargs(), settings_for(name), Latents(seed)).frames


def all_hooks(pipe):
    encoder = pipe.text_encoder
    return [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in encoder.modules()]


@pytest.mark.parametrize("name", ["tiny-wan", "tiny-cogvideox", "tiny-sd"])
def test_gamma_zero_is_bit_identical_and_gamma_changes_frames(pipes, name):
    pipe = pipes[name]
    eraser = make_eraser(pipe)
    plain = frames(pipe, name)
    assert np.array_equal(plain, frames(pipe, name))  # same seed, same frames
    assert np.array_equal(plain, frames(pipe, name, [(eraser, 0.0)]))
    assert not np.allclose(plain, frames(pipe, name, [(eraser, 4.0)]), atol=1e-4)
    assert not np.array_equal(plain, frames(pipe, name, seed=1))


def _hand_erased_wan(pipe, eraser, gamma, prompts, length):
    """Wan's encoding recomputed by hand: a plain torch hook h − γ·v at the block, mask, zeroed pads."""
    block = pipe.text_encoder.encoder.block[eraser.layer - 1]

    def hook(_m, _a, out):
        return with_hidden(out, eraser.edit(hidden_of(out), gamma))

    handle = block.register_forward_hook(hook)
    try:
        tok = pipe.tokenizer(
            prompts, padding="max_length", max_length=length, truncation=True, return_tensors="pt"
        )
        with torch.no_grad():
            hidden = pipe.text_encoder(tok.input_ids, tok.attention_mask).last_hidden_state
    finally:
        handle.remove()
    return hidden * tok.attention_mask[..., None]


def test_denoiser_receives_the_hand_computed_erased_encoding(pipes):
    pipe = pipes["tiny-wan"]
    eraser = make_eraser(pipe)
    seen = []
    handle = pipe.transformer.register_forward_pre_hook(
        lambda _m, _a, kw: seen.append(kw["encoder_hidden_states"].clone()), with_kwargs=True
    )
    try:
        cond = encode(pipe, [PROMPT], ["blurry, a parachute"], [(eraser, 3.0)], True, 16)
        render(
            pipe,
            cond.kwargs(),
            RenderSettings(steps=1, frames=9, height=16, width=16, guidance=6.0),
            Latents(0),
        )
    finally:
        handle.remove()
    positive = _hand_erased_wan(pipe, eraser, 3.0, [PROMPT], 16)
    negative = _hand_erased_wan(pipe, eraser, 3.0, ["blurry, a parachute"], 16)
    assert len(seen) == 2  # one step, classifier-free guidance: conditional then unconditional
    torch.testing.assert_close(seen[0], positive, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(seen[1], negative, rtol=1e-5, atol=1e-6)
    # the negative encoded outside the eraser is the plain encoding
    unerased = encode(pipe, [PROMPT], ["blurry, a parachute"], [(eraser, 3.0)], False, 16)
    plain = encode(pipe, [PROMPT], ["blurry, a parachute"], [], True, 16)
    torch.testing.assert_close(
        unerased.negative["negative_prompt_embeds"], plain.negative["negative_prompt_embeds"]
    )
    assert not torch.allclose(unerased.positive["prompt_embeds"], plain.positive["prompt_embeds"])


@pytest.mark.parametrize("name", ["tiny-wan", "tiny-cogvideox", "tiny-sd"])
def test_search_states_equal_the_states_inside_encode_prompt(pipes, name):
    """What the search trains on (a capture under the pipeline's profile) is what encode_prompt computes."""
    pipe = pipes[name]
    encoder = TextEncoder.from_pipeline(pipe)
    prompts = [PROMPT, "a cat"]
    block_idx = 1
    inside = []
    block = encoder.layout.blocks[block_idx]
    handle = block.register_forward_hook(
        lambda _m, _a, out: inside.append((out[0] if isinstance(out, tuple) else out).clone())
    )
    try:
        encode(
            pipe,
            prompts,
            None if name == "tiny-sd" else None,
            (),
            True,
            settings_for(name).max_sequence_length,
        )
    finally:
        handle.remove()
    length = settings_for(name).max_sequence_length or encoder.profile.max_length
    captured = encoder.with_profile(
        encoder.profile
        if encoder.profile.positions == "real"
        else type(encoder.profile)(**{**encoder.profile.to_json(), "max_length": length})
    ).capture(prompts)
    states = inside[0]
    tok = pipe.tokenizer(
        prompts, padding="max_length", max_length=length, truncation=True, return_tensors="pt"
    )
    for n in range(len(prompts)):
        keep = (
            torch.ones(length, dtype=torch.bool)
            if encoder.profile.positions == "all"
            else tok.attention_mask[n].bool()
        )
        expected = states[n][keep].numpy()
        got = captured.data[block_idx + 1, captured.offsets[n] : captured.offsets[n + 1]]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    if name == "tiny-cogvideox":  # the default masked capture would train on other states
        masked = TextEncoder(encoder.model, encoder.tokenizer, "m", "r").capture(prompts)
        real = tok.attention_mask[0].bool()
        a = masked.data[block_idx + 1, : masked.offsets[1]]
        b = states[0][real].numpy()
        cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
        assert cos.min() < 0.99


def test_hooks_are_gone_after_a_run_and_after_an_exception(pipes):
    pipe = pipes["tiny-wan"]
    eraser = make_eraser(pipe)
    before_hooks = all_hooks(pipe)
    plain = encode(pipe, [PROMPT], [""], (), True, 16).positive["prompt_embeds"]
    frames(pipe, "tiny-wan", [(eraser, 3.0)])

    def boom(step, total):
        raise RuntimeError("stop at step 1")

    with pytest.raises(RuntimeError, match="stop at step 1"), applied_many([(eraser, 3.0)], pipe):
        render(pipe, {"prompt": [PROMPT], "negative_prompt": [""]}, VIDEO, Latents(0), boom)
    assert all_hooks(pipe) == before_hooks
    torch.testing.assert_close(encode(pipe, [PROMPT], [""], (), True, 16).positive["prompt_embeds"], plain)


def test_two_threads_with_different_erasers_match_sequential_runs(pipes):
    pipe = pipes["tiny-wan"]
    a, b = make_eraser(pipe, 1, seed=0), make_eraser(pipe, 2, seed=1, concept="golf_ball")
    expected = {"a": frames(pipe, "tiny-wan", [(a, 3.0)]), "b": frames(pipe, "tiny-wan", [(b, 3.0)])}
    got, errors = {}, []

    def work(key, eraser):
        try:
            for _ in range(2):
                got[key] = frames(pipe, "tiny-wan", [(eraser, 3.0)])
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=("a", a)), threading.Thread(target=work, args=("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert np.array_equal(got["a"], expected["a"]) and np.array_equal(got["b"], expected["b"])


def test_mp4_round_trip_keeps_frame_count_and_odd_sizes(tmp_path):
    rng = np.random.default_rng(0)
    clip = np.repeat(np.linspace(0, 1, 9)[:, None, None, None], 3, axis=-1) * np.ones((9, 18, 22, 3))
    clip = np.clip(clip + 0.02 * rng.standard_normal(clip.shape), 0, 1)
    path = write_mp4(tmp_path / "clip.mp4", clip)
    decoded = read_video(path)
    assert decoded.shape == (9, 18, 22, 3)
    assert np.abs(decoded.astype(float) / 255 - clip).mean() < 0.05  # lossy, but the same clip
    with pytest.raises(ValueError, match="cannot read the video"):
        (tmp_path / "bad.mp4").write_bytes(b"not a video")
        read_video(tmp_path / "bad.mp4")


def test_grid_writes_videos_sheets_and_a_manifest(pipes, tmp_path):
    pipe = pipes["tiny-wan"]
    eraser = make_eraser(pipe)
    variants = plan_variants([eraser], [0.0, 3.0], ["negprompt"])
    result = generate_grid(
        pipe, [PROMPT, "a cat"], [0, 5], variants, VIDEO, tmp_path / "out", keep_frames=True
    )
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [v["name"] for v in m["variants"]] == ["original", "erased_g0", "erased_g3", "negprompt"]
    assert len(m["videos"]) == 2 * 2 * 4 and len(m["contact_sheets"]) == 4
    assert m["variants"][3]["negative_prompt"] == "parachute"
    for video in m["videos"]:
        meta = json.loads((tmp_path / "out" / video["meta"]).read_text())
        assert meta["seed"] == video["seed"] and meta["pipeline"]["family"] == "wan"
        assert read_video(tmp_path / "out" / video["path"]).shape == (9, 16, 16, 3)
    f = result.frames
    assert np.array_equal(f[("original", 0, 0)], f[("erased_g0", 0, 0)])
    assert not np.array_equal(f[("original", 0, 0)], f[("erased_g3", 0, 0)])
    assert not np.array_equal(f[("original", 0, 0)], f[("original", 0, 5)])


def test_fingerprint_accepts_the_same_weights_and_refuses_others(pipes, tmp_path):
    wan, cog = pipes["tiny-wan"], pipes["tiny-cogvideox"]
    eraser = make_eraser(wan)
    check_erasers(wan, [eraser])
    wan.save_pretrained(tmp_path / "wan")
    for spelling in (str(tmp_path / "wan"), str(tmp_path / "wan") + "/", os.path.relpath(tmp_path / "wan")):
        check_erasers(load_pipeline(spelling), [eraser])
    bf16 = TextEncoder.from_pipeline(wan)
    bf16 = TextEncoder(bf16.model.to(torch.bfloat16), bf16.tokenizer, "copy", "r")
    try:
        eraser.check_encoder(bf16)
    finally:
        wan.text_encoder.to(torch.float32)
    with pytest.raises(ValueError, match=r"was built for encoder .* not .*cogvideo|was built for encoder"):
        check_erasers(cog, [eraser])
    with pytest.raises(ValueError, match="given twice"):
        check_erasers(wan, [eraser, eraser])


def test_profile_mismatch_is_refused(pipes):
    cog = pipes["tiny-cogvideox"]
    eraser = make_eraser(cog)
    eraser.meta["encoding"] = {"name": "masked"}  # searched on masked real-token states
    with pytest.raises(ValueError, match="search again with --model"):
        check_erasers(cog, [eraser])


def test_cli_generate_and_bad_input(pipes, tmp_path, capsys):
    from clear_core.__main__ import main

    pipe = pipes["tiny-cogvideox"]
    folder = tmp_path / "cog"
    pipe.save_pretrained(folder)
    eraser = make_eraser(pipe)
    eraser.model_id = f"{folder}:text_encoder"
    eraser.save(tmp_path / "eraser")
    args = ["generate", "--pipeline", str(folder), "--prompt", PROMPT, "--eraser", str(tmp_path / "eraser"),
            "--steps", "2", "--frames", "9", "--height", "16", "--width", "16", "--max-sequence-length", "16"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "g")]) == 0
    m = json.loads((tmp_path / "g" / "manifest.json").read_text())
    assert {v["variant"] for v in m["videos"]} == {"original", "erased"}
    cases = {
        "could not load pipeline": ["--pipeline", str(tmp_path / "missing")],
        "frames must be": ["--frames", "0"],
        "is a file": ["--out", str(tmp_path / "eraser" / "eraser.json")],
        "given twice": ["--eraser", str(tmp_path / "eraser")],
        "--gamma must be a finite number": ["--gamma", "nan"],
    }
    for message, extra in cases.items():
        argv = [*args, "--out", str(tmp_path / "new"), *extra]
        if extra[0] == "--out":
            argv = [*args, *extra]
        capsys.readouterr()
        assert main(argv) == 2, message
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (message, err)
        assert not (tmp_path / "new").exists()
    (tmp_path / "locked").mkdir()
    os.chmod(tmp_path / "locked", 0o500)
    if not os.access(tmp_path / "locked", os.W_OK):  # as root every folder is writable: nothing to test
        assert main([*args, "--out", str(tmp_path / "locked" / "x")]) == 2
        assert "not a writable folder" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["tiny-wan", "tiny-cogvideox", "tiny-sd"])
def test_cli_generate_tiny_pipelines_with_default_sizes(name, tmp_path, capsys):
    """``generate --pipeline tiny-* --prompt x --out d`` with no size given renders at the tiny
    pipeline's own sizes (its denoiser cannot take the real model's 81 frames at 480×832)."""
    from clear_core.__main__ import main
    from clear_core.generation.tiny import TINY_SETTINGS

    assert (
        main(["generate", "--pipeline", name, "--prompt", "x", "--steps", "2", "--out", str(tmp_path / "d")])
        == 0
    )
    m = json.loads((tmp_path / "d" / "manifest.json").read_text())
    (video,) = m["videos"]
    meta = json.loads((tmp_path / "d" / video["path"]).with_suffix(".json").read_text())
    sizes = TINY_SETTINGS[name]
    assert {k: meta["settings"][k] for k in sizes} == sizes


def test_pipeline_without_text_encoder_is_refused(monkeypatch):
    import clear_core.generation.loading as loading

    class Bare:
        text_encoder = None

    monkeypatch.setattr(loading, "tiny_pipeline", lambda name: Bare())
    with pytest.raises(ValueError, match="has no text encoder"):
        load_pipeline("tiny-wan")


@pytest.mark.parametrize("name", ["tiny-wan", "tiny-cogvideox"])
def test_gamma_sweep_runs_the_blocks_below_the_eraser_once_and_equals_full_encodes(pipes, name):
    from clear_core.generation.sweep import encode_sweep

    pipe = pipes[name]
    eraser = make_eraser(pipe, layer=1)
    gammas = [0.0, 1.0, 3.0]
    before = all_hooks(pipe)
    swept, prefix = encode_sweep(pipe, [PROMPT], ["blurry"], eraser, gammas, True, 16)
    for gamma, cond in zip(gammas, swept):
        full = encode(pipe, [PROMPT], ["blurry"], [(eraser, gamma)], True, 16)
        for key in ("prompt_embeds", "negative_prompt_embeds"):
            torch.testing.assert_close(cond.kwargs()[key], full.kwargs()[key], rtol=0, atol=0)
    assert prefix.misses == 2 and prefix.hits == 2 * (len(gammas) - 1)  # prompt + negative, block 1
    assert all_hooks(pipe) == before and "forward" not in vars(pipe.text_encoder.encoder.block[0])
