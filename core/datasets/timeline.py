"""When each synthetic event happens: sessions minutes apart inside, days apart between, over ~1 year."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Timeline", "make_timeline", "START", "is_weekend"]

START = np.datetime64("2025-01-01T00:00:00", "s")  # the synthetic year starts here (UTC)
_YEAR_S = 365 * 86400
_SESSION_MEAN = 6.0  # events per session, geometric
_WITHIN_MEAN_S = 120.0  # seconds between events in a session
_MIN_GAP_S = 1800  # at least half an hour between sessions


@dataclass
class Timeline:
    """Per event, in user-major order (user 0's events in time order, then user 1's …)."""

    rows: np.ndarray  # [N] int64 user row
    idx: np.ndarray  # [N] int64 index of the event in the user's history
    ts: np.ndarray  # [N] int64 unix seconds, strictly increasing per user
    weekend: np.ndarray  # [N] bool, Saturday or Sunday (UTC)
    device: np.ndarray  # [N] int64 index into DEVICES, constant within a session


def is_weekend(ts: np.ndarray) -> np.ndarray:
    """True for unix-second times on a Saturday or Sunday (UTC). 1970-01-01 was a Thursday."""
    return (np.floor_divide(ts, 86400) + 3) % 7 >= 5


def make_timeline(counts: np.ndarray, device_p: np.ndarray, rng: np.random.Generator) -> Timeline:
    """Timestamps and session devices for `counts[u]` events of each user u."""
    n_users = len(counts)
    n = int(counts.sum())
    off = np.concatenate([[0], np.cumsum(counts)])
    rows = np.repeat(np.arange(n_users), counts)
    idx = np.arange(n) - off[rows]
    first = idx == 0
    new_session = first | (rng.random(n) < 1.0 / _SESSION_MEAN)
    # session gaps: Exp(1) shares of the user's active span, so every history spans 30–100 % of the year
    span = rng.uniform(0.3, 1.0, n_users) * _YEAR_S
    begin = rng.uniform(0.0, 1.0, n_users) * (_YEAR_S - span)
    raw = np.where(new_session & ~first, rng.exponential(1.0, n), 0.0)
    total = np.bincount(rows, weights=raw, minlength=n_users)
    gap = raw / np.maximum(total[rows], 1e-12) * span[rows]
    within = 1.0 + rng.exponential(_WITHIN_MEAN_S, n)
    inc = np.where(first, begin[rows], np.where(new_session, np.maximum(gap, _MIN_GAP_S), within))
    inc = np.floor(inc).astype(np.int64)
    inc[~first] = np.maximum(inc[~first], 1)  # strictly increasing per user
    csum = np.cumsum(inc)
    ts = csum - (csum[off[:-1]] - inc[off[:-1]])[rows] + (START - np.datetime64(0, "s")).astype(np.int64)
    session = np.cumsum(new_session) - 1
    s_rows = rows[new_session]
    cdf = np.cumsum(device_p, axis=1)[s_rows]  # [S, 3]
    s_dev = (rng.random(len(s_rows))[:, None] > cdf).sum(axis=1).clip(max=device_p.shape[1] - 1)
    return Timeline(rows=rows, idx=idx, ts=ts, weekend=is_weekend(ts), device=s_dev[session])
