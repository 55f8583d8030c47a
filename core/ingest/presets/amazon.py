"""Amazon reviews (2018): JSON lines, gzip or not, with an optional `meta_*.json(.gz)` file; also the older
"ratings only" CSVs (`user,item,rating,timestamp`, no header).

A review is an event of type `rating` with `overall` as its value, at `unixReviewTime` (unix seconds).
The 2018 files repeat some reviews exactly; the pipeline drops those and counts them as duplicates.
Metadata gives items a title, categories (the level below the file's top category, e.g. "Women" in
["Clothing, Shoes & Jewelry", "Women", "Shoes"], else the top one, else `main_cat`) and attributes
(brand, main_cat, the whole category path). Titles may hold HTML: stored as text, shown as text.
"""

from __future__ import annotations

import re
from pathlib import Path

from core.errors import UserInputError
from core.ingest.files import require_file
from core.ingest.presets.common import (
    IngestOptions,
    events_select,
    first_problem,
    number,
    number_problem,
    raw_fields,
)
from core.ingest.readers import Dialect, first_line
from core.ingest.stage import Run, SideTable, Stage
from core.ingest.times import time_sql

__all__ = ["load_amazon_reviews", "meta_path_for"]

_REVIEW_FIELDS = ["$.reviewerID", "$.asin", "$.unixReviewTime", "$.overall"]
_META_FIELDS = ["$.asin", "$.title", "$.brand", "$.main_cat"]


def meta_path_for(reviews: Path) -> Path | None:
    """`meta_<Category>.json(.gz)` beside `<Category>_5.json.gz` / `<Category>.json(.gz)`, if present."""
    stem = re.sub(r"(\.json|\.jsonl|\.gz|\.csv)+$", "", reviews.name)
    stem = re.sub(r"_5$", "", stem)
    for suffix in (".json.gz", ".json", ".jsonl.gz", ".jsonl"):
        candidate = reviews.parent / f"meta_{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def load_amazon_reviews(run: Run, source: Path, options: IngestOptions) -> Stage:
    """A reviews file (JSON lines or a ratings-only CSV) and, optionally, its metadata file."""
    path = require_file(source, "reviews file")
    if re.search(r"\.csv(\.gz)?$", path.name):
        return _ratings_csv(run, path)
    if not first_line(path).lstrip().startswith("{"):
        raise UserInputError(
            f"{path.name} does not look like Amazon reviews: expected JSON lines (one review object per line) "
            f"or a ratings-only .csv file."
        )
    src, params = run.json_lines(path, "one JSON object per line with reviewerID, asin and unixReviewTime")
    t = time_sql("j[3]", "s")
    events = events_select(
        f"(SELECT c0, CASE WHEN TRY(json_type(c0)) = 'OBJECT' THEN json_extract_string(c0, ?::VARCHAR[]) END AS j "
        f"FROM {src} WHERE c0 IS NOT NULL AND trim(c0) <> '')",
        user="j[1]",
        item="j[2]",
        time=t,
        event_type="'rating'",
        value=number("j[4]"),
        problem=first_problem(
            "CASE WHEN j IS NULL THEN 'not a JSON object' END",
            number_problem("j[4]", "overall rating"),
            "CASE WHEN TRY_CAST(j[4] AS DOUBLE) > 5 THEN 'rating above 5' END",
        ),
        raw=["c0"],
    )
    meta = options.meta or meta_path_for(path)
    if options.meta is None and meta is not None:
        run.assume(f"Item metadata read from {meta.name}, found beside the reviews.")
    items = _meta(run, meta) if meta else None
    return Stage(events, [_REVIEW_FIELDS, *params], items=items, raw_parts=1, raw_delim="")


def _ratings_csv(run: Run, path: Path) -> Stage:
    dialect = Dialect(delim=",", header=False)
    if first_line(path).lower().replace(" ", "").startswith("user,item"):
        dialect = Dialect(delim=",", header=True)
        run.assume(f"{path.name} starts with a header line; it was skipped.")
    src, params = run.delimited(path, 4, dialect, "4 comma-separated fields: user, item, rating, unix seconds")
    sql = events_select(
        src,
        user="c0",
        item="c1",
        time=time_sql("c3", "s"),
        event_type="'rating'",
        value=number("c2"),
        problem=first_problem(number_problem("c2", "rating"), f"CASE WHEN {number('c2')} > 5 THEN 'rating above 5' END"),
        raw=raw_fields(4),
    )
    return Stage(sql, params, raw_parts=4)


def _meta(run: Run, path: Path) -> SideTable:
    path = require_file(path, "metadata file")
    src, params = run.json_lines(path, "one JSON object per line with asin, title, category", events=False)
    cats = "cats"
    sql = f"""SELECT n AS seq, trim(j[1]) AS item_id, j[2] AS title,
                CASE WHEN len({cats}) >= 2 THEN [{cats}[2]] WHEN len({cats}) = 1 THEN [{cats}[1]]
                     WHEN j[4] IS NOT NULL AND j[4] <> '' THEN [j[4]] ELSE []::VARCHAR[] END AS categories,
                map_from_entries(list_filter([
                    struct_pack(k := 'brand', v := j[3]), struct_pack(k := 'main_cat', v := j[4]),
                    struct_pack(k := 'category_path', v := array_to_string({cats}, ' > '))],
                    lambda e: e.v IS NOT NULL AND e.v <> '')) AS attributes,
                c0 AS raw
            FROM (SELECT n, c0, CASE WHEN TRY(json_type(c0)) = 'OBJECT' THEN json_extract_string(c0, ?::VARCHAR[]) END AS j,
                         CASE WHEN TRY(json_type(c0)) = 'OBJECT' THEN TRY_CAST(json_extract(c0, '$.category') AS VARCHAR[]) END AS cats
                  FROM (SELECT row_number() OVER () - 1 AS n, c0 FROM {src}) WHERE c0 IS NOT NULL AND trim(c0) <> '')"""
    return SideTable(sql, [_META_FIELDS, *params], label=path.name)
