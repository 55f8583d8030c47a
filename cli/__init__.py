"""The `interestlens` command line. Each module in `cli.commands` adds its subcommands with
`register(app)`, so features add commands without editing a shared file."""

from __future__ import annotations

import sys

try:
    import importlib
    import logging
    import pkgutil

    import typer

    from cli import commands
except KeyboardInterrupt:  # Ctrl-C while the CLI is still starting (imports can take a second): no traceback
    sys.stderr.write("error: interrupted.\n")
    raise SystemExit(130) from None

__all__ = ["app", "main", "version"]


def version() -> str:
    """The installed interestlens version (the package metadata, else `core.__version__`)."""
    try:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version

        return dist_version("interestlens")
    except PackageNotFoundError:
        import core

        return getattr(core, "__version__", "unknown")


app = typer.Typer(
    name="interestlens",
    help="InterestLens: interest trajectories, explanations and fairness for recommender logs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(show: bool) -> None:
    if show:
        typer.echo(f"interestlens {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: bool = typer.Option(
        False, "--version", help="Print the installed version and exit.", is_eager=True, callback=_show_version
    ),
) -> None:
    """InterestLens: interest trajectories, explanations and fairness for recommender logs."""


try:
    for _mod in sorted(m.name for m in pkgutil.iter_modules(commands.__path__)):
        importlib.import_module(f"cli.commands.{_mod}").register(app)
except KeyboardInterrupt:
    sys.stderr.write("error: interrupted.\n")
    raise SystemExit(130) from None


def main() -> None:
    """Console-script entry point: known errors become one sentence on stderr and exit code 1, usage errors exit 2,
    Ctrl-C exits 130."""
    try:
        from cli.common import run_app

        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        code = run_app(app)
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted.\n")
        code = 130
    sys.exit(code)
