"""Time the full fairness report and save it.

    # MovieLens-100k with a trained model (its eval_users / recommendations Parquet are written first if missing)
    .venv/bin/python bench/fairness.py --db DB --model DIR --size ml100k \
        --by gender --by age_band --by occupation --by activity_quartile
    # a synthetic database with N events and a seeded, untrained model (timing only), built in --scratch
    .venv/bin/python bench/fairness.py --synthetic 1000000 --scratch /tmp/interestlens-bench-fairness

Stages (saved to bench/results/fairness-<size>.json as they finish; a rerun resumes):
1. `prepare`: write eval_users.parquet (`core.evaluate.evaluate_model`) and recommendations.parquet
   (`core.recommend.recommend_all`) beside the model when missing, so the report reads them as in production;
2. `report`: wall time of the whole report (`load_inputs` + `fairness_report` with 200 bootstrap resamples and
   the monthly trend through the model), `--repeat` times, with the split between loading, the overall report
   and the trend; the last report's JSON is saved under the key `report`.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Results, peak_rss_mb  # noqa: E402
from cli.common import to_jsonable  # noqa: E402
from core.fairness import TREND_USERS, fairness_report, load_inputs  # noqa: E402

log = logging.getLogger("bench.fairness")


def synthetic(args) -> tuple[Path, Path]:
    """A synthetic database with `args.synthetic` events and a seeded untrained model over it, in the scratch folder."""
    import torch

    from core.checkpoint import save_checkpoint
    from core.datasets.build import build_synthetic
    from core.model import InterestModel, ModelConfig, ModelSizes
    from core.sequences import build_vocab, data_fingerprint
    from core.store import connect_read

    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    n = int(args.synthetic)
    db, model_dir = scratch / f"synthetic-{n}.duckdb", scratch / f"untrained-{n}"
    if not db.exists():
        build_synthetic(db, users=max(1, n // 100), items=max(10, n // 200), events=n, seed=0, categories=12)
    if not (model_dir / "model.safetensors").exists():
        with connect_read(db) as con:
            vocab, fp = build_vocab(con), data_fingerprint(con)
        sizes = ModelSizes(
            vocab.n_items, len(vocab.categories), len(vocab.event_types), tuple(len(v) for v in vocab.context.values())
        )
        torch.manual_seed(0)
        model = InterestModel(ModelConfig(), sizes, vocab.category_weights())
        save_checkpoint(model_dir, model.eval(), vocab, fp, {"epochs": 0, "note": "untrained, for timing only"})
    return db, model_dir


def prepare(db: Path, model_dir: Path, res: Results) -> None:
    from core.checkpoint import load_checkpoint
    from core.evaluate import EVAL_USERS_FILE, evaluate_model
    from core.recommend import RECOMMENDATIONS_FILE, recommend_all, write_recommendations
    from core.store import connect_read

    figures: dict = {}
    if not (model_dir / EVAL_USERS_FILE).exists():
        t0 = time.perf_counter()
        result = evaluate_model(db, model_dir, device="cpu")
        figures["evaluate_seconds"] = time.perf_counter() - t0
        figures["test_metrics"] = result.metrics
    if not (model_dir / RECOMMENDATIONS_FILE).exists():
        t0 = time.perf_counter()
        loaded = load_checkpoint(model_dir)
        with connect_read(db) as con:
            recs = recommend_all(loaded, con, k=20)
        write_recommendations(recs, model_dir / RECOMMENDATIONS_FILE)
        figures["recommend_seconds"] = time.perf_counter() - t0
    if figures:
        res.stage("prepare", figures)


def report_once(db: Path, model_dir: Path, args) -> tuple[dict, dict]:
    """One full report (load + overall + trend), then the overall report alone to split the time."""
    t0, c0 = time.perf_counter(), time.process_time()
    loaded = load_inputs(db, model_dir, k=args.k, by=args.by)
    t1 = time.perf_counter()
    full = fairness_report(
        loaded.inputs, k=args.k, by=args.by, n_boot=args.n_boot, recommend_fn=loaded.recommend_fn, freq=args.window,
        trend_users=args.trend_users or None,
    )
    t2, c2 = time.perf_counter(), time.process_time()
    fairness_report(loaded.inputs, k=args.k, by=args.by, n_boot=args.n_boot, recommend_fn=None)
    t3 = time.perf_counter()
    times = {
        "full_report_seconds": t2 - t0,  # wall time: load + the whole report (overall and trend)
        "full_report_cpu_seconds": c2 - c0,  # CPU time of this process over the same span (all threads)
        "load_seconds": t1 - t0,
        "overall_seconds": t3 - t2,
        "trend_seconds": (t2 - t1) - (t3 - t2),  # the full report minus the same report without the trend
        "notes": loaded.notes,
    }
    return times, {"model": str(model_dir), "notes": loaded.notes, **full.to_dict()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--size", help="label of the results file (default: ml100k, or synthetic-<N>)")
    ap.add_argument("--synthetic", type=int, help="build a synthetic database with this many events instead")
    ap.add_argument("--scratch", default="/tmp/interestlens-bench-fairness")
    ap.add_argument("--by", action="append", default=None)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--window", default="month")
    ap.add_argument("--trend-users", type=int, default=TREND_USERS,
                    help="users scored per trend window, as the CLI and the app do (0: all)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    ap.add_argument("--fresh", action="store_true", help="ignore earlier results")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    if args.synthetic:
        db, model_dir = synthetic(args)
        size = args.size or f"synthetic-{args.synthetic}"
    else:
        if not args.db or not args.model:
            ap.error("give --db and --model, or --synthetic N")
        db, model_dir, size = args.db, args.model, args.size or "ml100k"
    res = Results("fairness", size, resume=not args.fresh)
    res.set("settings", {"db": str(db), "model": str(model_dir), "by": args.by, "k": args.k, "n_boot": args.n_boot,
                         "window": args.window, "threads": args.threads})
    prepare(db, model_dir, res)

    runs = []
    for i in range(args.repeat):
        times, report = report_once(db, model_dir, args)
        runs.append(times)
        log.info("run %d: %s", i + 1, {k: round(v, 2) for k, v in times.items() if isinstance(v, float)})
    full = [r["full_report_seconds"] for r in runs]
    figures = {
        "runs": runs,
        "full_report_seconds_median": statistics.median(full),
        "full_report_seconds_min": min(full),
        "full_report_cpu_seconds_median": statistics.median(r["full_report_cpu_seconds"] for r in runs),
        "load_average_1min": os.getloadavg()[0],
        "peak_rss_mb": peak_rss_mb(),
        "users": report["items"]["users"],
        "windows": len(report["over_time"]),
    }
    res.stage("report", figures)
    res.set("report", to_jsonable(report))
    print(f"fairness report on {size}: median {figures['full_report_seconds_median']:.2f} s wall "
          f"({figures['full_report_cpu_seconds_median']:.2f} s CPU), min {figures['full_report_seconds_min']:.2f} s "
          f"over {args.repeat} runs, load average {figures['load_average_1min']:.1f} "
          f"(load {runs[-1]['load_seconds']:.2f} s, overall {runs[-1]['overall_seconds']:.2f} s, "
          f"trend {runs[-1]['trend_seconds']:.2f} s, {figures['windows']} windows); peak RSS {figures['peak_rss_mb']:.0f} MiB")
    print(f"results: {res.path}")


if __name__ == "__main__":
    main()
