"""Train the ``encodec`` family's codec from scratch, resumably, on the corpus's train split.

    train audio at the codec's rate, cached as int16 -> each step, B = batch_seconds /
    segment_seconds random crops (B, 1, S) -> SEANet encoder -> the first k codebooks of the
    residual vector quantizer -> SEANet decoder -> weighted losses -> Adam

The model is the ``encodec`` package's (``vadusa.tokenizers.codec.build_scratch``). Losses
follow EnCodec (Defossez et al. 2022), weighted by ``tokens.encodec.scratch``:

time         L1 between waveforms.
mel          L1 between log-mels, log(clamp(mel, 1e-5)), at four scales: n_fft 256, 512, 1024,
             2048 with hop n_fft / 4 and min(64, n_fft / 8) bands (64 bands would leave empty
             filters at the small windows).
commitment   MSE between the encoder's output and its quantized value, mean over the codebooks
             used (the package computes it). The codebooks themselves are not learned by
             gradient: k-means on the first batch, then moving averages, and codes unused for
             long are replaced by frames of the batch (``dead_code_threshold``).
adversarial  optional (``adversarial``): the package's multi-scale STFT discriminator, hinge
             losses, and L1 feature matching relative to the real features' mean magnitude.

Quantizer dropout (SoundStream's, per batch): a step uses the first k codebooks, k = 1 with
probability ``first_codebook_prob``, else uniform in 1..n_q. Codebook 1 alone is what the AR
model predicts and what the vocoder decodes, so the decoder must learn to make the most of it;
the steps with more codebooks still teach encoder and decoder finer detail.

Resume: ``out_dir/last.pt`` holds model, optimizers, step, the torch RNG (k-means and dead-code
replacement draw from it) and the train losses; a step's crops and its k come from a generator
seeded by (seed, step). A resumed run therefore repeats the uninterrupted run's losses exactly.
A ``last.pt`` of another run (other ``seed`` or ``tokens.encodec.scratch`` but
``checkpoint_every`` and ``eval_every``; ``steps`` too, since the learning-rate schedule
follows it) is moved aside and training starts over (``training/resume.py``).

Outputs in ``out_dir``: ``codec.pt`` (kind "codec", read by ``load_codec``), ``last.pt``
(kind "codec-train") and ``curve.png``: the dev losses from codebook 1 and from all codebooks,
the encoder's latents decoded without quantizer (the gap to it is the codebooks' share), and
how many entries each codebook effectively uses (perplexity), at every evaluation; beside
them the same loss for HiFi-GAN copy synthesis (``dev/mel_l1_copy_synthesis`` in the meta).

Shapes: B batch, S samples a crop, T samples, F frames, Q codebooks used, M mel bands,
N mel frames.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
from encodec import EncodecModel
from encodec.msstftd import MultiScaleSTFTDiscriminator
from torch import Tensor, nn
from tqdm import tqdm

from vadusa.config import CodecTrainConfig, Config
from vadusa.data.audio import read
from vadusa.data.manifest import manifest_path, read_manifest
from vadusa.devices import resolve_device
from vadusa.tokenizers.codec import (
    build_scratch,
    quiet_weight_norm,
    reconstruct,
    save_codec,
    scratch_arch,
)
from vadusa.tracking import artifact_name, open_tracker
from vadusa.training.common import seed_everything, set_learning_rate, update, warmup_cosine
from vadusa.training.resume import RunIdentity, resume_training_state, save_training_state

TRAIN_STATE_KIND = "codec-train"
MEL_SCALES = (256, 512, 1024, 2048)  # n_fft of the mel loss's scales
ADAM_BETAS = (0.5, 0.9)  # EnCodec's, for the codec and the discriminator
GRAD_CLIP = 1.0
LOG_EVERY = 10  # steps between tracker points
DEV_UTTERANCES = 20  # dev losses on at most this many utterances...
DEV_SECONDS = 4.0  # ...each cut to its first seconds: enough to compare, cheap on a CPU


class CodecTrainError(ValueError):
    pass


# --------------------------------------------------------------------------------------------
# Data: audio cached once as int16 at the codec's rate, cropped per step.
# --------------------------------------------------------------------------------------------


def load_waves(corpus_dir: Path, split: str, sample_rate: int,
               limit: int | None = None, max_seconds: float | None = None) -> list[np.ndarray]:
    """The split's utterances as int16 at ``sample_rate`` (half the memory of float32)."""
    records = read_manifest(manifest_path(corpus_dir, split))[:limit]
    waves = []
    for rec in tqdm(records, desc=f"loading {split} audio", unit="utt", leave=False):
        samples = rec.num_samples
        if max_seconds is not None:
            samples = min(samples, int(max_seconds * rec.sample_rate))
        wave, _ = read(rec.audio_path, rec.offset, samples, target_rate=sample_rate)
        waves.append((np.clip(wave, -1, 1) * 32767).round().astype(np.int16))
    return waves


def to_float(wave: np.ndarray) -> Tensor:
    return torch.from_numpy(wave.astype(np.float32) / 32767)


def crop_batch(waves: list[np.ndarray], count: int, samples: int,
               rng: np.random.Generator) -> Tensor:
    """``count`` random crops of ``samples`` samples from random utterances -> (B, 1, S).
    Utterances are drawn with replacement; a shorter one is zero-padded (silence is a fair
    target for a codec)."""
    batch = torch.zeros(count, 1, samples)
    for b, i in enumerate(rng.integers(0, len(waves), count)):
        wave = waves[i]
        start = int(rng.integers(0, len(wave) - samples + 1)) if len(wave) > samples else 0
        piece = wave[start:start + samples]
        batch[b, 0, :len(piece)] = to_float(piece)
    return batch


def codebooks_for_step(model: EncodecModel, train: CodecTrainConfig,
                       rng: np.random.Generator) -> int:
    """How many codebooks a forward pass uses: all in eval mode or without quantizer dropout,
    else 1 with probability first_codebook_prob, else uniform in 1..n_q."""
    n_q = model.quantizer.n_q
    if not (model.training and train.quantizer_dropout):
        return n_q
    if rng.random() < train.first_codebook_prob:
        return 1
    return int(rng.integers(1, n_q + 1))


# --------------------------------------------------------------------------------------------
# Losses.
# --------------------------------------------------------------------------------------------


class MultiScaleMelLoss(nn.Module):
    """Mean over scales of L1 between log-mels: (B, 1, T) x 2 -> scalar."""

    def __init__(self, sample_rate: int, scales: tuple[int, ...] = MEL_SCALES) -> None:
        super().__init__()
        self.mels = nn.ModuleList(
            torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=n, hop_length=n // 4,
                                                 n_mels=min(64, n // 8), power=1.0)
            for n in scales)

    def forward(self, predicted: Tensor, target: Tensor) -> Tensor:
        total = predicted.new_zeros(())
        for mel in self.mels:
            p = torch.log(mel(predicted).clamp(min=1e-5))  # (B, 1, M, N)
            t = torch.log(mel(target).clamp(min=1e-5))
            total = total + (p - t).abs().mean()
        return total / len(self.mels)


@dataclasses.dataclass
class Adversary:
    """The optional discriminator and its optimizer."""

    disc: MultiScaleSTFTDiscriminator
    optimizer: torch.optim.Optimizer

    def step(self, real: Tensor, fake: Tensor, lr: float) -> float:
        """One hinge-loss update on detached fakes; returns the discriminator's loss."""
        set_learning_rate(self.optimizer, lr)
        real_logits, _ = self.disc(real)
        fake_logits, _ = self.disc(fake.detach())
        loss = sum(F.relu(1 - r).mean() + F.relu(1 + f).mean()
                   for r, f in zip(real_logits, fake_logits, strict=True)) / len(real_logits)
        update(self.optimizer, loss, self.disc.parameters(), GRAD_CLIP)
        return float(loss.detach())

    def generator_losses(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        """(hinge loss of the fakes, feature matching) for the codec's update."""
        fake_logits, fake_maps = self.disc(fake)
        with torch.no_grad():
            _, real_maps = self.disc(real)
        adversarial = sum(F.relu(1 - f).mean() for f in fake_logits) / len(fake_logits)
        pairs = [(r, f) for rs, fs in zip(real_maps, fake_maps, strict=True)
                 for r, f in zip(rs, fs, strict=True)]
        features = sum((r - f).abs().mean() / (r.abs().mean() + 1e-8) for r, f in pairs)
        return adversarial, features / len(pairs)


def build_adversary(train: CodecTrainConfig, device: torch.device) -> Adversary | None:
    if not train.adversarial:
        return None
    with quiet_weight_norm():
        disc = MultiScaleSTFTDiscriminator(filters=train.discriminator_filters).to(device)
    return Adversary(disc, torch.optim.Adam(disc.parameters(), lr=train.lr, betas=ADAM_BETAS))


# --------------------------------------------------------------------------------------------
# The training loop.
# --------------------------------------------------------------------------------------------


def train_codec(cfg: Config, corpus_dir: Path, out_dir: Path) -> Path:
    """Train (or resume, or finish) the scratch codec; returns ``out_dir/codec.pt``."""
    train = cfg.tokens.encodec.scratch
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)

    arch = scratch_arch(train)
    model = build_scratch(arch, dead_code_threshold=train.dead_code_threshold).to(device)
    adversary = build_adversary(train, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=train.lr, betas=ADAM_BETAS)
    mel_loss = MultiScaleMelLoss(train.sample_rate).to(device)

    waves = load_waves(corpus_dir, "train", train.sample_rate)
    if not waves:
        raise CodecTrainError(f"no train utterances in {corpus_dir}")
    crops = max(1, round(train.batch_seconds / train.segment_seconds))
    segment = int(train.segment_seconds * train.sample_rate)

    run = RunIdentity(cfg.to_dict(), ("seed", "tokens.encodec.scratch"),
                      {"family": "encodec", "arch": arch}, ("family", "arch"))
    stateful = {"model": model, "optimizer": optimizer}
    if adversary is not None:
        stateful |= {"disc": adversary.disc, "disc_optimizer": adversary.optimizer}
    saved = resume_training_state(out_dir, TRAIN_STATE_KIND, run, stateful, "train-codec",
                                  total_steps=train.steps)
    step, losses, curve = 0, [], []  # curve: the dev metrics of each evaluation, with its step
    if saved is not None:
        step, losses = int(saved["step"]), list(saved["losses"])
        curve = list(saved.get("curve", []))

    def save_state() -> None:
        save_training_state(out_dir, TRAIN_STATE_KIND, run, stateful, step=step, losses=losses,
                            curve=curve)

    dev = []
    if manifest_path(corpus_dir, "dev").is_file():
        dev = load_waves(corpus_dir, "dev", train.sample_rate, DEV_UTTERANCES, DEV_SECONDS)

    with open_tracker(cfg, stage="train-codec", out_dir=out_dir, family="encodec") as tracker:
        first_step, train_seconds = step, 0.0
        dev_metrics: dict[str, float] = {}
        window: list[dict[str, float]] = []
        bar = tqdm(total=train.steps, initial=step, desc="codec (encodec)", unit="step")
        while step < train.steps:
            started = time.perf_counter()
            rng = np.random.default_rng([cfg.seed, step])
            batch = crop_batch(waves, crops, segment, rng).to(device)
            model.train()
            codebooks = codebooks_for_step(model, train, rng)
            lr = train.lr * warmup_cosine(step, train.warmup_steps, train.steps)
            metrics = train_step(model, optimizer, batch, codebooks, lr, train, mel_loss,
                                 adversary)
            train_seconds += time.perf_counter() - started
            step += 1
            losses.append(metrics["loss"])
            window.append(metrics)
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.3f}", k=codebooks)
            if step % LOG_EVERY == 0 or step == train.steps:  # means since the last point
                tracker.log({f"train/{k}": float(np.mean([m[k] for m in window]))
                             for k in window[0]} | {"train/lr": lr}, step=step)
                window = []
            if step % train.eval_every == 0 or step == train.steps:
                dev_metrics = evaluate(model, dev, train, mel_loss, device)
                if dev_metrics:
                    tracker.log(dev_metrics, step=step)
                    curve.append({"step": step} | dev_metrics)
            if step % train.checkpoint_every == 0 or step == train.steps:
                save_state()
        bar.close()
        if first_step == step:  # nothing left to train: a finished run, re-entered
            dev_metrics = evaluate(model, dev, train, mel_loss, device)

        if curve:
            reference = copy_synthesis_reference(dev, train.sample_rate, mel_loss)
            dev_metrics |= reference
            plot_curve(curve, model.quantizer.n_q, out_dir / "curve.png",
                       reference["dev/mel_l1_copy_synthesis"])
        final = out_dir / "codec.pt"
        save_codec(final, model, arch, cfg.to_dict(),
                   meta={"steps": step, "train_loss": losses[-1] if losses else None,
                         **dev_metrics})
        tracker.log_summary({"steps": step, "train_utterances": len(waves),
                             "dev_utterances": len(dev),
                             "parameters": sum(p.numel() for p in model.parameters()),
                             "seconds_per_step": train_seconds / max(1, step - first_step),
                             **dev_metrics})
        tracker.log_artifact(final, artifact_name(cfg, final), "model")
    return final


def train_step(model: EncodecModel, optimizer: torch.optim.Optimizer, batch: Tensor,
               codebooks: int, lr: float, train: CodecTrainConfig, mel_loss: MultiScaleMelLoss,
               adversary: Adversary | None) -> dict[str, float]:
    """One update of the codec (and of the discriminator first, if any) on (B, 1, S)."""
    set_learning_rate(optimizer, lr)
    out = reconstruct(model, batch, codebooks)
    parts = {"time_l1": (out.wave - batch).abs().mean(), "mel_l1": mel_loss(out.wave, batch),
             "commitment": out.commitment}
    loss = (train.time_weight * parts["time_l1"] + train.mel_weight * parts["mel_l1"]
            + train.commitment_weight * parts["commitment"])
    metrics: dict[str, float] = {}
    if adversary is not None:
        metrics["disc_loss"] = adversary.step(batch, out.wave, lr)
        parts["adversarial"], parts["features"] = adversary.generator_losses(batch, out.wave)
        loss = (loss + train.adversarial_weight * parts["adversarial"]
                + train.feature_weight * parts["features"])
    grad_norm = update(optimizer, loss, model.parameters(), GRAD_CLIP)
    return metrics | {k: float(v.detach()) for k, v in parts.items()} | {
        "loss": float(loss.detach()), "grad_norm": float(grad_norm), "codebooks": codebooks}


@torch.no_grad()
def evaluate(model: EncodecModel, dev: list[np.ndarray], train: CodecTrainConfig,
             mel_loss: MultiScaleMelLoss, device: torch.device) -> dict[str, float]:
    """Dev reconstruction losses, mean over utterances, from codebook 1 alone (what the AR
    tokens and the vocoder use) and from all codebooks; {} without dev audio."""
    if not dev:
        return {}
    model.eval()
    totals: dict[str, float] = {}
    n_q, bins = model.quantizer.n_q, model.quantizer.bins
    uses = torch.zeros(n_q, bins)  # (Q, K): how often each entry codes a dev frame
    for k in sorted({1, n_q}):
        for wave in dev:
            x = to_float(wave).to(device).reshape(1, 1, -1)  # (T,) -> (1, 1, T)
            out = reconstruct(model, x, k)
            if k == n_q:
                for q in range(n_q):
                    uses[q] += torch.bincount(out.codes[q, 0].cpu(), minlength=bins)
            time_l1, mel_l1 = float((out.wave - x).abs().mean()), float(mel_loss(out.wave, x))
            for name, value in (("time_l1", time_l1), ("mel_l1", mel_l1),
                                ("loss", train.time_weight * time_l1
                                 + train.mel_weight * mel_l1)):
                key = f"dev/{name}_q{k}"
                totals[key] = totals.get(key, 0.0) + value / len(dev)
    # the encoder's latents decoded as they are: what the autoencoder could do with perfect
    # codebooks, so the gap to it is the quantizer's share of the loss
    continuous = 0.0
    for wave in dev:
        x = to_float(wave).to(device).reshape(1, 1, -1)  # (T,) -> (1, 1, T)
        y = model.decoder(model.encoder(x))[..., :x.shape[-1]]  # (1, 1, T)
        continuous += float(mel_loss(y, x)) / len(dev)
    return totals | {"dev/mel_l1_continuous": continuous} | codebook_usage(uses)


@torch.no_grad()
def copy_synthesis_reference(dev: list[np.ndarray], sample_rate: int,
                             mel_loss: MultiScaleMelLoss) -> dict[str, float]:
    """The dev log-mel L1 of HiFi-GAN copy synthesis (each utterance's own mel through the
    shipped generator, intelligible: docs/tokens.md): how low the codec's curve must go."""
    from vadusa.data.audio import resample  # noqa: PLC0415
    from vadusa.vocoder.hifigan import CopySynthesis  # noqa: PLC0415

    device = next(mel_loss.buffers()).device
    copy, total = CopySynthesis(device=device), 0.0
    for wave in dev:
        x = to_float(wave)  # (T,)
        y, rate = copy.decode(copy.encode(x.numpy(), sample_rate), "any")
        y = torch.from_numpy(resample(y, rate, sample_rate))  # (T',), T' about T
        n = min(len(x), len(y))
        pair = [w[:n].reshape(1, 1, -1).to(device) for w in (y, x)]  # (T,) -> (1, 1, n)
        total += float(mel_loss(*pair)) / len(dev)
    return {"dev/mel_l1_copy_synthesis": total}


def plot_curve(curve: list[dict[str, float]], n_q: int, path: Path,
               copy_synthesis: float | None = None) -> Path:
    """The dev metrics of every evaluation against the step: log-mel L1 from codebook 1, from
    all codebooks (their gap is what the residual codebooks add), without quantizer and, flat,
    HiFi-GAN copy synthesis's; and each codebook's perplexity."""
    from vadusa.eval.figures import training_curves  # noqa: PLC0415  (matplotlib: at the end)

    def series(key: str) -> list[tuple[int, float]]:
        return [(int(c["step"]), c[key]) for c in curve if key in c]

    panels = {"dev log-mel L1": {"codebook 1": series("dev/mel_l1_q1"),
                                 f"codebooks 1..{n_q}": series(f"dev/mel_l1_q{n_q}"),
                                 "no quantizer": series("dev/mel_l1_continuous")},
              "dev perplexity (entries used)": {f"codebook {q}": series(f"dev/perplexity_q{q}")
                                                for q in range(1, n_q + 1)}}
    if copy_synthesis is not None:
        steps = [step for step, _ in series("dev/mel_l1_q1")]
        panels["dev log-mel L1"]["HiFi-GAN copy synthesis"] = [(min(steps), copy_synthesis),
                                                                (max(steps), copy_synthesis)]
    return training_curves(panels, path, "scratch codec: dev reconstruction and codebook use")


def codebook_usage(uses: Tensor) -> dict[str, float]:
    """(Q, K) counts of each codebook's entries -> entries used and perplexity (the exp of
    the entropy of their frequencies: how many entries the codebook effectively uses) per
    codebook. A codebook whose entries sit unused, or whose every frame takes a few of them,
    adds little; these say which."""
    usage = {}
    for q, counts in enumerate(uses, start=1):
        p = counts / counts.sum().clamp(min=1)  # (K,)
        entropy = -(p[p > 0] * p[p > 0].log()).sum()
        usage[f"dev/used_q{q}"] = float((counts > 0).sum())
        usage[f"dev/perplexity_q{q}"] = float(entropy.exp())
    return usage

