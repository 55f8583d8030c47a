"""An explanation refused because the server is busy (`ExplainBusy`: too many explanations queued in the workers) is
one sentence and a "Try again" button, nothing half drawn; the retry explains once the server has room. bench/load_ws.py
counts such a refusal as `explanations_busy`, not as an error (issue 23, overload at 50/100 sessions)."""

from __future__ import annotations

from dashboard_helpers import USER, open_page, problems

import dashboard.cache.models as models
from core.checkpoint import load_checkpoint
from core.recommend import recommend_users
from core.store import connect_read
from dashboard.explain_pool import ExplainBusy, explain_here


class _Pool:
    """A worker pool that is full until `busy` is cleared, then explains here (as a worker would)."""

    def __init__(self):
        self.busy = True
        self.asked = 0

    def explain(self, job):
        self.asked += 1
        if self.busy:
            raise ExplainBusy("The server is computing 16 explanations right now; try again in a few seconds.")
        return explain_here(job)


def test_a_busy_server_says_so_in_one_sentence_and_the_retry_explains(dash_env, monkeypatch):
    db, model = dash_env
    with connect_read(db) as con:
        item = recommend_users(load_checkpoint(model), con, [USER], 10)["item_id"].astype(str).iloc[0]
    pool = _Pool()
    monkeypatch.setattr(models, "shared_pool", lambda: pool)
    at = open_page("explain", user=USER, item=item)
    said = [e.value.replace("\\", "") for e in at.error]  # shown as Markdown: the full stop comes escaped
    assert said == ["The server is computing 16 explanations right now; try again in a few seconds."], said
    assert not at.exception and not at.metric and not at.get("plotly_chart") and not at.tabs  # nothing half drawn
    retry = at.button(key="explain_retry")
    pool.busy = False
    retry.click().run()
    assert not problems(at) and pool.asked == 2
    assert {m.label for m in at.metric} >= {"Score", "Base (no history)"}
