"""Shared fixtures. Tests never touch the network and never log to W&B."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from vadusa.data.manifest import Utterance, manifest_path, write_manifest
from vadusa.devices import flush_denormals

flush_denormals()  # as every `vadusa` command does (devices.py: denormals are slow on x86)

os.environ["WANDB_MODE"] = "disabled"
os.environ["WANDB_SILENT"] = "true"
os.environ["HF_HUB_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parents[1]


def voices_installed() -> bool:
    return shutil.which("flite") is not None and shutil.which("festival") is not None


requires_voices = pytest.mark.skipif(
    not voices_installed(),
    reason="flite/festival not installed: run `bash scripts/test.sh`, which installs them",
)


@pytest.fixture
def repo() -> Path:
    return REPO


# What the unit tests' toy models are written for, stated rather than taken from the embedded
# default (phonemes, a duration-aligned model without a prompt, token noise, temperature 0.7):
# letters, a prompted model with guided attention, clean inputs, temperature 1.
TOY_MODEL = ["text.frontend=characters", "model.prompt=true", "model.alignment=guided",
             "train.token_noise=0.0", "decoding.temperature=1.0"]


@pytest.fixture
def tiny_overrides(tmp_path: Path) -> list[str]:
    """Overrides that make any config write its results under a temporary directory."""
    return [f"results_dir={tmp_path / 'results'}", "tracking.backend=none"]


def write_tone_corpus(root: Path) -> Path:
    """Ten 1-2 s train utterances (and two dev ones) of gliding tones in noise, 16 kHz, two
    speakers, written as a vadusa corpus under ``root``."""
    rng = np.random.default_rng(0)
    records = {"train": [], "dev": []}
    for n in range(12):
        split = "dev" if n >= 10 else "train"
        samples = int(rng.uniform(1.0, 2.0) * 16000)
        t = np.arange(samples) / 16000
        f0 = rng.uniform(100, 300) * (1 + 0.5 * t)
        wave = 0.3 * np.sin(2 * math.pi * np.cumsum(f0) / 16000) * (np.sin(3 * t) > -0.5)
        wave = (wave + 0.01 * rng.standard_normal(samples)).astype(np.float32)
        path = root / "wav" / f"u{n}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, wave, 16000, subtype="PCM_16")
        records[split].append(Utterance(
            id=f"u{n}", speaker=f"s{n % 2}", text="tone", normalized_text="tone",
            audio_path=str(path), sample_rate=16000, num_samples=samples,
            duration=samples / 16000, split=split))
    for split, recs in records.items():
        write_manifest(manifest_path(root, split), recs)
    return root


# A codec of seconds on a CPU (tests/test_codec*.py): 50 Hz at 16 kHz like the default, but
# 4 filters and 3 codebooks of 32 (about 30 k parameters), trained for 3 steps
TINY_CODEC = {"n_filters": 4, "dimension": 16, "lstm": 1, "n_q": 3, "bins": 32}
TINY_CODEC_TRAIN = TINY_CODEC | {"steps": 3, "batch_seconds": 1.0, "segment_seconds": 0.5,
                                 "warmup_steps": 1, "checkpoint_every": 3, "eval_every": 3,
                                 "lr": 1e-3}


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from threads, and on a busy CPU (or under pytest-xdist) two
    OpenMP threads waiting on each other make them up to 100x slower; put back afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``first`` run first. The smoke run of the whole DAG takes most of the
    suite's time; collected last (its file sorts last), it started on one worker when the
    other had nearly finished the rest, and the suite took about the sum of the two. Started
    first, it runs beside the rest (``scripts/test.sh`` uses ``--dist worksteal``, so the other
    worker also takes over the tests queued behind it)."""
    items.sort(key=lambda item: item.get_closest_marker("first") is None)  # stable


@pytest.fixture(scope="session")
def aligned_heads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A duration-aligned base model with frozen draft heads of every kind on it: the toy
    corpus through the alignment chain by ``test_alignment.py``'s recipe (aligner, duration
    model, base trained with durations, MEDUSA heads ``heads``), plus Hydra heads (``hydra``)
    and shared heads of rank 4 (``shared``) on the same base, as ``test_heads.py`` trains
    them. Made once per session for the losslessness tests of any module."""
    from test_alignment import ALIGN  # noqa: PLC0415
    from test_heads import HEADS  # noqa: PLC0415
    from test_train_base import tiny_cfg, tiny_data  # noqa: PLC0415
    from vadusa.training.aligner import train_aligner  # noqa: PLC0415
    from vadusa.training.durations import train_durations  # noqa: PLC0415
    from vadusa.training.heads import train_heads  # noqa: PLC0415
    from vadusa.training.tts import train_base  # noqa: PLC0415

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only wait on each other (``one_thread``)
    try:
        tmp = tmp_path_factory.mktemp("aligned-heads")
        corpus, tokens = tiny_data(tmp)
        recipe = ("train.steps=150", "model.dropout=0.0", *HEADS, *ALIGN)
        cfg = tiny_cfg(tmp, *recipe)
        durations = tmp / "durations"
        train_aligner(cfg, "toy", corpus, tokens, durations)
        model = train_durations(cfg, corpus, durations, tmp / "dm")
        base = train_base(cfg, "toy", corpus, tokens, tmp / "base", durations_dir=durations,
                          duration_model=model)
        made = {"tmp": tmp, "corpus": corpus, "tokens": tokens, "durations": durations,
                "base": base}
        for name, kind in (("heads", ()), ("hydra", ("heads.kind=hydra", "heads.steps=60")),
                           ("shared", ("heads.kind=shared", "heads.rank=4",
                                       "heads.steps=60"))):
            made[name] = train_heads(tiny_cfg(tmp, *recipe, *kind), base, corpus, tokens,
                                     tmp / name, durations_dir=durations)
        return made
    finally:
        torch.set_num_threads(threads)
