"""Every default of the pipeline, in one place.

A configuration is a tree of frozen dataclasses whose defaults are the embedded default (the
2-core laptop run; ``config/config.yaml`` adds nothing to them). YAML files in ``config/``
state only how they differ from it; ``--set key.path=value`` overrides the files. Every file
and every override is validated against one JSON schema (``schemas/config.schema.json``, also
used by the Snakemake workflow) whose objects all set ``additionalProperties: false``, so a
misspelt key fails loudly with the file and the key named, instead of silently falling back to
a default.

    cfg = load_config(["config/tiny.yaml"], overrides=["corpus.synthetic.hours=0.1"])
    cfg.corpus.synthetic.hours  # 0.1

The package: the sections' dataclasses by stage (``data``: corpus, text, tokens, vocoder;
``model``: the models trained; ``decoding``: decoding, what the workflow measures, sweep,
judge), ``experiment`` (the whole tree, ``Config``, and ``load_config``/``dump_config``) and
``loading`` (YAML, overrides, the schema, dataclasses <-> plain data). Import every name from
``vadusa.config`` itself.
"""

from vadusa.config.data import (
    DEFAULT_VOICES,
    CodecTrainConfig,
    CorpusConfig,
    EncodecConfig,
    LibriheavyConfig,
    LibriTTSConfig,
    LibriTTSShapedConfig,
    SSLTrainConfig,
    SSLUnitsConfig,
    SyntheticCorpusConfig,
    TextConfig,
    TokensConfig,
    VocoderConfig,
    WhisperUnitsConfig,
)
from vadusa.config.decoding import DecodingConfig, JudgeConfig, MeasureConfig, SweepConfig
from vadusa.config.experiment import Config, TrackingConfig, dump_config, load_config
from vadusa.config.loading import (
    SCHEMA_PATH,
    ConfigError,
    deep_merge,
    load_schema,
    merge_sources,
    parse_override,
    read_yaml,
    validate,
)
from vadusa.config.model import (
    DEFAULT_ABLATION,
    AblationConfig,
    AlignConfig,
    DraftModelConfig,
    DurationsConfig,
    HeadsConfig,
    ModelConfig,
    TrainConfig,
)

__all__ = [
    "SCHEMA_PATH", "ConfigError", "load_schema", "validate", "deep_merge", "parse_override",
    "read_yaml", "merge_sources", "load_config", "dump_config", "Config",
    "DEFAULT_VOICES", "SyntheticCorpusConfig", "LibriTTSConfig", "LibriTTSShapedConfig",
    "LibriheavyConfig",
    "CorpusConfig", "TextConfig", "WhisperUnitsConfig", "SSLTrainConfig", "SSLUnitsConfig",
    "CodecTrainConfig", "EncodecConfig", "TokensConfig", "VocoderConfig",
    "ModelConfig", "AlignConfig", "DurationsConfig", "TrainConfig", "DecodingConfig",
    "HeadsConfig", "DraftModelConfig", "MeasureConfig", "SweepConfig", "DEFAULT_ABLATION",
    "AblationConfig", "JudgeConfig", "TrackingConfig",
]
