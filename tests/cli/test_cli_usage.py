"""Usage errors (an unknown command or option, a missing or bad value) print one sentence naming it and exit 2;
no arguments, -h and --version work; Ctrl-C exits 130 with one line; bad training numbers, an empty category
separator and bad live-mode numbers are refused with one sentence naming the flag, before any work is done; where
core refuses a setting (in words), the CLI names its flag."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version

import duckdb
import pytest
import typer

import cli.commands.train as train_module
from cli.common import run_app
from core.errors import UserInputError
from core.ingest import ColumnMapping
from core.model import ModelConfig
from core.train import TrainConfig, TrainResult

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["frobnicate"], "No such command 'frobnicate'."),
        (["recommend", "--bogus"], "No such option: --bogus"),
        (["recommend", "--user"], "Option '--user' requires an argument."),
        (["recommend", "--k", "abc"], "Invalid value for '--k': "),
        (["recommend", "--k", "0"], "Invalid value for '--k': "),
        (["ingest", "--db", "x.duckdb", "file.csv"], "Missing option '--preset'"),
        (["train", "--split", "bogus"], "Invalid value for '--split': expected loo or time, not 'bogus'."),
        (["recommend", "--version"], "No such option: --version"),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else "",
)
def test_usage_errors_name_the_option_in_one_sentence_and_exit_2(cli, monkeypatch, capsys, tmp_path, args, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(*args)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {message}") and err.count("\n") == 1 and err.rstrip().endswith((".", ")")), err
    assert "unexpected" not in err and "Error" not in err
    assert list(tmp_path.iterdir()) == []  # nothing was created


def test_no_arguments_and_h_print_the_help_and_exit_0(cli, monkeypatch, capsys):
    for args in ([], ["-h"], ["--help"]):
        code, out, err = cli(*args)
        assert (code, err) == (0, ""), args
        assert "Usage: " in out and "recommend" in out, args
    code, out, err = cli("recommend", "-h")
    assert (code, err) == (0, "") and "recommend [OPTIONS]" in out


def test_version_prints_the_installed_version(cli, monkeypatch, capsys):
    assert cli("--version") == (0, f"interestlens {version('interestlens')}\n", "")


def _tiny_app(exc: BaseException) -> typer.Typer:
    tiny = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @tiny.command()
    def boom() -> None:
        raise exc

    return tiny


@pytest.mark.parametrize(
    "exc",
    [KeyboardInterrupt(), RuntimeError("Query interrupted"), duckdb.InterruptException("INTERRUPT Error: Interrupted!")],
    ids=["KeyboardInterrupt", "duckdb-sigint", "duckdb-interrupt"],
)
def test_ctrl_c_inside_a_command_exits_130_with_one_line(capsys, exc):
    assert run_app(_tiny_app(exc), []) == 130
    assert capsys.readouterr().err == "error: interrupted.\n"


def test_unexpected_errors_still_give_one_line(capsys):
    assert run_app(_tiny_app(ValueError("boom")), []) == 1
    assert capsys.readouterr().err == "error: unexpected ValueError: boom\n"
    assert run_app(_tiny_app(RuntimeError("something else")), []) == 1
    assert capsys.readouterr().err == "error: unexpected RuntimeError: something else\n"


def test_ctrl_c_while_the_cli_starts_prints_no_traceback():
    code = ("import pkgutil\n"
            "def interrupted(*a, **k):\n    raise KeyboardInterrupt\n"
            "pkgutil.iter_modules = interrupted\n"
            "from cli import main\nmain()\n")  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout, r.stderr) == (130, "", "error: interrupted.\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "--dataset", "movielens-100k", "--users", "5"],
         "--users, --items, --events and --seed apply only when --dataset is synthetic."),
        (["build", "--dataset", "synthetic", "--users", "10", "--events", "5"],
         "--events (5) must be at least --users (10): one event per user."),
        (["trajectory", "--user", "1", "--half-life", "0"], "--half-life must be positive, not 0.0."),
        (["train", "--device", "cuda", "--epochs", "1"],
         "A CUDA GPU was asked for (--device cuda), but none is available; set --device to auto or cpu."),
        (["ingest", os.path.join(ROOT, "tests", "fixtures", "bad", "latin1.csv"), "--preset", "generic"],
         "latin1.csv is not valid UTF-8 text (line 2); if it is Latin-1, set --encoding to latin-1."),
    ],
    ids=["build-size", "build-events", "half-life", "device", "encoding"],
)
def test_the_cli_names_its_flags_where_core_names_settings(cli, monkeypatch, synthetic_db, untrained_model_dir,
                                                            tmp_path, args, message):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same answer on a machine with a GPU
    db = synthetic_db if args[0] == "trajectory" else tmp_path / "x.duckdb"
    extra = ["--model", str(untrained_model_dir)] if args[0] == "trajectory" else []
    extra += ["--out", str(tmp_path / "m")] if args[0] == "train" else []
    code, out, err = cli(*args, "--db", str(db), *extra)
    assert (code, out, err) == (1, "", f"error: {message}\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "0"], "--epochs must be at least 1, not 0."),
        (["--batch-size", "0"], "--batch-size must be at least 1, not 0."),
        (["--lr", "-1"], "--lr must be a number above 0, not -1.0."),
        (["--lr", "0"], "--lr must be a number above 0, not 0.0."),
        (["--patience", "0"], "--patience must be at least 1, not 0."),
        (["--max-steps", "0"], "--max-steps must be at least 1, not 0."),
        (["--time-budget", "-5"], "--time-budget must be a number above 0, not -5.0."),
        (["--max-len", "0"], "--max-len must be a whole number of at least 1, not 0."),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else "",
)
def test_train_refuses_bad_numbers_before_training(cli, monkeypatch, capsys, tmp_path, args, message):
    def never(*a, **k):
        raise AssertionError("train() must not be called")

    monkeypatch.setattr(train_module, "train", never)
    code, out, err = cli("train", "--db", str(tmp_path / "x.duckdb"), "--out",
                         str(tmp_path / "m"), *args)  # fmt: skip
    assert (code, out, err) == (1, "", f"error: {message}\n")
    assert list(tmp_path.iterdir()) == []


def test_train_says_1_epoch_not_1_epochs(cli, monkeypatch, capsys, tmp_path):
    def fake(db, out, model_config, config, progress=None, resume=False):
        return TrainResult(epochs=config.epochs, seconds=1.0, best_epoch=1, valid={}, device="cpu", path=str(out),
                           stopped="max_epochs")  # fmt: skip

    monkeypatch.setattr(train_module, "train", fake)
    for n, word in ((1, "1 epoch in"), (2, "2 epochs in")):
        code, out, err = cli("train", "--db", str(tmp_path / "x.duckdb"), "--out",
                             str(tmp_path / "m"), "--epochs", str(n))  # fmt: skip
        assert code == 0, err
        assert out.startswith(f"trained {word} "), out


@pytest.mark.parametrize(
    "kw",
    [dict(epochs=0), dict(batch_size=-1), dict(lr=float("nan")), dict(lr=float("inf")), dict(warmup=-1),
     dict(patience=0), dict(weight_decay=-0.1), dict(split="bogus"), dict(time_budget=0.0), dict(max_steps=0),
     dict(n_negatives=0), dict(max_valid_users=0), dict(clock="cpu"), dict(num_threads=0)],  # fmt: skip
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()),
)
def test_train_config_refuses_settings_that_train_nothing(kw):
    with pytest.raises(UserInputError):
        TrainConfig(**kw)


@pytest.mark.parametrize(
    "kw",
    [dict(max_len=0), dict(d_model=0), dict(n_heads=0), dict(n_layers=0), dict(d_model=10, n_heads=3),
     dict(dropout=1.0), dict(dropout=-0.1), dict(text_dim=-1), dict(text_id_dropout=1.5), dict(max_len=2.5)],  # fmt: skip
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()),
)
def test_model_config_refuses_shapes_the_model_cannot_have(kw):
    with pytest.raises(UserInputError):
        ModelConfig(**kw)


def test_valid_configs_still_build():
    TrainConfig(epochs=1, batch_size=1, lr=1e-5, warmup=0, patience=1, time_budget=0.5, max_steps=1, grad_clip=0)
    ModelConfig(max_len=1, d_model=2, n_heads=1, n_layers=1, dropout=0.0, text_dim=0, text_id_dropout=1.0)
    assert ModelConfig.from_dict(ModelConfig().to_dict()) == ModelConfig()
    assert TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()


SEP_MESSAGE = ("error: The category separator (--category-sep, or category_sep in a mapping file) must not be empty; "
               "leave it out to split categories on |.\n")  # fmt: skip


def test_an_empty_category_separator_is_refused(cli, monkeypatch, capsys, tmp_path):
    with pytest.raises(UserInputError, match="must not be empty"):
        ColumnMapping(category="cat", category_sep="")
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('category = "cat"\ncategory_sep = ""\n', encoding="utf-8")
    with pytest.raises(UserInputError, match="must not be empty"):
        ColumnMapping.from_toml(mapping)
    src = tmp_path / "e.csv"
    src.write_text("user_id,item_id,timestamp,cat\nu,i,1700000000,a|b\n", encoding="utf-8")
    db = tmp_path / "x.duckdb"
    code, out, err = cli("ingest", "--db", str(db), "--preset", "generic", str(src),
                         "--category", "cat", "--category-sep", "")  # fmt: skip
    assert (code, out, err) == (1, "", SEP_MESSAGE)
    assert not db.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["replay", "--source", "{src}", "--batch-size", "0"], "--batch-size must be at least 1 event, not 0."),
        (["replay", "--source", "{src}", "--batch-size", "-3"], "--batch-size must be at least 1 event, not -3."),
        (["replay", "--source", "{src}", "--interval", "-1"],
         "--interval must be a finite number of seconds, 0 or more; not -1."),
        (["replay", "--source", "{src}", "--write-timeout", "nan"],
         "--write-timeout must be a finite number of seconds, 0 or more; not nan."),
        (["follow", "{dir}", "--preset", "generic", "--interval", "0"],
         "--interval must be a finite number of seconds, more than 0; not 0."),
        (["follow", "{dir}", "--preset", "generic", "--interval", "inf"],
         "--interval must be a finite number of seconds, more than 0; not inf."),
        (["follow", "{dir}", "--preset", "generic", "--settle", "-1"],
         "--settle must be a finite number of seconds, 0 or more; not -1."),
        (["follow", "{dir}", "--preset", "generic", "--write-timeout", "-1"],
         "--write-timeout must be a finite number of seconds, 0 or more; not -1."),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else "",
)
def test_live_commands_refuse_bad_numbers(cli, monkeypatch, capsys, tmp_path, args, message):
    src, folder, db = tmp_path / "src.duckdb", tmp_path / "land", tmp_path / "x.duckdb"
    src.touch()
    folder.mkdir()
    args = [a.format(src=src, dir=folder) for a in args]
    code, out, err = cli(*args, "--db", str(db))
    assert (code, out, err) == (1, "", f"error: {message}\n")
    assert not db.exists()


def _help(cli, monkeypatch, command: str) -> str:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = cli(command, "--help")
    assert code == 0
    return " ".join(out.replace("│", " ").split())


def test_follow_and_replay_json_help_says_json_lines(cli, monkeypatch, capsys):
    assert "Print one JSON object per line: one per batch (or file that cannot be ingested), then a summary " \
           "when stopped." in _help(cli, monkeypatch, "follow")  # fmt: skip
    assert "Print one JSON object per line: one per batch, then a summary when done or stopped." in _help(
        cli, monkeypatch, "replay")  # fmt: skip
    assert "Print exactly one JSON object on stdout." in _help(cli, monkeypatch, "summary")


def test_follow_once_does_not_say_ctrl_c_stops(cli, monkeypatch, capsys, tmp_path):
    (tmp_path / "land").mkdir()
    code, out, err = cli("follow", str(tmp_path / "land"), "--preset", "generic", "--once",
                         "--db", str(tmp_path / "x.duckdb"))  # fmt: skip
    assert code == 0, err
    assert "Ctrl-C" not in out and out.startswith("ingesting what is in ")
    assert out.splitlines()[-1] == "stopped: 0 batches, 0 events accepted, 0 duplicates, 0 rejected, 0 errors."
