"""`interestlens explain`: why the model recommends an item to a user — events, periods and faithfulness."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import typer

from cli.common import DbOption, JsonOption, ModelOption, emit, iso_utc
from core.checkpoint import load_checkpoint, model_for, pick_device
from core.store import connect_read

if TYPE_CHECKING:  # core.explain (shap, numba) is imported when the command runs: ~0.5 s off every CLI start
    from core.explain import DeletionCurves, HistoryExplanation

__all__ = ["register", "explain_result"]

SHOWN_EVENTS = 10  # the text view lists the events with the largest |value|


def explain_result(expl: HistoryExplanation, curves: DeletionCurves) -> dict:
    """The `--json` object: target, base, fx, values, windows, additivity_error, deletion_auc."""
    return {
        "target": expl.target,
        "base": expl.base,
        "fx": expl.fx,
        "values": [
            {"step": lab.step, "item_id": lab.item_id, "title": lab.title, "time": iso_utc(lab.time), "value": float(v)}
            for lab, v in zip(expl.labels, expl.values, strict=True)
        ],
        "windows": [
            {"level": w.level, "label": w.label, "start": iso_utc(w.start), "end": iso_utc(w.end), "value": w.value}
            for w in expl.windows
        ],
        "additivity_error": expl.additivity_error,
        "deletion_auc": curves.auc,
    }


def _human(expl: HistoryExplanation, curves: DeletionCurves) -> str:
    what = f"logit of item {expl.target}" + (f" minus item {expl.foil} (ranked {expl.k + 1})" if expl.foil else "")
    lines = [
        f"user {expl.user_id}: explaining the {what}",
        f"  f(x) = {expl.fx:.4f}, base (no event) = {expl.base:.4f}; {len(expl.labels)} events, "
        f"additivity error {expl.additivity_error:.1e}",
        f"events with the largest effect (of {len(expl.labels)}):",
    ]
    order = np.argsort(-np.abs(expl.values), kind="stable")[:SHOWN_EVENTS]
    for i in order:
        lab = expl.labels[int(i)]
        lines.append(f"  {expl.values[i]:+9.4f}  step {lab.step:>5}  {iso_utc(lab.time)}  {lab.title[:60]}")
    for level in ("month", "week", "day"):
        ws = [w for w in expl.windows if w.level == level]
        if ws:
            top = max(ws, key=lambda w: abs(w.value))
            lines.append(f"{level}s: {len(ws)}; largest effect {top.value:+.4f} in {top.label} ({top.n_events} events)")
    auc = ", ".join(f"{k} {v:.3f}" for k, v in curves.auc.items())
    lines.append(f"deletion AUC (lower = more faithful): {auc}")
    return "\n".join(lines)


def explain(
    user: str = typer.Option(..., "--user", help="User id."),
    db: Path | None = DbOption,
    model: Path | None = ModelOption,
    item: str | None = typer.Option(None, "--item", help="Item id to explain (default: the user's current top-1)."),
    margin: bool = typer.Option(False, "--margin", help="Explain the margin over the item ranked K+1."),
    k: int = typer.Option(10, "--k", min=1, help="List length K for --margin."),
    as_json: bool = JsonOption,
) -> None:
    """Explain one recommendation: Shapley values of past events and periods, checked for additivity."""
    loaded = load_checkpoint(model_for(db, model), device=pick_device("auto"))
    from core.explain import HistoryExplainer, deletion_curves, load_labelled_history

    explainer = HistoryExplainer(loaded)
    with connect_read(db) as con:
        lh = load_labelled_history(con, loaded, user)
    expl = explainer.explain(lh, target=item, margin=margin, k=k)
    curves = deletion_curves(explainer, lh, expl)
    result, human = explain_result(expl, curves), None if as_json else _human(expl, curves)
    if loaded.model is not None and loaded.model.social is not None:  # friends as players beside the latest window's events
        from core.social.evidence import explain_friends

        with connect_read(db) as con:
            fx = explain_friends(con, loaded, user, loaded.vocab.item_index(expl.target))
        result["social"] = fx.to_dict()
        if human is not None:
            top = sorted(zip(fx.friends, fx.values, strict=True), key=lambda x: -abs(x[1]))[:5]
            human += "\nfriends (Shapley values beside the latest events): " + ", ".join(
                f"{f} {v:+.4f}" for f, v in top) + f"; additivity error {fx.additivity_error:.1e}"  # fmt: skip
    emit(result, as_json, human)


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)
