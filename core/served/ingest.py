"""Load a served-recommendation log (what a production system showed): one transaction, rejects kept with reasons.

Each row is one item in one list: user, item, rank or score, served_at, variant. It lands in the table `served`
(created on first use):

    user_id VARCHAR, item_id VARCHAR, rank INTEGER (1 = top), score DOUBLE, served_at TIMESTAMP (UTC),
    variant VARCHAR ('' when the log has none), run_id BIGINT, seq BIGINT (row position in the file)

As for events (`core.ingest.run`): the whole file lands or nothing does, the run is recorded in `ingest_runs`
(preset "served"), and every rejected row is kept in `rejects` with its reason — missing user or item, a bad
served_at, a rank that is not a whole number of at least 1, neither rank nor score. Without a rank column the
rank is the score order within each (user, served_at, variant) list, ties by item id. A repeated (user,
served_at, variant, rank) keeps its first row; the rest count as duplicates.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb

from core.errors import SettingError, UserInputError
from core.ingest.result import IngestResult
from core.ingest.times import guess_unit, time_sql
from core.store import connect_write

__all__ = ["SERVED_TABLE", "ingest_served", "ensure_served_table"]

SERVED_TABLE = "served"
_DDL = """CREATE TABLE IF NOT EXISTS served (user_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL, rank INTEGER NOT NULL,
    score DOUBLE, served_at TIMESTAMP NOT NULL, variant VARCHAR NOT NULL, run_id BIGINT NOT NULL, seq BIGINT NOT NULL)"""


def ensure_served_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_DDL)


def _reader(path: Path) -> str:
    if path.suffix.lower() == ".parquet":
        return "SELECT * FROM read_parquet(?)"
    return "SELECT * FROM read_csv(?, header = true, all_varchar = true, auto_detect = true)"


def ingest_served(
    db: str | os.PathLike | None,
    path: str | os.PathLike,
    user_col: str = "user_id",
    item_col: str = "item_id",
    rank_col: str | None = "rank",
    score_col: str | None = "score",
    time_col: str = "served_at",
    variant_col: str | None = "variant",
) -> IngestResult:
    """Load the served log at `path` (CSV/TSV with a header, or Parquet) into `served`; see the module docstring.

    Raises UserInputError (one sentence) for a missing file or column; the database is then unchanged apart from
    the `ingest_runs` row recording the failure.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"There is no served log at {path}.")
    with connect_write(db) as con:
        con.execute("SET TimeZone = 'UTC'")
        run_id = int(con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM ingest_runs").fetchone()[0])
        started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        con.execute("BEGIN TRANSACTION")
        try:
            result = _load(con, path, run_id, started, user_col, item_col, rank_col, score_col, time_col, variant_col)
            con.execute("COMMIT")
            return result
        except BaseException as exc:
            con.execute("ROLLBACK")
            con.execute("INSERT INTO ingest_runs VALUES (?, ?, 'served', 'failed', 0, 0, 0, ?, ?, ?)",
                        [run_id, str(path), str(exc) or type(exc).__name__, started,
                         dt.datetime.now(dt.UTC).replace(tzinfo=None)])
            raise


def _load(con, path: Path, run_id: int, started, user_col, item_col, rank_col, score_col, time_col, variant_col):
    con.execute(f"CREATE OR REPLACE TEMP TABLE _il_served_raw AS SELECT row_number() OVER () AS seq, * FROM ({_reader(path)})",
                [str(path)])
    columns = [r[0] for r in con.execute("DESCRIBE _il_served_raw").fetchall()]
    named = {"--user-col": user_col, "--item-col": item_col, "--time-col": time_col}
    for flag, col in named.items():
        if col not in columns:
            raise UserInputError(f"The served log has no column {col!r} ({flag}); its columns are {', '.join(columns[1:])}.")
    rank = rank_col if rank_col in columns else None
    score = score_col if score_col in columns else None
    if rank is None and score is None:
        raise SettingError("The served log needs a rank or a score column ({rank_col} / {score_col}).", ("rank_col", "score_col"))
    variant = variant_col if variant_col in columns else None

    def q(c: str) -> str:  # an identifier already checked against the file's real columns
        return '"' + c.replace('"', '""') + '"'

    text = f"trim(CAST({q(time_col)} AS VARCHAR))"
    guess = guess_unit(con, f"SELECT {text} AS x FROM _il_served_raw LIMIT 1000", [], time_col, 1000)
    t = time_sql(text, guess.unit)
    rank_sql = f"TRY_CAST(trim(CAST({q(rank)} AS VARCHAR)) AS DOUBLE)" if rank else "NULL::DOUBLE"
    score_sql = f"TRY_CAST(trim(CAST({q(score)} AS VARCHAR)) AS DOUBLE)" if score else "NULL::DOUBLE"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _il_served_stage AS SELECT seq,
        nullif(trim(CAST({q(user_col)} AS VARCHAR)), '') AS user_id, nullif(trim(CAST({q(item_col)} AS VARCHAR)), '') AS item_id,
        {rank_sql} AS rank_d, {score_sql} AS score, {t.ts} AS served_at, {t.problem} AS ts_problem,
        {f"coalesce(trim(CAST({q(variant)} AS VARCHAR)), '')" if variant else "''"} AS variant,
        concat_ws(',', {', '.join(f'CAST({q(c)} AS VARCHAR)' for c in columns[1:])}) AS raw
        FROM _il_served_raw""")
    rank_rule = ("WHEN rank_d IS NULL AND score IS NULL THEN 'neither rank nor score' "
                 "WHEN rank_d IS NOT NULL AND (rank_d < 1 OR rank_d <> floor(rank_d)) THEN 'rank is not a whole number of at least 1'")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _il_served_checked AS SELECT *, CASE
        WHEN user_id IS NULL THEN 'missing user' WHEN item_id IS NULL THEN 'missing item'
        WHEN served_at IS NULL THEN 'served_at: ' || ts_problem {rank_rule if rank else "WHEN score IS NULL THEN 'missing score'"}
        END AS problem FROM _il_served_stage""")
    con.execute("INSERT INTO rejects SELECT ?, seq, problem, raw FROM _il_served_checked WHERE problem IS NOT NULL", [run_id])
    ensure_served_table(con)
    ranked = "CAST(rank_d AS INTEGER)" if rank else \
        "CAST(row_number() OVER (PARTITION BY user_id, served_at, variant ORDER BY score DESC, item_id) AS INTEGER)"
    con.execute(f"""INSERT INTO served SELECT user_id, item_id, rank, score, served_at, variant, ?, seq FROM (
        SELECT *, row_number() OVER (PARTITION BY user_id, served_at, variant, rank ORDER BY seq) AS n FROM (
            SELECT user_id, item_id, {ranked} AS rank, score, served_at, variant, seq
            FROM _il_served_checked WHERE problem IS NULL)) WHERE n = 1""", [run_id])
    valid, rejected = con.execute("SELECT count(*) FILTER (problem IS NULL), count(*) FILTER (problem IS NOT NULL) "
                                  "FROM _il_served_checked").fetchone()
    accepted = int(con.execute("SELECT count(*) FROM served WHERE run_id = ?", [run_id]).fetchone()[0])
    reasons = dict(con.execute("SELECT problem, count(*) FROM _il_served_checked WHERE problem IS NOT NULL "
                               "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5").fetchall())
    duplicates = int(valid) - accepted
    message = f"{accepted:,} served rows accepted, {int(rejected):,} rejected, {duplicates:,} duplicates dropped."
    con.execute("INSERT INTO ingest_runs VALUES (?, ?, 'served', 'ok', ?, ?, ?, ?, ?, ?)",
                [run_id, str(path), accepted, int(rejected), duplicates, message, started,
                 dt.datetime.now(dt.UTC).replace(tzinfo=None)])
    for name in ("_il_served_raw", "_il_served_stage", "_il_served_checked"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    return IngestResult(accepted, int(rejected), duplicates, run_id, [guess.sentence], message,
                        {str(k): int(v) for k, v in reasons.items()})
