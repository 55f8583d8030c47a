"""The model card is read once while its files are unchanged (`cache.read_card`), and the sidebar's two card tables
are converted to Arrow once per card (`sidebar._card_arrow`) with the bytes `st.dataframe` makes of the pandas
tables: both run on every script run of every session (issue 23's switch cost)."""

from __future__ import annotations

import json
import os

from streamlit import dataframe_util

from dashboard.cache.handles import read_card
from dashboard.components.sidebar import _card_arrow, card_tables


def _write(folder, name: str, value: dict, mtime_ns: int) -> None:
    path = folder / f"{name}.json"
    path.write_text(json.dumps(value))
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_the_card_is_read_once_while_unchanged_and_again_when_a_file_changes(tmp_path):
    _write(tmp_path, "metrics", {"epochs": 3, "valid": {"ndcg@10": 0.25}}, 1_000_000_000)
    _write(tmp_path, "vocab", {"items": ["a", "b"]}, 1_000_000_000)
    first = read_card(tmp_path)
    assert first == {"metrics": {"epochs": 3, "valid": {"ndcg@10": 0.25}}, "fingerprint": {}, "config": {},
                     "vocab": {"items": ["a", "b"]}}
    assert read_card(tmp_path) is first  # unchanged files: the same dict, nothing read again
    _write(tmp_path, "metrics", {"epochs": 4}, 2_000_000_000)  # retrained: a new mtime
    second = read_card(tmp_path)
    assert second["metrics"] == {"epochs": 4} and second["vocab"] == {"items": ["a", "b"]}
    (tmp_path / "vocab.json").unlink()
    assert read_card(tmp_path)["vocab"] == {}
    (tmp_path / "config.json").write_text("{not json")
    assert read_card(tmp_path)["config"] == {}  # a damaged file reads as absent


def test_the_card_tables_are_converted_once_with_the_bytes_st_dataframe_makes(tmp_path):
    card = {"metrics": {"epochs": 3, "train_seconds": 12.5, "valid": {"ndcg@10": 0.25, "hit@10": 0.5},
                        "test": {"ndcg@10": 0.2, "hit@10": 0.4}},
            "fingerprint": {"events": 100, "max_ts": "2020-01-01"}, "config": {}, "vocab": {}}
    facts, metrics = _card_arrow(str(tmp_path), card)
    want_facts, want_metrics = card_tables(card)
    assert dataframe_util.convert_arrow_table_to_arrow_bytes(facts) == dataframe_util.convert_pandas_df_to_arrow_bytes(want_facts)
    assert dataframe_util.convert_arrow_table_to_arrow_bytes(metrics) == dataframe_util.convert_pandas_df_to_arrow_bytes(want_metrics)
    assert metrics.column_names == ["valid", "test", "metric"]  # the index travels as a column, as before
    again = _card_arrow(str(tmp_path), card)
    assert again[0] is facts and again[1] is metrics  # the same card: not converted again
    other = {**card, "metrics": {"epochs": 9}}  # another card for the folder (a retrained model)
    facts2, metrics2 = _card_arrow(str(tmp_path), other)
    assert facts2 is not facts and metrics2 is None
    assert "9" in facts2.column("value").to_pylist()
