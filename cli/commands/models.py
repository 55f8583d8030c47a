"""`interestlens models add|list`: register an external model (ONNX, TorchScript, Python entry point) beside ours."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import DbOption, JsonOption, emit
from core.checkpoint import models_root
from core.errors import UserInputError
from core.external import add_model, list_models
from core.store import connect_read

__all__ = ["register"]

models_app = typer.Typer(help="Register and list models: ours and external ones (ONNX, TorchScript, entry points).",
                         no_args_is_help=True)

RootOption = typer.Option(None, "--models", help="Models folder (default: $INTERESTLENS_MODELS, else the folder "
                                                 "of $INTERESTLENS_MODEL, else data/models).")


def _root(root: Path | None) -> Path:
    # The one rule of `core.checkpoint.models_root`, so `models list` shows what the app and `serve` show.
    return Path(root) if root else models_root()


@models_app.command("add")
def add_cmd(
    name: str = typer.Option(..., "--name", help="Folder name of the model under the models folder."),
    db: Path | None = DbOption,
    onnx: Path | None = typer.Option(None, "--onnx", help="An ONNX sequence model (sidecar: the same name, .json)."),
    torchscript: Path | None = typer.Option(None, "--torchscript", help="A TorchScript module (sidecar as --onnx)."),
    entry: str | None = typer.Option(
        None, "--entry", help="package.module:factory. This imports and runs that code: register only code you trust."
    ),
    items: Path | None = typer.Option(None, "--items", help="Item map CSV (index,item_id); default: the sidecar's."),
    sidecar: Path | None = typer.Option(None, "--sidecar", help="Sidecar JSON (default: the model file with .json)."),
    root: Path | None = RootOption,
    as_json: bool = JsonOption,
) -> None:
    """Register an external model for a database: every analysis then takes --model NAME."""
    given = [(k, v) for k, v in (("onnx", onnx), ("torchscript", torchscript), ("entry", entry)) if v]
    if len(given) != 1:
        raise UserInputError("Give exactly one of --onnx FILE, --torchscript FILE or --entry MODULE:FACTORY.")
    kind, source = given[0]
    with connect_read(db) as con:
        info = add_model(con, _root(root), name, kind, str(source), items=items, sidecar=sidecar)
    emit(info.to_dict(), as_json, f"Registered {info.kind} model {info.name!r} at {info.path}: it scores "
                                  f"{info.items:,} items of this database.")


@models_app.command("list")
def list_cmd(root: Path | None = RootOption, as_json: bool = JsonOption) -> None:
    """Every model under the models folder with its kind and data fingerprint."""
    found = list_models(_root(root))
    lines = [f"{'name':<24}{'kind':<14}{'items':>8}  fingerprint"]
    for m in found:
        fp = m.fingerprint
        desc = f"{fp.get('users', '?')} users, {fp.get('events', '?')} events, items {fp.get('items_sha256', '?')}"
        lines.append(f"{m.name:<24}{m.kind:<14}{m.items:>8,}  {desc}")
    if not found:
        lines = [f"No models under {_root(root)}."]
    emit({"models": [m.to_dict() for m in found]}, as_json, "\n".join(lines))


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
