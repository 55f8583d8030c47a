"""Compare page: our model against an external one (a popularity entry point registered here), the figures being
core.compare's under every protocol (RecBole's when ticked), one user's two trajectories and explanations side by
side."""

from __future__ import annotations

import shutil
import textwrap

from dashboard_helpers import open_page, problems

from core.compare import compare_models, protocol_table
from core.external import add_model
from core.store import connect_read


def test_compare_page_shows_cores_comparison_and_one_user_under_both(monkeypatch, synthetic_db, dash_model, tmp_path):
    root = tmp_path / "models"
    shutil.copytree(dash_model, root / "ours")
    code = tmp_path / "code"
    code.mkdir()
    (code / "il_pop_entry.py").write_text(textwrap.dedent("""
        import duckdb, numpy as np, os

        class Popular:
            max_len = 20

            def __init__(self):
                con = duckdb.connect(os.environ["INTERESTLENS_DB"], read_only=True)
                rows = con.execute("SELECT item_id, count(*) FROM events GROUP BY 1 ORDER BY 1").fetchall()
                con.close()
                self.item_ids = [r[0] for r in rows]
                self.counts = np.array([r[1] for r in rows], dtype=float)

            def score(self, histories):
                return np.tile(self.counts, (len(histories), 1))

        def factory():
            return Popular()
    """))
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.setenv("INTERESTLENS_DB", str(synthetic_db))
    with connect_read(synthetic_db) as con:
        add_model(con, root, "popular", "entry", "il_pop_entry:factory")
    monkeypatch.setenv("INTERESTLENS_MODELS", str(root))
    monkeypatch.setenv("INTERESTLENS_MODEL", str(root / "ours"))
    expected = compare_models(synthetic_db, root / "ours", root / "popular")
    at = open_page("compare")
    assert not problems(at)
    assert at.metric[0].value == f"{expected.ndcg_diff:+.4f}"
    shown = next(d.value for d in at.dataframe if "rbo" in d.value.columns)
    assert shown["user_id"].tolist() == expected.disagreeing(20)["user_id"].tolist()
    assert shown["explorer"].iloc[0] == f"/user?user={shown['user_id'].iloc[0]}"
    assert len(at.get("plotly_chart")) == 2  # both trajectories of the most disagreeing user
    assert len([d for d in at.dataframe if "shap" in d.value.columns]) == 2  # both explanations of that user

    def shown_protocols(at) -> list:
        table = next(d.value for d in at.dataframe if "protocol" in d.value.columns)
        return table.to_dict(orient="records")

    assert at.checkbox(key="compare_recbole").value is False
    assert shown_protocols(at) == protocol_table(expected.protocols).to_dict(orient="records")
    assert [r["protocol"] for r in shown_protocols(at)] == ["exclude_seen", "all_items"]
    at.checkbox(key="compare_recbole").check().run()
    assert not problems(at)
    with_recbole = compare_models(synthetic_db, root / "ours", root / "popular", recbole=True)
    assert [r["protocol"] for r in shown_protocols(at)] == ["exclude_seen", "all_items", "recbole"]
    assert shown_protocols(at) == protocol_table(with_recbole.protocols).to_dict(orient="records")
