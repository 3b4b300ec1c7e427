"""The ``encodec`` family's vocoder: its codec's decoder (``vadusa.tokenizers.codec`` holds the
codec itself), decoding from codebook 1 alone, because that is all the AR model predicts.

    wave, rate = CodecVocoder(load_codec_model(cfg.tokens.encodec, scratch)).decode(tokens, "")
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from encodec import EncodecModel

from vadusa.tokenizers.codec import FAMILY, codec_meta, frame_rate
from vadusa.vocoder.base import VocoderError, check_units

__all__ = ["CodecVocoder"]


class CodecVocoder:
    """The codec's decoder behind the vocoder contract, from codebook 1 alone.

    ``speaker`` is accepted and ignored: the codec is speaker-agnostic, the voice is whatever
    the tokens encode (the AR model chose it from its speaker embedding and prompt). So
    ``speakers`` is empty (``vadusa.vocoder.voice_for`` then passes any speaker through), and
    ``meta`` is the checkpoint's (``codec_meta`` for the published model)."""

    def __init__(self, model: EncodecModel, device: torch.device | str = "cpu",
                 meta: dict[str, Any] | None = None) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.sample_rate = int(model.sample_rate)
        self.vocab_size = int(model.quantizer.bins)
        self.frame_rate = frame_rate(model)
        self.family = FAMILY
        self.speakers: list[str] = []
        self.meta = meta if meta is not None else codec_meta(model, None)

    def decode(self, tokens: np.ndarray, speaker: str) -> tuple[np.ndarray, int]:
        """(F,) codebook-1 ids, or (F, n) codes of the first n codebooks (after the NAR stage)
        -> ((F * hop,) float32 waveform in [-1, 1], sample rate)."""
        tokens = np.asarray(tokens)
        if tokens.ndim == 2:
            if not 1 <= tokens.shape[1] <= self.model.quantizer.n_q:
                raise VocoderError(f"expected (frames, 1..{self.model.quantizer.n_q}) codes, "
                                   f"got shape {tokens.shape}")
            ids = np.stack([check_units(column, self.vocab_size, self.family)
                            for column in tokens.T])  # (n, F)
            codes = torch.from_numpy(ids).to(self.device)[:, None]  # (n, F) -> (Q=n, B=1, F)
        else:
            ids = check_units(tokens, self.vocab_size, self.family)
            codes = torch.from_numpy(ids).to(self.device)[None, None]  # (F,) -> (Q=1, B=1, F)
        with torch.inference_mode():
            latents = self.model.quantizer.decode(codes)  # (1, D, F)
            wave = self.model.decoder(latents)[0, 0]  # (1, 1, F * hop) -> (F * hop,)
        return wave.clamp(-1, 1).float().cpu().numpy(), self.sample_rate
