"""Every CLI command given an unknown user or item id exits 1 with one sentence; log text with terminal escape
sequences or bidi controls is printed as visible escapes, never executed by the terminal."""

from __future__ import annotations

import pytest

from core.ingest import ColumnMapping, ingest
from core.store import connect_read


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["recommend", "--user", "nobody"], "There is no user 'nobody' with events in this database."),
        (["trajectory", "--user", "nobody"], "There is no user 'nobody' in this database."),
        (["explain", "--user", "nobody"], "There is no user 'nobody' with events in this database."),
        (["explain", "--user", "u003", "--item", "nothing"], "The model does not know item 'nothing'."),
        (["semantic", "describe", "nobody"], "There is no user 'nobody' with events in this database."),
        (["semantic", "similar", "nothing"], "There is no item 'nothing' among the encoded items."),
        (["forget", "--user", "nobody"], "There is no user 'nobody' in this database."),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else "",
)
def test_unknown_ids_exit_non_zero_with_one_sentence(cli, monkeypatch, capsys, semantic_db, untrained_model_dir, args, message):
    needs_model = args[0] in ("recommend", "trajectory", "explain") or args[:2] == ["semantic", "describe"]
    extra = ["--db", str(semantic_db)] + (["--model", str(untrained_model_dir)] if needs_model else [])
    code, out, err = cli(*args, *extra)
    assert (code, out, err) == (1, "", f"error: {message}\n")


def test_escape_sequences_in_titles_are_shown_as_text(cli, monkeypatch, capsys, writable_db, untrained_model_dir, tmp_path):
    with connect_read(writable_db) as con:
        items = [r[0] for r in con.execute("SELECT item_id FROM items").fetchall()]
    path = tmp_path / "titles.csv"
    path.write_text("user_id,item_id,timestamp,title\n" + "".join(
        f"zz,{i},{1_700_000_000 + n},\x1b[2J\x1b[31mred\u202eevil\n" for n, i in enumerate(items)))
    ingest(writable_db, "generic", path, mapping=ColumnMapping(title="title"))
    code, out, err = cli("recommend", "--db", str(writable_db), "--model", str(untrained_model_dir),
                         "--user", "u003", "--k", "3")
    assert code == 0, err
    assert "\x1b" not in out and "\u202e" not in out
    assert out.count("\\x1b[2J\\x1b[31mred\\u202eevil") == 3  # each title, visibly escaped
    code, out, _ = cli("recommend", "--db", str(writable_db), "--model", str(untrained_model_dir),
                       "--user", "u003", "--k", "3", "--json")
    assert code == 0 and "\\u001b[2J\\u001b[31mred\u202eevil" in out  # JSON keeps the text, escaped by JSON itself
