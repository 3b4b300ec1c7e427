"""``vadusa train-nar``: the NAR stage of an acoustic family (model/nar.py) on the train split's
codes, checked on dev.

    <tokens>/<split>.codes.bin (every codebook) + texts + speakers -> CodebookNAR
    -> cross-entropy of codebook k (one stage k in 2..N drawn per batch) given codebooks 1..k-1,
       + ``nar.residual_weight`` x the squared distance of the expected entry (the codebook's
       entries weighted by the predicted probabilities) to the true one, relative to the mean
       square of the codebook's entries
    (``nar.target: residual``: the squared error of one regression of what codebooks 2..N add,
    relative to its mean square, instead of the stages; melrvq with ``nar.mel_stage``: the
    unit-to-mel recipe, ``training/vocoder.py`` with ``vocoder.*``, on codebook 1 and the
    recordings' log-mels, its weights and the family's codebook entries then written as nar.pt)
    -> <out>/nar.pt (weights + what synthesis needs: symbols, speakers, codebooks, the quantizer
       it was trained on, dev accuracy per stage) and last.pt (training state, exact resume)

One example in ten has its speaker replaced by "unknown speaker", so that id learns an average
voice (used for speakers the model does not know). Dev accuracy of stage k is teacher-forced:
codebooks 1..k-1 are the true ones.

Shapes: B batch, P text symbols, F frames, N codebooks, K entries per codebook.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vadusa.checkpoint import load_checkpoint, save_checkpoint
from vadusa.config import Config
from vadusa.data.manifest import manifest_path, read_manifest
from vadusa.data.text import SymbolTable, symbol_table
from vadusa.devices import resolve_device
from vadusa.model.nar import MEL_TARGET, MODEL_KIND, CodebookNAR, NARError, NARModelConfig
from vadusa.tokenizers.mel import FAMILY as MEL_FAMILY
from vadusa.tokenizers.registry import code_vectors
from vadusa.tokenizers.residual import nearest
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

TRAIN_KIND = "nar-train"
LOG_EVERY = 10
SPEAKER_DROPOUT = 0.1


@dataclass(frozen=True)
class Item:
    text: list[int]
    speaker: int
    codes: np.ndarray  # (F, N)


def load_items(corpus_dir: Path, tokens_dir: Path, split: str, symbols: SymbolTable,
               speakers: list[str]) -> list[Item]:
    store = TokenSplit(tokens_dir, split)
    if store.codebooks < 2:
        raise NARError(f"{tokens_dir} holds one codebook per frame: the NAR stage is for "
                       "acoustic families (encodec, melrvq) tokenized with all their codebooks")
    records = {r.id: r for r in read_manifest(manifest_path(corpus_dir, split))}
    index = {name: i for i, name in enumerate(speakers)}
    items = []
    for i, utt_id in enumerate(store.ids):
        rec = records.get(utt_id)
        if rec is None or rec.speaker not in index or store.lengths[i] == 0:
            continue  # tokens of another corpus version, or a speaker unseen in training
        items.append(Item(symbols.encode(rec.normalized_text), index[rec.speaker],
                          store.codes(i)))
    return items


@dataclass
class StageScore:
    loss: torch.Tensor  # what training minimises
    right: int  # frames whose argmax is the true entry
    residual: float  # summed relative squared error of the expected entry (0 without vectors)


def batch_of(model: CodebookNAR, items: list[Item], device: torch.device
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> text (B, P) and codes (B, F, N), right-padded, and speakers (B,)."""
    P = max(len(it.text) for it in items)
    F_ = max(len(it.codes) for it in items)
    text = torch.full((len(items), P), model.symbol_pad, dtype=torch.long)
    codes = torch.full((len(items), F_, model.cfg.codebooks), model.code_pad, dtype=torch.long)
    for b, it in enumerate(items):
        text[b, :len(it.text)] = torch.tensor(it.text, dtype=torch.long)
        codes[b, :len(it.codes)] = torch.from_numpy(it.codes)
    speakers = torch.tensor([it.speaker for it in items])
    return text.to(device), codes.to(device), speakers.to(device)


def stage_loss(model: CodebookNAR, text: torch.Tensor, codes: torch.Tensor,
               speakers: torch.Tensor, stage: int, residual_weight: float = 0.0) -> StageScore:
    """Cross-entropy of codebook ``stage`` over the real frames (+ the weighted expected-entry
    error where the model holds its codebooks' entries), and how many it got right."""
    logits = model(text, codes, speakers, stage)  # (B, F, K)
    target = codes[..., stage - 1]  # (B, F)
    real = target != model.code_pad
    logits, target = logits[real].float(), target[real]  # (R, K), (R,): the real frames
    loss = F.cross_entropy(logits, target)
    residual = torch.zeros(())
    if model.cfg.vector_dim:
        book = model.vectors[stage - 1]  # (K, D)
        error = (model.expected(logits, stage) - book[target]).square().sum(-1)  # (R,)
        residual = error / book.square().sum(-1).mean()  # relative to an entry's mean square
        if residual_weight:
            loss = loss + residual_weight * residual.mean()
    return StageScore(loss, int((logits.argmax(-1) == target).sum()),
                      float(residual.detach().sum()))


def residual_loss(model: CodebookNAR, text: torch.Tensor, codes: torch.Tensor,
                  speakers: torch.Tensor, count_right: bool = True) -> StageScore:
    """A regression's squared error on the real frames, relative to the mean square of what
    codebooks 2..N add (``CodebookNAR.residual_scale``); ``right`` counts frames whose
    re-quantized codebook 2 is the true one (a search of codebook 2 per frame: dev only, not
    every training step, with ``count_right`` off)."""
    real = codes[..., 0] != model.code_pad  # (B, F)
    guess = model.residual(text, codes, speakers)[real]  # (R, D)
    truth = model.true_residual(codes)[real]  # (R, D)
    error = (guess.float() - truth).square().sum(-1) / model.residual_scale().square()  # (R,)
    right = 0
    if count_right:
        with torch.no_grad():
            second = nearest(guess.detach(), model.vectors[1])[0]  # (R,): codebook 2's entry
            right = int((second == codes[..., 1][real]).sum())
    return StageScore(error.mean(), right, float(error.detach().sum()))


@torch.no_grad()
def dev_accuracy(model: CodebookNAR, items: list[Item], device: torch.device,
                 batch: int = 16) -> dict[str, float]:
    """Teacher-forced accuracy of each stage on ``items`` and their mean; with codebook
    entries, also the mean relative error of the expected entry (1.0: no better than zero)."""
    model.eval()
    frames = max(1, sum(len(it.codes) for it in items))
    if model.cfg.regression:  # one pass: its relative error, and codebook 2 re-quantized
        right_2, error = 0, 0.0
        for start in range(0, len(items), batch):
            score = residual_loss(model, *batch_of(model, items[start:start + batch], device))
            right_2, error = right_2 + score.right, error + score.residual
        return {"nar/dev_acc_2": right_2 / frames, "nar/dev_residual": error / frames}
    right: dict[int, int] = {}
    residual: dict[int, float] = {}
    for stage in range(2, model.cfg.codebooks + 1):
        right[stage], residual[stage] = 0, 0.0
        for start in range(0, len(items), batch):
            text, codes, speakers = batch_of(model, items[start:start + batch], device)
            score = stage_loss(model, text, codes, speakers, stage)
            right[stage] += score.right
            residual[stage] += score.residual
    scores = {f"nar/dev_acc_{k}": v / frames for k, v in right.items()}
    scores["nar/dev_acc"] = float(np.mean([v / frames for v in right.values()]))
    if model.cfg.vector_dim:
        scores |= {f"nar/dev_residual_{k}": v / frames for k, v in residual.items()}
        scores["nar/dev_residual"] = float(np.mean([v / frames for v in residual.values()]))
    return scores


def train_nar(cfg: Config, family: str, corpus_dir: Path, tokens_dir: Path,
              out_dir: Path) -> Path:
    """Train (or resume) the NAR stage of ``family``; returns ``out_dir/nar.pt``."""
    corpus_dir, tokens_dir, out_dir = Path(corpus_dir), Path(tokens_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = cfg.nar
    meta = read_meta(tokens_dir)
    if meta.get("family") != family:
        raise NARError(f"{tokens_dir} holds {meta.get('family')!r} tokens, not {family!r}")
    if n.mel_stage and family == MEL_FAMILY:
        return train_mel_stage(cfg, family, corpus_dir, tokens_dir, out_dir)
    symbols = symbol_table(cfg.text.frontend)
    speakers = sorted({r.speaker for r in read_manifest(manifest_path(corpus_dir, "train"))})
    train = load_items(corpus_dir, tokens_dir, "train", symbols, speakers)
    dev = load_items(corpus_dir, tokens_dir, "dev", symbols, speakers)
    if not train:
        raise NARError(f"no train codes in {tokens_dir} for the speakers of {corpus_dir}")
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    # the codebooks' entries, where the loss, the target or the decoding needs them
    vectors = (code_vectors(cfg, family, tokens_dir)
               if n.residual_weight > 0 or n.decoding == "expected" or n.entry_input
               or n.target == "residual" else None)  # (N, K, D)
    model = CodebookNAR(NARModelConfig(
        n_symbols=len(symbols), n_speakers=len(speakers), codebooks=int(meta["codebooks"]),
        entries=int(meta["vocab_size"]), dim=n.dim, layers=n.layers, heads=n.heads,
        dropout=n.dropout, vector_dim=0 if vectors is None else int(vectors.shape[-1]),
        entry_input=n.entry_input, regression=n.target == "residual"))
    if vectors is not None:
        if tuple(vectors.shape[:2]) != (model.cfg.codebooks, model.cfg.entries):
            raise NARError(f"the {family} quantizer has {tuple(vectors.shape[:2])} codebooks x "
                           f"entries, the codes in {tokens_dir} "
                           f"{(model.cfg.codebooks, model.cfg.entries)}: retokenize")
        model.vectors.copy_(vectors)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=n.lr, weight_decay=0.01)
    identity = {"family": family, "quantizer_sha256": meta.get("quantizer_sha256"),
                "symbols": list(symbols.symbols), "text_frontend": symbols.frontend,
                "speakers": speakers, "seed": cfg.seed,
                "nar": {k: v for k, v in vars(n).items() if k != "checkpoint_every"}}
    run = RunIdentity(cfg.to_dict(), ("seed", "nar", "text.frontend"), identity,
                      ("family", "quantizer_sha256", "symbols", "speakers"))
    stateful = {"model": model, "optimizer": optimizer}
    saved = resume_training_state(out_dir, TRAIN_KIND, run, stateful, "train-nar",
                                  total_steps=n.steps)
    pos = dict(saved["position"]) if saved is not None else {
        "step": 0, "epoch": 0, "batch_index": 0}
    lengths = [len(it.codes) for it in train]

    with open_tracker(cfg, stage="train-nar", out_dir=out_dir, family=family) as tracker:
        progress = tqdm(total=n.steps, initial=pos["step"], desc=f"NAR ({family})", unit="step")
        window: list[tuple[float, float, float]] = []
        batches = bucketed_batches(lengths, n.batch_frames,
                                   random.Random(f"{cfg.seed}-nar-{pos['epoch']}"))
        while pos["step"] < n.steps:
            if pos["batch_index"] >= len(batches):
                pos["epoch"] += 1
                pos["batch_index"] = 0
                batches = bucketed_batches(lengths, n.batch_frames,
                                           random.Random(f"{cfg.seed}-nar-{pos['epoch']}"))
            rng = random.Random(f"{cfg.seed}-nar-step-{pos['step']}")
            chunk = [train[i] for i in batches[pos["batch_index"]]]
            pos["batch_index"] += 1
            text, codes, spk = batch_of(model, chunk, device)
            dropped = torch.tensor([rng.random() < SPEAKER_DROPOUT for _ in chunk],
                                   device=device)
            spk = torch.where(dropped, model.cfg.n_speakers, spk)
            stage = rng.randint(2, model.cfg.codebooks)
            lr = n.lr * warmup_cosine(pos["step"], n.warmup_steps, n.steps)
            set_learning_rate(optimizer, lr)
            model.train()
            score = (residual_loss(model, text, codes, spk, count_right=False)
                     if model.cfg.regression
                     else stage_loss(model, text, codes, spk, stage, n.residual_weight))
            update(optimizer, score.loss, model.parameters())
            pos["step"] += 1
            frames = int((codes[..., 0] != model.code_pad).sum())
            window.append((float(score.loss.detach()), score.right / frames,
                           score.residual / frames))
            progress.update(1)
            progress.set_postfix(loss=f"{window[-1][0]:.3f}")
            if pos["step"] % LOG_EVERY == 0:
                logged = {"nar/loss": float(np.mean([w[0] for w in window])), "nar/lr": lr}
                if not model.cfg.regression:  # (a regression's accuracy is dev's alone)
                    logged["nar/acc"] = float(np.mean([w[1] for w in window]))
                if model.cfg.vector_dim:
                    logged["nar/residual"] = float(np.mean([w[2] for w in window]))
                tracker.log(logged, step=pos["step"])
                window.clear()
            if pos["step"] % n.checkpoint_every == 0 or pos["step"] == n.steps:
                save_training_state(out_dir, TRAIN_KIND, run, stateful, position=pos)
        progress.close()
        scores = dev_accuracy(model, dev, device) if dev else {}
        save_checkpoint(out_dir / "nar.pt", kind=MODEL_KIND, config=cfg.to_dict(),
                        state=model.state_dict(),
                        meta=identity | {"model": dict(vars(model.cfg)),
                                         "frame_rate": float(meta["frame_rate"]), "dev": scores})
        tracker.log_summary(scores)
        print(" ".join(f"{k}={v:.3f}" for k, v in scores.items()), flush=True)
    return out_dir / "nar.pt"


def train_mel_stage(cfg: Config, family: str, corpus_dir: Path, tokens_dir: Path,
                    out_dir: Path) -> Path:
    """melrvq's mel stage (``nar.mel_stage``): train (or resume) the unit-to-mel network on
    codebook 1 in ``out_dir`` (its unit2mel.pt and last.pt: ``vadusa train-vocoder``'s recipe
    and resume), then write nar.pt: its weights, what it was trained on, and the family's
    codebook entries (``MelStage.fill`` re-quantizes its mel with them)."""
    from vadusa.training.vocoder import train_vocoder  # noqa: PLC0415  (a heavy import)
    from vadusa.vocoder import CHECKPOINT_KIND as UNIT2MEL_KIND  # noqa: PLC0415

    if family != MEL_FAMILY:
        raise NARError(f"a mel stage regresses log-mels, which only the {MEL_FAMILY!r} family "
                       f"decodes, not {family!r}")
    meta = read_meta(tokens_dir)
    vectors = code_vectors(cfg, family, tokens_dir)  # (N, K, D)
    if tuple(vectors.shape[:2]) != (int(meta["codebooks"]), int(meta["vocab_size"])):
        raise NARError(f"the {family} quantizer has {tuple(vectors.shape[:2])} codebooks x "
                       f"entries, the codes in {tokens_dir} "
                       f"{(int(meta['codebooks']), int(meta['vocab_size']))}: retokenize")
    unit2mel = load_checkpoint(train_vocoder(cfg, family, corpus_dir, tokens_dir, out_dir),
                               kind=UNIT2MEL_KIND)
    trained = unit2mel["meta"]
    save_checkpoint(out_dir / "nar.pt", kind=MODEL_KIND, config=cfg.to_dict(),
                    state={"unit2mel": unit2mel["state"], "vectors": vectors.float().cpu()},
                    meta={"family": family, "target": MEL_TARGET,
                          "quantizer_sha256": meta.get("quantizer_sha256"),
                          "speakers": trained["speakers"], "seed": cfg.seed,
                          "frame_rate": float(meta["frame_rate"]), "unit2mel": trained,
                          "nar": {k: v for k, v in vars(cfg.nar).items()
                                  if k != "checkpoint_every"},
                          "dev": {"nar/dev_mel_loss": float(trained["dev_loss"])}})
    print(f"nar/dev_mel_loss={float(trained['dev_loss']):.3f}", flush=True)
    return out_dir / "nar.pt"
