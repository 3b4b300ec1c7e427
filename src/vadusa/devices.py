"""Where tensors live (``device: auto`` picks CUDA when present, else the CPU) and in which
precision a model decodes (``decoding.precision``)."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was asked for, but no CUDA device is visible")
    return torch.device(name)


PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def bf16_decodes_faster(device: torch.device) -> bool:
    """Is decoding measured faster in bfloat16 than in float32 on this kind of device?

    CPUs with AVX512-BF16 or AMX: yes (the default model on the 2-core default machine: an AR
    step 1.1x, a 17-node tree pass 1.7x faster; README, "Decoding precision"). CUDA: no, not
    yet: on an H100 the default model's AR decoding took 61.2 s in bfloat16 against 5.2 s in
    float32 for the same 10 utterances (cause not found), so ``auto`` keeps float32 there."""
    if device.type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return False


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    """``decoding.precision`` -> a dtype: auto is bfloat16 where it decodes faster, else
    float32."""
    if name == "auto":
        return torch.bfloat16 if bf16_decodes_faster(device) else torch.float32
    if name not in PRECISIONS:
        raise ValueError(f"decoding.precision={name!r}: choose auto, float32 or bfloat16")
    return PRECISIONS[name]
