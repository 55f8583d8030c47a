"""Compare page: our model against an external one (a popularity entry point registered here), the figures being
core.compare's under every protocol (RecBole's when ticked), one user's two trajectories and explanations side by
side."""

from __future__ import annotations

from dashboard_helpers import open_page, problems

from core.compare import compare_models, protocol_table


def test_compare_page_shows_cores_comparison_and_one_user_under_both(compare_env, synthetic_db):
    root = compare_env
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
