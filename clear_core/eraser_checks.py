"""What an eraser artifact may say, checked before a single tensor is read or allocated.

:meth:`clear_core.erasure.Eraser.load` calls :func:`check_eraser_files` first: every number of
``eraser.json`` (sizes, block, scale, γ, gate τ, the SAE config) is bounded by clear_core/limits.py, and
the safetensors header (its first bytes: names, dtypes, shapes) is read and checked against the file's
size and the memory budget. A file that asks for a 1.5 PB SAE, holds a NaN gate τ or is cut short is
refused in one line naming the file, the field and the limit, instead of an allocation failure.
:func:`check_eraser_fields` holds the rules for an :class:`Eraser` built in memory (its text fields).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from clear_core import limits
from clear_core.validation import GAMMA_LIMIT, check_int, check_number

__all__ = [
    "MAX_CONCEPT_NAME",
    "MAX_HEADER_BYTES",
    "check_eraser_fields",
    "check_eraser_files",
    "tensor_header",
]

MAX_HEADER_BYTES = 16 * 1024**2
"""Largest safetensors JSON header read (an eraser's has a handful of entries: a few hundred bytes)."""
MAX_TENSORS = 256
"""Most tensors an eraser file may hold."""
MAX_LAYER = 10_000
"""Largest block index accepted from a file."""
MAX_CONCEPT_NAME = 200
"""Longest concept name (it is shown in the app and becomes part of file names)."""
_DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
_SAE_INTS = {"d_model": limits.MAX_D_MODEL, "d_sae": limits.MAX_D_SAE, "k": limits.MAX_K, "dead_after": 10**9}
_SAE_NUMBERS = ("l1_coefficient", "aux_coefficient", "decoder_init_norm")


def tensor_header(path: str | Path) -> dict[str, tuple[str, tuple[int, ...], int]]:
    """name -> (dtype, shape, bytes) from a safetensors file's header, without reading any tensor.

    ValueError when the header is malformed, larger than :data:`MAX_HEADER_BYTES`, or disagrees with
    the file's size (a file cut short, or one with data beyond what its header names).
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path}: not a safetensors file ({size} bytes)")
        (n,) = struct.unpack("<Q", head)
        if n > min(MAX_HEADER_BYTES, size - 8):
            raise ValueError(f"{path}: not a safetensors file (header of {n:,} bytes in a file of {size:,})")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError(f"{path}: not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: not a safetensors file (its header is not an object)")
    header.pop("__metadata__", None)
    if len(header) > MAX_TENSORS:
        raise ValueError(f"{path}: {len(header):,} tensors; an eraser has at most {MAX_TENSORS}")
    out, end = {}, 0
    for name, entry in header.items():
        try:
            dtype, shape, (start, stop) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
            if dtype not in _DTYPE_BYTES or not all(isinstance(d, int) and d >= 0 for d in shape):
                raise TypeError
            if not (isinstance(start, int) and isinstance(stop, int) and 0 <= start <= stop):
                raise TypeError
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{path}: tensor {name!r} has a malformed header entry") from None
        count = 1
        for d in shape:
            count *= d
        if count * _DTYPE_BYTES[dtype] != stop - start:
            raise ValueError(
                f"{path}: tensor {name!r}: shape {shape} does not match its {stop - start:,} bytes"
            )
        out[name] = (dtype, shape, stop - start)
        end = max(end, stop)
    if 8 + n + end != size:
        raise ValueError(
            f"{path}: the file is {size:,} bytes but its header describes {8 + n + end:,} (cut short or padded)"
        )
    return out


def _sae_config(sae: Any, d_model: int, where: str) -> dict[str, Any]:
    """The ``sae`` object of eraser.json, every field typed and bounded (d_sae × d_model in the budget)."""
    if not isinstance(sae, dict):
        raise ValueError(f"{where}: 'sae' must be an object with d_model and d_sae, got {type(sae).__name__}")
    for key in ("d_model", "d_sae"):
        if key not in sae:
            raise ValueError(f"{where}: 'sae' has no {key!r}")
    for key, maximum in _SAE_INTS.items():
        if key in sae:
            check_int(sae[key], f"sae.{key}", minimum=1, maximum=maximum)
    for key in _SAE_NUMBERS:
        if key in sae:
            check_number(sae[key], f"sae.{key}", minimum=0.0)
    if "kind" in sae and not isinstance(sae["kind"], str):
        raise ValueError(f"sae.kind must be text, got {sae['kind']!r}")
    if sae["d_model"] != d_model:
        raise ValueError(f"sae.d_model {sae['d_model']} does not match d_model {d_model}")
    k = sae.get("k") if sae.get("kind", "relu") != "relu" else None
    limits.check_sae_size(sae["d_sae"], sae["d_model"], k, "sae.")
    return sae


def _fields(info: dict[str, Any]) -> None:
    """The numbers of eraser.json every kind has (range errors without the file name)."""
    d_model = check_int(info["d_model"], "d_model", minimum=1, maximum=limits.MAX_D_MODEL)
    check_int(info["layer"], "layer", minimum=1, maximum=MAX_LAYER)
    check_number(info["scale"], "scale", above=0.0)
    check_number(info["default_gamma"], "default_gamma", minimum=0.0, maximum=GAMMA_LIMIT)
    if info.get("gate_tau") is not None:
        check_number(info["gate_tau"], "gate_tau", above=0.0)
    if info.get("gate_margin") is not None:
        check_number(info["gate_margin"], "gate_margin", minimum=0.0)
    if info.get("prompt_margin") is not None:
        check_number(info["prompt_margin"], "prompt_margin", minimum=0.0)
    if info.get("prompt_tau") is not None:
        check_number(info["prompt_tau"], "prompt_tau", above=0.0)
    for key in ("concept", "model_id", "layer_name"):
        if not isinstance(info[key], str):
            raise ValueError(f"{key} must be text, got {info[key]!r}")
    _text(info["concept"])
    if info["kind"] == "sae":
        _sae_config(info.get("sae"), d_model, "eraser.json")


def _text(concept: str) -> None:
    limits.check_control_chars(concept, "concept", "name")
    if len(concept) > MAX_CONCEPT_NAME:
        raise ValueError(f"concept name is {len(concept):,} characters long; the limit is {MAX_CONCEPT_NAME}")


def check_eraser_files(info: dict[str, Any], json_path: Path, st_path: Path) -> None:
    """Check ``eraser.json``'s numbers (``info``) and ``eraser.safetensors``' header before loading.

    Raises a one-line ValueError naming the file. Shapes are compared with the config where the names
    are known (``W_enc``/``W_dec`` of an SAE); every tensor together must fit the memory budget.
    """
    try:
        _fields(info)
    except ValueError as err:
        raise ValueError(f"{json_path}: {err}") from None
    limits.check_file_size(json_path, "eraser.json", MAX_HEADER_BYTES)
    tensors = tensor_header(st_path)
    total = sum(nbytes for _, _, nbytes in tensors.values())
    limits.check_memory(
        total,
        f"{st_path}",
        f"{len(tensors)} tensors of {limits.format_bytes(total)} in the file",
        "this eraser is too large for this machine",
    )
    if info["kind"] == "sae":
        sae = info["sae"]
        for name, shape in (
            ("W_enc", (sae["d_model"], sae["d_sae"])),
            ("W_dec", (sae["d_sae"], sae["d_model"])),
        ):
            if name in tensors and tensors[name][1] != shape:
                raise ValueError(f"{st_path}: tensor {name!r} has shape {tensors[name][1]}, expected {shape}")


def check_eraser_fields(concept: Any, d_model: Any) -> None:
    """The text and size fields of an eraser made in memory (the concept is shown and used in file names)."""
    if not isinstance(concept, str) or not concept.strip():
        raise ValueError(f"an eraser needs a concept name, got {concept!r}")
    _text(concept)
    check_int(d_model, "d_model", minimum=1, maximum=limits.MAX_D_MODEL)
