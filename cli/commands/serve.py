"""`interestlens serve` (the dashboard on a database) and `interestlens demo` (what `make run` calls: prepare
the default dataset and model if absent, then serve).

`serve` replaces this process with `streamlit run dashboard/app.py`, so stopping it (Ctrl-C, SIGTERM) stops the
server itself. With `--processes N` (N > 1) it stays as the supervisor of N such servers on loopback ports and the
sticky proxy in front of them (cli/processes.py, cli/proxy.py), and stopping it stops them all. The database, model and models folder reach the app as absolute paths in $INTERESTLENS_DB,
$INTERESTLENS_MODEL and $INTERESTLENS_MODELS; the server binds to 127.0.0.1 unless `--host` says otherwise.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from pathlib import Path

import typer

from cli.common import DbOption, ModelOption
from core.checkpoint import MODEL_ENV, MODELS_ENV, models_root
from core.errors import InterestLensError, UserInputError, require_positive
from core.store import default_db_path

__all__ = ["register", "serve", "demo", "launch", "demo_env", "streamlit_argv", "port_free", "ensure_database", "ensure_model", "ensure_drift"]

log = logging.getLogger(__name__)

_ROOT = Path(__file__).resolve().parents[2]  # the project root: dashboard/ and .streamlit/ live here
_APP = _ROOT / "dashboard" / "app.py"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501
DEMO_SYNTHETIC = dict(users=2000, items=1000, events=100_000, seed=0, categories=12)  # the fallback dataset


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (a bind succeeds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def streamlit_argv(host: str, port: int, public: tuple[str, int] | None = None) -> list[str]:
    """The command line that runs the dashboard; settings that matter for safety are passed explicitly so they
    hold even when .streamlit/config.toml is not in the working directory. `public`: the address browsers use
    when a proxy stands in front (what Streamlit prints and links to)."""
    shown_host, shown_port = public or (host, port)
    return [
        sys.executable, "-m", "streamlit", "run", str(_APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.enableXsrfProtection", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--browser.serverAddress", shown_host,
        "--browser.serverPort", str(shown_port),
    ] + _GC_FLAG * (GC_ENV not in os.environ)


# Streamlit runs gc.collect(2) after every script run, holding the GIL that every session shares: with the model, its
# caches and pandas in the heap that was ~20 % of the server's CPU per user switch (bench/load_ws.py, docs/serving.md).
# Python's own generational collection still runs. $STREAMLIT_RUNNER_POST_SCRIPT_GC, when set, decides instead.
GC_ENV = "STREAMLIT_RUNNER_POST_SCRIPT_GC"
_GC_FLAG = ["--runner.postScriptGC", "false"]


# glibc gives each thread that allocates its own malloc arena (up to 8 per core), and Streamlit runs every script run
# in a new thread: memory freed in one arena is not reused by the others, so a server's RSS kept growing under many
# sessions. Two arenas: 20 sessions × 120 s grew the server process +131 MiB instead of +174 MiB (bench/load_ws.py,
# docs/serving.md). $MALLOC_ARENA_MAX, when set, decides instead.
ARENA_ENV = "MALLOC_ARENA_MAX"
SERVER_ARENAS = "2"


def allocator_env() -> dict[str, str]:
    """The server's malloc settings: `MALLOC_ARENA_MAX` = 2 unless the environment sets it."""
    return {} if ARENA_ENV in os.environ else {ARENA_ENV: SERVER_ARENAS}


def _model_env(model: Path | None) -> dict[str, str]:
    if model is not None and not (model / "model.safetensors").is_file():
        raise UserInputError(f"There is no trained model at {model}; train one with `interestlens train`.")
    env = {MODELS_ENV: str(models_root(model).resolve())}
    if model is not None:
        env[MODEL_ENV] = str(model.resolve())
    return env


def demo_env(demo_mode: bool) -> dict[str, str]:
    """The environment that turns the app's demo mode on (pseudonymous user ids, no user attributes): the key is
    $INTERESTLENS_DEMO_KEY when set (links stay valid across restarts), else a new random one for this server."""
    from core.privacy import DEMO_ENV, DEMO_KEY_ENV, new_demo_key

    if not demo_mode:
        return {}
    return {DEMO_ENV: "1", DEMO_KEY_ENV: os.environ.get(DEMO_KEY_ENV) or new_demo_key()}


# Every process behind the proxy must sign and read cookies alike (Streamlit's auth cookies), whichever one set them.
COOKIE_SECRET_ENV = "STREAMLIT_SERVER_COOKIE_SECRET"


def launch(db: Path, model: Path | None, host: str, port: int, demo_mode: bool = False, processes: int = 1) -> None:
    """Check the address, then replace this process with the Streamlit server, or (processes > 1) supervise that
    many behind the sticky proxy until stopped."""
    if not 0 < port < 65536:
        raise UserInputError(f"Port {port} is not a valid TCP port (1-65535).")
    env = {**os.environ, "INTERESTLENS_DB": str(db.resolve()), **_model_env(model), **demo_env(demo_mode),
           **allocator_env()}
    if processes > 1:
        _launch_many(db, env, host, port, processes)
        return
    if not port_free(host, port):
        raise UserInputError(f"Port {port} on {host} is already in use; pick another with --port.")
    if not db.exists():
        log.warning("no database at %s yet: the dashboard will say how to create one", db)
    url = f"http://{host}:{port}"
    sys.stderr.write(f"InterestLens dashboard on {url}  (database {db}; Ctrl-C stops it)\n")
    sys.stderr.flush()
    os.chdir(_ROOT)  # so Streamlit reads the project's .streamlit/config.toml (theme, upload limit)
    argv = streamlit_argv(host, port)
    os.execve(argv[0], argv, env)


def _launch_many(db: Path, env: dict[str, str], host: str, port: int, processes: int) -> None:
    import secrets

    from cli.processes import ServeSpec, Supervisor, worker_env

    if not port_free(host, port):
        raise UserInputError(f"Port {port} on {host} is already in use; pick another with --port.")
    if not db.exists():
        log.warning("no database at %s yet: the dashboard will say how to create one", db)
    env = {COOKIE_SECRET_ENV: secrets.token_hex(32), **env, **worker_env(processes)}
    spec = ServeSpec(processes=processes, host=host, port=port, env=env, cwd=_ROOT,
                     argv=lambda p: streamlit_argv("127.0.0.1", p, public=(host, port)))
    sys.stderr.write(f"starting {processes} dashboard processes for {host}:{port} (database {db})\n")
    sys.stderr.flush()
    code = Supervisor(spec).run()
    if code:
        raise typer.Exit(code)


def serve(
    db: Path | None = DbOption,
    model: Path | None = ModelOption,
    host: str = typer.Option(DEFAULT_HOST, "--host", help="Address to bind (default 127.0.0.1: this machine only)."),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="TCP port."),
    demo_mode: bool = typer.Option(
        False, "--demo-mode", help="Show users as pseudonyms (a keyed hash, $INTERESTLENS_DEMO_KEY) and hide their attributes."
    ),
    processes: str = typer.Option(
        "1", "--processes", help="Server processes behind a sticky proxy on --port: a number, or 'auto' (one per core, "
        "as memory allows; each ~1.4 GiB on ML-100k). 1: one process, no proxy."
    ),
) -> None:
    """Serve the dashboard on a database (http://127.0.0.1:8501 by default)."""
    from cli.processes import parse_processes

    launch(default_db_path(db), model, host, port, demo_mode, parse_processes(processes))


def _say(message: str) -> None:
    sys.stderr.write(f"[demo] {message}\n")
    sys.stderr.flush()


def ensure_database(db: Path) -> None:
    """Build the default dataset into `db` when the file is absent: MovieLens-100k when it can be read, else the
    synthetic log (saying which and why)."""
    if db.exists():
        _say(f"database {db} exists; using it")
        return
    t0 = time.perf_counter()
    movielens = _movielens_builder()
    if movielens is not None:
        try:
            _say(f"building MovieLens-100k into {db}")
            movielens(db)
            _say(f"MovieLens-100k ready ({time.perf_counter() - t0:.0f} s)")
            return
        except InterestLensError as exc:
            _say(f"MovieLens-100k is not available ({exc}); using the synthetic dataset instead")
    else:
        _say("MovieLens-100k is not available in this build; using the synthetic dataset instead")
    from core.datasets.build import build_synthetic

    build_synthetic(db, progress=lambda stage: _say(f"  synthetic: {stage}"), **DEMO_SYNTHETIC)
    _say(f"synthetic dataset ready ({time.perf_counter() - t0:.0f} s)")


def _movielens_builder():
    """The MovieLens-100k builder of `core.datasets` (None while that build has none)."""
    try:
        from core.datasets import build_movielens_100k
    except ImportError:
        return None
    return build_movielens_100k


def ensure_model(db: Path, root: Path, minutes: float) -> Path:
    """The newest checkpoint under `root` trained on `db`; trains `root/default` first when there is none (or
    `root/<database name>` when `default` holds a model of another database)."""
    from core.checkpoint import model_for
    from core.errors import NotFoundError

    try:
        found = model_for(db, None, root)
        _say(f"model {found} exists; using it")
        return found
    except NotFoundError:
        pass
    from core.train import TrainConfig, train

    out = root / "default"
    if (out / "model.safetensors").exists():
        out = root / Path(db).stem
    _say(f"training the default model into {out} (at most {minutes:g} minutes; early stopping may end sooner)")

    def report(r) -> None:
        ndcg = r.valid.get("NDCG@10", float("nan"))
        _say(f"  epoch {r.epoch}: loss {r.loss:.3f}, valid NDCG@10 {ndcg:.4f}{' *' if r.improved else ''} ({r.seconds:.0f} s)")

    result = train(db, out, None, TrainConfig(time_budget=minutes * 60.0, patience=5), progress=report)
    _say(f"model trained: {result.epochs} epoch{'' if result.epochs == 1 else 's'}, best {result.best_epoch} "
         f"({result.seconds:.0f} s)")
    return out


def ensure_drift(db: Path, model_dir: Path) -> None:
    """Write `drift.parquet` beside the model when it is missing (the explorer's "interests changed most")."""
    from core.trajectory import DRIFT_FILE, build_drift

    if (model_dir / DRIFT_FILE).exists():
        _say("drift summaries exist; using them")
        return
    from core.checkpoint import load_checkpoint

    _say("building drift summaries for every user")
    batch = build_drift(db, load_checkpoint(model_dir), progress=lambda done, total: _say(f"  drift: {done}/{total} users"))
    _say(f"drift summaries ready: {batch.users:,} users ({batch.seconds:.0f} s)")


def demo(
    db: Path | None = DbOption,
    host: str = typer.Option(DEFAULT_HOST, "--host", help="Address to bind."),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="TCP port."),
    train_minutes: float = typer.Option(8.0, "--train-minutes", help="Most minutes to train the default model."),
    prepare_only: bool = typer.Option(False, "--prepare-only", help="Prepare data and model, do not serve."),
) -> None:
    """Prepare the default dataset and model when absent, build drift summaries, then serve the dashboard."""
    require_positive("train_minutes", train_minutes, finite=True)
    path = default_db_path(db)
    root = models_root()
    t0 = time.perf_counter()
    if not prepare_only and not port_free(host, port):
        raise UserInputError(f"Port {port} on {host} is already in use; pick another with --port.")
    ensure_database(path)
    model_dir = ensure_model(path, root, train_minutes)
    ensure_drift(path, model_dir)
    _say(f"ready in {time.perf_counter() - t0:.0f} s")
    if not prepare_only:
        launch(path, model_dir, host, port)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("demo")(demo)
