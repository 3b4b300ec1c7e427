"""Whisper's audio encoder in torch, with the weights of a CTranslate2 model directory, so that
units can come from any of its layers (CTranslate2 gives the last one only).

    log-mel (B, 80, M)       100 frames/s, Whisper's own analysis (faster-whisper computes it)
    -> conv k3 + GELU        (B, D, M)
    -> conv k3 stride 2      (B, D, M/2)  50 frames/s
    -> + sinusoidal position (B, M/2, D)
    -> L pre-norm blocks     (B, M/2, D)  hidden state of block l = ``layer l``
    -> final LayerNorm       (B, M/2, D)  ``layer -1``: what CTranslate2's ``encode`` returns

Shapes: B batch, M mel frames, D width, H heads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vadusa.tokenizers.ct2_file import CT2FormatError, read_ct2_weights


class EncoderBlock(nn.Module):
    """Pre-norm self-attention and feed-forward; the projections' names follow CTranslate2's
    (``linear_0`` the fused q/k/v in, ``linear_1`` out)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.attn_norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ffn_norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, 4 * dim)
        self.down = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).split(D, dim=2)  # 3 x (B, T, D)
        # (B, T, D) -> (B, T, H, D/H) -> (B, H, T, D/H)
        q, k, v = (t.view(B, T, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v)  # the encoder attends everywhere
        x = x + self.out(y.transpose(1, 2).reshape(B, T, D))  # (B, H, T, D/H) -> (B, T, D)
        return x + self.down(F.gelu(self.up(self.ffn_norm(x))))


class WhisperEncoder(nn.Module):
    def __init__(self, n_mels: int, dim: int, heads: int, layers: int, max_frames: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, dim, 3, padding=1)
        self.conv2 = nn.Conv1d(dim, dim, 3, stride=2, padding=1)
        self.register_buffer("positions", torch.zeros(max_frames, dim), persistent=False)
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    def forward(self, mel: torch.Tensor, layers: tuple[int, ...] = (-1,)) -> list[torch.Tensor]:
        """mel (B, 80, M), M even and at most twice ``max_frames`` -> the hidden state
        (B, M/2, D) of each of ``layers`` (block index, or -1 for the normalised output)."""
        wanted = {self.num_layers - 1 if layer == -1 else layer for layer in layers}
        if max(wanted) >= self.num_layers or min(wanted) < 0:
            raise ValueError(f"layers {layers}: this encoder has blocks 0..{self.num_layers - 1} "
                             f"(-1 = the final output)")
        x = F.gelu(self.conv1(mel))  # (B, D, M)
        x = F.gelu(self.conv2(x)).transpose(1, 2)  # (B, D, M/2) -> (B, M/2, D)
        x = x + self.positions[: x.shape[1]]
        states: dict[int, torch.Tensor] = {}
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in wanted:
                states[index] = x
            if index >= max(wanted):
                break
        last = self.num_layers - 1
        return [self.norm(states[last]) if layer == -1 else states[layer] for layer in layers]


def load_whisper_encoder(model_dir: str | Path) -> WhisperEncoder:
    """The encoder of a CTranslate2 Whisper directory (its ``model.bin``), in float32."""
    spec, w = read_ct2_weights(model_dir)
    if spec != "WhisperSpec" or "encoder/conv1/weight" not in w:
        raise CT2FormatError(f"{model_dir}: a CTranslate2 {spec}, not a Whisper model")
    dim, n_mels, _ = w["encoder/conv1/weight"].shape
    layers = sum(1 for k in w if k.startswith("encoder/layer_") and k.endswith("linear_1/bias")
                 and "self_attention" in k)
    if "encoder/num_heads" not in w:  # a guess would give wrong features without a sign
        raise CT2FormatError(f"{model_dir}: the model does not say its encoder's head count "
                             f"(encoder/num_heads); convert it with a recent ctranslate2")
    heads = int(w["encoder/num_heads"])
    positions = w["encoder/position_encodings/encodings"]
    encoder = WhisperEncoder(n_mels, dim, heads, layers, positions.shape[0])
    names = {"conv1.weight": "conv1/weight", "conv1.bias": "conv1/bias",
             "conv2.weight": "conv2/weight", "conv2.bias": "conv2/bias",
             "norm.weight": "layer_norm/gamma", "norm.bias": "layer_norm/beta"}
    for i in range(layers):
        at, ffn = f"layer_{i}/self_attention", f"layer_{i}/ffn"
        names |= {f"blocks.{i}.attn_norm.weight": f"{at}/layer_norm/gamma",
                  f"blocks.{i}.attn_norm.bias": f"{at}/layer_norm/beta",
                  f"blocks.{i}.qkv.weight": f"{at}/linear_0/weight",
                  f"blocks.{i}.qkv.bias": f"{at}/linear_0/bias",
                  f"blocks.{i}.out.weight": f"{at}/linear_1/weight",
                  f"blocks.{i}.out.bias": f"{at}/linear_1/bias",
                  f"blocks.{i}.ffn_norm.weight": f"{ffn}/layer_norm/gamma",
                  f"blocks.{i}.ffn_norm.bias": f"{ffn}/layer_norm/beta",
                  f"blocks.{i}.up.weight": f"{ffn}/linear_0/weight",
                  f"blocks.{i}.up.bias": f"{ffn}/linear_0/bias",
                  f"blocks.{i}.down.weight": f"{ffn}/linear_1/weight",
                  f"blocks.{i}.down.bias": f"{ffn}/linear_1/bias"}
    missing = [v for v in names.values() if f"encoder/{v}" not in w]
    if missing:
        raise CT2FormatError(f"{model_dir}: Whisper encoder weights missing: {missing[:3]}")
    state = {k: torch.from_numpy(np.array(w[f"encoder/{v}"], np.float32))
             for k, v in names.items()}
    encoder.load_state_dict(state)
    encoder.positions.copy_(torch.from_numpy(np.array(positions, np.float32)))
    return encoder.eval()
