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


def flush_denormals() -> None:
    """Let the CPU treat denormal floats (below about 1e-38 in float32) as zero. On x86 each
    arithmetic operation on one takes a slow microcode path, and training makes many of them
    (gradients and activations that decay without ever reaching 0): on the 2-core default
    machine the unit-to-mel's training slowed from 0.7 s a step at its start to 3 s a step by
    step 800, and resumed from that step's checkpoint it ran at 1.5 s a step with denormals
    and 0.35 s a step without (2 threads). Flushing them changes a result by less than
    float32's own rounding of normal numbers. Every ``vadusa`` command calls it first."""
    torch.set_flush_denormal(True)


PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def bf16_decodes_faster(device: torch.device) -> bool:
    """Is decoding measured faster in bfloat16 than in float32 on this kind of device?

    CPUs with AVX512-BF16 or AMX: yes (the default model on the 2-core default machine: an AR
    step 1.1x, a 17-node tree pass 1.7x faster; docs/model.md, "Decoding precision"). CUDA: no, not
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
