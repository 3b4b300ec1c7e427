"""Vocoders: discrete speech units of one speaker -> waveform.

Every vocoder keeps one contract, ``decode(tokens, speaker) -> (wave, sample_rate)``, with
``tokens`` an int array of unit ids (no bos/eos/pad) and ``wave`` float32 in [-1, 1].

``UnitVocoder`` is the one trained here for the k-means families: a ``Unit2Mel`` network
predicts the log-mels of a pretrained HiFi-GAN, which makes the waveform
(``vadusa.training.vocoder`` trains it). The ``encodec`` family's vocoder is its codec's decoder
(``vadusa.vocoder.codec.CodecVocoder``); the ``melrvq`` family's is its residual k-means in front
of HiFi-GAN (``vadusa.vocoder.melrvq.MelRVQVocoder``), which also decodes all codebooks.
``load_vocoder`` reads any of them from its file:

    vocoder = load_vocoder("results/default/vocoder/whisper/unit2mel.pt", family="whisper")
    wave, rate = vocoder.decode(tokens, speaker=voice_for(vocoder, "flite_rms"))

A ``UnitVocoder`` trained with ``vocoder.speaker_conditioning: dvector`` also takes the voice as
a (256,) GE2E d-vector (of the prompt: ``vadusa.eval.similarity.SpeakerSimilarity.embed``), so
it renders voices it never heard; a training voice's name stands for its mean d-vector:

    wave, rate = vocoder.decode(tokens, voice_for(vocoder, speaker, embedding=prompt_dvector))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vadusa.checkpoint import CheckpointError, load_checkpoint
from vadusa.data.mel import mel_settings
from vadusa.devices import resolve_device
from vadusa.tokenizers.codec import CHECKPOINT_KIND as CODEC_KIND
from vadusa.tokenizers.codec import FAMILY as CODEC_FAMILY
from vadusa.tokenizers.codec import codec_from_checkpoint, load_official
from vadusa.tokenizers.mel import FAMILY as MEL_FAMILY
from vadusa.tokenizers.residual import ResidualKMeans, is_residual
from vadusa.vocoder.base import Vocoder, VocoderError, check_units, voice_for, wants_embedding
from vadusa.vocoder.codec import CodecVocoder
from vadusa.vocoder.hifigan import HifiGan
from vadusa.vocoder.melrvq import MelRVQVocoder
from vadusa.vocoder.unit2mel import DVECTOR_DIM, Unit2Mel

__all__ = ["Vocoder", "UnitVocoder", "CodecVocoder", "MelRVQVocoder", "VocoderError", "HifiGan",
           "Unit2Mel", "check_units", "load_vocoder", "voice_for", "wants_embedding"]

CHECKPOINT_KIND = "unit2mel"


class UnitVocoder:
    """A trained ``Unit2Mel`` and the HiFi-GAN generator its checkpoint names."""

    def __init__(self, model: Unit2Mel, meta: dict[str, Any],
                 device: str | torch.device = "cpu") -> None:
        if meta.get("mel") != mel_settings():
            raise VocoderError(f"the unit-to-mel network predicts mels {meta.get('mel')}, but "
                               f"this HiFi-GAN front end computes {mel_settings()}")
        self.device = resolve_device(str(device))
        self.model = model.to(self.device).eval()
        self.meta = meta
        self.speakers: list[str] = list(meta["speakers"])
        self._speaker_index = {name: i for i, name in enumerate(self.speakers)}
        # table (a checkpoint written before d-vectors existed is one) or dvector
        self.speaker_conditioning = str(meta.get("speaker_conditioning", "table"))
        # dvector: each training voice's mean d-vector, (len(speakers), 256)
        self._speaker_dvectors: torch.Tensor | None = meta.get("speaker_dvectors")
        self.hifigan = HifiGan(meta["hifigan"], self.device)
        self.sample_rate = self.hifigan.sample_rate

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu",
             family: str | None = None) -> UnitVocoder:
        """Load a ``unit2mel.pt``; with ``family``, refuse one trained on other tokens."""
        return cls._from_checkpoint(load_checkpoint(path, kind=CHECKPOINT_KIND), path, device,
                                    family)

    @classmethod
    def _from_checkpoint(cls, blob: dict[str, Any], path: str | Path,
                         device: str | torch.device = "cpu",
                         family: str | None = None) -> UnitVocoder:
        meta = blob["meta"]
        if family is not None and meta["family"] != family:
            hint = (f"; the {family!r} family's vocoder is its codec ({_codec_hint()})"
                    if family == CODEC_FAMILY else "")
            raise VocoderError(f"{path} decodes {meta['family']!r} units, not {family!r}{hint}")
        try:
            model = Unit2Mel(**meta["model"])
            model.load_state_dict(blob["state"])
        except (TypeError, RuntimeError) as err:
            raise VocoderError(f"{path} was written by another version of the unit-to-mel "
                               f"network ({err}); retrain it with `vadusa train-vocoder`, or "
                               f"delete it and rerun the workflow") from err
        return cls(model, meta, device)

    @property
    def family(self) -> str:
        return str(self.meta["family"])

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def frame_rate(self) -> float:
        return float(self.meta["frame_rate"])

    def mel(self, tokens: np.ndarray, speaker: str | np.ndarray) -> torch.Tensor:
        """(U,) unit ids -> (N_MELS, M) predicted log-mels, M frames lasting as long as U.
        ``speaker``: a training voice's name, or (d-vector conditioning) a (256,) d-vector."""
        units = self._check_tokens(tokens)
        return self.model.utterance_mel(torch.from_numpy(units), self._speaker_input(speaker))

    def decode(self, tokens: np.ndarray, speaker: str | np.ndarray) -> tuple[np.ndarray, int]:
        """(U,) unit ids -> ((M * 256,) float32 waveform at 22.05 kHz, 22050)."""
        return self.hifigan(self.mel(tokens, speaker)), self.sample_rate

    def _speaker_input(self, speaker: str | np.ndarray) -> int | torch.Tensor:
        """What the network is conditioned on: a table index, or a (256,) d-vector (a given
        one, or a training voice's mean)."""
        if not isinstance(speaker, str):
            if self.speaker_conditioning != "dvector":
                raise VocoderError("this vocoder looks voices up in its table of training "
                                   "voices (vocoder.speaker_conditioning: table): give one of "
                                   f"their names ({', '.join(self.speakers)}), not a d-vector")
            dvector = np.asarray(speaker, dtype=np.float32)
            if dvector.shape != (DVECTOR_DIM,) or not np.isfinite(dvector).all() or not (
                    np.abs(dvector).max() > 0):
                raise VocoderError(f"expected a finite, non-zero ({DVECTOR_DIM},) d-vector "
                                   f"(SpeakerSimilarity.embed), got shape {dvector.shape}")
            return torch.from_numpy(dvector)
        if speaker not in self._speaker_index:
            hint = (" (or pass the voice's d-vector)" if self.speaker_conditioning == "dvector"
                    else "")
            raise VocoderError(f"unknown speaker {speaker!r}: this vocoder knows "
                               f"{len(self.speakers)} speakers: {', '.join(self.speakers)}{hint}")
        index = self._speaker_index[speaker]
        if self.speaker_conditioning == "dvector":
            if self._speaker_dvectors is None:
                raise VocoderError("this d-vector vocoder's checkpoint holds no mean d-vector of "
                                   "its training voices: pass the voice's d-vector, or retrain "
                                   "it with `vadusa train-vocoder`")
            return self._speaker_dvectors[index]
        return index

    def _check_tokens(self, tokens: np.ndarray) -> np.ndarray:
        return check_units(tokens, self.vocab_size, self.family)


def _codec_hint() -> str:
    return "tokens/encodec/codec/codec.pt, from `vadusa train-codec`"


def _mel_hint() -> str:
    return "tokens/melrvq/kmeans.npz, from `vadusa fit-kmeans --family melrvq`"


def _unit_hint(family: str) -> str:
    return f"vocoder/{family}/unit2mel.pt, from `vadusa train-vocoder --family {family}`"


def load_vocoder(path: str | Path, device: str | torch.device = "cpu",
                 family: str | None = None) -> Any:
    """The vocoder in ``path``, whichever kind its checkpoint is: a ``UnitVocoder`` (kind
    "unit2mel") or the ``encodec`` family's ``CodecVocoder`` (kind "codec"; with ``family``
    "encodec", also the published EnCodec's plain state dict) or the ``melrvq`` family's
    ``MelRVQVocoder`` (its residual k-means, ``.npz``). With ``family``, refuse a vocoder of
    other tokens."""
    path = Path(path)
    if not path.is_file():
        hint = {CODEC_FAMILY: _codec_hint(), MEL_FAMILY: _mel_hint()}.get(family or "") or (
            _unit_hint(family) if family else "`vadusa train-vocoder` or `vadusa train-codec`")
        raise VocoderError(f"vocoder not found: {path} (expected {hint})")
    if is_residual(path):
        if family is not None and family != MEL_FAMILY:
            raise VocoderError(f"{path} is the {MEL_FAMILY!r} family's residual k-means: it "
                               f"decodes {MEL_FAMILY!r} codes, not {family!r}")
        return MelRVQVocoder(ResidualKMeans.load(path), resolve_device(str(device)))
    try:
        blob = load_checkpoint(path)
    except CheckpointError:
        if family != CODEC_FAMILY:
            raise
        # not a vadusa checkpoint: the published 24 kHz EnCodec's state dict (it says why not)
        return CodecVocoder(load_official(path, 0.0), resolve_device(str(device)))
    kind = blob["kind"]
    if kind == CHECKPOINT_KIND:
        return UnitVocoder._from_checkpoint(blob, path, device, family)
    if kind == CODEC_KIND:
        if family is not None and family != CODEC_FAMILY:
            raise VocoderError(f"{path} is the {CODEC_FAMILY!r} family's codec: it decodes "
                               f"{CODEC_FAMILY!r} tokens, not {family!r}; give the {family!r} "
                               f"family's vocoder ({_unit_hint(family)})")
        model, meta = codec_from_checkpoint(blob, path)
        return CodecVocoder(model, resolve_device(str(device)), meta=meta)
    raise VocoderError(f"{path} is a {kind!r} checkpoint, not a vocoder (kind "
                       f"{CHECKPOINT_KIND!r} or {CODEC_KIND!r})")
