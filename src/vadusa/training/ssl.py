"""Train a small HuBERT or wav2vec 2.0 model from scratch, resumably, on the corpus.

Both families share the torchaudio ``Wav2Vec2Model`` of ``vadusa.tokenizers.ssl.scratch_arch``
and differ in the objective:

hubert    HuBERT iteration 1 (Hsu et al. 2021). Targets are k-means clusters of 39-d MFCCs
          (13 + deltas + delta-deltas) computed with a 400-sample window every 320 samples, so
          target frame i covers exactly the samples of model frame i. Spans of the projected
          conv features are replaced by a learned mask embedding; at masked frames the
          transformer output must pick its cluster's embedding among all clusters (cosine /
          0.1, cross-entropy), via ``torchaudio.models.hubert_pretrain_model``.
wav2vec2  wav2vec 2.0's contrastive task without the quantizer (Baevski et al. 2020, with
          continuous targets). Spans are masked as for hubert; at a masked frame the projected
          transformer output must pick the projected conv feature of its own frame, taken
          before masking and with the gradient stopped, among K=20 distractors drawn from other
          frames of the same utterance (InfoNCE, cosine / 0.1). The stop-gradient keeps the
          conv front end from making targets trivially easy; the distractors keep the
          projections from collapsing. With ``contrastive_target: logmel`` the candidates are
          the frames' log-mel spectra instead (80 bands over the same 400-sample windows,
          mean-normalised per utterance): fixed targets that do not move while the front end
          learns, as the fixed MFCC clusters of HuBERT's first iteration.

Both add wav2vec 2.0's feature penalty (10 x mean squared conv feature) and scale the conv
front end's gradient by ``feature_grad_mult`` (0.1, as the published recipes do). With
``unmasked_weight`` > 0 the same prediction at unmasked frames joins the loss with that weight
(HuBERT's alpha; its base recipe uses masked frames only). Our hubert default is 1: with
masked frames alone the small model learns nothing from context in the embedded budget
(docs/tokens.md); wav2vec2's is 0 (an unmasked frame's own feature is in its input).

Outputs in ``out_dir``: ``model.pt`` (kind "ssl"), ``last.pt`` (kind "ssl-train") and
``curve.png``, the masked-prediction accuracy and loss against the step.

Resume: ``out_dir/last.pt`` holds model, optimizer, step, RNG state and the data position
(epoch, batch index, the epoch's shuffling seed); crops are drawn from a generator seeded by
(seed, step). A resumed run therefore repeats the uninterrupted run's losses exactly. A
``last.pt`` of another run (other family, ``seed`` or ``tokens.<family>.scratch`` but
``checkpoint_every``) is moved aside and training starts over (``training/resume.py``).

Shapes: B batch, T samples, F frames (50 Hz), C conv channels, D model width, P projection
width, N masked frames, K distractors, M MFCC dims (39).
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
from sklearn.cluster import MiniBatchKMeans
from torch import Tensor, nn
from torchaudio.models import Wav2Vec2Model, hubert_pretrain_model, wav2vec2_model
from tqdm import tqdm

from vadusa.atomic import atomic_path
from vadusa.checkpoint import save_checkpoint
from vadusa.config import Config, SSLTrainConfig
from vadusa.data.audio import read
from vadusa.data.manifest import manifest_path, read_manifest
from vadusa.devices import resolve_device
from vadusa.tokenizers.ssl import (
    FAMILIES,
    HOP_LENGTH,
    RECEPTIVE_FIELD,
    SAMPLE_RATE,
    scratch_arch,
)
from vadusa.tracking import artifact_name, open_tracker
from vadusa.training.common import (
    bucketed_batches,
    seed_everything,
    set_learning_rate,
    update,
    warmup_cosine,
)
from vadusa.training.resume import RunIdentity, resume_training_state, save_training_state

FEATURE_PENALTY = 10.0  # weight of mean(conv feature^2), as in wav2vec 2.0 and HuBERT
TEMPERATURE = 0.1
DISTRACTORS = 20
MEL_BANDS = 80  # the log-mel targets of ``contrastive_target: logmel``
LOG_EVERY = 10
TRAIN_KIND = "ssl-train"
DEV_UTTERANCES = 100  # dev loss on at most this many utterances, cropped like training


class SSLTrainError(ValueError):
    pass


# --------------------------------------------------------------------------------------------
# Data: 16 kHz audio cached once as int16, cropped and padded per batch.
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Split:
    ids: list[str]
    waves: list[np.ndarray]  # int16, 16 kHz: half the memory of float32
    labels: list[np.ndarray] | None = None  # hubert: MFCC cluster per conv frame

    def seconds(self, max_seconds: float) -> list[float]:
        """Durations after cropping: what a batch costs."""
        return [min(len(w) / SAMPLE_RATE, max_seconds) for w in self.waves]


def load_split(corpus_dir: Path, split: str, min_frames: int,
               limit: int | None = None) -> Split:
    """Every utterance of a split with at least ``min_frames`` model frames."""
    records = read_manifest(manifest_path(corpus_dir, split))[:limit]
    ids, waves = [], []
    for rec in tqdm(records, desc=f"loading {split} audio", unit="utt", leave=False):
        wave, _ = read(rec.audio_path, rec.offset, rec.num_samples, target_rate=SAMPLE_RATE)
        if frames_of(len(wave)) >= min_frames:
            ids.append(rec.id)
            waves.append((np.clip(wave, -1, 1) * 32767).round().astype(np.int16))
    return Split(ids, waves)


def frames_of(samples: int) -> int:
    """Model frames of a wave: the conv front end's valid output length."""
    return max(0, (samples - RECEPTIVE_FIELD) // HOP_LENGTH + 1)


def to_float(wave: np.ndarray) -> Tensor:
    return torch.from_numpy(wave.astype(np.float32) / 32767)


def make_batch(split: Split, indices: list[int], max_seconds: float,
               rng: np.random.Generator | None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Crop (randomly, or from the start without ``rng``) and pad: waves (B, T), lengths (B,),
    labels (B, F) or None. Crops start on a 320-sample hop, so labels slice along."""
    max_hops = int(max_seconds * SAMPLE_RATE) // HOP_LENGTH
    crops, labels = [], []
    for i in indices:
        wave = split.waves[i]
        hops = min(len(wave) // HOP_LENGTH, max_hops)
        spare = len(wave) // HOP_LENGTH - hops
        start = int(rng.integers(0, spare + 1)) if rng is not None else 0  # in hops
        crop = wave[start * HOP_LENGTH:(start + hops) * HOP_LENGTH] if spare else wave
        crops.append(to_float(crop))
        if split.labels is not None:
            labels.append(torch.from_numpy(
                split.labels[i][start:start + frames_of(len(crop))].astype(np.int64)))
    lengths = torch.tensor([len(c) for c in crops])
    waves = nn.utils.rnn.pad_sequence(crops, batch_first=True)  # (B, T)
    if split.labels is None:
        return waves, lengths, None
    return waves, lengths, nn.utils.rnn.pad_sequence(labels, batch_first=True)  # (B, F)


def epoch_batches(split: Split, train: SSLTrainConfig, batch_seed: int) -> list[list[int]]:
    return bucketed_batches(split.seconds(train.max_seconds), train.batch_seconds,
                            random.Random(batch_seed))


def batch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


# --------------------------------------------------------------------------------------------
# HuBERT targets: k-means on MFCC + deltas, one label per model frame.
# --------------------------------------------------------------------------------------------

MFCC = torchaudio.transforms.MFCC(
    sample_rate=SAMPLE_RATE, n_mfcc=13,
    # center=False and a 400-sample window at hop 320: frame i covers the samples of the
    # conv front end's frame i, and there are as many frames
    melkwargs={"n_fft": RECEPTIVE_FIELD, "hop_length": HOP_LENGTH, "n_mels": 40,
               "center": False},
)


def mfcc_features(wave: np.ndarray) -> np.ndarray:
    """(T,) int16 -> (F, M) MFCC + deltas + delta-deltas."""
    with torch.inference_mode():
        mfcc = MFCC(to_float(wave))  # (13, F)
        delta = torchaudio.functional.compute_deltas(mfcc)
        delta2 = torchaudio.functional.compute_deltas(delta)
        return torch.cat([mfcc, delta, delta2]).T.numpy()  # (3 * 13, F) -> (F, M)


@dataclasses.dataclass
class MfccKMeans:
    centroids: np.ndarray  # (clusters, M), in standardized units
    mean: np.ndarray  # (M,)
    std: np.ndarray  # (M,)

    def labels(self, wave: np.ndarray) -> np.ndarray:
        """(T,) int16 -> (F,) nearest centroid per frame."""
        x = (mfcc_features(wave) - self.mean) / self.std  # (F, M)
        distances = ((x[:, None, :] - self.centroids[None]) ** 2).sum(-1)  # (F, clusters)
        return distances.argmin(1).astype(np.int16)

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, centroids=self.centroids, mean=self.mean, std=self.std)

    @classmethod
    def load(cls, path: Path) -> MfccKMeans:
        with np.load(path) as data:
            return cls(data["centroids"], data["mean"], data["std"])


def fit_mfcc_kmeans(split: Split, clusters: int, max_utterances: int, max_frames: int,
                    seed: int) -> MfccKMeans:
    """k-means on a random sample of utterances' MFCC frames, standardized per dimension (raw
    c0 would otherwise decide most clusters)."""
    order = np.random.default_rng(seed).permutation(len(split.waves))[:max_utterances]
    frames = np.concatenate([mfcc_features(split.waves[i]) for i in order])  # (sum F, M)
    if len(frames) > max_frames:
        frames = frames[np.random.default_rng(seed).choice(len(frames), max_frames, False)]
    if len(frames) < clusters:
        raise SSLTrainError(f"{len(frames)} MFCC frames cannot make {clusters} clusters: "
                            "lower tokens.hubert.scratch.mfcc_clusters or add train audio")
    mean, std = frames.mean(0), frames.std(0) + 1e-5
    kmeans = MiniBatchKMeans(n_clusters=clusters, batch_size=4096, n_init=3,
                             random_state=seed).fit((frames - mean) / std)
    return MfccKMeans(kmeans.cluster_centers_.astype(np.float32), mean, std)


# --------------------------------------------------------------------------------------------
# Objectives. Each returns {"loss": to minimize, "masked_loss", "masked_acc"}.
# --------------------------------------------------------------------------------------------


class HubertObjective(nn.Module):
    """HuBERT masked prediction of MFCC clusters (torchaudio's pre-training model)."""

    def __init__(self, train: SSLTrainConfig, num_classes: int) -> None:
        super().__init__()
        arch = scratch_arch(train)
        del arch["aux_num_out"]
        self.model = hubert_pretrain_model(
            **arch, mask_prob=train.mask_prob, mask_selection="static", mask_other=0.0,
            mask_length=train.mask_length, no_mask_overlap=False, mask_min_space=1,
            mask_channel_prob=0.0, mask_channel_selection="static", mask_channel_other=0.0,
            mask_channel_length=10, no_mask_channel_overlap=False, mask_channel_min_space=1,
            skip_masked=False, skip_nomask=train.unmasked_weight == 0,
            num_classes=num_classes, final_dim=min(256, train.dim),
            feature_grad_mult=train.feature_grad_mult,
        )
        self.unmasked_weight = train.unmasked_weight

    @property
    def backbone(self) -> Wav2Vec2Model:
        return self.model.wav2vec2

    def forward(self, waves: Tensor, lengths: Tensor, labels: Tensor) -> dict[str, Tensor]:
        # (N, 1 + classes) at the masked frames, (U, 1 + classes) at the others (or None)
        logits, unmasked_logits, penalty = self.model(waves, labels, lengths)
        # column 0 scores the frame's own cluster; its duplicate among the rest is -inf
        masked_loss = first_column_loss(logits)
        loss = masked_loss + FEATURE_PENALTY * penalty
        if unmasked_logits is not None:
            loss = loss + self.unmasked_weight * first_column_loss(unmasked_logits)
        return {"loss": loss, "masked_loss": masked_loss,
                "masked_acc": (logits.argmax(-1) == 0).float().mean()}


class ContrastiveObjective(nn.Module):
    """wav2vec 2.0's contrastive task with continuous, stop-gradient targets (the conv
    features, or with ``contrastive_target: logmel`` the frames' log-mel spectra)."""

    def __init__(self, train: SSLTrainConfig) -> None:
        super().__init__()
        self.train_cfg = train
        self.backbone = wav2vec2_model(**scratch_arch(train))
        proj = min(256, train.dim)
        self.mask_embedding = nn.Parameter(torch.empty(train.dim).uniform_())
        self.final_proj = nn.Linear(train.dim, proj)
        logmel = train.contrastive_target == "logmel"
        self.target_proj = nn.Linear(MEL_BANDS if logmel else train.conv_channels, proj)
        # not in the state dict: a function of the config, like the STFT window
        self.register_buffer("mel_filters", torchaudio.functional.melscale_fbanks(
            RECEPTIVE_FIELD // 2 + 1, 0.0, SAMPLE_RATE / 2, MEL_BANDS, SAMPLE_RATE
        ) if logmel else None, persistent=False)  # (RECEPTIVE_FIELD / 2 + 1, MEL_BANDS)

    def forward(self, waves: Tensor, lengths: Tensor, labels: Tensor | None = None
                ) -> dict[str, Tensor]:
        encoder = self.backbone.encoder
        feats, frame_lengths = self.backbone.feature_extractor(waves, lengths)  # (B, F, C)
        penalty = feats.float().pow(2).mean()
        if self.mel_filters is not None:
            frozen = log_mel_frames(waves, self.mel_filters, frame_lengths, feats.shape[1])
        else:
            frozen = feats.detach()  # the targets: stop-gradient conv features
        # same forward value, feature_grad_mult of the gradient into the conv front end
        scale = self.train_cfg.feature_grad_mult
        feats = feats * scale + feats.detach() * (1 - scale)
        x, attention_mask = encoder._preprocess(feats, frame_lengths)  # (B, F, D), padding 0
        mask = span_mask(frame_lengths, x.shape[1], self.train_cfg.mask_prob,
                         self.train_cfg.mask_length).to(x.device)  # (B, F)
        x = torch.where(mask[..., None], self.mask_embedding.to(x.dtype), x)
        x = encoder.transformer(x, attention_mask=attention_mask)  # (B, F, D)

        logits = self.contrast(x, frozen, mask, frame_lengths)  # (N, 1 + K)
        masked_loss = first_column_loss(logits)
        loss = masked_loss + FEATURE_PENALTY * penalty
        if self.train_cfg.unmasked_weight > 0:
            valid = torch.arange(x.shape[1], device=x.device) < frame_lengths[:, None]
            unmasked = self.contrast(x, frozen, valid & ~mask, frame_lengths)  # (U, 1 + K)
            loss = loss + self.train_cfg.unmasked_weight * first_column_loss(unmasked)
        return {"loss": loss, "masked_loss": masked_loss,
                "masked_acc": (logits.argmax(-1) == 0).float().mean()}

    def contrast(self, x: Tensor, frozen: Tensor, where: Tensor, frame_lengths: Tensor
                 ) -> Tensor:
        """Transformer output (B, F, D) at the frames ``where`` (B, F) is true -> (N, 1 + K)
        logits over each frame's own conv feature (column 0) and K distractors."""
        b, t = where.nonzero(as_tuple=True)  # (N,), (N,)
        context = self.final_proj(x[b, t])  # (N, P)
        frames = torch.cat([t[:, None], distractors(t, frame_lengths[b], DISTRACTORS)], 1)
        # gather, then project: the backward of a gather with repeated frames would add in
        # a thread-dependent order, and a resumed run would drift from an uninterrupted one
        candidates = self.target_proj(frozen[b[:, None], frames])  # (N, 1 + K, C) -> (.., P)
        logits = F.cosine_similarity(context[:, None].float(), candidates.float(), dim=-1)
        logits = logits / TEMPERATURE  # (N, 1 + K): column 0 is the frame's own feature
        # a distractor equal to the target (e.g. digital silence) is no evidence against it
        same = (candidates[:, 1:] == candidates[:, :1]).all(-1)  # (N, K)
        return torch.cat([logits[:, :1], logits[:, 1:].masked_fill(same, -math.inf)], 1)


def log_mel_frames(waves: Tensor, filters: Tensor, frame_lengths: Tensor, frames: int
                   ) -> Tensor:
    """(B, T) waves -> (B, F = ``frames``, MEL_BANDS) log-mel spectra of the conv front end's
    frames (the same 400-sample windows every 320 samples), minus each utterance's mean over
    its valid frames: the level of a recording says nothing about which frame is which."""
    window = torch.hann_window(RECEPTIVE_FIELD, device=waves.device)
    spec = torch.stft(waves.float(), RECEPTIVE_FIELD, HOP_LENGTH, window=window, center=False,
                      return_complex=True).abs().pow(2)  # (B, RECEPTIVE_FIELD / 2 + 1, F)
    mel = (spec.transpose(1, 2) @ filters).clamp_min(1e-6).log()  # (B, F', MEL_BANDS)
    mel = F.pad(mel, (0, 0, 0, max(0, frames - mel.shape[1])))[:, :frames]  # (B, F, MEL_BANDS)
    valid = (torch.arange(mel.shape[1], device=mel.device) < frame_lengths[:, None])[..., None]
    mean = (mel * valid).sum(1, keepdim=True) / valid.sum(1, keepdim=True).clamp_min(1)
    return (mel - mean) * valid  # (B, F, MEL_BANDS), 0 past each utterance's frames


def first_column_loss(logits: Tensor) -> Tensor:
    """Cross-entropy of (N, 1 + K) logits whose column 0 is the right answer."""
    target = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits.float(), target)


def span_mask(frame_lengths: Tensor, frames: int, prob: float, span: int) -> Tensor:
    """(B,) valid frames -> (B, F) bool. As in wav2vec 2.0, about ``prob * n / span`` spans of
    ``span`` frames start at random valid frames (they may overlap); at least one each."""
    mask = torch.zeros(len(frame_lengths), frames, dtype=torch.bool)
    for row, n in enumerate(frame_lengths.tolist()):
        count = max(1, int(prob * n / span + torch.rand(1).item()))  # probabilistic rounding
        starts = torch.randperm(max(1, n - span + 1))[:count]  # (S,)
        covered = (starts[:, None] + torch.arange(span)).clamp(max=n - 1)  # (S, span)
        mask[row, covered.flatten()] = True
    return mask


def distractors(t: Tensor, n: Tensor, k: int) -> Tensor:
    """(N,) frame and (N,) valid length of its utterance -> (N, K) other frames, uniform."""
    draw = (torch.rand(len(t), k, device=t.device) * (n[:, None] - 1)).long()  # [0, n - 1)
    return draw + (draw >= t[:, None]).long()  # skip the frame itself


def build_objective(family: str, train: SSLTrainConfig) -> HubertObjective | ContrastiveObjective:
    if family == "hubert":
        return HubertObjective(train, train.mfcc_clusters)
    return ContrastiveObjective(train)


# --------------------------------------------------------------------------------------------
# The training loop.
# --------------------------------------------------------------------------------------------


def train_ssl(cfg: Config, family: str, corpus_dir: Path, out_dir: Path) -> Path:
    """Train ``family``'s scratch model; resume from ``out_dir/last.pt`` if it exists.
    Returns ``out_dir/model.pt`` (kind "ssl": the Wav2Vec2Model's weights only)."""
    if family not in FAMILIES:
        raise SSLTrainError(f"unknown SSL family {family!r} (one of {', '.join(FAMILIES)})")
    train: SSLTrainConfig = getattr(cfg.tokens, family).scratch
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)

    min_frames = 2 * train.mask_length  # the masking needs room for its spans
    data = load_split(corpus_dir, "train", min_frames)
    if not data.waves:
        raise SSLTrainError(f"no train utterance of {corpus_dir} is long enough "
                            f"({min_frames} frames) to train on")
    if family == "hubert":
        kmeans = mfcc_kmeans(cfg, data, out_dir / "mfcc_kmeans.npz")
        data.labels = [kmeans.labels(w) for w in tqdm(data.waves, desc="MFCC targets",
                                                      leave=False)]

    objective = build_objective(family, train).to(device)
    optimizer = torch.optim.AdamW(objective.parameters(), lr=train.lr, betas=(0.9, 0.98),
                                  eps=1e-6, weight_decay=0.01)
    run = RunIdentity(cfg.to_dict(), ("seed", f"tokens.{family}.scratch"), {"family": family},
                      ("family",))
    stateful = {"model": objective, "optimizer": optimizer}
    saved = resume_training_state(out_dir, TRAIN_KIND, run, stateful, "train-ssl",
                                  total_steps=train.steps)
    # curve: the train metrics' means over each LOG_EVERY steps, with the step; window: the
    # metrics of the steps since the last point (saved too, so a resumed point means the same)
    pos = {"step": 0, "epoch": 0, "batch_index": 0, "batch_seed": batch_seed(cfg.seed, 0),
           "losses": [], "curve": [], "window": []}
    if saved is not None:
        pos = {k: saved[k] for k in ("step", "epoch", "batch_index", "batch_seed")} | {
            "losses": list(saved["losses"]), "curve": list(saved.get("curve", [])),
            "window": list(saved.get("window", []))}
    batches = epoch_batches(data, train, pos["batch_seed"])
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    with open_tracker(cfg, stage="train-ssl", out_dir=out_dir, family=family) as tracker:
        started = time.perf_counter()
        progress = tqdm(total=train.steps, initial=pos["step"], desc=f"train {family}",
                        unit="step")
        while pos["step"] < train.steps:
            if pos["batch_index"] >= len(batches):  # next epoch
                pos["epoch"] += 1
                pos["batch_index"] = 0
                pos["batch_seed"] = batch_seed(cfg.seed, pos["epoch"])
                batches = epoch_batches(data, train, pos["batch_seed"])
            crop_rng = np.random.default_rng([cfg.seed, pos["step"]])
            waves, lengths, labels = make_batch(data, batches[pos["batch_index"]],
                                                train.max_seconds, crop_rng)
            pos["batch_index"] += 1
            lr = train.lr * warmup_cosine(pos["step"], train.warmup_steps, train.steps)
            set_learning_rate(optimizer, lr)

            objective.train()
            with autocast:
                out = objective(waves.to(device), lengths.to(device),
                                None if labels is None else labels.to(device))
            update(optimizer, out["loss"], objective.parameters())
            pos["step"] += 1

            metrics = {k: float(v.detach()) for k, v in out.items()}
            pos["losses"].append(metrics["loss"])
            pos["window"].append(metrics)
            progress.update(1)
            progress.set_postfix(loss=f"{metrics['loss']:.3f}",
                                 acc=f"{metrics['masked_acc']:.2f}")
            if pos["step"] % LOG_EVERY == 0 or pos["step"] == train.steps:
                window = pos["window"]
                means = {k: float(np.mean([m[k] for m in window])) for k in window[0]}
                pos["curve"].append({"step": pos["step"]} | means)
                tracker.log({**{f"train/{k}": v for k, v in means.items()},
                             "train/lr": lr,
                             "train/sec_per_step": (time.perf_counter() - started) / len(window)},
                            step=pos["step"])
                pos["window"], started = [], time.perf_counter()
            if pos["step"] % train.checkpoint_every == 0 or pos["step"] == train.steps:
                save_training_state(out_dir, TRAIN_KIND, run, stateful, **pos)
        progress.close()

        dev = dev_metrics(cfg, family, corpus_dir, objective, device, min_frames,
                          kmeans if family == "hubert" else None)
        if pos["curve"]:
            plot_curve(family, pos["curve"], dev, pos["step"], out_dir / "curve.png")
        final = out_dir / "model.pt"
        save_checkpoint(final, kind="ssl", config=cfg.to_dict(),
                        state=objective.backbone.state_dict(),
                        meta={"family": family, "arch": "scratch", "layers": train.layers,
                              "dim": train.dim, "steps": train.steps,
                              "train_loss": pos["losses"][-1] if pos["losses"] else None,
                              **dev})
        tracker.log_summary({"train/final_loss": pos["losses"][-1] if pos["losses"] else None,
                             **dev})
        tracker.log_artifact(final, artifact_name(cfg, final), "model")
    return final


def plot_curve(family: str, curve: list[dict[str, float]], dev: dict[str, float], step: int,
               path: Path) -> Path:
    """Masked-prediction accuracy and loss against the step: train (means over LOG_EVERY
    steps) and, at the last step, dev."""
    from vadusa.eval.figures import training_curves  # noqa: PLC0415  (matplotlib: at the end)

    panels = {}
    for key, label in (("masked_acc", "masked accuracy"), ("masked_loss", "masked loss")):
        panels[label] = {"train": [(int(c["step"]), c[key]) for c in curve]}
        if f"dev/{key}" in dev:
            panels[label]["dev"] = [(step, dev[f"dev/{key}"])]
    return training_curves(panels, path, f"scratch {family}: masked prediction")


def mfcc_kmeans(cfg: Config, data: Split, path: Path) -> MfccKMeans:
    """Fit once; a resumed run reuses the saved centroids (refits if the count changed)."""
    clusters = cfg.tokens.hubert.scratch.mfcc_clusters
    if path.is_file():
        kmeans = MfccKMeans.load(path)
        if len(kmeans.centroids) == clusters:
            return kmeans
    kmeans = fit_mfcc_kmeans(data, clusters, cfg.tokens.kmeans_utterances,
                             cfg.tokens.kmeans_max_frames, cfg.seed)
    kmeans.save(path)
    return kmeans


@torch.no_grad()
def dev_metrics(cfg: Config, family: str, corpus_dir: Path, objective: nn.Module,
                device: torch.device, min_frames: int,
                kmeans: MfccKMeans | None) -> dict[str, float]:
    """Masked-prediction loss on dev utterances (cropped from their start, fixed masks)."""
    if not manifest_path(corpus_dir, "dev").is_file():
        return {}
    train: SSLTrainConfig = getattr(cfg.tokens, family).scratch
    dev = load_split(corpus_dir, "dev", min_frames, limit=DEV_UTTERANCES)
    if not dev.waves:
        return {}
    if kmeans is not None:
        dev.labels = [kmeans.labels(w) for w in dev.waves]
    objective.eval()
    totals = {"masked_loss": 0.0, "masked_acc": 0.0}
    batches = epoch_batches(dev, train, batch_seed(cfg.seed, -1))
    with torch.random.fork_rng(devices=[]):  # fixed masks, and training's RNG untouched
        torch.manual_seed(cfg.seed)
        for indices in batches:
            waves, lengths, labels = make_batch(dev, indices, train.max_seconds, rng=None)
            out = objective(waves.to(device), lengths.to(device),
                            None if labels is None else labels.to(device))
            for key in totals:
                totals[key] += float(out[key]) * len(indices)
    return {f"dev/{k}": v / len(dev.waves) for k, v in totals.items()}
