"""`Follower` / `interestlens follow`: new files in a folder, complete lines of a growing file, positions that
survive restarts, exactly-once after an interrupted batch, idempotent re-appends, and a clean Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from core.ingest import ColumnMapping
from core.live import Follower
from core.store import connect_read

HEADER = "user_id,item_id,timestamp,device\n"
MAP = ColumnMapping(context=("device",))
ROOT = Path(__file__).resolve().parents[2]


def rows(db: Path, sql: str = "SELECT user_id, item_id, epoch(ts)::BIGINT, seq FROM events ORDER BY ts, run_id, seq"):
    with connect_read(db) as con:
        return con.execute(sql).fetchall()


def line(k: int, user: str = "u1") -> str:
    return f"{user},i{k},{1_700_000_000 + k},mobile\n"


def follower(db: Path, source: Path, **kw) -> Follower:
    return Follower(db, "generic", source, mapping=MAP, **kw)


def test_folder_new_files_are_ingested_once_and_remembered_across_restarts(tmp_path):
    src, db = tmp_path / "in", tmp_path / "live.duckdb"
    src.mkdir()
    (src / "a.csv").write_text(HEADER + line(0) + line(1))
    f = follower(db, src)
    first = f.poll()
    assert [(b.error, b.result.accepted) for b in first] == [(None, 2)]
    assert f.poll() == []  # nothing new
    (src / "b.csv").write_text(HEADER + line(2, "u2"))
    (src / ".hidden.csv").write_text(HEADER + line(9))  # hidden and partial downloads are not followed
    (src / "c.csv.part").write_text(HEADER + line(8))
    second = f.poll()
    assert [(Path(b.path).name, b.result.accepted) for b in second] == [("b.csv", 1)]
    assert follower(db, src).poll() == []  # a restarted follower knows what it has done
    assert rows(db) == [("u1", "i0", 1_700_000_000, 0), ("u1", "i1", 1_700_000_001, 1), ("u2", "i2", 1_700_000_002, 0)]
    assert rows(db, "SELECT source FROM ingest_runs ORDER BY run_id") == [
        (f"{src / 'a.csv'} (bytes 0-{len(HEADER + line(0) + line(1))})",),
        (f"{src / 'b.csv'} (bytes 0-{len(HEADER + line(2, 'u2'))})",),
    ]


def test_growing_file_takes_complete_lines_only_and_resumes_after_restart(tmp_path):
    path, db = tmp_path / "log.csv", tmp_path / "live.duckdb"
    path.write_text(HEADER + line(0) + line(1) + "u1,i2,17000")  # the writer is in the middle of a line
    f = follower(db, path, settle_s=0)
    assert [b.result.accepted for b in f.poll(final=True)] == [2]  # a growing file's partial line always waits
    with open(path, "a") as fh:
        fh.write("00002,mobile\n" + line(3))
    assert [b.result.accepted for b in f.poll()] == [2]
    g = follower(db, path)  # restart: position from the database
    assert g.poll() == []
    with open(path, "a") as fh:
        fh.write(line(4))
    assert [b.result.accepted for b in g.poll()] == [1]
    # seq is the row's position in the whole file, not in its chunk; no line lost, none repeated
    assert rows(db) == [("u1", f"i{k}", 1_700_000_000 + k, k) for k in range(5)]
    state = json.loads(rows(db, "SELECT value FROM meta WHERE key LIKE 'follow:%'")[0][0])
    assert (state["offset"], state["lines"]) == (path.stat().st_size, 6)


def test_rejects_of_a_later_chunk_carry_their_row_and_line_in_the_whole_file(tmp_path):
    path, db = tmp_path / "log.csv", tmp_path / "live.duckdb"
    path.write_text(HEADER + line(0) + line(1))
    f = follower(db, path)
    f.poll()
    with open(path, "a") as fh:
        fh.write(line(2) + ",i3,1700000003,mobile\n" + "u1,i4\n" + line(5))
    (batch,) = f.poll()
    assert (batch.result.accepted, batch.result.rejected) == (2, 2)
    assert rows(db, "SELECT row_number, reason FROM rejects ORDER BY row_number") == [
        (4, "missing user id"),  # data row 4 of the file
        (6, "log.csv line 6: unreadable line, wrong number of fields (expected 4 ','-separated fields: "
            "user_id, item_id, timestamp, device)"),  # line 6 of the file (the header is line 1)
    ]  # fmt: skip
    # seq: the rows before the chunk, then the chunk's rows the reader could split (as in a whole-file ingest)
    assert [r[3] for r in rows(db)] == [0, 1, 2, 4]


def test_an_interrupted_batch_leaves_nothing_and_is_done_once_next_time(tmp_path, monkeypatch):
    import core.ingest.pipeline as pipeline

    path, db = tmp_path / "log.csv", tmp_path / "live.duckdb"
    path.write_text(HEADER + line(0))
    f = follower(db, path)
    f.poll()
    with open(path, "a") as fh:
        fh.write(line(1) + line(2, "u9"))
    real = pipeline.upsert_items

    def interrupted(run, stage):  # Ctrl-C after the events are inserted, before the batch commits
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "upsert_items", interrupted)
    with pytest.raises(KeyboardInterrupt):
        f.poll()
    assert rows(db) == [("u1", "i0", 1_700_000_000, 0)]  # nothing of the batch landed
    assert rows(db, "SELECT count(*) FROM users") == [(1,)]
    assert rows(db, "SELECT status, message FROM ingest_runs WHERE run_id = 2") == [("failed", "interrupted")]
    state = json.loads(rows(db, "SELECT value FROM meta WHERE key LIKE 'follow:%'")[0][0])
    assert state["offset"] == len(HEADER + line(0))  # the position did not move either
    monkeypatch.setattr(pipeline, "upsert_items", real)
    assert [b.result.accepted for b in follower(db, path).poll()] == [2]  # a restarted follower redoes it once
    assert rows(db) == [("u1", "i0", 1_700_000_000, 0), ("u1", "i1", 1_700_000_001, 1), ("u9", "i2", 1_700_000_002, 2)]


def test_reappended_and_rewritten_lines_are_kept_once(tmp_path):
    path, db = tmp_path / "log.csv", tmp_path / "live.duckdb"
    path.write_text(HEADER + line(0) + line(1))
    f = follower(db, path)
    f.poll()
    with open(path, "a") as fh:
        fh.write(line(1) + line(0) + line(2))  # two events seen before, one new
    (batch,) = f.poll()
    assert (batch.result.accepted, batch.result.duplicates) == (1, 2)
    path.write_text(HEADER + line(2) + line(3))  # the file was replaced by a shorter one: read from its start
    (again,) = f.poll()
    assert (again.result.accepted, again.result.duplicates) == (1, 1)
    assert [r[1] for r in rows(db)] == ["i0", "i1", "i2", "i3"]


def test_a_folder_file_without_final_newline_is_taken_once_it_has_settled(tmp_path, monkeypatch):
    import core.live.follow as follow_module

    now = [1000.0]  # the follower's clock, moved by hand: a slow ingest on a loaded machine cannot settle the file
    monkeypatch.setattr(follow_module, "time", types.SimpleNamespace(monotonic=lambda: now[0], perf_counter=time.perf_counter))
    src, db = tmp_path / "in", tmp_path / "live.duckdb"
    src.mkdir()
    (src / "a.csv").write_text(HEADER + line(0) + line(1).rstrip("\n"))
    f = follower(db, src, settle_s=0.3)
    assert [b.result.accepted for b in f.poll()] == [1]  # first sight: the last line may still be written
    now[0] += 0.2
    assert f.poll() == []  # unchanged for 0.2 s only: still not taken
    now[0] += 0.2
    assert [b.result.accepted for b in f.poll()] == [1]  # unchanged for 0.4 s >= 0.3 s: the last line is complete
    assert [r[1] for r in rows(db)] == ["i0", "i1"]


def test_a_file_in_the_wrong_layout_is_reported_and_not_retried_until_it_changes(tmp_path):
    src, db = tmp_path / "in", tmp_path / "live.duckdb"
    src.mkdir()
    (src / "bad.csv").write_text("who,what\nx,y\n")
    f = follower(db, src)
    (batch,) = f.poll()
    assert batch.result is None and "missing the required column(s)" in batch.error
    assert batch.as_dict()["event"] == "error"
    assert f.poll() == []


def test_follow_cli_prints_json_lines_and_stops_cleanly_on_ctrl_c(tmp_path):
    src, db = tmp_path / "in", tmp_path / "live.duckdb"
    src.mkdir()
    (src / "a.csv").write_text(HEADER + line(0) + line(1))
    cmd = [sys.executable, "-c", "from cli import main; main()", "follow", "--db", str(db), "--preset", "generic",
           "--context", "device", "--interval", "0.2", "--json", str(src)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    try:
        first = json.loads(proc.stdout.readline())
        (src / "b.csv").write_text(HEADER + line(2))
        second = json.loads(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert (first["event"], first["accepted"], first["run_id"]) == ("batch", 2, 1)
    assert (second["event"], second["accepted"], Path(second["file"]).name) == ("batch", 1, "b.csv")
    assert proc.returncode == 0 and "Traceback" not in err
    assert json.loads(out.strip().splitlines()[-1]) == {"event": "stopped", "batches": 2, "errors": 0,
                                                         "accepted": 3, "rejected": 0, "duplicates": 0}  # fmt: skip


@pytest.mark.parametrize(
    "preset, fixture, cut",
    [("taobao", "taobao/UserBehavior.csv", 3), ("movielens-100k", "ml-100k/u.data", 4),
     ("movielens-latest", "ml-latest-small/ratings.csv", 3)],
)  # fmt: skip
def test_following_a_file_in_pieces_equals_ingesting_it_whole(tmp_path, preset, fixture, cut):
    from core.ingest import ingest

    whole = (ROOT / "tests" / "fixtures" / fixture).read_bytes()
    lines = whole.splitlines(keepends=True)
    name = Path(fixture).name
    ref = tmp_path / "ref" / name  # alone in its folder, like the chunks: no sibling files
    ref.parent.mkdir()
    ref.write_bytes(whole)
    expected = ingest(tmp_path / "whole.duckdb", preset, ref)
    path, db = tmp_path / "live" / name, tmp_path / "live.duckdb"
    path.parent.mkdir()
    path.write_bytes(b"".join(lines[:cut]))
    f = Follower(db, preset, path)
    got = f.poll()
    with open(path, "ab") as fh:
        fh.write(b"".join(lines[cut:]))
    got += f.poll()
    assert len(got) == 2 and all(b.error is None for b in got)
    assert sum(b.result.accepted for b in got) == expected.accepted
    assert sum(b.result.rejected for b in got) == expected.rejected
    events = "SELECT user_id, item_id, ts, event_type, value, seq FROM events ORDER BY ts, run_id, seq"
    assert rows(db, events) == rows(tmp_path / "whole.duckdb", events)
    reasons = "SELECT row_number, reason FROM rejects ORDER BY row_number"
    assert rows(db, reasons) == rows(tmp_path / "whole.duckdb", reasons)


def _hold_read_only(db: str, seconds: float, ready) -> None:
    import duckdb

    con = duckdb.connect(db, read_only=True)
    ready.set()
    time.sleep(seconds)
    con.close()


def test_a_writer_held_off_by_a_reader_gives_up_with_one_sentence(tmp_path):
    import multiprocessing as mp

    from core.store import StoreError

    path, db = tmp_path / "log.csv", tmp_path / "live.duckdb"
    path.write_text(HEADER + line(0))
    f = follower(db, path, write_timeout_s=0.3)
    f.poll()
    with open(path, "a") as fh:
        fh.write(line(1))
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    reader = ctx.Process(target=_hold_read_only, args=(str(db), 4.0, ready))
    reader.start()
    try:
        assert ready.wait(60)
        with pytest.raises(StoreError, match="is held by another process"):
            f.poll()
    finally:
        reader.join(60)
    assert [b.result.accepted for b in f.poll()] == [1]  # once the reader is gone the batch goes in, once
    assert [r[1] for r in rows(db)] == ["i0", "i1"]


def test_an_interrupt_swallowed_inside_a_batch_still_stops_the_follow_loop(tmp_path):
    from cli.commands.live import _stop_signals

    path, db = tmp_path / "log.csv", tmp_path / "live.duckdb"
    path.write_text(HEADER + line(0))
    f = follower(db, path)
    polls = []

    def swallowing_on_batch(batch):  # a library that turns Ctrl-C into an error of its own (DuckDB does)
        polls.append(batch)
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            pass

    sleeps = []

    def sleep(seconds):  # without the flag the loop would poll forever: fail instead of hanging
        sleeps.append(seconds)
        assert len(sleeps) < 100, "the follow loop did not stop after Ctrl-C"

    previous = signal.getsignal(signal.SIGINT)
    with _stop_signals() as stopped:
        f.run(0.01, swallowing_on_batch, stop=stopped, sleep=sleep)  # returns: the flag ends the loop
        assert stopped()
    assert len(polls) == 1 and signal.getsignal(signal.SIGINT) is previous
