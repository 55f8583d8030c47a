"""Built-in datasets: the catalogue, and MovieLens-100k read from the recbole wheel's files."""

from __future__ import annotations

import csv
import sys
from collections import Counter

import pytest

from core.datasets import available, build_dataset, find_movielens_100k
from core.datasets.movielens import require_movielens_100k
from core.errors import NotFoundError, UserInputError
from core.store import connect_read


def test_movielens_is_missing_in_an_environment_without_recbole(tmp_path):
    assert find_movielens_100k([str(tmp_path)]) is None
    with pytest.raises(NotFoundError, match=r"run `pip install --no-deps recbole==1.2.1` \(or `make install`\)"):
        require_movielens_100k([str(tmp_path)])


def test_catalogue_says_what_can_be_built():
    infos = {d.name: d for d in available()}
    assert set(infos) == {"synthetic", "movielens-100k", "synthetic-social", "synthetic-lastfm"}
    assert infos["synthetic-social"].available and infos["synthetic-lastfm"].available
    assert infos["synthetic"].available
    assert infos["movielens-100k"].available == (find_movielens_100k() is not None)
    with pytest.raises(UserInputError, match="Unknown dataset 'imdb'"):
        build_dataset("imdb", None)


def test_movielens_100k_from_the_recbole_files(tmp_path):
    """Counts and spot values checked against the files themselves, read independently with the csv module."""
    folder = find_movielens_100k()
    if folder is None:  # the build must then say exactly what to install
        with pytest.raises(NotFoundError, match="recbole==1.2.1"):
            build_dataset("movielens-100k", tmp_path / "ml.duckdb")
        return
    assert "recbole" not in sys.modules  # located, never imported (it fails on NumPy 2)
    with open(folder / "ml-100k.inter", newline="") as f:
        inter = list(csv.reader(f, delimiter="\t"))[1:]
    per_user = Counter(r[0] for r in inter)
    db = tmp_path / "ml.duckdb"
    r = build_dataset("movielens-100k", db)
    assert (r.accepted, r.rejected, r.duplicates) == (100_000, 0, 0) == (len(inter), 0, 0)
    with connect_read(db) as con:
        assert con.execute("SELECT count(*) FROM users").fetchall()[0][0] == 943
        assert con.execute("SELECT count(*) FROM items").fetchall()[0][0] == 1682
        assert con.execute("SELECT count(*) FROM events WHERE user_id = '1'").fetchall()[0][0] == per_user["1"]
        assert con.execute("SELECT attributes FROM users WHERE user_id = '1'").fetchall()[0][0] == {
            "age": "24", "gender": "M", "occupation": "technician", "zip": "85711"}  # fmt: skip
        title, cats = con.execute("SELECT title, categories FROM items WHERE item_id = '543'").fetchall()[0]
        assert (title, cats) == ("Misérables, Les", ["Drama", "Musical"])
        first = con.execute("SELECT min(ts), max(ts) FROM events").fetchall()[0]
        assert (first[0].year, first[1].year) == (1997, 1998)
