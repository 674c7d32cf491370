"""Shared builders: the real MiniLM (behaviour) and tiny random T5/UMT5/CLIP encoders (plumbing)."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def seed() -> int:
    """Every test starts from the same seed."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    return 0


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session gets its own activation cache, never the user's."""
    monkeypatch.setenv("CLEAR_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def minilm():
    from clear_core.encoders import load_encoder

    return load_encoder("minilm")


@pytest.fixture(scope="session")
def bert_tokenizer(minilm):
    """MiniLM's tokenizer, reused by the tiny models so that nothing is downloaded."""
    return minilm.tokenizer


def tiny_model(kind: str):
    """A 2-block randomly initialised encoder of the given family, built from a config."""
    import transformers as tf

    torch.manual_seed(0)
    vocab = 30522  # MiniLM's tokenizer
    if kind == "t5":
        cfg = tf.T5Config(vocab_size=vocab, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4)
        return tf.T5EncoderModel(cfg).eval()
    if kind == "umt5":
        cfg = tf.UMT5Config(vocab_size=vocab, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4)
        return tf.UMT5EncoderModel(cfg).eval()
    if kind == "clip":
        cfg = tf.CLIPTextConfig(
            vocab_size=vocab,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=128,
            bos_token_id=101,
            eos_token_id=102,
            pad_token_id=0,
        )
        return tf.CLIPTextModel(cfg).eval()
    raise ValueError(kind)


@pytest.fixture(params=["t5", "umt5", "clip"])
def tiny_encoder(request, bert_tokenizer):
    from clear_core.encoders import TextEncoder

    model = tiny_model(request.param)
    return TextEncoder(model, bert_tokenizer, f"tiny-{request.param}", f"test-{request.param}")


PROMPTS = [
    "a stunt performer with a parachute over a desert, motion blur",
    "a cat",
    "an old church in a snowy village at dusk, aerial drone footage, cinematic lighting",
]


def synthetic_pairs(
    n_pairs: int = 48, tokens: int = 5, d: int = 16, planted_layer: int = 3, n_layers: int = 5, seed: int = 0
):
    """Paired captures where only ``planted_layer`` carries a concept direction in the positives.

    Every layer is Gaussian noise of the same scale; positives get a strong fixed direction added to
    two of their tokens at the planted layer only. Layer 0 is labelled "embeddings".
    """
    from clear_core.encoders import Activations

    rng = np.random.default_rng(seed)
    names = ["embeddings", *[f"block.{i}" for i in range(n_layers - 1)]]
    offsets = np.arange(n_pairs + 1, dtype=np.int64) * tokens
    direction = rng.normal(size=d)
    direction *= 3.0 / np.linalg.norm(direction)

    def make(planted: bool):
        data = rng.normal(size=(n_layers, n_pairs * tokens, d)).astype(np.float32) / np.sqrt(d)
        if planted:
            for i in range(n_pairs):
                data[planted_layer, offsets[i] + 1 : offsets[i] + 3] += direction.astype(np.float32)
        return data

    pos = Activations(make(True), offsets, names, [f"pos {i}" for i in range(n_pairs)], "synthetic")
    neg = Activations(make(False), offsets.copy(), names, [f"neg {i}" for i in range(n_pairs)], "synthetic")
    return pos, neg, direction


@pytest.fixture(scope="session")
def small_concept():
    """24 real pairs of the parachute pack (fast enough for a real search in tests)."""
    from clear_core.concepts import ConceptSet, load_builtin

    full = load_builtin("parachute")
    return ConceptSet("parachute", full.pairs[::10][:24])


@pytest.fixture(scope="session")
def small_run(minilm, small_concept, tmp_path_factory):
    """A short real CLEAR run on MiniLM (shared by the erasure, evaluation and feature tests)."""
    import os

    from clear_core.search import SearchConfig
    from clear_core.workflow import ClearRun, EraserOptions

    os.environ["CLEAR_CACHE_DIR"] = str(tmp_path_factory.getbasetemp() / "cache")
    run = ClearRun(
        minilm,
        small_concept,
        SearchConfig(steps=30, d_sae=256, seed=0),
        EraserOptions(calibration_pairs=8, gammas=(0.0, 1.0, 2.0, 4.0)),
        unrelated=["a bowl of soup on a table", "a red car on a coastal road", "a cat asleep on a sofa"],
    )
    for _ in run.run():
        pass
    return run.result
