"""MovieLens latest / latest-small / 20M / 25M: `ratings.csv`, `movies.csv` and the optional `tags.csv`.

Ratings are events of type `rating` (half stars). A tag is an event of type `tag` whose text is kept in the
event's context under `tag` (free text: the model's vocabulary leaves it out when it has too many values).
`(no genres listed)` means no category. These releases have no user attributes.
"""

from __future__ import annotations

from pathlib import Path

from core.ingest.presets.common import (
    IngestOptions,
    events_select,
    find_file,
    number,
    raw_fields,
    raw_text,
    sibling,
)
from core.ingest.presets.movielens import rating_problem
from core.ingest.readers import Dialect, header_names, require_columns
from core.ingest.stage import Run, SideTable, Stage
from core.ingest.times import time_sql

__all__ = ["load_movielens_latest"]

_CSV = Dialect(delim=",", header=True)


def load_movielens_latest(run: Run, source: Path, options: IngestOptions) -> Stage:
    """The folder (or its ratings.csv) of a MovieLens latest-style release."""
    ratings = find_file(source, ["ratings.csv"], "MovieLens' ratings.csv (userId,movieId,rating,timestamp)")
    names = header_names(ratings, _CSV)
    cols = require_columns(
        names, {"user": "userId", "item": "movieId", "rating": "rating", "time": "timestamp"}, ratings.name
    )
    src, params = run.delimited(ratings, len(names), _CSV, f"{len(names)} comma-separated fields: {','.join(names)}")
    r = f"c{cols['rating']}"
    tags = sibling(ratings, ["tags.csv"])  # a second event file: rows are then numbered per file
    parts = [
        events_select(
            src,
            user=f"c{cols['user']}",
            item=f"c{cols['item']}",
            time=time_sql(f"c{cols['time']}", "s"),
            event_type="'rating'",
            value=number(r),
            problem=rating_problem(r),
            raw=raw_fields(len(names)),
            context=["NULL"],
            seq_rows=tags is not None,
        )
    ]
    files, widths = [ratings.name], [len(names)]
    if tags is not None:
        t_names = header_names(tags, _CSV)
        t = require_columns(t_names, {"user": "userId", "item": "movieId", "tag": "tag", "time": "timestamp"}, tags.name)
        t_src, t_params = run.delimited(tags, len(t_names), _CSV, f"{len(t_names)} comma-separated fields: {','.join(t_names)}")
        parts.append(
            events_select(
                t_src,
                user=f"c{t['user']}",
                item=f"c{t['item']}",
                time=time_sql(f"c{t['time']}", "s"),
                event_type="'tag'",
                raw=raw_fields(len(t_names)),
                context=[f"c{t['tag']}"],
                file_index=1,
                seq_rows=True,
            )
        )
        params = [*params, *t_params]
        files.append(tags.name)
        widths.append(len(t_names))
    if len(set(widths)) > 1:  # UNION ALL needs the same raw_i columns on both sides
        parts = [f"SELECT *{''.join(f', NULL::VARCHAR AS raw_{i}' for i in range(w, max(widths)))} FROM ({p})"
                 for p, w in zip(parts, widths, strict=True)]  # fmt: skip
    return Stage(
        " UNION ALL BY NAME ".join(f"({p})" for p in parts),
        params,
        items=_movies(run, ratings),
        context_keys=("tag",),
        files=tuple(files),
        raw_parts=max(widths),
    )


def _movies(run: Run, ratings: Path) -> SideTable | None:
    path = sibling(ratings, ["movies.csv"])
    if path is None:
        run.assume("No movies.csv beside ratings.csv: items have no titles or genres.")
        return None
    names = header_names(path, _CSV)
    cols = require_columns(names, {"item": "movieId", "title": "title", "genres": "genres"}, path.name)
    src, params = run.delimited(path, len(names), _CSV, f"{len(names)} comma-separated fields: {','.join(names)}", False)
    sql = f"""SELECT row_number() OVER () - 1 AS seq, trim(c{cols['item']}) AS item_id, c{cols['title']} AS title,
                list_filter(string_split(coalesce(trim(c{cols['genres']}), ''), '|'),
                            lambda g: g <> '' AND g <> '(no genres listed)') AS categories,
                MAP {{}}::MAP(VARCHAR, VARCHAR) AS attributes, {raw_text(len(names), ',')} AS raw
            FROM {src}"""
    return SideTable(sql, params, label=path.name)
