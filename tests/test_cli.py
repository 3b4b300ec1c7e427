from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import requires_voices
from vadusa.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vadusa.cli", *args], capture_output=True,
                          text=True)


def test_typo_in_config_file_exits_2_naming_key_and_file(tmp_path: Path) -> None:
    bad = tmp_path / "exp.yaml"
    bad.write_text("corpus:\n  sampel_rate: 16000\n")
    result = run_cli("prepare", "--config", str(bad))
    assert result.returncode == 2
    assert "exp.yaml" in result.stderr and "corpus.sampel_rate" in result.stderr
    assert "did you mean 'sample_rate'" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_corpus_source_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli("prepare", "--set", "corpus.source=libritts", "--set",
                     f"corpus.libritts.root={tmp_path / 'LibriTTS'}", "--set",
                     "tracking.backend=none", "--out", str(tmp_path / "c"))
    assert result.returncode == 2
    assert "LibriTTS root not found" in result.stderr and "Traceback" not in result.stderr


def test_corpus_qa_without_corpus_says_what_to_run(tmp_path: Path) -> None:
    assert main(["corpus-qa", "--set", "tracking.backend=none",
                 "--corpus", str(tmp_path / "none")]) == 2


def test_config_command_prints_resolved_config(capsys: pytest.CaptureFixture) -> None:
    assert main(["config", "--set", "corpus.synthetic.hours=0.25"]) == 0
    out = capsys.readouterr().out
    assert "hours: 0.25" in out and "qa_per_voice: 15" in out  # a default, printed too


@requires_voices
@pytest.mark.slow
def test_prepare_then_corpus_qa(tmp_path: Path, repo: Path, tiny_overrides: list[str]) -> None:
    sets = [a for o in tiny_overrides for a in ("--set", o)]
    config = ["--config", str(repo / "config" / "tiny.yaml")]
    assert main(["prepare", *config, *sets, "--set", "tracking.backend=files"]) == 0
    corpus = tmp_path / "results" / "tiny" / "corpus"
    assert (corpus / "manifests" / "test.jsonl.gz").is_file()
    assert json.loads((corpus / "tracking" / "prepare" / "summary.json").read_text())[
        "corpus/speakers"] == 4
    assert (corpus / "hours_per_speaker.png").stat().st_size > 0
    assert main(["corpus-qa", *config, *sets, "--per-voice", "2"]) == 0
    assert (corpus / "qa" / "wer_per_voice.png").stat().st_size > 0
    qa = json.loads((corpus / "qa" / "metrics.json").read_text())
    assert qa["overall"]["utterances"] == 8 and len(qa["voices"]) == 4
    assert 0.0 <= qa["overall"]["wer"] < 0.6
    assert {u["speaker"] for u in qa["per_utterance"]} == set(qa["voices"])
    # both judges per voice: the judge of record (Whisper base) first, the fast one beside it
    assert qa["judge"] == "whisper-base" and list(qa["judges"]) == ["whisper-base",
                                                                     "whisper-tiny.en"]
    assert qa["judges"]["whisper-base"]["overall"] == qa["overall"]
    for figures in qa["judges"].values():
        assert set(figures["voices"]) == set(qa["voices"])
        assert 0.0 <= figures["overall"]["wer"] < 0.6


def test_stages_without_their_inputs_say_what_to_run(tmp_path: Path) -> None:
    base = ["--set", "tracking.backend=none", "--set", f"results_dir={tmp_path}"]
    result = run_cli("tokenize", "--family", "whisper", *base)
    assert result.returncode == 2 and "vadusa fit-kmeans" in result.stderr
    result = run_cli("train-vocoder", "--family", "whisper", *base)
    assert result.returncode == 2 and "vadusa tokenize" in result.stderr
    result = run_cli("resynthesize", "--family", "whisper", "--split", "test", "--out",
                     str(tmp_path / "r"), *base)
    assert result.returncode == 2 and "vadusa prepare" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_family_is_refused() -> None:
    result = run_cli("tokenize", "--family", "mimi")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_bench_takes_several_heads_to_race_from_one_flag_or_many() -> None:
    from vadusa.cli import build_parser  # noqa: PLC0415

    parse = build_parser().parse_args
    for argv in (["--also-heads", "a.pt", "b.pt"],
                 ["--also-heads", "a.pt", "--also-heads", "b.pt"]):
        args = parse(["bench", "--checkpoint", "h.pt", "--split", "test", *argv])
        assert args.also_heads == ["a.pt", "b.pt"]
