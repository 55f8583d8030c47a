"""`python -m core.train` (and `torchrun --nproc_per_node N -m core.train`): the `interestlens train` command."""

from __future__ import annotations

import logging
import sys

import typer

from core.cli.commands.train import train_cmd
from core.cli.common import run_app


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(train_cmd)
    return run_app(app)


if __name__ == "__main__":
    sys.exit(main())
