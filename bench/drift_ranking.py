"""Does "interests changed most" rank by history length? Spearman between each ranking score and events per user.

    .venv/bin/python bench/drift_ranking.py --db data/ml.duckdb --model data/models/ml --json

Runs the drift job (`core.trajectory.build_drift`, which writes drift.parquet beside the model), then reports:
- Spearman ρ between the number of events and the old score (`total_drift`: the model's drift summed over every
  step) and the new one (`largest_change`: the contrast at the user's largest change point on the time grid), over
  all users and over the users with at least one change (a user without one scores 0, a tie);
- how many users the old event-by-event detector (`detect_change_points` on the events) gives two or more change
  points inside one session, how many the time-grid detector's defaults do (`detect_changes`: changes are
  `min_segment` events apart and a bulk session is one moment; since the fifth session two changes may share a long
  sitting), the closest two of one user in minutes, and how many histories are mostly bulk entries;
- the top 10 users by the new score, with their shift in words.
Written to bench/results/drift_ranking-<database name>.json with the 1-minute load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Results  # noqa: E402
from core.checkpoint import load_checkpoint  # noqa: E402
from core.sequences import load_sequences  # noqa: E402
from core.store import connect_read  # noqa: E402
from core.trajectory import build_drift, detect_change_points, detect_changes, sessions  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    loaded = load_checkpoint(args.model)
    res = Results("drift_ranking", Path(args.db).stem, resume=False)
    batch = build_drift(args.db, loaded)
    df = batch.table
    n = df["n_events"].to_numpy(float)
    rho_old = spearmanr(df["total_drift"], n).statistic
    rho_new = spearmanr(df["largest_change"], n).statistic
    has = df["largest_change"].to_numpy() > 0
    rho_new_changed = spearmanr(df["largest_change"][has], n[has]).statistic if has.sum() > 2 else None
    w = loaded.vocab.category_weights().numpy().astype(np.float64)
    with connect_read(args.db) as con:
        seqs = load_sequences(con, loaded.vocab)
    crowded, crowded_after, closest_minutes = 0, 0, float("inf")
    for r in range(seqs.n_users):
        h = seqs.history(r)
        old = detect_change_points(w[h.items])
        if old and np.bincount(sessions(h.ts)[old]).max() >= 2:
            crowded += 1
        secs = np.asarray(h.ts).astype("datetime64[s]").astype(np.int64)
        new = detect_changes(w[h.items], secs).steps  # the product defaults, as the drift job runs them
        if new and np.bincount(sessions(h.ts)[new]).max() >= 2:
            crowded_after += 1
        if len(new) >= 2:
            closest_minutes = min(closest_minutes, float(np.diff(secs[new]).min()) / 60)
    top = df.head(10)
    figures = {
        "users": int(len(df)),
        "spearman_events_vs_total_drift_before": float(rho_old),
        "spearman_events_vs_largest_change_after": float(rho_new),
        "spearman_events_vs_largest_change_users_with_a_change": None if rho_new_changed is None else float(rho_new_changed),
        "users_with_a_change_after": int(has.sum()),
        "users_with_2plus_old_change_points_in_one_session": crowded,
        "users_with_2plus_change_points_in_one_session_after": crowded_after,
        "closest_two_change_points_of_one_user_minutes_after": None if closest_minutes == float("inf") else closest_minutes,
        "users_mostly_bulk": int(df["mostly_bulk"].sum()),
        "top10": [
            {"user_id": str(u), "events": int(e), "largest_change": round(float(s), 3), "shift": str(t)}
            for u, e, s, t in zip(top["user_id"], top["n_events"], top["largest_change"], top["shift"], strict=True)
        ],
        "drift_job_seconds": batch.seconds,
        "load_1min": os.getloadavg()[0],
    }
    res.stage("ranking", figures)
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
