from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest
import yaml

from vadusa.config import (
    Config,
    ConfigError,
    SSLTrainConfig,
    dump_config,
    load_config,
    load_schema,
    parse_override,
    read_yaml,
)

CONFIG_FILES = ["config.yaml", "default-6h.yaml", "tiny.yaml", "libritts.yaml", "libriheavy.yaml"]


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_shipped_configs_load(repo: Path, name: str) -> None:
    cfg = load_config([repo / "config" / name])
    assert cfg.experiment == Path(name).stem if name != "config.yaml" else "default"


def test_defaults_are_the_embedded_default(repo: Path) -> None:
    cfg = load_config([repo / "config" / "config.yaml"])
    assert cfg.corpus.source == "synthetic"
    assert len(cfg.corpus.synthetic.voices) >= 8
    assert cfg.corpus.synthetic.hours == pytest.approx(2.0)  # sized for 90 min on 2 cores


MAPPINGS = {"subsets", "manifests", "variants"}  # a value each: compared whole


def _restated(data: dict, defaults: dict, where: str = "") -> list[str]:
    """The keys of ``data`` set to the value ``defaults`` already has."""
    same = []
    for key, value in data.items():
        default = defaults[key]
        if isinstance(value, dict) and key not in MAPPINGS:
            same += _restated(value, default, f"{where}{key}.")
        elif (list(value) if isinstance(value, tuple) else value) == default:
            same.append(where + key)
    return same


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_one_tier_of_defaults(repo: Path, name: str) -> None:
    """The dataclass defaults are the embedded default, so config.yaml adds nothing, and every
    other shipped config states only how it differs from them."""
    data = read_yaml(repo / "config" / name)
    if name == "config.yaml":
        assert data == {}
    assert _restated(data, Config().to_dict()) == []
    # Snakemake reads config.yaml under every --configfile (from the repository root): the
    # same configuration as the file alone, which `vadusa config --config FILE` prints
    alone = load_config([repo / "config" / name])
    assert load_config([repo / "config" / "config.yaml", repo / "config" / name]) == alone


def test_typo_names_key_and_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("corpus:\n  synthetc:\n    hours: 1\n")
    with pytest.raises(ConfigError) as err:
        load_config([bad])
    message = str(err.value)
    assert str(bad) in message
    assert "corpus.synthetc" in message
    assert "did you mean 'synthetic'" in message


def test_a_moved_key_says_where_it_went(tmp_path: Path) -> None:
    """An older resolved config (results/<exp>/config.yaml) names the new place of a key."""
    from vadusa.config.loading import MOVED  # noqa: PLC0415

    old = tmp_path / "old.yaml"
    old.write_text("heads:\n  bench_taus: [1, 3]\ndraft:\n  bench_tokens: [2]\n")
    with pytest.raises(ConfigError) as err:
        load_config([old])
    assert "'heads.bench_taus' (it moved to 'measure.bench_taus')" in str(err.value)
    assert "'draft.bench_tokens' (it moved to 'measure.bench_draft_tokens')" in str(err.value)
    measure = load_config([]).to_dict()["measure"]
    assert all(new.removeprefix("measure.") in measure for new in MOVED.values())


def test_wrong_type_names_key_and_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("corpus:\n  synthetic:\n    hours: lots\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: config key 'corpus.synthetic.hours'"):
        load_config([bad])


def test_bad_enum_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="corpus.source"):
        load_config(overrides=["corpus.source=librispeech"])


def test_override_parses_yaml_values() -> None:
    assert parse_override("corpus.synthetic.hours=0.5") == {"corpus": {"synthetic": {"hours": 0.5}}}
    assert parse_override("corpus.strict=true") == {"corpus": {"strict": True}}
    cfg = load_config(overrides=["corpus.synthetic.voices=[flite_rms, flite_slt]", "seed=3"])
    assert cfg.corpus.synthetic.voices == ("flite_rms", "flite_slt")
    assert cfg.seed == 3


def test_override_errors_name_the_override() -> None:
    with pytest.raises(ConfigError, match=r"--set corpus.synthetic.hourz=1: unknown config key"):
        load_config(overrides=["corpus.synthetic.hourz=1"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(overrides=["corpus.synthetic.hours"])


def test_later_sources_win(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("seed: 1\ncorpus:\n  sample_rate: 22050\n")
    b.write_text("seed: 2\n")
    cfg = load_config([a, b], ["corpus.strict=true"])
    assert (cfg.seed, cfg.corpus.sample_rate, cfg.corpus.strict) == (2, 22050, True)


def test_config_is_frozen() -> None:
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 5  # type: ignore[misc]


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config(overrides=["corpus.synthetic.hours=0.2", "experiment=x"])
    dump_config(cfg, tmp_path / "resolved.yaml")
    again = load_config([tmp_path / "resolved.yaml"])
    assert again == cfg
    mtime = (tmp_path / "resolved.yaml").stat().st_mtime_ns
    dump_config(cfg, tmp_path / "resolved.yaml")  # unchanged content: file left alone
    assert (tmp_path / "resolved.yaml").stat().st_mtime_ns == mtime


def test_section_hash_tracks_only_its_sections() -> None:
    a = load_config()
    b = load_config(overrides=["judge.beam_size=3"])
    assert a.section_hash("corpus") == b.section_hash("corpus")
    assert a.section_hash("judge") != b.section_hash("judge")


def _schema_keys(schema: dict, prefix: str = "") -> set[str]:
    keys = set()
    for name, sub in schema.get("properties", {}).items():
        keys.add(prefix + name)
        if sub.get("type") == "object" and "properties" in sub:
            keys |= _schema_keys(sub, prefix + name + ".")
    return keys


def _dataclass_keys(cls: type, prefix: str = "") -> set[str]:
    keys = set()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        keys.add(prefix + f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            keys |= _dataclass_keys(hints[f.name], prefix + f.name + ".")
    return keys


def test_schema_and_dataclasses_agree() -> None:
    schema_keys = _schema_keys(load_schema())
    # libriheavy.manifests is a mapping in Python and an object of splits in the schema
    schema_keys -= {"corpus.libriheavy.manifests." + s for s in ("train", "dev", "test")}
    assert schema_keys == _dataclass_keys(Config)


def test_every_object_in_schema_forbids_extra_keys() -> None:
    def walk(node: dict, where: str) -> None:
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, where
            for name, sub in node["properties"].items():
                walk(sub, f"{where}.{name}")

    walk(load_schema(), "<root>")


def test_workflow_schema_is_the_package_schema(repo: Path) -> None:
    workflow_schema = repo / "workflow" / "schemas" / "config.schema.json"
    assert yaml.safe_load(workflow_schema.read_text()) == load_schema()


def test_exponent_floats_without_a_dot(tmp_path: Path) -> None:
    (tmp_path / "lr.yaml").write_text("train:\n  lr: 3e-4\n")
    assert load_config([tmp_path / "lr.yaml"]).train.lr == pytest.approx(3e-4)
    assert load_config(overrides=["train.lr=2E-3", "seed=5"]).train.lr == pytest.approx(2e-3)
    assert load_config(overrides=["seed=5"]).seed == 5  # integers stay integers


def test_a_section_given_in_part_keeps_its_fields_own_defaults() -> None:
    """tokens.hubert's defaults are not SSLUnitsConfig's (layer 4, not 6; its scratch recipe
    predicts unmasked frames too): setting one key of the section keeps the others."""
    cfg = load_config(overrides=["tokens.hubert.n_clusters=16",
                                 "tokens.hubert.scratch.steps=7"])
    assert cfg.tokens.hubert.n_clusters == 16 and cfg.tokens.hubert.scratch.steps == 7
    assert cfg.tokens.hubert.layer == 4 and cfg.tokens.hubert.scratch.unmasked_weight == 1.0
    assert SSLTrainConfig().unmasked_weight == 0.0  # the class default is not hubert's
    w2v = load_config(overrides=["tokens.wav2vec2.scratch.steps=7"]).tokens.wav2vec2.scratch
    assert (w2v.steps, w2v.unmasked_weight, w2v.contrastive_target) == (7, 1.0, "logmel")
    assert SSLTrainConfig().contrastive_target == "conv"
    off = load_config(overrides=["tokens.hubert.scratch.unmasked_weight=0"])
    assert off.tokens.hubert.scratch.unmasked_weight == 0.0 and off.tokens.hubert.layer == 4


def test_a_mapping_value_is_replaced_whole() -> None:
    """A mapping that is a value, not a section (LibriTTS subsets -> splits), is the one
    given, not merged with the default's."""
    cfg = load_config(overrides=['corpus.libritts.subsets={"dev-clean": "test"}'])
    assert cfg.corpus.libritts.subsets == {"dev-clean": "test"}


@pytest.mark.parametrize("name", ["libritts-local.yaml", "tiny-libritts.yaml"])
def test_layered_libritts_configs_state_only_how_they_differ(repo: Path, name: str) -> None:
    """The local and CI LibriTTS files go after libritts.yaml: they restate none of the values
    it resolves to, and together they keep its zero-shot model."""
    base = read_yaml(repo / "config" / "libritts.yaml")
    data = read_yaml(repo / "config" / name)
    assert _restated(data, load_config([repo / "config" / "libritts.yaml"]).to_dict()) == []
    cfg = load_config([repo / "config" / "libritts.yaml", repo / "config" / name])
    assert cfg.experiment == Path(name).stem and cfg.corpus.source == base["corpus"]["source"]
    assert cfg.model.prompt and not cfg.model.speaker_embedding
    assert cfg.vocoder.speaker_conditioning == "dvector"
    read = {subset for subset, split in cfg.corpus.libritts.subsets.items() if split}
    assert read <= {"train-clean-100", "dev-clean", "test-clean", "test-other"}
