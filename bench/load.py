"""Load: many browser sessions at once against one `interestlens serve` server.

Each session is a Chromium browser context (one Chromium, driven by Playwright) on the user explorer; every
`--interval` seconds it switches to another user by typing the id into the "User id" box, and waits until the page
shows that user's event count with its charts drawn and the script run over. `--explainers` of the sessions also
open the Explain page after each switch, pick the top recommendation, wait for the explanation, and go back.

Measured:
- per-interaction latency (p50/p95): user switch, explanation, page change; first for one session alone (the
  baseline, before the load), then under load;
- errors: uncaught page errors, console errors, failed requests, HTTP responses >= 400, Streamlit exception and
  error elements on the page after an interaction, and interactions that did not finish within `--timeout`;
- server memory: RSS of the server's process tree, sampled every second; after the warm-up (`--warmup` seconds
  into the load) against the end of the run;
- the load average of the machine (other work shares it).

Usage::

    python bench/load.py                                  # ML-100k, 20 sessions for 120 s, 5 of them explaining
    python bench/load.py --sessions 3 --seconds 20 --explainers 1 --size synthetic
    python bench/load.py --model data/cache/models/ml100k-default   # reuse a trained model (copied, fingerprint checked)

Everything it builds lives under data/cache/load/ (never data/ml100k.duckdb, which other benchmarks read): the
database (built from the MovieLens-100k files, or a synthetic log), a trained model (copied from `--model`, else
trained with a time budget) and its drift summaries. Writes `bench/results/load-<size>.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Results  # noqa: E402
from bench.load_data import prepare, user_counts  # noqa: E402
from bench.load_page import CHROMIUM  # noqa: E402
from bench.load_server import server  # noqa: E402
from bench.load_sessions import drive  # noqa: E402

WORK = ROOT / "data" / "cache" / "load"

__all__ = ["main"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=["ml100k", "synthetic"], default="ml100k")
    ap.add_argument("--sessions", type=int, default=20, help="browser sessions at once")
    ap.add_argument("--seconds", type=float, default=120.0, help="how long the sessions switch users")
    ap.add_argument("--explainers", type=int, default=5, help="sessions that also open explanations")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between a session's user switches")
    ap.add_argument("--warmup", type=float, default=20.0, help="seconds into the load when memory is first read")
    ap.add_argument("--baseline-seconds", type=float, default=60.0, help="one explaining session alone (0: skip)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds before an interaction counts as failed")
    ap.add_argument("--model", type=Path, default=None, help="a trained model of this database to copy")
    ap.add_argument("--train-seconds", type=float, default=600.0, help="training budget when no model exists")
    ap.add_argument("--work", type=Path, default=WORK)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: the load benchmark drives Debian's Chromium (apt-get install chromium).")

    db, model = prepare(args.size, args.work, args.model, args.train_seconds)
    counts = user_counts(db)
    tag = args.size if args.sessions == 20 else f"{args.size}-{args.sessions}sessions"
    results = Results("load", tag, resume=False)
    results.set("setup", {"db": str(db), "model": str(model), "users": len(counts), "events": sum(counts.values()),
                          "sessions": args.sessions, "seconds": args.seconds, "explainers": args.explainers,
                          "interval_s": args.interval, "load_average_before": os.getloadavg(),
                          "cpu_count": os.cpu_count()})
    with server(db, model, args.work / "server.log") as (url, pid):
        if args.baseline_seconds > 0:
            base = asyncio.run(drive(url, counts, 1, args.baseline_seconds, 1, interval=args.interval, server_pid=pid,
                                     seed=args.seed + 1000, timeout_s=args.timeout, warmup=0.0))
            results.stage("baseline", base)
            _print("one session alone", base)
        load = asyncio.run(drive(url, counts, args.sessions, args.seconds, args.explainers, interval=args.interval,
                                 warmup=args.warmup, server_pid=pid, seed=args.seed, timeout_s=args.timeout))
        results.stage("load", load)
        _print(f"{args.sessions} sessions", load)
    base_fig = results.get("baseline") or {}
    p95 = load["switch_ms"]["p95"]
    growth = load["server_rss_mb"]["growth"]
    results.set("summary", {
        "sessions": args.sessions, "seconds": args.seconds, "explainers": args.explainers,
        "errors": load["error_count"], "retyped": load["retyped"],
        "switch_p50_ms_alone": (base_fig.get("switch_ms") or {}).get("p50"),
        "switch_p95_ms_alone": (base_fig.get("switch_ms") or {}).get("p95"),
        "switch_p50_ms_load": load["switch_ms"]["p50"], "switch_p95_ms_load": p95,
        "explain_p50_ms_alone": (base_fig.get("explain_ms") or {}).get("p50"),
        "explain_p95_ms_alone": (base_fig.get("explain_ms") or {}).get("p95"),
        "explain_p50_ms_load": load["explain_ms"]["p50"], "explain_p95_ms_load": load["explain_ms"]["p95"],
        "server_rss_mb_after_warmup": load["server_rss_mb"]["after_warmup"],
        "server_rss_mb_end": load["server_rss_mb"]["end"], "server_rss_growth": growth,
        "load_average_after": os.getloadavg(),
        "cpu_seconds_in_load_window": load.get("cpu_seconds_in_window"),
        "target_switch_p95_le_1s": p95 is not None and p95 <= 1000.0,
        "target_rss_growth_le_20pct": growth is not None and growth <= 0.20,
        "target_zero_errors": load["error_count"] == 0,
    })
    print(json.dumps(results.data["summary"], indent=2))
    print(f"wrote {results.path}")


def _print(label: str, f: dict) -> None:
    def p(d: dict) -> str:
        return "-" if not d["n"] else f"p50 {d['p50']:.0f} ms, p95 {d['p95']:.0f} ms (n={d['n']})"

    print(f"{label}: switch {p(f['switch_ms'])}; explanation {p(f['explain_ms'])}; page {p(f['page_ms'])}; "
          f"errors {f['error_count']} (ids retyped {f['retyped']}); server RSS {f['server_rss_mb']['after_warmup']} -> {f['server_rss_mb']['end']} MiB; "
          f"CPU seconds in the timed window {f.get('cpu_seconds_in_window')}; load average {f['load_average']}")
    for e in f["errors"][:20]:
        print("  error:", e)


if __name__ == "__main__":
    main()
