"""Train the AR TTS model (``vadusa train-base``), resumably and exactly.

    corpus manifests (normalized text) -> text.frontend symbols (letters or phonemes)
    + token files
    -> sequences ``[spk] prompt-text text [bos] prompt-speech speech [eos]`` (model/tts.py)
    -> length-bucketed batches by a budget of padded positions -> Transformer -> CE

The prompt's speech tokens are targets too (``train.prompt_loss``): the prompt is a real
utterance of its own text, so its tokens teach the same mapping at no extra compute.

Alignment (``model.alignment``): ``none`` leaves the model to find its place in the text by
attention alone; ``guided`` adds the guided-attention loss below; ``duration`` gives every
speech position the frame features of its phone (model/tts.py) from the aligner's durations
(``vadusa align``), and stores the duration model (``vadusa train-durations``) in ``base.pt``,
which plans those features at synthesis.

Guided attention (``train.guide_weight``, with ``model.alignment: guided``): a small model on a
few hours of speech learns *what* speech sounds like long before it learns *which text* it is
saying; left alone it babbles plausible speech of the right length. DC-TTS's remedy is a
penalty on attention weights far from the diagonal of the text/speech alignment, ``W = 1 -
exp(-(t/P - q/Q)^2 / (2 sigma^2))`` for text position t of P and speech position q of Q. Here
it is put on head 0 of every layer but the first, separately for the prompt (prompt speech ->
prompt text) and the target (target speech -> target text); attending to anything but that text
costs 1. The other heads are free. At inference nothing changes: the guided heads have learned
to find their place by content.

The prompt of an utterance is another, short (``model.prompt_max_seconds``) utterance of the
same speaker, drawn per step from a generator seeded by (seed, step, utterance), so a resumed
run sees exactly the batches and prompts of an uninterrupted one; batches come from a
per-epoch seed, and the torch RNG (dropout) is saved in ``last.pt`` with the weights,
optimizer and data position. A ``last.pt`` of another run (other seed, ``model.*``,
``train.*`` other than evaluation cadence, tokens, speakers, symbols or durations) is moved
aside and training starts over (``training/resume.py``). The sequences, batches and losses are
in ``training/sequences.py``.

Outputs in ``out_dir``: ``base.pt`` (kind "tts": weights + everything needed to rebuild and
check the model: config, token family, vocabulary sizes, speakers, symbols, frame rate, code
version) and ``last.pt`` (kind "tts-train").

Shapes: B batch, L padded sequence length, V output vocabulary.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from vadusa.atomic import atomic_path
from vadusa.checkpoint import load_checkpoint, save_checkpoint
from vadusa.config import Config
from vadusa.data.durations import read_meta as read_duration_meta
from vadusa.data.manifest import manifest_path, read_manifest
from vadusa.data.text import SymbolTable, symbol_table
from vadusa.devices import resolve_device
from vadusa.model.transformer import Transformer, TransformerConfig, causal_mask
from vadusa.model.tts import TTSVocab, frame_feature_sizes
from vadusa.tokenizers.store import read_meta
from vadusa.tracking import NullTracker, artifact_name, open_tracker
from vadusa.training.common import (
    bucketed_batches,
    seed_everything,
    set_learning_rate,
    update,
    warmup_cosine,
)
from vadusa.training.resume import RunIdentity, resume_training_state, save_training_state
from vadusa.training.sequences import (
    TTSData,
    TTSTrainError,
    collate,
    collate_frames,
    corrupt_speech,
    guide_penalty,
    sequence_loss,
)

MODEL_KIND = "tts"
TRAIN_KIND = "tts-train"
LOG_EVERY = 10
# what a resumed run must have been trained on besides its settings (keys of base.pt's meta)
RUN_INPUTS = ("family", "vocab", "quantizer", "speakers", "symbols", "transformer",
              "durations.aligner")



def build_model(cfg: Config, vocab: TTSVocab) -> Transformer:
    m = cfg.model
    features = frame_feature_sizes(vocab.n_symbols) if m.alignment == "duration" else ()
    return Transformer(TransformerConfig(
        vocab_size=vocab.input_size, output_size=vocab.output_size, dim=m.dim,
        layers=m.layers, heads=m.heads, ffn_mult=m.ffn_mult, max_seq=m.max_seq,
        dropout=m.dropout, frame_features=features))


def duration_model_meta(path: Path, durations_dir: Path, symbols: SymbolTable,
                        speakers: list[str]) -> dict[str, Any]:
    """The duration model as ``base.pt`` carries it (weights in the metadata), checked against
    the durations the base trains on and its symbols and speakers."""
    blob = load_checkpoint(path, kind="durations")
    meta = blob["meta"]
    aligned = read_duration_meta(durations_dir)
    problems = []
    if meta.get("aligner") != aligned.get("aligner"):
        problems.append(f"it was trained on other durations than those in {durations_dir}")
    if list(meta["symbols"]) != list(symbols.symbols):
        problems.append("its text symbols differ")
    if list(meta["speakers"]) != list(speakers):
        problems.append("its speakers differ")
    if problems:
        raise TTSTrainError(f"duration model {path} does not fit this run: "
                            f"{'; '.join(problems)}; rerun `vadusa train-durations`")
    return {"model": meta["model"], "state": blob["state"], "seen": meta["seen"],
            "dev": meta.get("dev", {}), "aligner": meta.get("aligner")}


def train_base(cfg: Config, family: str, corpus_dir: Path, tokens_dir: Path,
               out_dir: Path, stage: str = "train-base", durations_dir: Path | None = None,
               duration_model: Path | None = None) -> Path:
    """Train the AR model on ``family`` tokens; resume from ``out_dir/last.pt`` if present.
    ``stage`` names the run in tracking and the progress bar (``train-draft`` for a draft).
    With ``model.alignment: duration``, ``durations_dir`` (``vadusa align``) and
    ``duration_model`` (``vadusa train-durations``) are required."""
    corpus_dir, tokens_dir, out_dir = Path(corpus_dir), Path(tokens_dir), Path(out_dir)
    with_durations = cfg.model.alignment == "duration"
    if with_durations and (durations_dir is None or duration_model is None):
        raise TTSTrainError("model.alignment: duration needs the aligner's durations "
                            "(--durations, from `vadusa align`) and the duration model "
                            "(--duration-model, from `vadusa train-durations`)")
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = read_meta(tokens_dir)
    if meta["family"] != family:
        raise TTSTrainError(f"{tokens_dir} holds {meta['family']!r} tokens, not {family!r}")
    symbols = symbol_table(cfg.text.frontend)
    train_records = read_manifest(manifest_path(corpus_dir, "train"))
    speakers = sorted({r.speaker for r in train_records})
    vocab = TTSVocab(n_symbols=len(symbols), n_units=int(meta["vocab_size"]),
                     n_speakers=len(speakers))
    m, t = cfg.model, cfg.train
    timing = Path(durations_dir) if with_durations else None
    train = TTSData(corpus_dir, tokens_dir, "train", symbols, speakers, m.prompt_max_seconds,
                    timing)
    # a model without a speaker embedding is validated on every dev voice, unseen ones too
    dev = TTSData(corpus_dir, tokens_dir, "dev", symbols, speakers, m.prompt_max_seconds,
                  timing, open_speakers=not m.speaker_embedding)
    allowance = int(m.prompt_max_seconds * float(meta["frame_rate"]) + 40) if m.prompt else 0
    too_long = [u.id for u, n in zip(train.items, train.lengths(allowance), strict=True)
                if n > m.max_seq]
    if too_long:
        raise TTSTrainError(f"{len(too_long)} train sequences exceed model.max_seq={m.max_seq} "
                            f"(e.g. {too_long[0]}); raise it or lower corpus.max_duration")

    dist = Distributed.from_env(resolve_device(cfg.device))
    device = dist.device
    seed_everything(cfg.seed)
    model = build_model(cfg, vocab).to(device)  # same initial weights on every rank
    seed_everything(cfg.seed + dist.rank)  # then each rank its own dropout noise
    net = dist.wrap(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, betas=(0.9, 0.95),
                                  weight_decay=t.weight_decay)
    model_meta = {"family": family, "vocab": dict(vars(vocab)),
                  "quantizer": meta.get("quantizer_sha256"), "speakers": speakers,
                  "symbols": list(symbols.symbols), "text_frontend": symbols.frontend,
                  "frame_rate": float(meta["frame_rate"]),
                  "transformer": dict(vars(model.cfg)), "prompt": m.prompt,
                  "speaker_embedding": m.speaker_embedding,
                  "prompts": train.default_prompts(speakers) if m.prompt else {},
                  "alignment": m.alignment}
    if with_durations:
        model_meta["durations"] = duration_model_meta(Path(duration_model), timing, symbols,
                                                      speakers)
    # a last.pt of another run (other tokens, model or training settings) is moved aside
    run = RunIdentity(cfg.to_dict(), ("seed", "model", "train"), model_meta, RUN_INPUTS)
    stateful = {"model": model, "optimizer": optimizer}
    saved = resume_training_state(out_dir, TRAIN_KIND, run, stateful, stage, main=dist.is_main,
                                  total_steps=t.steps)
    pos = dict(saved["position"]) if saved is not None else {
        "step": 0, "epoch": 0, "batch_index": 0, "batch_seed": cfg.seed * 1000, "losses": []}
    lengths = train.lengths(allowance)
    batches = bucketed_batches(lengths, t.batch_tokens, random.Random(pos["batch_seed"]))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    probe_layers = tuple(range(1, m.layers))  # head 0 of every layer but the first
    guide_layers = probe_layers if m.alignment == "guided" else ()

    tracking = open_tracker(cfg, stage=stage, out_dir=out_dir, family=family) if dist.is_main \
        else contextlib.nullcontext(NullTracker())
    with tracking as tracker:
        progress = tqdm(total=t.steps, initial=pos["step"],
                        desc=f"{stage.replace('-', ' ')} ({family})",
                        unit="step", disable=not dist.is_main)
        window: list[tuple[float, float, float]] = []
        started = time.perf_counter()
        while pos["step"] < t.steps:
            if pos["batch_index"] + dist.world > len(batches):  # each rank takes one batch
                pos["epoch"] += 1
                pos["batch_index"] = 0
                pos["batch_seed"] = cfg.seed * 1000 + pos["epoch"]
                batches = bucketed_batches(lengths, t.batch_tokens,
                                           random.Random(pos["batch_seed"]))
            rng = random.Random(f"{cfg.seed}-{pos['step']}")
            examples = [train.example(i, vocab, rng, m.prompt, m.speaker_embedding,
                                      t.prompt_loss)
                        for i in batches[pos["batch_index"] + dist.rank]]
            inputs, targets = collate(examples, vocab.speech_offset + vocab.pad)
            frames = collate_frames(examples)
            inputs = corrupt_speech(inputs, vocab, t.token_noise,
                                    torch.Generator().manual_seed(cfg.seed * 100003 + pos["step"]))
            guide = None
            if t.guide_weight > 0 and guide_layers:
                W, rows = guide_penalty(examples, inputs.shape[1], t.guide_sigma)
                guide = (W.to(device), rows.to(device))
            pos["batch_index"] += dist.world
            lr = t.lr * warmup_cosine(pos["step"], t.warmup_steps, t.steps)
            set_learning_rate(optimizer, lr)
            model.train()
            with autocast:
                loss, correct, guide_loss = sequence_loss(
                    net, inputs.to(device), targets.to(device), guide, guide_layers,
                    None if frames is None else frames.to(device))
            update(optimizer, loss + t.guide_weight * guide_loss, model.parameters(),
                   t.grad_clip)
            pos["step"] += 1
            n = int((targets != -100).sum())
            pos["losses"].append(float(loss.detach()))
            window.append((float(loss.detach()), float(correct) / n, float(guide_loss.detach())))
            progress.update(1)
            progress.set_postfix(loss=f"{pos['losses'][-1]:.3f}")
            if pos["step"] % LOG_EVERY == 0:
                tracker.log({"train/loss": float(np.mean([w[0] for w in window])),
                             "train/acc": float(np.mean([w[1] for w in window])),
                             "train/guide": float(np.mean([w[2] for w in window])),
                             "train/lr": lr},
                            step=pos["step"])
                window.clear()
            if dist.is_main and (pos["step"] % t.eval_every == 0 or pos["step"] == t.steps):
                tracker.log(evaluate(model, dev, vocab, cfg, device), step=pos["step"])
            if dist.is_main and (pos["step"] % t.checkpoint_every == 0
                                 or pos["step"] == t.steps):
                save_training_state(out_dir, TRAIN_KIND, run, stateful, position=pos)
        progress.close()
        if not dist.is_main:
            dist.close()
            return out_dir / "base.pt"
        final = evaluate(model, dev, vocab, cfg, device)
        if probe_layers:
            figure = plot_alignment(model, dev, vocab, cfg, device, probe_layers,
                                    out_dir / "alignment.png")
            tracker.log_figure("train-base/alignment", figure)
        model_meta["dev"] = final
        model_meta["seconds_per_step"] = (time.perf_counter() - started) / max(1, len(
            pos["losses"]))
        # DDP processes: each step trained on this many batches (the GPUs of a multi-GPU
        # job, training/launch.py), so the same config trains another model on another count
        model_meta["processes"] = dist.world
        save_checkpoint(out_dir / "base.pt", kind=MODEL_KIND, config=cfg.to_dict(),
                        state=model.state_dict(), meta=model_meta)
        tracker.log_summary(final)
        tracker.log_artifact(out_dir / "base.pt", artifact_name(cfg, out_dir / "base.pt"), "model")
    dist.close()
    return out_dir / "base.pt"


@torch.no_grad()
def evaluate(model: Transformer, data: TTSData, vocab: TTSVocab, cfg: Config,
             device: torch.device) -> dict[str, float]:
    """Validation loss and top-1 accuracy on the first ``train.eval_utterances`` of a split,
    with fixed prompts (seeded by the configuration's seed); and ``dev/text_gain``, how much
    the loss rises when each utterance's speech follows the next utterance's text: near 0, the
    model ignores the text (it babbles); it grows as the model learns to read. A model with
    durations has no text gain: its frame features come from its own text's durations."""
    model.eval()
    n_eval = min(len(data), cfg.train.eval_utterances)
    result: dict[str, float] = {}
    probes = [None] if data.items[0].durations is not None else [None,
                                                                 lambda i: (i + 1) % n_eval]
    for text_of in probes:
        rng = random.Random(cfg.seed)
        total_loss = total_correct = total = 0.0
        for start in range(0, n_eval, 8):
            examples = [data.example(i, vocab, rng, cfg.model.prompt, cfg.model.speaker_embedding,
                                     text_of=None if text_of is None else text_of(i))
                        for i in range(start, min(n_eval, start + 8))]
            inputs, targets = collate(examples, vocab.speech_offset + vocab.pad)
            frames = None if text_of is not None else collate_frames(examples)
            loss, correct, _ = sequence_loss(model, inputs.to(device), targets.to(device),
                                             frames=None if frames is None else frames.to(device))
            n = int((targets != -100).sum())
            total_loss += float(loss) * n
            total_correct += float(correct)
            total += n
        if text_of is None:
            result = {"dev/loss": total_loss / total, "dev/acc": total_correct / total}
        else:
            result["dev/text_gain"] = total_loss / total - result["dev/loss"]
    return result


@torch.no_grad()
def plot_alignment(model: Transformer, data: TTSData, vocab: TTSVocab, cfg: Config,
                   device: torch.device, layers: tuple[int, ...], path: Path) -> Path:
    """Head 0's attention from the first dev utterance's speech to its text, one panel per
    layer in ``layers``: a diagonal means the model reads the text as it speaks."""
    import matplotlib  # noqa: PLC0415  (only this stage draws)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    model.eval()
    example = data.example(0, vocab, random.Random(cfg.seed), cfg.model.prompt,
                           cfg.model.speaker_embedding)
    inputs = example.input_ids[None].to(device)  # (1, L)
    probes: dict[int, torch.Tensor | None] = {i: None for i in layers}
    L = inputs.shape[1]
    model(inputs, torch.arange(L, device=device)[None], causal_mask(L, device)[None],
          probes=probes, frames=None if example.frames is None else example.frames[None].to(
              device))
    t0, t1, q0, q1 = example.segments[-1]
    fig, axes = plt.subplots(1, len(layers), figsize=(4 * len(layers), 3.5), squeeze=False)
    for ax, layer in zip(axes[0], layers, strict=True):
        weights = probes[layer][0, q0:q1, t0:t1].float().cpu().numpy()  # (Q, P)
        ax.imshow(weights.T, origin="lower", aspect="auto", interpolation="nearest")
        ax.set_title(f"layer {layer}, head 0")
        ax.set_xlabel("speech token")
        ax.set_ylabel("text symbol")
    fig.suptitle(f"attention to the text: {data.items[0].id}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


@dataclass
class Distributed:
    """torchrun's environment: one process per device, gradients averaged by DDP (gloo on
    CPUs, nccl on GPUs). Every rank builds the same batch list; at each step rank r takes the
    r-th of the next ``world`` batches. Rank 0 evaluates, logs and writes checkpoints; an
    exact resume is guaranteed for single-process runs."""

    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls(0, 1, device)
        rank = int(os.environ["RANK"])
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(rank, world, device)

    def wrap(self, model: Transformer) -> torch.nn.Module:
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel  # noqa: PLC0415

        return DistributedDataParallel(model, device_ids=[self.device.index]
                                       if self.device.type == "cuda" else None)

    def close(self) -> None:
        if self.world > 1:
            torch.distributed.destroy_process_group()
