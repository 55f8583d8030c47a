"""The peer table (bench/peers_report.py) never lets a run cut short by a deadline's STOP file stand for its grid
point: the pick and the figures come from runs that reached their own early stopping."""

from __future__ import annotations

from types import SimpleNamespace

from bench.peers_report import summarize_results


def _run(d: float, lr: float, valid: float, ndcg: float, stopped: str) -> dict:
    test = {p: {"HR@10": 2 * ndcg, "NDCG@10": ndcg, "MRR": ndcg / 2, "valid_ndcg10": valid}
            for p in ("exclude_seen", "all_items")}
    return {"model": "sasrec-gBCE32", "dropout": d, "lr": lr, "seed": 0, "test": test, "train_seconds": 100.0,
            "stopped": stopped}


def test_a_capped_run_is_never_picked_and_counted_apart():
    stages = {"sasrec-gBCE32_d0.2_lr0.002_s0": _run(0.2, 2e-3, 0.05, 0.04, "early_stopping"),
              # higher validation, but cut short: must not be picked
              "sasrec-gBCE32_d0.5_lr0.002_s0": _run(0.5, 2e-3, 0.06, 0.05, "stop_file")}
    report = summarize_results(SimpleNamespace(data={"stages": stages, "size": "x"}), None, None, 10, None)
    row = report["tables"]["exclude_seen"]["models"]["rectools_sasrec-gBCE32"]
    assert row["picked"] == {"dropout": 0.2, "lr": 2e-3}
    assert row["NDCG@10"] == 0.04 and row["grid_points_done"] == 1 and row["capped_runs"] == 1


def test_only_capped_runs_give_no_row():
    stages = {"sasrec-gBCE32_d0.5_lr0.002_s0": _run(0.5, 2e-3, 0.06, 0.05, "stop_file")}
    report = summarize_results(SimpleNamespace(data={"stages": stages, "size": "x"}), None, None, 10, None)
    assert "rectools_sasrec-gBCE32" not in report["tables"]["all_items"]["models"]
