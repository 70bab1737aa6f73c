"""Typed configs loaded from YAML, with ``key=value`` overrides from the command line.

A paper declares its config as a subclass of :class:`StrictModel` (pydantic, unknown keys
rejected). A YAML file holds the fields, plus an optional ``dataset_overrides`` mapping from a
dataset name to the fields that differ for that dataset (the per-dataset weights of a paper's
official scripts). Precedence: file < dataset override < command-line override.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from common.cli import read_paper_info
from common.errors import ConfigError

DATASET_OVERRIDES_KEY = "dataset_overrides"
EXTENDS_KEY = "extends"
COMMAND_LINE = "command line"  # where an error in a ``key=value`` override is said to come from
KeyPath = tuple[str, ...]

ModelT = TypeVar("ModelT", bound="StrictModel")


class StrictModel(BaseModel):
    """Base of every config: unknown keys and wrong types are errors, instances are frozen.

    Strict: ``true`` is not an int, ``"0.1"`` is not a float, ``3.0`` is not an int. Values from
    YAML and the command line are validated as JSON (:func:`build_config`), so a list still fills
    a tuple field and an int a float field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def declared_variant(folder: Path) -> AfterValidator:
    """Validation of a config's ``variant`` against the one list of a paper's variants, its
    ``paper.toml`` (which the command line and nox read too)::

        variant: Annotated[str, declared_variant(Path(__file__).parent)]
    """
    variants = read_paper_info(folder).variants

    def check(value: str) -> str:
        if value not in variants:
            raise ValueError(f"{value!r} is not a variant in paper.toml ({', '.join(variants)})")
        return value

    return AfterValidator(check)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader reading ``1e-3`` as a float (YAML 1.2), as researchers write it."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml_text(text: str) -> Any:
    """Parse YAML text with :class:`_Loader` (raises ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: safe


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, turning I/O and syntax problems into :class:`ConfigError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    try:
        data = load_yaml_text(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config {path} must be a mapping at top level, got {type(data).__name__}"
        )
    return data


def read_config_file(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file with its ``extends`` chain resolved (base first, this file's keys on top)."""
    path = path.resolve()
    if path in _seen:
        chain = " -> ".join(p.name for p in (*_seen, path))
        raise ConfigError(f"config {path} extends itself ({chain})")
    data = read_yaml(path)
    base = data.pop(EXTENDS_KEY, None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"config {path}: '{EXTENDS_KEY}' must be a file name, got {base!r}")
    return _deep_merge(read_config_file(path.parent / base, (*_seen, path)), data)


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``a.b=value`` into (["a", "b"], value); the value is parsed as YAML (1e-3, true)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} is not of the form key=value")
    try:
        value = load_yaml_text(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from exc
    return key.strip().split("."), _number_or_text(value)


def _number_or_text(value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` as text; researchers mean a number."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _set_nested(target: dict[str, Any], path: list[str], value: Any) -> None:
    node = target
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(
                f"{COMMAND_LINE}: override {'.'.join(path)}: {part!r} is not a section"
            )
        node = child
    node[path[-1]] = value


def _deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _from_command_line(loc: KeyPath, cli_keys: Sequence[KeyPath]) -> bool:
    """Whether an error at ``loc`` involves a value given on the command line."""
    return bool(loc) and any(loc[: len(k)] == k or k[: len(loc)] == loc for k in cli_keys)


def _describe(exc: ValidationError, source: str, cli_keys: Sequence[KeyPath] = ()) -> str:
    """One line; each problem names its key and where it came from (the file or the CLI)."""
    problems = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        origin = COMMAND_LINE if _from_command_line(loc, cli_keys) else source
        problems.append(f"{origin}: key '{'.'.join(loc) or '<root>'}': {err['msg']}")
    return "; ".join(problems)


def apply_dataset_override(raw: Mapping[str, Any], dataset: str | None) -> dict[str, Any]:
    """The file's fields with ``dataset_overrides[dataset]`` merged in (a new mapping)."""
    data = copy.deepcopy(dict(raw))
    per_dataset = data.pop(DATASET_OVERRIDES_KEY, None) or {}
    if not isinstance(per_dataset, dict):
        raise ConfigError(f"'{DATASET_OVERRIDES_KEY}' must map dataset names to mappings")
    if dataset is not None and dataset in per_dataset:
        data = _deep_merge(data, per_dataset[dataset])
    return data


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> list[KeyPath]:
    """Set each ``key=value`` in ``data`` (in place); return the key paths set."""
    keys = []
    for item in overrides:
        path, value = parse_override(item)
        _set_nested(data, path, value)
        keys.append(tuple(path))
    return keys


def resolve_config_dict(
    raw: Mapping[str, Any], dataset: str | None = None, overrides: Sequence[str] = ()
) -> dict[str, Any]:
    """Apply the dataset override and the command-line overrides to a raw config mapping."""
    data = apply_dataset_override(raw, dataset)
    apply_overrides(data, overrides)
    return data


def build_config(
    model: type[ModelT],
    data: Mapping[str, Any],
    source: str = "config",
    cli_keys: Sequence[KeyPath] = (),
) -> ModelT:
    """Validate a mapping into ``model``; errors name the offending key and where it was set
    (``cli_keys``: the key paths the command line set; every other key is from ``source``)."""
    try:
        # JSON mode: strict types, yet a YAML list fills a tuple field and text a Path field
        return model.model_validate_json(json.dumps(dict(data), default=str))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source, cli_keys)) from exc


def load_config(
    model: type[ModelT],
    path: Path,
    dataset: str | None = None,
    overrides: Sequence[str] = (),
    fixed: Mapping[str, Any] | None = None,
    source: str | None = None,
) -> ModelT:
    """Load ``path`` into ``model``: the file, its dataset override, then ``fixed`` fields (set
    by the caller, such as the variant), then the command line's ``key=value`` overrides."""
    data = apply_dataset_override(read_config_file(path), dataset)
    data.update(fixed or {})
    cli_keys = apply_overrides(data, overrides)
    return build_config(model, data, source or f"config {path.name}", cli_keys)
