"""Train the unit-to-mel network of the unit vocoder on one token family.

    train tokens (TokenSplit) + their audio (manifest) -> target log-mels, once, in memory
    -> random crops of <= max_seconds -> length-bucketed batches -> Unit2Mel -> L1 + L2

Outputs in ``out_dir``: ``unit2mel.pt`` (weights + what ``UnitVocoder.load`` needs),
``last.pt`` (the resumable training state, every ``checkpoint_every`` steps) and ``samples/``
(dev utterances decoded from their true units, HiFi-GAN copy-synthesis of their true mels for
reference, and a figure of predicted vs. true mels).

The speaker (``vocoder.speaker_conditioning``) is the index of a training voice in a learned
table (``table``), or a d-vector (``dvector``, ``vadusa.data.dvectors``): each training crop is
conditioned on the d-vector of *another* utterance of its speaker, drawn anew at every step,
and a dev utterance on one other utterance's, drawn once. With d-vectors the dev loss also
covers voices never heard in training (LibriTTS's dev speakers), which the table cannot
render: ``table`` leaves them out.

A run that finds ``last.pt`` resumes from it and ends exactly where the uninterrupted run would:
batches come from a per-epoch seed, crops and prompts from per-step seeds, and the torch RNG
(dropout) is saved with the weights. A ``last.pt`` of another run (other seed, ``vocoder.*`` but
``checkpoint_every``, tokens, speakers, mel settings or training d-vectors) is moved aside and
training starts over (``training/resume.py``).
"""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vadusa.atomic import atomic_path
from vadusa.checkpoint import file_digest, save_checkpoint
from vadusa.config import Config
from vadusa.data.audio import read, write_wav
from vadusa.data.dvectors import dvectors_path, mean_dvector, read_dvectors
from vadusa.data.manifest import manifest_path, read_manifest
from vadusa.data.mel import SAMPLE_RATE, mel_frames, mel_settings, mel_spectrogram
from vadusa.devices import resolve_device
from vadusa.tokenizers.store import TokenSplit
from vadusa.tracking import Tracker, artifact_name, open_tracker
from vadusa.training.common import (
    bucketed_batches,
    seed_everything,
    set_learning_rate,
    update,
    warmup_cosine,
)
from vadusa.training.resume import RunIdentity, resume_training_state, save_training_state
from vadusa.vocoder import CHECKPOINT_KIND, UnitVocoder
from vadusa.vocoder.unit2mel import (
    MEL_RATE,
    Unit2Mel,
    mel_frames_for_units,
    mel_loss,
    units_per_mel_frame,
)

TRAIN_STATE_KIND = "unit2mel-train"
LOG_EVERY = 10  # steps between tracker points
SAMPLE_UTTERANCES = 3  # dev utterances decoded into samples/
MAX_MISMATCH_SECONDS = 1.0  # units and audio of one utterance must last about as long
# the streams of the prompt draws, beside the crops' [seed, step]: [seed, step, TRAIN_PROMPTS]
# at each training step, [seed, 0, DEV_PROMPTS] once for the dev utterances
TRAIN_PROMPTS, DEV_PROMPTS = 1, 2


class VocoderTrainingError(ValueError):
    pass


@dataclass
class Example:
    """One utterance in memory: its units and the log-mels they should become."""

    id: str
    speaker: int  # index into the speaker table; -1: a voice not in it (unseen in training)
    units: np.ndarray  # (U,) int64
    mel: torch.Tensor  # (M, N_MELS) float16 (half the memory; 0.01 steps on log-mels)
    voice: str = ""  # the speaker's name
    # dvector conditioning, dev: the (256,) d-vector it is decoded with, drawn once (so that
    # every evaluation of the dev loss sees the same prompts)
    prompt: np.ndarray | None = None


@dataclass
class Batch:
    units: torch.Tensor  # (B, U) long, padded with pad_id
    unit_lengths: torch.Tensor  # (B,)
    speakers: torch.Tensor  # (B,) indices, or (B, 256) d-vectors
    mels: torch.Tensor  # (B, M, N_MELS), zero-padded
    mel_lengths: torch.Tensor  # (B,)
    mel_start: torch.Tensor  # (B,) first frame of each crop in its utterance

    def to(self, device: torch.device) -> Batch:
        return Batch(*(t.to(device) for t in (self.units, self.unit_lengths, self.speakers,
                                              self.mels, self.mel_lengths, self.mel_start)))


# --------------------------------------------------------------------------------------------
# Data: tokens + audio -> examples; examples -> cropped, padded batches.
# --------------------------------------------------------------------------------------------


def load_examples(corpus_dir: Path, tokens: TokenSplit, split: str, speakers: list[str],
                  keep_unseen: bool = False) -> tuple[list[Example], int]:
    """Examples of the token split whose speaker is in ``speakers``, and how many were of
    another speaker (LibriTTS dev/test speakers are not training speakers): left out, or with
    ``keep_unseen`` (d-vector conditioning, which renders any voice) kept, speaker -1."""
    frame_rate = float(tokens.meta["frame_rate"])
    records = {u.id: u for u in read_manifest(manifest_path(corpus_dir, split))}
    speaker_index = {name: i for i, name in enumerate(speakers)}
    examples, unknown = [], 0
    for i, utt_id in enumerate(tqdm(tokens.ids, desc=f"vocoder targets ({split})", leave=False)):
        if tokens.speakers[i] not in speaker_index:
            unknown += 1
            if not keep_unseen:
                continue
        if utt_id not in records:
            raise VocoderTrainingError(f"tokens of {utt_id!r} have no audio in the {split} "
                                       f"manifest of {corpus_dir}: tokens and corpus differ")
        rec = records[utt_id]
        units = tokens[i]
        if len(units) == 0:
            continue
        unit_seconds = len(units) / frame_rate
        if abs(unit_seconds - rec.duration) > MAX_MISMATCH_SECONDS:
            raise VocoderTrainingError(
                f"{utt_id}: {len(units)} units at {frame_rate} Hz last {unit_seconds:.2f} s but "
                f"the audio lasts {rec.duration:.2f} s; tokens do not belong to this audio")
        wave, _ = read(rec.audio_path, rec.offset, rec.num_samples, target_rate=SAMPLE_RATE)
        if mel_frames(len(wave)) < 1:
            continue
        mel = mel_spectrogram(wave).T  # (N_MELS, M) -> (M, N_MELS)
        frames = min(len(mel), mel_frames_for_units(len(units), frame_rate))
        mel = mel[:frames].to(torch.float16)  # a compact copy, not a view of the whole
        examples.append(Example(utt_id, speaker_index.get(tokens.speakers[i], -1), units, mel,
                                voice=tokens.speakers[i]))
    return examples, unknown


class Prompts:
    """The d-vectors a split's utterances may be conditioned on (``speaker_conditioning:
    dvector``): for each speaker, those of its utterances in the split that have one."""

    def __init__(self, corpus_dir: Path, split: str, dvectors: dict[str, np.ndarray]) -> None:
        ids: dict[str, list[str]] = {}
        for rec in read_manifest(manifest_path(corpus_dir, split)):
            if rec.id in dvectors:
                ids.setdefault(rec.speaker, []).append(rec.id)
        self.ids = ids  # speaker -> its utterances with a d-vector
        # one (K, 256) array per speaker, shared by its examples, and each utterance's row
        self.pools = {voice: np.stack([dvectors[i] for i in group]) for voice, group in ids.items()}
        self.row = {utt_id: r for group in ids.values() for r, utt_id in enumerate(group)}

    def __contains__(self, voice: object) -> bool:
        return voice in self.pools

    def draw(self, example: Example, rng: np.random.Generator) -> np.ndarray:
        """The (256,) d-vector of another utterance of the example's speaker, drawn by ``rng``;
        its own only if the speaker has no other. Never its own otherwise: at synthesis the
        vocoder hears the prompt's d-vector, another utterance of the voice (other words,
        another recording), so it must learn to render a voice from such a d-vector, not to
        read the target's own recording conditions back out of its embedding."""
        pool = self.pools[example.voice]
        own = self.row.get(example.id, -1)  # -1: it has no d-vector of its own (skipped)
        others = len(pool) - (own >= 0)
        if others == 0:
            return pool[own]
        j = int(rng.integers(others))
        return pool[j + 1 if 0 <= own <= j else j]  # the rows but its own, in order


def crop(example: Example, max_frames: int, frame_rate: float,
         rng: np.random.Generator) -> tuple[np.ndarray, torch.Tensor, int]:
    """A random window of at most ``max_frames`` mel frames and the units it reads:
    -> (units (U',), mel (M', N_MELS), first mel frame)."""
    total = len(example.mel)
    start = int(rng.integers(0, total - max_frames + 1)) if total > max_frames else 0
    stop = min(total, start + max_frames)
    r = units_per_mel_frame(frame_rate)
    # the units under the first and last frame centres, as Unit2Mel's lookup computes them
    first = int(np.floor((start + 0.5) * r + 1e-9))
    last = int(np.floor((stop - 0.5) * r + 1e-9))
    first = min(first, len(example.units) - 1)
    units = example.units[first:last + 1]
    return units, example.mel[start:stop], start


def prompt_dev(corpus_dir: Path, dev: list[Example], seed: int) -> tuple[list[Example], int]:
    """The dev examples with their prompts (``Example.prompt``: another dev utterance of the
    voice, drawn once from the seed), and how many were left out: their voice has no d-vector
    in the dev split."""
    prompts = Prompts(corpus_dir, "dev", read_dvectors(corpus_dir, "dev"))
    kept = [e for e in dev if e.voice in prompts]
    draws = np.random.default_rng([seed, 0, DEV_PROMPTS])
    for example in kept:
        example.prompt = prompts.draw(example, draws)
    return kept, len(dev) - len(kept)


def collate(items: list[tuple[np.ndarray, torch.Tensor, int]],
            speakers: list[int] | torch.Tensor, pad_id: int) -> Batch:
    """Padded crops; ``speakers``: (B,) indices or (B, 256) d-vectors."""
    B = len(items)
    U = max(len(u) for u, _, _ in items)
    M = max(len(m) for _, m, _ in items)
    n_mels = items[0][1].shape[1]
    units = torch.full((B, U), pad_id, dtype=torch.long)
    mels = torch.zeros(B, M, n_mels)
    for b, (u, m, _) in enumerate(items):
        units[b, :len(u)] = torch.from_numpy(u)
        mels[b, :len(m)] = m
    return Batch(units=units,
                 unit_lengths=torch.tensor([len(u) for u, _, _ in items]),
                 speakers=torch.as_tensor(speakers),
                 mels=mels,
                 mel_lengths=torch.tensor([len(m) for _, m, _ in items]),
                 mel_start=torch.tensor([s for _, _, s in items]))


def epoch_batches(examples: list[Example], max_frames: int, budget_frames: float, seed: int,
                  epoch: int) -> list[list[int]]:
    """The batches of one epoch, a function of (seed, epoch) only, so a resume re-creates them."""
    lengths = [min(len(e.mel), max_frames) for e in examples]
    return bucketed_batches(lengths, budget_frames, random.Random(f"{seed}-vocoder-{epoch}"))


def whole_batches(examples: list[Example], budget_frames: float) -> list[list[int]]:
    """Uncropped examples in length order, for validation."""
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].mel))
    batches: list[list[int]] = [[]]
    for i in order:
        if batches[-1] and len(examples[i].mel) * (len(batches[-1]) + 1) > budget_frames:
            batches.append([])
        batches[-1].append(i)
    return [b for b in batches if b]


# --------------------------------------------------------------------------------------------
# Training.
# --------------------------------------------------------------------------------------------


def train_vocoder(cfg: Config, family: str, corpus_dir: Path, tokens_dir: Path,
                  out_dir: Path) -> Path:
    """Train (or resume, or finish) the unit-to-mel network; returns ``out_dir/unit2mel.pt``."""
    vc = cfg.vocoder
    corpus_dir, tokens_dir, out_dir = Path(corpus_dir), Path(tokens_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)

    train_tokens = TokenSplit(tokens_dir, "train")
    token_meta = train_tokens.meta
    if token_meta.get("family", family) != family:
        raise VocoderTrainingError(f"{tokens_dir} holds {token_meta['family']!r} tokens, "
                                   f"not {family!r}")
    frame_rate, vocab_size = float(token_meta["frame_rate"]), int(token_meta["vocab_size"])
    speakers = sorted(set(train_tokens.speakers))
    dvector = vc.speaker_conditioning == "dvector"
    prompts = None
    if dvector:
        train_dvectors = read_dvectors(corpus_dir, "train")
        prompts = Prompts(corpus_dir, "train", train_dvectors)
        voiceless = [s for s in speakers if s not in prompts]
        if voiceless:  # none of their utterances gave a d-vector (vadusa.data.dvectors)
            print(f"[train-vocoder] leaving out {len(voiceless)} training speakers without any "
                  f"d-vector: {', '.join(voiceless[:10])}", flush=True)
        speakers = [s for s in speakers if s in prompts]
    train, _ = load_examples(corpus_dir, train_tokens, "train", speakers)
    dev, dev_unknown = load_examples(corpus_dir, TokenSplit(tokens_dir, "dev"), "dev", speakers,
                                     keep_unseen=dvector)
    dev_unseen = 0
    if dvector:  # every dev voice with a d-vector counts, heard in training or not
        dev, dev_unknown = prompt_dev(corpus_dir, dev, cfg.seed)
        dev_unseen = sum(e.speaker < 0 for e in dev)
        print(f"[train-vocoder] conditioned on d-vectors: {len(dev)} dev utterances, "
              f"{dev_unseen} of voices unseen in training", flush=True)
    if not train:
        raise VocoderTrainingError(f"no training utterances in {tokens_dir}")

    model = Unit2Mel(vocab_size, len(speakers), frame_rate, dim=vc.dim, layers=vc.layers,
                     heads=vc.heads, conv_kernel=vc.conv_kernel, speaker_dim=vc.speaker_dim,
                     speaker_input=vc.speaker_conditioning)
    with torch.no_grad():  # start from the average spectrum, not from silence
        total = sum(e.mel.float().sum(0) for e in train)  # (N_MELS,)
        model.out.bias.copy_(total / sum(len(e.mel) for e in train))
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=vc.lr, betas=(0.9, 0.98),
                                  weight_decay=0.01)
    max_frames = max(1, int(vc.max_seconds * MEL_RATE))
    budget_frames = vc.batch_seconds * MEL_RATE

    # what the weights mean: a final checkpoint needs it to decode, a resume must match it
    meta = {"family": family, "vocab_size": vocab_size, "frame_rate": frame_rate,
            "quantizer": token_meta.get("quantizer_sha256"), "speakers": speakers,
            "hifigan": vc.hifigan, "mel": mel_settings(),
            "model": model.hparams, "speaker_conditioning": vc.speaker_conditioning} | (
                {"ema": vc.ema} if vc.ema > 0 else {})
    if prompts is not None:
        # each training voice's mean d-vector, so that the vocoder still decodes a training
        # voice by name; and which d-vectors it was trained on, for a resume to compare
        meta |= {"speaker_dvectors": torch.from_numpy(np.stack(
                     [mean_dvector(train_dvectors, prompts.ids[s]) for s in speakers])),
                 "dvectors": file_digest(dvectors_path(corpus_dir, "train"))}
        del train_dvectors  # the prompts hold what training needs
    # the moving average of the weights (vocoder.ema), kept beside them in float32
    ema = WeightAverage(model, vc.ema) if vc.ema > 0 else None
    run = RunIdentity(cfg.to_dict(), ("seed", "vocoder"), meta, tuple(meta))
    stateful = {"model": model, "optimizer": optimizer} | ({"ema": ema} if ema is not None else {})
    saved = resume_training_state(out_dir, TRAIN_STATE_KIND, run, stateful, "train-vocoder",
                                  map_location=device, total_steps=vc.steps)
    step, epoch, position = (0, 0, 0) if saved is None else (
        int(saved["step"]), int(saved["epoch"]), int(saved["position"]))

    def save_state() -> None:
        save_training_state(out_dir, TRAIN_STATE_KIND, run, stateful, step=step, epoch=epoch,
                            position=position)

    def final_weights() -> Unit2Mel:
        """The weights a checkpoint and the dev loss use: the average, when kept."""
        return model if ema is None else ema.model()

    with open_tracker(cfg, stage="train-vocoder", out_dir=out_dir, family=family) as tracker:
        first_step, train_seconds = step, 0.0
        bar = tqdm(total=vc.steps, initial=step, desc=f"vocoder ({family})", unit="step")
        dev_loss = float("nan")
        running: dict[str, float] = {}  # summed since the last tracker point
        while step < vc.steps:
            batches = epoch_batches(train, max_frames, budget_frames, cfg.seed, epoch)
            while position < len(batches) and step < vc.steps:
                started = time.perf_counter()
                crops = np.random.default_rng([cfg.seed, step])
                indices = batches[position]
                if prompts is None:
                    voices = torch.tensor([train[i].speaker for i in indices])  # (B,)
                else:  # another utterance's d-vector (Prompts.draw), from the step's own stream
                    draws = np.random.default_rng([cfg.seed, step, TRAIN_PROMPTS])
                    voices = torch.from_numpy(np.stack(
                        [prompts.draw(train[i], draws) for i in indices]))  # (B, 256)
                batch = collate([crop(train[i], max_frames, frame_rate, crops) for i in indices],
                                voices, model.pad_id).to(device)
                position += 1
                lr = vc.lr * warmup_cosine(step, vc.warmup_steps, vc.steps)
                parts = train_step(model, optimizer, batch, lr, device)
                if ema is not None:
                    ema.update(model, step)
                train_seconds += time.perf_counter() - started
                step += 1
                for name, value in parts.items():
                    running[name] = running.get(name, 0.0) + value
                bar.update(1)
                bar.set_postfix(loss=f"{parts['loss']:.3f}")
                if step % LOG_EVERY == 0 or step == vc.steps:  # means since the last point
                    count = (step - 1) % LOG_EVERY + 1
                    tracker.log({f"train/{k}": v / count for k, v in running.items()}
                                | {"train/lr": lr}, step=step)
                    running = {}
                if step % vc.checkpoint_every == 0 or step == vc.steps:
                    dev_loss = evaluate(final_weights(), dev, budget_frames, device)
                    tracker.log({"dev/loss": dev_loss}, step=step)
                    save_state()
            if position >= len(batches):
                epoch, position = epoch + 1, 0
        bar.close()
        if first_step == vc.steps:  # nothing left to train: a finished run, re-entered
            dev_loss = evaluate(final_weights(), dev, budget_frames, device)

        final = out_dir / "unit2mel.pt"
        save_checkpoint(final, kind=CHECKPOINT_KIND, config=cfg.to_dict(),
                        state={k: v.cpu() for k, v in final_weights().state_dict().items()},
                        meta=meta | {"steps": step, "dev_loss": dev_loss})
        tracker.log_summary({"dev_loss": dev_loss, "steps": step, "train_utterances": len(train),
                             "dev_utterances": len(dev), "dev_unknown_speaker": dev_unknown,
                             "dev_unseen_speaker": dev_unseen,
                             "seconds_per_step": train_seconds / max(1, step - first_step)})
        tracker.log_artifact(final, artifact_name(cfg, final), "model")
        write_samples(final, dev, out_dir / "samples", tracker, device)
    return final


class WeightAverage:
    """An exponential moving average of a model's floating-point weights. The decay ramps up
    as (1 + t) / (10 + t) towards ``decay`` so that the first steps' weights, far from the
    trained ones, do not linger in the average."""

    def __init__(self, model: Unit2Mel, decay: float) -> None:
        self.decay, self.template = decay, model
        self.average = {k: v.detach().float().clone() for k, v in model.state_dict().items()
                        if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: Unit2Mel, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for k, v in model.state_dict().items():
            if k in self.average:
                self.average[k].mul_(d).add_(v.float(), alpha=1 - d)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.cpu() for k, v in self.average.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for k, v in state.items():
            self.average[k].copy_(v)

    def model(self) -> Unit2Mel:
        """A copy of the model holding the averaged weights."""
        averaged = copy.deepcopy(self.template)
        state = averaged.state_dict()
        averaged.load_state_dict({k: self.average[k].to(state[k].dtype) if k in self.average
                                  else state[k] for k in state})
        return averaged


def train_step(model: Unit2Mel, optimizer: torch.optim.Optimizer, batch: Batch, lr: float,
               device: torch.device) -> dict[str, float]:
    model.train()
    set_learning_rate(optimizer, lr)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        predicted, mask = model(batch.units, batch.unit_lengths, batch.speakers,
                                batch.mel_lengths, batch.mel_start)
    loss, parts = mel_loss(predicted, batch.mels, mask)
    grad_norm = update(optimizer, loss, model.parameters())
    return {"loss": loss.item(), **parts, "grad_norm": grad_norm.item()}


@torch.no_grad()
def evaluate(model: Unit2Mel, examples: list[Example], budget_frames: float,
             device: torch.device) -> float:
    """Mean L1 + L2 per real mel frame over whole (uncropped) utterances; NaN without any."""
    if not examples:
        return float("nan")
    model.eval()
    total, frames = 0.0, 0
    for indices in whole_batches(examples, budget_frames):
        items = [(examples[i].units, examples[i].mel, 0) for i in indices]
        batch = collate(items, fixed_speakers([examples[i] for i in indices]),
                        model.pad_id).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            predicted, mask = model(batch.units, batch.unit_lengths, batch.speakers,
                                    batch.mel_lengths, batch.mel_start)
        loss, _ = mel_loss(predicted, batch.mels, mask)
        n = int(mask.sum())
        total, frames = total + float(loss) * n, frames + n
    return total / frames


def fixed_speakers(examples: list[Example]) -> torch.Tensor:
    """What whole utterances are decoded with: (B,) speaker indices, or (B, 256) their fixed
    prompts' d-vectors (``Example.prompt``)."""
    if examples and examples[0].prompt is not None:
        return torch.from_numpy(np.stack([e.prompt for e in examples]))  # (B, 256)
    return torch.tensor([e.speaker for e in examples])  # (B,)


def write_samples(checkpoint: Path, dev: list[Example], out_dir: Path, tracker: Tracker,
                  device: torch.device) -> None:
    """Decode a few dev utterances (of different speakers) through the finished vocoder, by
    their speaker's name or (d-vector conditioning) their prompt's d-vector, write their
    HiFi-GAN copy-synthesis beside them (the best the vocoder could sound), and plot predicted
    vs. true mels."""
    if not dev:
        return
    vocoder = UnitVocoder.load(checkpoint, device)
    first_of_speaker = {}
    for example in dev:
        first_of_speaker.setdefault(example.voice, example)
    chosen = list(first_of_speaker.values())[:SAMPLE_UTTERANCES]
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, figure = [], None
    for example in chosen:
        speaker = example.voice
        voice = example.prompt if example.prompt is not None else speaker
        predicted = vocoder.mel(example.units, voice).cpu()  # (N_MELS, M)
        true = example.mel.T.float()  # (M, N_MELS) -> (N_MELS, M)
        write_wav(out_dir / f"{example.id}.wav", vocoder.hifigan(predicted), vocoder.sample_rate)
        write_wav(out_dir / f"{example.id}.copy.wav", vocoder.hifigan(true), vocoder.sample_rate)
        frames = min(predicted.shape[1], true.shape[1])
        rows.append([example.id, speaker,
                     float((predicted[:, :frames] - true[:, :frames]).abs().mean())])
        if figure is None:
            figure = plot_mels(predicted, true, example.id, out_dir / "mels.png")
    tracker.log_table("vocoder/samples", ["id", "speaker", "mel_l1"], rows)
    tracker.log_figure("vocoder/mels", figure)


def plot_mels(predicted: torch.Tensor, true: torch.Tensor, title: str, path: Path) -> Path:
    """Two (N_MELS, M) log-mels, one above the other, on one colour scale."""
    import matplotlib  # noqa: PLC0415  (only this stage draws)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    low, high = float(true.min()), float(true.max())
    for ax, mel, name in zip(axes, (predicted, true), ("predicted from units", "true"),
                             strict=True):
        image = ax.imshow(mel.numpy(), origin="lower", aspect="auto", vmin=low, vmax=high)
        ax.set_ylabel("mel band")
        ax.set_title(f"{title}: {name}", fontsize=9)
    axes[-1].set_xlabel(f"frame ({MEL_RATE:.2f} Hz)")
    fig.colorbar(image, ax=axes, label="log magnitude")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path
