"""`interestlens semantic encode|search|similar|describe`: item texts as vectors, search by meaning, interests in words.

Encoding new texts and free-text queries need the optional `semantic` extra; `similar` and `describe` work from
cached vectors without it.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import DbOption, JsonOption, ModelOption, emit

semantic_app = typer.Typer(
    help="Item semantics from a pretrained text encoder: encode, search, similar items, interests in words.",
    no_args_is_help=True,
)

KOption = typer.Option(10, "--k", min=1, max=1000, help="How many results.")
DeviceOption = typer.Option("auto", "--device", help="auto (GPU when present), cpu, cuda or mps.")


def _vectors(db: Path | None, device: str = "auto", batch_size: int = 64):
    from core.semantic import encode_items, load_encoder

    return encode_items(db, lambda: load_encoder(device), batch_size=batch_size)


@semantic_app.command("encode")
def encode(
    db: Path | None = DbOption,
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Texts per forward pass of the encoder."),
    device: str = DeviceOption,
    as_json: bool = JsonOption,
) -> None:
    """Encode every item's text (title, categories, tags, description) into the cache beside the database."""
    from core.semantic import default_vectors_path

    tv = _vectors(db, device, batch_size)
    result = {
        "items": len(tv.item_ids),
        "terms": len(tv.terms),
        "encoded": tv.encoded,
        "seconds": round(tv.seconds, 3),
        "encoder": tv.encoder,
        "dim": tv.dim,
        "path": default_vectors_path(db),
    }
    state = f"encoded {tv.encoded} texts in {tv.seconds:.1f}s" if tv.encoded else "up to date"
    emit(result, as_json, f"{len(tv.item_ids):,} items, {len(tv.terms):,} terms ({tv.encoder}, {tv.dim} dims): "
                          f"{state}\n{result['path']}")


def _item(m) -> dict:
    """A `core.semantic.Match` of an item in the CLI's JSON vocabulary (item_id, as every command names it)."""
    return {"item_id": m.key, "text": m.text, "score": m.score}


def _term(m) -> dict:
    """A `core.semantic.Match` of a term (a category or tag): the term, its text and score."""
    return {"term": m.key, "text": m.text, "score": m.score}


@semantic_app.command("search")
def search(
    query: str = typer.Argument(..., help="Free text, e.g. \"space adventure\"."),
    db: Path | None = DbOption,
    k: int = KOption,
    users: bool = typer.Option(False, "--users", help="Also find users whose current interest matches (needs a model)."),
    model: str | None = ModelOption,
    device: str = DeviceOption,
    as_json: bool = JsonOption,
) -> None:
    """Items (and with --users, users) whose text or current interest is nearest to a free-text query."""
    from core.semantic import encode_items, load_encoder, search_items, search_users

    encoder = load_encoder(device)  # the query needs it anyway, so stale item vectors are refreshed with it too
    tv = encode_items(db, encoder)
    items = search_items(tv, query, encoder, k)
    result: dict = {"query": query, "items": [_item(m) for m in items]}
    lines = [f"items nearest to {query!r}:"] + [f"  {m.score:.3f}  {m.key}  {m.text}" for m in items]
    if users:
        loaded, seqs = _model_and_sequences(db, model)
        found = search_users(loaded, tv, seqs, query, encoder, k)
        result["users"] = [vars(u) for u in found]
        result["model"] = loaded.name
        lines += [f"users whose current interest is nearest ({loaded.name}):"]
        lines += [f"  {u.score:.3f}  {u.user_id}" for u in found]
    emit(result, as_json, "\n".join(lines))


@semantic_app.command("similar")
def similar(
    item_id: str = typer.Argument(..., help="An item id."),
    db: Path | None = DbOption,
    k: int = KOption,
    as_json: bool = JsonOption,
) -> None:
    """Items whose text is nearest to this item's."""
    from core.semantic import similar_items

    tv = _vectors(db)
    found = similar_items(tv, item_id, k)
    text = tv.texts[tv.row(item_id)]
    emit(
        {"item_id": item_id, "text": text, "similar": [_item(m) for m in found]},
        as_json,
        "\n".join([f"{item_id}  {text}"] + [f"  {m.score:.3f}  {m.key}  {m.text}" for m in found]),
    )


@semantic_app.command("describe")
def describe(
    user_id: str = typer.Argument(..., help="A user id."),
    db: Path | None = DbOption,
    model: str | None = ModelOption,
    points: int = typer.Option(4, "--points", min=1, max=50, help="Points of the history to describe (the last is now)."),
    k: int = typer.Option(5, "--k", min=1, max=50, help="Terms and items per point."),
    as_json: bool = JsonOption,
) -> None:
    """A user's current and past interest in words: the nearest categories, tags and item texts."""
    from core.semantic import describe_user

    tv = _vectors(db)
    loaded, seqs = _model_and_sequences(db, model, users=[user_id])
    words = describe_user(loaded, tv, seqs, user_id, points=points, k=k)
    result = {
        "user_id": words.user_id,
        "events": words.n_events,
        "model": loaded.name,
        "points": [
            {"step": p.step, "time": p.ts, "terms": [_term(m) for m in p.terms], "items": [_item(m) for m in p.items]}
            for p in words.points
        ],
    }
    lines = [f"user {user_id}: {words.n_events} events ({loaded.name})"]
    for p in words.points:
        label = "now" if p is words.current else f"after event {p.step + 1}"
        lines.append(f"  {label} ({p.ts:%Y-%m-%d}): {p.summary}")
        lines += [f"      {m.score:.3f}  {m.text}" for m in p.items[:3]]
    emit(result, as_json, "\n".join(lines))


def _model_and_sequences(db: Path | None, model: str | None, users: list[str] | None = None):
    from core.checkpoint import load_checkpoint, model_for
    from core.sequences import load_sequences
    from core.store import connect_read

    loaded = load_checkpoint(model_for(db, model))
    with connect_read(db) as con:
        seqs = load_sequences(con, loaded.vocab, users)
    return loaded, seqs


def register(app: typer.Typer) -> None:
    app.add_typer(semantic_app, name="semantic")
