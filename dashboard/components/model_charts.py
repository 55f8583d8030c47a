"""Plotly figures of model results: interest trajectories, the long/short gate, attention, explanations.

They only draw what `core` computed. Log text (titles, category names, ids) goes through `charts.plain`, so
Plotly shows it as characters, never as markup.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.trajectory.result import OTHER
from dashboard.components.charts import plain

__all__ = [
    "VIEWS",
    "trajectory_area",
    "gate_line",
    "heatmap",
    "bars",
    "waterfall",
    "deletion_curves",
]

# Trajectory views (also their URL values) -> the Trajectory attribute each one draws.
VIEWS = {"model": "distribution", "long-term": "long_term", "short-term": "short_term", "baseline": "baseline"}
_TITLES = {"model": "model", "long-term": "long-term", "short-term": "short-term", "baseline": "baseline (decayed history)"}
_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), legend_title_text="", hovermode="x unified")
MAX_CATEGORIES = 10  # more than this are folded into "other" so the stacked area stays readable
OTHER_COLOR = "#9ca3af"  # the folded categories: grey, never one of the palette's colours


def _change_lines(fig: go.Figure, traj) -> None:
    for step in traj.change_points:
        if 0 <= step < len(traj):
            fig.add_vline(x=step, line_dash="dash", line_color="#111827", opacity=0.6)


def trajectory_area(traj, view: str, new_steps=None, after_training=None) -> go.Figure:
    """Stacked area of the interest over categories after each event (x = event number, time on hover); drift
    points as dashed lines. `traj` is a `core.trajectory.Trajectory`; `view` one of `VIEWS`. Live marks: the steps
    since live mode was switched on (`new_steps`) and those after the model's training cut-off are shaded."""
    folded = traj.fold(MAX_CATEGORIES)
    df = folded.frame(VIEWS[view])
    df = df.assign(category=df["category"].map(plain), time=pd.to_datetime(df["time"]).dt.strftime("%Y-%m-%d %H:%M"))
    fig = px.area(
        df, x="step", y="share", color="category", line_group="category",
        title=f"Interest over categories — {_TITLES[view]}", hover_data={"time": True},
        color_discrete_map={OTHER: OTHER_COLOR},  # else the 11th series takes the first category's colour again
    )
    fig.update_traces(line_width=0.5)
    _change_lines(fig, traj)
    for steps, label, color in [(after_training, "after training", "#9ca3af"), (new_steps, "new since live on", "#f97316")]:
        if steps is not None and len(steps):
            fig.add_vrect(x0=int(min(steps)) - 0.5, x1=int(max(steps)) + 0.5, fillcolor=color, opacity=0.18, line_width=0,
                          annotation_text=label, annotation_position="top left")
    return fig.update_layout(**_LAYOUT, xaxis_title="event", yaxis_title="share", yaxis_tickformat=".0%",
                             yaxis_range=[0, 1])


def gate_line(traj) -> go.Figure:
    """The weight on the long-term interest after each event (1 = all long-term) and the drift, by event."""
    steps = np.arange(len(traj))
    times = pd.to_datetime(traj.times).strftime("%Y-%m-%d %H:%M")
    drift = np.asarray(traj.drift, dtype=float)
    fig = go.Figure(
        go.Scatter(
            x=steps, y=traj.gate, mode="lines", name="long-term weight", line_color="#2563eb", customdata=times,
            hovertemplate="event %{x} · %{customdata}<br>long-term weight %{y:.2f}<extra></extra>",
        )
    )
    top = float(np.nanmax(drift)) if len(drift) and np.isfinite(drift).any() else 0.0
    fig.add_trace(
        go.Scatter(
            x=steps, y=drift / max(top, 1e-9), mode="lines", name="interest moved (scaled)", line=dict(color="#f59e0b", width=1),
            customdata=drift, hovertemplate="event %{x}<br>drift %{customdata:.3f} bits<extra></extra>",
        )
    )
    _change_lines(fig, traj)
    fig.update_layout(
        **{**_LAYOUT, "hovermode": "closest"}, height=260, title="How much the long-term profile weighs, and how much interest moved",
        yaxis_range=[0, 1], xaxis_title="event", yaxis_title="",
    )
    return fig


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
            orientation="h", base=base, y=[*names, "score f(x)"], x=[*vals, 0.0],
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
