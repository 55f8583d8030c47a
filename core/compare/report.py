"""A comparison as one self-contained HTML page for stakeholders: no scripts, no external files, text escaped."""

from __future__ import annotations

import datetime as dt
from html import escape
from urllib.parse import quote

from core.compare.compare import Comparison
from core.compare.protocols import PROTOCOL_TEXT

__all__ = ["comparison_html"]

_CSS = """body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;margin:.5rem 0 1.5rem}
td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}
"""


def _num(x: float) -> str:
    return "–" if x != x else f"{x:.4f}"


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th{' class=l' if n == 0 else ''}>{escape(h)}</th>" for n, h in enumerate(head))
    body = "".join("<tr>" + "".join(f"<td{' class=l' if n == 0 else ''}>{c}</td>" for n, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def comparison_html(cmp: Comparison, explorer: str = "http://127.0.0.1:8501/", n_disagreeing: int = 20) -> str:
    """The page: accuracy per protocol with the paired interval, the headline protocol's metrics, exposure,
    fairness gaps, overlap, the most disagreeing users (each linked to `explorer?user=ID`)."""
    a, b, k = cmp.a, cmp.b, cmp.k
    names = [escape(f"A: {a.name} ({a.kind})"), escape(f"B: {b.name} ({b.kind})")]
    keys = list(a.metrics)
    acc = _table(["metric", *names], [[escape(m), _num(a.metrics[m]), _num(b.metrics[m])] for m in keys])
    per = _table(["protocol", "users", f"NDCG@{k} A", f"NDCG@{k} B", "A − B", "95% paired bootstrap"],
                 [[f"{escape(p)}<br><small>{escape(PROTOCOL_TEXT[p])}</small>", f"{pc.users:,}", _num(pc.ndcg_a),
                   _num(pc.ndcg_b), _num(pc.ndcg_diff), f"[{_num(pc.ndcg_diff_low)}, {_num(pc.ndcg_diff_high)}]"]
                  for p, pc in cmp.protocols.items()])
    exp = _table(["exposure", *names], [[escape(m), _num(a.exposure[m]), _num(b.exposure[m])] for m in a.exposure])
    gap_rows = [[escape(attr), _num(a.gaps.get(attr, float("nan"))), _num(b.gaps.get(attr, float("nan")))]
                for attr in sorted(set(a.gaps) | set(b.gaps))]
    gaps = _table([f"NDCG@{k} gap (largest − smallest group)", *names], gap_rows) if gap_rows else "<p>No user attributes.</p>"
    dis = cmp.disagreeing(n_disagreeing)
    link = [f"<a href=\"{escape(explorer)}?user={quote(str(u))}\">{escape(str(u))}</a>" for u in dis["user_id"]]
    dis_rows = [[lk, _num(r.jaccard), _num(r.rbo), _num(r.ndcg_a), _num(r.ndcg_b)] for lk, r in zip(link, dis.itertuples(), strict=True)]
    ov = cmp.overlap
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>InterestLens: {names[0]} vs {names[1]}</title>
<style>{_CSS}</style></head><body>
<h1>{names[0]} vs {names[1]}</h1>
<p>Split {escape(cmp.split)}. Written {escape(dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC'))}.</p>
<h2>Accuracy per protocol</h2>{per}
<p>Mean per-user NDCG@{k} difference A − B with a 95% paired bootstrap interval ({cmp.n_boot:,} resamples of users)
under each protocol, on the users both models can rank under it.</p>
<h2>Accuracy, {escape(cmp.protocol)} ({cmp.users:,} users paired)</h2>{acc}
<h2>Item exposure (top-{k} from each user's whole history)</h2>{exp}
<h2>Fairness</h2>{gaps}
<h2>Top-{k} overlap</h2><p>Mean Jaccard {_num(float(ov['jaccard'].mean()))}, mean rank-biased overlap (p = 0.9)
{_num(float(ov['rbo'].mean()))} over {len(ov):,} users.</p>
<h3>Users where the two models disagree most</h3>
{_table(["user", "Jaccard", "RBO", f"NDCG@{k} A", f"NDCG@{k} B"], dis_rows)}
</body></html>"""
