"""The peer table (bench/peers_report.py) never lets a run cut short by a deadline's STOP file stand for its grid
point: the pick and the figures come from runs that reached their own early stopping."""

from __future__ import annotations

from types import SimpleNamespace

from bench.peers_report import summarize_results


def _run(d: float, lr: float, valid: float, ndcg: float, stopped: str) -> dict:
    test = {p: {"HR@10": 2 * ndcg, "NDCG@10": ndcg, "MRR": ndcg / 2, "valid_ndcg10": valid, "best_epoch": 4}
            for p in ("exclude_seen", "all_items")}
    return {"model": "sasrec-gBCE32", "dropout": d, "lr": lr, "seed": 0, "test": test, "train_seconds": 100.0,
            "epochs": 14, "stopped": stopped}


def test_a_capped_run_is_never_picked_and_counted_apart():
    stages = {"sasrec-gBCE32_d0.2_lr0.002_s0": _run(0.2, 2e-3, 0.05, 0.04, "early_stopping"),
              # higher validation, but cut short: must not be picked
              "sasrec-gBCE32_d0.5_lr0.002_s0": _run(0.5, 2e-3, 0.06, 0.05, "stop_file")}
    report = summarize_results(SimpleNamespace(data={"stages": stages, "size": "x"}), None, None, 10, None)
    row = report["tables"]["exclude_seen"]["models"]["rectools_sasrec-gBCE32"]
    assert row["picked"] == {"dropout": 0.2, "lr": 2e-3, "valid_ndcg10": 0.05}
    assert row["NDCG@10"] == 0.04 and row["grid_points_done"] == 1 and row["capped_runs"] == 1


def test_only_capped_runs_give_no_row():
    stages = {"sasrec-gBCE32_d0.5_lr0.002_s0": _run(0.5, 2e-3, 0.06, 0.05, "stop_file")}
    report = summarize_results(SimpleNamespace(data={"stages": stages, "size": "x"}), None, None, 10, None)
    assert "rectools_sasrec-gBCE32" not in report["tables"]["all_items"]["models"]


def _grid_run(d: float, lr: float, valid: float, status: str = "converged", seed: int = 0):
    from bench.peers_grid import GridRun

    return GridRun("sasrec", d, lr, seed, status, 10, 50.0, {"exclude_seen": valid, "all_items": valid / 2},
                   {"exclude_seen": 5, "all_items": 6})


def test_the_pick_is_the_best_converged_seed0_validation_and_final_only_with_the_whole_grid():
    from bench.peers_grid import pick

    runs = [_grid_run(0.2, 1e-3, 0.10), _grid_run(0.2, 2e-3, 0.12),
            _grid_run(0.5, 1e-3, 0.20, status="partial"),  # best validation so far, but still running: not picked
            _grid_run(0.5, 2e-3, 0.30, seed=1)]  # an extra seed never takes part in the pick
    best = pick(runs, "exclude_seen")
    assert (best.dropout, best.lr, best.valid_ndcg10) == (0.2, 2e-3, 0.12)
    assert not best.final and best.converged_points == 2
    runs = [_grid_run(0.2, 1e-3, 0.10), _grid_run(0.2, 2e-3, 0.12), _grid_run(0.5, 1e-3, 0.11),
            _grid_run(0.5, 2e-3, 0.12)]  # a tie with 0.2 / 2e-3: the earlier grid point wins
    best = pick(runs, "all_items")
    assert (best.dropout, best.lr, best.valid_ndcg10) == (0.2, 2e-3, 0.06) and best.final
    assert pick([_grid_run(0.2, 1e-3, 0.1, status="stopped")], "exclude_seen") is None


def test_the_report_lists_every_run_with_its_status_and_marks_the_provisional_pick(tmp_path):
    import json

    from bench.peers_report import grid_markdown

    stages = {"sasrec-gBCE32_d0.2_lr0.002_s0": _run(0.2, 2e-3, 0.05, 0.04, "early_stopping"),
              "sasrec-gBCE32_d0.5_lr0.002_s0": _run(0.5, 2e-3, 0.06, 0.05, "stop_file")}
    # a run still going: its folder has a progress.json and no saved result
    running = tmp_path / "sasrec-gBCE32_d0.2_lr0.001_s0"
    running.mkdir()
    history = [{"epoch": e, "seconds": 20.0 * e, "valid_ndcg10_exclude_seen": v, "valid_ndcg10_all_items": v / 2}
               for e, v in ((1, 0.01), (2, 0.09), (3, 0.08))]
    (running / "progress.json").write_text(json.dumps(history))
    report = summarize_results(SimpleNamespace(data={"stages": stages, "size": "x"}), None, None, 10, tmp_path)
    row = report["tables"]["all_items"]["models"]["rectools_sasrec-gBCE32"]
    assert row["pick_final"] is False and row["partial_runs"] == 1 and row["capped_runs"] == 1
    assert row["cpu_seconds_all_runs"] == 100.0 + 100.0 + 60.0 and row["grid_cpu_seconds"] == 100.0
    runs = {(r["dropout"], r["lr"]): r for r in report["grids"]["sasrec-gBCE32"]}
    assert runs[(0.2, 1e-3)]["status"] == "partial" and runs[(0.2, 1e-3)]["epochs"] == 3
    assert runs[(0.2, 1e-3)]["valid_ndcg10"]["exclude_seen"] == 0.09 and runs[(0.2, 1e-3)]["best_epoch"]["all_items"] == 2
    assert runs[(0.2, 2e-3)]["picked_under"] == ["exclude_seen", "all_items"]
    assert runs[(0.5, 2e-3)]["status"] == "stopped" and runs[(0.5, 2e-3)]["picked_under"] == []
    text = "\n".join(grid_markdown("rectools_sasrec-gBCE32", report["grids"]["sasrec-gBCE32"]))
    assert text.count("**partial**") == 2 and "converged (early stopping)" in text
