"""``vadusa train-durations``: the duration model (model/durations.py) on the aligner's
durations of the train split, checked on dev.

    <durations>/train.jsonl.gz + texts + speakers -> DurationModel -> MSE on log(1 + frames)
    -> <out>/durations.pt (weights + everything to use them: symbols, speakers, the symbols
       seen in training, dev errors) and last.pt (training state, for an exact resume)

One example in ten has its speaker replaced by "unknown speaker", so that id learns the
average voice's timing (used for speakers the model does not know).

Dev errors in frames: the mean absolute error per spoken symbol, and the error of each
utterance's total length in percent (what decides how long synthesis speaks).

Shapes: B batch, P text symbols.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from vadusa.checkpoint import save_checkpoint
from vadusa.config import Config
from vadusa.data.durations import read_durations
from vadusa.data.durations import read_meta as read_duration_meta
from vadusa.data.manifest import manifest_path, read_manifest
from vadusa.data.text import symbol_table
from vadusa.devices import resolve_device
from vadusa.model.aligner import spoken
from vadusa.model.durations import DurationConfig, DurationModel
from vadusa.tracking import open_tracker
from vadusa.training.common import seed_everything, set_learning_rate, update, warmup_cosine
from vadusa.training.resume import RunIdentity, resume_training_state, save_training_state

MODEL_KIND = "durations"
TRAIN_KIND = "durations-train"
LOG_EVERY = 10
SPEAKER_DROPOUT = 0.1


class DurationTrainError(ValueError):
    pass


@dataclass(frozen=True)
class Item:
    text: list[int]
    speaker: int  # index of a training speaker, or the "unknown speaker" (len(speakers))
    lead: int
    durations: list[int]
    id: str = ""
    voice: str = ""  # the speaker's name
    seconds: float = 0.0


def load_items(corpus_dir: Path, durations_dir: Path, split: str, speakers: list[str],
               open_speakers: bool = False) -> list[Item]:
    """The aligned utterances of a split whose speaker is a training speaker; with
    ``open_speakers`` the others too, as the "unknown speaker"."""
    meta = read_duration_meta(durations_dir)
    symbols = symbol_table(meta["text_frontend"])
    table = read_durations(durations_dir, split)
    index = {name: i for i, name in enumerate(speakers)}
    items = []
    for rec in read_manifest(manifest_path(corpus_dir, split)):
        found = table.get(rec.id)
        if found is None or (rec.speaker not in index and not open_speakers):
            continue
        text = symbols.encode(rec.normalized_text)
        if len(text) != len(found.durations):
            raise DurationTrainError(f"{rec.id}: {len(found.durations)} durations for "
                                     f"{len(text)} symbols; the durations in {durations_dir} "
                                     f"come from another text front end, rerun `vadusa align`")
        items.append(Item(text, index.get(rec.speaker, len(speakers)), found.lead,
                          list(found.durations), rec.id, rec.speaker, rec.duration))
    return items


def batch_of(model: DurationModel, items: list[Item], is_spoken: torch.Tensor,
             device: torch.device
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> inputs (B, 1 + P), speakers (B,), targets log(1 + frames) (B, 1 + P), and which
    slots are scored (B, 1 + P): the lead and the spoken symbols."""
    P = max(len(it.text) for it in items)
    inputs = torch.full((len(items), 1 + P), model.pad, dtype=torch.long)
    targets = torch.zeros(len(items), 1 + P)
    scored = torch.zeros(len(items), 1 + P, dtype=torch.bool)
    for b, it in enumerate(items):
        n = len(it.text)
        inputs[b, :1 + n] = model.inputs(it.text)
        targets[b, :1 + n] = torch.tensor([it.lead] + it.durations, dtype=torch.float).log1p()
        scored[b, 0] = True
        scored[b, 1:1 + n] = is_spoken[torch.tensor(it.text, dtype=torch.long)]
    speakers = torch.tensor([it.speaker for it in items])
    return inputs.to(device), speakers.to(device), targets.to(device), scored.to(device)


@torch.no_grad()
def dev_errors(model: DurationModel, items: list[Item], is_spoken: torch.Tensor
               ) -> dict[str, float]:
    model.eval()
    abs_errors, length_errors = [], []
    for it in items:
        lead, durations = model.predict(it.text, it.speaker, is_spoken)
        truth = np.array([it.lead] + it.durations)
        guess = np.array([lead] + durations)
        mask = np.array([True] + [bool(is_spoken[s]) for s in it.text])
        abs_errors += np.abs(guess - truth)[mask].tolist()
        length_errors.append(abs(guess.sum() - truth.sum()) / max(1, truth.sum()))
    return {"durations/dev_mae_frames": float(np.mean(abs_errors)),
            "durations/dev_length_error": float(np.mean(length_errors))}


@torch.no_grad()
def rate_errors(model: DurationModel, items: list[Item], is_spoken: torch.Tensor,
                max_prompt_seconds: float) -> dict[str, float]:
    """How well a voice's total length is planned, three ways, on a split's utterances: the
    error of each plan's total frames against the aligner's, in percent of those, averaged.

    - ``average``: the average voice (the "unknown speaker") as it is;
    - ``prompt_rate``: the average voice at the speaking rate of the utterance's zero-shot
      prompt (another utterance of the voice, ``data/prompts.py``), what synthesis does for a
      voice the model does not know (``decoding.speaking_rate: prompt``);
    - ``own``: the speaker's own embedding, for training speakers only.

    Keys are prefixed ``seen``/``unseen`` by whether the voice is a training speaker."""
    from vadusa.data.prompts import choose_prompts  # noqa: PLC0415

    model.eval()
    records = [_as_record(it) for it in items]
    pairs = choose_prompts(records, None, max_prompt_seconds)
    by_id = {it.id: it for it in items}
    unknown = model.cfg.n_speakers
    errors: dict[str, list[float]] = {}
    for it in items:
        truth = it.lead + sum(it.durations)
        group = "seen" if it.speaker != unknown else "unseen"
        plans = {"average": 1.0}
        prompt = by_id.get(pairs[it.id].prompt)
        if prompt is not None:
            plans["prompt_rate"] = model.prompt_rate(
                prompt.text, prompt.lead + sum(prompt.durations), unknown, is_spoken)
        for name, rate in plans.items():
            lead, durations = model.predict(it.text, unknown, is_spoken, rate)
            errors.setdefault(f"{group}/{name}", []).append(
                abs(lead + sum(durations) - truth) / max(1, truth))
        if group == "seen":
            lead, durations = model.predict(it.text, it.speaker, is_spoken)
            errors.setdefault("seen/own", []).append(abs(lead + sum(durations) - truth)
                                                     / max(1, truth))
    return {f"durations/dev_length_error/{k}": float(np.mean(v)) for k, v in errors.items()}


def _as_record(item: Item) -> Any:
    """A stand-in manifest record, all that ``choose_prompts`` reads of an utterance."""
    from types import SimpleNamespace  # noqa: PLC0415

    return SimpleNamespace(id=item.id, speaker=item.voice, duration=item.seconds,
                           normalized_text="")


def train_durations(cfg: Config, corpus_dir: Path, durations_dir: Path, out_dir: Path,
                    family: str | None = None) -> Path:
    """Train (or resume) the duration model; returns ``out_dir/durations.pt``."""
    corpus_dir, durations_dir, out_dir = Path(corpus_dir), Path(durations_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    d = cfg.durations
    meta = read_duration_meta(durations_dir)
    if meta["text_frontend"] != cfg.text.frontend:
        raise DurationTrainError(f"{durations_dir} aligns {meta['text_frontend']} symbols, the "
                                 f"config reads {cfg.text.frontend}: rerun `vadusa align`")
    speakers = sorted({r.speaker for r in read_manifest(manifest_path(corpus_dir, "train"))})
    train = load_items(corpus_dir, durations_dir, "train", speakers)
    dev_all = load_items(corpus_dir, durations_dir, "dev", speakers, open_speakers=True)
    dev = [it for it in dev_all if it.speaker < len(speakers)]
    if not train:
        raise DurationTrainError(f"no train durations in {durations_dir}")
    symbols = tuple(meta["symbols"])
    is_spoken = spoken(symbols)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    model = DurationModel(DurationConfig(n_symbols=len(symbols), n_speakers=len(speakers),
                                         dim=d.dim, layers=d.layers, kernel=d.kernel,
                                         dropout=d.dropout)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=d.lr, weight_decay=0.01)
    identity = {"family": meta["family"], "aligner": meta.get("aligner"),
                "symbols": list(symbols), "speakers": speakers, "seed": cfg.seed,
                "durations": {k: v for k, v in vars(d).items() if k != "checkpoint_every"}}
    run = RunIdentity(cfg.to_dict(), ("seed", "durations"), identity,
                      ("family", "aligner", "symbols", "speakers"))
    stateful = {"model": model, "optimizer": optimizer}
    saved = resume_training_state(out_dir, TRAIN_KIND, run, stateful, "train-durations",
                                  total_steps=d.steps)
    pos = dict(saved["position"]) if saved is not None else {"step": 0}
    family = family or meta["family"]

    with open_tracker(cfg, stage="train-durations", out_dir=out_dir, family=family) as tracker:
        progress = tqdm(total=d.steps, initial=pos["step"], desc=f"durations ({family})",
                        unit="step")
        window: list[float] = []
        while pos["step"] < d.steps:
            rng = random.Random(f"{cfg.seed}-{pos['step']}")
            chunk = [train[rng.randrange(len(train))] for _ in range(d.batch_size)]
            inputs, spk, targets, scored = batch_of(model, chunk, is_spoken, device)
            dropped = torch.tensor([rng.random() < SPEAKER_DROPOUT for _ in chunk],
                                   device=device)
            spk = torch.where(dropped, model.cfg.n_speakers, spk)
            lr = d.lr * warmup_cosine(pos["step"], d.warmup_steps, d.steps)
            set_learning_rate(optimizer, lr)
            model.train()
            loss = (model(inputs, spk) - targets)[scored].square().mean()
            update(optimizer, loss, model.parameters())
            pos["step"] += 1
            window.append(float(loss.detach()))
            progress.update(1)
            progress.set_postfix(mse=f"{window[-1]:.3f}")
            if pos["step"] % LOG_EVERY == 0:
                tracker.log({"durations/mse": float(np.mean(window)), "durations/lr": lr},
                            step=pos["step"])
                window.clear()
            if pos["step"] % d.checkpoint_every == 0 or pos["step"] == d.steps:
                save_training_state(out_dir, TRAIN_KIND, run, stateful, position=pos)
        progress.close()
        errors = dev_errors(model, dev, is_spoken) if dev else {}
        # the choice of decoding.speaking_rate, measured on dev (seen and unseen voices)
        errors |= rate_errors(model, dev_all, is_spoken, cfg.model.prompt_max_seconds)
        seen = sorted({s for it in train for s in it.text})
        save_checkpoint(out_dir / "durations.pt", kind=MODEL_KIND, config=cfg.to_dict(),
                        state=model.state_dict(),
                        meta=identity | {"model": dict(vars(model.cfg)), "seen": seen,
                                         "frame_rate": float(meta["frame_rate"]),
                                         "text_frontend": meta["text_frontend"],
                                         "dev": errors})
        tracker.log_summary(errors)
        print(" ".join(f"{k}={v:.3f}" for k, v in errors.items()), flush=True)
    return out_dir / "durations.pt"
