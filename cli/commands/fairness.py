"""`interestlens fairness`: user-group quality with intervals, item-side bias, calibration and monthly trends."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from cli.common import DbOption, JsonOption, ModelOption, SeenOption, emit
from core.errors import UserInputError
from core.fairness import FREQUENCIES, TREND_USERS, FairnessReport, fairness_report, panel_note, shown_windows
from core.fairness.inputs import load_inputs


def fairness(
    db: Path | None = DbOption,
    model: Path | None = ModelOption,
    by: list[str] | None = typer.Option(
        None, "--by", help="User attribute to group by (repeat it); default every attribute with few groups."
    ),
    k: int = typer.Option(10, "--k", help="Length of the top-K lists."),
    n_boot: int = typer.Option(200, "--n-boot", min=0, help="Bootstrap resamples for the intervals (0: none)."),
    window: str = typer.Option("month", "--window", help=f"Calendar window of the trend: {', '.join(FREQUENCIES)}."),
    trend: bool = typer.Option(True, "--trend/--no-trend", help="Compute the metrics per calendar window."),
    trend_users: int = typer.Option(
        TREND_USERS, "--trend-users", min=0,
        help="Score at most this many users per trend window (a fixed panel of users, followed over time; 0: all).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="CPU threads for the model (default: torch's choice; 1 is fastest on a busy machine)."
    ),
    seen: str = SeenOption,
    as_json: bool = JsonOption,
) -> None:
    """Fairness and bias of a model's recommendations: user groups, item exposure, calibration, trends."""
    if k < 1:
        raise UserInputError(f"--k must be a positive integer, not {k}.")
    if window not in FREQUENCIES:
        raise UserInputError(f"Unknown --window {window!r}; expected one of {', '.join(FREQUENCIES)}.")
    if threads:
        import torch

        torch.set_num_threads(threads)
    loaded = load_inputs(db, model, k=k, by=by, seen=seen)
    for note in loaded.notes:
        sys.stderr.write(f"note: {note}\n")
    report = fairness_report(
        loaded.inputs,
        k=k,
        by=by or None,
        n_boot=n_boot,
        random_state=seed,
        recommend_fn=loaded.recommend_fn if trend else None,
        freq=window,
        trend_users=trend_users or None,
    )
    result = {"model": str(loaded.model_dir), "notes": loaded.notes, **report.to_dict()}
    emit(result, as_json, _human(report))


def _num(x: float, digits: int = 3) -> str:
    return "-" if x != x else f"{x:.{digits}f}"


def _human(report: FairnessReport) -> str:
    k = report.k
    nd, hr = f"NDCG@{k}", f"HR@{k}"
    lines = [f"{'attribute':18} {'group':24} {'users':>6}  {nd:>8} {'95% interval':>17}  {hr:>7}"]
    for r in report.users:
        interval = f"[{_num(r.low.get(nd, float('nan')))}, {_num(r.high.get(nd, float('nan')))}]"
        lines.append(
            f"{r.attribute[:18]:18} {r.group[:24]:24} {r.size:>6}  {_num(r.values[nd]):>8} {interval:>17}  "
            f"{_num(r.values[hr]):>7}"
        )
    lines.append("")
    for g in report.user_gaps:
        if g.metric == nd:
            lines.append(
                f"{g.attribute}: {nd} difference {_num(g.difference)} [{_num(g.difference_low)}, "
                f"{_num(g.difference_high)}], ratio {_num(g.ratio)} (best {g.best_group}, worst {g.worst_group})"
            )
    it = report.items
    lines += [
        "",
        f"items: coverage {_num(it.coverage)}  gini {_num(it.gini)}  arp {_num(it.arp, 1)}  aplt {_num(it.aplt)}  "
        f"popularity lift {_num(it.popularity_lift)}  novelty {_num(it.novelty, 2)} bits  "
        f"({it.users:,} lists, {it.catalogue:,} items, short head {it.short_head_items:,})",
    ]
    for t in it.exposure:
        lines.append(
            f"exposure by {t.grouping}: parity {_num(t.parity_ratio)}, exposure/relevance ratio {_num(t.treatment_ratio)}"
        )
    c = report.calibration
    lines.append(f"calibration: mean C_KL {_num(c.mean)} nats over {c.users:,} users (alpha {c.alpha})")
    if report.over_time:
        note = panel_note(report.over_time)
        if note:
            lines += ["", f"trend: {note}; --trend-users 0 scores all"]
        shown, sparse = shown_windows(report.over_time)
        lines += ["", f"{'window':10} {'users':>6} {nd:>8} {'95% interval':>17} {'gini':>6} {'aplt':>6} {'C_KL':>6}"]
        for w in shown:
            m = w.metrics
            lo, hi = w.intervals.get(nd, (float("nan"), float("nan")))
            lines.append(
                f"{w.start:%Y-%m-%d} {w.users:>6} {_num(m[nd]):>8} {f'[{_num(lo)}, {_num(hi)}]':>17} "
                f"{_num(m['gini']):>6} {_num(m['aplt']):>6} {_num(m['C_KL']):>6}"
            )
        if sparse:  # the same rule as the app's trend (core.fairness.over_time: below_min)
            lines.append(f"{len(sparse)} window(s) with fewer than {report.settings['min_group_size']} users scored "
                         "left out (below_min_users in --json); a longer --window holds more users")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.command("fairness")(fairness)
