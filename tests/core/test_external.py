"""External models behind the contract: a tiny embedding-sum scorer built here with torch, exported to ONNX and
TorchScript and written as an entry point, registered on the tiny database and checked against known answers."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch

from core.checkpoint import load_checkpoint
from core.contract import supports
from core.errors import UserInputError
from core.evaluate import evaluate_model
from core.explain import HistoryExplainer, load_labelled_history
from core.external import add_model, list_models, model_folders
from core.recommend import recommend
from core.sequences import History, build_vocab, make_batch
from core.store import connect_read
from core.trajectory import TrajectoryAnalyzer

D = 4


class EmbSum(torch.nn.Module):
    """scores = (Σ over the row's events of e_item) · e_j for every item j: an additive game with known values."""

    def __init__(self, n: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.emb = torch.nn.Parameter(torch.randn(n + 1, D, generator=g))

    def forward(self, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        keep = (items > 0).float()  # [B,L]
        s = (self.emb[items] * keep.unsqueeze(-1)).sum(1)  # [B,D]
        return s @ self.emb.t() + 0.0 * lengths.unsqueeze(1).float()  # [B,n+1]


@pytest.fixture(scope="module")
def exported(synthetic_db, tmp_path_factory):
    """(folder with model.onnx, model.pt, model.json, items.csv; the torch module; model index of each db item)."""
    folder = tmp_path_factory.mktemp("external")
    with connect_read(synthetic_db) as con:
        items = build_vocab(con).items
    rng = np.random.default_rng(0)
    order = rng.permutation(len(items))  # the model's own item indices differ from ours
    index = {items[o]: n + 1 for n, o in enumerate(order)}
    with open(folder / "items.csv", "w", encoding="utf-8") as f:
        f.write("index,item_id\n" + "".join(f"{i},{item}\n" for item, i in index.items()))
    net = EmbSum(len(items)).eval()
    seq, lens = torch.tensor([[1, 2, 0, 0, 0, 0, 0, 0]]), torch.tensor([2])
    torch.onnx.export(net, (seq, lens), str(folder / "model.onnx"), input_names=["seq", "len"], output_names=["out"],
                      dynamic_axes={"seq": {0: "B"}, "len": {0: "B"}, "out": {0: "B"}}, dynamo=False)
    torch.jit.trace(net, (seq, lens)).save(str(folder / "model.pt"))
    car = {"inputs": {"items": "seq", "lengths": "len"}, "output": "out", "max_len": 8, "padding": "right",
           "items_file": "items.csv"}
    (folder / "model.json").write_text(json.dumps(car))
    return folder, net, index


@pytest.fixture(scope="module")
def registered(synthetic_db, exported, tmp_path_factory):
    """A models folder holding the ONNX and TorchScript copies and an entry point over the same weights."""
    folder, net, index = exported
    root = tmp_path_factory.mktemp("models")
    emb = net.emb.detach().numpy().tolist()
    (folder / "il_entry_toy.py").write_text(textwrap.dedent(f"""
        import numpy as np
        INDEX = {json.dumps(index)}
        EMB = np.array({json.dumps(emb)})

        class Toy:
            max_len = 8
            item_ids = list(INDEX)

            def score(self, histories):
                rows = [EMB[[INDEX[i] for i in h.items]].sum(0) if h.items else np.zeros(EMB.shape[1])
                        for h in histories]
                return np.stack(rows) @ EMB[[INDEX[i] for i in self.item_ids]].T

        def factory():
            return Toy()
    """))
    import sys

    sys.path.insert(0, str(folder))
    with connect_read(synthetic_db) as con:
        add_model(con, root, "toy-onnx", "onnx", str(folder / "model.onnx"))
        add_model(con, root, "toy-ts", "torchscript", str(folder / "model.pt"))
        add_model(con, root, "toy-entry", "entry", "il_entry_toy:factory")
    return root


def _expected(net: EmbSum, index: dict[str, int], ids: list[str], L: int = 8) -> np.ndarray:
    e = net.emb.detach().numpy().astype(np.float64)
    s = e[[index[i] for i in ids[-L:]]].sum(0)
    return s @ e.T  # [n+1] in the model's own indices


@pytest.mark.parametrize("name", ["toy-onnx", "toy-ts", "toy-entry"])
def test_adapters_score_the_known_answer_in_our_indices(registered, exported, name):
    _, net, index = exported
    loaded = load_checkpoint(registered / name)
    assert loaded.model is None and loaded.kind == name.split("-")[1].replace("ts", "torchscript")
    assert not supports(loaded.scorer, "states") and not supports(loaded.scorer, "attention")
    vocab = loaded.vocab
    ids = [vocab.items[k] for k in (3, 7, 11, 20, 5, 9, 14, 2, 30, 41)]  # ten events: only the latest eight count
    h = History.from_arrays(vocab.item_indices(ids), np.arange(10) * 60)
    scores = loaded.scorer.score(make_batch([h], 50)).double().numpy()[0]  # [I+1]
    want = _expected(net, index, ids)
    ours = np.array([want[index[i]] for i in vocab.items])
    assert scores[0] == -np.inf
    np.testing.assert_allclose(scores[1:], ours, rtol=1e-5, atol=1e-5)


def test_an_absent_event_is_dropped_from_the_sequence(registered):
    loaded = load_checkpoint(registered / "toy-onnx")
    h = History.from_arrays([4, 8, 15, 16], np.arange(4) * 60)
    batch = make_batch([h], 50)
    batch.mask[0, 1] = False  # the second event is absent
    masked = loaded.scorer.score(batch)
    dropped = loaded.scorer.score(make_batch([History.from_arrays([4, 15, 16], np.arange(3) * 60)], 50))
    np.testing.assert_allclose(masked.numpy(), dropped.numpy(), rtol=1e-6)


def test_explain_on_the_onnx_model_gives_the_exact_shapley_values(synthetic_db, registered, exported):
    _, net, index = exported
    loaded = load_checkpoint(registered / "toy-onnx")
    with connect_read(synthetic_db) as con:
        lh = load_labelled_history(con, loaded, "u003")
    expl = HistoryExplainer(loaded, event_evals=200, window_evals=200).explain(lh)
    assert expl.additivity_error <= 1e-4 and expl.groups is None  # feature groups are our model's only
    e = net.emb.detach().numpy().astype(np.float64)
    t = e[index[expl.target]]
    window = lh.history.items[lh.window(loaded.config.max_len)]
    want = np.array([e[index[loaded.vocab.item_id(i)]] @ t for i in window])  # additive: φ_i = e_i · e_target
    np.testing.assert_allclose(expl.values, want, atol=1e-4)
    assert abs(expl.base) < 1e-6  # nothing present: the empty sum scores 0


def test_deletion_curves_of_an_additive_onnx_model_are_its_score_less_the_removed_values(synthetic_db, registered):
    from core.explain import deletion_curves

    loaded = load_checkpoint(registered / "toy-onnx")
    with connect_read(synthetic_db) as con:
        lh = load_labelled_history(con, loaded, "u003")
    explainer = HistoryExplainer(loaded, event_evals=200, window_evals=200)
    expl = explainer.explain(lh)
    curves = deletion_curves(explainer, lh, expl, n_random=2)
    assert curves.attention is None and set(curves.curves) == {"shap", "recency", "random"}  # no weights to order by
    # additive game (φ_i = e_i · e_target, empty sequence 0): removing the k largest φ leaves f(x) − their sum
    removed = np.concatenate([[0.0], np.cumsum(np.sort(expl.values)[::-1])])
    np.testing.assert_allclose(curves.curves["shap"].scores, expl.fx - removed, atol=1e-4)
    assert curves.curves["recency"].scores[-1] == pytest.approx(expl.base, abs=1e-5)  # everything removed: the base


def test_external_scoring_holds_at_most_score_cells_at_once(registered, monkeypatch):
    from core.external import adapters

    scorer = load_checkpoint(registered / "toy-onnx").scorer
    vocab_n = len(scorer.item_ids)
    histories = [History.from_arrays([1 + (3 * r + j) % vocab_n for j in range(4 + r)], np.arange(4 + r) * 60)
                 for r in range(5)]
    whole = scorer.score(make_batch(histories, 50))
    calls = []
    run = scorer._run
    monkeypatch.setattr(scorer, "_run", lambda *a: calls.append(len(a[0])) or run(*a))
    monkeypatch.setattr(adapters, "SCORE_CELLS", 2 * max(vocab_n + 1, scorer._need))  # two rows per chunk
    chunked = scorer.score(make_batch(histories, 50))
    assert calls == [2, 2, 1]
    torch.testing.assert_close(chunked, whole)


def test_every_analysis_runs_on_the_external_model(synthetic_db, registered, tmp_path):
    loaded = load_checkpoint(registered / "toy-ts")
    res = evaluate_model(synthetic_db, registered / "toy-ts")
    assert res.users > 0 and 0 <= res.metrics["NDCG@10"] <= 1
    assert (registered / "toy-ts" / "eval_users.parquet").is_file()
    with connect_read(synthetic_db) as con:
        lh = load_labelled_history(con, loaded, "u005")
    top = recommend(loaded, [lh.history], k=5)[0]
    assert len(top) == 5 and all(i not in set(lh.history.items) for i, _ in top)
    analyzer = TrajectoryAnalyzer(loaded)
    out = analyzer.outputs([lh.history])[0]
    assert out.distribution.shape == (len(lh.history), len(loaded.vocab.categories))
    np.testing.assert_allclose(out.distribution.sum(1), 1.0, atol=1e-6)
    assert np.isnan(out.gate).all() and out.long_term is None


def test_registry_lists_kinds_and_refuses_bad_input(synthetic_db, registered, exported):
    kinds = {m.name: m.kind for m in list_models(registered)}
    assert kinds == {"toy-onnx": "onnx", "toy-ts": "torchscript", "toy-entry": "entry"}
    (registered / "half.tmp").mkdir()  # an unfinished folder and a folder without a model are no models
    (registered / "empty").mkdir()
    # the folders alone (what the dashboard lists on every rerun), the same ones list_models describes
    assert model_folders(registered) == [m.path for m in list_models(registered)] == sorted(
        registered / n for n in kinds)
    (registered / "half.tmp").rmdir()
    (registered / "empty").rmdir()
    assert all(m.fingerprint["events"] == 6000 for m in list_models(registered))
    folder = exported[0]
    with connect_read(synthetic_db) as con:
        with pytest.raises(UserInputError, match="already a model"):
            add_model(con, registered, "toy-onnx", "onnx", str(folder / "model.onnx"))
        bad = folder / "bad.json"
        bad.write_text(json.dumps({"inputs": {"items": "nope"}, "output": "out", "items_file": "items.csv"}))
        with pytest.raises(UserInputError, match="no input 'nope'"):
            add_model(con, registered, "bad", "onnx", str(folder / "model.onnx"), sidecar=bad)
    assert not (registered / "bad").exists()


def test_overlap_measures_by_hand():
    from core.compare import jaccard, rbo

    assert jaccard(["a", "b", "c"], ["c", "d"]) == pytest.approx(1 / 4)
    assert rbo(list("abcdefghij"), list("abcdefghij")) == pytest.approx(1.0)
    assert rbo(list("abc"), list("xyz")) == 0.0
    # depth 2, p = 0.5: X_1 = 0, X_2 = 2 -> (2/2)·0.25 + (0.5/0.5)·(0 + (2/2)·0.25) = 0.5
    assert rbo(["a", "b"], ["b", "a"], p=0.5) == pytest.approx(0.5)


def test_compare_a_model_with_itself_and_with_ours(synthetic_db, registered, trained_model_dir, cli, tmp_path):
    from core.compare import compare_models, comparison_html

    same = compare_models(synthetic_db, registered / "toy-onnx", registered / "toy-ts", n_boot=200)
    assert same.ndcg_diff == pytest.approx(0.0, abs=1e-12) and same.ndcg_diff_low == pytest.approx(0.0, abs=1e-12)
    assert same.overlap["jaccard"].min() == 1.0 and same.overlap["rbo"].min() == pytest.approx(1.0)
    assert same.a.metrics == same.b.metrics and same.users > 0
    mixed = compare_models(synthetic_db, trained_model_dir, registered / "toy-entry", n_boot=200)
    assert mixed.a.kind == "interestlens" and mixed.b.kind == "entry"
    d = (mixed.overlap["ndcg_a"] - mixed.overlap["ndcg_b"]).mean()
    assert mixed.ndcg_diff == pytest.approx(d) and mixed.ndcg_diff_low <= d <= mixed.ndcg_diff_high
    page = comparison_html(mixed)
    worst = mixed.disagreeing(1)["user_id"][0]
    assert f"?user={worst}" in page and "<script" not in page
    out = tmp_path / "cmp.html"
    code, stdout, _ = cli("compare", "--db", str(synthetic_db), "--model", str(trained_model_dir), "--model",
                          str(registered / "toy-onnx"), "--n-boot", "50", "--json", "--html", str(out))
    assert code == 0 and json.loads(stdout)["b"]["kind"] == "onnx" and out.is_file()


def test_models_cli_lists_and_evaluates_by_name(synthetic_db, registered, cli, monkeypatch):
    monkeypatch.setenv("INTERESTLENS_MODELS", str(registered))
    code, out, _ = cli("models", "list", "--json")
    assert code == 0 and {m["kind"] for m in json.loads(out)["models"]} == {"onnx", "torchscript", "entry"}
    code, out, err = cli("evaluate", "--db", str(synthetic_db), "--model", "toy-onnx", "--json")
    assert code == 0, err
    assert 0 <= json.loads(out)["NDCG@10"] <= 1
    code, _, err = cli("models", "add", "--db", str(synthetic_db), "--name", "x", "--onnx", "a.onnx", "--entry", "m:f")
    assert code == 1 and "exactly one" in err


def test_left_padding_puts_the_latest_event_last(registered):
    from dataclasses import replace

    model = load_checkpoint(registered / "toy-onnx").scorer
    model.sidecar = replace(model.sidecar, padding="left", max_len=4)
    model.max_len = 4
    items, lengths, times, _ = model._compact(np.array([[0, 7, 0, 9, 11]]), np.array([[False, True, False, True, True]]),
                                              np.array([[0, 70, 0, 90, 110]]), np.zeros((1, 5), np.int64))
    assert lengths.tolist() == [3] and times.tolist() == [[70, 90, 110, 0]]  # compacted, right-aligned from slot 0
    packed, packed_t = model._pack(items, lengths, times)
    assert packed.tolist() == [[0, *model.to_model[[7, 9, 11]]]] and packed_t.tolist() == [[0, 70, 90, 110]]
