"""Shared CLI helpers: the --json contract, error handling and progress bars."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import shlex
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import typer

from core.errors import InterestLensError, SettingError, setting_label

__all__ = ["DbOption", "ModelOption", "JsonOption", "emit", "printable", "run_app", "to_jsonable", "progress",
           "cli_flags", "in_flags", "next_step", "say"]

T = TypeVar("T")

DbOption = typer.Option(None, "--db", help="Database file (default: $INTERESTLENS_DB or data/interestlens.duckdb).")
JsonOption = typer.Option(False, "--json", help="Print exactly one JSON object on stdout.")


def _check_seen(value: str) -> str:
    if value not in ("auto", "exclude", "include"):
        raise typer.BadParameter(f"expected auto, exclude or include, not {value!r}.")
    return value


SeenOption = typer.Option(
    "auto", "--seen", callback=_check_seen,
    help="Items the user already has: auto (include them when >= 5 % of events re-consume an item, else exclude), "
    "exclude or include.",
)


def to_jsonable(obj: Any) -> Any:
    """Convert results to JSON: ids stay strings, times become ISO-8601 UTC text, NaN becomes null."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if hasattr(obj, "isoformat") and isinstance(obj, (dt.datetime, dt.date)):
        return iso_utc(obj)
    if type(obj).__name__ == "Timestamp":
        return iso_utc(obj.to_pydatetime())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def iso_utc(t: dt.datetime | dt.date) -> str:
    """ISO-8601 text in UTC with a trailing Z; naive datetimes are taken to be UTC (the store's rule)."""
    if isinstance(t, dt.datetime):
        if t.tzinfo is not None:
            t = t.astimezone(dt.UTC).replace(tzinfo=None)
        return t.isoformat(timespec="seconds") + "Z"
    return t.isoformat()


# Control characters (ANSI escapes could recolour or rewrite the terminal) and bidi controls (could reorder what is
# shown) inside log text; the human output shows them as escapes. JSON output escapes controls by itself.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` for a terminal: control and bidi characters become visible escapes (newlines and tabs stay)."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def emit(result: dict, as_json: bool, human: str | None = None) -> None:
    """Print the result: one JSON object with --json, else a human-readable text (log text shown as text)."""
    if as_json:
        sys.stdout.write(json.dumps(to_jsonable(result), ensure_ascii=False) + "\n")
    else:
        typer.echo(printable(human if human is not None else json.dumps(to_jsonable(result), indent=2, ensure_ascii=False)))


def _is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C that a library turned into an error: DuckDB raises `RuntimeError('Query interrupted')` for a SIGINT
    during a query and `InterruptException` for `interrupt()`."""
    if type(exc) is RuntimeError and str(exc).strip().rstrip(".!").lower() == "query interrupted":
        return True
    duckdb = sys.modules.get("duckdb")
    interrupt = getattr(duckdb, "InterruptException", None) if duckdb is not None else None
    return isinstance(interrupt, type) and isinstance(exc, interrupt)


def _click_exception_types() -> tuple[type, ...]:
    """Click's exception base classes: typer's own copy of click (typer >= 0.22 vendors it as `typer._click`) and,
    when installed, click itself; a usage error may come from either."""
    types: list[type] = [typer.TyperException]
    try:
        import click

        types.append(click.exceptions.ClickException)
    except ImportError:  # pragma: no cover - typer no longer needs click
        pass
    return tuple(types)


def _interrupted() -> int:
    sys.stderr.write("error: interrupted.\n")
    return 130


def run_app(app: typer.Typer, args: list[str] | None = None) -> int:
    """Run the Typer app and return the exit code: known errors print one sentence on stderr and return 1, usage
    errors (an unknown command or option, a bad or missing value) one sentence naming it and 2, Ctrl-C 130; no
    arguments prints the help and returns 0."""
    try:
        rv = app(args=args, standalone_mode=False)
    except InterestLensError as exc:
        sys.stderr.write(f"error: {printable(say(exc, app))}\n")
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        sys.stderr.write("error: aborted.\n")
        return 130
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:  # click usage errors and anything unexpected: one line, never a traceback
        if _is_interrupt(exc):
            return _interrupted()
        if isinstance(exc, _click_exception_types()):
            if type(exc).__name__ == "NoArgsIsHelpError":  # the help is already printed (or is the message)
                text = exc.format_message().strip()
                if text:
                    typer.echo(text)
                return 0
            code = getattr(exc, "exit_code", 1)
            message = exc.format_message().strip()
            message += "" if message.endswith((".", "!", "?")) else "."  # click's texts end without a stop at times
            sys.stderr.write(f"error: {printable(message)}\n")
            return code if isinstance(code, int) and code else 1
        sys.stderr.write(f"error: unexpected {type(exc).__name__}: {printable(str(exc))}\n")
        return 1
    # Outside standalone mode typer returns an exit code instead of raising: `typer.Exit(n)` and --help give n, and
    # Ctrl-C inside a command (typer turns KeyboardInterrupt into Exit(130)) gives 130. A command itself returns None.
    if isinstance(rv, int) and not isinstance(rv, bool):
        return _interrupted() if rv == 130 else rv
    return 0


def cli_flags(app: typer.Typer) -> frozenset[str]:
    """Every long option of every command of `app` ("--batch-size", ...)."""
    found: set[str] = set()
    todo = [typer.main.get_command(app)]  # click's objects (typer may vendor its own click, so no isinstance)
    while todo:
        command = todo.pop()
        found.update(o for p in command.params for o in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])
                     if o.startswith("--"))
        todo.extend(getattr(command, "commands", {}).values())  # a group's subcommands
    return frozenset(found)


def _db_flag(db: str | None) -> str:
    return f" --db {shlex.quote(db)}" if db else ""


# core's NextStep (what to do about an error) in the CLI's words: the command that does it
_NEXT_STEP: dict[str, Callable[[str | None], str]] = {
    "train": lambda db: f"Train one with `interestlens train{_db_flag(db)}`.",
    "migrate": lambda db: f"Run `interestlens migrate{_db_flag(db)}` (or any ingest) to upgrade it.",
    "create_db": lambda db: "Create one with `interestlens build` or `interestlens ingest`.",
    "rebuild_db": lambda db: "To rebuild it: `interestlens ingest` or `interestlens build`.",
    "ingest_log": lambda db: "Load a log into a database with `interestlens ingest`.",
    "drift": lambda db: "Build them with `interestlens drift`.",
    "encode_texts": lambda db: "Encode them with `interestlens semantic encode`.",
    "load_served": lambda db: "Load one with `interestlens ingest-recs`.",
    "build_synthetic": lambda db: "Build the database with `interestlens build --dataset synthetic`.",
}


def next_step(exc: InterestLensError) -> str:
    """The command that deals with the error (core names the step as a value, `core.errors.NextStep`), as a
    sentence; "" when there is none."""
    step = getattr(exc, "next_step", None)
    return _NEXT_STEP[step](exc.step_db) if step else ""


def say(exc: InterestLensError, app: typer.Typer) -> str:
    """The CLI's whole sentence for a known error: core's description with settings named by their flags, then the
    command to run next (if any)."""
    return " ".join(part for part in (in_flags(exc, app), next_step(exc)) if part)


def in_flags(exc: InterestLensError, app: typer.Typer) -> str:
    """The error's sentence, with every setting that core names (SettingError) called by its flag when the CLI has
    one: core says "batch size must be at least 1", the CLI "--batch-size must be at least 1"."""
    if not isinstance(exc, SettingError):
        return str(exc)
    flags = cli_flags(app)

    def name_of(setting: str) -> str:
        flag = "--" + setting.replace("_", "-")
        return flag if flag in flags else setting_label(setting)

    return exc.render(name_of)


def progress(it: Iterable[T], total: int | None, description: str, quiet: bool) -> Iterator[T]:
    """A progress bar on a terminal; silent under --json or when stderr is not a terminal."""
    if quiet or not sys.stderr.isatty():
        yield from it
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(description, total=total)
        for x in it:
            yield x
            bar.advance(task)


ModelOption = typer.Option(
    None, "--model", help="Model folder (default: $INTERESTLENS_MODEL, else the newest under data/models)."
)
