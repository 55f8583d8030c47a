"""`Replayer` / `interestlens replay`: a reader process reading the target while a log is replayed into it sees
whole batches only and no error; every event lands exactly once, in the source's order, with its users and
items; `--speed` paces batches by log time."""

from __future__ import annotations

import datetime as dt
import json
import math
import multiprocessing as mp
import queue
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from core.errors import UserInputError
from core.live import Replayer
from core.store import connect_read, connect_write

EVENTS = "SELECT user_id, item_id, ts, event_type, value, context FROM events ORDER BY ts, run_id, seq"


def _read(db: Path, sql: str) -> list[tuple]:
    with connect_read(db) as con:
        return con.execute(sql).fetchall()


def _reader(db: str, stop, snapshots, errors) -> None:
    """A separate process: open the target read-only again and again, note what each snapshot holds."""
    from core.store import connect_read

    while not stop.is_set():
        try:
            with connect_read(db, timeout_s=60) as con:
                snap = con.execute(
                    """SELECT (SELECT count(*) FROM events),
                              (SELECT coalesce(sum(accepted), 0) FROM ingest_runs WHERE status = 'ok')"""
                ).fetchall()[0]
            snapshots.put(tuple(int(x) for x in snap))
        except Exception as exc:  # any error at all fails the test
            errors.put(repr(exc))
        time.sleep(0.01)


def test_replay_while_a_reader_process_reads_whole_batches_only(synthetic_db, tmp_path):
    target = tmp_path / "live.duckdb"
    with connect_write(target):
        pass  # an empty InterestLens database, so the reader has something to open from the start
    ctx = mp.get_context("spawn")
    stop, snapshots, errors = ctx.Event(), ctx.Queue(), ctx.Queue()
    reader = ctx.Process(target=_reader, args=(str(target), stop, snapshots, errors))
    reader.start()
    seen: list[tuple[int, int]] = []

    def wait_for_reader(batch) -> None:
        """Let the reader look between every two batches (so it sees each intermediate state)."""
        want = sum(replayer.summary.batch_sizes)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                seen.append(snapshots.get(timeout=1))
            except queue.Empty:
                continue
            if seen[-1][0] == want:
                return

    try:
        replayer = Replayer(target, synthetic_db, max_batch=1000)
        summary = replayer.run(wait_for_reader)
    finally:
        stop.set()
        reader.join(60)
    while not snapshots.empty():
        seen.append(snapshots.get())
    assert errors.empty(), errors.get()
    sizes = summary.batch_sizes
    assert summary.done and len(sizes) == 6 and sum(sizes) == summary.source_events == 6000
    prefix = {sum(sizes[:k]) for k in range(len(sizes) + 1)}
    assert all(n == runs for n, runs in seen)  # each snapshot: the events of the committed batches, no more
    assert {n for n, _ in seen} <= prefix  # never part of a batch
    assert prefix - {0} <= {n for n, _ in seen}  # and the reader did look between batches
    # every event exactly once, in the source's canonical order
    assert _read(target, EVENTS) == _read(synthetic_db, EVENTS)
    assert _read(target, "SELECT count(*) FROM (SELECT DISTINCT * FROM events)") == [(6000,)]
    for table in ("users", "items"):
        assert _read(target, f"SELECT * FROM {table} ORDER BY 1") == _read(synthetic_db, f"SELECT * FROM {table} ORDER BY 1")
    # replaying again adds nothing (every event is a duplicate)
    again = Replayer(target, synthetic_db, max_batch=6000).run()
    assert (again.accepted, again.duplicates) == (0, 6000)


@pytest.fixture()
def spaced_db(tmp_path) -> Path:
    """Five events at 0, 100, 1,500, 1,600 and 5,000 s (log time); u3 and z have no events; NULLs in places."""
    db = tmp_path / "spaced.duckdb"
    t0 = dt.datetime(2024, 3, 1)
    with connect_write(db) as con:
        con.execute("INSERT INTO users VALUES ('u1', MAP {'g': 'F'}), ('u2', MAP {}), ('u3', MAP {'g': 'M'})")
        con.execute("INSERT INTO items VALUES ('a', 'Alpha', ['x'], MAP {}), ('b', NULL, [], MAP {}), ('z', 'Zed', ['y'], MAP {})")
        events = [("u1", "a", 0, "view", None, {"device": "m"}), ("u2", "b", 100, "cart", 2.0, {}),
                  ("u1", "b", 1500, "view", None, {"device": "d"}), ("u2", "a", 1600, "view", 1.0, {}),
                  ("u1", "a", 5000, "purchase", 3.0, {"device": "m"})]  # fmt: skip
        con.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
            [(u, i, t0 + dt.timedelta(seconds=s), e, v, c, n) for n, (u, i, s, e, v, c) in enumerate(events)],
        )
    return db


class FakeTime:
    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def test_speed_plays_that_many_seconds_of_log_per_second(spaced_db, tmp_path):
    fake = FakeTime()
    batches = []
    r = Replayer(tmp_path / "t.duckdb", spaced_db, speed=1000, interval_s=1.0, clock=fake.clock, sleep=fake.sleep)
    summary = r.run(batches.append)
    # wall 0 s: log 0 is due; 1 s: log 1,000 s (the event at 100); 2 s: 2,000 (1,500 and 1,600); the next event
    # is 3 s of wall time away, so the replayer sleeps until it is due rather than waking every second
    assert [b.rows for b in batches] == [1, 1, 2, 1]
    assert fake.sleeps == [1.0, 1.0, 3.0]
    assert summary.done and summary.seconds == 5.0
    assert _read(tmp_path / "t.duckdb", EVENTS) == [
        (u, i, ts, e, v, c or {}) for u, i, ts, e, v, c in _read(spaced_db, EVENTS)
    ]  # NULL context is stored as an empty map, as every ingest stores it
    assert [r[0] for r in _read(tmp_path / "t.duckdb", "SELECT user_id FROM users ORDER BY 1")] == ["u1", "u2", "u3"]
    assert _read(tmp_path / "t.duckdb", "SELECT item_id, title, categories FROM items ORDER BY 1") == [
        ("a", "Alpha", ["x"]), ("b", None, []), ("z", "Zed", ["y"])]  # fmt: skip


def test_infinite_speed_never_sleeps_and_batches_by_size(spaced_db, tmp_path):
    fake = FakeTime()
    sizes = []
    Replayer(tmp_path / "t.duckdb", spaced_db, speed=math.inf, max_batch=2, clock=fake.clock,
             sleep=fake.sleep).run(lambda b: sizes.append(b.rows))  # fmt: skip
    assert sizes == [2, 2, 1] and fake.sleeps == []


def test_replay_refuses_its_own_source_and_a_zero_speed(spaced_db):
    with pytest.raises(UserInputError, match="same file"):
        Replayer(spaced_db, spaced_db)
    with pytest.raises(UserInputError, match="positive factor"):
        Replayer(spaced_db.with_name("x.duckdb"), spaced_db, speed=0)


def test_replay_cli_prints_one_json_line_per_batch_then_done(spaced_db, tmp_path):
    out = CliRunner().invoke(app, ["replay", "--db", str(tmp_path / "c.duckdb"), "--source", str(spaced_db),
                                   "--batch-size", "3", "--json"], catch_exceptions=False)  # fmt: skip
    assert out.exit_code == 0, out.output
    lines = [json.loads(x) for x in out.stdout.strip().splitlines()]
    assert [(x["event"], x.get("accepted")) for x in lines] == [("batch", 3), ("batch", 2), ("done", 5)]
    assert lines[0]["log_time"] == "2024-03-01T00:25:00Z" and lines[-1]["source_events"] == 5
