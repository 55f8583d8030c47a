"""Communities of the friend graph (networkx's Louvain method, seeded), and each user's dominant category now.

Communities are a cohort definition for the app: users grouped by who they know rather than by attributes.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import networkx as nx
import pandas as pd

from core.store.edges import EDGES_TABLE, edge_count

__all__ = ["graph_communities", "dominant_categories", "members_category_share"]


def graph_communities(con: duckdb.DuckDBPyConnection, seed: int = 0, resolution: float = 1.0) -> pd.DataFrame:
    """user_id, community (0 = the largest) for every user named by an edge; empty without edges.

    Directed edges count as undirected ties here (a community is who knows whom); weights are kept. Louvain is
    seeded, so the same graph gives the same communities.
    """
    if edge_count(con) == 0:
        return pd.DataFrame({"user_id": pd.Series([], dtype=object), "community": pd.Series([], dtype="int64")})
    edges = con.execute(f"SELECT src_user, dst_user, weight FROM {EDGES_TABLE}").fetchall()
    g = nx.Graph()
    g.add_weighted_edges_from(edges)
    parts = nx.community.louvain_communities(g, weight="weight", resolution=resolution, seed=seed)
    parts = sorted(parts, key=lambda p: (-len(p), min(p)))
    rows = [(u, k) for k, part in enumerate(parts) for u in sorted(part)]
    return pd.DataFrame(rows, columns=["user_id", "community"]).sort_values("user_id", ignore_index=True)


def dominant_categories(con: duckdb.DuckDBPyConnection, users: Sequence[str], last: int = 20) -> dict[str, str | None]:
    """Each user's most frequent category over their latest `last` events (an item's weight split over its
    categories; ties: the name first in order). None for a user without categorised events."""
    ids = [str(u) for u in users]
    out: dict[str, str | None] = {u: None for u in ids}
    if not ids:
        return out
    rows = con.execute(
        """WITH recent AS (
               SELECT user_id, item_id, row_number() OVER (PARTITION BY user_id ORDER BY ts DESC, run_id DESC,
                      seq DESC) AS r FROM events WHERE list_contains(?::VARCHAR[], user_id))
           SELECT user_id, c FROM (
               SELECT r.user_id, unnest(i.categories) AS c, 1.0 / len(i.categories) AS w
               FROM recent r JOIN items i USING (item_id) WHERE r.r <= ? AND len(i.categories) > 0)
           GROUP BY user_id, c QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY sum(w) DESC, c) = 1""",
        [ids, int(last)],
    ).fetchall()
    out.update({str(u): str(c) for u, c in rows})
    return out


def members_category_share(con: duckdb.DuckDBPyConnection, users: Sequence[str], period: str = "month") -> pd.DataFrame:
    """Observed category share per calendar period over the events of `users` (a graph community), as
    `core.store.views.cohort_category_share` gives it for an attribute cohort: period, category, weight, share."""
    if period not in ("week", "month", "quarter", "year"):
        raise ValueError(f"Unknown period {period!r}.")
    return con.execute(
        """WITH w AS (
               SELECT date_trunc(?, e.ts) AS period, unnest(i.categories) AS category, 1.0 / len(i.categories) AS weight
               FROM events e JOIN items i USING (item_id)
               WHERE len(i.categories) > 0 AND list_contains(?::VARCHAR[], e.user_id))
           SELECT period, category, sum(weight) AS weight,
                  sum(weight) / sum(sum(weight)) OVER (PARTITION BY period) AS share
           FROM w GROUP BY 1, 2 ORDER BY 1, 2""",
        [period, [str(u) for u in users]],
    ).df()
