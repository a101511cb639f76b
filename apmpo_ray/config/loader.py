"""Build a :class:`Config` from a YAML preset plus dotted ``section.field=value`` overrides."""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from .errors import ConfigError
from .schema import Config

PRESET_DIR = Path(__file__).resolve().parents[2] / "jobs" / "configs"
DEFAULT_PRESET = "tiny_cpu"


def resolve_preset(name_or_path: str | None) -> Path:
    """A preset file path, or the name of one in ``jobs/configs/`` (without ``.yaml``)."""
    if not name_or_path:
        name_or_path = DEFAULT_PRESET
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    candidate = PRESET_DIR / f"{name_or_path}.yaml"
    if candidate.exists():
        return candidate
    known = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
    raise ConfigError(f"no config preset {name_or_path!r}: give a YAML path or one of {known}")


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin is Literal:
        if value not in get_args(annotation):
            raise ConfigError(f"{key}: {value!r} is not one of {list(get_args(annotation))}")
        return value
    if origin is Union:
        options = get_args(annotation)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is not type(None):
                return _coerce(key, value, option)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-6" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if origin is list:
        # A lone scalar is a one-entry list, so `eval.benchmarks=math500=data/m.jsonl` works on a command line.
        if isinstance(value, list):
            items = value
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            items = [value]
        else:
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_type,) = get_args(annotation) or (Any,)
        if dataclasses.is_dataclass(item_type):  # a list of sections, e.g. teachers: [{name: ..., ...}, ...]
            bad = [i for i, item in enumerate(items) if not isinstance(item, dict)]
            if bad:
                raise ConfigError(f"{key}[{bad[0]}]: expected a section of fields, got {items[bad[0]]!r}")
            return [_build(item_type, item, f"{key}[{i}].") for i, item in enumerate(items)]
        return [_coerce(f"{key}[{i}]", item, item_type) for i, item in enumerate(items)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of name: value, got {value!r}")
        key_type, value_type = get_args(annotation) or (Any, Any)
        return {_coerce(f"{key} (a key)", k, key_type): _coerce(f"{key}.{k}", v, value_type) for k, v in value.items()}
    return value


def _build(cls, data: dict, prefix: str):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}{name}"
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; known: {sorted(fields)}"
            raise ConfigError(f"unknown config key '{key}'{hint}")
        annotation = hints[name]
        if dataclasses.is_dataclass(annotation):
            if not isinstance(value, dict):
                raise ConfigError(f"{key}: expected a section of fields, got {value!r}")
            kwargs[name] = _build(annotation, value, f"{key}.")
        else:
            kwargs[name] = _coerce(key, value, annotation)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as err:  # a section's own validation: make sure the message names the section
        message = str(err) if str(err).startswith(prefix) else f"{prefix.rstrip('.') or 'config'}: {err}"
        raise ConfigError(message) from err


def parse_overrides(overrides: list[str]) -> dict:
    """``["a.b=1", "c.d=x"]`` -> ``{"a": {"b": 1}, "c": {"d": "x"}}``, values parsed as YAML scalars."""
    tree: dict = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form section.field=value")
        node = tree
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} conflicts with another override")
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    return tree


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def load_config(preset: str | None = None, overrides: list[str] | None = None) -> Config:
    """The preset (default ``tiny_cpu``) with ``overrides`` applied, type-checked and validated."""
    path = resolve_preset(preset)
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"preset {preset!r} must be a mapping of sections")
    data.setdefault("tracking", {}).setdefault("preset", path.stem)
    return _build(Config, _merge(data, parse_overrides(overrides or [])), "").validate()


def config_from_dict(data: dict) -> Config:
    return _build(Config, data, "").validate()


def config_to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def flatten(cfg: Config) -> dict[str, Any]:
    """Dotted keys -> values, e.g. for MLflow params."""
    out: dict[str, Any] = {}

    def walk(node: dict, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                out[f"{prefix}{key}"] = value

    walk(config_to_dict(cfg), "")
    return out


def config_hash(cfg: Config) -> str:
    return hashlib.sha256(json.dumps(config_to_dict(cfg), sort_keys=True).encode()).hexdigest()[:12]
