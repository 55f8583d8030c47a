"""A self-contained HTML report of one user for stakeholders: events, interest trajectory, recommendations and the
explanation of the top one. One file that opens offline: plotly.js and the figures are carried packed
(`report_assets`: LZMA, base-85 text, unpacked by a small decoder in the page), in the app's colours and without
clipped labels.

Every piece of log text (titles, ids, categories, attribute values) is escaped: tables with `escape=True`, chart
labels through `charts.plain`, headings with `html.escape`. A title such as `<script>` shows as those characters.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit  # noqa: F401  (registers Streamlit's Plotly theme as the default: the figures get the app's template)

from core.trajectory import grid_view
from dashboard.cache import plotly_js
from dashboard.components import charts, model_charts
from dashboard.components.report_assets import LOADER, figures_block, themed
from dashboard.components.trajectory_chart import trajectory_chart

__all__ = ["user_report"]

_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2rem auto;color:#1f2937}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #e5e7eb}
table{border-collapse:collapse;font-size:.85rem}td,th{border:1px solid #e5e7eb;padding:.25rem .5rem;text-align:left}
.note{color:#6b7280;font-size:.85rem}.il-chart{margin:1.5rem 0}
"""


def _table(df: pd.DataFrame) -> str:
    flat = df.copy()
    for col in flat.columns:
        if flat[col].map(lambda v: isinstance(v, (list, tuple))).any():
            flat[col] = flat[col].map(lambda v: ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v)
        elif flat[col].map(lambda v: isinstance(v, dict)).any():
            flat[col] = flat[col].map(lambda v: ", ".join(f"{k}={x}" for k, x in sorted(v.items())) if isinstance(v, dict) else v)
    return flat.to_html(index=False, escape=True, border=0, float_format=lambda x: f"{x:.4f}")


class _Figures:
    """The report's charts in order: each leaves a div in the page; their JSON goes into one packed block."""

    def __init__(self) -> None:
        self.drawn: list[tuple[str, dict[str, Any]]] = []

    def div(self, fig: go.Figure) -> str:
        fid = f"chart-{len(self.drawn)}"
        self.drawn.append((fid, themed(fig)))
        height = int(fig.layout.height or 450)  # the space the chart takes, kept while it loads
        return f"<div class='il-chart' id='{fid}' style='min-height:{height}px'></div>"


def user_report(
    user: str,
    history: pd.DataFrame,
    traj: Any | None,
    recs: pd.DataFrame | None,
    explanation: Any | None,
    model_name: str = "",
) -> str:
    """The report as one HTML document (str). Any of traj / recs / explanation may be None (left out)."""
    figs = _Figures()
    e = html.escape
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>InterestLens — user {e(str(user))}</title><style>{_STYLE}</style></head><body>",
        f"<h1>InterestLens report — user {e(str(user))}</h1>",
        f"<p class='note'>Created {e(created)} · model {e(model_name or 'none')} · {len(history):,} events</p>",
    ]
    if len(history):
        parts += ["<h2>Events</h2>", figs.div(charts.timeline(history))]
    if traj is not None:
        parts += [
            "<h2>Interest trajectory</h2>",
            figs.div(trajectory_chart(grid_view(traj), "Interest over categories — model")),
            figs.div(model_charts.gate_line(traj)),
        ]
        described = traj.describe()
        if described:
            rows = [
                {"step": c.step, "time": c.time, "before": ", ".join(n for n, _ in c.before),
                 "after": ", ".join(n for n, _ in c.after), "divergence (bits)": c.divergence}
                for c in described
            ]
            parts += ["<h3>Where the interest changed</h3>", _table(pd.DataFrame(rows))]
    if recs is not None and len(recs):
        parts += ["<h2>Top recommendations</h2>", _table(recs[["rank", "item_id", "title", "score", "categories"]])]
    if explanation is not None:
        target = recs.loc[recs["item_id"] == explanation.target, "title"] if recs is not None else pd.Series([], dtype=object)
        name = target.iloc[0] if len(target) and isinstance(target.iloc[0], str) else explanation.target
        parts += [
            f"<h2>Why {e(str(name))}?</h2>",
            "<p class='note'>Shapley values of the user's past events for the item's score (logit): red pushed it up, "
            "blue pushed it down; they add up from the base (no history) to the score.</p>",
            figs.div(
                model_charts.waterfall(
                    [lab.text() for lab in explanation.labels], explanation.values, explanation.base, explanation.fx,
                    "Contribution of each event",
                )
            ),
        ]
    tail = history.tail(50)
    parts += ["<h2>Latest events</h2>", _table(tail[["step", "ts", "item_id", "title", "categories", "event_type"]])]
    if figs.drawn:
        parts += [plotly_js(), figures_block(figs.drawn), LOADER]
    parts.append("</body></html>")
    return "\n".join(parts)
