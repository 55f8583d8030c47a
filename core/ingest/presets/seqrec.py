"""Sequential-recommendation benchmark files (S3Rec / ICLRec preprocessing, e.g. Amazon Toys_and_Games.txt):
one line per user, `user item1 item2 ...` separated by spaces, items already in time order, no timestamps.

Each item becomes one event whose time is 2000-01-01 plus its position on the line in days (the first item on day
0), so times increase strictly along the line and a leave-one-out or time-ordered split is the papers' split
(last item = test, second-last = validation). The times are synthetic: time gaps carry no information (all one
day). Events are typed `interaction` with no value. A line with a user but no item is rejected with its reason;
a reject's row number counts item rows (one per item, in file order), and its raw text is the whole line.
"""

from __future__ import annotations

from pathlib import Path

from core.ingest.presets.common import IngestOptions, events_select, find_file
from core.ingest.run import Run, Stage
from core.ingest.times import TimeSql

__all__ = ["load_seqrec", "EPOCH_MICROS", "DAY_MICROS"]

EPOCH_MICROS = 946_684_800 * 1_000_000  # 2000-01-01 00:00 UTC: the first item of every line
DAY_MICROS = 86_400 * 1_000_000  # one day between consecutive items of a line


def load_seqrec(run: Run, source: Path, options: IngestOptions) -> Stage:
    """A `user item1 item2 ...` text file (or a folder holding one .txt file)."""
    path = find_file(source, ["*.txt"], "a one-line-per-user sequence file (user item1 item2 ...)")
    # one text column c0 per line (the JSON-lines reader: nothing split or unquoted)
    src, params = run.json_lines(path, "one line per user: user id, then item ids in time order, space-separated")
    # one row per item: the line's tokens after the first, with their 1-based position (an item-less line keeps
    # one row with a NULL item so it is rejected, never silently dropped)
    tokens = f"(SELECT c0, regexp_split_to_array(trim(c0), '\\s+') AS t FROM {src} WHERE trim(c0) <> '')"
    rows = f"""(SELECT c0, t[1] AS u,
                   unnest(CASE WHEN len(t) < 2 THEN [NULL::VARCHAR] ELSE t[2:] END) AS i,
                   unnest(CASE WHEN len(t) < 2 THEN [1] ELSE range(1, len(t)) END) AS pos
               FROM {tokens})"""
    time = TimeSql(ts=f"make_timestamp({EPOCH_MICROS} + (pos - 1) * {DAY_MICROS})", problem="NULL::VARCHAR")
    sql = events_select(
        rows,
        user="u",
        item="i",
        time=time,
        event_type="'interaction'",
        problem="CASE WHEN i IS NULL THEN 'line has a user id but no items' END",
        raw=["c0"],
    )
    run.assume("Sequence file: no timestamps; each item is dated one day after the previous one on its line.")
    return Stage(sql, params, raw_parts=1)
