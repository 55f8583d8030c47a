"""The interest trajectory chart: a `core.trajectory.GridTrajectory` drawn on its time axis.

Top: the stacked interest per bucket (at most six named categories and a grey "other", in a palette without
repeats). Bottom, on the same time axis: the drift, JS bits on a fixed 0–1 axis for every user. Change points are
dashed lines through both, labelled with the shift in words; core places each on a peak of the drift line.
Category names and words are log text and go through `charts.plain`.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.trajectory import OTHER
from dashboard.components.charts import PreparedFigure, figure, plain, vline

__all__ = ["PALETTE", "OTHER_COLOR", "VIEW_TITLES", "GRAIN_LABELS", "trajectory_chart", "colours"]

# Okabe–Ito, the colour-blind-safe set: six distinct hues, then grey for "other" (never one of the six).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
OTHER_COLOR = "#9ca3af"
VIEW_TITLES = {"model": "model", "long-term": "long-term", "short-term": "short-term",
               "baseline": "baseline (decayed history)"}
GRAIN_LABELS = {"event": "event", "session": "session", "day": "day", "week": "week (from Monday)", "month": "month"}
_MARK = "#111827"


def colours(categories: list[str]) -> dict[str, str]:
    """Category -> colour: the palette in order for the named ones, grey for "other"."""
    named = [c for c in categories if c != OTHER]
    out = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(named)}
    if OTHER in categories:
        out[OTHER] = OTHER_COLOR
    return out


def _x(grid) -> np.ndarray:
    """The x of each bucket: the event number on the per-event view, else the time of its first event."""
    return grid.first_step if grid.grain == "event" else grid.start.astype("datetime64[ms]")


# The two stacked subplots as `make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28],
# vertical_spacing=0.06)` lays them out, written out: make_subplots was ~55 ms per switch (cProfile, docs/serving.md).
_TOP, _BOTTOM = [0.3232, 1.0], [0.0, 0.2632]


def trajectory_chart(grid, title: str, new_steps=None, after_training=None, prepared: bool = False) -> go.Figure:
    """The stacked interest and the drift of one `GridTrajectory`; live marks (`new_steps`, `after_training`:
    event indices) shade the buckets holding them. With `prepared`, a `charts.PreparedFigure`."""
    x = _x(grid)
    cmap = colours(grid.categories)
    data = [
        dict(type="scatter", x=x, y=grid.share[:, k], name=plain(cat), mode="lines", stackgroup="interest",
             line=dict(width=0.5, color=cmap[cat]), fillcolor=cmap[cat],
             hovertemplate="%{fullData.name} %{y:.0%}<extra></extra>", xaxis="x", yaxis="y")
        for k, cat in enumerate(grid.categories)
    ]
    data.append(dict(type="scatter", x=x, y=grid.drift, name="drift", mode="lines", line=dict(color=_MARK, width=1.2),
                     showlegend=False, hovertemplate="drift %{y:.2f} bits<extra></extra>", xaxis="x2", yaxis="y2"))
    shapes, notes = [], []
    for k, c in enumerate(grid.changes):
        xc = _plotly_x(x[c.bucket])
        shapes += [vline(xc, xref, yref, color=_MARK, dash="dash", opacity=0.7)
                   for xref, yref in (("x", "y domain"), ("x2", "y2 domain"))]
        # inside the plot, each label a line lower than the last, so close changes do not overprint
        notes.append(dict(x=xc, y=0.98 - 0.09 * (k % 4), xref="x", yref="y domain", text=plain(c.words),
                          showarrow=False, xanchor="left", yanchor="top", font=dict(size=11),
                          bgcolor="rgba(255,255,255,0.8)"))
    bucket_of = np.searchsorted(grid.first_step, np.arange(int(grid.events.sum())), side="right") - 1
    for steps, label, colour in [(after_training, "after training", OTHER_COLOR), (new_steps, "new since live on", "#f97316")]:
        if steps is not None and len(steps):
            b0, b1 = int(bucket_of[int(min(steps))]), int(bucket_of[int(max(steps))])
            x0, x1 = _plotly_x(x[b0]), _plotly_x(x[b1])
            shapes.append(dict(type="rect", x0=x0, x1=x1, xref="x", y0=0, y1=1, yref="y domain", fillcolor=colour,
                               opacity=0.18, line=dict(width=0)))
            notes.append(dict(showarrow=False, text=label, x=x0, xanchor="left", xref="x", y=1, yanchor="top",
                              yref="y domain"))
    layout = dict(
        margin=dict(l=10, r=10, t=40, b=10), title=dict(text=title), hovermode="x unified", height=460,
        legend=dict(title=dict(text=""), traceorder="reversed"),  # legend top-down as the stack
        xaxis=dict(anchor="y", domain=[0.0, 1.0], matches="x2", showticklabels=False),
        yaxis=dict(anchor="x", domain=_TOP, title=dict(text="share"), tickformat=".0%", range=[0, 1]),
        xaxis2=dict(anchor="y2", domain=[0.0, 1.0],
                    title=dict(text="event" if grid.grain == "event" else GRAIN_LABELS[grid.grain])),
        yaxis2=dict(anchor="x2", domain=_BOTTOM, title=dict(text="drift (bits)"), range=[0, 1], tickvals=[0, 0.5, 1]),
    )
    if shapes:
        layout["shapes"] = shapes
    if notes:
        layout["annotations"] = notes
    return PreparedFigure.of(data, layout) if prepared else figure(data, layout)


def _plotly_x(v):
    """A bucket's x as Plotly's shapes take it: a number, or milliseconds since the epoch for a time."""
    if isinstance(v, np.datetime64):
        return float(v.astype("datetime64[ms]").astype(np.int64))
    return float(v)
