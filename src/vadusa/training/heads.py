"""Train draft heads: ``vadusa train-heads`` (VADUSA, base frozen) and ``vadusa train-joint``
(VADUSA-wt, base and heads together).

    base.pt + the same sequences as base training (training/tts.py)
    -> base hidden states (B, L, C) -> K draft heads -> logits (K, B, L, V)

Head k (1-based) at position i predicts the token the base predicts at position i + k, so
its targets are the base targets shifted left by k. Losses:

- frozen: sum over heads of their cross-entropies; the base runs without gradients in eval
  mode (the heads learn the features decoding will give them);
- with ``heads.distill`` (self-distillation, MEDUSA-2), a head's target at position i is the
  base's own distribution at position i + k instead of the data's token there: what decoding
  accepts is a token the *base* would sample, and the soft target says so with far less noise
  than one sampled token;
- joint: base CE + lambda_t * sum_k decay^k * CE_k (MEDUSA-2), lambda_t ramping up linearly
  over ``heads.head_weight_warmup`` steps so the fresh heads' large gradients do not wreck the
  base at the start; the heads' learning rate is ``head_lr_mult`` times the base's.

On the dev split we log per-head top-1..5 accuracy and store ``rank_acc[k][r]``, how often the
true token is head k's rank-r candidate: the acceptance table a greedy tree is built from when
no calibration file is given (``decoding/tree.py``). A resumed run continues exactly (weights,
optimizer, RNG, data position); a ``last.pt`` of another base model, mode, seed or setting of
``HeadsConfig.training_keys()`` (the keys the workflow retrains heads for) is moved aside
(``training/resume.py``).

Outputs in ``out_dir``: ``heads.pt`` (kind "vadusa": base weights, head weights and the base's
metadata plus ``meta["heads"]``) and ``last.pt`` (kind "vadusa-train").

Shapes: K heads, B batch, L padded length, C width, V output vocabulary, R ranks.
"""

from __future__ import annotations

import contextlib
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vadusa.checkpoint import file_digest, save_checkpoint
from vadusa.config import Config, HeadsConfig
from vadusa.devices import resolve_device
from vadusa.model.draft_heads import DraftHeads, HydraHeads, make_heads
from vadusa.model.loading import load_tts
from vadusa.model.transformer import causal_mask
from vadusa.model.tts import TTSVocab
from vadusa.tokenizers.store import read_meta
from vadusa.tracking import artifact_name, open_tracker
from vadusa.training.common import bucketed_batches, seed_everything, update, warmup_cosine
from vadusa.training.resume import RunIdentity, resume_training_state, save_training_state
from vadusa.training.sequences import TTSData, TTSTrainError, collate, collate_frames

MODEL_KIND = "vadusa"
TRAIN_KIND = "vadusa-train"
LOG_EVERY = 10
TOP = 5  # top-1..top-5 accuracy per head
# what a resumed run must share besides the seed and HeadsConfig.training_keys(), the
# settings the workflow retrains heads for (keys of meta; "base": the base model's digest)
RUN_INPUTS = ("heads.base", "heads.mode")


class HeadsTrainError(ValueError):
    pass


def head_losses(head_logits: torch.Tensor, targets: torch.Tensor, ranks: int,
                teacher: torch.Tensor | None = None
                ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """head_logits (K, B, L, V), base targets (B, L) -> per-head mean CE (K of them), rank
    counts (K, R) (how often the true token is each head's rank-r candidate) and the number
    of scored positions per head (K,). With ``teacher``, the base's logits (B, L, V), the CE
    is against the base's distribution at the target position (self-distillation)."""
    K, _, L, _ = head_logits.shape
    losses, hits, counts = [], torch.zeros(K, ranks), torch.zeros(K)
    for k in range(1, K + 1):
        shifted = targets[:, k:]  # (B, L - k): the target of position i + k, seen from i
        valid = shifted != -100
        logits = head_logits[k - 1, :, :L - k][valid].float()  # (n, V)
        true = shifted[valid]  # (n,)
        if len(true) == 0:
            losses.append(head_logits.sum() * 0)
            continue
        if teacher is None:
            losses.append(F.cross_entropy(logits, true))
        else:
            soft = teacher[:, k:][valid].detach().float().softmax(-1)  # (n, V)
            losses.append(-(soft * logits.log_softmax(-1)).sum(-1).mean())
        with torch.no_grad():
            rank = (logits > logits.gather(-1, true[:, None])).sum(-1)  # (n,) 0 = top-1
            hits[k - 1] += torch.bincount(rank.clamp_max(ranks), minlength=ranks + 1)[
                :ranks].float().cpu()
            counts[k - 1] += len(true)
    return losses, hits, counts


def _forward(model: torch.nn.Module, heads: DraftHeads | HydraHeads, inputs: torch.Tensor,
             targets: torch.Tensor, joint: bool, frames: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """-> base logits (B, L, V) and head logits (K, B, L, V); ``frames`` (B, L, F), the frame
    features of a model trained with durations. Hydra heads read the data's tokens after
    each position (``targets``, teacher forcing)."""
    B, L = inputs.shape
    pos = torch.arange(L, device=inputs.device).expand(B, L)
    mask = causal_mask(L, inputs.device).expand(B, L, L)
    with contextlib.nullcontext() if joint else torch.no_grad():
        hidden = model.hidden(inputs, pos, mask, frames=frames)  # (B, L, C)
    return model.head(hidden), heads(hidden, tokens=targets)


def _batch(examples: list, vocab: TTSVocab, device: torch.device
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """-> inputs, targets (B, L) and frame features (B, L, F) or None, on ``device``."""
    inputs, targets = collate(examples, vocab.speech_offset + vocab.pad)
    frames = collate_frames(examples)
    return (inputs.to(device), targets.to(device),
            None if frames is None else frames.to(device))


def train_heads(cfg: Config, base_path: Path, corpus_dir: Path, tokens_dir: Path,
                out_dir: Path, joint: bool = False, durations_dir: Path | None = None
                ) -> Path:
    """Train ``heads.count`` draft heads on a trained base model; resume from ``last.pt``.
    A base trained with durations needs them again (``durations_dir``, ``vadusa align``)."""
    h = cfg.heads
    base_path, out_dir = Path(base_path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    token_meta = read_meta(tokens_dir)
    device = resolve_device(cfg.device)
    bundle = load_tts(base_path, device, family=token_meta["family"],
                      vocab_size=int(token_meta["vocab_size"]))
    if bundle.meta.get("quantizer") not in (None, token_meta.get("quantizer_sha256")):
        raise HeadsTrainError(f"{base_path} was trained on tokens of another k-means than "
                              f"{tokens_dir}; retrain the base model or use its tokens")
    model, vocab = bundle.model, bundle.vocab
    prompt, speaker_embedding = bool(bundle.meta.get("prompt")), bool(
        bundle.meta.get("speaker_embedding", True))
    prompt_seconds = float(bundle.meta.get("prompt_max_seconds", cfg.model.prompt_max_seconds))
    timing = None
    if bundle.durations is not None:
        if durations_dir is None:
            raise HeadsTrainError(f"{base_path} reads frame features from durations: pass the "
                                  f"aligner's durations it was trained on (--durations)")
        timing = Path(durations_dir)
    try:
        train = TTSData(corpus_dir, tokens_dir, "train", bundle.symbols, bundle.speakers,
                        prompt_seconds, timing)
        dev = TTSData(corpus_dir, tokens_dir, "dev", bundle.symbols, bundle.speakers,
                      prompt_seconds, timing, open_speakers=not speaker_embedding)
    except TTSTrainError as exc:
        raise HeadsTrainError(str(exc)) from exc

    seed_everything(cfg.seed)
    V = model.cfg.output_size
    heads = make_heads(h.kind, h.count, model.cfg.dim, V, model.head,
                       model.embed.weight[vocab.speech_offset:vocab.speech_offset + V],
                       rank=h.rank).to(device)
    if joint:
        optimizer = torch.optim.AdamW(
            [{"params": model.parameters(), "lr_scale": 1.0},
             {"params": heads.parameters(), "lr_scale": h.head_lr_mult}],
            lr=h.joint_lr, betas=(0.9, 0.95), weight_decay=h.weight_decay)
        base_lr, steps = h.joint_lr, h.joint_steps
    else:
        model.requires_grad_(False)
        optimizer = torch.optim.AdamW([{"params": heads.parameters(), "lr_scale": 1.0}],
                                      lr=h.lr, betas=(0.9, 0.95), weight_decay=h.weight_decay)
        base_lr, steps = h.lr, h.steps
    mode = "joint" if joint else "frozen"
    keys = HeadsConfig.training_keys()
    meta = dict(bundle.meta) | {"heads": {
        "count": h.count, "kind": h.kind, "mode": mode, "base": file_digest(base_path),
        "settings": {k.removeprefix("heads."): getattr(h, k.removeprefix("heads."))
                     for k in keys}}}

    allowance = int(prompt_seconds * bundle.frame_rate + 40) if prompt else 0
    lengths = train.lengths(allowance)
    stage = "train-joint" if joint else "train-heads"
    run = RunIdentity(cfg.to_dict(), ("seed", *keys), meta, RUN_INPUTS)
    stateful = {"heads": heads, "optimizer": optimizer} | ({"model": model} if joint else {})
    saved = resume_training_state(out_dir, TRAIN_KIND, run, stateful, stage, total_steps=steps)
    pos = dict(saved["position"]) if saved is not None else {
        "step": 0, "epoch": 0, "batch_index": 0, "batch_seed": cfg.seed * 1000 + 500,
        "losses": []}
    batches = bucketed_batches(lengths, h.batch_tokens, random.Random(pos["batch_seed"]))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    with open_tracker(cfg, stage=stage, out_dir=out_dir, family=bundle.family,
                      setting=f"k{h.count}", tags=(mode,)) as tracker:
        tracker.use_artifact(base_path, artifact_name(cfg, base_path), "model")
        progress = tqdm(total=steps, initial=pos["step"], desc=f"{stage} ({bundle.family})",
                        unit="step")
        window: list[tuple[float, float]] = []
        started = time.perf_counter()
        while pos["step"] < steps:
            if pos["batch_index"] >= len(batches):
                pos["epoch"] += 1
                pos["batch_index"] = 0
                pos["batch_seed"] = cfg.seed * 1000 + 500 + pos["epoch"]
                batches = bucketed_batches(lengths, h.batch_tokens,
                                           random.Random(pos["batch_seed"]))
            rng = random.Random(f"{cfg.seed}-heads-{pos['step']}")
            examples = [train.example(i, vocab, rng, prompt, speaker_embedding, True)
                        for i in batches[pos["batch_index"]]]
            inputs, targets, frames = _batch(examples, vocab, device)
            pos["batch_index"] += 1
            scale = warmup_cosine(pos["step"], h.warmup_steps, steps)
            for group in optimizer.param_groups:
                group["lr"] = base_lr * scale * group["lr_scale"]
            model.train(joint)
            heads.train()
            with autocast:
                base_logits, head_logits = _forward(model, heads, inputs, targets, joint, frames)
                losses, _, _ = head_losses(head_logits, targets, 1,
                                           base_logits if h.distill else None)
                heads_loss = sum(losses)
                if joint:
                    valid = targets != -100
                    base_loss = F.cross_entropy(base_logits[valid].float(), targets[valid])
                    weight = h.head_weight * min(1.0, (pos["step"] + 1) / max(
                        1, h.head_weight_warmup))
                    loss = base_loss + weight * sum(
                        h.head_decay ** k * l for k, l in enumerate(losses, start=1))
                else:
                    base_loss = torch.zeros(())
                    loss = heads_loss
            update(optimizer, loss, max_norm=h.grad_clip)
            pos["step"] += 1
            pos["losses"].append(float(loss.detach()))
            window.append((float(heads_loss.detach()), float(base_loss.detach())))
            progress.update(1)
            progress.set_postfix(heads=f"{window[-1][0]:.3f}")
            if pos["step"] % LOG_EVERY == 0:
                record = {"train/heads_loss": float(np.mean([w[0] for w in window])),
                          "train/lr": base_lr * scale}
                if joint:
                    record["train/base_loss"] = float(np.mean([w[1] for w in window]))
                tracker.log(record, step=pos["step"])
                window.clear()
            if pos["step"] % h.eval_every == 0 or pos["step"] == steps:
                tracker.log(evaluate_heads(model, heads, dev, vocab, cfg, device, prompt,
                                           speaker_embedding)[0], step=pos["step"])
            if pos["step"] % h.checkpoint_every == 0 or pos["step"] == steps:
                save_training_state(out_dir, TRAIN_KIND, run, stateful, position=pos)
        progress.close()
        final, rank_acc = evaluate_heads(model, heads, dev, vocab, cfg, device, prompt,
                                         speaker_embedding)
        meta["heads"] |= {"dev": final, "rank_acc": rank_acc,
                          "seconds_per_step": (time.perf_counter() - started) / max(
                              1, len(pos["losses"]))}
        if joint:
            meta["dev"] = {"dev/loss": final["dev/base_loss"], "dev/acc": final["dev/base_acc"]}
        save_checkpoint(out_dir / "heads.pt", kind=MODEL_KIND, config=cfg.to_dict(),
                        state={"model": model.state_dict(), "heads": heads.state_dict()},
                        meta=meta)
        tracker.log_summary(final)
        heads_file = out_dir / "heads.pt"
        tracker.log_artifact(heads_file, artifact_name(cfg, heads_file), "model")
    return out_dir / "heads.pt"


@torch.no_grad()
def evaluate_heads(model: torch.nn.Module, heads: DraftHeads | HydraHeads, data: TTSData,
                   vocab: TTSVocab, cfg: Config, device: torch.device, prompt: bool,
                   speaker_embedding: bool
                   ) -> tuple[dict[str, float], list[list[float]]]:
    """Dev metrics (per-head CE and top-1..5 accuracy, the base's loss and accuracy) and the
    rank table ``rank_acc[k][r]`` on the first ``heads.eval_utterances`` of the split."""
    model.eval()
    heads.eval()
    h = cfg.heads
    ranks = max(TOP, h.top_ranks)
    n_eval = min(len(data), h.eval_utterances)
    rng = random.Random(cfg.seed)
    hits, counts = torch.zeros(len(heads), ranks), torch.zeros(len(heads))
    head_loss, base_loss, base_hits, base_n = torch.zeros(len(heads)), 0.0, 0.0, 0
    for start in range(0, n_eval, 8):
        examples = [data.example(i, vocab, rng, prompt, speaker_embedding)
                    for i in range(start, min(n_eval, start + 8))]
        inputs, targets, frames = _batch(examples, vocab, device)
        base_logits, head_logits = _forward(model, heads, inputs, targets, False, frames)
        losses, batch_hits, batch_counts = head_losses(head_logits, targets, ranks)
        head_loss += torch.tensor([float(x) for x in losses]) * batch_counts
        hits, counts = hits + batch_hits, counts + batch_counts
        valid = targets != -100
        n = int(valid.sum())
        base_loss += float(F.cross_entropy(base_logits[valid].float(), targets[valid])) * n
        base_hits += float((base_logits[valid].argmax(-1) == targets[valid]).sum())
        base_n += n
    rank_acc = (hits / counts.clamp_min(1)[:, None])  # (K, R)
    metrics = {"dev/base_loss": base_loss / base_n, "dev/base_acc": base_hits / base_n}
    for k in range(len(heads)):
        metrics[f"dev/head{k + 1}_loss"] = float(head_loss[k] / counts[k].clamp_min(1))
        for top in range(1, TOP + 1):
            metrics[f"dev/head{k + 1}_top{top}"] = float(rank_acc[k, :top].sum())
    return metrics, [[round(float(x), 6) for x in row[:h.top_ranks]] for row in rank_acc]

