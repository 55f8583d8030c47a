"""Interest trajectories for users of a trained model: built once with the model, then called on users."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import duckdb
import numpy as np
import pandas as pd

from core.checkpoint import LoadedModel
from core.errors import NotFoundError, SettingError, UserInputError
from core.friends.context import SocialContext, user_context, users_context
from core.sequences import History, Sequences
from core.store import user_history
from core.trajectory.changes import MIN_DIVERGENCE, PENALTY_SCALE, detect_change_points
from core.trajectory.engine import StepOutputs, encode_steps
from core.trajectory.forecast import InterestForecast
from core.trajectory.grid_changes import ChangeConfig, detect_changes
from core.trajectory.horizons import HorizonConfig, decompose
from core.trajectory.measures import decayed_histogram, drift_series
from core.trajectory.result import Trajectory

__all__ = ["TrajectoryConfig", "TrajectoryAnalyzer"]

log = logging.getLogger(__name__)

# What change points are found on: one of the model's trajectories, the baseline, or the categories of the events
# themselves (each event's item→category weights, one row per step).
Signal = Literal["distribution", "long_term", "short_term", "baseline", "events"]


@dataclass(frozen=True)
class TrajectoryConfig:
    window: int = 5  # drift compares the interest at step t with the one `window` steps earlier
    half_life: float = 10.0  # baseline: events after which a past event's weight has halved
    stride: int | None = None  # long histories: steps between the ends of overlapping windows (None: max_len // 2)
    change_signal: Signal = "events"  # what change points are found on (see `Signal`; events: best F1 in bench/)
    penalty_scale: float = PENALTY_SCALE  # multiplier of the noise-scaled PELT penalty (higher = fewer changes)
    min_segment: int = 10  # fewest steps between two change points (a change must last this long)
    min_divergence: float = MIN_DIVERGENCE  # smallest JS (bits) between the mixes either side of a change
    batch_size: int = 256  # history windows per forward pass
    horizons: HorizonConfig = field(default_factory=HorizonConfig)  # the long-term / short-term decomposition

    @property
    def changes(self) -> ChangeConfig:
        """The settings of the change points on the time grid (the events signal): its own tuned penalty and
        divergence rule (`ChangeConfig`); `penalty_scale` and `min_divergence` above apply to the other signals."""
        return ChangeConfig(min_segment=self.min_segment)

    def __post_init__(self) -> None:
        if self.window < 1:
            raise SettingError("{window} must be at least 1, not {value}.", "window", value=self.window)
        if not self.half_life > 0:
            raise SettingError("{half_life} must be positive, not {value}.", "half_life", value=self.half_life)
        if self.stride is not None and self.stride < 1:
            raise UserInputError("The window stride must be at least 1.")
        if self.min_segment < 1:
            raise UserInputError("The minimum segment length must be at least 1.")
        if not 0 <= self.min_divergence <= 1:
            raise UserInputError("The minimum divergence of a change must be between 0 and 1 bit.")


class TrajectoryAnalyzer:
    """Per-step interests, baseline, drift and change points for users of one model.

    Parameters
    ----------
    loaded
        A model from `core.checkpoint.load_checkpoint` (its vocabulary says what categories mean).
    config
        Drift window, baseline half-life, change-point settings.
    """

    def __init__(self, loaded: LoadedModel, config: TrajectoryConfig | None = None):
        self.loaded = loaded
        self.config = config or TrajectoryConfig()
        self.categories = list(loaded.vocab.categories)
        if not self.categories:
            raise UserInputError("This model's data has no item categories, so there is no interest to trace.")
        self.item_categories = loaded.vocab.category_weights()  # [I+1, C]
        self._w = self.item_categories.numpy().astype(np.float64)
        saved = loaded.card.get("interest", {}).get("forecast_params")
        # the calibrated forecast fitted after training (None for models trained before it existed: their
        # trajectories show the raw item-softmax marginal, as they always did)
        self.forecast = InterestForecast.from_dict(saved) if saved else None
        if self.forecast is not None:
            self.prior = np.asarray(self.forecast.prior, np.float64)
        else:  # the catalogue's category shares, add-one smoothed, when the training frequencies were not kept
            counts = self._w.sum(axis=0) + 1.0
            self.prior = counts / counts.sum()
        self._context = {k: {v: n + 1 for n, v in enumerate(vals)} for k, vals in loaded.vocab.context.items()}

    def outputs(self, histories: Sequence[History], components: bool = True, friends=None) -> list[StepOutputs]:
        """The model's per-step distributions and gates for each history (batched forward passes); without
        `components`, only the gated interest is scored. Trajectories need only the gated one: their long-term
        and short-term series come from `core.trajectory.horizons`. `friends`: the social hook of `encode_steps`."""
        return encode_steps(
            self.loaded.scorer, histories, self.item_categories, self.config.stride, self.config.batch_size, components,
            friends,
        )

    def build(self, user_id: str, history: History, steps: pd.DataFrame, out: StepOutputs | None = None) -> Trajectory:
        """The trajectory of one history whose events are described by `steps` (index, time, item, title)."""
        cfg = self.config
        out = out if out is not None else self.outputs([history], components=False)[0]
        events = self.event_weights(history)
        baseline = decayed_histogram(events, cfg.half_life)
        forecast = (out.distribution if self.forecast is None
                    else self.forecast.apply(self.forecast.model_input(out.distribution, out.head), events,
                                             np.asarray(history.ts, np.int64)))
        hz = decompose(events, self.prior, cfg.horizons)
        if cfg.change_signal == "events":  # on the time grid: a bulk session is one moment (grid_changes.py)
            change_points = detect_changes(events, steps["time"].to_numpy(dtype="datetime64[s]"), cfg.changes).steps
        else:
            series = {"baseline": baseline, "distribution": forecast, "long_term": hz.long_term,
                      "short_term": hz.short_term}
            change_points = detect_change_points(
                series[cfg.change_signal], min_size=cfg.min_segment, scale=cfg.penalty_scale,
                min_divergence=cfg.min_divergence,
            )
        return Trajectory(
            user_id=str(user_id),
            steps=steps,
            categories=self.categories,
            distribution=forecast,
            long_term=hz.long_term,
            short_term=hz.short_term,
            baseline=baseline,
            gate=1.0 - hz.short_weight,
            drift=drift_series(forecast, cfg.window),
            change_points=change_points,
            window=cfg.window,
            half_life=cfg.half_life,
            events=events,
            short_weight=hz.short_weight,
            model_distribution=out.distribution,
            model_gate=out.gate,
        )

    def event_weights(self, history: History) -> np.ndarray:
        """[n, C] the category weights of each event's item; an item the model does not know (index 0) weighs
        nothing."""
        return self._w[history.items]

    def stored(self, user_id: str, history: History, steps: pd.DataFrame, series: dict[str, np.ndarray],
               change_points: list[int]) -> Trajectory:
        """The trajectory `build` gives for this history, from its costly parts computed earlier (the views
        sidecar, `core.trajectory.sidecar`): `series` holds distribution, long_term, short_term, baseline,
        model_distribution ([n, C]), short_weight and model_gate ([n]); events, gate and drift are derived here
        exactly as `build` derives them."""
        cfg = self.config
        return Trajectory(
            user_id=str(user_id),
            steps=steps,
            categories=self.categories,
            distribution=series["distribution"],
            long_term=series["long_term"],
            short_term=series["short_term"],
            baseline=series["baseline"],
            gate=1.0 - series["short_weight"],
            drift=drift_series(series["distribution"], cfg.window),
            change_points=list(change_points),
            window=cfg.window,
            half_life=cfg.half_life,
            events=self.event_weights(history),
            short_weight=series["short_weight"],
            model_distribution=series["model_distribution"],
            model_gate=series["model_gate"],
        )

    def user(self, con: duckdb.DuckDBPyConnection, user_id: str) -> Trajectory:
        """One user's full trajectory (every event of their history). NotFoundError for an unknown user."""
        df = user_history(con, str(user_id))
        if df.empty:
            raise NotFoundError(f"User {user_id!r} has no events, so there is no trajectory to show.")
        history = self.history_of(df)
        steps = pd.DataFrame(
            {"index": np.arange(len(df)), "time": df["ts"], "item": df["item_id"], "title": df["title"]}
        )
        return self.build(str(user_id), history, steps, self.social_outputs(con, str(user_id), history))

    @property
    def social(self) -> bool:
        """Whether the model has the social branch (its outputs then read friends)."""
        return getattr(self.loaded.model, "social", None) is not None

    def friends_hook(self, con: duckdb.DuckDBPyConnection, user_id: str,
                     context: tuple[SocialContext, int] | None = None):  # fmt: skip
        """The `encode_steps` / `core.recommend.recommend` hook giving `user_id`'s windows their friends
        (core.friends.context.user_context, or `context`: that user's context and row built already), or None
        for a model without the social branch."""
        if not self.social:
            return None
        ctx, row = context if context is not None else user_context(con, self.loaded.model, self.loaded.vocab,
                                                                     str(user_id))  # fmt: skip
        return ctx.history_hook([row])

    def social_outputs(self, con: duckdb.DuckDBPyConnection, user_id: str, history: History,
                       hook=None) -> StepOutputs | None:  # fmt: skip
        """A social model's per-step outputs for `user_id`'s `history` read with the user's friends, as the model
        scored (`friends_hook`, or the one given); None for a model without the social branch."""
        hook = hook if hook is not None else self.friends_hook(con, user_id)
        if hook is None:
            return None
        return self.outputs([history], components=False, friends=hook)[0]

    def social_context(self, con: duckdb.DuckDBPyConnection, user_ids: Sequence[str]) -> tuple[SocialContext, list[int]] | None:
        """For batch trajectories of a social model: the users' and their friends' sequences, graph and timelines,
        and the users' rows in them (core.friends.context.users_context); None for a model without the branch."""
        if not self.social:
            return None
        return users_context(con, self.loaded.model, self.loaded.vocab, user_ids)

    def history_of(self, events: pd.DataFrame) -> History:
        """A `user_history` frame in model indices (the same mapping as `load_sequences`, without a second query)."""
        vocab = self.loaded.vocab
        ts = events["ts"].to_numpy(dtype="datetime64[s]").astype(np.int64)
        types = np.array([vocab.event_type_index(t) for t in events["event_type"]], dtype=np.int64)
        maps = [c if isinstance(c, dict) else {} for c in events["context"]]
        ctx = np.zeros((len(events), len(self._context)), np.int64)  # [n,K]
        for j, (key, index) in enumerate(self._context.items()):
            ctx[:, j] = [index.get(str(m[key]), 0) if m.get(key) is not None else 0 for m in maps]
        return History.from_arrays(vocab.item_indices(events["item_id"]), ts, types, ctx)

    def trajectories(
        self, seqs: Sequences, rows: Sequence[int] | None = None, chunk: int = 1024, components: bool = True,
        social: SocialContext | None = None,
    ) -> Iterator[Trajectory]:
        """Trajectories of many users (all by default), `chunk` users per batch of forward passes.

        Steps carry times and item ids only (no titles): this is the path for batch jobs and cohorts.
        `components` is kept for callers that passed it; the long/short series no longer need the model's
        component scores, so it changes nothing. `social`: the friends of a social model (`social_context`, or
        `core.friends.context.social_context` for all users), over these same `seqs`; without it a social model is
        read without friends.
        """
        rows = list(range(seqs.n_users)) if rows is None else [int(r) for r in rows]
        vocab = self.loaded.vocab
        for lo in range(0, len(rows), chunk):
            part = rows[lo : lo + chunk]
            histories = [seqs.history(r) for r in part]
            hook = social.history_hook(part) if social is not None and self.social else None
            for r, h, out in zip(part, histories, self.outputs(histories, components=False, friends=hook), strict=True):
                steps = pd.DataFrame(
                    {
                        "index": np.arange(len(h)),
                        "time": h.ts.astype("datetime64[s]"),
                        "item": [vocab.item_id(i) if i > 0 else "" for i in h.items],
                        "title": None,
                    }
                )
                yield self.build(str(seqs.user_ids[r]), h, steps, out)
