"""The unit vocoder: HiFi-GAN analysis/synthesis, Unit2Mel's time lookup and masking, training
with resume, and decoding through a saved checkpoint. Tiny models; a few seconds each."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import vadusa.training.vocoder as vocoder_training
from vadusa.checkpoint import load_checkpoint
from vadusa.config import load_config
from vadusa.data.audio import read, write_wav
from vadusa.data.manifest import Utterance, manifest_path, write_manifest
from vadusa.data.mel import (
    HOP_LENGTH,
    N_MELS,
    SAMPLE_RATE,
    _mel_filterbank,
    mel_frames,
    mel_spectrogram,
)
from vadusa.tokenizers.store import write_meta, write_split
from vadusa.vocoder import UnitVocoder, VocoderError
from vadusa.vocoder.hifigan import CopySynthesis, HifiGan
from vadusa.vocoder.unit2mel import DVECTOR_DIM, Unit2Mel, mel_frames_for_units, unit_index

# --------------------------------------------------------------------------------------------
# HiFi-GAN
# --------------------------------------------------------------------------------------------


def harmonic(seconds: float, f0: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A voiced-speech stand-in: 30 harmonics with vibrato, faded in and out."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))) / rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 30))
    fade = np.clip(np.minimum(t, t[-1] - t) / 0.05, 0, 1)
    return (0.3 * wave / np.abs(wave).max() * fade).astype(np.float32)


def librosa_mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float,
                           fmax: float) -> np.ndarray:
    """librosa.filters.mel with its defaults (slaney scale, slaney norm), written out."""
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        f = np.asarray(f, dtype=float)
        log_part = min_log_hz / f_sp + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep
        return np.where(f >= min_log_hz, log_part, f / f_sp)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        min_log_mel = min_log_hz / f_sp
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)),
                        f_sp * m)

    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    weights = np.stack([np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
                        for i in range(n_mels)])
    return weights * (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]


def test_mel_filterbank_is_librosas() -> None:
    reference = librosa_mel_filterbank(SAMPLE_RATE, 1024, N_MELS, 0.0, 8000.0)
    assert np.abs(_mel_filterbank().T.numpy() - reference).max() < 1e-6


def test_mel_spectrogram_shape() -> None:
    wave = harmonic(1.0, 140.0)
    mel = mel_spectrogram(wave)
    assert mel.shape == (N_MELS, len(wave) // HOP_LENGTH) == (N_MELS, mel_frames(len(wave)))
    assert mel.dtype == torch.float32
    assert float(mel.min()) >= np.log(1e-5) - 1e-4  # the floor
    assert torch.equal(mel_spectrogram(torch.from_numpy(wave)), mel)


def copy_synthesis_error(hifigan: HifiGan, wave: np.ndarray) -> float:
    """Mean |log-mel| difference between a wave and HiFi-GAN's rendering of its mel."""
    mel = mel_spectrogram(wave)
    out = hifigan(mel)
    assert out.dtype == np.float32 and out.shape == (mel.shape[1] * HOP_LENGTH,)
    again = mel_spectrogram(out)
    n = min(mel.shape[1], again.shape[1])
    return float((mel[:, :n] - again[:, :n]).abs().mean())


def test_hifigan_copy_synthesis() -> None:
    hifigan = HifiGan("universal")
    assert (hifigan.sample_rate, hifigan.hop_length, hifigan.n_mels) == (22050, 256, 80)
    wave = harmonic(1.0, 140.0)
    # measured: 0.51; a filterbank without slaney norm gives 2.8, log10 instead of ln 2.5
    assert copy_synthesis_error(hifigan, wave) < 1.0
    batch = hifigan(torch.stack([mel_spectrogram(wave)] * 2))
    assert batch.shape == (2, len(wave) // HOP_LENGTH * HOP_LENGTH)


def test_copy_synthesis_resynthesizes_through_the_mel(tmp_path: Path) -> None:
    """``vadusa resynthesize --copy``: a 16 kHz input's own mel through HiFi-GAN."""
    from vadusa.eval.resynthesize import Item, resynthesize  # noqa: PLC0415

    wave16 = harmonic(1.0, 140.0, rate=16000)
    copy = CopySynthesis("universal")
    mel = copy.encode(wave16, 16000)
    assert mel.shape == (SAMPLE_RATE // HOP_LENGTH, N_MELS)  # 1 s at 22.05 kHz / 256
    out, rate = copy.decode(mel, "any")
    assert rate == SAMPLE_RATE and out.shape == (mel.shape[0] * HOP_LENGTH,)
    again = mel_spectrogram(out).T  # the rendering has the input's mel (error as above)
    n = min(len(mel), len(again))
    assert float((mel[:n] - again[:n]).abs().mean()) < 1.0

    write_wav(tmp_path / "a.wav", wave16, 16000)

    class EchoJudge:
        name = "echo"

        def transcribe(self, wave: np.ndarray, rate: int) -> str:
            return "one two" if rate == SAMPLE_RATE else "one two three"

    metrics = resynthesize([Item("a", str(tmp_path / "a.wav"), "one two three")], copy, copy,
                           EchoJudge(), tmp_path / "out")
    assert metrics["family"] == "mel" and metrics["utterances"] == 1
    assert metrics["wer"] == pytest.approx(1 / 3) and metrics["input_wer"] == 0.0
    assert read(tmp_path / "out" / "wavs" / "a.wav")[1] == SAMPLE_RATE


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")
def test_hifigan_copy_synthesis_of_speech(tmp_path: Path) -> None:
    path = tmp_path / "speech.wav"
    subprocess.run(["flite", "-t", "a quick brown fox jumps over the lazy dog", "-o", str(path)],
                   check=True)
    wave, _ = read(path, target_rate=SAMPLE_RATE)
    # measured: 0.30 (0.25 on the default corpus); broken filterbank or log base: > 3
    assert copy_synthesis_error(HifiGan("universal"), wave) < 0.5


# --------------------------------------------------------------------------------------------
# Unit2Mel
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("frame_rate", [25, 50, 75])
def test_unit_index_reads_the_unit_at_each_frame_centre(frame_rate: int) -> None:
    index = unit_index(torch.tensor([0]), 200, frame_rate)[0]
    # frame i's centre is (i + 0.5) * 256 / 22050 s: exact integer arithmetic
    expected = [(2 * i + 1) * 128 * frame_rate // 22050 for i in range(200)]
    assert index.tolist() == expected
    if frame_rate == 50:
        assert index[:10].tolist() == [0, 0, 1, 2, 2, 3, 3, 4, 4, 5]
    # a crop starting at mel frame m0 reads the same units, relative to its first one
    for m0 in (1, 7, 33):
        crop = unit_index(torch.tensor([m0]), 200 - m0, frame_rate)[0]
        assert (crop + expected[m0]).tolist() == expected[m0:]


def test_mel_frames_for_units() -> None:
    assert mel_frames_for_units(50, 50) == 86  # 1 s = 86.13 mel frames
    assert mel_frames_for_units(75, 75) == 86
    assert mel_frames_for_units(25, 25) == 86
    assert mel_frames_for_units(1, 25) == 3


def tiny_model(frame_rate: float = 50) -> Unit2Mel:
    torch.manual_seed(0)
    return Unit2Mel(vocab_size=10, n_speakers=3, frame_rate=frame_rate, dim=32, layers=2,
                    heads=4, conv_kernel=5, speaker_dim=8).eval()


def test_unit2mel_shapes() -> None:
    model = tiny_model()
    units = torch.randint(0, 10, (2, 50))
    mel, mask = model(units, torch.tensor([50, 30]), torch.tensor([0, 2]))
    assert mel.shape == (2, 86, N_MELS)
    assert mask.sum(1).tolist() == [86, mel_frames_for_units(30, 50)]


def test_padding_does_not_leak() -> None:
    model = tiny_model()
    short, long = torch.randint(0, 10, (20,)), torch.randint(0, 10, (60,))
    with torch.no_grad():
        alone, _ = model(short[None], torch.tensor([20]), torch.tensor([1]))
        batch = torch.full((2, 60), model.pad_id)
        batch[0, :20], batch[1] = short, long
        together, mask = model(batch, torch.tensor([20, 60]), torch.tensor([1, 2]))
    frames = alone.shape[1]
    assert int(mask[0].sum()) == frames
    torch.testing.assert_close(together[0, :frames], alone[0], atol=1e-5, rtol=1e-5)


def tiny_dvector_model() -> Unit2Mel:
    torch.manual_seed(0)
    return Unit2Mel(vocab_size=10, n_speakers=3, frame_rate=50, dim=32, layers=2, heads=4,
                    conv_kernel=5, speaker_dim=8, speaker_input="dvector").eval()


def dvectors(n: int, seed: int = 0) -> torch.Tensor:
    """(n, 256) random unit vectors, standing in for d-vectors."""
    v = torch.randn(n, DVECTOR_DIM, generator=torch.Generator().manual_seed(seed))
    return v / v.norm(dim=1, keepdim=True)


def test_unit2mel_on_dvectors_shapes_padding_and_scale() -> None:
    model = tiny_dvector_model()
    assert model.hparams["speaker_input"] == "dvector"
    units = torch.randint(0, 10, (2, 50))
    voices = dvectors(2)
    with torch.no_grad():
        mel, mask = model(units, torch.tensor([50, 30]), voices)
        assert mel.shape == (2, 86, N_MELS)
        assert mask.sum(1).tolist() == [86, mel_frames_for_units(30, 50)]
        # padding does not leak, as with the table
        alone, _ = model(units[1:, :30], torch.tensor([30]), voices[1:])
        frames = alone.shape[1]
        torch.testing.assert_close(mel[1, :frames], alone[0], atol=1e-5, rtol=1e-5)
        # only the direction of a d-vector counts; another voice sounds otherwise
        scaled, _ = model(units, torch.tensor([50, 30]), 3.0 * voices)
        torch.testing.assert_close(scaled, mel, atol=1e-5, rtol=1e-5)
        other, _ = model(units, torch.tensor([50, 30]), voices.flip(0))
        assert not torch.allclose(other[0], mel[0], atol=1e-3)
    one = model.utterance_mel(units[0], voices[0])  # (256,) -> (N_MELS, M)
    torch.testing.assert_close(one, mel[0].T, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r"\(B, 256\) speakers"):
        model(units, torch.tensor([50, 30]), torch.tensor([0, 1]))  # indices to a d-vector model
    with pytest.raises(ValueError, match="speaker indices"):
        tiny_model()(units, torch.tensor([50, 30]), voices)  # d-vectors to a table model


# --------------------------------------------------------------------------------------------
# Training on a tiny corpus, and decoding
# --------------------------------------------------------------------------------------------

FRAME_RATE = 50
VOCAB = 6
SPEAKERS = {"spk_low": 110.0, "spk_high": 210.0}  # speaker -> base pitch


def unit_wave(units: np.ndarray, base: float, rate: int = 16000) -> np.ndarray:
    """Each 20 ms unit is a harmonic tone whose pitch the unit id sets: the units carry the
    content, the speaker the register, so a unit vocoder has something to learn."""
    hop = rate // FRAME_RATE
    f0 = np.repeat(base * (1 + 0.2 * units), hop)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 12))
    return (0.2 * wave / np.abs(wave).max()).astype(np.float32)


def write_tiny_corpus(root: Path, unseen: dict[str, float] | None = None) -> tuple[Path, Path]:
    """8 train and 2 dev utterances of the two SPEAKERS; with ``unseen`` (speaker -> base
    pitch), 2 more dev utterances of each of those voices, never heard in training."""
    rng = np.random.default_rng(0)
    corpus, tokens = root / "corpus", root / "tokens"
    tokens.mkdir(parents=True)
    write_meta(tokens, {"family": "toy", "vocab_size": VOCAB, "frame_rate": FRAME_RATE,
                        "sample_rate": 16000})
    pitch = SPEAKERS | (unseen or {})
    for split, voices in (("train", list(SPEAKERS) * 4),
                          ("dev", list(SPEAKERS) + [v for v in unseen or {} for _ in range(2)])):
        records, items = [], []
        for n, speaker in enumerate(voices):
            # runs of 3-8 identical units, about 1-1.5 s in all
            runs = [np.full(rng.integers(3, 9), rng.integers(0, VOCAB)) for _ in range(12)]
            units = np.concatenate(runs)[: int(rng.integers(50, 75))]
            wave = unit_wave(units, pitch[speaker])
            path = corpus / "wavs" / f"{split}-{n}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_wav(path, wave, 16000)
            utt_id = f"{speaker}-{split}-{n}"
            records.append(Utterance(id=utt_id, speaker=speaker, text="x", normalized_text="x",
                                     audio_path=str(path), sample_rate=16000,
                                     num_samples=len(wave), duration=len(wave) / 16000,
                                     split=split))
            items.append((utt_id, speaker, units))
        write_manifest(manifest_path(corpus, split), records)
        write_split(tokens, split, VOCAB, items)
    return corpus, tokens


TINY = ["vocoder.dim=32", "vocoder.layers=1", "vocoder.heads=2", "vocoder.conv_kernel=3",
        "vocoder.speaker_dim=8", "vocoder.steps=40", "vocoder.batch_seconds=4",
        "vocoder.max_seconds=1.0", "vocoder.lr=0.003", "vocoder.warmup_steps=5",
        "vocoder.checkpoint_every=20", "device=cpu"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vocoder")
    corpus, tokens = write_tiny_corpus(root)
    cfg = load_config(overrides=[*TINY, f"results_dir={root}", "tracking.backend=files"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(vocoder_training, "SAMPLE_UTTERANCES", 1)
        final = vocoder_training.train_vocoder(cfg, "toy", corpus, tokens, root / "out")
    return {"root": root, "corpus": corpus, "tokens": tokens, "final": final}


def test_training_lowers_the_loss_and_writes_outputs(trained: dict[str, Path]) -> None:
    out = trained["final"].parent
    history = (out / "tracking" / "train-vocoder" / "history.jsonl").read_text()
    losses = [row["train/loss"] for row in map(json.loads, history.splitlines())
              if "train/loss" in row]
    assert len(losses) == 4
    assert losses[-1] < 0.75 * losses[0]  # measured: 0.6
    assert (out / "last.pt").is_file()
    samples = sorted(p.name for p in (out / "samples").iterdir())
    assert samples == ["mels.png", "spk_low-dev-0.copy.wav", "spk_low-dev-0.wav"]
    assert (out / "tracking" / "train-vocoder" / "vocoder" / "mels.png").is_file()
    config = (out / "tracking" / "train-vocoder" / "config.yaml").read_text()
    assert "family: toy" in config and "stage: train-vocoder" in config
    artifacts = json.loads((out / "tracking" / "train-vocoder" / "artifacts.json").read_text())
    [artifact] = artifacts  # out/ is outside results/default: an "ext-" name
    assert (artifact["path"], artifact["type"], artifact["role"]) == (
        str(trained["final"].resolve()), "model", "output")
    assert artifact["name"].startswith("default-ext-")
    assert artifact["name"].endswith("-unit2mel.pt")


def test_checkpoint_decodes(trained: dict[str, Path]) -> None:
    vocoder = UnitVocoder.load(trained["final"], family="toy")
    assert (vocoder.family, vocoder.vocab_size, vocoder.frame_rate) == ("toy", VOCAB, FRAME_RATE)
    assert vocoder.speakers == sorted(SPEAKERS)
    tokens = np.array([0, 0, 1, 1, 2, 3, 4, 5] * 10)  # 80 units = 1.6 s
    wave, rate = vocoder.decode(tokens, "spk_high")
    assert rate == vocoder.sample_rate == 22050
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) / rate - len(tokens) / FRAME_RATE) < 256 / 22050
    assert np.abs(wave).max() <= 1.0


def test_decode_errors(trained: dict[str, Path]) -> None:
    vocoder = UnitVocoder.load(trained["final"])
    with pytest.raises(VocoderError, match="unknown speaker 'nobody'.*spk_high, spk_low"):
        vocoder.decode(np.array([1, 2, 3]), "nobody")
    with pytest.raises(VocoderError, match=r"outside the vocabulary \[0, 6\)"):
        vocoder.decode(np.array([1, 2, VOCAB + 1]), "spk_low")
    with pytest.raises(VocoderError, match="non-empty"):
        vocoder.decode(np.array([], dtype=np.int64), "spk_low")
    with pytest.raises(VocoderError, match="decodes 'toy' units, not 'whisper'"):
        UnitVocoder.load(trained["final"], family="whisper")


def test_resume_equals_uninterrupted(trained: dict[str, Path], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(overrides=[*TINY, f"results_dir={tmp_path}", "tracking.backend=none"])
    monkeypatch.setattr(vocoder_training, "SAMPLE_UTTERANCES", 1)
    real_save = vocoder_training.save_training_state

    def crash_after_first_state(*args: object, **kwargs: object) -> None:
        real_save(*args, **kwargs)
        raise KeyboardInterrupt("simulated crash")

    out = tmp_path / "out"
    monkeypatch.setattr(vocoder_training, "save_training_state", crash_after_first_state)
    with pytest.raises(KeyboardInterrupt):
        vocoder_training.train_vocoder(cfg, "toy", trained["corpus"], trained["tokens"], out)
    monkeypatch.setattr(vocoder_training, "save_training_state", real_save)
    steps_run = []
    real_step = vocoder_training.train_step
    monkeypatch.setattr(vocoder_training, "train_step",
                        lambda *args: steps_run.append(1) or real_step(*args))
    resumed = torch.load(vocoder_training.train_vocoder(cfg, "toy", trained["corpus"],
                                                        trained["tokens"], out),
                         weights_only=True)
    uninterrupted = torch.load(trained["final"], weights_only=True)
    assert resumed["meta"]["steps"] == uninterrupted["meta"]["steps"] == 40
    assert len(steps_run) == 20  # it went on from step 20 of last.pt
    for name, tensor in uninterrupted["state"].items():
        assert torch.equal(resumed["state"][name], tensor), name



def test_another_models_state_is_moved_aside_not_resumed(trained: dict[str, Path],
                                                         tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(trained["final"].parent / "last.pt", out / "last.pt")
    cfg = load_config(overrides=[*TINY, "vocoder.dim=16", f"results_dir={tmp_path}",
                                 "tracking.backend=none"])
    vocoder_training.train_vocoder(cfg, "toy", trained["corpus"], trained["tokens"], out)
    said = capsys.readouterr().out
    assert "belongs to another run" in said and "vocoder.dim:" in said  # names what differs
    stale = load_checkpoint(out / "last.stale.pt")
    assert stale["meta"]["model"]["dim"] != 16  # the other run's state, kept
    assert load_checkpoint(out / "unit2mel.pt")["meta"]["model"]["dim"] == 16  # trained anew


def test_weight_average_is_what_the_checkpoint_holds_and_it_resumes(
        trained: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """vocoder.ema: the final checkpoint holds the moving average of the weights (not the last
    step's), the average travels in last.pt, and a run stopped half way ends exactly like one
    that was not."""
    overrides = [*TINY, "vocoder.ema=0.9", "tracking.backend=none"]
    monkeypatch.setattr(vocoder_training, "SAMPLE_UTTERANCES", 1)
    whole = vocoder_training.train_vocoder(
        load_config(overrides=[*overrides, f"results_dir={tmp_path / 'a'}"]), "toy",
        trained["corpus"], trained["tokens"], tmp_path / "a")
    averaged = load_checkpoint(whole)
    last = load_checkpoint(tmp_path / "a" / "last.pt", kind=vocoder_training.TRAIN_STATE_KIND)
    assert averaged["meta"]["ema"] == 0.9
    for name, tensor in averaged["state"].items():  # the average, not the last weights
        if tensor.is_floating_point():
            assert torch.equal(tensor, last["state"]["ema"][name]), name
    assert any(not torch.equal(averaged["state"][k], last["state"]["model"][k])
               for k in averaged["state"])
    vocoder = UnitVocoder.load(whole, family="toy")  # decodes like any unit2mel
    wave, _ = vocoder.decode(np.array([0, 1, 2, 3] * 20), "spk_low")
    assert np.isfinite(wave).all() and len(wave) > 0

    real_save = vocoder_training.save_training_state

    def crash_after_first_state(*args: object, **kwargs: object) -> None:
        real_save(*args, **kwargs)
        raise KeyboardInterrupt("simulated crash")

    cfg = load_config(overrides=[*overrides, f"results_dir={tmp_path / 'b'}"])
    monkeypatch.setattr(vocoder_training, "save_training_state", crash_after_first_state)
    with pytest.raises(KeyboardInterrupt):
        vocoder_training.train_vocoder(cfg, "toy", trained["corpus"], trained["tokens"],
                                       tmp_path / "b")
    monkeypatch.setattr(vocoder_training, "save_training_state", real_save)
    resumed = load_checkpoint(vocoder_training.train_vocoder(
        cfg, "toy", trained["corpus"], trained["tokens"], tmp_path / "b"))
    for name, tensor in averaged["state"].items():
        assert torch.equal(resumed["state"][name], tensor), name


# --------------------------------------------------------------------------------------------
# Conditioned on d-vectors (vocoder.speaker_conditioning: dvector): a voice unseen in training
# --------------------------------------------------------------------------------------------

UNSEEN = {"spk_new": 160.0}  # a dev voice that training never hears


@pytest.fixture(scope="module")
def dvector_trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny corpus with an unseen dev voice, its d-vectors from the real GE2E encoder, and
    a vocoder trained on them."""
    from vadusa.data.dvectors import compute_dvectors  # noqa: PLC0415
    from vadusa.eval.similarity import SpeakerSimilarity  # noqa: PLC0415

    root = tmp_path_factory.mktemp("dvector")
    corpus, tokens = write_tiny_corpus(root, unseen=UNSEEN)
    encoder = SpeakerSimilarity()
    for split in ("train", "dev"):
        assert compute_dvectors(corpus, split, encoder).skipped == {}
    cfg = load_config(overrides=[*TINY, "vocoder.speaker_conditioning=dvector",
                                 f"results_dir={root}", "tracking.backend=files"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(vocoder_training, "SAMPLE_UTTERANCES", 3)
        final = vocoder_training.train_vocoder(cfg, "toy", corpus, tokens, root / "out")
    return {"root": root, "corpus": corpus, "tokens": tokens, "final": final}


def test_dvector_training_without_dvectors_says_what_to_run(trained: dict[str, Path],
                                                            tmp_path: Path) -> None:
    from vadusa.data.dvectors import DvectorStoreError  # noqa: PLC0415

    cfg = load_config(overrides=[*TINY, "vocoder.speaker_conditioning=dvector",
                                 f"results_dir={tmp_path}", "tracking.backend=none"])
    with pytest.raises(DvectorStoreError, match=r"dvectors/train\.npz does not exist.*`vadusa "
                                                r"embed-speakers --corpus .* --split train`"):
        vocoder_training.train_vocoder(cfg, "toy", trained["corpus"], trained["tokens"],
                                       tmp_path / "out")


def test_prompts_are_other_utterances_of_the_voice(dvector_trained: dict[str, Path]) -> None:
    from vadusa.data.dvectors import read_dvectors  # noqa: PLC0415

    corpus = dvector_trained["corpus"]
    vectors = read_dvectors(corpus, "dev")
    prompts = vocoder_training.Prompts(corpus, "dev", vectors)
    assert sorted(prompts.ids) == ["spk_high", "spk_low", "spk_new"]
    rng = np.random.default_rng(0)
    new = [vocoder_training.Example(i, -1, np.zeros(1), torch.zeros(1, N_MELS), voice="spk_new")
           for i in prompts.ids["spk_new"]]
    for _ in range(20):  # two utterances: each is always prompted by the other
        assert np.array_equal(prompts.draw(new[0], rng), vectors[new[1].id])
        assert np.array_equal(prompts.draw(new[1], rng), vectors[new[0].id])
    [alone] = prompts.ids["spk_low"]  # the only dev utterance of its voice: its own
    example = vocoder_training.Example(alone, 0, np.zeros(1), torch.zeros(1, N_MELS),
                                       voice="spk_low")
    assert np.array_equal(prompts.draw(example, rng), vectors[alone])


def test_dvector_training_covers_unseen_dev_voices(dvector_trained: dict[str, Path]) -> None:
    out = dvector_trained["final"].parent
    summary = json.loads((out / "tracking" / "train-vocoder" / "summary.json").read_text())
    assert summary["dev_utterances"] == 4 and summary["dev_unseen_speaker"] == 2
    assert summary["dev_unknown_speaker"] == 0
    assert np.isfinite(summary["dev_loss"])
    history = (out / "tracking" / "train-vocoder" / "history.jsonl").read_text()
    losses = [row["train/loss"] for row in map(json.loads, history.splitlines())
              if "train/loss" in row]
    assert losses[-1] < 0.85 * losses[0]  # measured: 0.77 (the table's run: 0.6)
    meta = load_checkpoint(dvector_trained["final"])["meta"]
    assert meta["speaker_conditioning"] == "dvector"
    assert meta["model"]["speaker_input"] == "dvector"
    assert meta["speakers"] == sorted(SPEAKERS)
    means = meta["speaker_dvectors"]  # each training voice's mean d-vector, unit length
    assert means.shape == (2, DVECTOR_DIM)
    torch.testing.assert_close(means.norm(dim=1), torch.ones(2))
    # a sample of each dev voice, the unseen one too, rendered from its prompt
    samples = {p.name for p in (out / "samples").iterdir()}
    assert {"spk_new-dev-2.wav", "spk_new-dev-2.copy.wav", "mels.png"} <= samples


def test_dvector_checkpoint_decodes_by_name_and_by_dvector(
        dvector_trained: dict[str, Path]) -> None:
    from vadusa.data.dvectors import read_dvectors  # noqa: PLC0415
    from vadusa.vocoder import voice_for  # noqa: PLC0415

    vocoder = UnitVocoder.load(dvector_trained["final"], family="toy")
    assert vocoder.speaker_conditioning == "dvector" and vocoder.speakers == sorted(SPEAKERS)
    tokens = np.array([0, 0, 1, 1, 2, 3, 4, 5] * 10)
    by_name, rate = vocoder.decode(tokens, "spk_high")  # a training voice: its mean d-vector
    mean = vocoder.meta["speaker_dvectors"][vocoder.speakers.index("spk_high")].numpy()
    torch.testing.assert_close(vocoder.mel(tokens, "spk_high"), vocoder.mel(tokens, mean))
    prompt = read_dvectors(dvector_trained["corpus"], "dev")["spk_new-dev-3"]
    wave, _ = vocoder.decode(tokens, prompt)  # a voice it never heard, from its prompt
    assert rate == 22050 and wave.dtype == np.float32 and wave.shape == by_name.shape
    assert np.isfinite(wave).all() and not np.allclose(wave, by_name)
    # voice_for hands the prompt's d-vector through, and keeps today's choice without one
    np.testing.assert_array_equal(voice_for(vocoder, "spk_new", embedding=prompt), prompt)
    assert voice_for(vocoder, "spk_new") == "spk_high"  # the first voice
    assert voice_for(vocoder, "spk_low") == "spk_low"
    with pytest.raises(VocoderError, match=r"unknown speaker 'spk_new'.*d-vector"):
        vocoder.decode(tokens, "spk_new")
    with pytest.raises(VocoderError, match=r"\(256,\) d-vector"):
        vocoder.decode(tokens, prompt[:10])


def test_table_vocoder_takes_names_and_old_checkpoints_load(trained: dict[str, Path],
                                                           tmp_path: Path) -> None:
    from vadusa.checkpoint import save_checkpoint  # noqa: PLC0415
    from vadusa.vocoder import voice_for  # noqa: PLC0415

    vocoder = UnitVocoder.load(trained["final"])
    assert vocoder.speaker_conditioning == "table"
    tokens = np.array([0, 1, 2, 3] * 20)
    prompt = dvectors(1)[0].numpy()
    assert voice_for(vocoder, "spk_low", embedding=prompt) == "spk_low"  # a table: the name
    assert voice_for(vocoder, "nobody", embedding=prompt) == "spk_high"
    with pytest.raises(VocoderError, match="table of training voices.*not a d-vector"):
        vocoder.decode(tokens, prompt)
    # a checkpoint written before d-vectors existed: no mode in its meta or hyperparameters
    blob = load_checkpoint(trained["final"])
    del blob["meta"]["speaker_conditioning"], blob["meta"]["model"]["speaker_input"]
    save_checkpoint(tmp_path / "old.pt", kind=blob["kind"], config=blob["config"],
                    state=blob["state"], meta=blob["meta"])
    old = UnitVocoder.load(tmp_path / "old.pt", family="toy")
    assert old.speaker_conditioning == "table" and old.model.speaker_input == "table"
    torch.testing.assert_close(old.mel(tokens, "spk_low"), vocoder.mel(tokens, "spk_low"))


def test_dvector_resume_equals_uninterrupted(dvector_trained: dict[str, Path], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The prompts are drawn per step from the seed: a resumed run ends on the same weights."""
    cfg = load_config(overrides=[*TINY, "vocoder.speaker_conditioning=dvector",
                                 f"results_dir={tmp_path}", "tracking.backend=none"])
    monkeypatch.setattr(vocoder_training, "SAMPLE_UTTERANCES", 0)
    real_save = vocoder_training.save_training_state

    def crash_after_first_state(*args: object, **kwargs: object) -> None:
        real_save(*args, **kwargs)
        raise KeyboardInterrupt("simulated crash")

    out, data = tmp_path / "out", (dvector_trained["corpus"], dvector_trained["tokens"])
    monkeypatch.setattr(vocoder_training, "save_training_state", crash_after_first_state)
    with pytest.raises(KeyboardInterrupt):
        vocoder_training.train_vocoder(cfg, "toy", *data, out)
    monkeypatch.setattr(vocoder_training, "save_training_state", real_save)
    resumed = load_checkpoint(vocoder_training.train_vocoder(cfg, "toy", *data, out))
    uninterrupted = load_checkpoint(dvector_trained["final"])
    assert resumed["meta"]["steps"] == 40
    assert resumed["meta"]["dev_loss"] == uninterrupted["meta"]["dev_loss"]
    for name, tensor in uninterrupted["state"].items():
        assert torch.equal(resumed["state"][name], tensor), name


def test_another_mode_or_other_dvectors_start_over(dvector_trained: dict[str, Path],
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    """A last.pt of the other conditioning mode, or trained on other d-vectors, is another
    run's: moved aside, not resumed (the first step of the new run is enough to tell)."""
    from vadusa.data.dvectors import read_dvectors, write_dvectors  # noqa: PLC0415

    def first_step(*args: object) -> None:
        raise KeyboardInterrupt("stop at the first step")

    monkeypatch.setattr(vocoder_training, "train_step", first_step)
    last = dvector_trained["final"].parent / "last.pt"

    def start(corpus: Path, *overrides: str) -> str:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        out.mkdir()
        shutil.copy(last, out / "last.pt")
        cfg = load_config(overrides=[*TINY, *overrides, f"results_dir={tmp_path}",
                                     "tracking.backend=none"])
        with pytest.raises(KeyboardInterrupt):
            vocoder_training.train_vocoder(cfg, "toy", corpus, dvector_trained["tokens"], out)
        assert (out / "last.stale.pt").is_file()
        return capsys.readouterr().out

    said = start(dvector_trained["corpus"], "vocoder.speaker_conditioning=table")
    assert "belongs to another run" in said
    assert "vocoder.speaker_conditioning: 'dvector' -> 'table'" in said

    corpus = tmp_path / "corpus"  # the same utterances, other training d-vectors
    shutil.copytree(dvector_trained["corpus"], corpus)
    vectors = read_dvectors(corpus, "train")
    write_dvectors(corpus / "dvectors" / "train.npz", list(vectors),
                   np.stack([-v for v in vectors.values()]))
    said = start(corpus, "vocoder.speaker_conditioning=dvector")
    assert "belongs to another run" in said and "dvectors" in said
    assert "vocoder.speaker_conditioning" not in said
