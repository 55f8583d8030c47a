"""Change points by Bayesian model comparison (core.trajectory.bayes_changes, `ChangeConfig.method = "bayes"`):
the exact segmentation, and the weekly-rhythm and gradual-drift alternatives that keep false changes away."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from core.trajectory import ChangeConfig, detect_changes
from core.trajectory.bayes_changes import best_segmentations, ramp_evidence, segment_evidence, weekly_evidence
from core.trajectory.change_posterior import change_probability, cut_marginals, evidences, pick
from core.trajectory.coarse_evidence import (
    coarse_ramp_scores,
    coarse_segments,
    coarse_weekly,
    dirichlet_prior,
)

T0 = np.datetime64("2025-01-06T09:00:00", "s")  # a Monday
DAY = 86_400


def test_segment_evidence_is_the_dirichlet_multinomial_marginal_likelihood():
    # two events of category 0 then one of category 1 under a uniform Dirichlet(1, 1): the sequence has probability
    # 1/2 · 2/3 · 1/4 = 1/12 (Pólya urn)
    evidence, events = segment_evidence(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), 1.0)
    assert float(evidence(np.array([0]), np.array([3]))[0]) == pytest.approx(np.log(1 / 12))
    assert events.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_best_segmentations_match_brute_force():
    rng = np.random.default_rng(3)
    counts = np.eye(3)[rng.integers(0, 3, 14)] + 0.0
    counts[5:9] = np.eye(3)[2]  # a block the best 2-change split should cut out
    evidence, ev = segment_evidence(counts, 0.5)
    found = best_segmentations(counts, 0.5, min_events=3, max_changes=2)
    for k in range(3):
        best = -np.inf
        for cuts in itertools.combinations(range(1, 14), k):
            b = [0, *cuts, 14]
            if min(np.diff(b)) < 3:
                continue
            best = max(best, float(evidence(np.array(b[:-1]), np.array(b[1:])).sum()))
        assert found[k][0] == pytest.approx(best)
        b = [0, *found[k][1], 14]
        assert float(evidence(np.array(b[:-1]), np.array(b[1:])).sum()) == pytest.approx(best)


def test_a_weekly_rhythm_is_not_reported_as_changes():
    # one session a day for 12 weeks: category 0 on weekdays, category 1 at weekends (UTC), 3 events each
    days = np.repeat(np.arange(84), 3)
    ts = T0 + (days * DAY + np.tile([0, 60, 120], 84)).astype("timedelta64[s]")
    weekend = (days % 7) >= 5  # T0 is a Monday
    rng = np.random.default_rng(0)
    cats = np.where(weekend, rng.choice(3, len(days), p=[0.1, 0.85, 0.05]), rng.choice(3, len(days), p=[0.85, 0.1, 0.05]))
    events = np.eye(3)[cats]
    options = best_segmentations(np.add.reduceat(events, np.arange(len(events))), 0.5, 10, 4)
    assert weekly_evidence(events, ts, 0.5) > max(s for s, _ in options) + 20  # the rhythm explains it far better
    assert detect_changes(events, ts).steps == []


def test_a_gradual_drift_is_not_reported_as_a_change_and_a_switch_is():
    # 300 events, one every two days: all A, then C's share rises linearly from event 30 to event 270
    # (deterministically, by a low-discrepancy sequence), so a ramp explains it and a staircase of steps does not
    n = 300
    ts = T0 + (np.arange(n) * 2 * DAY).astype("timedelta64[s]")
    share = np.clip((np.arange(n) - 30) / 240, 0, 1)
    drift = np.eye(3)[np.where((np.arange(n) * 0.6180339887) % 1.0 < share, 2, 0)]
    touched = drift[:, [0, 2]]  # the detector scores the categories the user touched
    best_steps = max(s for s, _ in best_segmentations(touched, 0.5, 10, 4))
    assert ramp_evidence(touched, 0.5) > best_steps + ChangeConfig().ramp_penalty
    cfg = ChangeConfig(min_contrast=0.0)  # the contrast floor alone would also hide this slow drift
    assert detect_changes(drift, ts, cfg).steps == []
    # the third session's detector ("shared"): without its ramp the drift would be cut into a staircase
    shared = ChangeConfig(evidence="shared", alpha=0.5, weekly_penalty=0.0, ramp_penalty=0.0, change_penalty=-1.0,
                          min_contrast=0.0, one_per_session=True)
    assert detect_changes(drift, ts, shared).steps == []
    assert len(detect_changes(drift, ts, replace(shared, ramp_penalty=float("inf"))).steps) >= 2
    # today's ("one_of"): the ramp takes nearly all the posterior mass from the change models
    _, post = change_probability(drift[:, [0, 2]], ts, np.arange(n), 0.2, 10, 4, -0.5, 0.0, 1.0, 0.1)
    assert post[5] > 0.9
    # a sudden switch between two mixtures at event 80 of 160: one change, where it happened
    rng = np.random.default_rng(1)
    ts = ts[:160]
    switch = np.eye(3)[[rng.choice(3, p=[0.85, 0.1, 0.05] if i < 80 else [0.05, 0.1, 0.85]) for i in range(160)]]
    assert detect_changes(switch, ts).steps == [pytest.approx(80, abs=3)]


def test_config_refuses_an_unknown_method():
    with pytest.raises(ValueError, match="method"):
        ChangeConfig(method="magic")
    with pytest.raises(ValueError, match="alpha"):
        ChangeConfig(alpha=0.0)


def test_a_long_history_searched_in_blocks_finds_the_changes_of_the_exact_search():
    from core.trajectory.bayes_changes import bayes_changes

    rng = np.random.default_rng(4)
    n = 600
    mixes = [[0.8, 0.15, 0.05], [0.1, 0.15, 0.75], [0.2, 0.7, 0.1]]
    which = np.searchsorted([233, 411], np.arange(n), side="right")  # switches at events 233 and 411
    x = np.eye(3)[[rng.choice(3, p=mixes[k]) for k in which]]
    ts = T0 + (np.arange(n) * DAY).astype("timedelta64[s]")
    starts = np.arange(n)
    args = (x, ts, starts, 0.5, 10, 4, 0.0, 5.0)
    exact = bayes_changes(*args, max_rows=n)
    assert [s for s in exact if abs(s - 233) <= 3] and [s for s in exact if abs(s - 411) <= 3]
    # blocks of 6 events, then refined to the moment: the two planted switches where the exact search puts them
    # (both searches also mark weaker fluctuations in this draw, e.g. at event 70)
    blocks = bayes_changes(*args, max_rows=100)
    for planted in (233, 411):
        assert [s for s in blocks if abs(s - planted) <= 3] == [s for s in exact if abs(s - planted) <= 3]
    assert all(b - a >= 10 for a, b in zip([0, *blocks], [*blocks, n], strict=True))  # segment sizes kept


def test_share_tags_gives_a_multi_category_item_to_the_category_its_neighbours_chose():
    from core.trajectory.bayes_changes import share_tags

    # ten events of category 0, then an item tagged {0, 1} (split equally), then ten more of category 0
    x = np.zeros((21, 3))
    x[:, 0] = 1.0
    x[10] = [0.5, 0.5, 0.0]
    shared = share_tags(x, window=5, prior=1.0)
    # neighbours: ten events of category 0 (five each side); the overall mix (Dirichlet ½): (20.5 + ½, ½ + ½, ½) / 22.5
    w0, w1 = 10 + 21 / 22.5, 1.0 / 22.5
    assert shared[10] == pytest.approx([w0 / (w0 + w1), w1 / (w0 + w1), 0.0])
    assert np.array_equal(shared[:10], x[:10])  # a single-category item is unchanged
    assert np.allclose(shared.sum(axis=1), x.sum(axis=1))  # each event still weighs what it weighed
    assert np.array_equal(share_tags(x, window=0, prior=1.0), x)  # window 0: the equal split
    x[3] = 0.0  # an item without a category stays without one
    assert share_tags(x, window=5, prior=1.0)[3].tolist() == [0.0, 0.0, 0.0]


def test_summed_evidence_is_the_mean_over_every_cut_set_and_keeps_the_best_positions():
    rng = np.random.default_rng(5)
    counts = np.eye(3)[rng.integers(0, 3, 13)] + 0.0
    counts[6:] = np.eye(3)[1]
    evidence, _ = segment_evidence(counts, 0.5)
    found = best_segmentations(counts, 0.5, min_events=3, max_changes=2, summed=True)
    best = best_segmentations(counts, 0.5, min_events=3, max_changes=2)
    for k in range(3):
        values = []
        for cuts in itertools.combinations(range(1, 13), k):
            b = [0, *cuts, 13]
            if min(np.diff(b)) >= 3:
                values.append(float(evidence(np.array(b[:-1]), np.array(b[1:])).sum()))
        assert found[k][0] == pytest.approx(np.log(np.mean(np.exp(values))))
        assert found[k][1] == best[k][1]
        assert found[k][0] < best[k][0] or k == 0  # averaging charges a change for the positions it could take


def test_summed_ramp_evidence_lies_between_the_best_ramp_and_the_best_less_the_grid_size():
    rng = np.random.default_rng(6)
    share = np.clip((np.arange(120) - 20) / 80, 0, 1)
    x = np.eye(2)[(rng.random(120) < share).astype(int)]
    best, mean = ramp_evidence(x, 0.5), ramp_evidence(x, 0.5, summed=True)
    pairs = sum(len(range(s + 6, 116, 3)) for s in range(5, 110, 3))  # the (s, e) grid: step (120 - 10) // 30 = 3
    assert best - np.log(pairs) < mean < best


def test_a_switch_seen_through_multi_category_items_is_found_where_it_happened():
    # 120 events, one a day: true category 0 before event 60, 1 from it on; every item also carries one of four
    # other categories at random, so the equal split gives the true category only half of each event's weight
    rng = np.random.default_rng(7)
    n = 120
    true = np.where(np.arange(n) < 60, 0, 1)
    x = np.zeros((n, 6))
    x[np.arange(n), true] = 0.5
    x[np.arange(n), rng.integers(2, 6, n)] = 0.5
    ts = T0 + (np.arange(n) * DAY).astype("timedelta64[s]")
    from core.trajectory.bayes_changes import share_tags

    shared = share_tags(x, window=5, prior=1.0)
    assert shared[np.arange(n), true].mean() > 0.75  # the equal split gives it 0.5: the neighbours know better
    assert detect_changes(x, ts).steps == [pytest.approx(60, abs=3)]


def test_config_checks_the_tag_sharing_settings():
    with pytest.raises(ValueError, match="tag_window"):
        ChangeConfig(tag_window=-1)
    with pytest.raises(ValueError, match="tag_prior"):
        ChangeConfig(tag_prior=0.0)


def test_one_of_evidence_is_the_dirichlet_multinomial_for_single_categories_and_sums_the_tags_otherwise():
    rng = np.random.default_rng(8)
    x = np.eye(3)[rng.integers(0, 3, 20)]
    starts = np.array([0, 3, 4, 9, 15])
    one_of, ev = coarse_segments(x, starts, 0.5)
    dm, ev_dm = segment_evidence(np.add.reduceat(x, starts), 0.5)
    a, b = np.array([0, 1, 2, 0, 3]), np.array([5, 3, 4, 2, 5])
    assert one_of(a, b) == pytest.approx(dm(a, b))
    assert ev.tolist() == ev_dm.tolist()
    # a category-0 event, then an item tagged {0, 1}, Dirichlet(½) over 3 categories: 1/3, then
    # p(0) + p(1) = (1.5 + 0.5) / 2.5 = 0.8 (the equal split would score half of each instead)
    evidence, _ = coarse_segments(np.array([[1.0, 0, 0], [0.5, 0.5, 0]]), np.array([0]), 0.5)
    assert evidence(np.array([0]), np.array([1]))[0] == pytest.approx(np.log(0.8 / 3))
    # the tagged item's weight then counts as 0.75 / 0.25 (its tags' posterior shares), so a third event of
    # category 1 has probability (0.25 + 0.5) / (2 + 1.5) = 3/14
    evidence, _ = coarse_segments(np.array([[1.0, 0, 0], [0.5, 0.5, 0], [0, 1.0, 0]]), np.array([0]), 0.5)
    assert evidence(np.array([0]), np.array([1]))[0] == pytest.approx(np.log(0.8 / 3 * 3 / 14))


def test_a_ramp_one_event_long_is_the_step_and_the_weekly_rhythm_scores_each_group_in_order():
    rng = np.random.default_rng(9)
    x = np.eye(3)[rng.integers(0, 3, 16)]
    x[[2, 7, 11]] = [0.5, 0.0, 0.5]  # multi-category items: the step is still exactly two one_of segments
    grid, scores = coarse_ramp_scores(x, 0.5)
    evidence, _ = coarse_segments(x, np.arange(16), 0.5)
    for s in (0, 5, 9):  # a ramp from s to s + 1: event s under a, events from s + 1 under b
        (row,) = np.flatnonzero((grid[:, 0] == s) & (grid[:, 1] == s + 1))
        assert scores[row] == pytest.approx(float(evidence(np.array([0, s + 1]), np.array([s + 1, 16])).sum()))
    # two weekend events of category 0 and one weekday event of category 1, Dirichlet(½) over 2 categories:
    # weekend ½ · ¾, weekday ½
    ts = np.array([T0 + 5 * DAY, T0 + 6 * DAY, T0 + 7 * DAY]).astype("datetime64[s]")  # Sat, Sun, Mon
    assert coarse_weekly(np.array([[1.0, 0], [1.0, 0], [0, 1.0]]), ts, 0.5) == pytest.approx(np.log(0.5 * 0.75 * 0.5))


def _dense_ramp_scores(x: np.ndarray, alpha: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The ramp's prequential evidence written over every category, as the module's docstring defines it."""
    t = (x > 0).astype(float)
    a, b, out = np.zeros((len(grid), x.shape[1])), np.zeros((len(grid), x.shape[1])), np.zeros(len(grid))
    for i in range(len(t)):
        if t[i].any():
            lam = np.clip((i - grid[:, 0]) / (grid[:, 1] - grid[:, 0]), 0, 1)[:, None]
            pa = (1 - lam) * (a + alpha) / (a.sum(1, keepdims=True) + alpha.sum()) * t[i]
            pb = lam * (b + alpha) / (b.sum(1, keepdims=True) + alpha.sum()) * t[i]
            lik = (pa + pb).sum(1)
            out, a, b = out + np.log(lik), a + pa / lik[:, None], b + pb / lik[:, None]
    return out


def test_ramp_scores_by_hand_and_equal_to_the_formula_over_every_category():
    # two events, categories 0 then 1, Dirichlet(½, ½); the ramp from 0 to 2 has λ = 0 then ½:
    # event 0 under a: ½; event 1: ½ · (0 + ½)/(1 + 1) + ½ · ½/1 = 0.375
    grid, scores = coarse_ramp_scores(np.eye(2), 0.5)
    (row,) = np.flatnonzero((grid[:, 0] == 0) & (grid[:, 1] == 2))
    assert scores[row] == pytest.approx(np.log(0.5 * 0.375), rel=1e-12)
    # many tags per item, untagged events and a vector prior: each step updates only the event's tags
    rng = np.random.default_rng(4)
    x = (rng.random((120, 7)) < 0.25) * rng.random((120, 7))
    prior = dirichlet_prior(x, 0.1, 1.0)
    grid, scores = coarse_ramp_scores(x, prior, points=12)
    np.testing.assert_allclose(scores, _dense_ramp_scores(x, prior, grid), rtol=1e-12)
    # and a segment's evidence likewise: rows of 10 events, every segment a..b against the dense formula
    evidence, _ = coarse_segments(x, np.arange(0, 120, 10), prior)
    for lo, hi in [(0, 12), (3, 7), (11, 12)]:
        seg = x[10 * lo: 10 * hi]
        dense = _dense_ramp_scores(seg, prior, np.array([[len(seg), len(seg) + 1]]))  # λ = 0 throughout: mix a only
        assert evidence(np.array([lo]), np.array([hi]))[0] == pytest.approx(dense[0], rel=1e-12)


def test_cut_marginals_are_the_model_evidence_and_the_posterior_frequency_of_each_cut_over_every_cut_set():
    rng = np.random.default_rng(10)
    counts = np.eye(3)[rng.integers(0, 3, 12)] + 0.0
    counts[6:] = np.eye(3)[2]
    evidence, _ = segment_evidence(counts, 0.5)
    model, marg = cut_marginals(counts, 0.5, 3, 2)
    for k in range(3):
        sets, values = [], []
        for cuts in itertools.combinations(range(1, 12), k):
            b = [0, *cuts, 12]
            if min(np.diff(b)) >= 3:
                sets.append(cuts)
                values.append(float(evidence(np.array(b[:-1]), np.array(b[1:])).sum()))
        w = np.exp(np.array(values) - max(values))
        w /= w.sum()
        expected = np.zeros(12)
        for weight, cuts in zip(w, sets, strict=True):
            expected[list(cuts)] += weight
        assert model[k] == pytest.approx(np.log(np.mean(np.exp(values))))
        assert marg[k] == pytest.approx(expected)
        assert marg[k].sum() == pytest.approx(k)


def test_pick_reports_a_change_where_its_probability_within_two_rows_passes_the_threshold():
    prob = np.zeros(60)
    prob[[10, 11]] = 0.3  # 0.6 within two rows of row 10 or 11: reported once, at the likelier row (the first)
    prob[30] = 0.4  # 0.4 alone: not reported at 0.5
    prob[[45, 52]] = [0.7, 0.6]  # both pass, but 52 is 7 events from 45: only the likelier is kept
    ev = np.arange(61.0)  # one event per row
    assert pick(prob, ev, 0.5, 10) == [10, 45]
    assert pick(prob, ev, 0.35, 10) == [10, 30, 45]
    assert pick(prob, ev, 0.5, 5) == [10, 45, 52]
    assert pick(np.zeros(0), np.zeros(1), 0.5, 10) == []


def test_config_checks_the_posterior_settings():
    with pytest.raises(ValueError, match="evidence"):
        ChangeConfig(evidence="half")
    with pytest.raises(ValueError, match="threshold"):
        ChangeConfig(threshold=1.0)
    with pytest.raises(ValueError, match="ramp_min_span"):
        ChangeConfig(ramp_min_span=-0.1)


def test_pick_ends_when_a_bulk_moment_holds_more_events_than_a_segment():
    # rows 1 and 2 are bulk moments of 30 events each: the window at row 0 picks row 1, which lies 30 events from
    # row 0 — the window is still taken out, so the search ends
    prob = np.array([0.0, 0.9, 0.0, 0.0, 0.0])
    ev = np.array([0.0, 1.0, 31.0, 61.0, 62.0, 63.0])
    assert pick(prob, ev, 0.5, 10) == [1]


def test_dirichlet_prior_adds_the_users_overall_mix_to_alpha():
    # category weights 1+0.5+0+1 = 2.5 and 0+0.5+1+0 = 1.5 of 4: the mix (0.625, 0.375)
    events = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [1.0, 0.0]])
    assert dirichlet_prior(events, 0.1, 1.0) == pytest.approx([0.725, 0.475])
    assert dirichlet_prior(events, 0.1, 2.0) == pytest.approx([1.35, 0.85])
    assert dirichlet_prior(events, 0.2, 0.0) == pytest.approx([0.2, 0.2])  # weight 0: the symmetric prior
    assert dirichlet_prior(np.zeros((3, 4)), 0.1, 1.0) == pytest.approx([0.35] * 4)  # no category seen: uniform


def test_a_vector_prior_scores_each_event_by_its_predictive_probability():
    # prior (0.7, 0.3), events 0, 0, 1: 0.7 · (1 + 0.7)/(1 + 1) · (0 + 0.3)/(2 + 1) = 0.7 · 0.85 · 0.1 (Pólya urn)
    one_hot = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    evidence, _ = coarse_segments(one_hot, np.arange(3), np.array([0.7, 0.3]))
    assert float(evidence(np.array([0]), np.array([3]))[0]) == pytest.approx(np.log(0.7 * 0.85 * 0.1))
    assert float(evidence(np.array([1]), np.array([3]))[0]) == pytest.approx(np.log(0.7 * 0.3 / 2))
    # a two-category item {0, 1} has probability 1 under any mix of the two: it adds nothing to the evidence
    both = np.vstack([one_hot, [[0.5, 0.5]]])
    evidence4, _ = coarse_segments(both, np.arange(4), np.array([0.7, 0.3]))
    assert float(evidence4(np.array([0]), np.array([4]))[0]) == pytest.approx(np.log(0.7 * 0.85 * 0.1))
    # a vector of equal entries is the symmetric prior, for every model the detector compares
    rng = np.random.default_rng(5)
    tags = np.eye(3)[rng.integers(0, 3, 30)]
    ts = T0 + (np.arange(30) * DAY).astype("timedelta64[s]")
    flat = np.full(3, 0.4)
    assert coarse_ramp_scores(tags, flat)[1] == pytest.approx(coarse_ramp_scores(tags, 0.4)[1])
    assert coarse_weekly(tags, ts, flat) == pytest.approx(coarse_weekly(tags, ts, 0.4))
    k_sym, _, ramp_sym, week_sym = evidences(tags, ts, np.arange(30), 0.4, 10, 2, 0.1)
    k_w0, _, ramp_w0, week_w0 = evidences(tags, ts, np.arange(30), 0.4, 10, 2, 0.1, base_weight=0.0)
    assert k_w0 == pytest.approx(k_sym) and (ramp_w0, week_w0) == pytest.approx((ramp_sym, week_sym))
    # with weight on the user's mix, a segment that keeps to the user's usual categories scores higher
    usual = np.eye(3)[[0] * 25 + [1] * 5]
    ev_sym, _ = coarse_segments(usual, np.arange(30), 0.1)
    ev_mix, _ = coarse_segments(usual, np.arange(30), dirichlet_prior(usual, 0.1, 1.0))
    assert float(ev_mix(np.array([0]), np.array([30]))[0]) > float(ev_sym(np.array([0]), np.array([30]))[0])


def test_two_changes_in_one_long_sitting_are_both_reported_unless_one_per_session():
    # 20 daily events of A, then one sitting of 45 events two minutes apart (not bulk: the gaps are over a minute):
    # 15 A, 15 B, 15 C, then 10 daily events of C. The sitting holds both switches, 15 events apart
    cats = [0] * 35 + [1] * 15 + [2] * 25
    secs = [k * DAY for k in range(20)] + [20 * DAY + 120 * k for k in range(45)] + [(21 + k) * DAY for k in range(10)]
    events, ts = np.eye(3)[cats], T0 + np.array(secs).astype("timedelta64[s]")
    assert detect_changes(events, ts).steps == [35, 50]
    kept = detect_changes(events, ts, ChangeConfig(one_per_session=True)).steps
    assert kept in ([35], [50])  # the session rule keeps the one of highest contrast (here a tie of 1 bit)


def test_config_checks_the_prior_weight():
    assert ChangeConfig().base_weight == 1.0 and ChangeConfig().one_per_session is False
    with pytest.raises(ValueError):
        ChangeConfig(base_weight=-0.5)
