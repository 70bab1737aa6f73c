from __future__ import annotations

from pathlib import Path

import pytest

from common.config import StrictModel, load_config, parse_override
from common.errors import ConfigError


class Inner(StrictModel):
    width: int = 4


class Cfg(StrictModel):
    variant: str = "a"
    lr: float = 1e-3
    layers: tuple[int, ...] = (1,)
    inner: Inner = Inner()
    epochs: int = 2
    flag: bool = False


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_precedence_file_dataset_cli(tmp_path: Path) -> None:
    path = _write(tmp_path, "lr: 0.1\ndataset_overrides:\n  beauty: {lr: 0.2, inner: {width: 8}}\n")
    assert load_config(Cfg, path).lr == 0.1
    cfg = load_config(Cfg, path, dataset="beauty")
    assert (cfg.lr, cfg.inner.width) == (0.2, 8)
    cfg = load_config(Cfg, path, "beauty", ["lr=3e-4", "inner.width=2", "layers=[2, 3]"])
    assert (cfg.lr, cfg.inner.width, cfg.layers) == (3e-4, 2, (2, 3))


@pytest.mark.parametrize(
    ("text", "overrides", "needle"),
    [
        ("lrr: 0.1\n", [], "key 'lrr': Extra inputs"),
        ("inner: {depth: 2}\n", [], "key 'inner.depth'"),
        ("lr: fast\n", [], "key 'lr'"),
        ("", ["inner.width=wide"], "key 'inner.width'"),
        ("", ["noequals"], "key=value"),
        ("- a\n- b\n", [], "must be a mapping"),
        ("lr: [1,\n", [], "not valid YAML"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, overrides: list[str], needle: str) -> None:
    with pytest.raises(ConfigError, match=None) as exc:
        load_config(Cfg, _write(tmp_path, text), overrides=overrides)
    assert needle in str(exc.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(Cfg, tmp_path / "nope.yaml")


def test_override_values_are_typed() -> None:
    assert parse_override("a.b=1e-3") == (["a", "b"], 1e-3)
    assert parse_override("flag=true") == (["flag"], True)
    assert parse_override("name=bert-base-uncased") == (["name"], "bert-base-uncased")


def test_configs_are_frozen(tmp_path: Path) -> None:
    cfg = load_config(Cfg, _write(tmp_path, ""))
    with pytest.raises(Exception, match="frozen"):
        cfg.lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "overrides", "key"),
    [
        ("epochs: true\n", [], "epochs"),  # lax pydantic reads true as 1
        ("epochs: 3.0\n", [], "epochs"),
        ('lr: "0.1"\n', [], "lr"),  # quoted: text, not a number
        ("", ["flag=1"], "flag"),
        ("", ["inner.width=2.0"], "inner.width"),
    ],
)
def test_wrong_types_are_errors(tmp_path: Path, text: str, overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        load_config(Cfg, _write(tmp_path, text), overrides=overrides)


def test_yaml_and_cli_numbers_still_work(tmp_path: Path) -> None:
    cfg = load_config(Cfg, _write(tmp_path, "lr: 1e-3\nlayers: [2, 3]\n"), overrides=["epochs=3"])
    assert (cfg.lr, cfg.layers, cfg.epochs) == (1e-3, (2, 3), 3)
    assert load_config(Cfg, _write(tmp_path, "lr: 1\n")).lr == 1.0  # an int where a float goes
    assert load_config(Cfg, _write(tmp_path, ""), overrides=["lr=2e-5"]).lr == 2e-5


def test_errors_say_where_each_bad_key_came_from(tmp_path: Path) -> None:
    path = _write(tmp_path, "lr: 0.1\n")
    with pytest.raises(ConfigError) as exc:
        load_config(Cfg, path, overrides=["nosuchkey=1", "inner.width=wide"])
    assert "command line: key 'nosuchkey'" in str(exc.value) and "c.yaml" not in str(exc.value)
    assert "command line: key 'inner.width'" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        load_config(Cfg, _write(tmp_path, "lrr: 0.1\n"), overrides=["lr=0.2"])
    assert str(exc.value).startswith("config c.yaml: key 'lrr'") and "command line" not in str(
        exc.value
    )
    with pytest.raises(ConfigError) as exc:
        load_config(Cfg, _write(tmp_path, "lrr: 0.1\n"), overrides=["bad=1"])
    assert set(str(exc.value).split("; ")) == {
        "command line: key 'bad': Extra inputs are not permitted",
        "config c.yaml: key 'lrr': Extra inputs are not permitted",
    }
