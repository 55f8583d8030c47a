"""The `interestlens` command line. Each module in `core.cli.commands` adds its subcommands with
`register(app)`, so features add commands without editing a shared file."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys

import typer

from core.cli import commands

__all__ = ["app", "main"]

app = typer.Typer(
    name="interestlens",
    help="InterestLens: interest trajectories, explanations and fairness for recommender logs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



@app.callback()
def _root() -> None:
    """InterestLens: interest trajectories, explanations and fairness for recommender logs."""


for _mod in sorted(m.name for m in pkgutil.iter_modules(commands.__path__)):
    importlib.import_module(f"core.cli.commands.{_mod}").register(app)


def main() -> None:
    """Console-script entry point: known errors become one sentence on stderr and exit code 1."""
    from core.cli.common import run_app

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(run_app(app))
