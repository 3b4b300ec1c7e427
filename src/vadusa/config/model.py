"""The sections of the models trained: the AR model and its training, the aligner and
duration model, the draft heads, the draft model, and the ablation's variants. Comments
give the reason for a default where it is our choice."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

__all__ = ["ModelConfig", "AlignConfig", "DurationsConfig", "TrainConfig", "HeadsConfig",
           "DraftModelConfig", "DEFAULT_ABLATION", "AblationConfig"]


@dataclass(frozen=True)
class ModelConfig:
    """The AR TTS transformer (``vadusa.model``). Sizes are our choice for 2 CPU cores."""

    dim: int = 256
    layers: int = 4
    heads: int = 4
    ffn_mult: int = 4
    dropout: float = 0.1
    max_seq: int = 1024  # text + prompt + speech tokens
    # a learned speaker token in front of the text: a closed set of voices (the embedded
    # default). The zero-shot configs (config/libritts.yaml, libriheavy.yaml) turn it off
    speaker_embedding: bool = True
    # condition on another utterance of the speaker (text + tokens), the acoustic prompt of
    # zero-shot TTS: with it (and no speaker embedding) the model speaks any voice, unseen
    # ones too, and evaluation prompts each utterance with another of its speaker
    # (data/prompts.py). Off on the embedded default: with the speaker embedding only, on 8
    # voices the model learns to read several times faster than with an acoustic prompt
    # (dev text gain; docs/selections.md). config/libritts.yaml and libriheavy.yaml set it
    prompt: bool = False
    prompt_max_seconds: float = 3.0  # only utterances this short serve as prompts
    # how the model knows where it is in the text (model/tts.py, training/tts.py):
    #   none: plain VALL-E, attention finds its own way;
    #   guided: the paper-scale configs' choice, DC-TTS's diagonal penalty on one head per
    #     layer (train.guide_weight, train.guide_sigma);
    #   duration: durations from the aligner (vadusa align) in training and from the duration
    #     model in synthesis give every speech position its phone as input features.
    # duration: the only one of the three that reads the whole text in the embedded budget
    # (`snakemake ablation`, judged on dev; docs/selections.md, docs/alignment.md)
    alignment: str = "duration"


@dataclass(frozen=True)
class AlignConfig:
    """The CTC phone recogniser that aligns text to a family's tokens (``vadusa align``)."""

    # our choice for 2 CPU cores: 800 steps, minutes on one core beside the vocoder, reach a
    # dev phone error rate enough for the boundaries, which is all the durations need
    # (docs/alignment.md)
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

    # our choice: 500 steps (about 2 minutes on one core) reach the dev error of 1500
    # (docs/alignment.md)
    steps: int = 500
    batch_size: int = 32
    lr: float = 2e-3
    warmup_steps: int = 50
    dim: int = 256
    layers: int = 3
    kernel: int = 5
    dropout: float = 0.1
    checkpoint_every: int = 500


NAR_DECODINGS = ("argmax", "expected")  # NARConfig.decoding
NAR_TARGETS = ("codes", "residual")  # NARConfig.target


@dataclass(frozen=True)
class NARConfig:
    """The NAR stage of the acoustic families (``vadusa train-nar``, model/nar.py): codebooks
    2..N from codebook 1, the text and the speaker. Values are our choice for 2 CPU cores."""

    steps: int = 1000
    batch_frames: int = 4000  # speech frames per batch (the text rides along)
    lr: float = 1e-3
    warmup_steps: int = 100
    dim: int = 256
    layers: int = 4
    heads: int = 4
    dropout: float = 0.1
    checkpoint_every: int = 250
    # The expected entry of a codebook (its entries weighted by the predicted probabilities)
    # against the true entry, in squared distance relative to the codebook's mean square: a
    # dense signal into the same logits, where the cross-entropy of 1024 residual entries
    # that differ little says almost nothing. 0 turns it off.
    residual_weight: float = 0.0
    # argmax: each codebook's most likely entry. expected: the sum of the codebooks' expected
    # entries (a conditional mean, like a regressed mel) re-quantized by codebooks 2..N. Our
    # choice: expected, a mean of near-equal entries sounds better than a guess among them
    # (docs/selections.md)
    decoding: str = "expected"
    # the frames' input also carries what codebooks 1..k-1 reconstruct (the sum of their
    # entries), beside the learned embedding of each code
    entry_input: bool = False
    # codes: stage k (2..N) classifies codebook k's entry from codebooks 1..k-1 (VALL-E's
    # NAR). residual: one pass regresses what codebooks 2..N add to codebook 1's entry (the
    # sum of their entries; squared error relative to its mean square), which those
    # codebooks then re-quantize; ``residual_weight``, ``decoding`` and ``entry_input`` are
    # for ``codes``
    target: str = "codes"
    # The melrvq family's stage: true, the unit-to-mel recipe (``vocoder.*``) on codebook 1
    # and the speaker regresses the log-mel that all the codebooks encode, and synthesis hands
    # it to HiFi-GAN as it is (``fill`` re-quantizes it for those who want codes); the other
    # ``nar`` keys are then unread for melrvq. false: melrvq's stage is trained as encodec's
    # (``target``). Codec codes have no mel: encodec's stage never reads this key. Our
    # choice: true, regressing the mel spares the stage 7 classifications among entries that
    # differ little (docs/selections.md)
    mel_stage: bool = True


@dataclass(frozen=True)
class TrainConfig:
    """Training of the AR model (``vadusa train-base``)."""

    # our choice for 2 CPU cores: 800 steps of 3000 positions, the default target's 90-minute
    # budget (docs/budget.md, "The default target on the embedded default")
    steps: int = 800
    batch_tokens: int = 3000  # padded sequence positions per batch
    lr: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    checkpoint_every: int = 250
    eval_every: int = 250
    eval_utterances: int = 50  # dev utterances for validation loss and accuracy
    # the prompt is an utterance of the same speaker with its text: its speech tokens are
    # training targets too (twice the signal per step at no extra compute)
    prompt_loss: bool = True
    # guided attention (DC-TTS's diagonal prior, here on one head per layer, see
    # training/tts.py): weight 0 turns it off
    guide_weight: float = 1.0
    guide_sigma: float = 0.2  # width of the diagonal, as a fraction of the text length
    # fraction of speech-token inputs replaced by random tokens (targets stay clean), so the
    # model learns to read rather than to continue its own history (training/tts.py). A tenth
    # (`snakemake ablation`, judged on dev; docs/selections.md)
    token_noise: float = 0.1


@dataclass(frozen=True)
class HeadsConfig:
    """Draft heads (``vadusa train-heads``, frozen base) and VADUSA-wt (``vadusa train-joint``,
    base and heads together). Values are our choice for 2 CPU cores; the joint weights follow
    MEDUSA-2 (head weight 0.2, decay 0.8, heads' learning rate x4)."""

    count: int = 4  # K: head k predicts the token k + 1 positions ahead
    # medusa: independent heads over the hidden state (the paper's); hydra: head k also reads
    # the tokens drafted before its guess (Hydra, arXiv 2402.05109); shared: MEDUSA's blocks
    # projecting through the base's own head (one V x C read per pass; model/draft_heads.py)
    kind: str = "medusa"
    # shared heads only: each head's low-rank correction to the base head, r (C + V) numbers
    # instead of MEDUSA's C V (0: none, the base head alone). 64: dev top-1 close to MEDUSA's
    # heads, and the fastest chain of 4 among ranks 0, 32, 64 (docs/speed.md)
    rank: int = 64
    steps: int = 300
    batch_tokens: int = 4000
    lr: float = 2e-3
    warmup_steps: int = 50
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    checkpoint_every: int = 200
    eval_every: int = 200
    eval_utterances: int = 50
    top_ranks: int = 10  # ranks per head in the dev acceptance table (tree construction)
    joint_steps: int = 150  # each joint step back-propagates through the whole base
    joint_lr: float = 3e-4  # the base model's learning rate in joint training
    head_lr_mult: float = 4.0  # heads learn this much faster than the base
    head_weight: float = 0.2  # lambda: weight of the heads' losses against the base's
    head_decay: float = 0.8  # head k's loss weighs lambda * decay^k
    head_weight_warmup: int = 50  # lambda ramps up linearly over these steps
    # heads learn the base's distribution, not the data's token (self-distillation)
    distill: bool = True

    @classmethod
    def training_keys(cls) -> tuple[str, ...]:
        """The keys of heads training: every key of the section (what the trained heads are
        measured with is ``measure``'s). The workflow re-runs heads training when one of them
        changes, and a resumed run must share them all but the evaluation-only ones
        (``training.resume.EVALUATION_ONLY``: the re-run evaluates again, it does not
        retrain), as for every trainer and its section."""
        return tuple(f"heads.{f.name}" for f in fields(cls))


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
    steps: int = 800

    @classmethod
    def training_keys(cls) -> tuple[str, ...]:
        """The keys of the draft's training besides the base's sections: all of its own."""
        return tuple(f"draft.{f.name}" for f in fields(cls))


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
    # the split the variants (and the configured model beside them) are judged on: the
    # ablation chooses defaults, so it judges on dev and leaves test to the tables
    split: str = "dev"  # dev | test
