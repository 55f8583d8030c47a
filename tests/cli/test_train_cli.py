"""The train / evaluate commands' JSON contracts, and torchrun DDP with 2 CPU processes (gloo)."""

import json
from pathlib import Path

from typer.testing import CliRunner

from cli import app
from core.checkpoint import load_checkpoint
from core.evaluate import METRIC_KEYS
from core.fairness import load_inputs

ROOT = Path(__file__).resolve().parents[2]


def test_cli_train_and_evaluate_json(synthetic_db, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli-model"
    r = runner.invoke(app, ["train", "--db", str(synthetic_db), "--out", str(out), "--epochs", "1", "--max-len", "20",
                            "--seed", "3", "--device", "cpu", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert set(res) == {"epochs", "seconds", "best_epoch", "valid", "test", "device", "path", "stopped", "social",
                        "fairness_inputs_seconds"}
    # the fairness report's inputs were saved beside the model: a report computes nothing
    assert res["fairness_inputs_seconds"] > 0 and (out / "fairness_inputs" / "key.json").is_file()
    assert load_inputs(synthetic_db, out, k=10).notes == []
    assert res["social"] is False  # the test database has no social edges
    assert res["path"] == str(out) and set(res["test"]) == set(METRIC_KEYS) and res["stopped"]
    assert res["epochs"] == 1 and res["device"] == "cpu" and set(METRIC_KEYS) == set(res["valid"])
    r = runner.invoke(app, ["evaluate", "--db", str(synthetic_db), "--model", str(out), "--json"])
    assert r.exit_code == 0, r.output
    ev = json.loads(r.stdout)
    card = load_checkpoint(out).card
    assert set(ev) == {*METRIC_KEYS, "users", "baselines", "protocol", "exclude_seen", "all_items", "seen", "social",
                       "interest"}
    assert ev["users"] == 120 and ev["social"] is False
    it = ev["interest"]  # the category forecast beside the tuned histogram (core.trajectory.interest)
    assert it["forecast"]["targets"] == it["histogram"]["targets"] > 0 and len(it["reliability"]) == 10
    assert it["forecast_kind"] == card["interest"]["forecast_params"]["kind"]
    assert set(ev["baselines"]) == {"most_popular", "markov"} and set(ev["baselines"]["markov"]) == set(METRIC_KEYS)
    assert ev["NDCG@10"] == card["test"]["NDCG@10"]  # the card's test metrics are the same
    # the tiny synthetic log re-consumes items (50 events a user over 150 items): auto includes seen items
    assert card["seen"]["repeat_share"] >= 0.05 and ev["protocol"] == card["seen"]["protocol"] == "all_items"
    for p in ("exclude_seen", "all_items"):  # both sections, today's keys plus `protocol`
        assert set(ev[p]) == {*METRIC_KEYS, "users", "baselines", "protocol"} and ev[p]["protocol"] == p
    assert ev["all_items"]["NDCG@10"] == ev["NDCG@10"]
    assert ev["exclude_seen"]["NDCG@10"] != ev["all_items"]["NDCG@10"]
    assert "re-consume" in ev["seen"]["reason"]
    # the defaults rule ran (no --dropout or --patience given): the card records the profile it read
    assert card["defaults"]["profile"]["valid_users"] == 120 and card["train_config"]["explicit"] == ["max_len"]
    r = runner.invoke(app, ["evaluate", "--db", str(synthetic_db), "--model", str(out), "--seen", "exclude", "--json"])
    forced = json.loads(r.stdout)
    assert forced["protocol"] == "exclude_seen" and forced["NDCG@10"] == ev["exclude_seen"]["NDCG@10"]
    r = runner.invoke(app, ["evaluate", "--db", str(synthetic_db), "--model", str(out), "--seen", "never"])
    assert r.exit_code == 2 and "auto, exclude or include" in r.output


def test_cli_train_max_steps_stops_after_that_many_optimiser_steps(synthetic_db, tmp_path):
    out = tmp_path / "steps"
    r = CliRunner().invoke(app, ["train", "--db", str(synthetic_db), "--out", str(out), "--epochs", "5", "--max-len", "20",
                                 "--max-steps", "3", "--device", "cpu", "--json"])
    assert r.exit_code == 0, r.output
    card = load_checkpoint(out).card
    assert json.loads(r.stdout)["epochs"] == 1 and card["stopped"] == "max_steps"
    assert card["train_config"]["max_steps"] == 3 and card["resume"]["history"][0]["steps"] == 3


def test_torchrun_ddp_two_cpu_processes(synthetic_db, tmp_path, torchrun_train):
    out = tmp_path / "ddp"
    res = torchrun_train("--db", str(synthetic_db), "--out", str(out), "--epochs", "2", "--max-len", "20")
    assert res["epochs"] == 2 and res["device"] == "cpu"
    card = load_checkpoint(out).card
    assert card["processes"] == 2 and card["test"]["HR@10"] > 0
