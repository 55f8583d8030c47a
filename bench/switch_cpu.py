"""Where the server spends a user switch: the explorer's script run, in-process, CPU time per switch and a profile.

A load test on a shared machine measures waiting for a core as much as work. This runs the app's script the way a
user switch reruns it (the User explorer on `?user=ID`, the "User id" box set to the next user, Streamlit's
`AppTest`, so the same caches, fragments and element marshalling run; no websocket) and reads the process's CPU
time around each run, which other processes on the machine do not inflate. Each switch goes to a user not seen
before, so the per-user caches miss as they do under many analysts.

With `--profile N` the switches run under cProfile and the N largest cumulative entries are printed and saved,
with the time (ms per switch) of the cost groups named in docs/serving.md.

Usage::

    python bench/switch_cpu.py                              # ML-100k of bench/load_ws.py, 30 switches
    python bench/switch_cpu.py --switches 20 --profile 40 --tag ml100k-profile
    python bench/switch_cpu.py --revisit                    # and the same 30 users again (shared caches warm)
    python bench/switch_cpu.py --explanations 10            # and 10 Explain pages, each a new user and item
    python bench/switch_cpu.py --elements                   # and the messages each switch sends, by element type

Writes `bench/results/switch_cpu-<tag>.json` (cpu_ms_per_switch p50/p95/mean, wall ms, cpu_ms_per_revisit with
`--revisit`, cpu_ms_per_explanation with `--explanations`, the profile if asked, the load average).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # first, even when on $PYTHONPATH: bench/dashboard.py must not shadow the app's package

from bench.common import Results, percentiles  # noqa: E402
from bench.load_data import LOADWS_WORK as WORK  # noqa: E402
from bench.load_data import loadws_app, user_counts  # noqa: E402

# Cost groups: a profile entry (file:function) belongs to the first group whose text it contains.
GROUPS = {
    "DuckDB (open + queries)": ("duckdb", "core/store/"),
    "model forward (torch)": ("torch/", "core/model/"),
    "change points": ("bayes_changes", "grid_changes"),
    "trajectory (core, all)": ("core/trajectory/",),
    "Plotly figure building": ("plotly/basedatatypes", "plotly/graph_objs", "plotly/subplots", "_plotly_utils"),
    "Plotly to JSON": ("plotly/io",),
    "st.cache_data argument hashing": ("caching/hashing",),
    "st.cache_data copies (pickle)": ("cache_data_api",),
    "dataframe to Arrow": ("dataframe_util", "pyarrow"),
}

__all__ = ["switch_runs", "count_elements", "main"]

ELEMENTS: dict[str, list[float]] = {}  # with --elements: message type -> [messages, bytes, serialise ms], all switches


def switch_runs(users: list[str], profile: cProfile.Profile | None = None, revisit: bool = False,
                count: bool = False) -> tuple[list[float], list[float], list[float]]:
    """Open the explorer on `users[0]`, then switch to each further user; CPU and wall ms of each switch (and,
    with `profile`, the switches' script runs profiled). With `revisit`, then switch through the same users again
    (a second visit, as many analysts moving through one catalogue make): the CPU ms of each such switch, not
    profiled. With `count`, the new-user switches' messages are counted into `ELEMENTS` (`count_elements`)."""
    from streamlit.runtime.scriptrunner import script_runner
    from streamlit.testing.v1 import AppTest

    measuring = [False]  # the first run (imports, model load) is neither timed nor profiled
    if count:
        count_elements(measuring, ELEMENTS)
    if profile is not None:  # the script runs in Streamlit's script thread: profile it there, around each run
        plain_exec = script_runner.exec_func_with_error_handling

        def profiled_exec(func, ctx):
            if not measuring[0]:
                return plain_exec(func, ctx)
            profile.enable()
            try:
                return plain_exec(func, ctx)
            finally:
                profile.disable()

        script_runner.exec_func_with_error_handling = profiled_exec
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=600)
    at.query_params["user"] = users[0]
    at.run()  # a shared link: the app moves to the explorer
    measuring[0] = True
    cpu, wall, again = [], [], []

    def switch(user: str) -> tuple[float, float]:
        at.query_params["user"] = user  # the box's new value with ?user=, as the browser sends a switch
        box = at.text_input(key="user").set_value(user)
        c0, w0 = time.process_time(), time.perf_counter()
        box.run()
        out = (time.process_time() - c0) * 1000.0, (time.perf_counter() - w0) * 1000.0
        wrong = [e.value for e in at.exception] + [e.value for e in at.error]
        events = [m.value for m in at.metric if m.label == "Events"]
        charts = len(at.get("plotly_chart"))  # the trajectory, the gate and the timeline
        if wrong or not events or charts < 3:
            raise SystemExit(f"the switch to {user} did not draw the explorer: {wrong or (events, charts)}")
        return out

    for user in users[1:]:
        c, w = switch(user)
        cpu.append(c)
        wall.append(w)
    measuring[0] = False
    if revisit:
        again = [switch(user)[0] for user in users[1:]]
    return cpu, wall, again


def count_elements(on: list[bool], seen: dict[str, list[float]]) -> None:
    """Patch Streamlit's message queue to count into `seen`, while `on[0]`, every message a run sends by element
    type (a new element's type, else the delta's or message's kind): type -> [messages, serialised bytes,
    serialise CPU ms].
    The served process also serialises each message for the websocket; `AppTest` does not, so this adds it."""
    from streamlit.runtime.scriptrunner_utils import script_run_context as src

    plain = src.ScriptRunContext.enqueue

    def counted(self, msg):
        if on[0]:
            kind = msg.WhichOneof("type")
            if kind == "delta":
                kind = msg.delta.WhichOneof("type")
                kind = msg.delta.new_element.WhichOneof("type") if kind == "new_element" else kind
            c0 = time.process_time()
            size = len(msg.SerializeToString())
            row = seen.setdefault(kind, [0, 0, 0.0])
            row[0] += 1
            row[1] += size
            row[2] += (time.process_time() - c0) * 1000.0
        return plain(self, msg)

    src.ScriptRunContext.enqueue = counted


def explain_runs(users: list[str]) -> list[float]:
    """For each user, a new session opens the explorer (not timed), then the Explain page on its top
    recommendation (`?user=ID&item=ITEM`, as an analyst's click or bench/load_ws.py does): CPU ms of that run."""
    from streamlit.testing.v1 import AppTest

    out = []
    for user in users:
        at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=600)
        at.query_params["user"] = user
        at.run()
        recs = [d.value for d in at.dataframe if {"rank", "score", "item_id"} <= set(d.value.columns)]
        if not recs:
            raise SystemExit(f"the explorer of {user} shows no recommendations")
        at.switch_page("pages/explain.py")
        at.query_params.update({"user": user, "item": str(recs[0]["item_id"].iloc[0])})
        c0 = time.process_time()
        at.run()
        out.append((time.process_time() - c0) * 1000.0)
        if not any(m.label == "Score" for m in at.metric):
            raise SystemExit(f"the explanation for {user} shows no score: {[e.value for e in at.error]}")
    return out


def _groups(stats: pstats.Stats, n_switch: int) -> dict[str, float]:
    """ms per switch of each cost group: the largest cumulative time of an entry in the group (entries nest, so
    the outermost one counts the group's time once)."""
    out = {}
    for name, needles in GROUPS.items():
        best = 0.0
        for (file, _, func), (_, _, _, cum, _) in stats.stats.items():
            if any(s in f"{file}:{func}" for s in needles):
                best = max(best, cum)
        out[name] = round(best * 1000.0 / n_switch, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=WORK, help="folder with ml100k.duckdb and models/default")
    ap.add_argument("--switches", type=int, default=30, help="user switches (each to a user not seen before)")
    ap.add_argument("--profile", type=int, default=0, help="print and save the N largest cumulative entries")
    ap.add_argument("--revisit", action="store_true", help="then switch through the same users again (CPU per revisit)")
    ap.add_argument("--explanations", type=int, default=0, help="then open N explanations (CPU of the Explain page)")
    ap.add_argument("--elements", action="store_true",
                    help="count the messages each new-user switch sends, by element type, with their serialised size "
                         "(the serialising is inside the switch's CPU figure then)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default="ml100k", help="results file: bench/results/switch_cpu-<tag>.json")
    args = ap.parse_args()
    db, _ = loadws_app(args.work)

    users = sorted(user_counts(db))
    users = random.Random(args.seed).sample(users, min(len(users), args.switches + 1))
    load_before = os.getloadavg()
    # CPU time, not wall time: on a shared machine waiting for a core would otherwise count as cost
    prof = cProfile.Profile(time.process_time) if args.profile else None
    cpu, wall, again = switch_runs(users, prof, args.revisit, args.elements)
    fig = {"cpu_ms_per_switch": percentiles(cpu), "wall_ms_per_switch": percentiles(wall), "switches": len(cpu),
           "load_average_1min": {"before": load_before[0], "after": os.getloadavg()[0]},
           "command": " ".join(sys.argv), "code": str(ROOT)}
    print(f"{len(cpu)} switches: CPU ms per switch p50 {fig['cpu_ms_per_switch']['p50']:.0f} / p95 "
          f"{fig['cpu_ms_per_switch']['p95']:.0f} / mean {fig['cpu_ms_per_switch']['mean']:.0f} (wall p50 "
          f"{fig['wall_ms_per_switch']['p50']:.0f}); load {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f}")
    if args.elements:
        n = len(cpu)
        fig["elements_per_switch"] = {k: {"messages": round(v[0] / n, 1), "kib": round(v[1] / n / 1024, 1),
                                          "serialise_ms": round(v[2] / n, 2)}
                                      for k, v in sorted(ELEMENTS.items(), key=lambda kv: -kv[1][1])}
        total = [sum(v[i] for v in ELEMENTS.values()) / n for i in range(3)]
        fig["elements_total_per_switch"] = {"messages": round(total[0], 1), "kib": round(total[1] / 1024, 1),
                                            "serialise_ms": round(total[2], 2)}
        print(f"messages per switch {total[0]:.1f}, {total[1] / 1024:.1f} KiB, serialised in {total[2]:.2f} ms CPU:")
        for k, v in fig["elements_per_switch"].items():
            print(f"  {k:22s} {v['messages']:5.1f}  {v['kib']:7.1f} KiB  {v['serialise_ms']:5.2f} ms")
    if args.explanations:  # other users than the switches' (a new explanation each); the first loads SHAP
        spare = [u for u in sorted(user_counts(db)) if u not in set(users)]
        picked = random.Random(args.seed + 1).sample(spare, args.explanations + 1)
        ms = explain_runs(picked)
        fig["cpu_ms_first_explanation"] = ms[0]
        fig["cpu_ms_per_explanation"] = percentiles(ms[1:])
        print(f"{len(ms) - 1} explanations (Explain page, new user and item): CPU ms p50 "
              f"{fig['cpu_ms_per_explanation']['p50']:.0f} / p95 {fig['cpu_ms_per_explanation']['p95']:.0f} / mean "
              f"{fig['cpu_ms_per_explanation']['mean']:.0f}; the first (imports SHAP) {ms[0]:.0f}")
    if again:
        fig["cpu_ms_per_revisit"] = percentiles(again)
        print(f"{len(again)} revisits (the same users again): CPU ms per switch p50 {fig['cpu_ms_per_revisit']['p50']:.0f}"
              f" / p95 {fig['cpu_ms_per_revisit']['p95']:.0f} / mean {fig['cpu_ms_per_revisit']['mean']:.0f}")
    if prof is not None:
        stats = pstats.Stats(prof)
        fig["profiled"] = "cProfile (its overhead inflates Python-heavy code; compare runs, not absolutes)"
        fig["groups_ms_per_switch"] = _groups(stats, len(cpu))
        rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][3])[: args.profile]
        fig["top_cumulative_ms_per_switch"] = [
            [f"{Path(file).parent.name}/{Path(file).name}:{func}", round(cum * 1000.0 / len(cpu), 1)]
            for (file, _, func), (_, _, _, cum, _) in rows
        ]
        for name, ms in fig["groups_ms_per_switch"].items():
            print(f"  {ms:7.1f} ms  {name}")
        print("  top cumulative (ms per switch):")
        for name, ms in fig["top_cumulative_ms_per_switch"]:
            print(f"  {ms:7.1f}  {name}")
    results = Results("switch_cpu", args.tag, resume=False)
    for k, v in fig.items():
        results.set(k, v)
    print(f"wrote {results.path}")


if __name__ == "__main__":
    main()
