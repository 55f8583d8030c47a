"""bench/pool_hits.py's replay: load_ws's user order (one shuffled cycle shared by the sessions) through a
least-recently-used pool bounded by bytes."""

from __future__ import annotations

from bench.pool_hits import replay


def _users(n: int) -> tuple[dict[str, int], dict[str, int]]:
    counts = {f"u{i:03d}": 10 + i for i in range(n)}  # distinct event counts: Users never skips a user
    return {u: 100 for u in counts}, counts


def test_a_pool_smaller_than_the_cycle_never_holds_the_next_user():
    sizes, counts = _users(50)
    # 49 of 50 users fit: in a cyclic order the LRU has always just dropped the user asked next
    assert replay(sizes, counts, 49 * 100, [10], per_session=20) == {10: 0.0}


def test_a_pool_that_holds_every_user_misses_only_the_first_cycle():
    sizes, counts = _users(50)
    out = replay(sizes, counts, 50 * 100, [10, 20], per_session=20)
    assert out[10] == 1 - 50 / 200  # 200 switches, the first 50 are the first visits
    assert out[20] == 1.0  # the pool is kept across the series, as one server keeps it
