"""``vadusa align``: train the CTC phone recogniser on a family's tokens, then write the
durations of every utterance of every split (model/aligner.py says how).

    train tokens + texts -> PhoneRecognizer (CTC) -> forced alignment of each split
    -> <out>/{train,dev,test}.jsonl.gz (lead + frames per symbol), meta.json, qa.json,
       alignments.png (a few dev utterances: the spectrogram with its symbols' boundaries),
       aligner.pt (the recogniser) and last.pt (its training state, for an exact resume)

QA (``qa.json``): the recogniser's dev phone error rate (greedy CTC decoding against the spoken
symbols), how many utterances could not be aligned (they get evenly spread durations and are
counted), and the mean frames per spoken symbol.

Shapes: B batch, T frames, S symbols.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vadusa.atomic import write_text_atomic
from vadusa.checkpoint import file_digest, save_checkpoint
from vadusa.config import Config
from vadusa.data.durations import Durations, write_durations, write_meta
from vadusa.data.manifest import SPLITS, Utterance, manifest_path, read_manifest
from vadusa.data.text import SymbolTable, symbol_table
from vadusa.devices import resolve_device
from vadusa.model.aligner import (
    AlignerConfig,
    AlignmentError,
    PhoneRecognizer,
    ctc_targets,
    force_align,
    greedy_labels,
    spoken,
)
from vadusa.tokenizers.store import TokenSplit, read_meta
from vadusa.tracking import open_tracker
from vadusa.training.common import (
    bucketed_batches,
    seed_everything,
    set_learning_rate,
    update,
    warmup_cosine,
)
from vadusa.training.resume import RunIdentity, resume_training_state, save_training_state

MODEL_KIND = "aligner"
TRAIN_KIND = "aligner-train"
LOG_EVERY = 10


class AlignTrainError(ValueError):
    pass


@dataclass(frozen=True)
class Item:
    record: Utterance
    text: list[int]  # symbol ids of the normalized text
    tokens: np.ndarray  # (T,)
    labels: list[int]  # CTC targets: the spoken symbols + 1


def load_split(corpus_dir: Path, tokens_dir: Path, split: str, symbols: SymbolTable,
               is_spoken: torch.Tensor) -> list[Item]:
    store = TokenSplit(tokens_dir, split)
    items = []
    for rec in read_manifest(manifest_path(corpus_dir, split)):
        if rec.id not in store:  # an utterance the tokenizer skipped
            continue
        text = symbols.encode(rec.normalized_text)
        items.append(Item(rec, text, store.get(rec.id), ctc_targets(text, is_spoken)[0]))
    return items


def collate(items: list[Item], device: torch.device
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> tokens (B, T) right-padded, frame counts (B,), concatenated labels, label counts."""
    lengths = torch.tensor([len(it.tokens) for it in items])
    tokens = torch.zeros(len(items), int(lengths.max()), dtype=torch.long)
    for b, it in enumerate(items):
        tokens[b, :len(it.tokens)] = torch.from_numpy(it.tokens)
    labels = torch.tensor([x for it in items for x in it.labels], dtype=torch.long)
    counts = torch.tensor([len(it.labels) for it in items])
    return tokens.to(device), lengths.to(device), labels.to(device), counts.to(device)


def edit_distance(a: list[int], b: list[int]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


@torch.no_grad()
def log_probs_of(model: PhoneRecognizer, items: list[Item], device: torch.device,
                 batch: int = 16) -> list[torch.Tensor]:
    """(T_i, 1 + S) log-probabilities of each item, in order."""
    model.eval()
    out = []
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        tokens, lengths, _, _ = collate(chunk, device)
        lp = model(tokens, lengths).float().cpu()  # (B, T, 1 + S)
        out += [lp[b, :len(it.tokens)] for b, it in enumerate(chunk)]
    return out


def phone_error_rate(model: PhoneRecognizer, items: list[Item], device: torch.device
                     ) -> float:
    errors = total = 0
    for it, lp in zip(items, log_probs_of(model, items, device), strict=True):
        errors += edit_distance(it.labels, greedy_labels(lp))
        total += len(it.labels)
    return errors / max(1, total)


def even_durations(text: list[int], is_spoken: torch.Tensor, frames: int
                   ) -> tuple[int, list[int]]:
    """The fallback for an utterance that cannot be aligned: the frames spread evenly over
    its spoken symbols (no lead)."""
    where = [i for i, s in enumerate(text) if bool(is_spoken[s])]
    durations = [0] * len(text)
    if not where:
        return frames, durations
    bounds = np.linspace(0, frames, len(where) + 1).round().astype(int)
    for i, a, b in zip(where, bounds[:-1], bounds[1:], strict=True):
        durations[i] = int(b - a)
    return 0, durations


def train_aligner(cfg: Config, family: str, corpus_dir: Path, tokens_dir: Path,
                  out_dir: Path) -> Path:
    """Train (or resume) the recogniser, align every split; returns ``out_dir/qa.json``."""
    corpus_dir, tokens_dir, out_dir = Path(corpus_dir), Path(tokens_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    a = cfg.align
    meta = read_meta(tokens_dir)
    if meta["family"] != family:
        raise AlignTrainError(f"{tokens_dir} holds {meta['family']!r} tokens, not {family!r}")
    symbols = symbol_table(cfg.text.frontend)
    is_spoken = spoken(symbols.symbols)
    splits = {s: load_split(corpus_dir, tokens_dir, s, symbols, is_spoken) for s in SPLITS}
    train = [it for it in splits["train"] if it.labels and len(it.labels) < len(it.tokens)]
    if not train:
        raise AlignTrainError(f"no train utterances with tokens in {tokens_dir}")
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    model = PhoneRecognizer(AlignerConfig(n_tokens=int(meta["vocab_size"]),
                                          n_symbols=len(symbols), dim=a.dim,
                                          hidden=a.hidden)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    settings = {k: v for k, v in vars(a).items()
                if k not in ("checkpoint_every", "figure_utterances")}  # what changes weights
    identity = {"family": family, "tokens": meta.get("quantizer_sha256"),
                "symbols": list(symbols.symbols), "align": settings, "seed": cfg.seed}
    run = RunIdentity(cfg.to_dict(), ("seed", "align"), identity, ("family", "tokens", "symbols"))
    stateful = {"model": model, "optimizer": optimizer}
    saved = resume_training_state(out_dir, TRAIN_KIND, run, stateful, "align", total_steps=a.steps)
    pos = dict(saved["position"]) if saved is not None else {
        "step": 0, "epoch": 0, "batch_index": 0, "batch_seed": cfg.seed * 1000}
    lengths = [len(it.tokens) for it in train]

    with open_tracker(cfg, stage="align", out_dir=out_dir, family=family) as tracker:
        progress = tqdm(total=a.steps, initial=pos["step"], desc=f"align ({family})",
                        unit="step")
        batches = bucketed_batches(lengths, a.batch_frames, random.Random(pos["batch_seed"]))
        window: list[float] = []
        while pos["step"] < a.steps:
            if pos["batch_index"] >= len(batches):
                pos["epoch"] += 1
                pos["batch_index"] = 0
                pos["batch_seed"] = cfg.seed * 1000 + pos["epoch"]
                batches = bucketed_batches(lengths, a.batch_frames,
                                           random.Random(pos["batch_seed"]))
            tokens, frames, labels, counts = collate(
                [train[i] for i in batches[pos["batch_index"]]], device)
            pos["batch_index"] += 1
            lr = a.lr * warmup_cosine(pos["step"], a.warmup_steps, a.steps)
            set_learning_rate(optimizer, lr)
            model.train()
            log_probs = model(tokens, frames)  # (B, T, 1 + S)
            loss = F.ctc_loss(log_probs.transpose(0, 1), labels, frames, counts, blank=0,
                              zero_infinity=True)  # (T, B, 1 + S) in
            update(optimizer, loss, model.parameters())
            pos["step"] += 1
            window.append(float(loss.detach()))
            progress.update(1)
            progress.set_postfix(ctc=f"{window[-1]:.3f}")
            if pos["step"] % LOG_EVERY == 0:
                tracker.log({"align/ctc": float(np.mean(window)), "align/lr": lr},
                            step=pos["step"])
                window.clear()
            if pos["step"] % a.checkpoint_every == 0 or pos["step"] == a.steps:
                save_training_state(out_dir, TRAIN_KIND, run, stateful, position=pos)
        progress.close()

        started = time.perf_counter()
        dev = [it for it in splits["dev"] if it.labels]
        per = phone_error_rate(model, dev, device)
        failed: dict[str, int] = {}
        mean_frames: list[float] = []
        for split, items in splits.items():
            records, failed[split] = [], 0
            for it, lp in zip(items, log_probs_of(model, items, device), strict=True):
                try:
                    lead, durations = force_align(lp, it.text, is_spoken)
                except AlignmentError:
                    failed[split] += 1
                    lead, durations = even_durations(it.text, is_spoken, len(it.tokens))
                records.append(Durations(it.record.id, lead, tuple(durations)))
                n_spoken = sum(1 for d in durations if d > 0)
                if n_spoken:
                    mean_frames.append(sum(durations) / n_spoken)
            write_durations(out_dir, split, records)
        save_checkpoint(out_dir / "aligner.pt", kind=MODEL_KIND, config=cfg.to_dict(),
                        state=model.state_dict(),
                        meta=identity | {"aligner": dict(vars(model.cfg)), "dev_per": per})
        write_meta(out_dir, {"family": family, "frame_rate": float(meta["frame_rate"]),
                             "text_frontend": symbols.frontend,
                             "symbols": list(symbols.symbols),
                             "tokens": meta.get("quantizer_sha256"),
                             "aligner": file_digest(out_dir / "aligner.pt")})
        qa = {"family": family, "dev_phone_error_rate": per,
              "dev_utterances": len(dev), "unaligned": failed,
              "utterances": {s: len(v) for s, v in splits.items()},
              "mean_frames_per_spoken_symbol": float(np.mean(mean_frames)),
              "align_seconds": time.perf_counter() - started}
        figure = plot_alignments(model, splits["dev"][:a.figure_utterances], symbols,
                                 is_spoken, float(meta["frame_rate"]), device,
                                 out_dir / "alignments.png")
        if figure is not None:
            tracker.log_figure("align/alignments", figure)
        tracker.log_summary({"align/dev_per": per})
        write_text_atomic(out_dir / "qa.json", json.dumps(qa, indent=1) + "\n")
    return out_dir / "qa.json"


def plot_alignments(model: PhoneRecognizer, items: list[Item], symbols: SymbolTable,
                    is_spoken: torch.Tensor, frame_rate: float, device: torch.device,
                    path: Path) -> Path | None:
    """Each item's log-mel spectrogram with its spoken symbols' boundaries and labels."""
    if not items:
        return None
    from vadusa.data import audio  # noqa: PLC0415
    from vadusa.eval.figures import phone_spans, save_figure, stacked_panels  # noqa: PLC0415

    fig, axes = stacked_panels(len(items), 2.6)
    for ax, it, lp in zip(axes, items, log_probs_of(model, items, device), strict=True):
        wave, rate = audio.read(it.record.audio_path, it.record.offset, it.record.num_samples)
        try:
            lead, durations = force_align(lp, it.text, is_spoken)
        except AlignmentError:
            phone_spans(ax, wave, rate, f"{it.record.id}: could not be aligned", None,
                        frame_rate)
            continue
        phone_spans(ax, wave, rate, f"{it.record.id}: {it.record.normalized_text}",
                    (lead, [symbols.symbols[s] for s in it.text], durations), frame_rate)
    axes[-1].set_xlabel("seconds")
    return save_figure(fig, path)
