"""Every name the benchmarks import from the product exists (bench/ is not imported by the tests, and a stage that
imports a moved function only fails when that stage runs, after the slow stages before it)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BENCH = sorted((Path(__file__).resolve().parents[2] / "bench").rglob("*.py"))


def _product_imports(path: Path) -> list[tuple[str, str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):  # function-level imports included
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in ("core", "dashboard"):
                out += [(node.module, a.name, node.lineno) for a in node.names]
    return out


@pytest.mark.parametrize("path", BENCH, ids=lambda p: p.name)
def test_benchmark_imports_resolve(path):
    missing = []
    for module, name, line in _product_imports(path):
        mod = importlib.import_module(module)
        if name != "*" and not hasattr(mod, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{path.name}:{line}: {module}.{name}")
    assert not missing, missing


def test_the_check_sees_function_level_imports():
    assert ("core.store.parquet_export", "export_parquet") in {
        (m, n) for m, n, _ in _product_imports(Path(__file__).resolve().parents[2] / "bench" / "scale_reads.py")}
