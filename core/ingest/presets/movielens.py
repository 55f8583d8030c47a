"""MovieLens 100k (the original `u.*` files and RecBole's atomic `.inter/.item/.user` files) and MovieLens 1M.

Every rating is an event of type `rating` with the stars as `value`. Items get their genres as categories and
their title (the `u.item` and `movies.dat` files are Latin-1). Users get age, gender, occupation and zip
code as attributes; in 1M the age is a code, kept as `age` with its band as `age_band`, and the
occupation code is replaced by its name (`occupation_code` keeps the code).
"""

from __future__ import annotations

from pathlib import Path

from core.ingest.presets.common import (
    IngestOptions,
    attributes_map,
    events_select,
    find_file,
    first_problem,
    number,
    number_problem,
    raw_fields,
    raw_text,
    sibling,
)
from core.ingest.readers import Dialect, header_names, require_columns
from core.ingest.stage import Run, SideTable, Stage
from core.ingest.times import time_sql

__all__ = ["load_movielens_100k", "load_movielens_1m", "GENRES_100K", "rating_problem"]

GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
AGE_BANDS_1M = {"1": "Under 18", "18": "18-24", "25": "25-34", "35": "35-44", "45": "45-49", "50": "50-55", "56": "56+"}
OCCUPATIONS_1M = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
)  # fmt: skip

_TAB = Dialect(delim="\t", header=False, quote="", escape="")
_PIPE_LATIN1 = Dialect(delim="|", header=False, quote="", escape="", encoding="latin-1")
_DCOLON = Dialect(delim="::", header=False, quote="", escape="")
_DCOLON_LATIN1 = Dialect(delim="::", header=False, quote="", escape="", encoding="latin-1")


def rating_problem(x: str) -> str:
    """Reason for a MovieLens rating that is not a number or outside 0.5–5 (negative ones: the pipeline's)."""
    v = number(x)
    return first_problem(
        number_problem(x, "rating"),
        f"CASE WHEN {x} IS NULL OR {x} = '' THEN 'missing rating' END",
        f"CASE WHEN {v} >= 0 AND ({v} < 0.5 OR {v} > 5) THEN 'rating outside 0.5-5' END",
    )


def _ratings(run: Run, path: Path, dialect: Dialect, layout: str, cols: dict[str, int], n: int) -> tuple[str, list]:
    """Stage SQL for a ratings file whose user, item, rating and time columns are at `cols` positions."""
    src, params = run.delimited(path, n, dialect, layout)
    u, i, r, t = (f"c{cols[k]}" for k in ("user", "item", "rating", "time"))
    sql = events_select(
        src,
        user=u,
        item=i,
        time=time_sql(t, "s"),
        event_type="'rating'",
        value=number(r),
        problem=rating_problem(r),
        raw=raw_fields(n),
    )
    return sql, params


def load_movielens_100k(run: Run, source: Path, options: IngestOptions) -> Stage:
    """The `ml-100k` folder (u.data, u.item, u.user) or RecBole's atomic files (ml-100k.inter, .item, .user)."""
    path = find_file(source, ["u.data", "*.inter"], "MovieLens-100k's u.data or RecBole's ml-100k.inter")
    if path.suffix == ".inter":
        return _load_atomic(run, path)
    sql, params = _ratings(
        run, path, _TAB, "4 tab-separated fields: user, item, rating, unix seconds",
        {"user": 0, "item": 1, "rating": 2, "time": 3}, 4,
    )  # fmt: skip
    users, items = _users_100k(run, path), _items_100k(run, path)
    return Stage(sql, params, users=users, items=items, raw_parts=4, raw_delim="\t")


def _items_100k(run: Run, ratings: Path) -> SideTable | None:
    path = sibling(ratings, ["u.item"])
    if path is None:
        run.assume("No u.item beside u.data: items have no titles or genres.")
        return None
    src, params = run.delimited(path, 24, _PIPE_LATIN1, "24 |-separated fields: id, title, dates, URL, 19 genre flags", False)
    flags = ", ".join(f"CASE WHEN trim(c{5 + k}) = '1' THEN ?::VARCHAR END" for k in range(len(GENRES_100K)))
    attrs, keys = attributes_map([("release_date", "c2"), ("video_release_date", "c3"), ("imdb_url", "c4")])
    sql = f"""SELECT row_number() OVER () - 1 AS seq, trim(c0) AS item_id, c1 AS title,
                list_filter([{flags}], lambda g: g IS NOT NULL) AS categories, {attrs} AS attributes,
                {raw_text(24, '|')} AS raw
            FROM {src}"""
    return SideTable(sql, [*GENRES_100K, *keys, *params], label="u.item")


def _users_100k(run: Run, ratings: Path) -> SideTable | None:
    path = sibling(ratings, ["u.user"])
    if path is None:
        run.assume("No u.user beside u.data: users have no attributes.")
        return None
    src, params = run.delimited(path, 5, _PIPE_LATIN1, "5 |-separated fields: id, age, gender, occupation, zip", False)
    attrs, keys = attributes_map([("age", "c1"), ("gender", "c2"), ("occupation", "c3"), ("zip", "c4")])
    sql = f"""SELECT row_number() OVER () - 1 AS seq, trim(c0) AS user_id, {attrs} AS attributes,
                {raw_text(5, '|')} AS raw FROM {src}"""
    return SideTable(sql, [*keys, *params], label="u.user")


_ATOMIC = Dialect(delim="\t", header=True, quote="", escape="")


def _atomic_header(path: Path) -> list[str]:
    """RecBole headers are `name:type`; the names without their types."""
    return [h.split(":", 1)[0] for h in header_names(path, _ATOMIC)]


def _load_atomic(run: Run, inter: Path) -> Stage:
    names = _atomic_header(inter)
    cols = require_columns(names, {"user": "user_id", "item": "item_id", "time": "timestamp"}, inter.name)
    cols["rating"] = names.index("rating") if "rating" in names else None
    layout = f"{len(names)} tab-separated fields: {', '.join(names)}"
    if cols["rating"] is None:
        run.assume(f"{inter.name} has no rating column: every event is a rating without a value.")
        src, params = run.delimited(inter, len(names), _ATOMIC, layout)
        sql = events_select(
            src, user=f"c{cols['user']}", item=f"c{cols['item']}", time=time_sql(f"c{cols['time']}", "s"),
            event_type="'rating'", raw=raw_fields(len(names)),
        )  # fmt: skip
    else:
        sql, params = _ratings(run, inter, _ATOMIC, layout, cols, len(names))
    stem = inter.with_suffix("")
    users, items = _atomic_users(run, stem), _atomic_items(run, stem)
    return Stage(sql, params, users=users, items=items, raw_parts=len(names), raw_delim="\t")


def _atomic_items(run: Run, stem: Path) -> SideTable | None:
    path = stem.with_suffix(".item")
    if not path.is_file():
        run.assume(f"No {path.name} beside the .inter file: items have no titles or genres.")
        return None
    names = _atomic_header(path)
    pos = require_columns(names, {"item": "item_id"}, path.name)
    src, params = run.delimited(path, len(names), _ATOMIC, f"{len(names)} tab-separated fields", False)
    title = f"c{names.index('movie_title')}" if "movie_title" in names else "NULL"
    genres = (
        f"list_filter(string_split(trim(c{names.index('class')}), ' '), lambda g: g <> '')"
        if "class" in names
        else "[]::VARCHAR[]"
    )
    others = [(n, f"c{k}") for k, n in enumerate(names) if n not in ("item_id", "movie_title", "class")]
    attrs, keys = attributes_map(others)
    sql = f"""SELECT row_number() OVER () - 1 AS seq, trim(c{pos['item']}) AS item_id, {title} AS title,
                {genres} AS categories, {attrs} AS attributes, {raw_text(len(names), chr(9))} AS raw FROM {src}"""
    return SideTable(sql, [*keys, *params], label=path.name)


def _atomic_users(run: Run, stem: Path) -> SideTable | None:
    path = stem.with_suffix(".user")
    if not path.is_file():
        run.assume(f"No {path.name} beside the .inter file: users have no attributes.")
        return None
    names = _atomic_header(path)
    pos = require_columns(names, {"user": "user_id"}, path.name)
    src, params = run.delimited(path, len(names), _ATOMIC, f"{len(names)} tab-separated fields", False)
    rename = {"zip_code": "zip"}
    others = [(rename.get(n, n), f"c{k}") for k, n in enumerate(names) if n != "user_id"]
    attrs, keys = attributes_map(others)
    sql = f"""SELECT row_number() OVER () - 1 AS seq, trim(c{pos['user']}) AS user_id, {attrs} AS attributes,
                {raw_text(len(names), chr(9))} AS raw FROM {src}"""
    return SideTable(sql, [*keys, *params], label=path.name)


def load_movielens_1m(run: Run, source: Path, options: IngestOptions) -> Stage:
    """The `ml-1m` folder (ratings.dat, movies.dat, users.dat; `::`-separated)."""
    path = find_file(source, ["ratings.dat"], "MovieLens-1M's ratings.dat")
    sql, params = _ratings(
        run, path, _DCOLON, "4 ::-separated fields: UserID::MovieID::Rating::Timestamp",
        {"user": 0, "item": 1, "rating": 2, "time": 3}, 4,
    )  # fmt: skip
    users, items = _users_1m(run, path), _movies_1m(run, path)
    return Stage(sql, params, users=users, items=items, raw_parts=4, raw_delim="::")


def _movies_1m(run: Run, ratings: Path) -> SideTable | None:
    path = sibling(ratings, ["movies.dat"])
    if path is None:
        run.assume("No movies.dat beside ratings.dat: items have no titles or genres.")
        return None
    src, params = run.delimited(path, 3, _DCOLON_LATIN1, "3 ::-separated fields: MovieID::Title::Genres", False)
    sql = f"""SELECT row_number() OVER () - 1 AS seq, trim(c0) AS item_id, c1 AS title,
                list_filter(string_split(coalesce(trim(c2), ''), '|'), lambda g: g <> '' AND g <> '(no genres listed)')
                    AS categories, MAP {{}}::MAP(VARCHAR, VARCHAR) AS attributes, {raw_text(3, '::')} AS raw
            FROM {src}"""
    return SideTable(sql, params, label="movies.dat")


def _users_1m(run: Run, ratings: Path) -> SideTable | None:
    path = sibling(ratings, ["users.dat"])
    if path is None:
        run.assume("No users.dat beside ratings.dat: users have no attributes.")
        return None
    src, params = run.delimited(path, 5, _DCOLON_LATIN1, "5 ::-separated fields: UserID::Gender::Age::Occupation::Zip", False)
    attrs, keys = attributes_map(
        [
            ("gender", "c1"),
            ("age", "c2"),
            ("age_band", "(?::MAP(VARCHAR, VARCHAR))[trim(c2)]"),
            ("occupation", "list_extract(?::VARCHAR[], TRY_CAST(trim(c3) AS INTEGER) + 1)"),
            ("occupation_code", "c3"),
            ("zip", "c4"),
        ]
    )
    sql = f"""SELECT row_number() OVER () - 1 AS seq, trim(c0) AS user_id, {attrs} AS attributes,
                {raw_text(5, '::')} AS raw FROM {src}"""
    # parameters in text order: each entry's key, with the band map and occupation list inside theirs
    ordered = [keys[0], keys[1], keys[2], AGE_BANDS_1M, keys[3], list(OCCUPATIONS_1M), keys[4], keys[5]]
    return SideTable(sql, [*ordered, *params], label="users.dat")
