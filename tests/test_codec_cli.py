"""The ``encodec`` family through the CLI: ``vadusa train-codec`` -> ``vadusa tokenize --family
encodec`` (tokens at the codec's frame rate) -> ``vadusa resynthesize --family encodec``; the
one vocoder loader (``load_vocoder``) for unit2mel and codec checkpoints; and the clear errors
(fit-kmeans of the encodec family, a missing codec, a vocoder of the wrong family)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY_CODEC_TRAIN, write_tone_corpus
from vadusa.checkpoint import load_checkpoint, save_checkpoint
from vadusa.cli import main
from vadusa.config import load_config
from vadusa.data.manifest import manifest_path, read_manifest, write_manifest
from vadusa.tokenizers.registry import codec_path, n_clusters
from vadusa.vocoder import UnitVocoder, VocoderError, load_vocoder, voice_for
from vadusa.vocoder.codec import CodecVocoder

TINY = TINY_CODEC_TRAIN


pytestmark = pytest.mark.usefixtures("one_thread")


def settings(results: Path) -> list[str]:
    values = [f"results_dir={results}", "tracking.backend=none", "device=cpu",
              "judge.threads=1"] + [f"tokens.encodec.scratch.{k}={v}" for k, v in TINY.items()]
    return [arg for value in values for arg in ("--set", value)]


def run(*argv: str) -> tuple[int, str, str]:
    """``vadusa`` in this process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tone corpus, with its dev utterances also as the test split (tokenize reads all)."""
    root = write_tone_corpus(tmp_path_factory.mktemp("corpus"))
    dev = read_manifest(manifest_path(root, "dev"))
    write_manifest(manifest_path(root, "test"), [dataclasses.replace(r, split="test")
                                                 for r in dev])
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> dict:
    """``vadusa train-codec`` with the default output directory."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    results = tmp_path_factory.mktemp("results")
    try:
        status, out, err = run("train-codec", *settings(results), "--corpus", str(corpus))
    finally:
        torch.set_num_threads(threads)
    cfg = load_config(overrides=[f"results_dir={results}"])
    return {"status": status, "out": out, "err": err, "results": results,
            "codec": codec_path(cfg)}


def test_train_codec_writes_the_codec_and_reports_it(trained: dict) -> None:
    assert trained["status"] == 0, trained["err"]
    codec = trained["codec"]
    assert codec.parent.name == "codec" and codec.parent.parent.name == "encodec"
    assert codec.is_file() and (codec.parent / "last.pt").is_file()
    lines = trained["out"].splitlines()
    assert str(codec) in lines
    meta = load_checkpoint(codec, kind="codec")["meta"]
    assert meta["steps"] == 3 and meta["bins"] == 32 and meta["frame_rate"] == 50.0
    dev = [k for k in meta if k.startswith("dev/")]
    assert dev and all(k in trained["out"] for k in dev)  # the dev losses are printed


def test_tokenize_encodec_at_the_codec_frame_rate(trained: dict, corpus: Path) -> None:
    results = trained["results"]
    status, out, err = run("tokenize", "--family", "encodec", *settings(results),
                           "--corpus", str(corpus))
    assert status == 0, err
    tokens = results / "default" / "tokens" / "encodec"
    assert not (tokens / "kmeans.npz").exists()
    stats = json.loads((tokens / "stats.json").read_text())
    meta = json.loads((tokens / "meta.json").read_text())
    assert stats["family"] == "encodec" and stats["declared_frame_rate"] == 50.0
    # F = ceil(T / hop): at most one frame more per 1-2 s utterance than T / hop
    assert 50.0 <= stats["frames_per_second"] <= 51.0
    assert stats["vocab_size"] == meta["vocab_size"] == 32
    assert meta["quantizer_sha256"]  # the codec that made the ids
    cfg = load_config(overrides=[f"results_dir={results}"]
                      + [f"tokens.encodec.scratch.{k}={v}" for k, v in TINY.items()])
    assert n_clusters(cfg, "encodec") == 32
    official = load_config(overrides=["tokens.encodec.weights=/x/encodec_24khz-d7cc33bc.th"])
    assert n_clusters(official, "encodec") == 1024


def test_resynthesize_encodec(trained: dict, corpus: Path) -> None:
    """decode(encode(x)) of two test utterances, judged: the codec is the vocoder by default."""
    out = trained["results"] / "resynth"
    status, _, err = run("resynthesize", "--family", "encodec", "--split", "test", "--limit",
                         "2", *settings(trained["results"]), "--corpus", str(corpus),
                         "--out", str(out))
    assert status == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["family"] == "encodec" and metrics["utterances"] == 2
    assert not metrics["failures"] and len(list((out / "wavs").glob("*.wav"))) == 2


def test_load_vocoder_reads_a_codec(trained: dict) -> None:
    vocoder = load_vocoder(trained["codec"], family="encodec")
    assert isinstance(vocoder, CodecVocoder)
    assert (vocoder.family, vocoder.vocab_size, vocoder.sample_rate) == ("encodec", 32, 16000)
    assert vocoder.speakers == [] and vocoder.meta["steps"] == 3
    assert isinstance(load_vocoder(trained["codec"]), CodecVocoder)  # no family: any kind
    # callers pass the item's speaker through to a speaker-agnostic codec
    assert voice_for(vocoder, "s1") == "s1"
    wave, rate = vocoder.decode(np.array([1, 2, 3]), voice_for(vocoder, "s1"))
    assert rate == 16000 and wave.shape == (3 * 320,)
    with pytest.raises(VocoderError, match=r"'encodec'.*not 'whisper'.*train-vocoder "
                                           r"--family whisper"):
        load_vocoder(trained["codec"], family="whisper")


def test_load_vocoder_dispatches_unit2mel(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "unit2mel.pt"
    save_checkpoint(path, kind="unit2mel", config={}, state={}, meta={"family": "whisper"})
    with pytest.raises(VocoderError, match=r"decodes 'whisper' units, not 'encodec'.*"
                                           r"vadusa train-codec"):
        load_vocoder(path, family="encodec")
    loaded = []
    monkeypatch.setattr(UnitVocoder, "_from_checkpoint",
                        classmethod(lambda cls, blob, p, device, family:
                                    loaded.append((blob["kind"], p, family)) or "unit"))
    assert load_vocoder(path, family="whisper") == "unit"
    assert loaded == [("unit2mel", path, "whisper")]

    other = tmp_path / "base.pt"
    save_checkpoint(other, kind="tts", config={}, state={}, meta={})
    with pytest.raises(VocoderError, match="'tts' checkpoint, not a vocoder"):
        load_vocoder(other)


def test_fit_kmeans_of_encodec_says_what_to_run(tmp_path: Path, corpus: Path) -> None:
    status, _, err = run("fit-kmeans", "--family", "encodec", *settings(tmp_path),
                         "--corpus", str(corpus))
    assert status == 2
    assert "the encodec family needs no k-means" in err
    assert "`vadusa train-codec`, then `vadusa tokenize --family encodec`" in err
    assert not (tmp_path / "default" / "tokens" / "encodec" / "kmeans.npz").exists()


def test_missing_codec_names_path_and_command(tmp_path: Path, corpus: Path) -> None:
    missing = codec_path(load_config(overrides=[f"results_dir={tmp_path}"]))
    status, _, err = run("tokenize", "--family", "encodec", *settings(tmp_path),
                         "--corpus", str(corpus))
    assert status == 2 and str(missing) in err and "vadusa train-codec" in err
    status, _, err = run("resynthesize", "--family", "encodec", "--split", "test",
                         *settings(tmp_path), "--corpus", str(corpus),
                         "--out", str(tmp_path / "r"))
    assert status == 2 and str(missing) in err and "vadusa train-codec" in err
    with pytest.raises(VocoderError, match="vadusa train-codec"):
        load_vocoder(missing, family="encodec")
