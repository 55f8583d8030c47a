"""Demo mode (`interestlens serve --demo-mode`, or `INTERESTLENS_DEMO=1`): the app shows every user as a pseudonym
and hides user attributes everywhere.

A pseudonym (`core.privacy.Pseudonymizer`, a keyed hash) stands for the user on every page, in every link and in
the URL (`?user=p-…`), so a view can still be shared. It works where the app reads data (`dashboard.data`): the
named queries and model calls are wrapped, so a user id that comes in (the pseudonym a page holds) is resolved to
the stored id inside the call, and every user id that goes out (tables, results, error sentences) is a pseudonym.
A stored id typed into the app matches nobody. User attributes (the explorer's caption, the finder's filters and
column, cohorts, grouping by attribute in the fairness report) are empty, and rejected rows' raw text is hidden.
"""

from __future__ import annotations

import copy
import dataclasses
import secrets
from collections.abc import Callable
from typing import Any

import pandas as pd

from core.errors import InterestLensError
from core.privacy import Pseudonymizer, demo_from_env
from core.store.queries import UserFilter

__all__ = ["active", "wrap_query", "wrap_call", "pseudonymise", "scrub", "NOBODY", "HIDDEN_RAW"]

NOBODY = "\x00demo:" + secrets.token_hex(16)  # what an unresolvable pseudonym becomes: an id no stored user has
HIDDEN_RAW = "(hidden in demo mode)"
_USER_ARG = {"user_history", "user_exists", "user_attributes"}  # queries whose first argument is a user id
_EMPTY = {"user_attributes": dict, "user_attribute_keys": list, "attribute_values": list}
_NO_USER_ARG = {"cohort_trajectories", "search_users", "fairness"}  # model/path calls not keyed by a user


def active() -> Pseudonymizer | None:
    """The pseudonymizer when demo mode is on (read at every call, so a server's setting holds for all pages)."""
    return demo_from_env()


def pseudonymise(values: pd.Series, p: Pseudonymizer) -> pd.Series:
    """User ids → pseudonyms (same index)."""
    return pd.Series(p.pseudonyms(values.astype(str)), index=values.index, dtype=object)


def scrub(result: Any, p: Pseudonymizer) -> Any:
    """A copy of `result` whose user ids are pseudonyms: a DataFrame's `user_id` column, a dataclass's `user_id`
    field (also inside lists and nested dataclasses). Anything else is returned as is."""
    if isinstance(result, pd.DataFrame):
        return result.assign(user_id=pseudonymise(result["user_id"], p)) if "user_id" in result.columns else result
    if isinstance(result, (list, tuple)) and result and any(dataclasses.is_dataclass(x) for x in result):
        return type(result)(scrub(x, p) for x in result)
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        out = copy.copy(result)
        for f in dataclasses.fields(result):
            value = getattr(result, f.name)
            if f.name == "user_id" and isinstance(value, str):
                object.__setattr__(out, f.name, p.pseudonym(value))
            elif isinstance(value, pd.DataFrame) or dataclasses.is_dataclass(value) or isinstance(value, list):
                object.__setattr__(out, f.name, scrub(value, p))
        return out
    return result


def _resolve(con, p: Pseudonymizer, user: object) -> str:
    return p.resolve(con, str(user)) or NOBODY


def _reraise(exc: InterestLensError, real: str, shown: str) -> InterestLensError:
    """The same error with the stored id replaced by what the page shows (never the stored id in demo mode)."""
    text = str(exc).replace(repr(real), repr(shown)).replace(repr(NOBODY), repr(shown))
    return type(exc)(text)


def _list_users(con, p: Pseudonymizer, fn: Callable, flt: UserFilter | None = None, order: str = "events_desc",
                limit: int = 50, offset: int = 0) -> pd.DataFrame:
    """`list_users` where the search matches pseudonyms and attribute filters do not apply (attributes are hidden)."""
    flt = flt or UserFilter()
    plain = UserFilter(min_events=flt.min_events, max_events=flt.max_events)
    df = fn(con, plain, order, 1 << 62, 0)
    df = df.assign(user_id=pseudonymise(df["user_id"], p), attributes=[{} for _ in range(len(df))])
    if flt.search:
        df = df[df["user_id"].str.contains(flt.search.lower(), regex=False)]
    return df.iloc[int(offset) : int(offset) + int(limit)].reset_index(drop=True)


def wrap_query(name: str, fn: Callable) -> Callable:
    """`fn(con, *args)` for the named query, pseudonymised when demo mode is on (unchanged otherwise)."""

    def query(con, *args, **kwargs):
        p = active()
        if p is None:
            return fn(con, *args, **kwargs)
        if name in _EMPTY:
            return _EMPTY[name]()
        if name == "list_users":
            return _list_users(con, p, fn, *args, **kwargs)
        if name in _USER_ARG and args:
            shown, args = str(args[0]), (_resolve(con, p, args[0]), *args[1:])
            try:
                return scrub(fn(con, *args, **kwargs), p)
            except InterestLensError as exc:
                raise _reraise(exc, args[0], shown) from None
        if kwargs.get("user_id") is not None:
            kwargs["user_id"] = _resolve(con, p, kwargs["user_id"])
        result = scrub(fn(con, *args, **kwargs), p)
        if name == "run_rejects" and isinstance(result, pd.DataFrame) and "raw" in result.columns:
            result = result.assign(raw=HIDDEN_RAW)
        return result

    return query


def wrap_call(name: str, fn: Callable) -> Callable:
    """A model call `fn(loaded, con, user_id, *rest)` (or a path call) pseudonymised when demo mode is on."""

    def call(*args):
        p = active()
        if p is None:
            return fn(*args)
        if name == "fairness":  # (db, model_dir, k, by, …): group by derived attributes only
            from core.fairness import DERIVED_ATTRIBUTES

            args = (*args[:3], tuple(b for b in args[3] if b in DERIVED_ATTRIBUTES), *args[4:])
            return fn(*args)
        if name in _NO_USER_ARG or len(args) < 3 or not isinstance(args[2], str):
            return scrub(fn(*args), p)
        loaded, con, shown = args[0], args[1], args[2]
        real = _resolve(con, p, shown)
        try:
            return scrub(fn(loaded, con, real, *args[3:]), p)
        except InterestLensError as exc:
            raise _reraise(exc, real, shown) from None

    return call
