"""`interestlens compare --model A --model B`: two models side by side (accuracy, fairness, exposure, overlap)."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import DbOption, JsonOption, emit
from core.compare import compare_models, comparison_html
from core.errors import UserInputError

__all__ = ["register"]


def compare_cmd(
    models: list[str] = typer.Option(..., "--model", help="A model folder or name; give --model twice (A, then B)."),
    db: Path | None = DbOption,
    k: int = typer.Option(10, "--k", min=1, help="List length K."),
    n_boot: int = typer.Option(1000, "--n-boot", min=10, help="Paired bootstrap resamples of users."),
    html: Path | None = typer.Option(None, "--html", help="Also write a self-contained HTML page here."),
    recbole: bool = typer.Option(False, "--recbole", help="Also compare under RecBole 1.2.1's protocol for "
                                 "sequential models (its leave-one-out, nothing excluded, MRR cut at K)."),
    as_json: bool = JsonOption,
) -> None:
    """Compare two models on one database under every protocol (exclude_seen, all_items; RecBole's with
    --recbole): NDCG@K difference with a paired bootstrap interval each, gaps, exposure, overlap."""
    if len(models) != 2:
        raise UserInputError(f"Give --model exactly twice (A and B), not {len(models)} time(s).")
    cmp = compare_models(db, models[0], models[1], k=k, n_boot=n_boot, recbole=recbole)
    if html is not None:
        html.write_text(comparison_html(cmp), encoding="utf-8")
    out = cmp.to_dict()
    a, b = cmp.a, cmp.b
    lines = [f"A = {a.name} ({a.kind}), B = {b.name} ({b.kind}); {cmp.split} split", "",
             f"{'protocol':<14}{'users':>7}{f'NDCG@{k} A':>12}{f'NDCG@{k} B':>12}{'A − B':>9}  95% paired bootstrap"]
    for name, pc in cmp.protocols.items():
        lines.append(f"{name:<14}{pc.users:>7,}{pc.ndcg_a:>12.4f}{pc.ndcg_b:>12.4f}{pc.ndcg_diff:>+9.4f}  "
                     f"[{pc.ndcg_diff_low:+.4f}, {pc.ndcg_diff_high:+.4f}]")
    lines += ["", f"headline {cmp.protocol}, {cmp.users:,} paired users (A, B):"]
    lines += [f"  {m:<16}{a.metrics[m]:>10.4f}{b.metrics[m]:>10.4f}" for m in a.metrics]
    lines += [f"  {m:<16}{a.exposure[m]:>10.4f}{b.exposure[m]:>10.4f}" for m in a.exposure]
    lines += [f"  {'gap ' + attr:<16}{a.gaps[attr]:>10.4f}{b.gaps.get(attr, float('nan')):>10.4f}" for attr in a.gaps]
    lines.append(f"top-{k} overlap: Jaccard {out['overlap']['jaccard']:.3f}, RBO {out['overlap']['rbo']:.3f}; "
                 f"most disagreeing users: {', '.join(str(r['user_id']) for r in out['disagreeing'][:5])}")
    if html is not None:
        lines.append(f"HTML written to {html}")
    emit(out, as_json, "\n".join(lines))


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_cmd)
