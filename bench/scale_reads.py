"""The read-side stages of `bench/scale.py`: the dashboard's user switch, the app's memory in a real browser
session, and the Parquet-backed store against the table-backed one (run by `bench/scale_stages.py`)."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from bench.common import percentiles, wait_for_health

log = logging.getLogger("bench.scale")


def vm_hwm_mb(pid: int | str = "self") -> float:
    """Peak resident memory (VmHWM) of a process in MiB; 0 when it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def switch_latency(db: Path, model_dir: Path, n_users: int = 60, seed: int = 0) -> dict:
    """`bench/dashboard.py`'s switch-user measurement: history, trajectory, top-10 and attention for users seen for
    the first time, on the app's shared reader, after a pause longer than its idle time (so each reopens the file);
    and the same pause then `dashboard.cache.user_view` (what the explorer now calls: one read) for other users."""
    import torch

    from bench.dashboard import sample_users
    from dashboard import cache
    from dashboard.cache import APP_TORCH_THREADS
    from dashboard.reader import IDLE_S, READER, file_stamp

    torch.set_num_threads(APP_TORCH_THREADS)
    model = cache.model_ref(model_dir)
    ref = cache.DbRef(str(db), file_stamp(db))
    steps = {
        "history": lambda u: cache.user_history(ref, u),
        "trajectory": lambda u: cache.trajectory(ref, model, u),
        "recommendations": lambda u: cache.recommend(ref, model, u, 10),
        "attention": lambda u: cache.attention(ref, model, u, None),
    }
    users = sample_users(db, 2 * n_users + 3, seed)
    for u in users[:3]:  # warm-up, as the app pays once
        for fn in steps.values():
            fn(u)
        cache.user_view(ref, model, u)
    view_ms, view_cpu = [], []  # the explorer's one read (cache.user_view: history, trajectory, top-K, attention)
    for u in users[3 + n_users :]:
        time.sleep(IDLE_S + 0.3)
        t0, c0 = time.perf_counter(), time.process_time()
        cache.user_view(ref, model, u)
        view_ms.append((time.perf_counter() - t0) * 1000)
        view_cpu.append((time.process_time() - c0) * 1000)
    users = users[: 3 + n_users]
    per_step: dict[str, list[float]] = {k: [] for k in steps}
    totals, totals_cpu, lengths = [], [], []
    for u in users[3:]:
        time.sleep(IDLE_S + 0.3)
        assert not READER.is_open
        t_user, c_user = time.perf_counter(), time.process_time()
        for name, fn in steps.items():
            t0 = time.perf_counter()
            out = fn(u)
            per_step[name].append((time.perf_counter() - t0) * 1000)
            if name == "history":
                lengths.append(float(len(out)))
        totals.append((time.perf_counter() - t_user) * 1000)
        totals_cpu.append((time.process_time() - c_user) * 1000)
    # CPU ms (this process, all threads) beside the wall latencies: on a loaded machine the gap is waiting for a core
    return {"total_ms": percentiles(totals), **{f"{k}_ms": percentiles(v) for k, v in per_step.items()},
            "user_view_ms": percentiles(view_ms), "total_cpu_ms": percentiles(totals_cpu),
            "user_view_cpu_ms": percentiles(view_cpu), "history_events": percentiles(lengths),
            "torch_threads": APP_TORCH_THREADS}


def switch_stage(args, p) -> dict:
    return switch_latency(p["db"], p["model"])


APP_PAGES = [("Overview", ""), ("User explorer", "user?user={u}"), ("Attention", "attention?user={u}"),
             ("Cohorts", "cohorts"), ("Data & models", "data"), ("Explain a recommendation", "explain?user={u}"),
             ("Fairness", "fairness")]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def app_stage(args, p) -> dict:
    """`interestlens serve` driven by Chromium: every page once, the user explorer for several users; the server's
    peak RSS (VmHWM of its one process) after each page and in all."""
    import signal
    import socket
    import subprocess

    from playwright.sync_api import expect, sync_playwright

    from bench.dashboard import sample_users

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log_path = args.work / "app-server.log"
    progress = args.work / "app-visits.jsonl"  # each page as it finishes, so a stage stopped midway still shows them
    progress.unlink(missing_ok=True)
    cli = Path(sys.executable).with_name("interestlens")
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen([str(cli), "serve", "--db", str(p["db"]), "--model", str(p["model"]), "--port", str(port)],
                                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    url, visits, errors = f"http://127.0.0.1:{port}", [], []
    try:
        if not wait_for_health(url, proc, 180):
            raise SystemExit("the server did not start:\n" + log_path.read_text()[-3000:])
        users = sample_users(p["db"], args.app_users, seed=1)
        plan = [(h, path.format(u=users[0])) for h, path in APP_PAGES if h != "User explorer"]
        plan[1:1] = [("User explorer", f"user?user={u}") for u in users]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1440, "height": 2000})
            for heading, path in plan:
                t0 = time.perf_counter()
                page.goto(f"{url}/{path}")
                slow = 3_600_000 if heading == "Fairness" else 900_000
                expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=slow)
                page.wait_for_timeout(1000)
                page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=slow)
                if page.get_by_test_id("stException").count():
                    errors.append(f"{path}: {page.get_by_test_id('stException').first.inner_text()[:300]}")
                visits.append({"page": path, "seconds": round(time.perf_counter() - t0, 2),
                               "server_peak_rss_mb": round(vm_hwm_mb(proc.pid), 1),
                               "server_rss_mb": round(_rss_mb(proc.pid), 1)})
                log.info("app: %s", visits[-1])
                with open(progress, "a") as f:
                    f.write(json.dumps(visits[-1]) + "\n")
            browser.close()
    finally:
        peak = vm_hwm_mb(proc.pid)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return {"server_peak_rss_mb": round(peak, 1), "pages": visits, "errors": errors, "users": len(users)}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def parquet_stage(args, p) -> dict:
    """Export to Parquet by user bucket, attach, and compare reads with the table-backed database."""
    import random
    import shutil

    from core.checkpoint import load_checkpoint
    from core.sequences import load_sequences
    from core.store import connect_read, user_history
    from core.store.parquet import attach_parquet
    from core.store.parquet_export import export_parquet

    shutil.rmtree(p["parquet"], ignore_errors=True)
    for f in (p["attached"], Path(str(p["attached"]) + ".wal")):
        f.unlink(missing_ok=True)
    t0 = time.perf_counter()
    ex = export_parquet(p["db"], p["parquet"], buckets=args.buckets)
    t1 = time.perf_counter()
    at = attach_parquet(p["attached"], ex.out / "events", users=ex.out / "users.parquet", items=ex.out / "items.parquet")
    t2 = time.perf_counter()
    out = {"export_seconds": round(t1 - t0, 2), "attach_seconds": round(t2 - t1, 2), "buckets": ex.buckets,
           "files": ex.files, "parquet_bytes": ex.bytes, "db_bytes": p["db"].stat().st_size,
           "attached_db_bytes": p["attached"].stat().st_size, "events": at.events}
    with connect_read(p["db"]) as table, connect_read(p["attached"]) as pq:
        users = [r[0] for r in table.execute("SELECT user_id FROM users ORDER BY user_id").fetchall()]
        pick = random.Random(0).sample(users, min(300, len(users)))
        wall: dict[str, list[float]] = {"table": [], "parquet": []}
        cpu: dict[str, list[float]] = {"table": [], "parquet": []}
        for con in (table, pq):
            user_history(con, pick[0])  # warm-up: the first query loads the catalog
        for u in pick:  # alternate, so both see the same machine load
            for name, con in (("table", table), ("parquet", pq)):
                w, c = time.perf_counter(), time.process_time()
                user_history(con, u)
                wall[name].append((time.perf_counter() - w) * 1000)
                cpu[name].append((time.process_time() - c) * 1000)
        for name in wall:
            out[f"history_{name}_ms"] = percentiles(wall[name])
            out[f"history_{name}_cpu_ms"] = percentiles(cpu[name])
        vocab = load_checkpoint(p["model"], "cpu").vocab if (p["model"] / "vocab.json").exists() else None
        if vocab is not None:  # the training read: every user's sequence
            for name, con in (("table", table), ("parquet", pq)):
                w = time.perf_counter()
                seqs = load_sequences(con, vocab)
                out[f"load_sequences_{name}_seconds"] = round(time.perf_counter() - w, 2)
                del seqs
    if (p["model"] / "model.safetensors").exists():
        out["switch_parquet"] = switch_latency(p["attached"], p["model"], n_users=30)
    return out
