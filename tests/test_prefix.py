import numpy as np
import pytest

from clear_core.build import build_eraser
from clear_core.encoders import CaptureConfig
from clear_core.prefix import encode_gammas
from clear_core.search import LayerSearch, SearchConfig
from tests.conftest import PROMPTS

NO_CACHE = CaptureConfig(use_cache=False)
GAMMAS = [0.0, 0.5, 2.0, 0.5, 6.0]  # a repeated γ and γ = 0 are answered too


def _one_by_one(encoder, prompts, eraser, gammas, batch_size):
    out = {}
    for g in gammas:
        with eraser.applied(encoder, gamma=g):
            out[g] = encoder.encode(prompts, batch_size=batch_size)
    return out


@pytest.mark.parametrize("layer", [1, 3, 6])
def test_sweep_equals_encoding_each_gamma(minilm, small_run, layer):
    """Bottom, middle and last block: every γ of the batched sweep equals its own erased encode."""
    run = small_run
    eraser = build_eraser(run.search, run.pos, run.neg, "parachute", "minilm", layer=layer)
    prompts = PROMPTS * 3 + ["a parachute", "a skydiver under an open canopy over the sea"]
    swept = encode_gammas(minilm, prompts, eraser, GAMMAS, batch_size=4)  # several batches
    expected = _one_by_one(minilm, prompts, eraser, GAMMAS, batch_size=4)
    assert sorted(swept) == sorted(set(GAMMAS))
    for g in GAMMAS:
        np.testing.assert_allclose(swept[g], expected[g], atol=1e-5, rtol=0)
    assert not np.allclose(swept[6.0], swept[0.0], atol=1e-3)  # the edit is there


def test_sweep_on_t5_umt5_clip_blocks_with_extra_outputs(tiny_encoder):
    """T5 blocks return (hidden, position bias, ...) and the block above reads the bias: replaying the
    prefix must hand it on (UMT5 computes its own per block; CLIP passes a causal mask)."""
    pos = tiny_encoder.capture([f"a parachute over place {i}" for i in range(4)], NO_CACHE)
    neg = tiny_encoder.capture([f"a person over place {i}" for i in range(4)], NO_CACHE)
    search = LayerSearch(pos, neg, SearchConfig(steps=3, d_sae=16, batch_pairs=2))
    list(search.run())
    eraser = build_eraser(search.result, pos, neg, "parachute", tiny_encoder.model_id, layer=1)
    swept = encode_gammas(tiny_encoder, PROMPTS, eraser, GAMMAS, batch_size=2)
    expected = _one_by_one(tiny_encoder, PROMPTS, eraser, GAMMAS, batch_size=2)
    for g in GAMMAS:
        np.testing.assert_allclose(swept[g], expected[g], atol=1e-5, rtol=0)
    assert not np.allclose(swept[6.0], swept[0.0], atol=1e-4)


def test_sweep_leaves_the_model_as_it_was(minilm, small_run):
    before = minilm.encode(PROMPTS)
    encode_gammas(minilm, PROMPTS, small_run.eraser, [1.0, 3.0])
    np.testing.assert_array_equal(minilm.encode(PROMPTS), before)
    for block in minilm.layout.blocks:
        assert "forward" not in block.__dict__  # no replace wrapper left behind


def test_sweep_of_a_gated_eraser_skips_the_prompts_it_leaves_alone(minilm, small_run):
    """A context-gated eraser edits nothing in concept-free prompts: the sweep hands them their
    unerased output at every γ (exactly) and still equals encoding each γ for the others."""
    run = small_run
    eraser = build_eraser(
        run.search, run.pos, run.neg, "parachute", "minilm", context_gate=True, gate_ramp=0.01
    )
    prompts = [*PROMPTS, "a parachute", "a skydiver under an open parachute over the sea"]
    gammas = [0.5, 6.0]  # no γ = 0: the unerased outputs are computed for the untouched prompts
    swept = encode_gammas(minilm, prompts, eraser, gammas, batch_size=4)
    expected = _one_by_one(minilm, prompts, eraser, [0.0, *gammas], batch_size=4)
    for g in gammas:
        np.testing.assert_allclose(swept[g], expected[g], atol=1e-5, rtol=0)
    same = (swept[6.0] == expected[0.0]).all(1)
    assert same.any() and not same.all()  # some prompts untouched, the parachute ones edited
    # the caller's unerased outputs stand in for another forward pass of the untouched prompts
    marked = expected[0.0] + 1.0
    handed = encode_gammas(minilm, prompts, eraser, gammas, batch_size=4, original=marked)
    np.testing.assert_array_equal(handed[6.0][same], marked[same])
    np.testing.assert_array_equal(handed[6.0][~same], swept[6.0][~same])
    with pytest.raises(ValueError, match="original outputs"):
        encode_gammas(minilm, prompts, eraser, gammas, original=marked[1:])
