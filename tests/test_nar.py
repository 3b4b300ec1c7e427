"""The NAR stage of the acoustic families (model/nar.py, training/nar.py): shapes, masking,
which codebooks a stage reads, codebook 1 passing through, training and its exact resume."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.test_tokenizers import tiny_corpus

from vadusa.checkpoint import load_checkpoint
from vadusa.config import load_config
from vadusa.data.manifest import manifest_path, read_manifest
from vadusa.model.nar import CodebookNAR, NARError, NARModelConfig, load_nar
from vadusa.tokenizers.store import write_meta, write_split
from vadusa.training import nar as nar_training
from vadusa.training.nar import train_nar

CFG = NARModelConfig(n_symbols=10, n_speakers=2, codebooks=4, entries=16, dim=32, layers=2,
                     heads=2, dropout=0.0)


def model() -> CodebookNAR:
    torch.manual_seed(0)
    return CodebookNAR(CFG).eval()


def test_each_stage_predicts_its_codebook_for_every_frame() -> None:
    nar = model()
    text = torch.randint(0, 10, (2, 5))
    codes = torch.randint(0, 16, (2, 7, 4))
    for stage in (2, 3, 4):
        assert nar(text, codes, torch.tensor([0, 1]), stage).shape == (2, 7, 16)
    with pytest.raises(ValueError, match="outside 2..4"):
        nar(text, codes, torch.tensor([0, 1]), 1)
    with pytest.raises(ValueError, match="reads codebooks 1..3"):
        nar(text, codes[..., :2], torch.tensor([0, 1]), 4)


def test_a_stage_reads_only_the_codebooks_below_it_and_sees_both_ways() -> None:
    nar = model()
    text, speakers = torch.randint(0, 10, (1, 5)), torch.tensor([1])
    codes = torch.randint(0, 16, (1, 7, 4))
    later = codes.clone()
    later[..., 2:] = (later[..., 2:] + 1) % 16  # codebooks 3 and 4 changed
    assert torch.equal(nar(text, codes, speakers, 3), nar(text, later, speakers, 3))
    assert not torch.equal(nar(text, codes, speakers, 4), nar(text, later, speakers, 4))
    # bidirectional: the last frame's code moves the first frame's prediction
    moved = codes.clone()
    moved[0, -1, 0] = (moved[0, -1, 0] + 1) % 16
    assert not torch.allclose(nar(text, codes, speakers, 2)[0, 0],
                              nar(text, moved, speakers, 2)[0, 0])


def test_padding_changes_nothing_for_the_real_positions() -> None:
    nar = model()
    text, codes = torch.randint(0, 10, (1, 4)), torch.randint(0, 16, (1, 6, 4))
    alone = nar(text, codes, torch.tensor([0]), 3)
    padded_text = torch.cat([text, torch.full((1, 3), nar.symbol_pad)], dim=1)
    padded_codes = torch.cat([codes, torch.full((1, 5, 4), nar.code_pad)], dim=1)
    other = torch.randint(0, 10, (1, 7)), torch.randint(0, 16, (1, 11, 4))
    batch = nar(torch.cat([padded_text, other[0]]), torch.cat([padded_codes, other[1]]),
                torch.tensor([0, 1]), 3)
    assert torch.allclose(batch[0, :6], alone[0], atol=1e-5)


def test_fill_keeps_codebook_one_and_adds_the_others() -> None:
    nar = model()
    first = torch.randint(0, 16, (9,))
    codes = nar.fill([1, 2, 3], first, speaker=0)
    assert codes.shape == (9, 4)
    assert torch.equal(codes[:, 0], first)
    assert codes.min() >= 0 and codes.max() < 16


def with_entries() -> CodebookNAR:
    """A stage holding codebook entries of falling scale along other axes, so that greedy
    residual quantization of any sum of one entry per codebook finds those entries again."""
    torch.manual_seed(0)
    nar = CodebookNAR(replace(CFG, vector_dim=3)).eval()
    for k, scale in enumerate((100.0, 10.0, 1.0, 0.1)):
        # entry j of codebook k: scale * (j - 7.5) along axis k mod 3
        nar.vectors[k, :, k % 3] = scale * (torch.arange(16.0) - 7.5)
    return nar


def test_expected_entries_and_their_requantization() -> None:
    nar = with_entries()
    ids = torch.randint(0, 16, (5, 3))  # codebooks 2..4 of 5 frames
    total = sum(nar.vectors[k + 1][ids[:, k]] for k in range(3))  # (5, 3)
    assert torch.equal(nar.requantize(total), ids)
    # a certain prediction expects exactly its entry; an even one the codebook's mean
    certain = 50.0 * torch.nn.functional.one_hot(ids[:, 0], 16).float()  # (5, 16)
    assert torch.allclose(nar.expected(certain, 2), nar.vectors[1][ids[:, 0]], atol=1e-4)
    assert torch.allclose(nar.expected(torch.zeros(16), 2), nar.vectors[1].mean(0))
    first = torch.randint(0, 16, (9,))
    codes = nar.fill([1, 2, 3], first, speaker=0, decoding="expected")
    assert codes.shape == (9, 4) and torch.equal(codes[:, 0], first)
    assert codes.min() >= 0 and codes.max() < 16
    with pytest.raises(NARError, match="holds no codebook entries"):
        model().fill([1], first, speaker=0, decoding="expected")
    with pytest.raises(NARError, match="unknown NAR decoding 'mean'"):
        nar.fill([1], first, speaker=0, decoding="mean")


def test_entry_input_reads_what_the_codebooks_below_reconstruct() -> None:
    torch.manual_seed(0)
    nar = CodebookNAR(replace(CFG, vector_dim=3, entry_input=True)).eval()
    nar.vectors.normal_()
    codes = torch.randint(0, 16, (2, 7, 4))
    rms = nar.vectors[0].square().sum(-1).mean().sqrt()
    by_hand = (nar.vectors[0][codes[..., 0]] + nar.vectors[1][codes[..., 1]]) / rms  # (2, 7, 3)
    assert torch.allclose(nar.reconstruction(codes, 2), by_hand)
    text, speakers = torch.randint(0, 10, (2, 5)), torch.tensor([0, 1])
    later = codes.clone()
    later[..., 2:] = (later[..., 2:] + 1) % 16
    assert torch.equal(nar(text, codes, speakers, 3), nar(text, later, speakers, 3))
    # the same codes, one entry of codebook 1 moved: only the entry input changed
    moved = nar(text, codes, speakers, 2)
    nar.vectors[0, codes[0, 0, 0]] += 1.0
    assert not torch.allclose(moved[0], nar(text, codes, speakers, 2)[0])
    with pytest.raises(ValueError, match="give vector_dim"):
        CodebookNAR(replace(CFG, entry_input=True))


def test_the_expected_entry_error_is_zero_for_a_certain_right_prediction() -> None:
    nar = with_entries()
    text, codes = torch.randint(0, 10, (1, 4)), torch.randint(0, 16, (1, 6, 4))
    with torch.no_grad():  # stage 2 says entry 3 for every frame, all but certain
        nar.out[0].weight.zero_()
        nar.out[0].bias.copy_(50.0 * torch.nn.functional.one_hot(torch.tensor(3), 16))
    right = codes.clone()
    right[..., 1] = 3
    score = nar_training.stage_loss(nar, text, right, torch.tensor([0]), 2, 1.0)
    assert score.right == 6 and score.residual == pytest.approx(0.0, abs=1e-6)
    wrong = codes.clone()
    wrong[..., 1] = 4  # one entry away: 10 units along axis 1
    score = nar_training.stage_loss(nar, text, wrong, torch.tensor([0]), 2, 1.0)
    mean_square = float(nar.vectors[1].square().sum(-1).mean())
    assert score.right == 0
    assert score.residual == pytest.approx(6 * 100.0 / mean_square, rel=1e-4)
    ce = nar_training.stage_loss(nar, text, wrong, torch.tensor([0]), 2, 0.0).loss
    assert float(score.loss.detach()) == pytest.approx(
        float(ce.detach()) + 100.0 / mean_square, rel=1e-4)


def test_a_regression_reads_codebook_one_and_fills_the_rest_by_requantizing() -> None:
    torch.manual_seed(0)
    nar = CodebookNAR(replace(CFG, vector_dim=3, regression=True)).eval()
    reference = with_entries()
    nar.vectors.copy_(reference.vectors)
    text, speakers = torch.randint(0, 10, (2, 5)), torch.tensor([0, 1])
    codes = torch.randint(0, 16, (2, 7, 4))
    guess = nar.residual(text, codes, speakers)
    assert guess.shape == (2, 7, 3)
    later = codes.clone()
    later[..., 1:] = (later[..., 1:] + 1) % 16  # codebooks 2..4 changed: nothing read them
    assert torch.equal(guess, nar.residual(text, later, speakers))
    by_hand = sum(nar.vectors[k][codes[..., k]] for k in (1, 2, 3))  # (2, 7, 3)
    assert torch.allclose(nar.true_residual(codes), by_hand)
    # a perfect guess: zero error, and fill re-quantizes it into the true codebooks 2..4
    with torch.no_grad():
        nar.regress.weight.zero_()
        nar.regress.bias.zero_()
    score = nar_training.residual_loss(nar, text, codes, speakers)
    assert score.residual == pytest.approx(14 * float(
        by_hand.square().sum(-1).mean() / nar.residual_scale().square()), rel=1e-4)
    nar.residual = lambda *args: nar.true_residual(codes[:1])  # type: ignore[method-assign]
    filled = nar.fill([1, 2], codes[0, :, 0], speaker=0)
    assert torch.equal(filled, codes[0])  # codebook 1 unchanged, the rest found again
    with pytest.raises(NARError, match="call ``residual``"):
        nar(text, codes, speakers, 2)
    with pytest.raises(ValueError, match="give vector_dim"):
        CodebookNAR(replace(CFG, regression=True))


def test_a_mel_stage_hands_its_mel_on_and_fills_the_codes_it_encodes() -> None:
    """``MelStage``: ``fill`` re-quantizes the regressed mel (here, by hand, exactly what three
    codebooks encode) into those codebooks, codebook 1 unchanged; ``speak`` hands the mel itself
    to the vocoder's ``decode_mel`` and refuses a vocoder without one."""
    from vadusa.model.nar import MelStage  # noqa: PLC0415
    from vadusa.tokenizers.mel import unstack  # noqa: PLC0415
    from vadusa.vocoder.unit2mel import Unit2Mel  # noqa: PLC0415

    torch.manual_seed(0)
    vectors = torch.stack([scale * torch.randn(16, 160) for scale in (100.0, 10.0, 1.0)])
    stage = MelStage(Unit2Mel(16, 1, 43.0, dim=16, layers=1, heads=2, speaker_dim=4).eval(),
                     vectors, ["s1"], {"family": "melrvq"}, Path("nar.pt"))
    codes = torch.randint(0, 16, (7, 3))
    mel = unstack(vectors[torch.arange(3), codes].sum(1))  # (7, 3, 160) -> (7, 160) -> (80, 14)
    assert stage.mel("s1", codes[:, 0].numpy()).shape == (80, 14)  # 2 mel frames a token
    stage.mel = lambda speaker, first: mel  # type: ignore[method-assign]
    assert np.array_equal(stage.fill("any text", "s1", codes[:, 0].numpy()), codes.numpy())

    class MelVocoder:
        def decode_mel(self, given: torch.Tensor) -> tuple[np.ndarray, int]:
            assert given is mel  # as it is: not re-quantized
            return np.zeros(given.shape[1] * 256, np.float32), 22050

    wave, rate = stage.speak("any text", "s1", codes[:, 0].numpy(), MelVocoder(), "s1")
    assert (len(wave), rate) == (14 * 256, 22050)
    with pytest.raises(NARError, match="decode them with the melrvq family's vocoder"):
        stage.speak("any text", "s1", codes[:, 0].numpy(), object(), "s1")


def toy_tokens(tmp_path: Path, entries: int = 8, codebooks: int = 3, rate: float = 40.0,
               quantizer: str = "abc") -> tuple[Path, Path]:
    """The tiny chirp corpus with random codes whose later codebooks follow codebook 1
    (codebook k = (codebook 1 + k) mod ``entries``), so that the stage has something to learn."""
    corpus = tiny_corpus(tmp_path)
    tokens = tmp_path / "tokens"
    rng = np.random.default_rng(0)
    for split in ("train", "dev", "test"):
        items = []
        for rec in read_manifest(manifest_path(corpus, split)):
            first = rng.integers(0, entries, size=int(rec.duration * rate))
            items.append((rec.id, rec.speaker,
                          np.stack([(first + k) % entries for k in range(codebooks)], axis=1)))
        write_split(tokens, split, entries, items, codebooks=codebooks)
    write_meta(tokens, {"family": "melrvq", "vocab_size": entries, "codebooks": codebooks,
                        "frame_rate": rate, "quantizer_sha256": quantizer})
    return corpus, tokens


def nar_config(tmp_path: Path, steps: int = 40):
    cfg = load_config(overrides=[f"results_dir={tmp_path}", "tracking.backend=none",
                                 "device=cpu", "nar.dim=32", "nar.layers=1", "nar.heads=2",
                                 "nar.batch_frames=200", "nar.warmup_steps=5", "nar.lr=3e-3",
                                 f"nar.steps={steps}", "nar.checkpoint_every=10",
                                 # toy codes, no quantizer to give codebook entries: argmax
                                 "nar.decoding=argmax",
                                 # the classifying stages, on codes labelled melrvq
                                 "nar.mel_stage=false"])
    return cfg


@pytest.mark.slow
def test_training_learns_the_later_codebooks_and_fills_them(tmp_path: Path) -> None:
    corpus, tokens = toy_tokens(tmp_path)
    path = train_nar(nar_config(tmp_path, steps=60), "melrvq", corpus, tokens, tmp_path / "nar")
    dev = load_checkpoint(path)["meta"]["dev"]
    assert dev["nar/dev_acc_2"] > 0.9 and dev["nar/dev_acc_3"] > 0.9  # chance: 1/8
    stage = load_nar(path, family="melrvq")
    first = np.array([0, 3, 5, 7])
    filled = stage.fill("a chirp.", "s1", first)
    assert filled[:, 0].tolist() == first.tolist()
    assert filled[:, 1].tolist() == ((first + 1) % 8).tolist()
    assert stage.fill("a chirp.", "nobody", first).shape == (4, 3)  # unknown: average voice
    with pytest.raises(NARError, match="fills 'melrvq' codes, not 'encodec'"):
        load_nar(path, family="encodec")
    with pytest.raises(NARError, match="cannot decode by expectation"):
        load_nar(path, decoding="expected")


@pytest.mark.slow
def test_a_killed_run_resumes_where_it_stopped(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    corpus, tokens = toy_tokens(tmp_path)
    cfg = nar_config(tmp_path, steps=20)
    straight = train_nar(cfg, "melrvq", corpus, tokens, tmp_path / "a")
    real_save = nar_training.save_training_state

    def save_then_die(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        real_save(*args, **kwargs)
        raise KeyboardInterrupt("killed after the first checkpoint")

    monkeypatch.setattr(nar_training, "save_training_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_nar(cfg, "melrvq", corpus, tokens, tmp_path / "b")
    monkeypatch.setattr(nar_training, "save_training_state", real_save)
    resumed = train_nar(cfg, "melrvq", corpus, tokens, tmp_path / "b")
    a, b = load_checkpoint(straight)["state"], load_checkpoint(resumed)["state"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a run of other settings does not resume on that state: it moves aside and names why
    other = replace(cfg, nar=replace(cfg.nar, lr=1e-3))
    train_nar(other, "melrvq", corpus, tokens, tmp_path / "b")
    assert (tmp_path / "b" / "last.stale.pt").is_file()
    assert not torch.equal(load_checkpoint(tmp_path / "b" / "nar.pt")["state"]["out.0.weight"],
                           a["out.0.weight"])


def test_units_of_one_codebook_are_refused(tmp_path: Path) -> None:
    corpus = tiny_corpus(tmp_path)
    tokens = tmp_path / "tokens"
    for split in ("train", "dev", "test"):
        write_split(tokens, split, 8, [(r.id, r.speaker, np.array([1, 2, 3]))
                                       for r in read_manifest(manifest_path(corpus, split))])
    write_meta(tokens, {"family": "melrvq", "vocab_size": 8, "frame_rate": 40.0})
    with pytest.raises(NARError, match="one codebook per frame"):
        train_nar(nar_config(tmp_path), "melrvq", corpus, tokens, tmp_path / "nar")


@pytest.mark.slow
def test_synthesize_decodes_every_codebook_of_an_acoustic_family(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`vadusa synthesize` of a melrvq model: the AR model's codebook 1, the NAR stage's
    codebook 2, both decoded (``--nar none``: codebook 1 alone); a NAR stage trained on the
    codes of another quantizer is refused."""
    from test_train_base import tiny_cfg, tiny_data  # noqa: PLC0415
    from vadusa.checkpoint import file_digest  # noqa: PLC0415
    from vadusa.cli import main  # noqa: PLC0415
    from vadusa.data.audio import read  # noqa: PLC0415
    from vadusa.tokenizers.residual import ResidualKMeans  # noqa: PLC0415
    from vadusa.tokenizers.store import TokenSplit  # noqa: PLC0415
    from vadusa.training.tts import train_base  # noqa: PLC0415

    corpus, units = tiny_data(tmp_path)
    kmeans = tmp_path / "kmeans.npz"
    rvq = ResidualKMeans(np.random.default_rng(0).normal(size=(2, 16, 160)) - 4.0,
                         {"features": {"stack": 2}, "hifigan": "universal"})
    rvq.save(kmeans)
    tokens = tmp_path / "melrvq"
    for split in ("train", "dev", "test"):
        store = TokenSplit(units, split)
        write_split(tokens, split, 16, [(u, store.speakers[i], np.stack([t, (t + 3) % 16], 1))
                                        for i, (u, t) in enumerate(store)], codebooks=2)
    write_meta(tokens, {"family": "melrvq", "vocab_size": 16, "frame_rate": 10.0,
                        "codebooks": 2, "quantizer_sha256": file_digest(kmeans)})
    cfg = tiny_cfg(tmp_path, "train.steps=20")
    base = train_base(cfg, "melrvq", corpus, tokens, tmp_path / "base")
    nar = train_nar(replace(nar_config(tmp_path, steps=10), text=cfg.text), "melrvq", corpus,
                    tokens, tmp_path / "nar")
    common = ["synthesize", "--checkpoint", str(base), "--text", "one two.",
              "--vocoder", str(kmeans), "--set", "decoding.max_tokens_per_symbol=3"]
    assert main([*common, "--nar", str(nar), "--out", str(tmp_path / "all.wav")]) == 0
    out = capsys.readouterr().out
    assert ", 2 codebooks" in out
    frames = int(re.search(r"(\d+) tokens in", out).group(1))
    wave, rate = read(tmp_path / "all.wav")
    assert rate == 22050 and len(wave) == frames * 512
    assert main([*common, "--nar", "none", "--out", str(tmp_path / "one.wav")]) == 0
    assert "codebooks" not in capsys.readouterr().out
    assert len(read(tmp_path / "one.wav")[0]) == len(wave)
    # a mel stage (nar.mel_stage, the default): the unit-to-mel recipe on codebook 1 of the
    # same quantizer, trained where there is audio (the chirps), its mel decoded as it is; it
    # reads the family's quantizer beside the codes, as the DAG keeps it
    chirps, mel_tokens = toy_tokens(tmp_path / "chirps", entries=16, codebooks=2, rate=10.0,
                                    quantizer=file_digest(kmeans))
    shutil.copy(kmeans, mel_tokens / "kmeans.npz")
    mel_cfg = replace(load_config(overrides=[
        f"results_dir={tmp_path}", "tracking.backend=none", "device=cpu",
        "vocoder.dim=16", "vocoder.layers=1", "vocoder.heads=2", "vocoder.conv_kernel=3",
        "vocoder.speaker_dim=4", "vocoder.steps=6", "vocoder.batch_seconds=4",
        "vocoder.max_seconds=2", "vocoder.warmup_steps=2", "vocoder.checkpoint_every=3"]),
        text=cfg.text)
    mel_nar = train_nar(mel_cfg, "melrvq", chirps, mel_tokens, tmp_path / "mel")
    stage = load_nar(mel_nar, family="melrvq")
    assert stage.decoding == "continuous" and stage.codebooks == 2
    first = np.array([0, 3, 5, 7, 15])
    filled = stage.fill("one two.", "nobody", first)  # an unknown speaker: the first voice
    assert filled.shape == (5, 2) and filled[:, 0].tolist() == first.tolist()
    assert filled.min() >= 0 and filled.max() < 16
    assert main([*common, "--nar", str(mel_nar), "--out", str(tmp_path / "mel.wav")]) == 0
    out = capsys.readouterr().out
    assert ", 2 codebooks (their mel, regressed)" in out
    frames = int(re.search(r"(\d+) tokens in", out).group(1))
    # 10 Hz tokens: the unit-to-mel's frames last as long as they do
    assert len(read(tmp_path / "mel.wav")[0]) == round(frames / (256 * 10.0 / 22050)) * 256

    ResidualKMeans(rvq.centroids.numpy() + 1.0, rvq.settings).save(kmeans)  # another quantizer
    assert main([*common, "--nar", str(nar), "--out", str(tmp_path / "x.wav")]) == 2
    assert "trained on codes of another quantizer" in capsys.readouterr().err
