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
            vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=128, bos_token_id=101, eos_token_id=102, pad_token_id=0,
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
