"""Configuration data in and out: YAML files and ``--set`` overrides read, validated against
the JSON schema (``vadusa/schemas/config.schema.json``, also used by the Snakemake workflow)
and merged; and the dataclasses of ``vadusa.config`` built from plain data and back.
``vadusa.config.load_config`` puts them together."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import re
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

__all__ = ["SCHEMA_PATH", "ConfigError", "load_schema", "validate", "deep_merge",
           "parse_override", "read_yaml", "merge_sources", "from_plain", "to_plain"]

SCHEMA_PATH = Path(__file__).parent.parent / "schemas" / "config.schema.json"


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``3e-3`` as a string; researchers write learning rates that way."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^[-+]?\.(?:inf|Inf|INF)$"
               r"|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."),
)


def _yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506  (a SafeLoader subclass)


class ConfigError(ValueError):
    """A configuration file or override is wrong; the message names the source and the key."""


# --------------------------------------------------------------------------------------------
# Loading, validating, overriding.
# --------------------------------------------------------------------------------------------


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def validate(data: Mapping[str, Any], source: str) -> None:
    """Validate a (possibly partial) configuration; raise ConfigError naming source and key."""
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    raise ConfigError("\n".join(_describe(e, source) for e in errors))


def _describe(error: jsonschema.ValidationError, source: str) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        lines = []
        for key in unknown:
            full = f"{where}.{key}" if where else key
            hint = difflib.get_close_matches(key, allowed, n=1)
            fix = f"did you mean '{hint[0]}'?" if hint else f"allowed keys: {', '.join(allowed)}"
            if full in MOVED:  # a key of an older configuration
                fix = f"it moved to '{MOVED[full]}'"
            lines.append(f"{source}: unknown config key '{full}' ({fix})")
        return "\n".join(lines)
    return f"{source}: config key '{where or '<top>'}': {error.message}"


# keys that moved to another section (an older results/<exp>/config.yaml still has them)
MOVED = {f"heads.{key}": f"measure.{key}" for key in (
    "eval_taus", "bench_taus", "bench_heads", "bench_trees", "bench_utterances",
    "calibration_utterances", "tree_sizes", "open_taus", "open_heads", "open_utterances",
    "hydra")} | {"draft.bench_tokens": "measure.bench_draft_tokens"}


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``update`` into a copy of ``base``; nested mappings merge, other values replace."""
    merged = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_override(text: str) -> dict[str, Any]:
    """``"a.b.c=value"`` -> ``{"a": {"b": {"c": value}}}``, the value parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. corpus.synthetic.hours=0.5")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        value = _yaml_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({exc})") from exc
    for part in reversed(parts):
        value = {part: value}
    return value


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = _yaml_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys to values")
    return data


def merge_sources(
    files: Iterable[str | Path] = (), overrides: Iterable[str] = ()
) -> dict[str, Any]:
    """Read, validate (each on its own, so errors name it) and merge files, then overrides."""
    merged: dict[str, Any] = {}
    for path in files:
        data = read_yaml(path)
        validate(data, str(path))
        merged = deep_merge(merged, data)
    for text in overrides:
        data = parse_override(text)
        validate(data, f"--set {text}")
        merged = deep_merge(merged, data)
    return merged


# --------------------------------------------------------------------------------------------
# Dataclass <-> plain data.
# --------------------------------------------------------------------------------------------


def from_plain(cls: type, data: Mapping[str, Any], default: Any = None) -> Any:
    """A dataclass ``cls`` from plain (validated) data: nested sections built, lists as tuples.
    A key the data leaves out takes its value from ``default`` (an instance of ``cls``) if
    given, else from the class; a section given in part keeps the rest of its field's own
    default, which may differ from its class's (``tokens.hubert`` is an ``SSLUnitsConfig``
    with layer 4, the class says 6). Mappings that are values (``corpus.libritts.subsets``)
    are replaced whole, not merged."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if default is not None:
                kwargs[f.name] = getattr(default, f.name)
            continue
        value, hint = data[f.name], hints[f.name]
        if dataclasses.is_dataclass(hint):
            inner = getattr(default, f.name) if default is not None else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            value = from_plain(hint, value, inner)
        elif typing.get_origin(hint) is tuple:
            value = tuple(value)
        elif typing.get_origin(hint) is dict:
            _, value_hint = typing.get_args(hint) or (None, None)
            as_tuple = typing.get_origin(value_hint) is tuple
            value = {k: tuple(v) if as_tuple else v for k, v in value.items()}
        kwargs[f.name] = value
    return cls(**kwargs)


def to_plain(obj: Any) -> Any:
    """A dataclass tree as plain data (dicts, lists, scalars), as YAML and JSON write it."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj
