"""`interestlens follow` and `interestlens replay`: live mode's data path.

Both write each batch as one short transaction (open, write, close), so the app and other readers get in
between batches, and both run until stopped (follow) or until the log is exhausted (replay). With `--json`
they print one JSON object per line: one per batch (`"event": "batch"`, or `"error"` for a file that cannot be
ingested) and a last one when they stop (`"event": "stopped"` or `"done"`). Ctrl-C (or SIGTERM) stops them
cleanly: a batch in progress is rolled back, nothing of it lands, and follow picks it up again next time.
"""

from __future__ import annotations

import json
import math
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from cli.commands.ingest import (
    CATEGORY_OPTION,
    CATEGORY_SEP_OPTION,
    CONTEXT_OPTION,
    DELIMITER_OPTION,
    ENCODING_OPTION,
    EVENT_OPTION,
    EVENT_TYPE_OPTION,
    ITEM_OPTION,
    MAPPING_OPTION,
    META_OPTION,
    TIME_OPTION,
    TIME_UNIT_OPTION,
    TITLE_OPTION,
    USER_OPTION,
    VALUE_OPTION,
    mapping_from_flags,
)
from cli.common import DbOption, to_jsonable
from core.errors import UserInputError
from core.ingest import preset_names
from core.live import FollowBatch, Follower, ReplayBatch, Replayer

__all__ = ["register"]

# Unlike the other commands' --json (exactly one object), these two stream: one object per line as they go.
FOLLOW_JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object per line: one per batch (or file "
                                  "that cannot be ingested), then a summary when stopped.")  # fmt: skip
REPLAY_JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object per line: one per batch, then a "
                                  "summary when done or stopped.")  # fmt: skip


def _n(count: int, noun: str) -> str:
    """`1 batch`, `2 batches`, `1,000 events`."""
    return f"{count:,} {noun}" + ("" if count == 1 else "es" if noun.endswith(("s", "ch")) else "s")


def _check_seconds(flag: str, value: float, *, allow_zero: bool) -> None:
    """Refuse a number of seconds that is negative, NaN or infinite (or 0 when `allow_zero` is False)."""
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        least = "0 or more" if allow_zero else "more than 0"
        raise UserInputError(f"{flag} must be a finite number of seconds, {least}; not {value:g}.")


def _line(obj: dict, as_json: bool, human: str) -> None:
    sys.stdout.write((json.dumps(to_jsonable(obj), ensure_ascii=False) if as_json else human) + "\n")
    sys.stdout.flush()


@contextmanager
def _stop_signals() -> Iterator[Callable[[], bool]]:
    """Ctrl-C (SIGINT) and SIGTERM (a service manager's stop request) both stop the loop: the handler raises
    KeyboardInterrupt and also sets a flag the loop checks between polls, so an interrupt that a library turned
    into an error inside a batch (DuckDB reports one as an InterruptException) still stops it. Restored afterwards."""
    stopping = [False]

    def raise_interrupt(_signum, _frame):
        stopping[0] = True
        raise KeyboardInterrupt

    try:
        previous = {s: signal.signal(s, raise_interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not in the main thread (e.g. a test runner's worker): leave signals alone
        yield lambda: stopping[0]
        return
    try:
        yield lambda: stopping[0]
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _human_batch(b: FollowBatch) -> str:
    if b.error is not None:
        return f"{b.path}: {b.error}"
    r = b.result
    return (f"{b.path} bytes {b.first_byte}-{b.last_byte}: run {r.run_id}, {r.accepted:,} accepted, "
            f"{r.rejected:,} rejected, {r.duplicates:,} duplicates ({b.seconds:.2f} s)")  # fmt: skip


def follow(
    source: Path = typer.Argument(..., help="A folder to watch for new files, or a file that keeps growing."),
    preset: str = typer.Option(..., "--preset", "-p", help="Format: " + ", ".join(preset_names()) + "."),
    db: Path | None = DbOption,
    pattern: str = typer.Option("*", "--pattern", help="Folder: only files matching this glob."),
    interval: float = typer.Option(1.0, "--interval", help="Seconds between looks at the source."),
    settle: float = typer.Option(2.0, "--settle", help="Folder: seconds a file must stay unchanged before its "
                                 "unterminated last line (or a compressed/Parquet file) is taken."),  # fmt: skip
    write_timeout: float = typer.Option(30.0, "--write-timeout", help="Seconds a batch waits for a database held "
                                        "by another process before giving up with an error."),  # fmt: skip
    once: bool = typer.Option(False, "--once", help="Ingest what is there now (files as complete), then exit."),
    mapping: Path | None = MAPPING_OPTION,
    user: str | None = USER_OPTION,
    item: str | None = ITEM_OPTION,
    time: str | None = TIME_OPTION,
    event: str | None = EVENT_OPTION,
    value: str | None = VALUE_OPTION,
    category: str | None = CATEGORY_OPTION,
    category_sep: str | None = CATEGORY_SEP_OPTION,
    title: str | None = TITLE_OPTION,
    context: list[str] = CONTEXT_OPTION,
    time_unit: str | None = TIME_UNIT_OPTION,
    delimiter: str | None = DELIMITER_OPTION,
    encoding: str | None = ENCODING_OPTION,
    event_type: str | None = EVENT_TYPE_OPTION,
    meta: Path | None = META_OPTION,
    as_json: bool = FOLLOW_JSON_OPTION,
) -> None:
    """Ingest each new file in a folder (or the new lines of a growing file) as it lands, until stopped."""
    _check_seconds("--interval", interval, allow_zero=False)  # 0 would poll in a busy loop
    _check_seconds("--settle", settle, allow_zero=True)
    _check_seconds("--write-timeout", write_timeout, allow_zero=True)
    flags = dict(user=user, item=item, time=time, event=event, value=value, category=category,
                 category_sep=category_sep, title=title, context=context, time_unit=time_unit, delimiter=delimiter,
                 encoding=encoding, event_type=event_type)  # fmt: skip
    follower = Follower(db, preset, source, mapping=mapping_from_flags(mapping, flags), meta=meta,
                        pattern=pattern, settle_s=settle, write_timeout_s=write_timeout)  # fmt: skip
    totals = {"batches": 0, "errors": 0, "accepted": 0, "rejected": 0, "duplicates": 0}

    def on_batch(b: FollowBatch) -> None:
        if b.error is not None:
            totals["errors"] += 1
        else:
            totals["batches"] += 1
            for k in ("accepted", "rejected", "duplicates"):
                totals[k] += getattr(b.result, k)
        _line(b.as_dict(), as_json, _human_batch(b))

    if not as_json:
        _line({}, False, f"ingesting what is in {follower.source} into {follower.db}" if once
              else f"following {follower.source} into {follower.db} (Ctrl-C stops)")  # fmt: skip
    try:
        with _stop_signals() as stopped:
            if once:
                for b in follower.poll(final=True):
                    on_batch(b)
            else:
                follower.run(interval, on_batch, stop=stopped)
    except KeyboardInterrupt:
        pass
    _line({"event": "stopped", **totals}, as_json,
          f"stopped: {_n(totals['batches'], 'batch')}, {_n(totals['accepted'], 'event')} accepted, "
          f"{_n(totals['duplicates'], 'duplicate')}, {totals['rejected']:,} rejected, "
          f"{_n(totals['errors'], 'error')}.")  # fmt: skip


def replay(
    source: Path = typer.Option(..., "--source", help="The database whose log is replayed."),
    db: Path | None = DbOption,
    speed: float = typer.Option(math.inf, "--speed", help="Seconds of log time per second (default: as fast as "
                                "possible; 1000 plays 1,000 s of log per second)."),  # fmt: skip
    interval: float = typer.Option(1.0, "--interval", help="At most one batch per this many seconds while replaying "
                                   "in real time."),  # fmt: skip
    batch_size: int = typer.Option(10_000, "--batch-size", help="At most this many events per batch."),
    write_timeout: float = typer.Option(30.0, "--write-timeout", help="Seconds a batch waits for a database held "
                                        "by another process before giving up with an error."),  # fmt: skip
    as_json: bool = REPLAY_JSON_OPTION,
) -> None:
    """Replay another database's events (with their users and items) into --db in time order."""
    if batch_size < 1:
        raise UserInputError(f"--batch-size must be at least 1 event, not {batch_size}.")
    _check_seconds("--interval", interval, allow_zero=True)
    _check_seconds("--write-timeout", write_timeout, allow_zero=True)
    replayer = Replayer(db, source, speed=speed, interval_s=interval, max_batch=batch_size,
                        write_timeout_s=write_timeout)  # fmt: skip

    def on_batch(b: ReplayBatch) -> None:
        _line(b.as_dict(), as_json, f"batch {b.index}: {_n(b.accepted, 'event')} up to {b.log_time} "
                                    f"(run {b.run_id}, {b.seconds:.2f} s)")  # fmt: skip

    try:
        with _stop_signals():
            replayer.run(on_batch)
    except KeyboardInterrupt:
        pass
    s = replayer.summary
    _line(s.as_dict(), as_json, f"{'done' if s.done else 'stopped'}: {s.events:,} of {_n(s.source_events, 'event')} "
                                f"in {_n(s.batches, 'batch')} ({s.accepted:,} accepted, "
                                f"{_n(s.duplicates, 'duplicate')}).")  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("follow")(follow)
    app.command("replay")(replay)
