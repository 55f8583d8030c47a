"""Plotly figures for the pages. They only draw DataFrames that `core` computed.

Text from the logs (titles, ids) is escaped before it reaches Plotly, whose labels understand a few HTML tags:
a title like "<b>x</b>" is shown as those characters, never as markup.
"""

from __future__ import annotations

import html
import re

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

__all__ = [
    "plain",
    "md_text",
    "events_over_time",
    "category_share",
    "activity_histogram",
    "top_items",
    "timeline",
    "cohort_comparison",
]

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), legend_title_text="", hovermode="closest")
_SYMBOLS = ["circle", "diamond", "square", "x", "triangle-up", "star", "cross", "triangle-down", "hexagon"]


def plain(text: object) -> str:
    """Log text made safe for Plotly labels: shown as the characters it contains."""
    return html.escape("" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text))


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")
# Where Streamlit's Markdown turns bare text into a link even when every Markdown character is escaped (checked in
# Chromium): "scheme://", "www." and "name@host". A zero-width space there breaks the link and shows the same text.
_AUTOLINK = re.compile(r"(?=://)|(?<=www)(?=\.)|(?=@[^\s@]+\.[^\s@])", re.IGNORECASE)  # "@" of an address only


def md_text(text: object) -> str:
    """Log text for a Markdown element (captions, labels, messages), shown literally: every Markdown character is
    escaped, so `[x](javascript:…)` or `**x**` in a title or id is just those characters, and a bare address
    (`http://…`, `www.…`, `a@b.c`) stays text instead of becoming a link."""
    return _MD_SPECIAL.sub(r"\\\1", _AUTOLINK.sub("\u200b", str(text)))


def events_over_time(df: pd.DataFrame) -> go.Figure:
    """Stacked bars of events per period and event type (columns period, event_type, events)."""
    fig = px.bar(df, x="period", y="events", color="event_type", title="Events over time")
    return fig.update_layout(**_LAYOUT, xaxis_title="", yaxis_title="events")


def category_share(df: pd.DataFrame, title: str = "Category share over time") -> go.Figure:
    """Stacked area of each category's share per period (columns period, category, share)."""
    d = df.assign(category=df["category"].map(plain))
    fig = px.area(d, x="period", y="share", color="category", title=title)
    return fig.update_layout(**_LAYOUT, xaxis_title="", yaxis_title="share", yaxis_tickformat=".0%")


def activity_histogram(df: pd.DataFrame) -> go.Figure:
    """Histogram of events per user (columns user_id, events)."""
    fig = px.histogram(df, x="events", nbins=min(50, max(5, len(df) // 5)), title="Events per user")
    return fig.update_layout(**_LAYOUT, xaxis_title="events per user", yaxis_title="users")


def top_items(df: pd.DataFrame) -> go.Figure:
    """Horizontal bars of the most interacted-with items (columns item_id, title, events)."""
    d = df.assign(label=[plain(t if isinstance(t, str) and t else i) for t, i in zip(df["title"], df["item_id"], strict=True)])
    fig = px.bar(d.iloc[::-1], x="events", y="label", orientation="h", title="Top items")
    return fig.update_layout(**_LAYOUT, yaxis_title="", xaxis_title="events")


def timeline(
    history: pd.DataFrame,
    new_steps=None,
    skipped_steps=None,
    trained_until=None,
    axis: str = "date",
) -> go.Figure:
    """The user's events: time × category, one marker symbol per event type, titles on hover.

    `history` is `core.store.queries.user_history`'s frame; an event with several categories is drawn once per
    category, an event with none on a "(none)" row. Live marks: `new_steps` are ringed, `skipped_steps` (items the
    model has never seen) crossed, and `trained_until` (the model's training cut-off) is a dotted line. `axis` is
    "date" (the events' times) or "event" (their order: event 0 is the first).
    """
    xcol = "ts" if axis == "date" else "step"
    d = history.assign(category=history["categories"].map(lambda c: list(c) if len(c) else ["(none)"]))
    d = d.explode("category")
    fig = go.Figure()
    for n, (etype, g) in enumerate(d.groupby("event_type", sort=True)):
        fig.add_trace(
            go.Scatter(
                x=g[xcol],
                y=g["category"].map(plain),
                mode="markers",
                name=plain(etype),
                marker=dict(symbol=_SYMBOLS[n % len(_SYMBOLS)], size=10, opacity=0.8),
                hovertext=_hover(g),
                hoverinfo="text",
            )
        )
    for steps, name, marker in [
        (new_steps, "new since live on", dict(symbol="circle-open", size=18, color="#f97316", line=dict(width=2))),
        (skipped_steps, "new to the model (skipped)", dict(symbol="x-thin-open", size=16, color="#dc2626", line=dict(width=2))),
    ]:
        if steps is not None and len(steps):
            g = d[d["step"].isin(set(int(s) for s in steps))]
            fig.add_trace(go.Scatter(x=g[xcol], y=g["category"].map(plain), mode="markers", name=name, marker=marker,
                                     hovertext=_hover(g), hoverinfo="text"))
    if axis == "date" and trained_until is not None and len(history) and pd.Timestamp(trained_until) <= history["ts"].max():
        fig.add_vline(x=pd.Timestamp(trained_until).timestamp() * 1000, line_dash="dot", line_color="#6b7280",
                      annotation_text="model trained until", annotation_position="top left")
    n_rows = d["category"].nunique()
    fig.update_layout(**_LAYOUT, title="Event timeline", xaxis_title="" if axis == "date" else "event number",
                      yaxis_title="", height=min(520, 140 + 28 * n_rows))
    fig.update_yaxes(categoryorder="category ascending")
    return fig


def _hover(g: pd.DataFrame) -> list[str]:
    return [
        f"{plain(t if isinstance(t, str) and t else i)}<br>{plain(ts)} · step {s}"
        for t, i, ts, s in zip(g["title"], g["item_id"], g["ts"], g["step"], strict=True)
    ]


def cohort_comparison(df: pd.DataFrame, category: str) -> go.Figure:
    """One category's share per period, one line per cohort (columns period, category, share, cohort)."""
    d = df[df["category"] == category]
    fig = px.line(d, x="period", y="share", color="cohort", markers=True, title=f"Share of {plain(category)}")
    # one decimal: two cohorts' shares are often within a percent of each other (whole percents repeat ticks)
    return fig.update_layout(**_LAYOUT, xaxis_title="", yaxis_title="share", yaxis_tickformat=".1%")
