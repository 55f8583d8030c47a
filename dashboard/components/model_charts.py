"""Plotly figures of model results: interest trajectories, the long/short gate, attention, explanations.

They only draw what `core` computed. Log text (titles, category names, ids) goes through `charts.plain`, so
Plotly shows it as characters, never as markup.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from dashboard.components.charts import PreparedFigure, base_layout, figure, plain, vline

__all__ = [
    "VIEWS",
    "gate_line",
    "heatmap",
    "bars",
    "waterfall",
    "deletion_curves",
]

# Trajectory views (also their URL values) -> the Trajectory attribute each one draws.
VIEWS = {"model": "distribution", "long-term": "long_term", "short-term": "short_term", "baseline": "baseline"}


def _change_lines(traj) -> list[dict]:
    return [vline(int(step), "x", "y domain", color="#111827", dash="dash", opacity=0.6)
            for step in traj.change_points if 0 <= step < len(traj)]


def gate_line(traj, prepared: bool = False) -> go.Figure:
    """The weight on the long-term interest after each event (1 = all long-term), by event. (The drift is drawn
    under the trajectory, on the time grid: `trajectory_chart`.) With `prepared`, a `charts.PreparedFigure`."""
    steps = np.arange(len(traj))
    times = pd.to_datetime(traj.times).strftime("%Y-%m-%d %H:%M").to_numpy(dtype=object)
    line = dict(type="scatter", x=steps, y=np.asarray(traj.gate), mode="lines", name="long-term weight",
                line=dict(color="#2563eb"), customdata=times,
                hovertemplate="event %{x} · %{customdata}<br>long-term weight %{y:.2f}<extra></extra>")
    layout = base_layout(height=260, title=dict(text="How much the long-term profile weighs against the latest events"),
                         yaxis=dict(range=[0, 1], title=dict(text="")), xaxis=dict(title=dict(text="event")))
    if shapes := _change_lines(traj):
        layout["shapes"] = shapes
    return PreparedFigure.of([line], layout) if prepared else figure([line], layout)


def heatmap(matrix: np.ndarray, x: list[str], y: list[str], title: str, zmax: float | None = None) -> go.Figure:
    """A heatmap with escaped axis labels (rows y, columns x)."""
    fig = go.Figure(
        go.Heatmap(
            z=matrix, x=[plain(v) for v in x], y=[plain(v) for v in y], colorscale="Blues", zmin=0, zmax=zmax,
            hovertemplate="%{y} → %{x}<br>%{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(margin=dict(l=10, r=10, t=40, b=10), title=title, yaxis_autorange="reversed")
    fig.update_xaxes(type="category", showticklabels=len(x) <= 60)
    fig.update_yaxes(type="category")
    return fig


def bars(
    df: pd.DataFrame, x: str, y: str, title: str, color: str | None = None, horizontal: bool = False,
    categorical: bool = False, value_title: str = "",
) -> go.Figure:
    """Bars of `y` by `x` (labels escaped); `categorical` keeps `x` labels as given (no date or number parsing);
    `value_title` names the value axis."""
    d = df.assign(**{x: df[x].map(plain)})
    if color:
        d = d.assign(**{color: d[color].map(plain)})
    fig = px.bar(d, x=y if horizontal else x, y=x if horizontal else y, color=color, title=title,
                 orientation="h" if horizontal else "v", barmode="group")
    if categorical:
        (fig.update_yaxes if horizontal else fig.update_xaxes)(type="category")
    return fig.update_layout(margin=dict(l=10, r=10, t=40, b=10), legend_title_text="",
                             xaxis_title=value_title if horizontal else "", yaxis_title="" if horizontal else value_title)


def waterfall(labels: list[str], values: np.ndarray, base: float, total: float, title: str, top: int = 15) -> go.Figure:
    """A SHAP waterfall: from the base value, the `top` largest contributions, the rest summed, to f(x)."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(-np.abs(values), kind="stable")
    shown = order[:top]
    rest = float(values[order[top:]].sum()) if len(order) > top else 0.0
    names = [plain(labels[i]) for i in shown[::-1]]
    vals = [float(values[i]) for i in shown[::-1]]
    if len(order) > top:
        names.insert(0, f"{len(order) - top} other events")
        vals.insert(0, rest)
    fig = go.Figure(
        go.Waterfall(
            orientation="h", base=base, y=[*names, "score"], x=[*vals, 0.0],
            measure=[*(["relative"] * len(vals)), "total"],
            increasing_marker_color="#dc2626", decreasing_marker_color="#2563eb", totals_marker_color="#6b7280",
            hovertemplate="%{y}<br>%{x:+.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        margin=dict(l=10, r=10, t=40, b=10), title=f"{title} (base {base:.3f} → {total:.3f})",
        height=max(320, 26 * (len(names) + 2)), showlegend=False,
    )
    return fig


def deletion_curves(df: pd.DataFrame) -> go.Figure:
    """Normalised target score as the top-k events are removed, one line per ordering (columns ordering, k,
    score; `auc` in the legend when present)."""
    fig = px.line(df, x="k", y="score", color="ordering", markers=True,
                  title="Deletion curves (lower area = more faithful ordering)")
    return fig.update_layout(margin=dict(l=10, r=10, t=40, b=10), legend_title_text="",
                             xaxis_title="events removed", yaxis_title="normalised score")
