"""Explain one recommendation score of one user with shap's own explainers.

The explained value is one scalar (`core.explain.game`): the logit of a target item (by default the user's current
top-1), or its margin over a fixed foil: the K-th best item other than the target, which is the item ranked K+1
when the target is in the top K, so the margin is positive exactly when the target makes the top-K list.
Three explanations share that scalar and the masking rule:

- **events**: `shap.explainers.Permutation` over the events the model reads — Shapley values, exactly additive
  by construction (every permutation walks from no event to all events and back). In a window of more than
  `recent` events (50), the latest `recent` are players one by one and the older ones are grouped into at most
  `older_groups` periods (`core.explain.hierarchy.explained_features`), each a player of its own;
- **periods**: `shap.explainers.Partition` over every event of the window with the time hierarchy
  (`core.explain.hierarchy`) as its clustering — Owen values, so a session, day, week or month has a value of its
  own (the sum of its events' values);
- **groups**: `shap.explainers.Exact` over the four feature groups (time gaps, event types, categories, context),
  an absent group meaning its embedding is the learned "unknown" one for every event.

Every call checks additivity, |Σφ + base − f(x)| ≤ 1e-4·max(1, |f(x)|), for each explanation it made, and raises
`AdditivityError` naming the one that fails.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shap

from core.checkpoint import LoadedModel
from core.contract import supports
from core.errors import InterestLensError, NotFoundError
from core.explain.game import HistoryGame, PresenceMasker
from core.explain.hierarchy import OLDER_GROUPS, RECENT_EVENTS, build_time_hierarchy, explained_features
from core.explain.history import EventLabel, LabelledHistory
from core.model import FEATURE_GROUPS
from core.recommend import recommend
from core.sequences import make_batch

__all__ = ["AdditivityError", "WindowValue", "HistoryExplanation", "HistoryExplainer", "TOLERANCE", "additivity_error"]

log = logging.getLogger(__name__)

TOLERANCE = 1e-4  # additivity: |Σφ + base − f(x)| ≤ TOLERANCE · max(1, |f(x)|)
DEFAULT_EVENT_EVALS = 1010  # Permutation: 10 antithetic permutations of a 50-event history (2·50+1 evaluations each)
DEFAULT_WINDOW_EVALS = 500  # Partition (shap's default): resolves sessions to months exactly on MovieLens-100k (bench)


class AdditivityError(InterestLensError):
    """An explanation whose values do not add up to f(x) − base."""


@dataclass(frozen=True)
class WindowValue:
    """The value of one period of the history (the sum of its events' Owen values)."""

    level: str  # session, day, week or month
    label: str
    start: dt.datetime  # first event of the window (naive UTC)
    end: dt.datetime  # last event of the window (naive UTC)
    n_events: int
    value: float


@dataclass
class HistoryExplanation:
    """Why the model scores `target` as it does for one history; values are in logit units.

    `events.values[i]` is the Shapley value of player `labels[i]` (oldest first): one event of the model's window,
    or a period of older events (`labels[i].n_events > 1`) whose events are `positions[members[i]]`. The values sum
    to `fx − base`, where `base` is the scalar with no event present (the model's learned empty state).
    """

    user_id: str
    target: str  # item id of the explained item
    target_index: int  # its model index
    foil: str | None  # item id the margin is taken over (None: the target's logit is explained)
    k: int  # the list length K: the foil is the K-th best item other than the target
    base: float  # f with no event present
    fx: float  # f with every event present
    positions: np.ndarray  # [n] positions in the history of the events the model reads (the window)
    labels: list[EventLabel]  # [p] what each player is: an event, or a period of older events
    events: shap.Explanation  # Permutation (Shapley) values over the p players
    periods: shap.Explanation | None  # Partition (Owen) values over the n events, time hierarchy as clustering
    windows: list[WindowValue]  # sessions, days, weeks and months with their values
    groups: shap.Explanation | None  # Exact Shapley values over FEATURE_GROUPS (own base: all groups unknown)
    additivity_error: float  # the largest |Σφ + base − f(x)| over the explanations above
    members: list[np.ndarray] | None = None  # [p] each player's events as indices into `positions` (None: one each)

    def __post_init__(self) -> None:
        if self.members is None:
            self.members = [np.array([i]) for i in range(len(self.labels))]

    @property
    def values(self) -> np.ndarray:
        return np.asarray(self.events.values, dtype=np.float64)

    @property
    def margin(self) -> bool:
        return self.foil is not None


def additivity_error(values: np.ndarray, base: float, fx: float) -> float:
    """|Σφ + base − f(x)|."""
    return float(abs(float(np.sum(values)) + float(base) - float(fx)))


class HistoryExplainer:
    """Built once per model, then called on histories.

    Parameters
    ----------
    loaded
        The model (on the device it will run on: a GPU model evaluates the masked variants on the GPU).
    event_evals
        `max_evals` of the Permutation explainer; raised to 2p+1 (one permutation) when lower.
    window_evals
        `max_evals` of the Partition explainer; the internal nodes it does not reach keep their value and share
        it among their events by size (still exactly additive).
    batch_size
        Masked variants per forward pass, at most (default 64 on a CPU, 4096 on a GPU: small passes stay in the
        CPU's caches).
    seed
        Seed of the permutations (numpy's global generator is restored after each call).
    recent
        Windows of more events than this explain the latest `recent` one by one and group the older ones.
    older_groups
        At most this many periods of older events (`core.explain.hierarchy.explained_features`).
    tokens
        Event slots per forward pass of the present-events path (`core.explain.game`; default 2,048 on a CPU,
        fastest on MovieLens-100k windows of 200 events: the attention of a pass stays in the caches).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        event_evals: int = DEFAULT_EVENT_EVALS,
        window_evals: int = DEFAULT_WINDOW_EVALS,
        batch_size: int | None = None,
        seed: int = 0,
        recent: int = RECENT_EVENTS,
        older_groups: int = OLDER_GROUPS,
        tokens: int | None = None,
    ):
        self.loaded = loaded
        self.event_evals = int(event_evals)
        self.window_evals = int(window_evals)
        gpu = loaded.device.type == "cuda"
        self.batch_size = batch_size or (4096 if gpu else 64)
        self.tokens = tokens or (1 << 22 if gpu else 2048)
        self.seed = seed
        self.recent = int(recent)
        self.older_groups = int(older_groups)

    # ------------------------------------------------------------------------------------------
    def game(self, lh: LabelledHistory, target: str | None = None, margin: bool = False, k: int = 10) -> HistoryGame:
        """The explained scalar for a history: target (default the current top-1) and, with `margin`, the foil."""
        loaded = self.loaded
        if len(lh.window(loaded.config.max_len)) == 0:
            raise NotFoundError(f"User {lh.user_id!r} has no event with an item the model knows, so there is nothing to explain.")
        ranked = recommend(loaded, [lh.history], k=k + 1)[0]
        if target is None:
            t = ranked[0][0]
        else:
            t = loaded.vocab.item_index(str(target))
            if t == 0:
                raise NotFoundError(f"The model does not know item {target!r}.")
        foil = None
        if margin:
            others = [i for i, _ in ranked if i != t]  # the target's competitors, best first
            if len(others) < k:
                raise InterestLensError(f"The catalogue is too small to take a margin over the item ranked {k + 1}.")
            foil = others[k - 1]
        return self._game(lh, t, foil)

    def game_for(self, lh: LabelledHistory, expl: HistoryExplanation) -> HistoryGame:
        """The game an explanation of `lh` was made for (same target, foil and players)."""
        foil = None if expl.foil is None else self.loaded.vocab.item_index(expl.foil)
        return self._game(lh, expl.target_index, foil, expl.members)

    def features(self, lh: LabelledHistory) -> tuple[list[np.ndarray], list[EventLabel]]:
        """The players of the per-event explanation of `lh`: their events (indices into the window) and labels."""
        positions = lh.window(self.loaded.config.max_len)
        spans = explained_features(lh.history.ts[positions], self.recent, self.older_groups)
        members = [np.asarray(s.members, dtype=np.int64) for s in spans]
        labels = [
            lh.labels[int(positions[s.members[0]])] if s.level is None
            else EventLabel.period([lh.labels[int(positions[i])] for i in s.members], s.level, s.label)
            for s in spans
        ]
        return members, labels

    def _game(self, lh: LabelledHistory, target: int, foil: int | None, members: list[np.ndarray] | None = None) -> HistoryGame:
        loaded = self.loaded
        window = lh.window(loaded.config.max_len)
        if len(window) == 0:
            raise NotFoundError(f"User {lh.user_id!r} has no event with an item the model knows, so there is nothing to explain.")
        if members is None:
            members = self.features(lh)[0]
        events = lh.history.slice(int(window[0]), int(window[-1]) + 1)  # make_batch drops the unknown items inside
        batch = make_batch([events], loaded.config.max_len, len(loaded.vocab.context))
        return HistoryGame(loaded.scorer, batch, target, foil, self.batch_size, members, self.tokens)

    def _run(self, make: Callable[[], shap.Explainer], x: np.ndarray, max_evals: int) -> shap.Explanation:
        state = np.random.get_state()  # shap's explainers draw from numpy's global generator
        try:
            np.random.seed(self.seed)
            return make()(x[None, :], max_evals=max_evals, silent=True)[0]
        finally:
            np.random.set_state(state)

    def explain(
        self,
        lh: LabelledHistory,
        target: str | None = None,
        margin: bool = False,
        k: int = 10,
        windows: bool = True,
        groups: bool = True,
    ) -> HistoryExplanation:
        """Explain the target's score for one history (see the module docstring).

        Raises AdditivityError when any explanation's values do not add up to f(x) − base.
        """
        game = self.game(lh, target, margin, k)
        positions = lh.window(self.loaded.config.max_len)
        members, labels = self.features(lh)
        n = game.n
        items = lh.history.items[positions]
        x = np.array([items[m[0]] if len(m) == 1 else 0 for m in members], dtype=np.float64)  # shap's sample row
        fx = game.full()
        what = f"item {self.loaded.vocab.item_id(game.target)!r} for user {lh.user_id!r}"

        events = self._run(
            lambda: shap.explainers.Permutation(
                game.events, PresenceMasker(n, None, self.batch_size), feature_names=[lab.text() for lab in labels],
                seed=self.seed,
            ),
            x,
            max(self.event_evals, 2 * n + 1),
        )
        errors = [self._check("per-event", what, events.values, events.base_values, fx)]
        periods, window_values = None, []
        if windows:
            periods, window_values, err = self._periods(game, lh, fx, what)
            errors.append(err)
        group_expl = None
        if groups and supports(self.loaded.scorer, "states"):  # feature groups are our model's inputs only
            G = len(FEATURE_GROUPS)
            group_expl = self._run(
                lambda: shap.explainers.Exact(game.groups, PresenceMasker(G, None, self.batch_size), feature_names=list(FEATURE_GROUPS)),
                np.ones(G),
                2**G,
            )
            errors.append(self._check("feature-group", what, group_expl.values, group_expl.base_values, fx))
        vocab = self.loaded.vocab
        return HistoryExplanation(
            user_id=lh.user_id,
            target=vocab.item_id(game.target),
            target_index=game.target,
            foil=None if game.foil is None else vocab.item_id(game.foil),
            k=k,
            base=float(events.base_values),
            fx=fx,
            positions=positions,
            labels=labels,
            events=events,
            periods=periods,
            windows=window_values,
            groups=group_expl,
            additivity_error=max(errors),
            members=members,
        )

    def periods(
        self, lh: LabelledHistory, target: str | None = None, margin: bool = False, k: int = 10
    ) -> tuple[shap.Explanation, list[WindowValue], float]:
        """Only the periods part of `explain` (same target and defaults): the Owen values over the window's events,
        the windows' values and the additivity error. Raises AdditivityError as `explain` does."""
        game = self.game(lh, target, margin, k)
        what = f"item {self.loaded.vocab.item_id(game.target)!r} for user {lh.user_id!r}"
        return self._periods(game, lh, game.full(), what)

    def _periods(
        self, game: HistoryGame, lh: LabelledHistory, fx: float, what: str
    ) -> tuple[shap.Explanation, list[WindowValue], float]:
        positions = lh.window(self.loaded.config.max_len)
        hierarchy = build_time_hierarchy(lh.history.ts[positions])
        m = game.n_events
        periods = self._run(
            lambda: shap.explainers.Partition(
                game.event_values, PresenceMasker(m, hierarchy.linkage, self.batch_size),
                feature_names=[lh.labels[int(p)].text() for p in positions],
            ),
            lh.history.items[positions].astype(np.float64),
            max(self.window_evals, 3),
        )
        err = self._check("per-period", what, periods.values, periods.base_values, fx)
        pv = np.asarray(periods.values, dtype=np.float64)
        window_values = [
            WindowValue(w.level, w.label, w.start, w.end, len(w.members), float(pv[list(w.members)].sum()))
            for w in hierarchy.windows
        ]
        return periods, window_values, err

    @staticmethod
    def _check(name: str, what: str, values: np.ndarray, base: float, fx: float) -> float:
        err = additivity_error(values, base, fx)
        if not err <= TOLERANCE * max(1.0, abs(fx)):
            raise AdditivityError(
                f"The {name} explanation of {what} is not additive: its values sum to {float(np.sum(values)):.6g} "
                f"but f(x) − base is {fx - float(base):.6g} (error {err:.2e})."
            )
        return err
