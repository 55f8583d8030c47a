"""Over Streamlit's own protocol (bench/ws_client.py, no browser), against `interestlens serve`: the Explain page
opened a second time on the item it explained last (a link `?user=…&item=…`, as the explorer's "Explain why…" and
bench/load_ws.py's sessions send it) shows that item's explanation again.

It used to show "Choose a recommendation above…" with no score (load_ws's "no score shown", issue 23): the page kept
the item it had last written to the URL (`_explain_url_item`) to tell a stale `?item=` from a new link, so when the
link named that same item after a visit to another page (which drops the box's value), the item was taken for a
stale URL and the box stayed empty."""

from __future__ import annotations

import asyncio

from dashboard_helpers import OTHER_USER, USER

from bench.ws_client import Tab


def test_the_same_item_explained_again_after_the_explorer_shows_its_score(served):
    async def scenario() -> list[tuple[str, str, str | None]]:
        tab = Tab(served, timeout_s=300)
        await tab.open()
        run = await tab.rerun({"user": USER})  # a shared link: the app moves to the explorer
        explorer = tab.page_hash
        item = run.items[0]
        seen = []
        for user in (USER, OTHER_USER):  # an item for one user, then the same item for another
            shown = await tab.rerun({"user": user, "item": item}, tab.page("Explain"))
            seen.append((user, shown.metrics.get("Score"), shown.metrics.get("Events explained"), shown.problems))
            tab.query.pop("item", None)
            run = await tab.rerun({"user": user}, explorer)  # back to the explorer
            assert not run.problems, run.problems
        shown = await tab.rerun({"user": OTHER_USER, "item": item}, tab.page("Explain"))  # and once more
        seen.append((OTHER_USER, shown.metrics.get("Score"), shown.metrics.get("Events explained"), shown.problems))
        await tab.close()
        return seen

    seen = asyncio.run(scenario())
    assert [s[3] for s in seen] == [[], [], []], seen
    assert all(score is not None for _, score, _, _ in seen), f"an explanation showed no score: {seen}"
    assert seen[1][1] == seen[2][1] and seen[1][2] == seen[2][2], seen  # the same explanation both times
