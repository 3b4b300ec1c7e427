"""The non-autoregressive stage of an acoustic family (VALL-E's NAR): codebooks 2..N of every
frame at once, given codebook 1 (what the AR model chose), the text and the speaker.

    text symbols (B, P)                  -> symbol embeddings                    \
    codebooks 1..k-1 of the frames (B, F) -> the sum of their code embeddings      } (B, P + F, C)
    + position (each segment from 0), segment, speaker, stage k                  /
    -> bidirectional transformer -> the frame positions -> logits of codebook k (B, F, K)

Stage k (2..N) predicts codebook k from the codebooks below it. Training draws one stage per
batch; synthesis runs the stages in order, each reading what the ones before chose. Codebook 1
is never predicted: ``fill`` returns it unchanged in column 0.

A stage can also know its codebook's entries (``vectors``, (N, K, D): the residual k-means
centroids, the codec's RVQ codebooks). Then its probabilities give an expected entry (B, F, D),
trained against the true entry (``training/nar.py``), and ``fill`` can decode by expectation:
the sum of the stages' expected entries is a conditional mean of what codebooks 2..N add,
which ``requantize`` turns back into codes, instead of each stage's argmax (greedy, VALL-E).

A regression (``nar.target: residual``) skips the stages: one pass over codebook 1, the text and
the speaker guesses what codebooks 2..N add to codebook 1's entry (a (B, F, D) vector per
frame, trained by squared error), and those codebooks re-quantize the guess, so every
codebook is filled from one conditional mean and no stage reads another's choices.

A mel stage (melrvq with ``nar.mel_stage``) is the unit-to-mel network of the unit families
(``vocoder/unit2mel.py``) trained on codebook 1 and the speaker: it regresses the log-mel that
all the codebooks encode, and synthesis hands that mel to HiFi-GAN as it is (``MelStage``). No
codebook is classified or re-quantized on the way to sound, which is what made the stages
above add error rather than detail on the embedded default (docs/tokens.md); ``fill`` still
returns codes, the mel re-quantized by codebooks 2..N, for whoever wants the tokens.

``load_nar`` reads a trained stage (``vadusa train-nar``) with what it needs at synthesis: its
symbol table and speakers (``NARStage.fill``); every stage also ``speak``s: codebook 1 -> audio
through the family's vocoder.

Shapes: B batch, P text symbols, F frames, N codebooks, K entries per codebook, C width,
D dims of a codebook entry, M mel frames (F * stack for melrvq).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vadusa.checkpoint import load_checkpoint
from vadusa.config.model import NAR_DECODINGS as DECODINGS
from vadusa.data.mel import N_MELS
from vadusa.data.text import SymbolTable, normalize
from vadusa.tokenizers.residual import ResidualKMeans, nearest
from vadusa.vocoder.base import check_units
from vadusa.vocoder.unit2mel import Unit2Mel

MODEL_KIND = "nar"  # the checkpoint kind of nar.pt
MEL_TARGET = "mel"  # the meta target of a MelStage's nar.pt


class NARError(ValueError):
    pass


@dataclass(frozen=True)
class NARModelConfig:
    n_symbols: int
    n_speakers: int  # one more id stands for "unknown speaker"
    codebooks: int  # N, codebook 1 included
    entries: int  # K
    dim: int = 256
    layers: int = 4
    heads: int = 4
    dropout: float = 0.1
    vector_dim: int = 0  # D of the codebook entries it holds (``vectors``); 0: none
    # the frames' input also carries what codebooks 1..k-1 reconstruct (the sum of their
    # entries, mapped to C): similar entries give similar inputs from the first step
    entry_input: bool = False
    # one pass regresses what codebooks 2..N add (``residual``) instead of classifying each
    # codebook's entry (needs ``vector_dim``)
    regression: bool = False


def sinusoids(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """(length, dim) fixed positional encodings: no maximum length to outgrow."""
    position = torch.arange(length, device=device, dtype=torch.float)[:, None]  # (L, 1)
    rates = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float)
                      * (-math.log(10_000.0) / dim))  # (C / 2,)
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * rates)
    table[:, 1::2] = torch.cos(position * rates)
    return table


class CodebookNAR(nn.Module):
    def __init__(self, cfg: NARModelConfig) -> None:
        super().__init__()
        if cfg.codebooks < 2:
            raise ValueError("a NAR stage needs at least 2 codebooks (codebook 1 is the AR's)")
        self.cfg = cfg
        C = cfg.dim
        self.symbol = nn.Embedding(cfg.n_symbols + 1, C)  # + padding
        # one table per codebook it reads (1..N-1; a regression reads codebook 1 only), each
        # with a padding entry
        self.code = nn.ModuleList(nn.Embedding(cfg.entries + 1, C)
                                  for _ in range(1 if cfg.regression else cfg.codebooks - 1))
        self.stage = nn.Embedding(cfg.codebooks - 1, C)  # stage k = 2..N -> row k - 2
        self.speaker = nn.Embedding(cfg.n_speakers + 1, C)
        self.segment = nn.Embedding(2, C)  # text, speech
        layer = nn.TransformerEncoderLayer(C, cfg.heads, 4 * C, cfg.dropout, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(C)
        if cfg.regression:
            if not cfg.vector_dim:
                raise ValueError("a regression predicts codebook entries: give vector_dim")
            # per dim in units of ``residual_scale`` / sqrt(D); from zero: the first guess is
            # "nothing to add" (relative error 1), not a random vector D times that
            self.regress = nn.Linear(C, cfg.vector_dim)
            nn.init.zeros_(self.regress.weight)
            nn.init.zeros_(self.regress.bias)
        else:
            self.out = nn.ModuleList(nn.Linear(C, cfg.entries)
                                     for _ in range(cfg.codebooks - 1))
        if cfg.vector_dim:  # the codebooks' entries, fixed: saved with the weights
            self.register_buffer("vectors",
                                 torch.zeros(cfg.codebooks, cfg.entries, cfg.vector_dim))
        if cfg.entry_input:
            if not cfg.vector_dim:
                raise ValueError("entry_input reads the codebooks' entries: give vector_dim")
            self.entry_in = nn.Linear(cfg.vector_dim, C)

    @property
    def symbol_pad(self) -> int:
        return self.cfg.n_symbols

    @property
    def code_pad(self) -> int:
        return self.cfg.entries

    def forward(self, text: torch.Tensor, codes: torch.Tensor, speakers: torch.Tensor,
                stage: int) -> torch.Tensor:
        """text (B, P) symbol ids right-padded with ``symbol_pad``; codes (B, F, n >= stage - 1)
        right-padded with ``code_pad``; speakers (B,); stage k in 2..N -> (B, F, K) logits of
        codebook k (only codebooks 1..k-1 of ``codes`` are read)."""
        if self.cfg.regression:
            raise NARError("this NAR stage regresses the residual: call ``residual``")
        return self.out[stage - 2](self.encode(text, codes, speakers, stage))  # (B, F, K)

    def residual(self, text: torch.Tensor, codes: torch.Tensor, speakers: torch.Tensor
                 ) -> torch.Tensor:
        """A regression's guess of what codebooks 2..N add to codebook 1's entries: (B, F, D),
        from codebook 1 of ``codes`` (arguments as in ``forward``)."""
        if not self.cfg.regression:
            raise NARError("this NAR stage classifies codes: it has no residual regression")
        unit = self.residual_scale() / math.sqrt(self.cfg.vector_dim)  # per dimension
        return self.regress(self.encode(text, codes, speakers, 2)) * unit

    def residual_scale(self) -> torch.Tensor:
        """0-d: the root mean square of a sum of entries of codebooks 2..N (their mean squares
        added, as for independent entries): the regression's unit."""
        return self.vectors[1:].square().sum(-1).mean(-1).sum().sqrt()

    def true_residual(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, F, N) codes -> (B, F, D) what codebooks 2..N add (padding reads entry K - 1)."""
        ids = codes[..., 1:].clamp(max=self.cfg.entries - 1)  # (B, F, N - 1)
        books = torch.arange(1, self.cfg.codebooks, device=codes.device)  # (N - 1,)
        return self.vectors[books, ids].sum(-2)  # (B, F, N - 1, D) -> (B, F, D)

    def encode(self, text: torch.Tensor, codes: torch.Tensor, speakers: torch.Tensor,
               stage: int) -> torch.Tensor:
        """The frames' final states (B, F, C) for stage k (arguments as in ``forward``)."""
        if not 2 <= stage <= self.cfg.codebooks:
            raise ValueError(f"stage {stage} outside 2..{self.cfg.codebooks}")
        if codes.shape[-1] < stage - 1:
            raise ValueError(f"stage {stage} reads codebooks 1..{stage - 1}, got "
                             f"{codes.shape[-1]}")
        B, P = text.shape
        F = codes.shape[1]
        C = self.cfg.dim
        speech = sum(self.code[j](codes[..., j]) for j in range(stage - 1))  # (B, F, C)
        if self.cfg.entry_input:
            speech = speech + self.entry_in(self.reconstruction(codes, stage - 1))
        x = torch.cat([self.symbol(text) + sinusoids(P, C, text.device) + self.segment.weight[0],
                       speech + sinusoids(F, C, text.device) + self.segment.weight[1]],
                      dim=1)  # (B, P + F, C)
        x = x + (self.speaker(speakers) + self.stage.weight[stage - 2])[:, None]  # (B, 1, C)
        padding = torch.cat([text == self.symbol_pad, codes[..., 0] == self.code_pad],
                            dim=1)  # (B, P + F): True where a key is padding
        h = self.encoder(x, src_key_padding_mask=padding)  # (B, P + F, C)
        return self.norm(h[:, P:])  # (B, F, C)

    def reconstruction(self, codes: torch.Tensor, n: int) -> torch.Tensor:
        """(B, F, >= n) codes -> (B, F, D) the sum of the entries of codebooks 1..n, in units
        of codebook 1's root mean square (padding reads entry K - 1: its keys are masked)."""
        ids = codes[..., :n].clamp(max=self.cfg.entries - 1)  # (B, F, n)
        total = self.vectors[torch.arange(n, device=codes.device), ids].sum(-2)  # (B, F, D)
        return total / self.vectors[0].square().sum(-1).mean().sqrt()

    def expected(self, logits: torch.Tensor, stage: int) -> torch.Tensor:
        """(..., K) logits of codebook ``stage`` -> (..., D) its entries weighted by their
        probabilities."""
        if not self.cfg.vector_dim:
            raise NARError("this NAR stage holds no codebook entries (trained without them)")
        return logits.float().softmax(-1) @ self.vectors[stage - 1]  # (..., K) @ (K, D)

    def requantize(self, residual: torch.Tensor) -> torch.Tensor:
        """(F, D) what codebooks 2..N should add -> (F, N - 1) their ids: residual quantization
        by those codebooks, as the codes were made (``ResidualKMeans.quantize_codes``)."""
        books = ResidualKMeans(self.vectors[1:].cpu())  # (N - 1, K, D)
        return books.quantize_codes(residual).to(residual.device)

    @torch.inference_mode()
    def fill(self, text: list[int], first: torch.Tensor, speaker: int,
             decoding: str = "argmax") -> torch.Tensor:
        """(F,) codebook-1 ids -> (F, N) codes, column 0 the input unchanged. ``argmax``: stages
        2..N in order, each taking its most likely entry. ``expected``: the same pass, each
        stage reading the entry nearest its expectation, then codebooks 2..N re-quantize the
        sum of the expected entries. A regression (``regression``) ignores ``decoding``: one
        pass, its guess re-quantized."""
        if decoding not in DECODINGS:
            raise NARError(f"unknown NAR decoding {decoding!r} (choose from {DECODINGS})")
        device = self.symbol.weight.device
        codes = first.to(device, torch.long)[None, :, None]  # (F,) -> (1, F, 1)
        text_ids = torch.tensor([text], dtype=torch.long, device=device)  # (1, P)
        speakers = torch.tensor([speaker], device=device)
        if self.cfg.regression:  # one pass, then codebooks 2..N re-quantize its guess
            guess = self.residual(text_ids, codes, speakers)[0]  # (F, D)
            return torch.cat([codes[0], self.requantize(guess)], dim=-1)  # (F, N)
        added = None  # (F, D): the expected entries of the stages so far
        for stage in range(2, self.cfg.codebooks + 1):
            logits = self(text_ids, codes, speakers, stage)  # (1, F, K)
            if decoding == "argmax":
                chosen = logits.argmax(-1)  # (1, F)
            else:
                mean = self.expected(logits, stage)[0]  # (1, F, D) -> (F, D)
                added = mean if added is None else added + mean
                chosen = nearest(mean, self.vectors[stage - 1])[0][None]  # (F,) -> (1, F)
            codes = torch.cat([codes, chosen[..., None]], dim=-1)  # (1, F, stage)
        if added is not None:  # (F, 1) + (F, N - 1) -> (F, N)
            return torch.cat([codes[0, :, :1], self.requantize(added)], dim=-1)
        return codes[0]  # (F, N)


# --------------------------------------------------------------------------------------------
# A trained stage, ready to fill codes at synthesis.
# --------------------------------------------------------------------------------------------


class SpeakingStage:
    """What every trained stage does with codebook 1: ``render`` what the vocoder decodes,
    then ``vocode`` it; ``speak`` does both."""

    def render(self, text: str, speaker: str | None, first: np.ndarray) -> Any:
        raise NotImplementedError

    def vocode(self, rendered: Any, vocoder: Any, voice: str) -> tuple[np.ndarray, int]:
        raise NotImplementedError

    def speak(self, text: str, speaker: str | None, first: np.ndarray, vocoder: Any,
              voice: str) -> tuple[np.ndarray, int]:
        """(F,) codebook-1 ids -> (waveform, rate): ``render`` then ``vocode``."""
        return self.vocode(self.render(text, speaker, first), vocoder, voice)


@dataclass
class NARStage(SpeakingStage):
    """A trained NAR stage ready to fill codes: ``fill(text, speaker, first) -> (F, N)``."""

    model: CodebookNAR
    symbols: SymbolTable
    speakers: list[str]
    meta: dict[str, Any]
    path: Path  # the nar.pt it was read from
    decoding: str = "argmax"  # how ``fill`` decodes (``DECODINGS``); training's choice

    @property
    def family(self) -> str:
        return str(self.meta["family"])

    @property
    def codebooks(self) -> int:
        return self.model.cfg.codebooks

    def fill(self, text: str, speaker: str | None, first: np.ndarray) -> np.ndarray:
        """(F,) codebook-1 ids from the AR model -> (F, N) codes; an unknown speaker gets the
        average voice."""
        index = self.speakers.index(speaker) if speaker in self.speakers else len(self.speakers)
        codes = self.model.fill(self.symbols.encode(normalize(text)),
                                torch.as_tensor(np.asarray(first), dtype=torch.long), index,
                                self.decoding)
        return codes.cpu().numpy()

    def render(self, text: str, speaker: str | None, first: np.ndarray) -> np.ndarray:
        """What the vocoder decodes: the (F, N) codes (``fill``)."""
        return self.fill(text, speaker, first)

    def vocode(self, rendered: np.ndarray, vocoder: Any, voice: str) -> tuple[np.ndarray, int]:
        """``render``'s codes -> (waveform, rate) by ``vocoder`` in ``voice``."""
        return vocoder.decode(rendered, voice)


@dataclass
class MelStage(SpeakingStage):
    """A trained mel stage (melrvq, ``nar.mel_stage``): codebook 1 and the speaker -> the log-mel,
    which ``speak`` hands to HiFi-GAN as it is. ``fill`` returns that mel's codes."""

    model: Unit2Mel
    vectors: torch.Tensor  # (N, K, D): the family's codebook entries (its residual k-means)
    speakers: list[str]
    meta: dict[str, Any]
    path: Path  # the nar.pt it was read from
    decoding: str = "continuous"  # what ``speak`` decodes: the mel itself

    @property
    def family(self) -> str:
        return str(self.meta["family"])

    @property
    def codebooks(self) -> int:
        return int(self.vectors.shape[0])

    def mel(self, speaker: str | None, first: np.ndarray) -> torch.Tensor:
        """(F,) codebook-1 ids -> (N_MELS, M) log-mel; an unknown speaker gets the first voice
        (a unit-to-mel network has no average one). A network conditioned on d-vectors
        (``vocoder.speaker_conditioning: dvector``) reads a training speaker's mean one."""
        units = check_units(first, int(self.vectors.shape[1]), self.family)
        index = self.speakers.index(speaker) if speaker in self.speakers else 0
        if self.model.speaker_input == "dvector":
            voice = self.meta["unit2mel"]["speaker_dvectors"][index]  # (N, 256) -> (256,)
            return self.model.utterance_mel(torch.as_tensor(units), voice)
        return self.model.utterance_mel(torch.as_tensor(units), index)

    def fill(self, text: str, speaker: str | None, first: np.ndarray) -> np.ndarray:
        """(F,) codebook-1 ids -> (F, N) codes: column 0 unchanged, codebooks 2..N the residual
        quantization of what the mel adds to codebook 1's entry (``text`` is not read)."""
        first_t = torch.as_tensor(np.asarray(first), dtype=torch.long, device=self.vectors.device)
        F, D = len(first_t), int(self.vectors.shape[-1])
        stack = D // N_MELS
        mel = self.mel(speaker, np.asarray(first)).T  # (M, N_MELS)
        mel = torch.nn.functional.pad(mel, (0, 0, 0, max(0, F * stack - len(mel))))[:F * stack]
        frames = mel.reshape(F, D)  # (F * stack, N_MELS) -> (F, D): a token's stacked frames
        residual = frames - self.vectors[0][first_t]  # (F, D): what codebooks 2..N add
        rest = ResidualKMeans(self.vectors[1:].cpu()).quantize_codes(residual.cpu())  # (F, N-1)
        return torch.cat([first_t.cpu()[:, None], rest], dim=-1).numpy()  # (F, N)

    def render(self, text: str, speaker: str | None, first: np.ndarray) -> torch.Tensor:
        """What the vocoder decodes: the (N_MELS, M) regressed log-mel (``mel``)."""
        return self.mel(speaker, first)

    def vocode(self, rendered: torch.Tensor, vocoder: Any, voice: str) -> tuple[np.ndarray, int]:
        """``render``'s mel -> (waveform, rate) by the family vocoder's HiFi-GAN
        (``MelRVQVocoder.decode_mel``; ``voice`` is unread: the voice is in the mel)."""
        if not hasattr(vocoder, "decode_mel"):
            raise NARError(f"{self.path} regresses log-mels: decode them with the melrvq "
                           f"family's vocoder, not {type(vocoder).__name__}")
        return vocoder.decode_mel(rendered)


def load_nar(path: str | Path, device: torch.device | str = "cpu",
             family: str | None = None, decoding: str | None = None) -> NARStage | MelStage:
    """The NAR stage in ``path`` (from ``vadusa train-nar``); with ``family``, refuse another's;
    ``decoding`` overrides the one it was trained for (``nar.decoding``; a mel stage has one
    decoding, its mel as it is, and ignores it)."""
    blob = load_checkpoint(path, kind=MODEL_KIND)
    meta = blob["meta"]
    if family is not None and meta["family"] != family:
        raise NARError(f"{path} fills {meta['family']!r} codes, not {family!r}: give the "
                       f"{family!r} family's nar.pt (`vadusa train-nar --family {family}`)")
    if meta.get("target") == MEL_TARGET:
        model = Unit2Mel(**meta["unit2mel"]["model"])
        model.load_state_dict(blob["state"]["unit2mel"])
        return MelStage(model.to(torch.device(device)).eval(),
                        blob["state"]["vectors"].to(torch.device(device)),
                        list(meta["unit2mel"]["speakers"]), meta, Path(path))
    model = CodebookNAR(NARModelConfig(**meta["model"]))
    model.load_state_dict(blob["state"])
    model.to(torch.device(device)).eval()
    symbols = SymbolTable(symbols=tuple(meta["symbols"]), frontend=meta["text_frontend"])
    decoding = decoding or meta.get("nar", {}).get("decoding", "argmax")
    if decoding not in DECODINGS:
        raise NARError(f"unknown NAR decoding {decoding!r} (choose from {DECODINGS})")
    if decoding == "expected" and not model.cfg.vector_dim:
        raise NARError(f"{path} holds no codebook entries, so it cannot decode by expectation: "
                       "use --nar-decoding argmax, or retrain it (`vadusa train-nar`)")
    return NARStage(model, symbols, list(meta["speakers"]), meta, Path(path), decoding)
