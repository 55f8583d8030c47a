"""Social branch on a synthetic log with planted influence: --social vs --no-social, same seeds.

Figures (bench/results/social-<graph>.json; social-<graph>-seed<N>.json for --seed N > 0): NDCG@10 on the
leave-one-out test targets (all users and the influenced ones), NDCG@10 on the steps right after each planted
adoption, precision@1 of the top attended friend against the planted influencer at those steps (with the
random-friend baseline), trajectory TV error (predicted next-category distribution vs the planted mixture) on
influenced users at those steps, and the time and memory cost of the branch. Run one graph at a time, 1 thread:

    OMP_NUM_THREADS=1 python bench/social.py --graph poisson
    OMP_NUM_THREADS=1 python bench/social.py --graph lastfm
    OMP_NUM_THREADS=1 python bench/social.py --graph poisson --section oracle --json
    OMP_NUM_THREADS=1 python bench/social.py --graph lastfm --users 1600 --events 64000 --default-only --epochs 30

`--section shap-agreement` trains the default branch and measures how often SHAP's top friend with 8 / 16 / 32 / 64
permutations equals that of 128 permutations on validation targets (sampling noise only, no planted truth read):
the permutation count is chosen on it (seed 0), docs/social.md.
`--section influence` trains nothing: how much planted influence the log holds (all events and the test targets)
and the graph facts that hide the influencer (stage `influence`). `--section oracle` trains the no-social model only and bounds the lift any use of friends could give
(bench/social_oracle.py: share of test targets copied from the influencer, the no-social model mixed with the
influencer's or all friends' recent items tuned on validation, the generator's own probabilities); stage `oracle`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core.friends.states as friend_states  # noqa: E402
from bench.common import Results, peak_rss_mb  # noqa: E402
from bench.social_oracle import influence_figures, oracle_figures, target_batches  # noqa: E402
from core.datasets.social import generate_social  # noqa: E402
from core.evaluate.split import leave_one_out  # noqa: E402
from core.friends.graph import load_graph  # noqa: E402
from core.ingest.frames import ingest_frames  # noqa: E402
from core.model import ModelConfig  # noqa: E402
from core.sequences import build_vocab, load_sequences  # noqa: E402
from core.social.evidence import social_shapley  # noqa: E402
from core.social.fit import fit, rank_social, social_batch  # noqa: E402
from core.store import connect_read  # noqa: E402

AFTER = 5  # influenced steps measured: the adopted event and the 4 after it


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--graph", choices=["poisson", "lastfm"], default="poisson")
    ap.add_argument("--users", type=int, default=400)
    ap.add_argument("--events", type=int, default=16000)
    ap.add_argument("--epochs", type=int, default=15,
                    help="training epochs of every arm, no early stopping (results go to ...-ep<N> when not 15)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shap-steps", type=int, default=150, help="influenced steps explained with SHAP")
    ap.add_argument("--shap-permutations", type=int, default=8,
                    help="SHAP permutations per step (results go to social-<graph>-shap<N> when not 8)")
    ap.add_argument("--section", choices=["compare", "oracle", "influence", "shap-agreement"], default="compare")
    ap.add_argument("--recent-items", type=int, default=friend_states.RECENT_ITEMS,
                    help="friends' recent items the copy path reads (tuning; results go to social-<graph>-m<M>)")
    ap.add_argument("--no-old-branch", action="store_true", help="skip the branch without the copy path")
    ap.add_argument("--default-only", action="store_true",
                    help="only no-social and the default branch (copy within categories); results to "
                         "social-<graph>...-default")
    ap.add_argument("--json", action="store_true", help="print the section's figures as one JSON object")
    a = ap.parse_args()
    torch.set_num_threads(1)
    default_m, friend_states.RECENT_ITEMS = friend_states.RECENT_ITEMS, a.recent_items  # read at each lookup
    size = a.graph + (f"-seed{a.seed}" if a.seed else "") + (f"-m{a.recent_items}" if a.recent_items != default_m else "")
    size += f"-shap{a.shap_permutations}" if a.shap_permutations != 8 else ""
    size += f"-u{a.users}-e{a.events}" if (a.users, a.events) != (400, 16000) else ""  # a larger log beside
    size += "-default" if a.default_only else ""
    size += f"-ep{a.epochs}" if a.epochs != 15 else ""  # e.g. 30 epochs beside the 15-epoch figures, not over them
    size += "-shap-agreement" if a.section == "shap-agreement" else ""  # its own file
    res = Results("social", size, resume=False)
    ds = generate_social(users=a.users, items=200, events=a.events, degree=a.graph, seed=a.seed)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "s.duckdb"
        ingest_frames(db, ds.events, ds.users, ds.items, edges=ds.edges)
        with connect_read(db) as con:
            vocab = build_vocab(con)
            seqs = load_sequences(con, vocab)
            graph = load_graph(con, seqs, k=20)
    split = leave_one_out(seqs)
    cfg = ModelConfig(d_model=32, n_heads=2, n_layers=2, max_len=50, dropout=0.1)
    out: dict = {"load_1min_before": os.getloadavg()[0], "users": a.users, "events": len(ds.events),
                 "edges": len(ds.edges), "mean_degree": round(2 * len(ds.edges) / a.users, 2),
                 "influenced_users": len(ds.influence), "leaders": len(ds.leaders), "epochs": a.epochs, "batch": a.batch,
                 "seed": a.seed, "cap_k": graph.k, "shap_permutations": a.shap_permutations}  # fmt: skip
    if a.section == "influence":  # the log's planted influence, no model (bench/social_oracle.influence_figures)
        out.update(influence_figures(ds, seqs, vocab, graph, split))
        res.stage("influence", out)
        print(json.dumps(out, indent=1) if a.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
        return
    if a.section == "shap-agreement":  # how many permutations SHAP needs to rank friends (no truth read)
        f = fit(seqs, vocab, split, graph, cfg, epochs=a.epochs, batch_size=a.batch, seed=a.seed)
        out.update(_shap_agreement(f, seqs, graph, split, a.shap_steps))
        out["load_1min_after"] = os.getloadavg()[0]
        res.stage("shap_agreement", out)
        print(json.dumps(out, indent=1) if a.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
        return
    if a.section == "oracle":
        f = fit(seqs, vocab, split, None, cfg, epochs=a.epochs, batch_size=a.batch, seed=a.seed)
        out.update(oracle_figures(f, seqs, vocab, graph, ds, split))
        out["load_1min_after"] = os.getloadavg()[0]
        res.stage("oracle", out)
        print(json.dumps(out, indent=1) if a.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
        return
    # four arms, same seeds: without friends, the branch mixing friends' states only, the branch with its copy
    # path across categories ("social") and within categories ("social_cat"); the branch is chosen on validation
    # NDCG@10 (`choice`)
    arms = {"no_social": (None, False, False), "social_no_copy": (graph, False, False), "social": (graph, True, False),
            "social_cat": (graph, True, True)}  # fmt: skip
    if a.no_old_branch or a.default_only:
        del arms["social_no_copy"]
    if a.default_only:
        del arms["social"]
    fits = {}
    for key, (g, copy, by_cat) in arms.items():
        t0, c0 = time.perf_counter(), time.process_time()
        fits[key] = fit(seqs, vocab, split, g, cfg, epochs=a.epochs, batch_size=a.batch, seed=a.seed, copy=copy,
                        by_category=by_cat)  # fmt: skip
        out[f"{key}_train_seconds"] = round(time.perf_counter() - t0, 2)
        out[f"{key}_train_cpu_seconds"] = round(time.process_time() - c0, 2)  # wall minus this: waiting for a core
        out[f"{key}_peak_rss_mib_after"] = round(peak_rss_mb(), 1)  # the process's peak so far (arms in order)
        out[f"{key}_seconds_per_step"] = round(fits[key].seconds_per_step, 5)
        m, _, _ = rank_social(fits[key], seqs, graph, *split.targets("valid"))
        out[f"{key}_valid_NDCG@10"] = round(m["NDCG@10"], 4)
    out["choice"] = max((k for k in arms if k != "no_social"), key=lambda k: out[f"{k}_valid_NDCG@10"])
    sa = "social" if "social" in fits else "social_cat"  # the arm the cost figures read
    out["social_timeline_seconds"] = round(fits[sa].timeline_seconds, 2)
    # memory the branch adds: the friends' state timelines (N x D floats) and one batch's friend states
    # (B x T x K x D floats, the largest new tensor of a training step) and recent items (B x T x K x M ints)
    D, N = cfg.d_model, len(seqs.items)
    out["social_timelines_mib"] = round(N * D * 4 / 2**20, 2)
    out["social_batch_friend_states_mib"] = round(a.batch * cfg.max_len * graph.k * D * 4 / 2**20, 2)
    out["social_batch_recent_items_mib"] = round(a.batch * cfg.max_len * graph.k * a.recent_items * 8 / 2**20, 2)
    out["social_branch_parameters"] = int(sum(p.numel() for p in fits[sa].model.social.parameters()))
    out["step_time_ratio"] = round(out[f"{sa}_seconds_per_step"] / out["no_social_seconds_per_step"], 3)
    pure = out[f"{sa}_seconds_per_step"] - fits[sa].timeline_seconds / max(len(fits[sa].losses), 1)
    out["social_seconds_per_step_without_timelines"] = round(pure, 5)
    out["step_time_ratio_without_timelines"] = round(pure / out["no_social_seconds_per_step"], 3)
    rows, targets = split.targets("test")
    infl_rows = np.array([seqs.row(u) for u in ds.influence["user_id"]], np.int64)
    is_infl = np.isin(rows, infl_rows)
    gains = {}
    for key, f in fits.items():
        m, ranks, _ = rank_social(f, seqs, graph, rows, targets)
        mi, _, _ = rank_social(f, seqs, graph, rows[is_infl], targets[is_infl])
        out[f"{key}_test_NDCG@10"] = round(m["NDCG@10"], 4)
        out[f"{key}_test_NDCG@10_influenced_users"] = round(mi["NDCG@10"], 4)
        gains[key] = np.where(ranks <= 10, 1.0 / np.log2(ranks + 1.0), 0.0)  # per test user, as core ndcg
    # how far the test lift could move by which users happen to be in a 400-user log: a paired bootstrap over
    # test users (2,000 resamples) of the relative lift, 95 % interval
    n_test = len(gains["no_social"])
    boot = np.random.default_rng(a.seed).integers(0, n_test, (2000, n_test))
    for arm in (k for k in arms if k != "no_social"):
        lifts = gains[arm][boot].mean(1) / np.maximum(gains["no_social"][boot].mean(1), 1e-9) - 1
        out[f"lift_{arm}_test_NDCG@10_ci95"] = [round(float(x), 4) for x in np.quantile(lifts, [0.025, 0.975])]
    # influenced steps: predict event t+1 from events < t+1 for t = s .. s+AFTER-1
    r_list, t_list, who, step_list, cat_list = [], [], [], [], []
    for u, s, infl, c in ds.influence[["user_id", "step", "influencer", "category"]].itertuples(index=False):
        r = seqs.row(u)
        for j in range(AFTER):
            t = int(seqs.offsets[r]) + int(s) + j + 1
            if t < seqs.offsets[r + 1]:
                r_list.append(r), t_list.append(t), who.append(seqs.row(infl)), step_list.append(int(s) + j + 1)
                cat_list.append(vocab.categories.index(c))
    r_arr, t_arr = np.array(r_list), np.array(t_list)
    # whether the event explained is of the adopted category: only those can come from the planted influence (the
    # generator draws the others from the follower's own base mixture, its 0.2 share), so an explanation of that
    # very item has no influencer to find there (docs/social.md, "SHAP precision")
    adopted = vocab.category_weights()[seqs.items[t_arr], np.array(cat_list, np.int64)] > 0
    for key, f in fits.items():
        m, _, att = rank_social(f, seqs, graph, r_arr, t_arr)
        out[f"{key}_influenced_steps_NDCG@10"] = round(m["NDCG@10"], 4)
        out[f"{key}_influenced_steps_TV"] = round(_tv(f, seqs, graph, ds, r_arr, t_arr, step_list, vocab), 4)
        if key in ("social", "social_cat"):  # the category distribution of the fused state alone (no copy mixture)
            tv = _tv(f, seqs, graph, ds, r_arr, t_arr, step_list, vocab, mixture=False)
            out[f"{key}_influenced_steps_TV_fused_state"] = round(tv, 4)
        if key in ("social", "social_cat"):  # "social": unprefixed keys, as before
            pre = "" if key == "social" else f"{key}_"
            fr, has = graph.padded()
            hits, base, hits_adopted, hits_first = [], [], [], []
            for n, w in enumerate(att):
                present = w > 0
                if not present.any():
                    continue
                hits.append(fr[r_arr[n], int(np.argmax(w))] == who[n])
                base.append(float(who[n] in set(fr[r_arr[n]][present])) / present.sum())
                if adopted[n]:
                    hits_adopted.append(hits[-1])
                if n < a.shap_steps:  # the steps SHAP is measured on
                    hits_first.append(hits[-1])
            out[f"{pre}precision@1_attention"] = round(float(np.mean(hits)), 4)
            out[f"{pre}precision@1_attention_adopted_targets"] = round(float(np.mean(hits_adopted)), 4)
            out[f"{pre}precision@1_attention_shap_steps"] = round(float(np.mean(hits_first)), 4)
            out.update({pre + k: v for k, v in _shap_precision(f, seqs, graph, r_arr, t_arr, who, a.shap_steps,
                                                                   permutations=a.shap_permutations,
                                                                   adopted=adopted).items()})  # fmt: skip
            # the same with the log-probability of the whole next-item distribution (copy mixture included)
            lp = _shap_precision(f, seqs, graph, r_arr, t_arr, who, a.shap_steps, log_prob=True,
                                 permutations=a.shap_permutations, adopted=adopted)
            out[f"{pre}precision@1_shap_log_prob"] = lp["precision@1_shap"]
            out[f"{pre}precision@1_shap_log_prob_adopted_targets"] = lp["precision@1_shap_adopted_targets"]
            out["precision@1_random_friend"] = round(float(np.mean(base)), 4)
            out["influenced_steps_measured"] = len(hits)
    for k in ("valid_NDCG@10", "test_NDCG@10", "test_NDCG@10_influenced_users", "influenced_steps_NDCG@10"):
        for arm in (k for k in arms if k != "no_social"):
            out[f"lift_{arm}_{k}"] = round(out[f"{arm}_{k}"] / max(out[f"no_social_{k}"], 1e-9) - 1, 4)
    out["load_1min_after"] = os.getloadavg()[0]
    res.stage("compare", out)
    print(json.dumps(out, indent=1) if a.json else "\n".join(f"{k}: {v}" for k, v in out.items()))


def _shap_precision(f, seqs, graph, rows, targets, who, n_steps: int, log_prob: bool = False,
                    permutations: int = 8, adopted: np.ndarray | None = None) -> dict:  # fmt: skip
    """Precision@1 of the friend with the largest Shapley value (players: the window's events and the friends;
    the explained value: the logit of the event that followed, or with `log_prob` its log-probability under the
    model's whole next-item distribution) at the first `n_steps` influenced steps; with `adopted` [len(rows)] bool
    also over those of them whose event is of the adopted category."""
    fr, _ = graph.padded()
    L = f.model.config.max_len
    hits, errs, kept, t0 = [], [], [], time.perf_counter()
    for n in range(min(n_steps, len(rows))):
        r, hi = rows[n], targets[n]
        lo = max(int(seqs.offsets[r]), hi - L)
        batch = social_batch(seqs, np.array([lo]), np.array([hi]), hi - lo, f.timelines, graph)
        if not bool(batch.social.present[0, -1].any()):
            continue
        sv = social_shapley(f.model, batch, int(seqs.items[hi]), permutations=permutations, seed=n, log_prob=log_prob)
        slots = np.flatnonzero(batch.social.friends[0].numpy() >= 0)
        best = slots[np.argmax(sv.friends[slots])]
        hits.append(fr[r, best] == who[n])
        errs.append(sv.additivity_error)
        kept.append(n)
    sub = [h for h, n in zip(hits, kept, strict=True) if adopted is not None and adopted[n]]
    return {"precision@1_shap": round(float(np.mean(hits)), 4), "shap_steps": len(hits),
            "precision@1_shap_adopted_targets": round(float(np.mean(sub)), 4) if sub else None,
            "shap_steps_adopted_targets": len(sub),
            "shap_max_additivity_error": float(max(errs)) if errs else None,
            "shap_seconds_per_step": round((time.perf_counter() - t0) / max(len(hits), 1), 3)}  # fmt: skip


def _shap_agreement(f, seqs, graph, split, n_steps: int, reference: int = 128) -> dict:
    """How often the top friend of SHAP with 8 / 16 / 32 / 64 permutations is the top friend of a `reference`-
    permutation run (other seeds) on the first `n_steps` validation targets with a friend present: the sampling
    noise of the friends' ranking, measured without the planted truth (the permutation count is chosen on it)."""
    L = f.model.config.max_len
    rows, targets = split.targets("valid")
    agree: dict[int, list[bool]] = {p: [] for p in (8, 16, 32, 64)}
    for n, (r, hi) in enumerate(zip(rows, targets, strict=True)):
        if len(agree[8]) >= n_steps:
            break
        lo = max(int(seqs.offsets[r]), int(hi) - L)
        batch = social_batch(seqs, np.array([lo]), np.array([hi]), int(hi) - lo, f.timelines, graph)
        slots = np.flatnonzero(batch.social.friends[0].numpy() >= 0)
        if len(slots) < 2 or not bool(batch.social.present[0, -1].any()):
            continue
        target = int(seqs.items[hi])
        top = np.argmax(social_shapley(f.model, batch, target, permutations=reference, seed=10_000 + n).friends[slots])
        for p in agree:
            agree[p].append(bool(np.argmax(social_shapley(f.model, batch, target, permutations=p,
                                                          seed=n).friends[slots]) == top))  # fmt: skip
    return {"shap_agreement_steps": len(agree[8]), "shap_agreement_reference_permutations": reference,
            **{f"shap_top_friend_agreement_{p}": round(float(np.mean(v)), 4) for p, v in agree.items()}}


@torch.no_grad()
def _tv(f, seqs, graph, ds, rows, targets, steps, vocab, mixture: bool = True) -> float:
    """Mean total variation between the predicted next-category distribution and the planted mixture (`mixture`
    False: from the fused state's logits alone, without the copy path's mixture with friends' recent items)."""
    model = f.model
    W = vocab.category_weights()  # [I+1,C]
    cats = [vocab.categories.index(c) for c in ds.categories]
    tvs = []
    for s, batch in target_batches(f, seqs, graph, rows, targets):
        r = rows[s : s + 256]
        enc = model.encode(batch)
        scores = model.scores(enc, batch) if mixture else model.score(model.readout(enc, batch))
        p = scores.softmax(-1) @ W  # [B,C] (with friends' recent items when the model copies and `mixture`)
        for b in range(len(r)):
            truth = ds.mixture_at(str(seqs.user_ids[r[b]]), steps[s + b])[cats]
            tvs.append(0.5 * float(np.abs(p[b].numpy() - truth).sum()))
    return float(np.mean(tvs))


if __name__ == "__main__":
    main()
