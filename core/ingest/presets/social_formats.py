"""The two public logs with a social graph (see ../shared/FORMATS.md): HetRec 2011 Last.fm and Ciao(DVD).

`lastfm-hetrec` (SOURCE: the release folder): each tag assignment is an event of type `tag` on the artist, with
the tag's text as the event's `tag` context; an artist's category is the tag users gave it most (ties: the
smallest tag id), and its title is its name from `artists.dat`. Times come from
`user_taggedartists-timestamps.dat` (unix milliseconds) or, without it, from `user_taggedartists.dat`
(day, month, year). `user_friends.dat` gives undirected `friend` edges (each pair is listed both ways in the
release and stored once). Files may have CRLF line endings; a trailing carriage return is dropped.

`ciao` (SOURCE: a folder with `movie-ratings.txt` and `trusts.txt`): each rating is an event of type `rating`
(value = the stars) at its day; the genre id is the movie's category. `trusts.txt` gives directed `trust` edges
weighted by their third field.
"""

from __future__ import annotations

from pathlib import Path

from core.ingest.presets.common import (
    IngestOptions,
    events_select,
    find_file,
    first_problem,
    number,
    number_problem,
    raw_fields,
    raw_text,
    sibling,
)
from core.ingest.presets.edges import positional_edges
from core.ingest.readers import Dialect
from core.ingest.stage import Run, SideTable, Stage
from core.ingest.times import TimeSql, time_sql

__all__ = ["load_lastfm_hetrec", "load_ciao"]

_TAB = Dialect(delim="\t", header=True, quote="", escape="")
_COMMA = Dialect(delim=",", header=False)


def _c(i: int) -> str:
    return f"rtrim(c{i}, chr(13))"


def load_lastfm_hetrec(run: Run, source: Path, options: IngestOptions) -> Stage:
    """The `hetrec2011-lastfm-2k` folder (or its tagging file; the other files are looked for beside it)."""
    path = find_file(
        source, ["user_taggedartists-timestamps.dat", "user_taggedartists.dat"], "HetRec Last.fm's tagging file"
    )
    dated = path.name == "user_taggedartists.dat"
    n = 6 if dated else 4
    layout = "userID, artistID, tagID, day, month, year" if dated else "userID, artistID, tagID, timestamp"
    src, params = run.delimited(path, n, _TAB, f"a header line and {n} tab-separated fields: {layout}")
    tags_path = sibling(path, ["tags.dat"])
    tag_params: list = []
    if tags_path is not None:
        tsrc, tag_params = run.delimited(tags_path, 2, _TAB, "a header line and 2 fields: tagID, tagValue", False)
        src = f"(SELECT s.*, t.tag FROM {src} s LEFT JOIN (SELECT {_c(0)} AS tid, {_c(1)} AS tag FROM {tsrc}) t ON t.tid = s.c2)"
    else:
        run.assume("No tags.dat beside the tagging file: tags are their ids.")
        src = f"(SELECT *, c2 AS tag FROM {src})"
    if dated:
        y, m, d = _c(5), _c(4), _c(3)
        ts = f"TRY(make_timestamp(TRY_CAST({y} AS BIGINT), TRY_CAST({m} AS BIGINT), TRY_CAST({d} AS BIGINT), 0, 0, 0))"
        time = TimeSql(ts=ts, problem=f"CASE WHEN ({ts}) IS NULL THEN 'day, month, year is not a date' END")
        run.assume("Last.fm tag times are the day of user_taggedartists.dat (midnight UTC).")
    else:
        inner = time_sql(_c(3), "ms")
        time = TimeSql(ts=inner.ts, problem=inner.problem)
        run.assume("Last.fm tag times are unix milliseconds (user_taggedartists-timestamps.dat).")
    sql = events_select(
        src,
        user=_c(0),
        item=_c(1),
        time=time,
        event_type="'tag'",
        raw=raw_fields(n),
        context=["coalesce(tag, " + _c(2) + ")"],
    )
    stage_params = [*params, *tag_params]
    items = _lastfm_artists(run, path, tags_path)
    friends = sibling(path, ["user_friends.dat"])
    if friends is None:
        run.assume("No user_friends.dat beside the tagging file: no social edges.")
    edges = positional_edges(run, friends, _TAB, 2, kind="friend", directed=False) if friends else None
    return Stage(sql, stage_params, items=items, context_keys=("tag",), raw_parts=n, raw_delim="\t", edges=edges)


def _lastfm_artists(run: Run, tagging: Path, tags_path: Path | None) -> SideTable | None:
    """Artists with their names and, as category, the tag most often given to them."""
    artists = sibling(tagging, ["artists.dat"])
    if artists is None:
        run.assume("No artists.dat beside the tagging file: artists have no titles.")
        return None
    asrc, aparams = run.delimited(artists, 4, _TAB, "a header line and 4 fields: id, name, url, pictureURL", False)
    n = 6 if tagging.name == "user_taggedartists.dat" else 4
    ttab, tparams = run.delimited(tagging, n, _TAB, "the tagging file", False)
    tag_text = "c2"
    tag_join = ""
    params2: list = []
    if tags_path is not None:
        tsrc, params2 = run.delimited(tags_path, 2, _TAB, "a header line and 2 fields: tagID, tagValue", False)
        tag_join = f"LEFT JOIN (SELECT {_c(0)} AS tid, {_c(1)} AS tag FROM {tsrc}) t ON t.tid = g.tid"
        tag_text = "coalesce(t.tag, g.tid)"
    # the most frequent tag of each artist; ties go to the smallest tag id (numerically, then as text)
    top = f"""SELECT g.aid, {tag_text} AS tag FROM (
                SELECT aid, tid FROM (SELECT aid, tid, row_number() OVER (PARTITION BY aid
                        ORDER BY cnt DESC, TRY_CAST(tid AS BIGINT), tid) AS rn
                    FROM (SELECT {_c(1)} AS aid, c2 AS tid, count(*) AS cnt FROM {ttab} GROUP BY 1, 2))
                WHERE rn = 1) g {tag_join}"""
    sql = f"""SELECT row_number() OVER () - 1 AS seq, trim({_c(0)}) AS item_id, {_c(1)} AS title,
                CASE WHEN tp.tag IS NULL THEN []::VARCHAR[] ELSE [tp.tag] END AS categories,
                MAP {{}}::MAP(VARCHAR, VARCHAR) AS attributes, {raw_text(4, chr(9))} AS raw
              FROM {asrc} LEFT JOIN ({top}) tp ON tp.aid = trim({_c(0)})"""
    return SideTable(sql, [*aparams, *tparams, *params2], label=artists.name)


def load_ciao(run: Run, source: Path, options: IngestOptions) -> Stage:
    """A folder with `movie-ratings.txt` and `trusts.txt` (or the ratings file, trusts looked for beside it)."""
    path = find_file(source, ["movie-ratings.txt"], "Ciao's movie-ratings.txt")
    layout = "6 comma-separated fields: userID, movieID, genreID, reviewID, rating, YYYY-MM-DD"
    src, params = run.delimited(path, 6, _COMMA, layout)
    run.assume("Ciao rating dates are days (midnight UTC); a movie's genre id is its category.")
    day = time_sql("c5", "iso")
    sql = events_select(
        src,
        user="c0",
        item="c1",
        time=day,
        event_type="'rating'",
        value=number("c4"),
        problem=first_problem(number_problem("c4", "rating"), "CASE WHEN c4 IS NULL OR c4 = '' THEN 'missing rating' END"),
        raw=raw_fields(6),
        item_categories="CASE WHEN c2 IS NOT NULL AND c2 <> '' THEN [c2] ELSE []::VARCHAR[] END",
    )
    trusts = sibling(path, ["trusts.txt"])
    if trusts is None:
        run.assume("No trusts.txt beside movie-ratings.txt: no social edges.")
    edges = positional_edges(run, trusts, _COMMA, 3, kind="trust", directed=True, weight=2) if trusts else None
    return Stage(sql, params, item_columns=True, raw_parts=6, edges=edges)
