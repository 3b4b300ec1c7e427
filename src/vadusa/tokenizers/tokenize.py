"""``vadusa fit-kmeans`` and ``vadusa tokenize``: corpus audio -> token files + statistics."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from vadusa.atomic import write_text_atomic
from vadusa.checkpoint import file_digest
from vadusa.config import Config
from vadusa.data import audio
from vadusa.data.manifest import SPLITS, Utterance, manifest_path, read_manifest
from vadusa.eval.figures import sorted_bars
from vadusa.tokenizers.base import TokenizerError, extract_features
from vadusa.tokenizers.kmeans import KMeansQuantizer
from vadusa.tokenizers.registry import (
    build_extractor,
    codec_file,
    kmeans_tokenizer,
    load_tokenizer,
    n_clusters,
)
from vadusa.tokenizers.residual import ResidualKMeans
from vadusa.tokenizers.store import TokenSplit, write_meta, write_split


def _read(rec: Utterance) -> np.ndarray:
    wave, _ = audio.read(rec.audio_path, rec.offset, rec.num_samples)
    return wave


def fit_kmeans(cfg: Config, family: str, corpus_dir: Path, out_path: Path,
               device: torch.device) -> KMeansQuantizer | ResidualKMeans:
    """Fit k-means on the features of a seeded sample of train utterances (``melrvq``:
    residual k-means, ``tokens.melrvq.codebooks`` codebooks)."""
    if family == "encodec":
        raise TokenizerError("the encodec family needs no k-means: its tokens are the codec's "
                             "first codebook; run `vadusa train-codec`, then "
                             "`vadusa tokenize --family encodec`")
    train = read_manifest(manifest_path(corpus_dir, "train"))
    sample = random.Random(cfg.seed).sample(train, min(cfg.tokens.kmeans_utterances, len(train)))
    extractor = build_extractor(cfg, family, device)
    feats, total = [], 0
    for rec in tqdm(sample, desc=f"{family} features for k-means", unit="utt"):
        f = extract_features(extractor, _read(rec), rec.sample_rate).cpu().numpy()
        feats.append(f)
        total += len(f)
        if total >= cfg.tokens.kmeans_max_frames:
            break
    quantizer: KMeansQuantizer | ResidualKMeans
    if family == "melrvq":
        rvq = cfg.tokens.melrvq
        quantizer = ResidualKMeans.fit(np.concatenate(feats), rvq.n_clusters, rvq.codebooks,
                                       cfg.seed, rvq.iterations, units=rvq.first != "mel")
        quantizer.settings["hifigan"] = cfg.vocoder.hifigan  # the generator that decodes it
    else:
        quantizer = KMeansQuantizer.fit(np.concatenate(feats), n_clusters(cfg, family),
                                        cfg.seed)
    quantizer.settings.update(family=family, utterances=len(feats),
                              frame_rate=extractor.sample_rate / extractor.hop_length,
                              features=getattr(extractor, "settings", {}))
    quantizer.save(out_path)
    return quantizer


def tokenize_corpus(cfg: Config, family: str, corpus_dir: Path, out_dir: Path,
                    kmeans_path: Path, device: torch.device) -> dict[str, Any]:
    """Every split's token files, meta and statistics; ``kmeans_path`` is unused for the
    ``encodec`` family, whose quantizer is its codec's first codebook."""
    if family == "encodec":
        tokenizer = load_tokenizer(cfg, family, device)
        quantizer_file = codec_file(cfg)
    else:
        tokenizer = kmeans_tokenizer(cfg, family, kmeans_path, device)
        quantizer_file = kmeans_path
    out_dir.mkdir(parents=True, exist_ok=True)
    write_meta(out_dir, {"family": family, "vocab_size": tokenizer.vocab_size,
                         "frame_rate": tokenizer.frame_rate,
                         "sample_rate": tokenizer.sample_rate,
                         "bos_id": tokenizer.bos_id, "eos_id": tokenizer.eos_id,
                         "pad_id": tokenizer.pad_id, "codebooks": tokenizer.codebooks,
                         # which k-means (or codec) made these ids: models trained on other
                         # ids must not resume on these (training/tts.py, training/vocoder.py)
                         "quantizer_sha256": file_digest(quantizer_file)})
    seconds = {}
    for split in SPLITS:
        records = read_manifest(manifest_path(corpus_dir, split))
        seconds[split] = sum(r.duration for r in records)

        def items(records: list[Utterance] = records, split: str = split
                  ) -> Iterator[tuple[str, str, np.ndarray]]:
            for rec in tqdm(records, desc=f"tokenize {family} {split}", unit="utt"):
                wave = _read(rec)
                yield rec.id, rec.speaker, (tokenizer.encode(wave, rec.sample_rate)
                                            if tokenizer.codebooks == 1 else
                                            tokenizer.encode_codes(wave, rec.sample_rate))

        write_split(out_dir, split, tokenizer.vocab_size, items(), tokenizer.codebooks)
    stats = token_stats(out_dir, tokenizer.vocab_size, seconds)
    stats.update(family=family, declared_frame_rate=tokenizer.frame_rate)
    write_text_atomic(out_dir / "stats.json", json.dumps(stats, indent=1) + "\n")
    usage = np.asarray(stats["cluster_counts"], dtype=float)
    sorted_bars(usage / usage.sum(), out_dir / "cluster_usage.png",
                f"{family}: cluster usage (train), entropy {stats['entropy_bits']:.2f} bits",
                "share of frames")
    return stats


def token_stats(out_dir: Path, vocab_size: int, seconds: dict[str, float]) -> dict[str, Any]:
    """Frames per second, cluster usage, unigram entropy, repeat rate (on train)."""
    per_split = {}
    for split in SPLITS:
        store = TokenSplit(out_dir, split)
        per_split[split] = {"utterances": len(store), "frames": int(store.lengths.sum()),
                            "frames_per_second": float(store.lengths.sum() / seconds[split])}
    train = TokenSplit(out_dir, "train")
    counts = np.zeros(vocab_size, dtype=np.int64)
    repeats = pairs = 0
    for _, tokens in train:
        counts += np.bincount(tokens, minlength=vocab_size)
        repeats += int((tokens[1:] == tokens[:-1]).sum())
        pairs += max(0, len(tokens) - 1)
    p = counts[counts > 0] / counts.sum()
    entropy = float(-(p * np.log2(p)).sum())
    return {
        "vocab_size": vocab_size,
        "splits": per_split,
        "frames_per_second": per_split["train"]["frames_per_second"],
        "clusters_used": int((counts > 0).sum()),
        "cluster_usage": float((counts > 0).mean()),
        "entropy_bits": entropy,
        "perplexity": float(2**entropy),
        "max_entropy_bits": math.log2(vocab_size),
        "repeat_rate": repeats / max(1, pairs),
        "cluster_counts": counts.tolist(),
    }
