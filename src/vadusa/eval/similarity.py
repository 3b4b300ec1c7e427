"""Speaker similarity (SIM): how much synthesized speech sounds like the reference speaker.

The cosine between GE2E speaker embeddings (d-vectors) of the synthesized utterance and of a
reference of its speaker, from the pretrained encoder that ships inside the Resemblyzer wheel
(nothing is downloaded). Evaluation's reference is the mean d-vector of the speaker's other
recordings (``eval.evaluate.SplitVoices``): in the zero-shot protocol the model heard only its
prompt, and the recording of the same utterance would reward copying it. Measured on the
embedded corpus: about 0.90 between two utterances of one voice and 0.57 between voices, so
SIM says whether the model kept the voice, on a scale where 1 is the recording itself.

Each waveform is resampled to the encoder's 16 kHz, loudness-normalised and stripped of long
silences (Resemblyzer's own preprocessing), then embedded from overlapping 1.6 s windows.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from vadusa.data.audio import resample

MIN_SECONDS = 0.3  # voiced speech below this gives no stable embedding


class SimilarityError(ValueError):
    pass


class SpeakerSimilarity:
    def __init__(self, device: str = "cpu") -> None:
        with warnings.catch_warnings():  # librosa/numba import chatter
            warnings.simplefilter("ignore")
            from resemblyzer import VoiceEncoder, preprocess_wav  # noqa: PLC0415
            from resemblyzer.hparams import sampling_rate  # noqa: PLC0415
        logging.getLogger("numba").setLevel(logging.WARNING)
        self._preprocess = preprocess_wav
        self.sample_rate = int(sampling_rate)
        self.encoder = VoiceEncoder(device=device, verbose=False)

    def embed(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        """(T,) float waveform at any rate -> (256,) unit-norm d-vector."""
        wave = resample(np.asarray(wave, dtype=np.float32), sample_rate, self.sample_rate)
        if not np.isfinite(wave).all():
            raise SimilarityError("the waveform holds NaN or infinite samples")
        if np.abs(wave).max(initial=0.0) < 1e-4:  # loudness normalisation would divide by 0
            raise SimilarityError("the waveform is silent: no voice to embed")
        wave = np.clip(wave, -1.0, 1.0)  # the encoder's int16 VAD step wraps louder samples
        speech = self._preprocess(wave, source_sr=self.sample_rate)
        if len(speech) < MIN_SECONDS * self.sample_rate:
            raise SimilarityError(f"{len(speech) / self.sample_rate:.2f} s of voiced audio is "
                                  f"too little for a speaker embedding (need "
                                  f"{MIN_SECONDS} s)")
        return np.asarray(self.encoder.embed_utterance(speech), dtype=np.float32)

    def similarity(self, wave: np.ndarray, sample_rate: int, reference: np.ndarray,
                   reference_rate: int) -> float:
        """Cosine of the two d-vectors, in [-1, 1] (1: the same voice, as far as GE2E hears)."""
        a, b = self.embed(wave, sample_rate), self.embed(reference, reference_rate)
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
