"""Whisper encoder features: the pretrained speech encoder that ships offline.

Shapes: T samples (16 kHz), M log-mel frames (100 Hz), F encoder frames (50 Hz / pool), D dims.

The CTranslate2 model (through faster-whisper) encodes inputs shorter than Whisper's 30 s
window directly, so each utterance is encoded at its own length (no padding to 30 s: 20x less
work for 3 s utterances). Longer audio is encoded in 30 s windows and the frames concatenated.

The encoder's output is dominated by its absolute position embedding: k-means on raw frames
finds clusters of *time in the utterance* more than of sounds. With ``subtract_silence`` each
window's encoding of silence (same length) is subtracted, which removes what depends on
position alone, so the clusters of the difference follow the sounds more (see
``WhisperUnitsConfig`` for the measurement).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

WINDOW_MEL_FRAMES = 3000  # Whisper's 30 s window at 100 mel frames per second


class WhisperEncoderFeatures:
    name = "whisper"
    sample_rate = 16000

    def __init__(self, model_dir: str | Path, pool: int = 1, threads: int = 2,
                 device: str = "cpu", subtract_silence: bool = True, layer: int = -1) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)
        import ctranslate2  # noqa: PLC0415
        from faster_whisper import WhisperModel  # noqa: PLC0415

        self._storage = ctranslate2.StorageView
        compute = "int8" if device == "cpu" else "float16"
        self.model = WhisperModel(str(model_dir), device=device, compute_type=compute,
                                  cpu_threads=threads, local_files_only=True)
        self.pool = pool
        self.subtract_silence = subtract_silence
        # the last layer comes from CTranslate2 (int8, fast); another from the same weights in
        # torch (float32), since CTranslate2 gives the last layer only
        self.layer = layer
        self.encoder = None
        if layer != -1:
            from vadusa.tokenizers.whisper_encoder import load_whisper_encoder  # noqa: PLC0415

            self.encoder = load_whisper_encoder(model_dir).to(device)
        # what the features are, recorded with a k-means so tokens never mix two kinds
        self.settings = {"layer": layer, "subtract_silence": subtract_silence, "pool": pool}
        self.hop_length = 320 * pool  # 160-sample mel hop, x2 by the encoder's strided conv
        probe = self._encode_mel(np.zeros((80, 4), dtype=np.float32))
        self.dim = int(probe.shape[-1])

    def _encode_mel(self, mel: np.ndarray) -> np.ndarray:
        """(80, M) with M even -> (M / 2, D)."""
        if self.encoder is not None:
            device = self.encoder.positions.device
            with torch.inference_mode():
                (state,) = self.encoder(torch.from_numpy(mel)[None].to(device), (self.layer,))
            return state[0].float().cpu().numpy()  # (1, M / 2, D) -> (M / 2, D)
        batch = self._storage.from_array(np.ascontiguousarray(mel[None]))  # (1, 80, M)
        return np.asarray(self.model.model.encode(batch, to_cpu=True))[0]

    def extract(self, wave: torch.Tensor) -> torch.Tensor:
        """(T,) -> (T // hop_length, D)."""
        samples = wave.detach().cpu().numpy().astype(np.float32)
        mel = self.model.feature_extractor(samples)  # (80, M'), M' = T // 160 + 1
        frames = (len(samples) // 320) * 2  # even, so the encoder gives exactly T // 320
        mel = mel[:, :frames]
        if self.subtract_silence:
            silence = self.model.feature_extractor(np.zeros_like(samples))[:, :frames]
        outputs = []
        for s in range(0, frames, WINDOW_MEL_FRAMES):
            window = self._encode_mel(mel[:, s:s + WINDOW_MEL_FRAMES])  # (W / 2, D)
            if self.subtract_silence:  # what depends on position alone
                window = window - self._encode_mel(silence[:, s:s + WINDOW_MEL_FRAMES])
            outputs.append(window)
        feats = torch.from_numpy(np.concatenate(outputs))  # (T // 320, D)
        if self.pool > 1:
            usable = len(feats) // self.pool * self.pool
            feats = feats[:usable].reshape(-1, self.pool, self.dim)  # (F, pool, D)
            feats = feats.mean(1)  # (F, D)
        return feats.float()
