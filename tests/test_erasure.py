import json
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from clear_core.build import build_eraser, steering_eraser
from clear_core.encoders import CaptureConfig
from clear_core.erasure import Eraser, applied_many
from tests.conftest import PROMPTS, tiny_model

NO_CACHE = CaptureConfig(use_cache=False)


def _hooks(module):
    return dict(module._forward_hooks), dict(module._forward_pre_hooks)


@torch.no_grad()
def _by_hand(eraser: Eraser, h: torch.Tensor, gamma: float, offsets=None) -> torch.Tensor:
    """The edit of the real tokens ``h`` of a capture (prompt i: rows offsets[i]:offsets[i + 1])."""
    sae, s = eraser.sae, eraser.scale
    x = h / s
    f = sae.activate((x - sae.b_dec) @ sae.W_enc + sae.b_enc)  # the SAE's own sparsifier (ReLU or top-k)
    if eraser.gate_floor is not None:  # the context gate (on by default): g = clamp((score - margin) / tau)
        score = (torch.relu(f - eraser.gate_floor) * eraser.m_spec).sum(-1)
        g = ((score - eraser.gate_margin) / eraser.gate_tau).clamp(0, 1)
        if eraser.prompt_margin is not None:  # the prompt gate: each prompt by its strongest real token
            for a, b in zip(offsets[:-1], offsets[1:]):
                g[a:b] *= ((score[a:b].max() - eraser.prompt_margin) / eraser.prompt_tau).clamp(0, 1)
        f = f * g[..., None]
    return h - gamma * s * ((f * eraser.m_spec) @ sae.W_dec)


def test_gamma_zero_is_bitwise_identity(minilm, small_run):
    before = minilm.encode(PROMPTS)
    with small_run.eraser.applied(minilm, gamma=0.0):
        during = minilm.encode(PROMPTS)
    np.testing.assert_array_equal(before, during)


def test_edit_changes_exactly_the_chosen_block(minilm, small_run):
    eraser, gamma = small_run.eraser, 2.0
    original = minilm.capture(PROMPTS, NO_CACHE)
    with eraser.applied(minilm, gamma=gamma):
        erased = minilm.capture(PROMPTS, NO_CACHE)
    layer = eraser.layer
    for i in range(layer):  # everything before the block is untouched, bit for bit
        np.testing.assert_array_equal(original.layer(i), erased.layer(i))
    expected = _by_hand(eraser, torch.from_numpy(original.layer(layer)), gamma, original.offsets)
    np.testing.assert_allclose(erased.layer(layer), expected.numpy(), atol=1e-4)
    assert not np.allclose(erased.layer(layer), original.layer(layer), atol=1e-3)


def test_model_restored_after_exception(minilm, small_run):
    before = minilm.encode(PROMPTS)
    block = minilm.block(small_run.eraser.layer)
    hooks = _hooks(block)  # transformers may keep hooks of its own; ours must leave them as they were
    with pytest.raises(RuntimeError, match="inside"), small_run.eraser.applied(minilm, gamma=5.0):
        assert len(block._forward_hooks) > len(hooks[0])
        assert not np.allclose(minilm.encode(PROMPTS), before)
        raise RuntimeError("inside")
    assert _hooks(block) == hooks
    np.testing.assert_array_equal(minilm.encode(PROMPTS), before)


def test_two_erasers_compose_on_one_block(minilm, small_run):
    e1 = small_run.eraser
    e2 = steering_eraser(small_run.pos, small_run.neg, e1.layer, "parachute", "minilm")
    original = minilm.capture(PROMPTS, NO_CACHE)
    with applied_many([(e1, 1.0), (e2, 0.5)], minilm):
        both = minilm.capture(PROMPTS, NO_CACHE)
    h = torch.from_numpy(original.layer(e1.layer))
    expected = e2.edit(e1.edit(h, 1.0), 0.5)
    np.testing.assert_allclose(both.layer(e1.layer), expected.numpy(), atol=1e-4)


def test_two_erasers_on_different_blocks(minilm, small_run):
    first = small_run.eraser
    other_layer = 1 if first.layer != 1 else 2
    second = build_eraser(
        small_run.search, small_run.pos, small_run.neg, "parachute", "minilm", layer=other_layer
    )
    with first.applied(minilm, gamma=1.0), second.applied(minilm, gamma=1.0):
        nested = minilm.encode(PROMPTS)
    with applied_many([(first, 1.0), (second, 1.0)], minilm):
        together = minilm.encode(PROMPTS)
    with first.applied(minilm, gamma=1.0):
        only_first = minilm.encode(PROMPTS)
    np.testing.assert_allclose(nested, together, atol=1e-6)
    assert not np.allclose(together, only_first, atol=1e-4)


def test_steering_edit_by_hand(small_run):
    e = steering_eraser(small_run.pos, small_run.neg, 2, "parachute", "minilm")
    h = torch.randn(2, 3, 384)
    torch.testing.assert_close(e.edit(h, 1.5), h - 1.5 * e.direction)


def test_masks_paper_vs_contrastive(small_run):
    paper = build_eraser(small_run.search, small_run.pos, small_run.neg, "p", "minilm", mask="paper")
    contrastive = small_run.eraser
    assert contrastive.mask == "contrastive" and float(contrastive.m_spec.max()) == pytest.approx(
        1.0, abs=1e-4
    )
    assert int((paper.m_spec > 0.5).sum()) > 5 * int((contrastive.m_spec > 0.5).sum())
    with pytest.raises(ValueError, match="unknown mask"):
        build_eraser(small_run.search, small_run.pos, small_run.neg, "p", "minilm", mask="other")


def test_artifact_round_trip(minilm, small_run, tmp_path):
    eraser = small_run.eraser
    eraser.save(tmp_path)
    info = json.loads((tmp_path / "eraser.json").read_text())
    for key in (
        "concept",
        "model_id",
        "layer",
        "block_index",
        "layer_name",
        "layer_probs",
        "default_gamma",
        "sae",
        "scale",
        "versions",
        "mask",
        "search",
    ):
        assert key in info, key
    assert info["block_index"] == eraser.layer - 1 and info["sae"]["d_sae"] == 256
    loaded = Eraser.load(tmp_path, encoder=minilm)
    assert loaded.gamma == eraser.gamma and loaded.layer_name == eraser.layer_name
    h = torch.randn(1, 4, 384) * eraser.scale / 20
    torch.testing.assert_close(loaded.edit(h, 3.0), eraser.edit(h, 3.0))
    with loaded.applied(minilm):  # default γ
        a = minilm.encode(PROMPTS)
    with eraser.applied(minilm, gamma=eraser.gamma):
        b = minilm.encode(PROMPTS)
    np.testing.assert_array_equal(a, b)
    loaded.save(tmp_path / "again")
    assert json.loads((tmp_path / "again" / "eraser.json").read_text())["layer_probs"] == info["layer_probs"]


def test_artifact_refusals(minilm, small_run, tmp_path, bert_tokenizer):
    from clear_core.encoders import TextEncoder

    small_run.eraser.save(tmp_path)
    with pytest.raises(ValueError, match="not an eraser folder"):
        Eraser.load(tmp_path / "missing")
    other = TextEncoder(tiny_model("t5"), bert_tokenizer, "tiny-t5", "x")
    with pytest.raises(ValueError, match=r"built for encoder 'minilm' \(weights .*\), not 'tiny-t5'"):
        Eraser.load(tmp_path, encoder=other)
    with pytest.raises(ValueError, match="does not match the encoder's d_model"):
        Eraser.load(tmp_path, encoder=other, allow_other_model=True)
    info = json.loads((tmp_path / "eraser.json").read_text())
    (tmp_path / "eraser.json").write_text(json.dumps({**info, "sae": {**info["sae"], "d_sae": 512}}))
    with pytest.raises(ValueError, match="has shape"):
        Eraser.load(tmp_path)
    (tmp_path / "eraser.json").write_text(json.dumps({**info, "layer_name": "encoder.layer.9"}))
    with pytest.raises(ValueError, match="in the stored layer names, not 'encoder.layer.9'"):
        Eraser.load(tmp_path, encoder=minilm)
    no_names = {k: v for k, v in info.items() if k != "layer_names"}
    (tmp_path / "eraser.json").write_text(json.dumps({**no_names, "layer_name": "encoder.layer.9"}))
    with pytest.raises(ValueError, match="does not exist in this encoder"):
        Eraser.load(tmp_path, encoder=minilm)
    (tmp_path / "eraser.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        Eraser.load(tmp_path)


def test_applies_to_a_pipeline_text_encoder(minilm, small_run):
    pipe = SimpleNamespace(text_encoder=minilm.model)
    batch = minilm.tokenize(PROMPTS)
    with torch.no_grad():
        before = minilm.model(**batch).last_hidden_state
        with small_run.eraser.applied(pipe, gamma=2.0):
            during = minilm.model(**batch).last_hidden_state
        after = minilm.model(**batch).last_hidden_state
    assert not torch.allclose(before, during, atol=1e-4)
    assert torch.equal(before, after)
    with pytest.raises(ValueError, match="cannot apply an eraser to int"):
        small_run.eraser.block_of(3)


def test_concurrent_calls_do_not_see_each_other(minilm, small_run):
    """One thread erases with a strong γ while another encodes the same prompts on the same model."""
    baseline = minilm.encode(PROMPTS)
    errors, erased_seen = [], []
    start = threading.Barrier(2)

    def eraser_user():
        start.wait()
        with small_run.eraser.applied(minilm, gamma=6.0):
            for _ in range(8):
                erased_seen.append(minilm.encode(PROMPTS))

    def plain_user():
        start.wait()
        for _ in range(8):
            out = minilm.encode(PROMPTS)
            if not np.allclose(out, baseline, atol=1e-5):
                errors.append(float(np.abs(out - baseline).max()))

    threads = [threading.Thread(target=eraser_user), threading.Thread(target=plain_user)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(not np.allclose(e, baseline, atol=1e-3) for e in erased_seen)


def test_edit_equivalence_on_t5_umt5_clip(tiny_encoder):
    """Block outputs differ per family (T5 returns tuples); the edit must land the same way on each."""
    from clear_core.search import LayerSearch, SearchConfig

    pos = tiny_encoder.capture([f"a parachute over place {i}" for i in range(4)], NO_CACHE)
    neg = tiny_encoder.capture([f"a person over place {i}" for i in range(4)], NO_CACHE)
    search = LayerSearch(pos, neg, SearchConfig(steps=3, d_sae=16, batch_pairs=2))
    list(search.run())
    eraser = build_eraser(search.result, pos, neg, "parachute", tiny_encoder.model_id, layer=2)
    hooks = _hooks(tiny_encoder.block(2))
    original = tiny_encoder.capture(PROMPTS, NO_CACHE)
    with eraser.applied(tiny_encoder, gamma=1.5):
        erased = tiny_encoder.capture(PROMPTS, NO_CACHE)
    np.testing.assert_array_equal(original.layer(1), erased.layer(1))
    expected = _by_hand(eraser, torch.from_numpy(original.layer(2)), 1.5, original.offsets)
    np.testing.assert_allclose(erased.layer(2), expected.numpy(), atol=1e-5)
    assert _hooks(tiny_encoder.block(2)) == hooks
