"""How InterestLens's heavy paths cost as the log grows: synthetic logs of 100k, 1M and 10M events.

    .venv/bin/python bench/scale.py --size small|1m|10m [--stages build,train,...] [--fresh]

Sizes (seed 0, 12 categories; 100 events per user and 2 per item at every size, so everything grows together):
small = 100,000 events / 1,000 users / 500 items; 1m = 1M / 10,000 / 5,000; 10m = 10M / 100,000 / 50,000
(`interestlens build --dataset synthetic --users 100000 --items 50000 --events 10000000`).

Stages (`bench/scale_stages.py`), each in its own subprocess so its peak RSS (VmHWM) is its own, saved to
`bench/results/scale-<size>.json` as it finishes (a rerun skips finished stages; `--fresh` redoes the listed ones):
- `build`: generate the log and ingest it in one run (`core.datasets.build.build_synthetic`), per ingest step;
- `train`: one epoch of `core.train.train` (sampled softmax above `TrainConfig.sampled_softmax_above` items),
  optimisation and validation timed apart; the checkpoint is the model every later stage uses. With
  `--max-steps N` only N optimiser steps run (`TrainConfig.max_steps`): seconds per step and the steps of a whole
  epoch are measured, and the epoch is reported as `train_epoch_seconds_projected`, a projection, with
  `train_epoch_seconds` left null;
- `evaluate`: `evaluate_model` (eval_users.parquet) and `recommend_all` (recommendations.parquet) beside it;
- `drift`: the drift batch (`core.trajectory.build_drift`, every user);
- `fairness`: `load_inputs` + `fairness_report` with 200 bootstrap resamples and the monthly trend;
- `switch`: the dashboard's user-switch latency, server-side, as `bench/dashboard.py` measures it;
- `app`: `interestlens serve` driven by Chromium through every page and several users; the server's peak RSS;
- `parquet`: the log exported as Parquet partitioned by user bucket, attached as a database
  (`interestlens attach`), `user_history` p50/p95 against the table-backed database, and a training read.
Every stage records wall and CPU seconds, peak RSS and the 1-minute load average before and after (the machine
is shared). A build / evaluate / drift / fairness run that takes under `--repeat-under` seconds (60) is run
`--repeats` times (3) and every figure is the median of the runs (`runs`, `run_wall_seconds`); slower runs (the
heavy stages at 10M) are single. Switch and parquet report p50/p95 over many reads of one run. Data lives in data/cache/scale/<size>/ (ignored by git).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Results  # noqa: E402

SIZES = {
    "small": dict(events=100_000, users=1_000, items=500),
    "1m": dict(events=1_000_000, users=10_000, items=5_000),
    "10m": dict(events=10_000_000, users=100_000, items=50_000),
}
STAGES = ("build", "train", "evaluate", "drift", "fairness", "switch", "app", "parquet")
WORK = ROOT / "data" / "cache" / "scale"


def run_stage(stage: str, size: str, args: argparse.Namespace) -> dict:
    """Run one stage in a child process; its figures plus wall / CPU seconds and load averages."""
    cmd = [sys.executable, str(Path(__file__).with_name("scale_stages.py")), stage, "--size", size,
           "--work", str(WORK / size), "--threads", str(args.threads)]
    if stage == "train" and args.max_steps:
        cmd += ["--max-steps", str(args.max_steps)]
    if stage == "train" and args.train_from_card:
        cmd += ["--from-card"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"stage {stage} failed:\n{done.stderr[-4000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {**figures, "stage_wall_seconds": round(wall, 2), "stage_cpu_seconds": round(cpu, 2),
            "load_avg_1m_before": round(load0, 2), "load_avg_1m_after": round(os.getloadavg()[0], 2)}


REPEAT_STAGES = ("build", "evaluate", "drift", "fairness")  # whole-run figures; switch/parquet already sample many reads


def median_figures(runs: list[dict]) -> dict:
    """Per-key medians of several runs' figures (nested dicts key by key); other values from the first run."""
    out: dict = {}
    for k, v in runs[0].items():
        vals = [r.get(k) for r in runs]
        if isinstance(v, dict) and all(isinstance(x, dict) for x in vals):
            out[k] = median_figures(vals)
        elif all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vals):
            m = statistics.median(vals)
            out[k] = round(m, 4) if isinstance(m, float) else m
        else:
            out[k] = v
    return out


def run_repeated(stage: str, size: str, args: argparse.Namespace) -> dict:
    """One run; where it took under --repeat-under seconds, --repeats runs in all and the median of each figure."""
    runs = [run_stage(stage, size, args)]
    if stage in REPEAT_STAGES and runs[0]["stage_wall_seconds"] < args.repeat_under:
        runs += [run_stage(stage, size, args) for _ in range(args.repeats - 1)]
    if len(runs) == 1:
        return {**runs[0], "runs": 1}
    out = median_figures(runs)
    out.update(runs=len(runs), run_wall_seconds=[r["stage_wall_seconds"] for r in runs],
               load_avg_1m_before=runs[0]["load_avg_1m_before"], load_avg_1m_after=runs[-1]["load_avg_1m_after"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads in the compute stages")
    ap.add_argument("--fresh", action="store_true", help="redo the listed stages even if already recorded")
    ap.add_argument("--max-steps", type=int, default=None,
                    help="train: time this many optimiser steps instead of a whole epoch; the epoch's seconds are "
                         "then reported as train_epoch_seconds_projected (seconds per step x steps per epoch)")
    ap.add_argument("--train-from-card", action="store_true",
                    help="train: record the figures of a train run stopped after its epoch (its checkpoint card) "
                         "instead of training again")
    ap.add_argument("--repeats", type=int, default=3, help="runs of a quick stage (medians are reported)")
    ap.add_argument("--repeat-under", type=float, default=60.0,
                    help="a build / evaluate / drift / fairness run shorter than this many wall seconds is repeated")
    args = ap.parse_args()
    res = Results("scale", args.size)
    res.set("dataset", {**SIZES[args.size], "categories": 12, "seed": 0, "work": str((WORK / args.size).relative_to(ROOT))})
    for stage in args.stages.split(","):
        if stage not in STAGES:
            raise SystemExit(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
        if res.done(stage) and not args.fresh:
            print(f"{stage}: done before, skipped", flush=True)
            continue
        print(f"{stage}: running ...", flush=True)
        figures = run_repeated(stage, args.size, args)
        res.stage(stage, figures)
        shown = {k: v for k, v in figures.items() if not isinstance(v, (dict, list))}
        print(f"{stage}: {json.dumps(shown)}", flush=True)
    res.set("summary", summary(res.data["stages"]))
    print(json.dumps(res.data["summary"], indent=2))
    print(f"results: {res.path.relative_to(ROOT)}")


def summary(st: dict) -> dict:
    """The headline figures (None where a stage has not run)."""

    def get(stage: str, *keys):
        v = st.get(stage)
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return v

    return {
        "ingest_rows_per_s": get("build", "ingest_rows_per_s"),
        "build_peak_rss_mb": get("build", "peak_rss_mb"),
        "train_epoch_seconds": get("train", "epoch_train_seconds"),  # measured whole epoch (None if projected)
        "train_epoch_seconds_projected": get("train", "train_epoch_seconds_projected"),  # from --max-steps steps
        "train_seconds_per_step": get("train", "train_seconds_per_step"),
        "train_cpu_seconds_per_step": get("train", "train_cpu_seconds_per_step"),
        "train_epoch_cpu_seconds_projected": get("train", "train_epoch_cpu_seconds_projected"),
        "train_peak_rss_mb": get("train", "peak_rss_mb"),
        "evaluate_seconds": get("evaluate", "evaluate_seconds"),
        "drift_batch_seconds": get("drift", "seconds"),
        "drift_peak_rss_mb": get("drift", "peak_rss_mb"),
        "fairness_report_seconds": get("fairness", "full_report_seconds"),
        "fairness_peak_rss_mb": get("fairness", "peak_rss_mb"),
        "user_switch_p50_ms": get("switch", "total_ms", "p50"),
        "user_switch_p95_ms": get("switch", "total_ms", "p95"),
        "user_view_p95_ms": get("switch", "user_view_ms", "p95"),
        "user_switch_cpu_p95_ms": get("switch", "total_cpu_ms", "p95"),
        "user_view_cpu_p95_ms": get("switch", "user_view_cpu_ms", "p95"),
        "app_peak_rss_mb": get("app", "server_peak_rss_mb"),
        "history_table_p95_ms": get("parquet", "history_table_ms", "p95"),
        "history_parquet_p95_ms": get("parquet", "history_parquet_ms", "p95"),
    }


if __name__ == "__main__":
    main()
