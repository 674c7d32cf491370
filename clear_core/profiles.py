"""How a pipeline runs its text encoder: the *encoding profile* an eraser must be trained and applied under.

Diffusers pipelines do not all read their text encoder the same way (read from each pipeline's
``encode_prompt`` in diffusers 0.42):

============================  ==============  ==========  ==============  ==========================
pipeline                      encoder         padding      attention mask  positions the denoiser reads
============================  ==============  ==========  ==============  ==========================
WanPipeline (Wan2.1/2.2)      UMT5            512 (max)    yes             real tokens (pads zeroed)
CogVideoXPipeline             T5              226 (max)    **no**          **all 226** (pads included)
LTXPipeline                   T5              128 (max)    yes             real tokens (mask passed on)
StableDiffusion(XL), T2V-SD   CLIP            77 (max)     no              all 77
FluxPipeline                  T5 (``_2``)     512 (max)    no              all 512
TestbedPipeline (this repo)   MiniLM          64 (max)     yes             real tokens (pads zeroed)
============================  ==============  ==========  ==============  ==========================

Without a mask, every hidden state — real tokens included — differs from a masked run (the pads take
part in attention), and the eraser then also edits pad positions the denoiser reads. So an eraser for
CogVideoX must be *searched* on unmasked, 226-long states and *applies* to all 226 positions; a
capture under the workbench's default profile (masked, real tokens only) would train it on states the
pipeline never computes. :class:`EncodingProfile` says which; captures, ``encode`` and the eraser's
``eraser.json`` all carry it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

__all__ = [
    "MASKED",
    "PIPELINE_PROFILES",
    "EncodingProfile",
    "PipelineEncoding",
    "pipeline_encoding",
]


@dataclass(frozen=True)
class EncodingProfile:
    """How prompts are tokenised and run through the encoder, and which positions count."""

    name: str = "masked"
    """A label recorded in artifacts ("masked", "cogvideox", ...)."""
    padding: str = "longest"
    """"longest" (pad to the batch's longest prompt) or "max_length" (always ``max_length`` tokens)."""
    max_length: int | None = None
    """Truncation (and, with ``padding="max_length"``, padding) length; None: the tokenizer's own, ≤ 512."""
    attention_mask: bool = True
    """Whether the encoder is given the attention mask (False: pads attend and are attended to)."""
    positions: str = "real"
    """"real": only real tokens are used downstream; "all": every padded position is."""

    def __post_init__(self) -> None:
        if self.padding not in ("longest", "max_length"):
            raise ValueError(f"padding must be 'longest' or 'max_length', got {self.padding!r}")
        if self.positions not in ("real", "all"):
            raise ValueError(f"positions must be 'real' or 'all', got {self.positions!r}")
        if self.max_length is not None and self.max_length < 2:
            raise ValueError(f"max_length must be ≥ 2, got {self.max_length}")
        if self.positions == "all" and (self.padding != "max_length" or self.max_length is None):
            raise ValueError("positions='all' needs padding='max_length' and a max_length (a fixed length)")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict | None) -> EncodingProfile:
        """The profile stored in an artifact (None: the default masked profile)."""
        if not data:
            return MASKED
        if not isinstance(data, dict):
            raise ValueError(f"an encoding profile must be an object, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown encoding profile field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    def same_states(self, other: EncodingProfile) -> bool:
        """Whether the two profiles give the same hidden states at the real tokens and feed the same
        positions downstream (the label and, for masked real-token profiles, the length do not matter)."""
        if self.attention_mask != other.attention_mask or self.positions != other.positions:
            return False
        if self.attention_mask and self.positions == "real":
            return True  # masked pads change nothing at real tokens; only truncation length differs
        return self.max_length == other.max_length


MASKED = EncodingProfile()
"""The workbench's default: attention mask on, real tokens only (MiniLM, Wan, LTX, the testbed)."""


@dataclass(frozen=True)
class PipelineEncoding:
    """What a pipeline class does with its text encoder."""

    family: str
    """Short name used in artifacts and the CLI ("wan", "cogvideox", ...)."""
    component: str
    """Attribute of the text encoder the eraser targets (``text_encoder``; ``text_encoder_2`` for Flux)."""
    profile: EncodingProfile
    """How that encoder is run."""
    video: bool = True
    """Video (``.frames``) or image (``.images``) output."""
    note: str = ""
    """What a user should know (shown in docs and warnings)."""


PIPELINE_PROFILES: dict[str, PipelineEncoding] = {
    "WanPipeline": PipelineEncoding(
        "wan", "text_encoder", EncodingProfile("wan", "max_length", 512, True, "real")
    ),
    "CogVideoXPipeline": PipelineEncoding(
        "cogvideox", "text_encoder", EncodingProfile("cogvideox", "max_length", 226, False, "all")
    ),
    "LTXPipeline": PipelineEncoding(
        "ltx", "text_encoder", EncodingProfile("ltx", "max_length", 128, True, "real")
    ),
    "TextToVideoSDPipeline": PipelineEncoding(
        "sd", "text_encoder", EncodingProfile("clip77", "max_length", 77, False, "all")
    ),
    "StableDiffusionPipeline": PipelineEncoding(
        "sd", "text_encoder", EncodingProfile("clip77", "max_length", 77, False, "all"), video=False
    ),
    "StableDiffusionXLPipeline": PipelineEncoding(
        "sdxl",
        "text_encoder",
        EncodingProfile("clip77", "max_length", 77, False, "all"),
        video=False,
        note="SDXL reads the penultimate hidden state of each CLIP: an eraser at the last block has no effect",
    ),
    "FluxPipeline": PipelineEncoding(
        "flux",
        "text_encoder_2",
        EncodingProfile("flux", "max_length", 512, False, "all"),
        video=False,
        note="Flux is guidance-distilled: it has no negative prompt unless true_cfg_scale > 1",
    ),
    "TestbedPipeline": PipelineEncoding(
        "testbed", "text_encoder", EncodingProfile("testbed", "max_length", 64, True, "real")
    ),
}
"""Known pipeline classes (by class name, so importing diffusers is not needed to look one up)."""


def pipeline_encoding(
    pipe_or_class: object, transformer_config: dict | None = None
) -> PipelineEncoding | None:
    """The encoding of a pipeline (an instance, a class or a class name); None when unknown.

    Subclasses inherit their base class's entry (a fine-tuned pipeline class keeps its encoding). A
    denoiser with a fixed text length (CogVideoX's ``max_text_seq_length``) sets the profile's length:
    from the instance's ``transformer``, or from ``transformer_config`` (its config.json, for a folder).
    """
    if isinstance(pipe_or_class, str):
        found = PIPELINE_PROFILES.get(pipe_or_class)
    else:
        cls = pipe_or_class if isinstance(pipe_or_class, type) else type(pipe_or_class)
        found = next(
            (PIPELINE_PROFILES[k.__name__] for k in cls.__mro__ if k.__name__ in PIPELINE_PROFILES), None
        )
        if transformer_config is None and not isinstance(pipe_or_class, type):
            config = getattr(getattr(pipe_or_class, "transformer", None), "config", None)
            transformer_config = dict(config) if config is not None else None
    fixed = (transformer_config or {}).get("max_text_seq_length")
    if found is None or not isinstance(fixed, int) or fixed == found.profile.max_length:
        return found
    return replace(found, profile=replace(found.profile, max_length=fixed))
