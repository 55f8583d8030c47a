"""One table of the benchmark figures at a size, read from `bench/results/*-<size>.json` (what `make bench` prints).

    .venv/bin/python bench/table.py --size 10m            # the figures at one size (scale, ingest, live)
    .venv/bin/python bench/table.py --growth small,1m,10m # the scale figures side by side, with growth ratios
    .venv/bin/python bench/table.py --readme              # rewrite the tables in bench/README.md

Nothing is measured here: every value is copied from a results file, and a figure a stage has not produced yet
shows as "-". A training epoch timed on part of its steps (`bench/scale.py --max-steps`) is shown as a projection.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS  # noqa: E402
from bench.scale import summary  # noqa: E402

# (label, unit, scale summary key, or a path into the stages: CPU seconds resist a shared machine's load better)
SCALE_ROWS = [
    ("ingest, build_synthetic (validated insert)", "rows/s", "ingest_rows_per_s"),
    ("build peak memory", "MB", "build_peak_rss_mb"),
    ("training, seconds per epoch (measured)", "s", "train_epoch_seconds"),
    ("training, seconds per epoch (PROJECTED from measured steps)", "s", "train_epoch_seconds_projected"),
    ("training, CPU seconds per epoch (PROJECTED from measured steps)", "s", "train_epoch_cpu_seconds_projected"),
    ("training, wall seconds per optimiser step", "s", "train_seconds_per_step"),
    ("training, CPU seconds per optimiser step (all threads)", "s", "train_cpu_seconds_per_step"),
    ("training step, full softmax, CPU ms (random batch)", "ms", ("train", "step_ms", "full", "cpu_ms")),
    ("training step, sampled softmax, CPU ms (random batch)", "ms", ("train", "step_ms", "sampled", "cpu_ms")),
    ("training peak memory", "MB", "train_peak_rss_mb"),
    ("evaluate (test split, every user)", "s", "evaluate_seconds"),
    ("drift batch (every user)", "s", "drift_batch_seconds"),
    ("drift stage CPU seconds (all threads)", "s", ("drift", "cpu_seconds")),
    ("drift peak memory", "MB", "drift_peak_rss_mb"),
    ("fairness report (load + report + monthly trend)", "s", "fairness_report_seconds"),
    ("fairness report CPU seconds (all threads)", "s", ("fairness", "full_report_cpu_seconds")),
    ("fairness peak memory", "MB", "fairness_peak_rss_mb"),
    ("user switch p50 (history, trajectory, top-10, attention)", "ms", "user_switch_p50_ms"),
    ("user switch p95 (same four reads)", "ms", "user_switch_p95_ms"),
    ("user switch p95, calls.user_view (the explorer's one read)", "ms", "user_view_p95_ms"),
    ("user switch p95 CPU ms (four reads; this process, all threads)", "ms", "user_switch_cpu_p95_ms"),
    ("user switch p95 CPU ms, calls.user_view", "ms", "user_view_cpu_p95_ms"),
    ("app (interestlens serve) peak memory, Chromium session", "MB", "app_peak_rss_mb"),
    ("user history p95, DuckDB table", "ms", "history_table_p95_ms"),
    ("user history p95, Parquet by user bucket", "ms", "history_parquet_p95_ms"),
]


def figure(summ: dict, stages: dict, key):
    if isinstance(key, str):
        return summ.get(key)
    v = stages
    for k in key:
        v = v.get(k) if isinstance(v, dict) else None
    return v


def load(name: str, size: str) -> dict | None:
    path = RESULTS / f"{name}-{size}.json"
    return json.loads(path.read_text()) if path.exists() else None


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}" if abs(v) >= 1 else f"{v:.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def load_range(stages: dict) -> str:
    xs = [v[k] for v in stages.values() if isinstance(v, dict) for k in ("load_avg_1m_before", "load_avg_1m_after",
                                                                         "load_avg_1m") if k in v]
    xs += [x for v in stages.values() if isinstance(v, dict) and isinstance(v.get("run"), dict)
           for x in v["run"].get("load_avg_1m_polled", {}).values()]  # a stage whose run was polled by hand
    return f"{min(xs):.1f}-{max(xs):.1f}" if xs else "-"


def size_rows(size: str) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    """(figure, value, unit, source) rows of every results file at `size`, and notes."""
    rows, notes = [], []
    sc = load("scale", size)
    if sc:
        s = summary(sc["stages"])
        for label, unit, key in SCALE_ROWS:
            if key in ("train_epoch_seconds_projected", "train_epoch_cpu_seconds_projected") and s.get(key) is None:
                continue
            rows.append((label, fmt(figure(s, sc["stages"], key)), unit, "scale"))
        tr = sc["stages"].get("train") or {}
        if tr.get("projection"):
            notes.append(f"training epoch at {size} is a projection: {tr['projection']}")
        missing = [k for k in ("build", "train", "evaluate", "drift", "fairness", "switch", "app", "parquet")
                   if k not in sc["stages"]]
        if missing:
            notes.append(f"scale-{size}: stages not run yet: {', '.join(missing)}")
        notes.append(f"scale-{size}: 1-minute load average during the stages {load_range(sc['stages'])} "
                     f"on {sc['machine']['cores']} cores (shared machine)")
    ing = load("ingest", size)
    if ing:
        st = ing["stages"]
        rows.append(("ingest, CSV file (interestlens ingest)", fmt((st.get("interestlens") or {}).get("rows_per_s")),
                     "rows/s", "ingest"))
        rows.append(("ingest peak memory", fmt((st.get("interestlens") or {}).get("peak_rss_mb")), "MB", "ingest"))
        rows.append(("ingest vs bare DuckDB read_csv (same run)", fmt(ing.get("interestlens_vs_bare")), "x", "ingest"))
        rows.append(("user history p95 after ingest", fmt((st.get("history") or {}).get("p95")), "ms", "ingest"))
        notes.append(f"ingest-{size}: 1-minute load average {load_range(st)}")
    lv = load("live", size)
    if lv:
        st = lv["stages"]
        for stage, label in (("append_1k", "live append, 1k-row batches"), ("append_100k", "live append, 100k-row batches"),
                             ("follow_1k", "live follow (watched folder), 1k-row files")):
            if stage in st:
                rows.append((label, fmt(st[stage].get("rows_per_s")), "rows/s", "live"))
                rows.append((f"{label}, batch p95", fmt(st[stage].get("batch_ms_p95")), "ms", "live"))
        notes.append(f"live-{size}: 1-minute load average {load_range(st)}")
    return rows, notes


def print_size(size: str) -> None:
    rows, notes = size_rows(size)
    if not rows:
        raise SystemExit(f"no results at size {size} in {RESULTS}")
    print(f"| figure ({size}) | value | unit | bench |\n|---|---:|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")
    for n in notes:
        print(f"\n- {n}", end="")
    print()


def print_growth(sizes: list[str]) -> None:
    data = {s: load("scale", s) for s in sizes}
    sums = {s: summary(d["stages"]) if d else {} for s, d in data.items()}
    events = {s: (d or {}).get("dataset", {}).get("events") for s, d in data.items()}
    head = [f"{s} ({fmt(events[s])} events)" for s in sizes]
    ratios = [f"x {b}/{a}" for a, b in zip(sizes, sizes[1:], strict=False)]
    print("| figure | unit | " + " | ".join(head + ratios) + " |")
    print("|---|---|" + "---:|" * (len(head) + len(ratios)))
    for label, unit, key in SCALE_ROWS:
        vals = [figure(sums[s], (data[s] or {}).get("stages", {}), key) for s in sizes]
        if all(v is None for v in vals):
            continue
        rs = [fmt(b / a) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a else "-"
              for a, b in zip(vals, vals[1:], strict=False)]
        print(f"| {label} | {unit} | " + " | ".join([fmt(v) for v in vals] + rs) + " |")
    for s, d in data.items():
        if d:
            print(f"\n- {s}: 1-minute load average during the stages {load_range(d['stages'])}", end="")
    print()


README = Path(__file__).with_name("README.md")
START, END = "<!-- tables:start (bench/table.py --readme) -->", "<!-- tables:end -->"


def update_readme(sizes: list[str]) -> None:
    """Rewrite the tables between the markers of bench/README.md from the results files."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        print("### How cost grows (bench/results/scale-*.json)\n")
        print_growth(sizes)
        for size in sizes:
            print(f"\n### {size}: every figure (`make bench SIZE={size}`)\n")
            print_size(size)
    text = README.read_text()
    a, b = text.index(START) + len(START), text.index(END)
    README.write_text(text[:a] + "\n" + buf.getvalue() + text[b:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="small")
    ap.add_argument("--growth", help="comma-separated sizes: the scale figures side by side")
    ap.add_argument("--readme", action="store_true", help="rewrite the tables in bench/README.md (small, 1m, 10m)")
    args = ap.parse_args()
    if args.readme:
        update_readme(["small", "1m", "10m"])
    elif args.growth:
        print_growth(args.growth.split(","))
    else:
        print_size(args.size)


if __name__ == "__main__":
    main()
