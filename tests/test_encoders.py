import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from clear_core.encoders import CaptureConfig, TextEncoder, find_blocks, load_encoder
from tests.conftest import PROMPTS, tiny_model


def _reference(encoder: TextEncoder, prompts):
    batch = encoder.tokenize(prompts)
    with torch.no_grad():
        out = encoder.model(**batch, output_hidden_states=True)
    return out, batch["attention_mask"].bool()


def test_capture_equals_hidden_states_minilm(minilm):
    acts = minilm.capture(PROMPTS, CaptureConfig(use_cache=False))
    out, mask = _reference(minilm, PROMPTS)
    assert acts.layer_names[0] == "embeddings" and len(acts.layer_names) == 7
    assert acts.data.shape == (7, int(mask.sum()), 384)
    for i, hidden in enumerate(out.hidden_states):
        np.testing.assert_allclose(acts.layer(i), hidden[mask].numpy(), atol=1e-5)


def test_capture_equals_hidden_states_tiny(tiny_encoder):
    acts = tiny_encoder.capture(PROMPTS, CaptureConfig(use_cache=False))
    out, mask = _reference(tiny_encoder, PROMPTS)
    assert len(out.hidden_states) == acts.n_layers == 3
    for i in range(acts.n_layers - 1):
        np.testing.assert_allclose(acts.layer(i), out.hidden_states[i][mask].numpy(), atol=1e-5)
    last = torch.from_numpy(acts.layer(acts.n_layers - 1))
    if tiny_encoder.layout.family == "t5":
        # transformers reports T5's last hidden state after the final norm; capture keeps the block output
        with torch.no_grad():
            last = tiny_encoder.layout.final_norm(last)
    np.testing.assert_allclose(last.numpy(), out.hidden_states[-1][mask].numpy(), atol=1e-5)


@pytest.mark.parametrize("which", ["minilm", "tiny"])
def test_padding_invariance(which, minilm, tiny_encoder):
    encoder = minilm if which == "minilm" else tiny_encoder
    alone = encoder.capture(PROMPTS[1:2], CaptureConfig(use_cache=False))
    batched = encoder.capture(PROMPTS, CaptureConfig(use_cache=False))  # PROMPTS[1] is padded here
    lo, hi = batched.offsets[1], batched.offsets[2]
    assert hi - lo == alone.n_tokens
    np.testing.assert_allclose(batched.data[:, lo:hi], alone.data, atol=1e-5)
    np.testing.assert_allclose(batched.pooled()[1], alone.pooled()[0], atol=1e-5)
    np.testing.assert_allclose(encoder.encode(PROMPTS)[1], encoder.encode(PROMPTS[1:2])[0], atol=1e-5)


def test_batches_run_shortest_first_and_outputs_keep_the_given_order(minilm, tiny_encoder):
    """Prompts are batched by length (less padding); every output still lands at its own prompt."""
    prompts = ["a cat", PROMPTS[0] + " at dusk, seen from far away", "sky", PROMPTS[1], "a dog on grass"]
    order = minilm.length_order(prompts)
    lengths = [len(ids) for ids in minilm.tokenizer(prompts)["input_ids"]]
    assert [lengths[i] for i in order] == sorted(lengths) and list(order) != list(range(5))
    alone = [minilm.capture([p], CaptureConfig(use_cache=False)) for p in prompts]
    batched = minilm.capture(prompts, CaptureConfig(use_cache=False, batch_size=2))
    for i, one in enumerate(alone):
        lo, hi = batched.offsets[i], batched.offsets[i + 1]
        np.testing.assert_allclose(batched.data[:, lo:hi], one.data, atol=1e-4)
    pooled = minilm.encode(prompts, batch_size=2)
    np.testing.assert_allclose(pooled, np.concatenate([minilm.encode([p]) for p in prompts]), atol=1e-5)
    # pads that are attended (an unmasked profile) would change a prompt's output: the given order
    unmasked = tiny_encoder.with_profile(replace(tiny_encoder.profile, attention_mask=False))
    assert list(unmasked.length_order(prompts)) == list(range(5))


def test_pooled_mean_and_max_by_hand(minilm):
    acts = minilm.capture(PROMPTS, CaptureConfig(use_cache=False))
    layer3 = acts.layer(3)
    lo, hi = acts.offsets[2], acts.offsets[3]
    np.testing.assert_allclose(acts.pooled("mean")[2, 3], layer3[lo:hi].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts.pooled("max")[2, 3], layer3[lo:hi].max(0))
    with pytest.raises(ValueError, match="unknown pooling"):
        acts.pooled("median")


def test_cache_hit_is_identical_and_skips_the_model(minilm, tmp_path, monkeypatch):
    config = CaptureConfig(cache_dir=tmp_path)
    first = minilm.capture(PROMPTS, config)
    calls = []
    monkeypatch.setattr(minilm.model, "forward", lambda *a, **k: calls.append(1))
    second = minilm.capture(PROMPTS, config)
    assert not calls
    assert isinstance(second.data, np.memmap)
    np.testing.assert_array_equal(first.data, second.data)
    assert second.prompts == PROMPTS


def test_cache_invalidated_when_prompts_change(minilm, tmp_path):
    config = CaptureConfig(cache_dir=tmp_path)
    a = minilm.capture(PROMPTS, config)
    b = minilm.capture([*PROMPTS[:2], "a different third prompt"], config)
    assert minilm.cache_key(PROMPTS, config) != minilm.cache_key(b.prompts, config)
    assert len(list((tmp_path / "activations").iterdir())) == 2
    assert b.prompts[2] == "a different third prompt"
    assert a.n_tokens != b.n_tokens or not np.array_equal(a.data, b.data)
    np.testing.assert_allclose(a.data[:, : a.offsets[2]], b.data[:, : b.offsets[2]], atol=1e-5)


def test_bfloat16_storage(minilm):
    full = minilm.capture(PROMPTS, CaptureConfig(use_cache=False))
    half = minilm.capture(PROMPTS, CaptureConfig(use_cache=False, storage="bfloat16"))
    assert half.data.dtype == np.uint16 and half.data.nbytes * 2 == full.data.nbytes
    np.testing.assert_allclose(half.layer(4), full.layer(4), rtol=1e-2, atol=1e-2)


def test_tokens_gather_in_any_order(minilm):
    acts = minilm.capture(PROMPTS, CaptureConfig(use_cache=False))
    rows = np.array([7, 2, 30, 0])
    got = acts.tokens(rows, layers=[1, 5])
    np.testing.assert_array_equal(got[1, 0].numpy(), acts.layer(5)[7])
    np.testing.assert_array_equal(got[0, 2].numpy(), acts.layer(1)[30])


def test_unsupported_class_is_named():
    with pytest.raises(ValueError, match="unsupported text encoder class Linear"):
        find_blocks(nn.Linear(2, 2))


@pytest.mark.parametrize("bad", [[], "one string", ["ok", "  "]])
def test_bad_prompts(minilm, bad):
    with pytest.raises(ValueError, match="prompt"):
        minilm.capture(bad, CaptureConfig(use_cache=False))


def test_capture_config_checks_itself():
    with pytest.raises(ValueError, match="storage"):
        CaptureConfig(storage="float16")
    with pytest.raises(ValueError, match="batch_size"):
        CaptureConfig(batch_size=0)


def test_load_local_t5_folder_and_pipeline_folder(tmp_path, bert_tokenizer):
    model = tiny_model("umt5")
    folder = tmp_path / "pipe"
    model.save_pretrained(folder / "text_encoder")
    bert_tokenizer.save_pretrained(folder / "tokenizer")
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline"}))
    encoder = load_encoder(str(folder))
    assert type(encoder.model).__name__ == "UMT5EncoderModel"
    assert encoder.layout.family == "t5" and encoder.n_blocks == 2
    assert encoder.model_id.endswith(":text_encoder") and encoder.revision.startswith("files-")
    with torch.no_grad():
        for p, q in zip(model.parameters(), encoder.model.parameters()):
            assert torch.equal(p, q)


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match="could not load text encoder"):
        load_encoder(str(tmp_path))  # an empty folder
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(ValueError, match="expected a model folder"):
        load_encoder(str(tmp_path / "f.txt"))


def test_from_pipeline_takes_flux_t5(bert_tokenizer):
    pipe = SimpleNamespace(
        text_encoder=tiny_model("clip"),
        tokenizer=bert_tokenizer,
        text_encoder_2=tiny_model("t5"),
        tokenizer_2=bert_tokenizer,
        config=SimpleNamespace(_name_or_path="flux"),
    )
    encoder = TextEncoder.from_pipeline(pipe, "text_encoder_2")
    assert encoder.layout.family == "t5" and encoder.model_id == "flux:text_encoder_2"
    assert TextEncoder.from_pipeline(pipe).layout.family == "clip"
    with pytest.raises(ValueError, match="has no 'text_encoder_3'"):
        TextEncoder.from_pipeline(pipe, "text_encoder_3")


def test_block_index_checked(minilm):
    assert minilm.block(6) is minilm.layout.blocks[5]
    with pytest.raises(ValueError, match="not a block output"):
        minilm.block(0)


def test_select_keeps_the_chosen_prompts_tokens(minilm):
    acts = minilm.capture(["a cat", "a red car on a road", "a dog"], CaptureConfig(use_cache=False))
    sub = acts.select([2, 0])
    assert sub.prompts == ["a dog", "a cat"] and list(sub.lengths) == [acts.lengths[2], acts.lengths[0]]
    np.testing.assert_array_equal(
        sub.layer(3)[: sub.lengths[0]], acts.layer(3)[acts.offsets[2] : acts.offsets[3]]
    )
    with pytest.raises(ValueError, match="no prompts"):
        acts.select([])
