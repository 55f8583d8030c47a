"""Who may see the app: optional sign-in through Streamlit's built-in OpenID Connect login (`st.login`).

Off unless `.streamlit/secrets.toml` has an `[auth]` section (see docs/security.md). When it is on, a session that
has not signed in sees only the sign-in page: no navigation, no data, no model. One provider is configured with
its settings directly under `[auth]`; several with one sub-section each (`[auth.google]`, `[auth.microsoft]`), and
the page offers one button per provider. Streamlit needs Authlib for the sign-in itself (`pip install
'interestlens[auth]'`).
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

__all__ = ["auth_configured", "providers", "require_login", "account_menu"]


def _auth_section() -> Mapping | None:
    try:
        section = st.secrets["auth"] if "auth" in st.secrets else None
    except FileNotFoundError:  # no secrets.toml at all: sign-in is off
        return None
    return section if isinstance(section, Mapping) else None


def auth_configured() -> bool:
    """True when the secrets have an `[auth]` section (sign-in is required)."""
    return _auth_section() is not None


def providers() -> list[str | None]:
    """The providers to offer: [None] for a single provider configured directly under `[auth]`."""
    section = _auth_section() or {}
    named = [str(k) for k, v in section.items() if isinstance(v, Mapping)]
    return [None] if "client_id" in section or not named else named


def _logged_in() -> bool:
    try:
        return bool(st.user.get("is_logged_in", False))
    except (AttributeError, KeyError):
        return False


def require_login() -> None:
    """Show only the sign-in page (and stop) while sign-in is configured and this session has not signed in."""
    if not auth_configured() or _logged_in():
        return
    st.title("InterestLens")
    st.write("This dashboard holds behaviour data. Sign in to continue.")
    for provider in providers():
        label = "Sign in" if provider is None else f"Sign in with {provider}"
        st.button(label, on_click=st.login, args=(provider,) if provider else (), type="primary",
                  key=f"access_login_{provider or 'default'}")
    st.stop()


def account_menu() -> None:
    """Who is signed in and a sign-out button (in the sidebar), when sign-in is on."""
    if not auth_configured() or not _logged_in():
        return
    from dashboard.components.charts import md_text

    who = st.user.get("email") or st.user.get("name") or "an account"
    st.caption(f"Signed in as {md_text(who)}")
    st.button("Sign out", on_click=st.logout, key="access_logout")
