"""The layers a machine checks: import-linter's contracts in pyproject.toml hold for the code, break (with their
message) when a forbidden import is added, cover every core package, and agree with the picture that opens
docs/ARCHITECTURE.md."""

from __future__ import annotations

import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import core

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
CONTRACTS = {c["id"]: c for c in CONFIG["contracts"]}
LAYERS: list[str] = CONTRACTS["core-layers"]["layers"]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` over the packages under `root`, with this repository's contracts."""
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(%r, no_cache=True))"
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", code % str(ROOT / "pyproject.toml")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def layer_names(layer: str) -> list[str]:
    return [name.strip() for name in re.split(r"[|:]", layer)]


def test_the_contracts_hold():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 3 kept, 0 broken." in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract", "message"),
    [
        ("core/store/queries.py", "import dashboard", "core imports no app",
         r"core is not allowed to import dashboard:\s+-\s+core\.store\.queries -> dashboard \(l\.\d+\)"),
        ("core/privacy/forget.py", "import core.datasets", "core packages form layers",
         r"core\.privacy is not allowed to import core\.datasets:\s+-\s+core\.privacy\.forget -> core\.datasets \(l\.\d+\)"),
        ("core/semantic/vectors.py", "import core.semantic.search", "no import cycle",
         r"No cycles are allowed in core\.semantic\."),
    ],
    ids=["app", "upward", "cycle"],
)
def test_a_forbidden_import_breaks_its_contract_with_a_clear_message(tmp_path, module, line, contract, message):
    for package in ("core", "cli", "dashboard"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / module, "a") as f:
        f.write(f"\n{line}\n")
    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout
    assert "Contracts: 2 kept, 1 broken." in done.stdout
    broken = done.stdout.split("Broken contracts", 1)[1]
    assert contract in broken and re.search(message, broken), broken


def test_every_core_package_has_exactly_one_layer():
    listed = [name for layer in LAYERS for name in layer_names(layer)]
    assert len(listed) == len(set(listed)), listed
    present = {m.name for m in pkgutil.iter_modules(core.__path__)}
    assert present == set(listed), (
        f"core packages without a layer: {sorted(present - set(listed))}; layers naming no package: "
        f"{sorted(set(listed) - present)}. Give each a row in [tool.importlinter] core-layers in pyproject.toml "
        "and in the picture that opens docs/ARCHITECTURE.md."
    )


def test_the_architecture_picture_quotes_the_layers():
    lines = (ROOT / "docs" / "ARCHITECTURE.md").read_text().splitlines()
    top = next(n for n, line in enumerate(lines) if "┌ core" in line)
    col = lines[top].index("┌ core")
    rows = []
    for line in lines[top + 1 :]:
        if line[col] == "└":
            break
        cell = line[col + 1 : line.rindex("│")].strip()
        rows.append(re.split(r"\s{2,}", cell)[0])
    assert rows == LAYERS
    assert lines[0].startswith("# ") and lines[2] == "```text" and top < 10  # the picture opens the document


def test_core_names_no_cli_command_and_each_app_words_every_next_step():
    """core's messages describe the problem and name the next step as a value (`core.errors.NextStep`); the CLI and
    the dashboard each word every step (cli: its command; app: its page or the command). No `interestlens <command>`
    is left in a core string that a user can see."""
    import ast

    from cli.common import _NEXT_STEP
    from core.errors import NEXT_STEPS, NotFoundError
    from dashboard.components.messages import _STEPS, error_text

    assert set(_NEXT_STEP) == set(_STEPS) == set(NEXT_STEPS)
    said = []
    for path in (ROOT / "core").rglob("*.py"):
        tree = ast.parse(path.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and n.body
                and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                if re.search(r"`interestlens [a-z]", node.value):
                    said.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert said == []
    exc = NotFoundError("There is no model at m.", next_step="train", step_db="d b.duckdb")
    assert error_text(exc) == ("There is no model at m\\. Train one with **Train here** on the **Data & models** page, "
                               "or `interestlens train --db 'd b.duckdb'`.")
