"""Read the weights of a CTranslate2 model directory (``model.bin``) without CTranslate2.

CTranslate2 runs Whisper fast on CPU but only gives the encoder's last layer. To take features
from any layer we run the same weights in torch (``tokenizers.whisper_encoder``); this module
reads them. The file is a plain binary layout, no pickle, so reading it runs no code:

    uint32 binary version (5 or 6)
    string spec name, uint32 spec revision
    uint32 number of variables, then for each:
        string name, uint8 rank, uint32 dims[rank], uint8 dtype, uint32 byte count, bytes
    uint32 number of aliases, then for each: string alias, string variable name

A string is a uint16 length (with the trailing NUL) and its bytes; everything is little-endian.
Quantized int8 weights come with a ``<name>_scale`` variable (one scale per output row).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

# CTranslate2's DataType enum, in its order
DTYPES: dict[int, np.dtype | None] = {
    0: np.dtype("<f4"), 1: np.dtype("i1"), 2: np.dtype("<i2"), 3: np.dtype("<i4"),
    4: np.dtype("<f2"), 5: None,  # 5: bfloat16, widened below
}
SUPPORTED_VERSIONS = (5, 6)


class CT2FormatError(ValueError):
    """The file is not a CTranslate2 model this reader understands."""


def _read(f: BinaryIO, fmt: str) -> tuple:
    size = struct.calcsize("<" + fmt)
    raw = f.read(size)
    if len(raw) != size:
        raise CT2FormatError("the file ends in the middle of a record")
    return struct.unpack("<" + fmt, raw)


def _string(f: BinaryIO) -> str:
    (length,) = _read(f, "H")
    return f.read(length)[:-1].decode("utf-8")


def read_ct2_weights(path: str | Path) -> tuple[str, dict[str, np.ndarray]]:
    """``model.bin`` (or its directory) -> (spec name, {variable name: float32 or int array}).

    Float16 and bfloat16 are widened to float32; int8 weights with a ``_scale`` are
    de-quantized (``weight * 1 / scale`` per row, as CTranslate2 quantizes ``w * scale``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.bin"
    if not path.is_file():
        raise CT2FormatError(f"{path}: no CTranslate2 model.bin there")
    variables: dict[str, np.ndarray] = {}
    with path.open("rb") as f:
        (version,) = _read(f, "I")
        if version not in SUPPORTED_VERSIONS:
            raise CT2FormatError(f"{path}: CTranslate2 binary version {version}; this reader "
                                 f"knows {SUPPORTED_VERSIONS} (convert with a recent "
                                 f"ctranslate2)")
        spec = _string(f)
        _read(f, "I")  # spec revision
        (count,) = _read(f, "I")
        for _ in range(count):
            name = _string(f)
            (rank,) = _read(f, "B")
            dims = _read(f, "I" * rank) if rank else ()
            (dtype_id,) = _read(f, "B")
            (nbytes,) = _read(f, "I")
            raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise CT2FormatError(f"{path}: variable {name} is cut short")
            if dtype_id not in DTYPES:
                raise CT2FormatError(f"{path}: variable {name} has unknown dtype {dtype_id}")
            if dtype_id == 5:  # bfloat16: the high half of a float32
                wide = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
                array = wide.view(np.float32)
            else:
                array = np.frombuffer(raw, dtype=DTYPES[dtype_id])
            variables[name] = array.reshape(dims) if dims else array.reshape(())
        tail = f.read(4)  # older files may end without an alias table
        aliases = struct.unpack("<I", tail)[0] if len(tail) == 4 else 0
        for _ in range(aliases):
            alias, target = _string(f), _string(f)
            variables[alias] = variables[target]
    return spec, _widen(variables)


def _widen(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, array in variables.items():
        if name.endswith("_scale"):
            continue
        scale = variables.get(f"{name}_scale")
        if array.dtype == np.int8 and scale is not None:
            array = array.astype(np.float32) / np.asarray(scale, np.float32).reshape(-1, 1)
        elif array.dtype.kind == "f":
            array = array.astype(np.float32)
        out[name] = array
    return out
