"""InterestLens dashboard: `interestlens serve --db PATH` (or `streamlit run dashboard/app.py`).

The database comes from $INTERESTLENS_DB, the model from the sidebar, else $INTERESTLENS_MODEL, else the newest
checkpoint under data/models. Opening the root as `/?user=ID` lands on that user's explorer.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path, not the project root; make `core` importable
# from a source checkout as well as from an installed package.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

from core.errors import InterestLensError  # noqa: E402
from dashboard.access import require_login  # noqa: E402
from dashboard.components import nav  # noqa: E402
from dashboard.components.messages import error_text  # noqa: E402
from dashboard.components.sidebar import render_sidebar  # noqa: E402
from dashboard.components.user_finder import user_box  # noqa: E402


def _main() -> None:
    """Draw the app: sign-in, the page list, the sidebar and the current page."""
    # A local icon: a Material icon here would be fetched from fonts.gstatic.com (no data leaves the machine).
    st.set_page_config(page_title="InterestLens", page_icon=str(Path(__file__).parent / "static" / "icon.png"), layout="wide")
    require_login()  # sign-in configured in secrets: a session that has not signed in sees only the sign-in page

    pages_dir = Path(__file__).resolve().parent / "pages"
    overview = st.Page(pages_dir / "overview.py", title="Overview", icon=":material/dashboard:", default=True)
    explorer = st.Page(pages_dir / "user_explorer.py", title="User explorer", icon=":material/person_search:", url_path="user")
    pages = [
        overview,
        explorer,
        st.Page(pages_dir / "attention.py", title="Attention", icon=":material/grid_on:", url_path="attention"),
        st.Page(pages_dir / "explain.py", title="Explain", icon=":material/lightbulb:", url_path="explain"),
        st.Page(pages_dir / "search.py", title="Search by meaning", icon=":material/manage_search:", url_path="search"),
        st.Page(pages_dir / "fairness.py", title="Fairness", icon=":material/balance:", url_path="fairness"),
        st.Page(pages_dir / "cohorts.py", title="Cohorts", icon=":material/groups:", url_path="cohorts"),
        st.Page(pages_dir / "compare.py", title="Compare models", icon=":material/compare_arrows:", url_path="compare"),
        st.Page(pages_dir / "data_models.py", title="Data & models", icon=":material/database:", url_path="data"),
    ]
    # Our own sidebar page list instead of Streamlit's menu, whose page change a user id typed at once could undo; the
    # pages stay registered, so URLs, links and back/forward work as before. `route` runs the picked page for requests
    # the tab sent before it had drawn the pick (dashboard/components/nav.py).
    nav.route(pages)
    current = st.navigation(pages, position="hidden")

    # A shared link to the root with ?user=ID opens that user's explorer (only on a session's first run, so moving
    # to the Overview later with the user still in the URL does not bounce back).
    first_run = not st.session_state.get("_routed", False)
    st.session_state["_routed"] = True
    if first_run and current.url_path == overview.url_path and st.query_params.get("user"):
        st.switch_page(explorer, query_params=st.query_params.to_dict())  # the link's other settings too

    nav.sidebar_nav(pages, current)
    user_box()  # one box for every page (its own widget per page lost typed ids and the back button)
    render_sidebar()
    try:
        current.run()
    except InterestLensError as exc:
        st.error(error_text(exc))


# A spawned explanation worker (dashboard/explain_pool.py) re-imports the parent's __main__ module, and Streamlit
# installs this script as __main__, so the worker would run the whole app outside a session (and die in the page
# list, which needs one). It imports this file under the name __mp_main__: draw nothing then.
if __name__ != "__mp_main__":
    _main()
