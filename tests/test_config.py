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


def test_extends_merges_nested_keys_and_dataset_overrides(tmp_path: Path) -> None:
    (tmp_path / "full.yaml").write_text(
        "lr: 0.1\ninner: {width: 8}\nlayers: [1, 2]\ndataset_overrides:\n  beauty: {lr: 0.2}\n"
        "  sports: {lr: 0.3}\n"
    )
    child = tmp_path / "reduced.yaml"
    child.write_text("extends: full.yaml\nlayers: [5]\ndataset_overrides:\n  sports: {lr: 0.4}\n")
    assert load_config(Cfg, child).layers == (5,)  # a list is replaced, not merged
    assert load_config(Cfg, child).inner.width == 8  # inherited
    assert load_config(Cfg, child, "beauty").lr == 0.2  # the base's dataset override survives
    assert load_config(Cfg, child, "sports").lr == 0.4  # the child's wins


def test_extends_chain_and_cycle(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("lr: 0.5\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\ninner: {width: 2}\n")
    (tmp_path / "c.yaml").write_text("extends: b.yaml\n")
    cfg = load_config(Cfg, tmp_path / "c.yaml")
    assert (cfg.lr, cfg.inner.width) == (0.5, 2)
    (tmp_path / "a.yaml").write_text("extends: c.yaml\n")
    with pytest.raises(ConfigError, match="extends itself"):
        load_config(Cfg, tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("extends: missing.yaml\n")
    with pytest.raises(ConfigError, match="not found"):
        load_config(Cfg, tmp_path / "d.yaml")


def _restated(base: dict, child: dict, prefix: str = "") -> list[str]:  # type: ignore[type-arg]
    """Keys of ``child`` whose value equals what ``base`` already gives."""
    same = []
    for key, value in child.items():
        if key not in base:
            continue
        if isinstance(value, dict) and isinstance(base[key], dict):
            same += _restated(base[key], value, f"{prefix}{key}.")
        elif value == base[key]:
            same.append(prefix + key)
    return same


PAPERS_DIR = Path(__file__).parents[1] / "papers"


@pytest.mark.parametrize("scale", ["reduced", "smoke"])
@pytest.mark.parametrize(
    "paper", sorted(p.parent.parent.name for p in PAPERS_DIR.glob("*/configs/full.yaml"))
)
def test_smaller_recipes_are_deltas_of_the_full_recipe(paper: str, scale: str) -> None:
    from common.config import read_config_file, read_yaml

    folder = PAPERS_DIR / paper / "configs"
    child = read_yaml(folder / f"{scale}.yaml")
    assert child.get("extends") == "full.yaml", f"{paper}: {scale}.yaml should extend full.yaml"
    base = read_config_file(folder / "full.yaml")
    assert not _restated(base, {k: v for k, v in child.items() if k != "extends"})
