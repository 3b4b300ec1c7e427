"""The ``encodec`` family: the published 24 kHz checkpoint format (round-tripped through a
random model of that architecture), the scratch codec's checkpoint, the tokenizer and vocoder
contracts (token rate, lengths, sample rate), quantizer dropout, and resumable training."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from encodec import EncodecModel

from conftest import REPO, TINY_CODEC, TINY_CODEC_TRAIN, write_tone_corpus
from vadusa.checkpoint import load_checkpoint, save_checkpoint
from vadusa.config import CodecTrainConfig, Config, ConfigError, EncodecConfig, load_config
from vadusa.tokenizers.base import TokenizerError
from vadusa.tokenizers.codec import (
    CodecError,
    build_scratch,
    codec_tokenizer,
    frame_rate,
    load_codec,
    load_codec_model,
    load_official,
    official_24khz,
    reconstruct,
    save_codec,
    scratch_arch,
)
from vadusa.tokenizers.registry import build_extractor, codec_path, load_tokenizer
from vadusa.training import codec as codec_training
from vadusa.training.codec import codebooks_for_step, train_codec
from vadusa.vocoder import VocoderError
from vadusa.vocoder.codec import CodecVocoder

TINY, TINY_TRAIN = TINY_CODEC, TINY_CODEC_TRAIN


pytestmark = pytest.mark.usefixtures("one_thread")


def randomize_codebooks(model: EncodecModel, seed: int = 0) -> EncodecModel:
    """Codebooks start empty (k-means fills them on the first training batch): give them
    random entries spread like the encoder's latents, so that tokens vary over time."""
    generator = torch.Generator().manual_seed(seed)
    rate = model.sample_rate
    with torch.no_grad():
        latents = model.encoder(torch.from_numpy(tone(0.5, rate)).reshape(1, 1, -1))[0].T
        for layer in model.quantizer.vq.layers:  # latents (F, D)
            book = layer._codebook
            noise = torch.randn(book.embed.shape, generator=generator)
            book.embed.copy_(latents.mean(0) + noise * latents.std(0))
            book.embed_avg.copy_(book.embed)
            book.inited.fill_(1)
    return model


def tiny_codec(**sizes) -> tuple[EncodecModel, dict]:
    arch = scratch_arch(dataclasses.replace(CodecTrainConfig(), **(TINY | sizes)))
    torch.manual_seed(0)
    return randomize_codebooks(build_scratch(arch)).eval(), arch


def tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (0.3 * np.sin(2 * math.pi * 220 * t * (1 + t))).astype(np.float32)


# --------------------------------------------------------------------------------------------
# The published 24 kHz model's file format.
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, EncodecModel]:
    """A random model of the published architecture, saved as the published file is: its
    plain state dict, written with torch.save (about 90 MB)."""
    torch.manual_seed(0)
    model = randomize_codebooks(official_24khz()).eval()
    path = tmp_path_factory.mktemp("official") / "encodec_24khz-d7cc33bc.th"
    torch.save(model.state_dict(), path)
    return path, model


def test_official_round_trip(official: tuple[Path, EncodecModel]) -> None:
    path, source = official
    loaded = load_official(path, bandwidth=6.0)
    expected, got = source.state_dict(), loaded.state_dict()
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert loaded.bandwidth == 6.0 and not loaded.training

    tokenizer = codec_tokenizer(loaded)
    assert (tokenizer.frame_rate, tokenizer.sample_rate, tokenizer.vocab_size) == (75.0, 24000,
                                                                                   1024)
    wave = tone(0.2, 24000)
    ids = tokenizer.encode(wave, 24000)
    frames, _ = loaded.encode(torch.from_numpy(wave).reshape(1, 1, -1))[0]  # (1, Q, F)
    assert frames.shape == (1, 8, 15)  # 6 kbps = 8 codebooks of 0.75 kbps; 0.2 s at 75 Hz
    assert np.array_equal(ids, frames[0, 0].numpy())  # the tokens are codebook 1's ids
    assert len(np.unique(ids)) > 1
    # every codebook of the bandwidth, as VALL-E's NAR stage reads them, and all decoded
    assert tokenizer.codebooks == 8
    codes = tokenizer.encode_codes(wave, 24000)  # (F, 8)
    assert np.array_equal(codes, frames[0].numpy().T)
    vocoder = CodecVocoder(loaded)
    full, rate = vocoder.decode(codes, "any")
    first, _ = vocoder.decode(codes[:, 0], "any")
    assert rate == 24000 and full.shape == first.shape and not np.allclose(full, first)
    with pytest.raises(VocoderError, match=r"1..32\) codes"):
        vocoder.decode(np.zeros((15, 33), dtype=np.int64), "any")


def test_official_bandwidth_is_checked(official: tuple[Path, EncodecModel]) -> None:
    path, _ = official
    with pytest.raises(CodecError, match=r"bandwidth=5 kbps .* one of 1.5, 3, 6, 12, 24"):
        load_official(path, bandwidth=5.0)
    assert load_official(path, bandwidth=0).bandwidth == 24.0  # 0 = all codebooks


def test_official_file_errors(official: tuple[Path, EncodecModel], tmp_path: Path) -> None:
    path, source = official
    with pytest.raises(CodecError, match=r"not found: .*never downloads"):
        load_official(tmp_path / "absent.th", 6.0)

    state = dict(source.state_dict())
    dropped = sorted(state)[:2]
    for key in dropped:
        del state[key]
    state["decoder.extra.weight"] = torch.zeros(1)
    broken = tmp_path / "broken.th"
    torch.save(state, broken)
    with pytest.raises(CodecError) as err:
        load_official(broken, 6.0)
    message = str(err.value)
    assert str(broken) in message and "published 24 kHz" in message
    assert "2 tensors missing" in message and dropped[0] in message
    assert "1 unexpected (decoder.extra.weight)" in message

    state = dict(source.state_dict())
    key = "quantizer.vq.layers.0._codebook.embed"
    state[key] = torch.zeros(512, 128)
    torch.save(state, broken)
    with pytest.raises(CodecError, match=rf"of another shape \(e.g. {key}: \(512, 128\)"):
        load_official(broken, 6.0)

    ours = tmp_path / "ours.pt"
    save_checkpoint(ours, kind="codec", config={}, state={"x": torch.zeros(1)})
    with pytest.raises(CodecError, match="weights=scratch"):
        load_official(ours, 6.0)


# --------------------------------------------------------------------------------------------
# The scratch codec: token rate, checkpoint, tokenizer and vocoder contracts.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0.3, 1.0, 1.37, 2.05])
@pytest.mark.parametrize("rate", [16000, 22050])
def test_token_rate_is_the_frame_rate(seconds: float, rate: int) -> None:
    model, _ = tiny_codec()
    tokenizer = codec_tokenizer(model)
    assert tokenizer.frame_rate == frame_rate(model) == 50.0
    ids = tokenizer.encode(tone(seconds, rate), rate)
    assert ids.dtype == np.int64 and ids.ndim == 1
    assert abs(len(ids) - round(seconds * tokenizer.frame_rate)) <= 1
    assert ids.min() >= 0 and ids.max() < tokenizer.vocab_size == 32


def test_tokenizer_refuses_short_and_silent_audio() -> None:
    tokenizer = codec_tokenizer(tiny_codec()[0])
    with pytest.raises(TokenizerError, match="too short"):
        tokenizer.encode(tone(0.05, 16000), 16000)
    with pytest.raises(TokenizerError, match="silent"):
        tokenizer.encode(np.zeros(16000, np.float32), 16000)


def test_scratch_checkpoint_round_trip(tmp_path: Path) -> None:
    model, arch = tiny_codec()
    path = tmp_path / "codec.pt"
    save_codec(path, model, arch, Config().to_dict(), meta={"steps": 7})
    loaded, meta = load_codec(path)
    assert meta | {"steps": 7} == meta  # our meta kept
    assert (meta["family"], meta["frame_rate"], meta["bins"], meta["n_q"]) == ("encodec", 50.0,
                                                                               32, 3)
    assert meta["arch"] == arch and meta["sample_rate"] == 16000
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    wave = tone(1.0, 16000)
    ids = codec_tokenizer(model).encode(wave, 16000)
    assert np.array_equal(ids, codec_tokenizer(loaded).encode(wave, 16000))
    assert len(np.unique(ids)) > 1

    # the bandwidth from config decides how many codebooks model.encode computes (5 bits x 50 Hz
    # = 0.25 kbps each), and is checked against the codec's own bandwidths
    two = load_codec_model(EncodecConfig(bandwidth=0.5), path)
    assert two.encode(torch.from_numpy(wave).reshape(1, 1, -1))[0][0].shape[1] == 2
    with pytest.raises(CodecError, match=r"one of 0.25, 0.5, 0.75"):
        load_codec_model(EncodecConfig(bandwidth=0.3), path)
    save_checkpoint(tmp_path / "other.pt", kind="codec", config={}, state={},
                    meta={"family": "hubert"})
    with pytest.raises(CodecError, match="not a scratch encodec codec"):
        load_codec(tmp_path / "other.pt")


@pytest.mark.parametrize("rate", [16000, 24000])
def test_decode_encode_length_and_rate(rate: int) -> None:
    model, _ = tiny_codec()
    vocoder = CodecVocoder(model)
    wave = tone(1.234, rate)
    tokens = codec_tokenizer(model).encode(wave, rate)
    decoded, decoded_rate = vocoder.decode(tokens, speaker="anyone")
    assert decoded_rate == 16000 == vocoder.sample_rate
    assert decoded.dtype == np.float32 and np.abs(decoded).max() <= 1.0
    hop = 320
    assert len(decoded) == len(tokens) * hop
    assert abs(len(decoded) - 1.234 * decoded_rate) < hop
    # speaker-agnostic: the speaker changes nothing
    assert np.array_equal(decoded, vocoder.decode(tokens, speaker="someone else")[0])
    with pytest.raises(VocoderError, match=r"outside the vocabulary \[0, 32\)"):
        vocoder.decode(np.array([1, 32]), "anyone")


def test_quantizer_dropout() -> None:
    model, _ = tiny_codec()
    train = dataclasses.replace(CodecTrainConfig(), **TINY)
    x = torch.from_numpy(tone(0.5, 16000)).reshape(1, 1, -1)

    model.train()
    counts = [codebooks_for_step(model, train, np.random.default_rng([0, s])) for s in range(40)]
    assert 1 in counts and len(set(counts)) > 1 and max(counts) <= 3
    assert counts.count(1) > counts.count(3)  # codebook 1 alone is drawn more often
    for k in (1, 3):
        assert reconstruct(model, x, k).codes.shape[0] == k

    model.eval()
    assert {codebooks_for_step(model, train, np.random.default_rng(s)) for s in range(20)} == {3}
    # eval mode only looks codes up: an untrained codebook is not fitted to what it is shown
    fresh = build_scratch(scratch_arch(train)).eval()
    assert reconstruct(fresh, x, 3).codes.shape[0] == 3
    assert not any(bool(layer._codebook.inited) for layer in fresh.quantizer.vq.layers)
    model.train()
    off = dataclasses.replace(train, quantizer_dropout=False)
    assert {codebooks_for_step(model, off, np.random.default_rng(s)) for s in range(20)} == {3}


# --------------------------------------------------------------------------------------------
# Config and registry.
# --------------------------------------------------------------------------------------------


def test_codebook_usage_counts_entries_and_their_spread() -> None:
    """Entries used, and the perplexity of their frequencies: 4 entries equally often count
    4, one entry alone 1, a skewed use between the two."""
    uses = torch.tensor([[5.0, 5.0, 5.0, 5.0, 0.0, 0.0],
                         [0.0, 9.0, 0.0, 0.0, 0.0, 0.0],
                         [17.0, 1.0, 1.0, 1.0, 0.0, 0.0]])
    usage = codec_training.codebook_usage(uses)
    assert [usage[f"dev/used_q{q}"] for q in (1, 2, 3)] == [4.0, 1.0, 4.0]
    assert usage["dev/perplexity_q1"] == pytest.approx(4.0)
    assert usage["dev/perplexity_q2"] == pytest.approx(1.0)
    assert 1.0 < usage["dev/perplexity_q3"] < 2.0


def test_config_defaults_and_checks() -> None:
    cfg = Config()
    # reproduce_all's families: the codec trained here does not speak in the embedded
    # budget (docs/tokens.md), so encodec is in the smoke run's and the paper-scale configs'
    assert cfg.tokens.families == ("whisper", "hubert", "melrvq")
    for name in ("tiny.yaml", "libritts.yaml", "libriheavy.yaml"):
        assert "encodec" in load_config([REPO / "config" / name]).tokens.families, name
    default = build_scratch(scratch_arch(cfg.tokens.encodec.scratch))
    assert frame_rate(default) == 50.0 and default.quantizer.n_q == 4
    assert default.quantizer.bins == 1024
    cfg = load_config(overrides=["tokens.encodec.scratch.ratios=[4, 4]"])
    assert cfg.tokens.encodec.scratch.ratios == (4, 4)
    with pytest.raises(ConfigError, match="tokens.encodec.scratch.n_filter"):
        load_config(overrides=["tokens.encodec.scratch.n_filter=8"])
    with pytest.raises(CodecError, match="multiple of 3"):
        build_scratch(scratch_arch(CodecTrainConfig(ratios=(3,))))
    with pytest.raises(CodecError, match="power of 2"):
        build_scratch(scratch_arch(CodecTrainConfig(bins=1000)))


def test_registry_loads_both_sources(tmp_path: Path,
                                     official: tuple[Path, EncodecModel]) -> None:
    cfg = load_config(overrides=[f"results_dir={tmp_path}"]
                      + [f"tokens.encodec.scratch.{k}={v}" for k, v in TINY.items()])
    model, arch = tiny_codec()
    save_codec(codec_path(cfg), model, arch, cfg.to_dict())
    tokenizer = load_tokenizer(cfg, "encodec")
    assert (tokenizer.family, tokenizer.vocab_size, tokenizer.frame_rate) == ("encodec", 32, 50.0)
    assert build_extractor(cfg, "encodec").dim == 16

    cfg = load_config(overrides=[f"results_dir={tmp_path}",
                                 f"tokens.encodec.weights={official[0]}",
                                 "tokens.encodec.bandwidth=1.5"])
    tokenizer = load_tokenizer(cfg, "encodec")
    assert (tokenizer.vocab_size, tokenizer.frame_rate, tokenizer.sample_rate) == (1024, 75.0,
                                                                                  24000)


# --------------------------------------------------------------------------------------------
# Training: finite losses, a loadable codec, resume (exact; another setting starts over).
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tone_corpus(tmp_path_factory.mktemp("corpus"))


def tiny_config(tmp_path: Path, **train) -> Config:
    values = TINY_TRAIN | train
    return load_config(overrides=[f"results_dir={tmp_path / 'results'}", "tracking.backend=none",
                                  "device=cpu"]
                       + [f"tokens.encodec.scratch.{k}={v}" for k, v in values.items()])


def test_train_then_other_settings_start_over(tmp_path: Path, tiny_corpus: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "codec"
    final = train_codec(tiny_config(tmp_path), tiny_corpus, out)
    assert final == out / "codec.pt"
    first = load_checkpoint(out / "last.pt", "codec-train")["state"]
    assert first["step"] == 3 and len(first["losses"]) == 3
    assert all(math.isfinite(x) for x in first["losses"])
    model, meta = load_codec(final)
    # dev losses from codebook 1 alone and from all three
    assert meta["steps"] == 3 and math.isfinite(meta["dev/mel_l1_q1"] + meta["dev/mel_l1_q3"])
    assert math.isfinite(meta["dev/mel_l1_continuous"])
    assert 0 < meta["dev/mel_l1_copy_synthesis"] < meta["dev/mel_l1_q1"]  # the yardstick
    assert (out / "curve.png").stat().st_size > 0
    # every codebook's use on dev: entries used, and an effective count no larger
    for q in (1, 2, 3):
        used, perplexity = meta[f"dev/used_q{q}"], meta[f"dev/perplexity_q{q}"]
        assert 1 <= used <= meta["bins"] and 1 <= perplexity <= used + 1e-6

    calls = []
    real_step = codec_training.train_step

    def counting_step(*args, **kwargs):
        calls.append(1)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(codec_training, "train_step", counting_step)
    # only the evaluation cadence changed: the finished run is re-entered, not retrained
    train_codec(tiny_config(tmp_path, eval_every=1), tiny_corpus, out)
    assert not calls and "resuming from" in capsys.readouterr().out
    # more steps are another run (the learning-rate schedule follows steps): it starts over,
    # and the finished run's state is kept aside
    train_codec(tiny_config(tmp_path, steps=5), tiny_corpus, out)
    said = capsys.readouterr().out
    assert len(calls) == 5 and "tokens.encodec.scratch.steps: 3 -> 5" in said
    second = load_checkpoint(out / "last.pt", "codec-train")["state"]
    assert second["step"] == 5 and len(second["losses"]) == 5
    assert load_checkpoint(out / "last.stale.pt", "codec-train")["state"]["step"] == 3
    assert load_codec(out / "codec.pt")[1]["steps"] == 5


class Interrupted(Exception):
    pass


def test_resume_is_exact(tmp_path: Path, tiny_corpus: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tiny_config(tmp_path, steps=4, checkpoint_every=2, eval_every=4)
    straight = train_codec(cfg, tiny_corpus, tmp_path / "straight")

    real_save = codec_training.save_training_state

    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        raise Interrupted

    monkeypatch.setattr(codec_training, "save_training_state", save_then_die)
    with pytest.raises(Interrupted):
        train_codec(cfg, tiny_corpus, tmp_path / "resumed")
    monkeypatch.setattr(codec_training, "save_training_state", real_save)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["state"]["step"] == 2
    resumed = train_codec(cfg, tiny_corpus, tmp_path / "resumed")

    a = load_checkpoint(tmp_path / "straight" / "last.pt")["state"]["losses"]
    b = load_checkpoint(tmp_path / "resumed" / "last.pt")["state"]["losses"]
    assert len(a) == 4 and a == b
    sa, sb = load_checkpoint(straight)["state"], load_checkpoint(resumed)["state"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_adversarial_training_runs(tmp_path: Path, tiny_corpus: Path) -> None:
    cfg = tiny_config(tmp_path, steps=2, checkpoint_every=2, eval_every=2, adversarial=True,
                      discriminator_filters=4)
    train_codec(cfg, tiny_corpus, tmp_path / "adv")
    state = load_checkpoint(tmp_path / "adv" / "last.pt", "codec-train")["state"]
    assert "disc" in state and "disc_optimizer" in state
    assert len(state["losses"]) == 2 and all(math.isfinite(x) for x in state["losses"])
