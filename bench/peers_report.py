"""The tables of bench/peers.py: per protocol, each model's test figures (mean ± spread over seeds), CPU seconds,
ratios against the best peer, and the time ours takes to reach the best peer's test NDCG@10."""

from __future__ import annotations

import statistics
import sys
from dataclasses import asdict
from pathlib import Path

from bench.peers_grid import GRID, grid_runs, pick, status
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
    grid = grid_runs(st, work)
    for p in PROTOCOLS:
        rows: dict = {}
        for name in ("most_popular", "markov"):
            if name in st:
                rows[name] = {k: st[name]["test"][p][k] for k in KEYS} | {"train_seconds": 0.0, "seeds": 1}
        for m, listed in grid.items():
            best = pick(listed, p)
            if best is None:  # nothing converged yet: the grid table lists the runs, the headline has no row
                continue
            runs = [v for v in st.values() if isinstance(v, dict) and v.get("model") == m and "dropout" in v]
            # the picked point's converged runs (seed 0 and any extra seeds); a run cut short never stands for it
            picked = [r for r in runs if (r["dropout"], r["lr"]) == (best.dropout, best.lr) and status(r) == "converged"]
            name = m if m.startswith("recbole") else f"rectools_{m}"
            rows[name] = _agg(picked, p) | {
                "picked": {"dropout": best.dropout, "lr": best.lr, "valid_ndcg10": best.valid_ndcg10},
                "pick_final": best.final, "grid_points_done": best.converged_points,
                "capped_runs": sum(r.status in ("stopped", "capped") for r in listed),
                "partial_runs": sum(r.status == "partial" for r in listed),
                "grid_cpu_seconds": sum(r.train_seconds for r in listed if r.status == "converged"),
                "cpu_seconds_all_runs": sum(r.train_seconds for r in listed)}
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
    out = {"tables": tables, "ours_defaults": results.data.get("ours_defaults"),
           "grids": {m: [asdict(r) | {"picked_under": [p for p in PROTOCOLS if _is_pick(r, pick(listed, p))]}
                         for r in listed] for m, listed in grid.items()}}
    if size in ICLREC_NDCG10 and "interestlens" in tables["exclude_seen"]["models"]:
        out["vs_iclrec"] = tables["exclude_seen"]["models"]["interestlens"]["NDCG@10"] / ICLREC_NDCG10[size]
    return out


def _is_pick(run, best) -> bool:
    return best is not None and run.seed == 0 and run.status == "converged" and (run.dropout, run.lr) == (
        best.dropout, best.lr)


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


def _pick_text(m: dict) -> str:
    pick = m.get("picked")
    if not pick:
        return "-"
    how = "final" if m["pick_final"] else f"provisional: {m['grid_points_done']} of {len(GRID)} points converged"
    return f"({pick['dropout']}, {pick['lr']:g}), {how}"


def print_table(report: dict) -> None:
    for p, t in report["tables"].items():
        print(f"\n[{p}]", file=sys.stderr)
        print(f"{'model':<20}{'HR@10':>16}{'NDCG@10':>18}{'MRR':>10}{'CPU s':>10}{'seeds':>7}  picked", file=sys.stderr)
        for name, m in t["models"].items():
            print(f"{name:<20}{m['HR@10']:>9.4f}±{m.get('HR@10_std', 0):.4f}{m['NDCG@10']:>11.4f}±"
                  f"{m.get('NDCG@10_std', 0):.4f}{m['MRR']:>10.4f}{m['train_seconds']:>10.0f}{m['seeds']:>7}  "
                  f"{_pick_text(m)}", file=sys.stderr)
        print("ratios: " + str(t["ratios"]), file=sys.stderr)
    for model, runs in report.get("grids", {}).items():
        print(f"\n[grid runs: {model}]", file=sys.stderr)
        for r in runs:
            print(f"  d={r['dropout']} lr={r['lr']:g} seed={r['seed']} {r['status']:<9} {r['epochs']:>3} epochs "
                  f"{r['train_seconds']:>7.0f} CPU s  valid NDCG@10 "
                  + " / ".join(f"{r['valid_ndcg10'][p]:.4f} ({r['best_epoch'][p]})" for p in PROTOCOLS)
                  + (f"  picked under {', '.join(r['picked_under'])}" if r["picked_under"] else ""), file=sys.stderr)
    if "vs_iclrec" in report:
        print(f"ours / ICLRec published NDCG@10: {report['vs_iclrec']:.3f}", file=sys.stderr)


STATUS_TEXT = {"converged": "converged (early stopping)", "stopped": "**partial**: cut by a STOP file",
               "capped": "**partial**: epoch cap", "partial": "**partial**: running or killed"}


def grid_markdown(model: str, runs: list[dict]) -> list[str]:
    """Every run of one peer: grid point, status, CPU s and validation (never test: the pick reads validation)."""
    lines = [f"**Grid runs of {model}** (seed 0 is the grid; the pick per protocol is the converged seed-0 point "
             "with the best validation NDCG@10; partial runs are never picked)", "",
             "| dropout | lr | seed | status | epochs | CPU s | valid NDCG@10 `exclude_seen` (best epoch) | "
             "valid NDCG@10 `all_items` (best epoch) | picked under |", "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        v = [f"{r['valid_ndcg10'][p]:.4f} ({r['best_epoch'][p]})" for p in PROTOCOLS]
        lines.append(f"| {r['dropout']} | {r['lr']:g} | {r['seed']} | {STATUS_TEXT[r['status']]} | {r['epochs']} | "
                     f"{r['train_seconds']:,.0f} | {v[0]} | {v[1]} | {', '.join(r['picked_under']) or '-'} |")
    return lines + [""]


def markdown(report: dict, size: str, load: float | None = None) -> str:
    """The tables as Markdown for docs/accuracy-peers.md (one per protocol, then one per peer's grid)."""
    lines = []
    for p, t in report["tables"].items():
        lines += [f"**{size}, `{p}`**" + (f" (1-min load {load:.1f})" if load is not None else ""), "",
                  "| model | HR@10 | NDCG@10 | MRR | train CPU s | seeds | picked (dropout, lr) |",
                  "|---|---|---|---|---|---|---|"]
        for name, m in t["models"].items():
            lines.append(
                f"| {name} | {m['HR@10']:.4f} ± {m.get('HR@10_std', 0):.4f} | {m['NDCG@10']:.4f} ± "
                f"{m.get('NDCG@10_std', 0):.4f} | {m['MRR']:.4f} | {m['train_seconds']:,.0f} | {m['seeds']} | "
                f"{_pick_text(m)} |")
        r = t["ratios"]
        if r:
            reach = r.get("seconds_to_best_peer")
            lines.append("")
            lines.append(f"Ours / best peer ({r['best_peer']}) NDCG@10: {r['ndcg10_vs_best_peer']:.3f}; time to reach "
                         f"its test NDCG@10: " + (f"{reach:,.0f} CPU s = {r['vs_peer_train_seconds']:.3f}× its "
                                                  "training time" if reach is not None else "not reached"))
        lines.append("")
    for model, runs in report.get("grids", {}).items():
        lines += grid_markdown(model, runs)
    if "vs_iclrec" in report:
        lines.append(f"Ours / ICLRec's published NDCG@10 (exclude_seen): {report['vs_iclrec']:.3f}")
    return "\n".join(lines)
