"""Stop a page with one clear message and the command that fixes it, instead of a traceback."""

from __future__ import annotations

import shlex
from pathlib import Path

import streamlit as st

from core.errors import InterestLensError
from dashboard import cache
from dashboard.cache import DbRef, ModelRef
from dashboard.components.charts import md_text
from dashboard.components.messages import error_text

__all__ = ["require_db", "require_model", "require_user", "train_command", "build_command"]


def build_command(db: Path) -> str:
    """The CLI command that creates a database at `db`."""
    return f"interestlens build --db {shlex.quote(str(db))} --dataset synthetic"


def train_command(db: Path) -> str:
    """The CLI command that trains the default model on `db`."""
    return f"interestlens train --db {shlex.quote(str(db))} --out data/models/default"


def require_db() -> DbRef:
    """The app's database; stops the page with a way forward when there is no usable, non-empty database."""
    db = cache.database()
    path = db.file
    if not db.exists:
        st.info(f"No database at `{path}` yet. Create one with `make run`, or:")
        st.code(build_command(path), language="bash")
        st.stop()
    try:
        summary = cache.dataset_summary(db)
    except InterestLensError as exc:
        st.error(error_text(exc))
        st.stop()
    if summary["events"] == 0:
        st.info(f"The database `{path}` has no events yet. Add some on the **Data & models** page, or:")
        st.code(build_command(path), language="bash")
        st.stop()
    return db


def require_user(db: DbRef, user: str) -> str:
    """The user id when it is in the database; otherwise a message and a way forward, then a stop."""
    if not user:
        st.info("Pick a user: type an id in the **User id** box in the sidebar, or search with **Find a user** on the User explorer.")
        st.stop()
    if not cache.user_exists(db, user):
        st.warning(f"There is no user {md_text(repr(user))} in this database. Check the id, or search for a user with **Find a user** on the User explorer.")
        st.stop()
    return user


def require_model(stop: bool = True) -> ModelRef | None:
    """The active model; without one, an info with the training command (and a stop if asked)."""
    model = cache.active_model()
    if model is None:
        st.info("No trained model yet. Train the default one with:")
        st.code(train_command(cache.db_path()), language="bash")
        if stop:
            st.stop()
    return model
