"""Plotly figures for the pages. They only draw DataFrames that `core` computed.

Text from the logs (titles, ids) is escaped before it reaches Plotly, whose labels understand a few HTML tags:
a title like "<b>x</b>" is shown as those characters, never as markup.
"""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

__all__ = [
    "plain",
    "md_text",
    "events_over_time",
    "category_share",
    "activity_histogram",
    "top_items",
    "timeline",
    "figure",
    "PreparedFigure",
    "base_layout",
    "vline",
    "cohort_comparison",
]

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), legend_title_text="", hovermode="closest")


def base_layout(**kw) -> dict:
    """`_LAYOUT` as a fresh plain layout dict (for `figure`), updated with `kw`."""
    return dict(margin=dict(l=10, r=10, t=40, b=10), legend=dict(title=dict(text="")), hovermode="closest", **kw)


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
    prepared: bool = False,
) -> go.Figure:
    """The user's events: time × category, one marker symbol per event type, titles on hover (with `prepared`, as
    a `PreparedFigure`).

    `history` is `core.store.queries.user_history`'s frame; an event with several categories is drawn once per
    category, an event with none on a "(none)" row. Live marks: `new_steps` are ringed, `skipped_steps` (items the
    model has never seen) crossed, and `trained_until` (the model's training cut-off) is a dotted line. `axis` is
    "date" (the events' times) or "event" (their order: event 0 is the first).
    """
    xcol = "ts" if axis == "date" else "step"
    # A row per event and category by index arithmetic (`DataFrame.explode` was a third of the figure's time), the
    # hover text once per event (not per drawn marker), each category name escaped once.
    cats = [list(c) if len(c) else ["(none)"] for c in history["categories"]]
    names = {c: plain(c) for c in dict.fromkeys(c for cs in cats for c in cs)}
    rows = np.repeat(np.arange(len(history)), [len(cs) for cs in cats])
    hover = np.asarray(_hover(history), dtype=object)
    d = pd.DataFrame({"step": history["step"].to_numpy()[rows], "event_type": history["event_type"].to_numpy()[rows],
                      xcol: history[xcol].to_numpy()[rows], "hover": hover[rows],
                      "label": np.asarray([names[c] for cs in cats for c in cs], dtype=object)})
    data = []
    for n, (etype, g) in enumerate(d.groupby("event_type", sort=True)):
        data.append(_markers(g, xcol, plain(etype), dict(symbol=_SYMBOLS[n % len(_SYMBOLS)], size=10, opacity=0.8)))
    for steps, name, marker in [
        (new_steps, "new since live on", dict(symbol="circle-open", size=18, color="#f97316", line=dict(width=2))),
        (skipped_steps, "new to the model (skipped)", dict(symbol="x-thin-open", size=16, color="#dc2626", line=dict(width=2))),
    ]:
        if steps is not None and len(steps):
            data.append(_markers(d[d["step"].isin(set(int(s) for s in steps))], xcol, name, marker))
    layout = base_layout(title=dict(text="Event timeline"),
                         xaxis=dict(title=dict(text="" if axis == "date" else "event number")),
                         yaxis=dict(title=dict(text=""), categoryorder="category ascending"),
                         height=min(520, 140 + 28 * len(names)))
    if axis == "date" and trained_until is not None and len(history) and pd.Timestamp(trained_until) <= history["ts"].max():
        x = pd.Timestamp(trained_until).timestamp() * 1000
        layout["shapes"] = [vline(x, "x", "y domain", color="#6b7280", dash="dot")]
        layout["annotations"] = [dict(showarrow=False, text="model trained until", x=x, xanchor="right", xref="x", y=1,
                                      yanchor="top", yref="y domain")]
    return PreparedFigure.of(data, layout) if prepared else figure(data, layout)


def _markers(g: pd.DataFrame, xcol: str, name: str, marker: dict) -> dict:
    return dict(type="scatter", x=g[xcol].to_numpy(), y=g["label"].to_numpy(dtype=object), mode="markers", name=name,
                marker=marker, hovertext=g["hover"].tolist(), hoverinfo="text")


def _hover(g: pd.DataFrame) -> list[str]:
    return [
        f"{plain(t if isinstance(t, str) and t else i)}<br>{plain(ts)} · step {s}"
        for t, i, ts, s in zip(g["title"], g["item_id"], g["ts"], g["step"], strict=True)
    ]


def vline(x: float | int, xref: str, yref: str, *, color: str, dash: str, opacity: float | None = None) -> dict:
    """A vertical line across one subplot (what `Figure.add_vline` adds), as a layout shape."""
    out = dict(type="line", x0=x, x1=x, xref=xref, y0=0, y1=1, yref=yref, line=dict(color=color, dash=dash))
    if opacity is not None:
        out["opacity"] = opacity
    return out


@st.cache_resource(show_spinner=False, max_entries=4)  # one dict per default name, shared by every prepared figure
def _default_template(name: str) -> dict:
    return go.Figure().to_dict()["layout"].get("template", {})


def _template() -> dict:
    """The template a new Figure gets (Plotly's current default), as a plain dict, built once per default name and
    shared read-only by every prepared figure."""
    import plotly.io as pio

    return _default_template(str(pio.templates.default))


def figure(data: list[dict], layout: dict) -> go.Figure:
    """A Figure from plain trace and layout dicts, without Plotly's per-property validation.

    Validation was most of building the User explorer's figures on every user switch (ML-100k, cProfile of
    `bench/switch_cpu.py`: the trajectory chart 145 -> 10 ms, the timeline 67 -> 18 ms; docs/serving.md), and
    Streamlit does not validate a Figure again. The dicts are checked in the tests instead: `tests/dashboard/test_panels.py` builds each such figure validated.
    """
    return go.Figure(dict(data=data, layout=layout), _validate=False)


class PreparedFigure(go.Figure):
    """A figure whose plain dict (`Figure.to_dict`) is made once, for a figure drawn again and again.

    `st.plotly_chart` calls `to_dict()` on every run: a deep copy of every trace plus the base64 encoding of every
    array (the User explorer's three figures: ~20 ms of a revisited user's ~60 ms run on ML-100k, cProfile,
    docs/serving.md). A figure kept in a process-wide cache (`dashboard.components.explorer_views`) is built once
    and its dict handed out read-only: nothing may change it afterwards (Streamlit only serialises the dict).
    Only `to_dict()` describes the figure: `Figure.__init__` is not run (rebuilding the traces from the dict, or
    even an empty Figure with its default template, cost more than the `to_dict` it saves), so hand it to
    `st.plotly_chart` (which takes any `BaseFigure` by its `to_dict()`) and use it for nothing else.
    """

    def __init__(self, fig: go.Figure):  # no super().__init__(): see the class docstring
        self._spec = fig.to_dict()

    @classmethod
    def of(cls, data: list[dict], layout: dict) -> PreparedFigure:
        """What `PreparedFigure(figure(data, layout))` is, without building the Figure: the dict `to_dict` gives
        (the default template added, numeric arrays base64-encoded) made from the plain dicts themselves. The
        Figure's construction and deep copy were ~60 % of drawing the explorer's three figures for a new user
        (ML-100k: trajectory 3.7 -> 1.5 ms, gate 2.2 -> 0.6, timeline's figure 4.2 -> 1.4 ms of CPU). `data` and
        `layout` are taken over (changed in place), so pass fresh dicts."""
        from _plotly_utils.utils import convert_to_base64

        out = cls.__new__(cls)
        out._spec = {"data": data, "layout": {**layout, "template": _template()}}
        convert_to_base64(out._spec)
        return out

    def __repr__(self) -> str:
        return f"PreparedFigure({len(self._spec.get('data', []))} traces)"

    def to_dict(self) -> dict:
        return self._spec


def cohort_comparison(df: pd.DataFrame, category: str) -> go.Figure:
    """One category's share per period, one line per cohort (columns period, category, share, cohort)."""
    d = df[df["category"] == category]
    fig = px.line(d, x="period", y="share", color="cohort", markers=True, title=f"Share of {plain(category)}")
    # one decimal: two cohorts' shares are often within a percent of each other (whole percents repeat ticks)
    return fig.update_layout(**_LAYOUT, xaxis_title="", yaxis_title="share", yaxis_tickformat=".1%")
