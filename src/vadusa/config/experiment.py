"""The whole configuration of an experiment: ``Config``, the tree of every section, and
``load_config``/``dump_config``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vadusa.config.data import CorpusConfig, TextConfig, TokensConfig, VocoderConfig
from vadusa.config.decoding import DecodingConfig, JudgeConfig, MeasureConfig, SweepConfig
from vadusa.config.loading import from_plain, merge_sources, to_plain, validate
from vadusa.config.model import (
    AblationConfig,
    AlignConfig,
    DraftModelConfig,
    DurationsConfig,
    HeadsConfig,
    ModelConfig,
    NARConfig,
    TrainConfig,
)

__all__ = ["TrackingConfig", "Config", "load_config", "dump_config"]


@dataclass(frozen=True)
class TrackingConfig:
    backend: str = "wandb"  # wandb | files | none
    project: str = "vadusa"
    entity: str = ""
    mode: str = "offline"  # offline | online | disabled; WANDB_MODE in the environment wins


@dataclass(frozen=True)
class Config:
    experiment: str = "default"  # results go to <results_dir>/<experiment>/
    seed: int = 1234
    results_dir: str = "results"
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    text: TextConfig = field(default_factory=TextConfig)
    tokens: TokensConfig = field(default_factory=TokensConfig)
    vocoder: VocoderConfig = field(default_factory=VocoderConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    durations: DurationsConfig = field(default_factory=DurationsConfig)
    nar: NARConfig = field(default_factory=NARConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    draft: DraftModelConfig = field(default_factory=DraftModelConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    device: str = "auto"  # auto (cuda if available) | cpu | cuda
    sweep: SweepConfig = field(default_factory=SweepConfig)
    ablation: AblationConfig = field(default_factory=AblationConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    @property
    def experiment_dir(self) -> Path:
        return Path(self.results_dir) / self.experiment

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    def for_draft(self) -> Config:
        """This configuration as ``vadusa train-draft`` trains with it: the model's sizes
        and the training steps from the ``draft`` section, everything else as for the base
        (the same corpus, tokens, vocabulary and sequence layout, so the draft can serve it)."""
        d = self.draft
        return dataclasses.replace(
            self, model=dataclasses.replace(self.model, dim=d.dim, layers=d.layers,
                                            heads=d.heads),
            train=dataclasses.replace(self.train, steps=d.steps))

    def section_hash(self, *keys: str, exclude: tuple[str, ...] = ()) -> str:
        """A short digest of some sections (dotted paths, e.g. ``tokens.hubert``): lets the
        workflow re-run a stage only when the part of the configuration it reads changed.
        ``exclude`` drops keys inside those sections that the stage does not read."""
        plain = self.to_dict()
        for path in exclude:
            *parents, last = path.split(".")
            node = plain
            for part in parents:
                node = node[part]
            node.pop(last)

        def pick(path: str) -> Any:
            node = plain
            for part in path.split("."):
                node = node[part]
            return node

        blob = json.dumps({k: pick(k) for k in keys}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> Config:
        validate(data, source)
        return from_plain(cls, data)


def load_config(files: Iterable[str | Path] = (), overrides: Iterable[str] = ()) -> Config:
    return Config.from_dict(merge_sources(files, overrides), source="merged config")


def dump_config(cfg: Config, path: str | Path) -> None:
    """Write the fully resolved configuration (defaults included) as YAML."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(cfg.to_dict(), sort_keys=False)
    if not Path(path).exists() or Path(path).read_text() != text:  # keep mtime when unchanged
        Path(path).write_text(text)
