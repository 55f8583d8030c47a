"""User groups for fairness reports: raw attributes, age bands and groups derived from behaviour.

Every function here is pure: DataFrames in, DataFrames out. Group labels are strings so that fairlearn,
JSON and the dashboard treat them alike; users without a value get the label ``"unknown"``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.errors import UserInputError

__all__ = [
    "AGE_BANDS",
    "UNKNOWN",
    "DERIVED_ATTRIBUTES",
    "MAX_DEFAULT_GROUPS",
    "age_band",
    "label",
    "quartile_labels",
    "derive_user_groups",
    "groups_from_spans",
    "group_members",
    "user_group_table",
]

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
# (lower bound inclusive, label); the MovieLens-1M age codes 1, 18, 25, 35, 45, 50, 56 fall in the right bands.
AGE_BANDS: tuple[tuple[int, str], ...] = (
    (0, "under 18"),
    (18, "18-24"),
    (25, "25-34"),
    (35, "35-44"),
    (45, "45-49"),
    (50, "50-55"),
    (56, "56+"),
)
DERIVED_ATTRIBUTES = ("activity_quartile", "tenure_quartile", "new_vs_returning")
MAX_DEFAULT_GROUPS = 50  # raw attributes with more groups (zip codes, ids) are only used when asked for


def age_band(age: object) -> str:
    """The band of a raw age (a number or numeric text); ``"unknown"`` when it is not a number ≥ 0."""
    try:
        value = float(str(age).strip())
    except (TypeError, ValueError):
        return UNKNOWN
    if not np.isfinite(value) or value < 0:
        return UNKNOWN
    band = AGE_BANDS[0][1]
    for lower, name in AGE_BANDS:
        if value >= lower:
            band = name
    return band


def label(value: object) -> str:
    """A group label: the value as text, ``"unknown"`` for None, NaN, NA or empty text."""
    if value is None or (not isinstance(value, (list, tuple, dict)) and pd.isna(value)) or str(value) == "":
        return UNKNOWN
    return str(value)


def quartile_labels(values: pd.Series, unit: str) -> pd.Series:
    """Quartiles of `values` as labels ``"Q1 (lo-hi unit)"`` (``"Q1 (v unit)"`` when they are all equal).

    Cut points are the 25/50/75 % quantiles of the values (equal values always share a quartile, so
    quartiles can be unequal in size, and fewer than four when many values tie). The label carries the
    observed range inside the quartile so an analyst can read it without the cut points.
    """
    out = pd.Series(UNKNOWN, index=values.index, dtype=object)
    known = values.dropna()
    if known.empty:
        return out
    if known.nunique() == 1:  # qcut has no bins to cut: everyone shares the first quartile
        codes = pd.Series(0, index=known.index)
    else:
        codes = pd.qcut(known, 4, labels=False, duplicates="drop")
    for code in sorted(codes.unique()):
        members = known[codes == code]
        out.loc[members.index] = f"Q{int(code) + 1} ({_range(float(members.min()), float(members.max()), unit)})"
    return out


def _range(lo: float, hi: float, unit: str) -> str:
    """"3-8 events", "2 events", "1 event", "0.5-6 hours" (days under one are shown in hours): never a range whose
    two ends print the same, such as "0.0-0.0 days"."""
    if unit == "days" and hi < 1:
        lo, hi, unit = lo * 24, hi * 24, "hours"
    for digits in (0, 1, 2, 3):
        a, b = _fmt(lo, digits), _fmt(hi, digits)
        if a != b or lo == hi:
            break
    if a == b:
        return f"{a} {unit[:-1] if a == '1' and unit.endswith('s') else unit}"
    return f"{a}-{b} {unit}"


def _fmt(x: float, digits: int = 1) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.{max(digits, 1)}f}"


def derive_user_groups(
    histories: pd.DataFrame,
    as_of: pd.Series | pd.Timestamp | None = None,
    new_days: float = 30.0,
) -> pd.DataFrame:
    """Groups derived from each user's history.

    Parameters
    ----------
    histories : DataFrame
        Columns ``user_id``, ``item_id`` and ``ts`` (naive UTC timestamps): the events the
        recommendations were made from.
    as_of : Series (user_id → Timestamp), Timestamp or None
        The moment of the recommendation; default: each user's last history event.
    new_days : float
        A user whose first event is less than this many days before `as_of` is ``"new"``, else
        ``"returning"``.

    Returns
    -------
    DataFrame
        One row per user: ``user_id``, ``activity_quartile`` (quartile of the number of history events),
        ``tenure_quartile`` (quartile of days from the first event to `as_of`), ``new_vs_returning``.
    """
    _require(histories, ("user_id", "item_id", "ts"), "histories")
    per = histories.groupby("user_id", sort=True).agg(events=("item_id", "size"), first=("ts", "min"), last=("ts", "max"))
    return groups_from_spans(per, as_of, new_days)


def groups_from_spans(
    per: pd.DataFrame,
    as_of: pd.Series | pd.Timestamp | None = None,
    new_days: float = 30.0,
) -> pd.DataFrame:
    """`derive_user_groups` from each user's event count and first and last event, without the events.

    Parameters
    ----------
    per : DataFrame indexed by user_id with columns ``events`` (count), ``first`` and ``last`` (naive UTC
        timestamps): one row per user (SQL can aggregate a large log to this).
    as_of, new_days : as in `derive_user_groups`.

    Returns
    -------
    DataFrame
        As `derive_user_groups`: ``user_id``, ``activity_quartile``, ``tenure_quartile``, ``new_vs_returning``.
    """
    if as_of is None:
        ref = per["last"]
    elif isinstance(as_of, pd.Series):
        ref = as_of.reindex(per.index).fillna(per["last"])
    else:
        ref = pd.Series(pd.Timestamp(as_of), index=per.index)
    tenure = (pd.to_datetime(ref) - per["first"]).dt.total_seconds() / 86400.0
    out = pd.DataFrame(index=per.index)
    out["activity_quartile"] = quartile_labels(per["events"].astype(float), "events")
    out["tenure_quartile"] = quartile_labels(tenure, "days")
    out["new_vs_returning"] = np.where(tenure < new_days, "new", "returning")
    return out.reset_index()


def group_members(groups: pd.DataFrame, filters: Sequence[tuple[str, str]]) -> list[str]:
    """The user ids whose group matches every (attribute, group label) pair, sorted.

    Parameters
    ----------
    groups : output of `derive_user_groups` / `groups_from_spans` (one row per user).
    filters : pairs such as ``("activity_quartile", "Q1 (1-20 events)")``; an attribute not in `groups` stops
        with one sentence.
    """
    _require(groups, ("user_id", *(a for a, _ in filters)), "user groups")
    keep = pd.Series(True, index=groups.index)
    for attribute, group in filters:
        keep &= groups[attribute].astype(str) == str(group)
    return sorted(groups.loc[keep, "user_id"].astype(str))


def user_group_table(
    users: pd.Index | list[str],
    attributes: pd.DataFrame | None,
    derived: pd.DataFrame | None,
    by: list[str] | None = None,
) -> pd.DataFrame:
    """The group of every user under every requested attribute, as strings.

    Parameters
    ----------
    users : the user ids to describe (the report's users), in order.
    attributes : DataFrame with ``user_id`` and one column per raw attribute (e.g. gender, age, occupation).
        A column named ``age`` holding numbers is turned into age bands (column ``age_band``).
    derived : output of `derive_user_groups`, or None.
    by : attribute names to keep; default the raw attributes with at most `MAX_DEFAULT_GROUPS` groups (with
        ``age_band`` in place of ``age``; a zip code is left out) and the derived ones.

    Returns
    -------
    DataFrame indexed by user_id (in the order of `users`), one string column per attribute.
    """
    index = pd.Index([str(u) for u in users], name="user_id")
    table = pd.DataFrame(index=index)
    if attributes is not None and len(attributes.columns) > 1:
        _require(attributes, ("user_id",), "user attributes")
        attrs = attributes.assign(user_id=attributes["user_id"].astype(str)).drop_duplicates("user_id")
        attrs = attrs.set_index("user_id").reindex(index)
        for col in attrs.columns:
            if col == "age":
                table["age_band"] = attrs[col].map(age_band)
            table[col] = attrs[col].map(label)
    if derived is not None:
        der = derived.assign(user_id=derived["user_id"].astype(str)).set_index("user_id").reindex(index)
        for col in der.columns:
            table[col] = der[col].fillna(UNKNOWN).astype(str)
    if by is None:
        raw = [c for c in table.columns if derived is None or c not in derived.columns]
        wide = [c for c in raw if c == "age" or table[c].nunique() > MAX_DEFAULT_GROUPS]
        if any(c != "age" for c in wide):
            log.info("attributes with more than %d groups left out by default: %s", MAX_DEFAULT_GROUPS, wide)
        return table.drop(columns=wide)
    missing = [b for b in by if b not in table.columns]
    if missing:
        known = ", ".join(c for c in table.columns) or "none"
        raise UserInputError(f"Unknown user attribute {missing[0]!r}; known attributes: {known}.")
    return table[list(dict.fromkeys(by))]


def _require(df: pd.DataFrame, cols: tuple[str, ...], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise UserInputError(f"The {what} table lacks the column(s) {', '.join(missing)}.")
