"""The tokenizer contract, the k-means quantizer, token files and their statistics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from vadusa.config import load_config
from vadusa.data.manifest import SPLITS, Utterance, manifest_path, write_manifest
from vadusa.tokenizers.base import Tokenizer, TokenizerError
from vadusa.tokenizers.kmeans import KMeansQuantizer
from vadusa.tokenizers.registry import build_extractor
from vadusa.tokenizers.store import TokenSplit, TokenStoreError, write_meta, write_split
from vadusa.tokenizers.tokenize import fit_kmeans, token_stats, tokenize_corpus


class FrameMeans:
    """A toy extractor: mean and energy of each 320-sample frame (D = 2)."""

    name, sample_rate, hop_length, dim = "toy", 16000, 320, 2

    def extract(self, wave: torch.Tensor) -> torch.Tensor:
        frames = wave[: len(wave) // 320 * 320].reshape(-1, 320)  # (F, 320)
        return torch.stack([frames.mean(1), frames.pow(2).mean(1)], dim=1)  # (F, 2)


def test_kmeans_fit_quantize_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    data = np.concatenate([c + rng.normal(0, 0.1, (200, 2)) for c in centers]).astype(np.float32)
    km = KMeansQuantizer.fit(data, 3, seed=0, batch_size=256)
    ids = km.quantize(torch.from_numpy(data)).numpy()
    assert len({tuple(np.bincount(ids[i * 200:(i + 1) * 200], minlength=3).nonzero()[0])
                for i in range(3)}) == 3  # each blob maps to one distinct cluster
    km.save(tmp_path / "kmeans.npz")
    again = KMeansQuantizer.load(tmp_path / "kmeans.npz")
    assert torch.equal(again.centroids, km.centroids) and again.settings["n_clusters"] == 3
    with pytest.raises(ValueError, match="dims"):
        km.quantize(torch.zeros(4, 5))


def test_tokenizer_contract_and_bad_audio() -> None:
    tok = Tokenizer("toy", FrameMeans(), KMeansQuantizer(np.array([[0.0, 0.0], [0.0, 1.0]])))
    assert (tok.vocab_size, tok.bos_id, tok.eos_id, tok.pad_id) == (2, 2, 3, 4)
    assert tok.frame_rate == 50.0
    wave = np.sin(np.linspace(0, 500, 44100)).astype(np.float32)  # 1 s at 44.1 kHz
    assert abs(len(tok.encode(wave, 44100)) - 50) <= 1  # resampled to 16 kHz first
    with pytest.raises(TokenizerError, match="silent"):
        tok.encode(np.zeros(16000, dtype=np.float32), 16000)
    with pytest.raises(TokenizerError, match="too short"):
        tok.encode(wave[:100], 44100)


def test_token_store_round_trip(tmp_path: Path) -> None:
    items = [("a", "s1", np.array([1, 2, 3])), ("b", "s2", np.array([], dtype=np.int64)),
             ("c", "s1", np.array([0, 299]))]
    write_meta(tmp_path, {"family": "toy", "vocab_size": 300, "frame_rate": 50.0})
    assert write_split(tmp_path, "train", 300, items) == 3
    store = TokenSplit(tmp_path, "train")
    assert store.ids == ["a", "b", "c"] and store.speakers == ["s1", "s2", "s1"]
    assert store.get("c").tolist() == [0, 299] and len(store[1]) == 0
    assert (tmp_path / "train.bin").stat().st_size == 5 * 2  # uint16
    with pytest.raises(TokenStoreError, match="outside"):
        write_split(tmp_path, "dev", 300, [("x", "s", np.array([300]))])
    with pytest.raises(TokenStoreError, match="no tokens for utterance"):
        store.get("zzz")


def test_token_stats_on_known_tokens(tmp_path: Path) -> None:
    write_meta(tmp_path, {"family": "toy", "vocab_size": 8, "frame_rate": 50.0})
    write_split(tmp_path, "train", 8, [("u", "s", np.array([0, 1, 2, 3, 0, 1, 2, 3])),
                                       ("v", "s", np.array([5, 5, 5, 5]))])
    for split in ("dev", "test"):
        write_split(tmp_path, split, 8, [("w", "s", np.array([1, 2]))])
    stats = token_stats(tmp_path, 8, {"train": 0.24, "dev": 0.04, "test": 0.04})
    assert stats["frames_per_second"] == pytest.approx(12 / 0.24)
    assert stats["clusters_used"] == 5 and stats["cluster_usage"] == pytest.approx(5 / 8)
    p = np.array([2, 2, 2, 2, 4]) / 12
    assert stats["entropy_bits"] == pytest.approx(float(-(p * np.log2(p)).sum()))
    assert stats["repeat_rate"] == pytest.approx(3 / 10)  # 3 repeats among 7 + 3 pairs
    assert stats["max_entropy_bits"] == pytest.approx(math.log2(8))


def tiny_corpus(root: Path) -> Path:
    """Two speakers, chirps of different lengths, manifests for every split."""
    rate = 16000
    corpus = root / "corpus"
    for split in SPLITS:
        records = []
        for k, seconds in enumerate((0.7, 1.3, 2.05)):
            t = np.arange(int(seconds * rate)) / rate
            wave = 0.3 * np.sin(2 * np.pi * (150 + 200 * k) * t * (1 + t))
            path = corpus / "wavs" / f"{split}{k}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, wave.astype(np.float32), rate)
            n = len(t)
            records.append(Utterance(f"{split}{k}", f"s{k % 2}", "A chirp.", "a chirp.",
                                     str(path), rate, n, round(n / rate, 4), split))
        write_manifest(manifest_path(corpus, split), records)
    return corpus


@pytest.mark.slow
def test_whisper_tokens_rate_and_pipeline(tmp_path: Path) -> None:
    """Whisper family end to end on a tiny corpus: token rate = declared frame rate (within
    one frame per utterance), files, statistics."""
    corpus = tiny_corpus(tmp_path)
    cfg = load_config(overrides=[f"results_dir={tmp_path}", "tokens.whisper.n_clusters=8",
                                 "tracking.backend=none"])
    fit_kmeans(cfg, "whisper", corpus, tmp_path / "tok" / "kmeans.npz", torch.device("cpu"))
    stats = tokenize_corpus(cfg, "whisper", corpus, tmp_path / "tok",
                            tmp_path / "tok" / "kmeans.npz", torch.device("cpu"))
    assert stats["declared_frame_rate"] == 50.0
    store = TokenSplit(tmp_path / "tok", "test")
    for seconds, (_, tokens) in zip((0.7, 1.3, 2.05), store, strict=True):
        assert abs(len(tokens) - seconds * 50) <= 1
        assert tokens.min() >= 0 and tokens.max() < 8
    assert json.loads((tmp_path / "tok" / "meta.json").read_text())["eos_id"] == 9
    assert (tmp_path / "tok" / "cluster_usage.png").stat().st_size > 0


@pytest.mark.slow
def test_whisper_pooling_halves_the_rate(tmp_path: Path) -> None:
    cfg = load_config(overrides=["tokens.whisper.pool=2"])
    extractor = build_extractor(cfg, "whisper")
    assert extractor.sample_rate / extractor.hop_length == 25.0
    feats = extractor.extract(torch.randn(16000 * 2) * 0.1)
    assert feats.shape == (50, extractor.dim)


@pytest.mark.slow
def test_whisper_silence_subtraction_removes_the_position_only_part() -> None:
    """Raw encoder frames of a constant input still differ frame to frame (the position
    embedding); with ``subtract_silence`` what depends on position alone is gone."""
    quiet = torch.zeros(16000 * 2)  # extract() directly: the tokenizer refuses silence
    raw = build_extractor(load_config(overrides=["tokens.whisper.subtract_silence=false"]),
                          "whisper").extract(quiet)
    assert float(raw.std(0).mean()) > 0.05  # frames of identical input differ by position
    cleaned = build_extractor(load_config(), "whisper").extract(quiet)
    assert cleaned.shape == raw.shape
    assert float(cleaned.abs().max()) == 0.0
