"""The ``melrvq`` family: residual k-means over stacked HiFi-GAN log-mels, its token files with
every codebook, and its vocoder (codes -> mel -> HiFi-GAN)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from tests.test_tokenizers import tiny_corpus

from vadusa.checkpoint import load_checkpoint
from vadusa.config import load_config
from vadusa.data import audio
from vadusa.eval.resynthesize import Item, ResynthesisError, resynthesize
from vadusa.model.nar import load_nar
from vadusa.plan import Plan
from vadusa.tokenizers.base import Tokenizer, TokenizerError
from vadusa.tokenizers.mel import MelWithUnits, StackedMel, align_units, unstack
from vadusa.tokenizers.registry import build_extractor, kmeans_tokenizer, load_tokenizer
from vadusa.tokenizers.residual import ResidualKMeans, is_residual, lloyd, nearest
from vadusa.tokenizers.store import TokenSplit, TokenStoreError, write_meta, write_split
from vadusa.tokenizers.tokenize import fit_kmeans, tokenize_corpus
from vadusa.training.nar import train_nar
from vadusa.vocoder import VocoderError, load_vocoder
from vadusa.vocoder.melrvq import MelRVQVocoder


def clustered(n: int = 2000, dim: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(12, dim, generator=g) * 4
    return centres[torch.randint(0, 12, (n,), generator=g)] + torch.randn(n, dim, generator=g)


def test_lloyd_uses_every_entry_and_beats_its_random_start() -> None:
    x = clustered()
    start = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(3))[:16]]
    fitted = lloyd(x, 16, seed=3, iterations=20)
    ids, error = nearest(x, fitted)
    assert len(torch.unique(ids)) == 16  # dead entries were re-seeded
    assert error.mean() < nearest(x, start)[1].mean()
    # nearest is the brute-force argmin
    assert torch.equal(ids, torch.cdist(x, fitted).argmin(1))


def test_each_codebook_explains_more_and_codebook_one_is_the_token(tmp_path: Path) -> None:
    x = clustered()
    rvq = ResidualKMeans.fit(x.numpy(), n_clusters=16, codebooks=4, seed=0, iterations=15)
    assert (rvq.codebooks, rvq.n_clusters, rvq.dim) == (4, 16, 6)
    rms = rvq.settings["residual_rms"]
    assert all(b < a for a, b in zip(rms, rms[1:], strict=False))
    codes = rvq.quantize_codes(x)  # (F, 4)
    assert codes.shape == (len(x), 4)
    assert torch.equal(codes[:, 0], rvq.quantize(x))
    errors = [(rvq.decode(codes[:, :n]) - x).square().mean() for n in range(1, 5)]
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False))
    assert torch.equal(rvq.decode(codes[:, 0]), rvq.decode(codes[:, :1]))  # (F,) = (F, 1)
    rvq.save(tmp_path / "kmeans.npz")
    assert is_residual(tmp_path / "kmeans.npz")
    again = ResidualKMeans.load(tmp_path / "kmeans.npz")
    assert torch.equal(again.quantize_codes(x), codes)
    with pytest.raises(ValueError, match="1..4"):
        rvq.decode(np.zeros((3, 5), dtype=np.int64))
    with pytest.raises(ValueError, match=r"outside \[0, 16\)"):
        rvq.decode(np.full((3, 2), 16))
    with pytest.raises(ValueError, match="5 dims, the residual k-means reads 6"):
        rvq.quantize(torch.zeros(2, 5))


def test_codebook_one_from_units_is_each_units_mean_and_the_rest_refine_it() -> None:
    x = clustered(n=600)
    units = torch.randint(0, 5, (len(x),), generator=torch.Generator().manual_seed(1))
    units[units == 3] = 2  # unit 3 never seen: it decodes as the mean of every frame
    features = torch.cat([x, units[:, None].float()], 1)  # (F, D + 1)
    rvq = ResidualKMeans.fit(features.numpy(), n_clusters=8, codebooks=3, seed=0,
                             iterations=10, units=True)
    assert (rvq.dim, rvq.input_dim, rvq.units) == (6, 7, True)
    for u in (0, 1, 2, 4):
        torch.testing.assert_close(rvq.centroids[0, u], x[units == u].mean(0))
    torch.testing.assert_close(rvq.centroids[0, 3], x.mean(0))
    codes = rvq.quantize_codes(features)  # (F, 3)
    assert torch.equal(codes[:, 0], units) and torch.equal(rvq.quantize(features), units)
    errors = [(rvq.decode(codes[:, :n]) - x).square().mean() for n in range(1, 4)]
    assert errors[0] > errors[1] > errors[2]  # the residual codebooks refine the unit's mean
    with pytest.raises(ValueError, match="7"):
        rvq.quantize(x)  # no unit column
    with pytest.raises(ValueError, match="unit ids outside"):
        rvq.quantize(torch.cat([x[:2], torch.full((2, 1), 8.0)], 1))


def test_units_align_to_the_token_that_holds_their_centre() -> None:
    ids = torch.arange(10)  # 50 Hz: unit i covers [i / 50, (i + 1) / 50)
    aligned = align_units(ids, 8, 50.0, 43.0)  # token j's centre (j + 0.5) / 43 s
    assert aligned.tolist() == [int((j + 0.5) / 43 * 50) for j in range(8)]
    assert align_units(ids[:3], 5, 50.0, 43.0).tolist()[-1] == 2  # past the end: the last
    with pytest.raises(ValueError, match="no units"):
        align_units(ids[:0], 3, 50.0, 43.0)


def test_token_files_keep_every_codebook_beside_codebook_one(tmp_path: Path) -> None:
    items = [("a", "s0", np.array([[1, 2, 3], [4, 5, 6]])), ("b", "s1", np.array([[7, 8, 9]]))]
    write_meta(tmp_path, {"vocab_size": 10, "codebooks": 3})
    assert write_split(tmp_path, "train", 10, items, codebooks=3) == 2
    store = TokenSplit(tmp_path, "train")
    assert store.codebooks == 3
    assert store[0].tolist() == [1, 4] and store.get("b").tolist() == [7]
    assert store.codes(0).tolist() == [[1, 2, 3], [4, 5, 6]]
    assert store.codes(1).tolist() == [[7, 8, 9]]
    with pytest.raises(TokenStoreError, match=r"expected \(frames, 3\) codes"):
        write_split(tmp_path, "dev", 10, [("c", "s0", np.array([1, 2]))], codebooks=3)
    (tmp_path / "train.codes.bin").unlink()
    with pytest.raises(TokenStoreError, match="no train.codes.bin"):
        TokenSplit(tmp_path, "train")
    # a one-codebook family's codes are its tokens
    write_meta(tmp_path / "units", {"vocab_size": 10})
    write_split(tmp_path / "units", "train", 10, [("a", "s0", np.array([3, 4]))])
    assert TokenSplit(tmp_path / "units", "train").codes(0).tolist() == [[3], [4]]


def test_stacked_mel_rows_are_consecutive_frames() -> None:
    wave = torch.randn(22050) * 0.1
    two, one = StackedMel(2), StackedMel(1)
    rows, frames = two.extract(wave), one.extract(wave)  # (F, 160), (M, 80)
    assert rows.shape == (len(frames) // 2, 160) and two.hop_length == 512
    assert torch.equal(rows[3, :80], frames[6]) and torch.equal(rows[3, 80:], frames[7])
    assert torch.equal(unstack(rows), frames[: 2 * len(rows)].T)  # (80, M)


@pytest.mark.slow
def test_melrvq_family_end_to_end(tmp_path: Path) -> None:
    """fit-kmeans -> tokenize (every codebook stored) -> the vocoder decodes codebook 1 alone
    and all codebooks, and all codebooks reproduce the mel more closely."""
    corpus = tiny_corpus(tmp_path)
    cfg = load_config(overrides=[f"results_dir={tmp_path}", "tracking.backend=none",
                                 "tokens.melrvq.n_clusters=8", "tokens.melrvq.codebooks=3",
                                 "tokens.melrvq.iterations=5",
                                 "tokens.melrvq.first=mel"])  # (whisper: the test below)
    kmeans = tmp_path / "tok" / "kmeans.npz"
    fit_kmeans(cfg, "melrvq", corpus, kmeans, torch.device("cpu"))
    stats = tokenize_corpus(cfg, "melrvq", corpus, tmp_path / "tok", kmeans, torch.device("cpu"))
    assert stats["declared_frame_rate"] == pytest.approx(22050 / 512)
    assert json.loads((tmp_path / "tok" / "meta.json").read_text())["codebooks"] == 3
    store = TokenSplit(tmp_path / "tok", "test")
    for seconds, i in zip((0.7, 1.3, 2.05), range(3), strict=True):
        assert abs(len(store[i]) - seconds * 22050 / 512) <= 1
        assert np.array_equal(store.codes(i)[:, 0], store[i])
    vocoder = load_vocoder(kmeans, family="melrvq")
    assert isinstance(vocoder, MelRVQVocoder) and vocoder.codebooks == 3
    codes = store.codes(2)
    wave, rate = vocoder.decode(codes, "anyone")
    assert rate == 22050 and len(wave) == len(codes) * 512 and np.abs(wave).max() <= 1
    assert len(vocoder.decode(codes[:, 0], "anyone")[0]) == len(wave)
    tokenizer = kmeans_tokenizer(cfg, "melrvq", kmeans)
    assert tokenizer.codebooks == 3 and tokenizer.extractor.dim == 160
    source, rate = sf.read(corpus / "wavs" / "test2.wav", dtype="float32")
    assert np.array_equal(tokenizer.encode_codes(source, rate), codes)  # what tokenize stored
    assert np.array_equal(tokenizer.encode(source, rate), codes[:, 0])
    with pytest.raises(VocoderError, match="outside"):
        vocoder.decode(np.full(4, 8), "anyone")
    # resynthesis decodes every codebook, or the first N

    class Judge:
        name = "fixed"

        def transcribe(self, wave: np.ndarray, rate: int) -> str:
            return "a chirp"

    items = [Item("test2", str(corpus / "wavs" / "test2.wav"), "a chirp")]
    for codebooks, expected in ((None, 3), (1, 1)):
        metrics = resynthesize(items, tokenizer, vocoder, Judge(), tmp_path / f"rs{codebooks}",
                               codebooks=codebooks)
        assert metrics["codebooks"] == expected and metrics["utterances"] == 1
    with pytest.raises(ResynthesisError, match="has 3 codebook"):
        resynthesize(items, tokenizer, vocoder, Judge(), tmp_path / "rs4", codebooks=4)
    # codebook 1 of the recording, codebooks 2..N from a NAR stage trained on these codes
    nar_cfg = load_config(overrides=[f"results_dir={tmp_path}", "tracking.backend=none",
                                     "device=cpu", "nar.dim=16", "nar.layers=1", "nar.heads=2",
                                     "nar.steps=3", "nar.warmup_steps=1",
                                     "nar.mel_stage=false"])  # the classifying stages first
    stage = load_nar(train_nar(nar_cfg, "melrvq", corpus, tmp_path / "tok", tmp_path / "nar"))
    metrics = resynthesize(items, tokenizer, vocoder, Judge(), tmp_path / "rsnar", nar=stage)
    assert metrics["codebooks"] == 3 and metrics["nar"] == str(tmp_path / "nar" / "nar.pt")
    # trained with the expected-entry loss and decoding by expectation
    expected_cfg = replace(nar_cfg, nar=replace(nar_cfg.nar, residual_weight=1.0,
                                                decoding="expected"))
    path = train_nar(expected_cfg, "melrvq", corpus, tmp_path / "tok", tmp_path / "nar-expected")
    assert 0 < load_checkpoint(path)["meta"]["dev"]["nar/dev_residual"]
    stage = load_nar(path)
    assert stage.decoding == "expected" and torch.equal(stage.model.vectors,
                                                       ResidualKMeans.load(kmeans).vectors())
    metrics = resynthesize(items, tokenizer, vocoder, Judge(), tmp_path / "rsexp", nar=stage)
    assert metrics["codebooks"] == 3
    # one regression of what codebooks 2..N add, re-quantized
    regression_cfg = replace(nar_cfg, nar=replace(nar_cfg.nar, target="residual"))
    path = train_nar(regression_cfg, "melrvq", corpus, tmp_path / "tok", tmp_path / "nar-reg")
    dev = load_checkpoint(path)["meta"]["dev"]
    assert 0 < dev["nar/dev_residual"] and 0 <= dev["nar/dev_acc_2"] <= 1
    stage = load_nar(path)
    assert stage.model.cfg.regression
    metrics = resynthesize(items, tokenizer, vocoder, Judge(), tmp_path / "rsreg", nar=stage)
    assert metrics["codebooks"] == 3
    # the mel stage (nar.mel_stage, the default): codebook 1 -> a unit-to-mel's log-mel, which
    # goes to HiFi-GAN as it is; its codes are that mel re-quantized by this quantizer
    mel_cfg = load_config(overrides=[
        f"results_dir={tmp_path}", "tracking.backend=none", "device=cpu", "vocoder.dim=16",
        "vocoder.layers=1", "vocoder.heads=2", "vocoder.conv_kernel=3", "vocoder.speaker_dim=4",
        "vocoder.steps=4", "vocoder.batch_seconds=4", "vocoder.max_seconds=2",
        "vocoder.warmup_steps=1", "vocoder.checkpoint_every=2"])
    stage = load_nar(train_nar(mel_cfg, "melrvq", corpus, tmp_path / "tok", tmp_path / "nar-mel"))
    assert stage.decoding == "continuous"
    assert torch.equal(stage.vectors, ResidualKMeans.load(kmeans).vectors())
    codes = tokenizer.encode_codes(*audio.read(corpus / "wavs" / "test2.wav"))
    filled = stage.fill("a chirp", None, codes[:, 0])
    assert filled.shape == codes.shape and np.array_equal(filled[:, 0], codes[:, 0])
    metrics = resynthesize(items, tokenizer, vocoder, Judge(), tmp_path / "rsmel", nar=stage)
    assert metrics["codebooks"] == 3 and metrics["utterances"] == 1
    with pytest.raises(VocoderError, match="residual k-means"):
        load_vocoder(kmeans, family="whisper")


@pytest.mark.slow
def test_melrvq_with_whisper_units_as_codebook_one(tmp_path: Path) -> None:
    """tokens.melrvq.first=whisper: codebook 1 is the whisper family's unit at each token
    (its k-means, fitted first), the vocoder decodes the codes, and a missing units k-means or
    a vocabulary that differs from the units' is refused by name."""
    corpus = tiny_corpus(tmp_path)
    cfg = load_config(overrides=[f"results_dir={tmp_path}", "tracking.backend=none",
                                 "tokens.whisper.n_clusters=8", "tokens.melrvq.n_clusters=8",
                                 "tokens.melrvq.codebooks=3", "tokens.melrvq.iterations=5",
                                 "tokens.melrvq.first=whisper"])
    with pytest.raises(TokenizerError, match="fit-kmeans --family whisper"):
        build_extractor(cfg, "melrvq")
    units_kmeans = Path(Plan(cfg).kmeans("whisper"))
    fit_kmeans(cfg, "whisper", corpus, units_kmeans, torch.device("cpu"))
    kmeans = tmp_path / "tok" / "kmeans.npz"
    fit_kmeans(cfg, "melrvq", corpus, kmeans, torch.device("cpu"))
    tokenize_corpus(cfg, "melrvq", corpus, tmp_path / "tok", kmeans, torch.device("cpu"))
    tokenizer = kmeans_tokenizer(cfg, "melrvq", kmeans)
    assert isinstance(tokenizer.extractor, MelWithUnits) and tokenizer.extractor.dim == 161
    source, rate = sf.read(corpus / "wavs" / "test2.wav", dtype="float32")
    codes = tokenizer.encode_codes(source, rate)
    assert np.array_equal(TokenSplit(tmp_path / "tok", "test").codes(2), codes)
    whisper = load_tokenizer(cfg, "whisper")
    units = torch.as_tensor(whisper.encode(source, rate))
    assert np.array_equal(codes[:, 0], align_units(units, len(codes), 50.0,
                                                   22050 / 512).numpy())
    wave, out_rate = load_vocoder(kmeans, family="melrvq").decode(codes, "anyone")
    assert out_rate == 22050 and len(wave) == len(codes) * 512
    # a melrvq quantizer fitted on mel k-means is not this one
    mel_only = Tokenizer("melrvq", StackedMel(2), ResidualKMeans.load(kmeans))
    with pytest.raises(ValueError, match="161"):
        mel_only.encode_codes(source, rate)
    other = replace(cfg, tokens=replace(cfg.tokens, melrvq=replace(cfg.tokens.melrvq,
                                                                   n_clusters=16)))
    with pytest.raises(TokenizerError, match="n_clusters"):
        build_extractor(other, "melrvq")
