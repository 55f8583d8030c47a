"""The tables of bench/peers.py: per protocol, each model's test figures (mean ± spread over seeds), CPU seconds,
ratios against the best peer, and the time ours takes to reach the best peer's test NDCG@10."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from core.evaluate import PROTOCOLS

__all__ = ["summarize_results", "print_table"]

KEYS = ("HR@10", "NDCG@10", "MRR")
ICLREC_NDCG10 = {"toys": 0.0480, "sports": 0.0238}  # published, exclude_seen (../shared/data/seqrec/README.md)


def _agg(runs: list[dict], protocol: str) -> dict:
    out: dict = {}
    for k in KEYS:
        xs = [r["test"][protocol][k] for r in runs]
        out[k] = statistics.fmean(xs)
        out[f"{k}_std"] = statistics.stdev(xs) if len(xs) > 1 else 0.0
    out["seeds"] = len(runs)
    out["train_seconds"] = statistics.fmean(r["train_seconds"] for r in runs)
    return out


def summarize_results(results, seqs, split, n_items: int, work: Path) -> dict:
    st = results.data["stages"]
    tables: dict = {}
    for p in PROTOCOLS:
        rows: dict = {}
        for name in ("most_popular", "markov"):
            if name in st:
                rows[name] = {k: st[name]["test"][p][k] for k in KEYS} | {"train_seconds": 0.0, "seeds": 1}
        peer_models = sorted({v["model"] for k, v in st.items() if isinstance(v, dict) and "model" in v
                              and "dropout" in v})
        for m in peer_models:
            runs = [v for k, v in st.items() if isinstance(v, dict) and v.get("model") == m and "dropout" in v]
            # a run ended by a deadline's STOP file is not converged: it never stands for its grid point
            capped = [r for r in runs if r.get("stopped") == "stop_file"]
            runs = [r for r in runs if r.get("stopped") != "stop_file"]
            if not runs:
                continue
            grid = [r for r in runs if r["seed"] == 0]
            best = max(grid, key=lambda r: r["test"][p]["valid_ndcg10"])
            picked = [r for r in runs if r["dropout"] == best["dropout"] and r["lr"] == best["lr"]]
            name = m if m.startswith("recbole") else f"rectools_{m}"
            rows[name] = _agg(picked, p) | {"picked": {"dropout": best["dropout"], "lr": best["lr"]},
                                            "grid_points_done": len(grid), "capped_runs": len(capped),
                                            "grid_cpu_seconds": sum(r["train_seconds"] for r in runs)}
        ours = [v for k, v in sorted(st.items()) if k.startswith("ours_seed")]
        if ours:
            rows["interestlens"] = _agg(ours, p)
        peers = {k: v for k, v in rows.items() if k not in ("interestlens", "most_popular", "markov")}
        ratios: dict = {}
        if ours and peers:
            best_name = max(peers, key=lambda k: peers[k]["NDCG@10"])
            ratios = {"best_peer": best_name, "ndcg10_vs_best_peer": rows["interestlens"]["NDCG@10"] / peers[best_name]["NDCG@10"]}
            ratios.update(_reach(results, ours, p, peers[best_name], seqs, split, n_items, work))
        tables[p] = {"models": rows, "ratios": ratios}
    size = results.data.get("size", "")
    out = {"tables": tables, "ours_defaults": results.data.get("ours_defaults")}
    if size in ICLREC_NDCG10 and "interestlens" in tables["exclude_seen"]["models"]:
        out["vs_iclrec"] = tables["exclude_seen"]["models"]["interestlens"]["NDCG@10"] / ICLREC_NDCG10[size]
    return out


def _reach(results, ours: list[dict], p: str, peer: dict, seqs, split, n_items: int, work: Path) -> dict:
    """Mean CPU seconds for ours to reach the peer's mean test NDCG@10 (from validation-picked snapshots), cached."""
    from bench.peers_ours import time_to_reach

    target = peer["NDCG@10"]
    secs = []
    for run in ours:
        key = f"reach_{p}_{run['train_config']['seed']}_{target:.6f}"
        # a cached figure belongs to the run it was read from: a seed redone since (new defaults) is read again
        if not results.done(key) or results.get(key).get("run_finished") != run.get("finished"):
            model_dir = Path(run["snaps"]).parent / "model"
            results.stage(key, {**time_to_reach(run, p, target, seqs, split, n_items, run["model_config"]["max_len"],
                                                model_dir), "run_finished": run.get("finished")})
        secs.append(results.get(key)["seconds"])
    if any(s is None for s in secs):
        return {"seconds_to_best_peer": None, "reach_runs": secs}
    mean = statistics.fmean(secs)
    return {"seconds_to_best_peer": mean, "reach_runs": secs, "vs_peer_train_seconds": mean / peer["train_seconds"]}


def print_table(report: dict) -> None:
    for p, t in report["tables"].items():
        print(f"\n[{p}]", file=sys.stderr)
        print(f"{'model':<20}{'HR@10':>16}{'NDCG@10':>18}{'MRR':>10}{'CPU s':>10}{'seeds':>7}", file=sys.stderr)
        for name, m in t["models"].items():
            print(f"{name:<20}{m['HR@10']:>9.4f}±{m.get('HR@10_std', 0):.4f}{m['NDCG@10']:>11.4f}±"
                  f"{m.get('NDCG@10_std', 0):.4f}{m['MRR']:>10.4f}{m['train_seconds']:>10.0f}{m['seeds']:>7}",
                  file=sys.stderr)
        print("ratios: " + str(t["ratios"]), file=sys.stderr)
    if "vs_iclrec" in report:
        print(f"ours / ICLRec published NDCG@10: {report['vs_iclrec']:.3f}", file=sys.stderr)


def markdown(report: dict, size: str, load: float | None = None) -> str:
    """The tables as Markdown for docs/accuracy.md (one per protocol)."""
    lines = []
    for p, t in report["tables"].items():
        lines += [f"**{size}, `{p}`**" + (f" (1-min load {load:.1f})" if load is not None else ""), "",
                  "| model | HR@10 | NDCG@10 | MRR | train CPU s | seeds | picked (dropout, lr) | grid points |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, m in t["models"].items():
            pick = m.get("picked")
            lines.append(
                f"| {name} | {m['HR@10']:.4f} ± {m.get('HR@10_std', 0):.4f} | {m['NDCG@10']:.4f} ± "
                f"{m.get('NDCG@10_std', 0):.4f} | {m['MRR']:.4f} | {m['train_seconds']:,.0f} | {m['seeds']} | "
                f"{(pick['dropout'], pick['lr']) if pick else '-'} | {m.get('grid_points_done', '-')} |")
        r = t["ratios"]
        if r:
            reach = r.get("seconds_to_best_peer")
            lines.append("")
            lines.append(f"Ours / best peer ({r['best_peer']}) NDCG@10: {r['ndcg10_vs_best_peer']:.3f}; time to reach "
                         f"its test NDCG@10: " + (f"{reach:,.0f} CPU s = {r['vs_peer_train_seconds']:.3f}× its "
                                                  "training time" if reach is not None else "not reached"))
        lines.append("")
    if "vs_iclrec" in report:
        lines.append(f"Ours / ICLRec's published NDCG@10 (exclude_seen): {report['vs_iclrec']:.3f}")
    return "\n".join(lines)
