"""Tables and Plotly figures of a `core.fairness.FairnessReport`. They reshape the report's rows for display;
every number comes from the report (the Lorenz curve draws the report's recommendation counts)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from dashboard.components.charts import plain

__all__ = ["group_table", "gap_table", "group_bars", "lorenz", "exposure_table", "exposure_bars", "trend_frame",
           "trend_lines"]

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), legend_title_text="")


def group_table(rows: list, metrics: list[str]) -> pd.DataFrame:
    """GroupRows as a table: attribute, group, size, each metric with its interval bounds."""
    out = []
    for r in rows:
        d = {"attribute": r.attribute, "group": r.group, "size": r.size}
        for m in metrics:
            d[m] = r.values.get(m, np.nan)
            d[f"{m} low"] = r.low.get(m, np.nan)
            d[f"{m} high"] = r.high.get(m, np.nan)
        out.append(d)
    return pd.DataFrame(out)


GAP_COLUMNS = {  # GapRow field -> the column a reader sees
    "attribute": "grouped by", "metric": "measure", "difference": "gap (best − worst)",
    "difference_low": "gap, 95% low", "difference_high": "gap, 95% high", "ratio": "worst ÷ best",
    "best_group": "best group", "worst_group": "worst group", "groups": "groups compared",
    "left_out": "groups too small",
}


def gap_table(gaps: list) -> pd.DataFrame:
    """GapRows as a table with plain column names (gap and ratio with intervals, best and worst group)."""
    d = pd.DataFrame([vars(g).copy() for g in gaps])
    return d[[c for c in GAP_COLUMNS if c in d.columns]].rename(columns=GAP_COLUMNS) if len(d) else d


def group_bars(table: pd.DataFrame, metric: str, attribute: str, min_size: int = 1) -> go.Figure:
    """One attribute's groups: the metric with its interval as error bars, group size in the label; groups under
    `min_size` users are grey (they are left out of the gaps)."""
    d = table[table["attribute"] == attribute].sort_values(metric)
    small = (d["size"] < min_size).to_numpy()
    labels = [f"{plain(g)} (n={n:,}{', too small' if s else ''})"
              for g, n, s in zip(d["group"], d["size"], small, strict=True)]
    err_hi = (d[f"{metric} high"] - d[metric]).to_numpy()
    err_lo = (d[metric] - d[f"{metric} low"]).to_numpy()
    fig = go.Figure(
        go.Bar(
            x=d[metric], y=labels, orientation="h", marker_color=np.where(small, "#cbd5e1", "#2563eb").tolist(),
            error_x=dict(type="data", array=err_hi, arrayminus=err_lo, visible=bool(np.isfinite(err_hi).any())),
            hovertemplate="%{y}<br>%{x:.4f}<extra></extra>",
        )
    )
    return fig.update_layout(**_LAYOUT, title=f"{metric} by {plain(attribute)} (95% interval)",
                             height=max(220, 40 * len(d) + 80))


def lorenz(counts: pd.Series, gini: float) -> go.Figure:
    """Lorenz curve of exposure: share of list slots held by the least-recommended share of the catalogue
    (every catalogue item, never-recommended ones included), with the line of equality."""
    c = np.sort(np.asarray(counts, dtype=float))
    n = len(c)
    x = np.concatenate([[0.0], np.arange(1, n + 1) / max(n, 1)])
    y = np.concatenate([[0.0], np.cumsum(c) / max(c.sum(), 1e-12)])
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="equality", line=dict(dash="dash", color="#9ca3af")))
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name="recommendations", line=dict(color="#dc2626"), fill="tonexty",
                             hovertemplate="%{x:.0%} of items hold %{y:.0%} of slots<extra></extra>"))
    return fig.update_layout(**_LAYOUT, title=f"Exposure Lorenz curve (Gini {gini:.3f})",
                             xaxis_title="share of catalogue (least recommended first)", yaxis_title="share of list slots",
                             xaxis_tickformat=".0%", yaxis_tickformat=".0%")


def exposure_table(table) -> pd.DataFrame:
    """An ExposureTable's rows as a DataFrame."""
    return pd.DataFrame([vars(r).copy() for r in table.rows])


def exposure_bars(table) -> go.Figure:
    """Share of exposure against share of relevance (test targets) per item group."""
    d = exposure_table(table)
    d = d.assign(group=d["group"].map(plain)).melt(
        id_vars="group", value_vars=["exposure_share", "relevance"], var_name="measure", value_name="share"
    )
    d["measure"] = d["measure"].map({"exposure_share": "share of exposure in the lists",
                                     "relevance": "share of what users went on to choose"})
    fig = px.bar(d, x="group", y="share", color="measure", barmode="group",
                 title=f"Exposure vs relevance by {plain(table.grouping)} (parity {table.parity_ratio:.2f}: "
                       "least ÷ most exposed group, 1 = equal)")
    return fig.update_layout(**_LAYOUT, xaxis_title="", yaxis_title="share", yaxis_tickformat=".0%")


def trend_frame(windows: list) -> pd.DataFrame:
    """WindowRows as one row per window: start, end, users, each metric, `gap:<attribute>` columns, and
    `<metric>_low` / `<metric>_high` for each interval core gives (NDCG@K, HR@K and the gaps)."""
    rows = []
    for w in windows:
        rows.append({"start": w.start, "end": w.end, "users": w.users, "eligible users": w.eligible or w.users,
                     **w.metrics,
                     **{f"gap:{k}": v for k, v in w.gaps.items()},
                     **{f"{m}_{side}": v for m, (lo, hi) in w.intervals.items()
                        for side, v in (("low", lo), ("high", hi))}})
    return pd.DataFrame(rows)


def trend_lines(frame: pd.DataFrame, metrics: list[str], title: str) -> go.Figure:
    """Chosen metrics per calendar window; a metric with `<metric>_low` / `_high` columns gets its interval drawn as
    a shaded band in the line's colour (traces named "<metric> interval")."""
    d = frame.melt(id_vars=["end"], value_vars=[m for m in metrics if m in frame.columns], var_name="metric")
    fig = px.line(d, x="end", y="value", color="metric", markers=True, title=title)
    colours = {t.name: t.line.color for t in fig.data}
    for m in metrics:
        lo, hi = f"{m}_low", f"{m}_high"
        if m not in colours or lo not in frame.columns or hi not in frame.columns or frame[lo].isna().all():
            continue
        x = list(frame["end"]) + list(frame["end"][::-1])
        y = list(frame[hi]) + list(frame[lo][::-1])
        fig.add_trace(go.Scatter(x=x, y=y, fill="toself", fillcolor=colours[m], opacity=0.2, line=dict(width=0),
                                 mode="lines", name=f"{m} interval", showlegend=False, hoverinfo="skip"))
    return fig.update_layout(**_LAYOUT, xaxis_title="end of window", yaxis_title="")
