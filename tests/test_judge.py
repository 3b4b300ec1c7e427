from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import requires_voices
from vadusa.config import JudgeConfig
from vadusa.data import audio
from vadusa.eval.judge import JudgeError, WhisperJudge, judge_model_dir
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
        judge_model_dir(JudgeConfig(model="base"))


@requires_voices
@pytest.mark.slow
def test_whisper_judges_a_synthesized_sentence(tmp_path: Path) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    wav = tmp_path / "fox.wav"
    subprocess.run([shutil.which("flite"), "-voice", "rms", "-t", text, "-o", str(wav)],
                   check=True)
    wave, rate = audio.read(wav)
    hyp = WhisperJudge(JudgeConfig()).transcribe(wave, rate)
    assert error_rates([text], [hyp]).wer <= 0.25, hyp
