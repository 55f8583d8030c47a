"""Demo mode (`interestlens serve --demo-mode`, or `INTERESTLENS_DEMO=1`): the app shows every user as a pseudonym
and hides user attributes everywhere.

A pseudonym (`core.privacy.Pseudonymizer`, a keyed hash) stands for the user on every page, in every link and in
the URL (`?user=p-…`), so a view can still be shared. It works where the app reads data (`dashboard.cache`): a
user id that comes in (the pseudonym a page holds) is resolved to the stored id inside the cached call
(`stored_user`), and every user id that goes out (tables, results, error sentences) is a pseudonym (`shown`).
A stored id typed into the app matches nobody. User attributes (the explorer's caption, the finder's filters and
column, cohorts, grouping by attribute in the fairness report) are empty, and rejected rows' raw text is hidden.
"""

from __future__ import annotations

import copy
import dataclasses
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import pandas as pd

from core.errors import InterestLensError
from core.privacy import Pseudonymizer, demo_from_env
from core.store.queries import UserFilter

__all__ = [
    "active", "stored_user", "stored_users", "named_as", "shown", "hides_attributes", "list_users", "hide_raw", "pseudonymise",
    "scrub", "NOBODY", "HIDDEN_RAW",
]

NOBODY = "\x00demo:" + secrets.token_hex(16)  # what an unresolvable pseudonym becomes: an id no stored user has
HIDDEN_RAW = "(hidden in demo mode)"
T = TypeVar("T")


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
    out = type(exc)(text)
    out.next_step, out.step_db = exc.next_step, exc.step_db  # what to do next survives the rewording
    return out


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


def stored_users(con, shown: Sequence[str]) -> list[str]:
    """The stored ids behind the ids a page shows (unchanged outside demo mode; an unknown pseudonym matches
    nobody)."""
    p = active()
    return [str(u) for u in shown] if p is None else [_resolve(con, p, u) for u in shown]


@contextmanager
def stored_user(con, shown: str) -> Iterator[str]:
    """The stored id behind the id a page shows; an error sentence inside says the shown id, never the stored one."""
    p = active()
    if p is None:
        yield str(shown)
        return
    real = _resolve(con, p, shown)
    with named_as(real, str(shown)):
        yield real


@contextmanager
def named_as(real: str, shown: str) -> Iterator[None]:
    """Error sentences raised inside say `shown`, never the stored id `real` (demo mode; nothing otherwise): for
    work done after `stored_user`'s connection is closed."""
    try:
        yield
    except InterestLensError as exc:
        if active() is None:
            raise
        raise _reraise(exc, real, str(shown)) from None


def shown(result: T) -> T:
    """`result` as a page may show it: user ids as pseudonyms in demo mode (unchanged otherwise)."""
    p = active()
    return result if p is None else scrub(result, p)


def hides_attributes() -> bool:
    """True in demo mode: user attributes are hidden everywhere."""
    return active() is not None


def list_users(con, flt: UserFilter | None, order: str, limit: int) -> pd.DataFrame:
    """`core.store.queries.list_users`; in demo mode the search matches pseudonyms and attribute filters do not
    apply (attributes are hidden)."""
    from core.store import queries

    p = active()
    if p is None:
        return queries.list_users(con, flt, order, limit)
    return _list_users(con, p, queries.list_users, flt, order, limit)


def hide_raw(rejects: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows as a page may show them: the raw text is hidden in demo mode."""
    if active() is None or "raw" not in rejects.columns:
        return rejects
    return rejects.assign(raw=HIDDEN_RAW)
