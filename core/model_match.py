"""Whether a model belongs to a database: its identity first, then what its items are.

Sharing item ids is not evidence of the same data (two MovieLens releases both number their movies 1, 2, 3…; item
10 is *Richard III* in one and *GoldenEye* in the other). So:

1. A checkpoint trained on a database with the same identity (`core.store.identity`, recorded in the card's
   `database.id` at training time) belongs to it.
2. Otherwise (identities differ: a copied or rebuilt database; or one side predates identities) the model is
   accepted only when most of its items (an evenly spread sample of up to 2,000) exist in the database with the
   same title (where the card recorded one) and the same categories (from the model's vocabulary). When the
   identities are both known and differ, the acceptance says so (`Match.note`).
3. A database without items yet accepts any model (nothing can contradict it).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from core.errors import SettingError
from core.sequences import Vocab
from core.store.identity import database_id

__all__ = ["Match", "match_model", "database_record", "MOST", "SAMPLE", "TITLE_SAMPLE"]

SAMPLE = 2000  # model items looked up in the database
TITLE_SAMPLE = 500  # item titles recorded in the card at training time (evenly spread over the vocabulary)
MOST = 0.5  # share of the checked items that must agree for a model of another (or unknown) identity


def _spread(items: list[str], n: int) -> list[str]:
    """Up to `n` items evenly spread over `items` (the same ones every time for the same list)."""
    step = max(1, len(items) // n) if n else 1
    return items[::step][:n]


def database_record(con, vocab: Vocab) -> dict:
    """What training writes into the card's `database`: the identity and the titles of up to 500 model items.

    Returns {"id": str | None, "titles": {item_id: title}} (items without a title are left out).
    """
    sample = _spread(vocab.items, TITLE_SAMPLE)
    rows = con.execute(
        "SELECT item_id, title FROM items WHERE item_id IN (SELECT unnest(?::VARCHAR[])) AND title IS NOT NULL", [sample]
    ).fetchall() if sample else []
    return {"id": database_id(con), "titles": {str(i): str(t) for i, t in rows}}


@dataclass(frozen=True)
class Match:
    """The evidence that the model at `path` was (or was not) trained on a database, and the verdict."""

    path: Path
    fits: bool  # the model may be used with the database
    same_identity: bool | None  # identities equal (True), differ (False), one side has none (None)
    checked: int  # model items looked up (0 when the identity settled it or the database has no items)
    agreeing: int  # of them, in the database with the same title and categories
    found: int  # of them, in the database at all (whatever their title)
    example: str | None  # one disagreeing item, described ("item 10 is "GoldenEye (1995)" here, …"), for messages

    @property
    def note(self) -> str | None:
        """A sentence for the user when the model is accepted although its database identity differs."""
        if not self.fits or self.same_identity is not False:
            return None
        return (f"The model at {self.path} was trained on another database file (its identity differs: a copy or a "
                f"rebuild); it is used because {self.agreeing:,} of the {self.checked:,} of its items checked are here "
                f"with the same titles and categories.")

    def refusal(self, db: Path) -> SettingError:
        """The one sentence that refuses the model for `db`, naming the model setting (the CLI shows its flag)."""
        why = (f"none of the {self.checked:,} of its items checked is in {db}" if self.found == 0 else
               f"only {self.agreeing:,} of the {self.checked:,} of its items checked are in {db} with the same titles "
               f"and categories ({self.example})")
        head = _literal(f"The model at {self.path} was trained on another database: {why}. ")
        return SettingError(head + "Choose another {model} (one trained on this database), or train one on it.", "model",
                            next_step="train", step_db=db)


def _literal(text: str) -> str:
    """`text` as a literal part of a SettingError template (its braces doubled)."""
    return text.replace("{", "{{").replace("}", "}}")


def _card(path: Path) -> dict:
    try:
        data = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _categories(vocab: Vocab, position: int) -> set[str]:
    cats = vocab.item_categories[position] if position < len(vocab.item_categories) else []
    return {vocab.categories[c] for c in cats if 0 <= c < len(vocab.categories)}


def match_model(path: str | os.PathLike, con) -> Match:
    """Compare the model at `path` with the database on `con` (a read connection); see the module docstring.

    An unreadable vocabulary fits (load_checkpoint reports it, in its own words).
    """
    path = Path(path)
    recorded = _card(path).get("database")
    recorded = recorded if isinstance(recorded, dict) else {}
    model_id, ours = recorded.get("id"), database_id(con)
    same = None if not model_id or not ours else model_id == ours
    if same:
        return Match(path, True, True, 0, 0, 0, None)
    try:
        vocab = Vocab.load(path / "vocab.json")
    except (OSError, ValueError, KeyError, TypeError):
        return Match(path, True, same, 0, 0, 0, None)
    positions = list(range(len(vocab.items)))
    sample = _spread(positions, SAMPLE)
    ids = [vocab.items[p] for p in sample]
    if not ids or not con.execute("SELECT EXISTS (SELECT 1 FROM items)").fetchone()[0]:
        return Match(path, True, same, 0, 0, 0, None)
    here = {str(i): (t, set(c or [])) for i, t, c in con.execute(
        "SELECT item_id, title, categories FROM items WHERE item_id IN (SELECT unnest(?::VARCHAR[]))", [ids]).fetchall()}
    titles = recorded.get("titles") if isinstance(recorded.get("titles"), dict) else {}
    agreeing, example = 0, None
    for pos, item in zip(sample, ids, strict=True):
        if item not in here:
            continue
        title, cats = here[item]
        want_title, want_cats = titles.get(item), _categories(vocab, pos)
        title_ok = want_title is None or want_title == title
        # An item the model saw without categories agrees with any: only a recorded category can contradict.
        cats_ok = not want_cats or want_cats == cats
        if title_ok and cats_ok:
            agreeing += 1
        elif example is None:
            said = f'"{want_title}"' if want_title is not None and not title_ok else ", ".join(sorted(want_cats))
            seen = f'"{title}"' if want_title is not None and not title_ok else ", ".join(sorted(cats)) or "no category"
            example = f"item {item} is {seen} in the database, {said} in the model"
    fits = agreeing > MOST * len(ids)
    return Match(path, fits, same, len(ids), agreeing, len(here), example)
