"""The testbed pipeline's contract (clear_core/testbed/pipeline.py, model.py), with a tiny random denoiser."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clear_core.erasure import Eraser
from clear_core.testbed.model import TestbedTransformer, decode_latents, encode_specs
from clear_core.testbed.pipeline import TestbedPipeline, default_scheduler
from clear_core.testbed.world import SceneSpec, sample_spec


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread: on a shared 2-core machine two threads run many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pipe(minilm):
    torch.manual_seed(0)
    transformer = TestbedTransformer(d_model=32, n_layers=1, n_heads=2).eval()
    return TestbedPipeline(minilm.model, minilm.tokenizer, transformer, default_scheduler())


def test_latent_codec_round_trip():
    specs = [sample_spec(np.random.default_rng(i)) for i in range(20)]
    books = TestbedTransformer(d_model=32, n_layers=1, n_heads=2).codebooks
    back = decode_latents(encode_specs(specs, books), books)
    for a, b in zip(specs, back, strict=True):
        assert a.replace(
            **{k: round(getattr(a, k), 4) for k in ("x", "y", "size", "hue", "dx", "dy")}
        ) == b.replace(**{k: round(getattr(b, k), 4) for k in ("x", "y", "size", "hue", "dx", "dy")})


def test_encode_prompt_shapes_and_zeroing(pipe):
    pe, ne = pipe.encode_prompt(["a parachute over a desert", "a man"], max_sequence_length=64)
    assert pe.shape == (2, 64, 384) and pe.dtype == torch.float32
    real = pipe.tokenizer(["a parachute over a desert", "a man"], padding=True)["attention_mask"]
    nonzero = (pe.abs().sum(-1) > 0).sum(1).tolist()
    assert nonzero == [sum(r) for r in real]
    assert (ne.abs().sum(-1) > 0).sum(1).tolist() == [2, 2]  # "" -> [CLS][SEP]
    pe2, ne2 = pipe.encode_prompt("a man", do_classifier_free_guidance=False, num_videos_per_prompt=3)
    assert pe2.shape == (3, 64, 384) and ne2 is None
    torch.testing.assert_close(pe2[0], pe[1])


def test_call_outputs_and_reproducibility(pipe):
    g = torch.Generator().manual_seed(0)
    out = pipe("a kite over a field", num_videos_per_prompt=2, generator=g, num_inference_steps=3)
    assert out.frames.shape == (2, 8, 64, 64, 3) and out.frames.dtype == np.float32
    assert out.frames.min() >= 0 and out.frames.max() <= 1 and out.latents.shape == (2, 9, 16)
    lat = torch.randn(1, 9, 16)
    a = pipe("a kite", latents=lat, num_inference_steps=3)
    b = pipe("a kite", latents=lat, num_inference_steps=3)
    np.testing.assert_array_equal(a.frames, b.frames)
    pe, ne = pipe.encode_prompt("a kite")
    c = pipe(prompt_embeds=pe, negative_prompt_embeds=ne, latents=lat, num_inference_steps=3)
    torch.testing.assert_close(c.latents, a.latents)
    lat_only = pipe("a kite", latents=lat, num_inference_steps=3, output_type="latent")
    assert lat_only.frames is None
    big = pipe("a kite", latents=lat, num_inference_steps=3, num_frames=9, height=96, width=128)
    assert big.frames.shape == (1, 9, 96, 128, 3)
    with pytest.raises(ValueError, match="latents must have shape"):
        pipe("a kite", latents=torch.randn(1, 5, 16))


def test_callback_can_replace_latents(pipe):
    seen = []

    def cb(p, i, t, kwargs):
        seen.append(i)
        return {"latents": torch.zeros_like(kwargs["latents"])}

    out = pipe("a bus", num_inference_steps=4, output_type="latent", callback_on_step_end=cb)
    assert seen == [0, 1, 2, 3]
    assert torch.count_nonzero(out.latents) == 0


def test_save_and_load_round_trip(pipe, tmp_path):
    pipe.save_pretrained(tmp_path)
    loaded = TestbedPipeline.from_pretrained(tmp_path)
    loaded.transformer.eval()
    lat = torch.randn(1, 9, 16)
    a = pipe("a church in a village", latents=lat, num_inference_steps=3, output_type="latent").latents
    b = loaded("a church in a village", latents=lat, num_inference_steps=3, output_type="latent").latents
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(loaded.transformer.codebooks, pipe.transformer.codebooks)


def test_eraser_hook_reaches_the_denoiser(pipe):
    from clear_core.encoders import TextEncoder

    te = TextEncoder.from_pipeline(pipe)
    assert te.profile.positions == "real" and te.profile.attention_mask
    eraser = Eraser(
        concept="test",
        model_id="minilm",
        layer=3,
        layer_name="encoder.layer.2",
        scale=1.0,
        d_model=384,
        kind="steering",
        direction=torch.randn(384) * 5,
    )
    lat = torch.randn(2, 9, 16)
    base = pipe(["a parachute", "a dog"], latents=lat, num_inference_steps=3).frames
    with eraser.applied(pipe, gamma=0.0):
        same = pipe(["a parachute", "a dog"], latents=lat, num_inference_steps=3).frames
    np.testing.assert_array_equal(base, same)
    with eraser.applied(pipe, gamma=3.0):
        pe_erased, _ = pipe.encode_prompt("a parachute")
    pe, _ = pipe.encode_prompt("a parachute")
    assert not torch.allclose(pe, pe_erased)
    assert torch.count_nonzero(pe_erased.abs().sum(-1)) == torch.count_nonzero(pe.abs().sum(-1))


def test_decode_enforces_world_rules():
    books = TestbedTransformer(d_model=32, n_layers=1, n_heads=2).codebooks
    spec = SceneSpec(subject="man", clothing="unclothed")
    lat = encode_specs([spec], books)
    child = encode_specs([SceneSpec(subject="child")], books)
    lat[0, 1] = child[0, 1]  # subject slot -> child, clothing slot still unclothed
    assert decode_latents(lat, books)[0].clothing == "clothed"
