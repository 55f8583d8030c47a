"""Shared page pieces that must be exact: CSV exports that a spreadsheet cannot run, Markdown shown literally."""

from __future__ import annotations

import io

import pandas as pd

from dashboard.components.charts import md_text
from dashboard.components.panels import csv
from dashboard.components.upload import column_names, safe_name


def test_csv_neutralises_formulas_and_flattens_lists():
    df = pd.DataFrame({"title": ["=HYPERLINK(\"http://x\")", "+1", "ok", "-2 days"], "n": [1, 2, 3, -4],
                       "categories": [["a", "b"], [], ["c"], ["d"]]})
    back = pd.read_csv(io.BytesIO(csv(df)), keep_default_na=False)
    assert back["title"].tolist() == ["'=HYPERLINK(\"http://x\")", "'+1", "ok", "'-2 days"]
    assert back["n"].tolist() == [1, 2, 3, -4]  # numbers stay numbers
    assert back["categories"].tolist() == ["a, b", "", "c", "d"]


def test_csv_of_text_columns_is_the_cell_by_cell_one():
    """The vectorised pass over text-only columns quotes exactly the cells the per-cell rule quotes."""
    from dashboard.components.panels import _cell

    df = pd.DataFrame({"a": ["=1+1", "ok", None, "-x", "@y"], "b": [["=a", "b"], [], None, ["x"], ["y"]],
                       "c": pd.array(["+z", None, "q", "\tt", "\rr"], dtype="string"), "d": [None] * 5,
                       "e": [1, 2, 3, 4, 5]})
    df = pd.concat([df] * 20, ignore_index=True)  # 100 rows: past the per-cell pass's limit (64)
    per_cell = df.copy()
    for col in ("a", "b", "c", "d"):
        per_cell[col] = per_cell[col].map(_cell, na_action="ignore")
    assert csv(df) == per_cell.to_csv(index=False).encode("utf-8")
    assert csv(df).decode().splitlines()[1].startswith("'=1+1,")


def test_markdown_text_is_escaped():
    assert md_text("[click](javascript:alert(1)) *x*") == r"\[click\]\(javascript\:alert\(1\)\) \*x\*"


def test_upload_names_and_columns(tmp_path):
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("my file (1).csv") == "my_file_1_.csv"
    p = tmp_path / "a.tsv"
    p.write_text("user\titem\tts\nu1\ti1\t1\n")
    assert column_names(p) == ["user", "item", "ts"]
    j = tmp_path / "b.jsonl"
    j.write_text('{"reviewerID": "A", "asin": "B", "unixReviewTime": 1}\n')
    assert column_names(j) == ["reviewerID", "asin", "unixReviewTime"]


def test_trajectory_chart_names_six_categories_at_most_in_distinct_colours(dash_env):
    from core.checkpoint import load_checkpoint
    from core.store import connect_read
    from core.trajectory import OTHER, TrajectoryAnalyzer, grid_view
    from dashboard.components import trajectory_chart as tc

    db, model = dash_env
    with connect_read(db) as con:
        traj = TrajectoryAnalyzer(load_checkpoint(model)).user(con, "u003")
    assert len(tc.PALETTE) == 6 and len(set(tc.PALETTE)) == 6 and tc.OTHER_COLOR not in tc.PALETTE
    for top in (2, 4, 6):  # the fixture's 6 categories: 2 or 4 named + "other", or all 6 named
        grid = grid_view(traj, "event", top_n=top)
        fig = tc.trajectory_chart(grid, "t")
        stacked = {t.name: t.line.color for t in fig.data if t.stackgroup == "interest"}
        assert len(stacked) == min(top + 1, 6) and len(set(stacked.values())) == len(stacked) <= 7
        if top < 6:
            assert stacked[OTHER] == tc.OTHER_COLOR
    drift = [t for t in fig.data if t.name == "drift"]
    assert len(drift) == 1 and fig.layout.yaxis2.range == (0, 1) and fig.layout.yaxis2.title.text == "drift (bits)"
    # a short hover: one line per category, its name and share (the bucket's date heads the unified hover)
    assert {t.hovertemplate for t in fig.data} == {"%{fullData.name} %{y:.0%}<extra></extra>",
                                                   "drift %{y:.2f} bits<extra></extra>"}


def test_md_text_keeps_bare_addresses_from_becoming_links():
    """Streamlit's Markdown links `http://…`, `www.…` and `a@b.c` even when every Markdown character is escaped
    (seen in Chromium); a zero-width space before `://`, after `www` and before `@` keeps them text."""
    out = md_text("see http://e.com, HTTPS://x.org, WWW.w3.org and a@b.com")
    assert "\u200b\\://" in out and out.count("\u200b") == 4
    assert "WWW\u200b\\.w3" in out and "a\u200b@b" in out
    assert out.replace("\u200b", "").replace("\\", "") == "see http://e.com, HTTPS://x.org, WWW.w3.org and a@b.com"
    assert md_text("NDCG@10") == "NDCG@10"  # an @ that is not an address's stays as it is


def test_explorer_figures_built_without_validation_are_valid_plotly(dash_env):
    """The User explorer's figures are built from plain dicts without Plotly's validation (docs/serving.md): each
    must pass that validation here, with its live marks, change lines and training cut-off."""
    import numpy as np
    import plotly.graph_objects as go

    from core.checkpoint import load_checkpoint
    from core.store import connect_read, queries
    from core.trajectory import TrajectoryAnalyzer, grid_view
    from dashboard.components import charts, model_charts
    from dashboard.components import trajectory_chart as tc

    db, model = dash_env
    with connect_read(db) as con:
        traj = TrajectoryAnalyzer(load_checkpoint(model)).user(con, "u003")
        history = queries.user_history(con, "u003")
    grid = grid_view(traj, "event", top_n=4)
    n = len(history)
    until = history["ts"].iloc[n // 2].to_pydatetime()
    figs = {
        "trajectory": tc.trajectory_chart(grid, "t", np.array([n - 2, n - 1]), np.array([n // 2, n - 1])),
        "gate": model_charts.gate_line(traj),
        "timeline": charts.timeline(history, np.array([0, 1]), np.array([2]), until),
        "timeline by event": charts.timeline(history, axis="event"),
    }
    for name, fig in figs.items():
        checked = go.Figure(fig.to_dict())  # Plotly's validation: raises on an unknown or ill-typed property
        assert checked.to_dict()["layout"]["title"] == fig.to_dict()["layout"]["title"], name
    traj_fig = figs["trajectory"].to_dict()["layout"]
    assert [s["type"] for s in traj_fig["shapes"]][-2:] == ["rect", "rect"]  # after training, new since live on
    assert [a["text"] for a in traj_fig["annotations"]][-2:] == ["after training", "new since live on"]
    timeline = figs["timeline"]
    names = [t.name for t in timeline.data]
    assert names[-2:] == ["new since live on", "new to the model (skipped)"]
    assert sum(len(t.x) for t in timeline.data[:-2]) == sum(max(1, len(c)) for c in history["categories"])
    assert timeline.layout.shapes[0].line.dash == "dot" and timeline.layout.annotations[0].text == "model trained until"
    assert figs["timeline by event"].layout.xaxis.title.text == "event number"
