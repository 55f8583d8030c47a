"""Compare: two models side by side (accuracy with a paired interval, exposure, fairness gaps, top-10 overlap), and
one user's trajectories and explanations under both."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.trajectory import grid_view
from dashboard import cache, compare_calls
from dashboard.components import explain_panels, model_charts
from dashboard.components.charts import md_text
from dashboard.components.guards import require_db
from dashboard.components.trajectory_chart import trajectory_chart

st.title("Compare models")

# State set-up.
require_db()
models = [str(m) for m in cache.list_models()]
if len(models) < 2:
    st.info("Comparing needs two models: train one (`interestlens train`) or register one "
            "(`interestlens models add --onnx FILE`).")
    st.stop()
ref = cache.database()
db, stamp = ref.path, ref.stamp

# Inputs (in the URL, so a comparison can be sent as a link).
c = st.columns(2)
name = {m: m.rsplit("/", 1)[-1] for m in models}
a = c[0].selectbox("Model A", models, index=0, format_func=name.get, key="compare_a", bind="query-params")
b = c[1].selectbox("Model B", models, index=1, format_func=name.get, key="compare_b", bind="query-params")
if a == b:
    st.info("Pick two different models.")
    st.stop()
recbole = st.checkbox("Also RecBole's protocol", key="compare_recbole", bind="query-params",
                      help="RecBole 1.2.1's sequential full sort: its leave-one-out (a test target from 3 events), "
                           "nothing excluded, MRR cut at K; one more scoring pass per model.")

# Cached calls into core.
cmp = compare_calls.comparison(db, a, b, stamp, recbole)
per_protocol = compare_calls.protocols(db, a, b, stamp, recbole)

# Layout.
k = cmp.k
st.caption(f"{cmp.split} split. A = {md_text(cmp.a.name)} ({cmp.a.kind}), B = {md_text(cmp.b.name)} ({cmp.b.kind}).")
st.metric(f"NDCG@{k}, A − B ({cmp.protocol})", f"{cmp.ndcg_diff:+.4f}",
          help=f"95% paired bootstrap interval [{cmp.ndcg_diff_low:+.4f}, {cmp.ndcg_diff_high:+.4f}] "
               f"({cmp.n_boot:,} resamples of users)")
st.subheader("Accuracy per protocol")
st.caption(f"Mean NDCG@{k} of each model and the paired difference with its 95% bootstrap interval ({cmp.n_boot:,} "
           f"resamples of users), on the users both models can rank under that protocol.")
st.dataframe(per_protocol, width="stretch", hide_index=True, key="compare_protocols",
             column_config={c: st.column_config.NumberColumn(format="%.4f") for c in per_protocol.columns
                            if c not in ("protocol", "users", "description")})
st.caption(f"All metrics under the headline protocol, {cmp.protocol} ({cmp.users:,} users paired; left), and item "
           f"exposure of the top-{k} from each user's whole history (right):")
left, right = st.columns(2)
left.dataframe(pd.DataFrame({"A": cmp.a.metrics, "B": cmp.b.metrics}), width="stretch", key="compare_metrics")
right.dataframe(pd.DataFrame({"A": cmp.a.exposure, "B": cmp.b.exposure}), width="stretch", key="compare_exposure")
if cmp.a.gaps:
    st.dataframe(pd.DataFrame({"A": cmp.a.gaps, "B": cmp.b.gaps}).rename_axis(f"NDCG@{k} gap"), width="stretch",
                 key="compare_gaps")
ov = cmp.overlap
st.subheader(f"Top-{k} overlap")
st.caption(f"Mean Jaccard {ov['jaccard'].mean():.3f}, mean rank-biased overlap {ov['rbo'].mean():.3f} "
           f"(p = 0.9) over {len(ov):,} users. The users where the two models disagree most:")
worst = cmp.disagreeing(20).assign(explorer=lambda d: "/user?user=" + d["user_id"].astype(str))
st.dataframe(worst, width="stretch", hide_index=True, key="compare_disagreeing",
             column_config={"explorer": st.column_config.LinkColumn("explorer", display_text="open")})
st.download_button("Download the comparison (HTML)", compare_calls.comparison_page(db, a, b, stamp, recbole),
                   file_name="comparison.html", mime="text/html", key="compare_html")

st.subheader("One user under both models")
user = st.text_input("User id", value=str(worst["user_id"].iloc[0]) if len(worst) else "", key="compare_user",
                     bind="query-params").strip()
if not user:
    st.info("Type a user id.")
    st.stop()
for col, model in zip(st.columns(2), (a, b), strict=True):
    traj, expl = compare_calls.user_side(db, model, user, stamp)
    with col:
        st.markdown(f"**{md_text(name[model])}**")
        if traj is None:
            st.info("No trajectory for this user under this model.")
        else:
            grid = grid_view(traj, "auto", model_charts.VIEWS["model"])  # the explorer's time grid
            # the chart and its caption in their own container: the explanation's caption below belongs to its
            # table, and must not pass for the chart's in the caption walk (test_plain_language)
            with st.container():
                st.plotly_chart(trajectory_chart(grid, "Share of interest by category over time"),
                                key=f"compare_traj_{model}")
                st.caption("What this model believes the user wants, category by category, as their history grows.")
        if expl is None:
            st.info("Nothing to explain for this user under this model.")
        else:
            st.caption(f"Why {md_text(expl.target)} is recommended (SHAP over events; additivity error "
                       f"{expl.additivity_error:.1e})")
            st.dataframe(explain_panels.event_table(expl).head(10), width="stretch", hide_index=True,
                         key=f"compare_expl_{model}")
