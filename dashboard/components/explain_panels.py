"""Pieces of the Explain page: an explanation as tables, attention against SHAP with deletion curves, and the
what-if editor. Every number comes from `core.explain` / `core.attention`; these only reshape and lay out."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import cache
from dashboard.cache import DbRef, ModelRef
from dashboard.components import model_charts, panels
from dashboard.components.charts import md_text

__all__ = ["md_text", "event_table", "window_table", "windows_panel", "group_table", "friends_groups",
           "friends_panel", "attention_vs_shap", "what_if_editor"]


def event_table(expl: Any) -> pd.DataFrame:
    """One row per explained player (an event, or a period of older events: `events` > 1, steps `step`..`to step`):
    time, item, title, categories, SHAP value; largest |value| first."""
    df = pd.DataFrame(
        {
            "step": [lab.step for lab in expl.labels],
            "to step": [lab.last_step if lab.n_events > 1 else lab.step for lab in expl.labels],
            "events": [lab.n_events for lab in expl.labels],
            "time": [lab.time for lab in expl.labels],
            "title": [lab.title for lab in expl.labels],
            "item_id": [lab.item_id for lab in expl.labels],
            "categories": [", ".join(lab.categories) for lab in expl.labels],
            "shap": expl.values,
        }
    )
    return df.iloc[np.argsort(-np.abs(df["shap"].to_numpy()), kind="stable")].reset_index(drop=True)


def window_table(windows: list) -> pd.DataFrame:
    """Time windows (session, day, week, month: `core.explain.WindowValue`) with their Owen values."""
    return pd.DataFrame(
        [{"level": w.level, "label": w.label, "start": w.start, "end": w.end, "events": w.n_events, "value": w.value}
         for w in windows]
    )


@st.fragment
def windows_panel(db: DbRef, model: ModelRef, user: str, item: str) -> None:
    """The values of the history's sessions, days, weeks and months (`core.explain.HistoryExplainer.periods`)."""
    values = panels.computed(cache.periods, db, model, user, item)
    if values is None:
        return
    windows = window_table(values)
    if windows.empty:
        st.info("No time windows for this explanation.")
        return
    level = st.segmented_control("Level", list(dict.fromkeys(windows["level"])), default=windows["level"].iloc[-1],
                                 key="explain_level", bind="query-params") or windows["level"].iloc[-1]
    # the labels (2024-03, week of …, session 3) are categories: a date axis would draw one lone bar at a
    # sub-millisecond scale when there is a single month
    chart = model_charts.bars(windows[windows["level"] == level], "label", "value", f"Contribution per {level}",
                              categorical=True, value_title="contribution to the score")
    st.plotly_chart(chart, key="explain_windows")
    st.caption(f"How much each {level} of the history pushed this item's score up (positive) or down (negative); "
               "the bars of one level add up to the score minus the base.")
    st.dataframe(windows, hide_index=True, width="stretch")


def group_table(expl: Any) -> pd.DataFrame:
    """Feature-group Shapley values (their own base: every group unknown is in `attrs['base']`)."""
    g = expl.groups
    if g is None:
        return pd.DataFrame()
    df = pd.DataFrame({"group": list(g.feature_names), "value": np.asarray(g.values, dtype=float)})
    df.attrs["base"] = float(np.asarray(g.base_values).reshape(-1)[0])
    return df


def friends_groups(fx: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A social explanation (`core.social.evidence.FriendExplanation`) as two groups (the latest window's events,
    all friends: each the sum of its players' Shapley values, so the two add up to fx − base) and one row per friend
    (user_id, value, explorer link), largest |value| first."""
    groups = pd.DataFrame({"group": ["own events (latest window)", "friends"],
                           "value": [float(np.sum(fx.events)), float(np.sum(fx.values))]})
    friends = pd.DataFrame({"user_id": list(fx.friends), "value": np.asarray(fx.values, dtype=float)})
    friends = friends.iloc[np.argsort(-np.abs(friends["value"].to_numpy()), kind="stable")].reset_index(drop=True)
    return groups, friends.assign(explorer="/user?user=" + friends["user_id"].astype(str))


def friends_panel(db: DbRef, model: ModelRef, user: str, item: str) -> None:
    """Friends as a feature group beside the user's own events (models trained with the social branch only)."""
    fx = panels.computed(cache.friend_values, db, model, user, item)
    if fx is None:
        return
    groups, friends = friends_groups(fx)
    st.subheader("Friends and own events")
    st.plotly_chart(model_charts.bars(groups, "group", "value", "Contribution of friends vs own events",
                                      horizontal=True), key="explain_friends_groups")
    st.caption(f"Shapley values with every friend as one player beside the latest window's events (an absent friend "
               f"is removed from the social set); base {fx.base:.3f}, score {fx.fx:.3f}, additivity error "
               f"{fx.additivity_error:.1e}.")
    st.dataframe(friends, hide_index=True, width="stretch", key="explain_friends_table",
                 column_config={"explorer": st.column_config.LinkColumn("explorer", display_text="open")})


@st.fragment
def attention_vs_shap(db: DbRef, model: ModelRef, user: str, item: str) -> None:
    """SHAP values and rolled-out attention over the same players, then the deletion curves of every ordering."""
    view = panels.computed(cache.deletion, db, model, user, item)
    if view is None:
        return
    expl, curves = view.explanation, view.curves
    no_attention = curves.attention is None  # an external model (core.contract): no weights to show
    both = pd.DataFrame({
        "event": [f"#{lab.step}" if lab.n_events == 1 else f"#{lab.step}–#{lab.last_step}" for lab in expl.labels],
        "shap": expl.values, "attention": np.full(len(expl.labels), np.nan) if no_attention else curves.attention,
    })
    left, right = st.columns(2)
    with left:
        st.plotly_chart(model_charts.bars(both, "event", "shap", "SHAP value per event", categorical=True),
                        key="explain_shap_bars")
        st.caption("How much each past event pushed the score up or down (its Shapley value).")
    if no_attention:
        right.info("Attention is not available for this model; the deletion curves compare SHAP with recency and chance.")
    else:
        with right:
            st.plotly_chart(model_charts.bars(both, "event", "attention", "Attention (rollout) per event",
                                              categorical=True), key="explain_att_bars")
            st.caption("Where the model looked: the share of its attention on each past event, through all layers.")
    if len(both) > 2 and not no_attention:
        rho = both[["shap", "attention"]].rank().corr().iloc[0, 1]
        st.caption(f"Rank correlation between SHAP values and attention over {len(both)} events: {rho:+.2f}. "
                   "Attention says where the model looked; SHAP says what moved the score.")
    frame = curves.frame()
    auc = curves.auc
    frame = frame.assign(ordering=frame["ordering"].map(lambda o: f"{o} (area {auc[o]:.3f})"))
    st.plotly_chart(model_charts.deletion_curves(frame.rename(columns={"normalised": "score", "score": "raw"})),
                    key="explain_deletion")
    st.caption("Each curve removes the explained events in one order (largest SHAP value, most attention, newest, "
               "random) and follows the item's normalised score from its full score (1) down to the base, the score without history (0). The ordering "
               "with the smallest area finds the events that matter soonest.")


@st.fragment
def what_if_editor(db: DbRef, model: ModelRef, user: str, item: str, positions: np.ndarray, recs: pd.DataFrame) -> None:
    """Untick events to remove them, change an event's time to move it, or add an item; the model re-ranks.
    Nothing is written to the database."""
    from core.explain import InsertItem, MoveEvent, RemoveEvents

    history = cache.user_history(db, user)
    window = history.set_index("step").loc[[int(p) for p in positions]].reset_index()
    window = window.sort_values("step", ascending=False)  # the latest events first: the ones an analyst edits
    table = pd.DataFrame({"keep": True, "step": window["step"], "time": window["ts"], "title": window["title"],
                          "item_id": window["item_id"]}).reset_index(drop=True)
    edited = st.data_editor(
        table, hide_index=True, width="stretch", key="explain_whatif_table", disabled=["step", "item_id", "title"],
        column_config={"keep": st.column_config.CheckboxColumn("keep", help="Untick to remove this event"),
                       "time": st.column_config.DatetimeColumn("time (UTC)", help="Change it to move the event")},
    )
    c = st.columns([2, 2, 2])
    search = c[0].text_input("Add an item: search its title", key="explain_whatif_search",
                             placeholder="e.g. star wars").strip()
    found = cache.find_items(db, search, 20) if search else pd.DataFrame(columns=["item_id", "title"])
    labels = {str(i): f"{t or i} ({i})" for i, t in zip(found["item_id"], found["title"], strict=True)}
    added = c[1].selectbox("Item to add", list(labels), index=None, key="explain_whatif_add", format_func=labels.get,
                           placeholder="no match" if search and not labels else "pick a search result") or ""
    if search and not labels:
        st.caption(f"No item title contains {md_text(search)!s}.")
    last = pd.Timestamp(history["ts"].max())
    when = c[2].datetime_input("at (UTC)", value=(last + pd.Timedelta(minutes=1)).to_pydatetime(),
                               key="explain_whatif_when")
    edits: list = []
    removed = tuple(int(s) for s in edited.loc[~edited["keep"], "step"])
    if removed:
        edits.append(RemoveEvents(removed))
    moved = edited[edited["keep"] & (pd.to_datetime(edited["time"]) != pd.to_datetime(table["time"]))]
    edits += [MoveEvent(int(r.step), pd.Timestamp(r.time).to_pydatetime()) for r in moved.itertuples()]
    if added:
        edits.append(InsertItem(added, when))
        if added in set(history["item_id"].astype(str)):
            st.caption(f"Item {md_text(added)} is already in this history; it is added once more at that time.")
    if not edits:
        st.caption("Untick events, change a time or add an item to see how the recommendations would change.")
        return
    result = panels.computed(cache.what_if, db, model, user, tuple(edits), 10, item)
    if result is None:
        return
    after = result.recommendations
    titles = cache.item_lookup(db, tuple(after["item_id"].astype(str)))
    after = after.merge(titles[["item_id", "title"]], on="item_id", how="left")
    before = {r.item_id: r.rank for r in result.before}
    after["rank before"] = [str(before[i]) if i in before else "new" for i in after["item_id"]]  # not in the top 10 before
    st.dataframe(after[["rank", "rank before", "item_id", "title", "score"]], hide_index=True, width="stretch")
    st.caption(f"Item {md_text(item)}: score {result.target_score_before:.3f} → {result.target_score_after:.3f}, "
               f"rank {result.target_rank_before} → {result.target_rank_after} (the database is unchanged).")
