"""Every paper's config declares bounds: out-of-range values fail before any data is loaded."""

from __future__ import annotations

import ast
import importlib
import re
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import annotated_types
import pytest
from pydantic import BaseModel

from common.cli import discover_papers
from common.config import StrictModel
from common.errors import ConfigError
from common.runner import PaperEntry, main, resolve_config
from common.sentence_training import SentenceConfig

PAPERS = discover_papers()
BOUNDS = (annotated_types.Gt, annotated_types.Ge, annotated_types.Lt, annotated_types.Le)
# Each value is out of range for the field of that name in every config that has one.
BAD = {
    "lr": -1, "tau": 0, "temperature": 0, "batch_size": 0, "epochs": -5, "patience": 0,
    "train_fraction": 3.0, "user_fraction": 0, "valid_fraction": 1.5, "dropout": 1.5,
    "weight_decay": -1, "momentum": -0.1, "threads": 0, "max_steps": 0, "model.hidden": 0,
    "valid_metric": "MRR@11", "width": 0, "sigma": 0, "knn_k": 0, "crop_scale_min": 0,
    "adj_mask": "[0.3, 1.5]", "num_clusters": "[0, 300]", "adameow.tau": 0,
}  # fmt: skip


def _entry(paper: str) -> PaperEntry:
    entry: PaperEntry = importlib.import_module(f"papers.{paper}.__main__").ENTRY
    return entry


def _numeric(annotation: Any) -> bool:
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_numeric(a) for a in get_args(annotation) if a is not type(None))
    return annotation in (int, float)


def _unbounded(model: type[BaseModel], prefix: str = "") -> list[str]:
    missing = []
    for name, info in model.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            missing += _unbounded(info.annotation, f"{prefix}{name}.")
        elif _numeric(info.annotation) and not any(isinstance(m, BOUNDS) for m in info.metadata):
            missing.append(prefix + name)
    return missing


@pytest.mark.parametrize("paper", list(PAPERS))
def test_every_numeric_field_declares_bounds(paper: str) -> None:
    assert _unbounded(_entry(paper).config_model) == []


def test_sentence_config_declares_bounds() -> None:
    assert _unbounded(SentenceConfig) == []


def _field_exists(model: type[StrictModel], dotted: str) -> bool:
    head, _, rest = dotted.partition(".")
    info = model.model_fields.get(head)
    if info is None or not rest:
        return info is not None
    return _field_exists(info.annotation, rest)  # type: ignore[arg-type]


@pytest.mark.parametrize("paper", list(PAPERS))
def test_out_of_range_values_are_rejected(paper: str) -> None:
    entry, info = _entry(paper), PAPERS[paper]
    keys = [k for k in BAD if _field_exists(entry.config_model, k)]
    for key in keys:
        with pytest.raises(ConfigError, match=f"key '{re.escape(key)}[.']"):
            resolve_config(entry, "smoke", info.default_dataset, info.variants[0],
                           [f"{key}={BAD[key]}"])  # fmt: skip


@pytest.mark.parametrize(
    ("paper", "override"),
    [("mclrec", "lr=-1"), ("mclrec", "tau=0"), ("mclrec", "batch_size=0"),
     ("mclrec", "epochs=-5"), ("mclrec", "train_fraction=3.0"), ("mclrec", "valid_metric=MRR@11"),
     ("dcl", "lr=-1"), ("dcl", "temperature=0"), ("dcl", "batch_size=0"), ("dcl", "epochs=-5")],
)  # fmt: skip
def test_issue_examples_exit_2_before_any_data_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], paper: str, override: str
) -> None:
    data = tmp_path / "data"  # empty: any attempt to read data would fail differently
    data.mkdir()
    argv = ["--scale", "smoke", "--data-root", str(data), "--results-dir", str(tmp_path / "r"),
            "--work-dir", str(tmp_path / "w"), override]  # fmt: skip
    assert main(_entry(paper), argv, compare=False) == 2
    err = capsys.readouterr().err
    assert f"key '{override.split('=')[0]}'" in err and "Traceback" not in err
    assert list(data.iterdir()) == [] and not (tmp_path / "w").exists()


def _variant_operand(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "variant") or (
        isinstance(node, ast.Name) and node.id == "variant"
    )


def _strings(node: ast.expr) -> set[str]:
    items = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    return {i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)}


def variants_named_in_code(folder: Path) -> set[str]:
    """The strings a folder's code compares with a variant (``config.variant == "dcl"``,
    ``variant in ("pixpro", "pixpro-ins")``)."""
    named: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if any(_variant_operand(o) for o in operands):
                    named |= set().union(*(_strings(o) for o in operands))
    return named


@pytest.mark.parametrize("paper", list(PAPERS))
def test_paper_toml_is_the_one_list_of_variants(paper: str) -> None:
    """The config accepts exactly the variants of paper.toml, and the code names no other."""
    entry, info = _entry(paper), PAPERS[paper]
    assert variants_named_in_code(info.folder) <= set(info.variants)
    for variant in info.variants:
        config = resolve_config(entry, "smoke", info.default_dataset, variant, ())
        assert config.model_dump()["variant"] == variant
    with pytest.raises(ConfigError, match=r"'no-such-variant' is not a variant in paper\.toml"):
        resolve_config(entry, "smoke", info.default_dataset, "no-such-variant", ())
