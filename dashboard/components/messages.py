"""Errors from core in the app's words: core describes the problem and names what to do next as a value
(`core.errors.NextStep`); here that step becomes the app's way to do it (a button of the Data & models page where
there is one, else the command), the way `cli.common.next_step` makes it the CLI's command."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

from core.errors import InterestLensError
from dashboard.components.charts import md_text

__all__ = ["code", "error_text", "next_step_text"]


def _db(db: str | None) -> str:
    # quoted for the shell as the CLI quotes it (cli.common._db_flag): a copied command with a path that has spaces
    # or quotes must still name that one file
    return f" --db {shlex.quote(db)}" if db else ""


def code(command: str) -> str:
    """`command` as a Markdown code span that shows it verbatim: the fence is one backtick longer than the longest
    run of backticks inside (CommonMark), padded with a space when the command starts or ends with a backtick."""
    fence = "`" * (max((len(r) for r in re.findall(r"`+", command)), default=0) + 1)
    pad = " " if command.startswith("`") or command.endswith("`") else ""
    return f"{fence}{pad}{command}{pad}{fence}"


# one Markdown sentence per core.errors.NextStep (the database path, from core, goes inside a code span)
_STEPS: dict[str, Callable[[str | None], str]] = {
    "train": lambda db: f"Train one with **Train here** on the **Data & models** page, or {code('interestlens train' + _db(db))}.",
    "migrate": lambda db: f"Ingest a log into it on the **Data & models** page, or run {code('interestlens migrate' + _db(db))}, to upgrade it.",
    "create_db": lambda db: "Create one with `make run`, `interestlens build` or `interestlens ingest`.",
    "rebuild_db": lambda db: "Rebuild it with `interestlens ingest` or `interestlens build`.",
    "ingest_log": lambda db: "Load a log into the database with **Ingest** on the **Data & models** page.",
    "drift": lambda db: "Build them with **Build drift summaries** on the **Data & models** page.",
    "encode_texts": lambda db: "Compute them with **Compute text vectors** on the **Data & models** page.",
    "load_served": lambda db: "Load one with `interestlens ingest-recs`.",
    "build_synthetic": lambda db: "Build the database with `interestlens build --dataset synthetic`.",
}


def next_step_text(exc: BaseException) -> str:
    """The app's Markdown sentence for the error's next step; "" when core names none."""
    step = getattr(exc, "next_step", None)
    return _STEPS[step](getattr(exc, "step_db", None)) if step else ""


def error_text(exc: InterestLensError) -> str:
    """The error for a Markdown element: core's sentence as literal text (`md_text`), then the next step."""
    return " ".join(part for part in (md_text(exc), next_step_text(exc)) if part)
