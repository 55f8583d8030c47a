"""Reliability report: the hostile-input corpus through ingest with every row accounted for, the fault scenarios,
a scan of the tracked files for secrets, and the latency and memory figures of the last load run.

- corpus: every case of tests/core/test_ingest_bad.py and tests/core/test_hostile_input.py (the case tables are read
  from those files, so the report and the tests cannot drift apart) ingests into a fresh copy of a small synthetic
  database. A refused case passes when it is refused in one sentence and every table is as before; an accepted one
  when its accepted / rejected / duplicate counts are the expected ones and the rows in the file, counted here
  independently (csv module, JSON lines, Parquet metadata), equal accepted + rejected + duplicates, with exactly
  `accepted` new rows in events and `rejected` in rejects. Rows lost = rows in the file that are in none of them;
- faults: the fault tests (SIGKILL during ingest at each stage and at random moments, training killed and resumed,
  damaged checkpoints, the app with a damaged model, a database held by a writer) run under pytest, and so do the
  corpus test files themselves (cases outside the tables: a line longer than the reader's buffer, a file changed
  while read, the same file twice); tried / passed from the JUnit reports (skip both with --skip-faults);
- secrets: private keys, cloud and API tokens, and secrets written into config files, in every file git tracks;
- load: the summary of bench/results/load-*.json (the newest run).

Usage: `python bench/reliability.py [--skip-faults]`. Prints the figures and writes bench/results/reliability.json.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import importlib.util
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, machine_info, versions  # noqa: E402

BAD = ROOT / "tests" / "fixtures" / "bad"
CASE_FILES = (ROOT / "tests" / "core" / "test_ingest_bad.py", ROOT / "tests" / "core" / "test_hostile_input.py")
FAULT_TESTS = ("tests/core/test_faults.py", "tests/dashboard/test_hostile_faults.py")
CORPUS_TESTS = ("tests/core/test_ingest_bad.py", "tests/core/test_hostile_input.py")  # also the non-table cases
TABLES = ("events", "users", "items", "rejects", "meta")
TINY = dict(users=120, items=150, events=6000, seed=7, categories=6)

__all__ = ["SECRET_PATTERNS", "scan_secrets", "count_records", "run_corpus", "run_faults", "load_figures", "main"]

# What a committed secret looks like. Assignments count only in config-like files and only with a value that is not
# an obvious placeholder (docs and tests show examples such as "<your client secret>" or "not-a-real-secret").
SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----"),
    "AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "OpenAI/Anthropic key": re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{32,}\b"),
    "Stripe key": re.compile(r"\b[rs]k_live_[0-9A-Za-z]{20,}\b"),
    "Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{34,}\b"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
}
_ASSIGNED = re.compile(r"""(?i)\b(client_secret|cookie_secret|secret_key|api_key|password|token)\b["']?\s*[=:]\s*["']([^"'\n]{8,})["']""")
_CONFIG_SUFFIXES = {".toml", ".ini", ".cfg", ".env", ".yaml", ".yml", ".json", ".conf"}
_PLACEHOLDER = re.compile(r"(?i)<|\.\.\.|x{4,}|example|placeholder|change[-_ ]?me|your[-_ ]|not[-_ ]a[-_ ]real|test|dummy|fake")


def scan_secrets(root: Path = ROOT) -> dict:
    """Every file git tracks (text files only) checked against SECRET_PATTERNS and, in config-like files, for
    secrets assigned to a key. Returns the number of files scanned and the findings (path, line, kind)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout.split(b"\0")
    findings, scanned = [], 0
    for name in filter(None, files):
        path = root / name.decode()
        try:
            raw = path.read_bytes()
        except OSError:  # deleted in the working tree
            continue
        if b"\0" in raw[:8192]:
            continue
        scanned += 1
        text = raw.decode("utf-8", "replace")
        for n, line in enumerate(text.splitlines(), 1):
            for kind, pattern in SECRET_PATTERNS.items():
                if pattern.search(line):
                    findings.append({"path": str(name.decode()), "line": n, "kind": kind})
            if path.suffix.lower() in _CONFIG_SUFFIXES or path.name.startswith(".env"):
                m = _ASSIGNED.search(line)
                if m and not _PLACEHOLDER.search(m.group(2)):
                    findings.append({"path": str(name.decode()), "line": n, "kind": f"{m.group(1)} in a config file"})
    return {"files_scanned": scanned, "findings": findings}


# ---------------------------------------------------------------------------------------------------- corpus


def _cases() -> list[dict]:
    """The refused and accepted cases of the two corpus test files, as plain dicts."""
    out = []
    for path in CASE_FILES:
        spec = importlib.util.spec_from_file_location(f"_reliability_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        for case in module.REFUSED:
            out.append({"source": path.name, "kind": "refused", "file": case.file, "preset": case.preset,
                        "error": case.error, "mapping": case.mapping})
        accepted = getattr(module, "QUARANTINED", None) or module.STORED
        for case in accepted:
            counts = getattr(case, "counts", None) or (case.accepted, case.rejected, case.duplicates)
            out.append({"source": path.name, "kind": "accepted", "file": case.file,
                        "preset": getattr(case, "preset", "generic"), "counts": tuple(counts),
                        "mapping": case.mapping, "toml": getattr(case, "toml", None)})
    return out


def _open_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def count_records(path: Path, preset: str, mapping: dict | None) -> int:
    """Rows in a log file, counted without the ingest code: Parquet metadata; JSON lines and header-less formats by
    non-blank lines; delimited text with a header by the csv module (quoted newlines are one row)."""
    mapping = mapping or {}
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    data = _open_bytes(path)
    encoding = mapping.get("encoding") or "utf-8"
    text = data.decode({"utf-8": "utf-8-sig"}.get(encoding, encoding), "replace")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if name.endswith((".json", ".jsonl", ".ndjson")) or preset == "amazon-reviews":
        return len(lines)
    if preset in ("movielens-100k", "movielens-1m", "taobao") and not name.endswith(".inter"):
        return len(lines)
    if name.endswith(".inter"):
        return len(lines) - 1
    delimiter = mapping.get("delimiter")
    if delimiter is None:
        header = text.split("\n", 1)[0]
        delimiter = max(",;\t|", key=header.count)
    rows = [r for r in csv.reader(io.StringIO(text.replace("\0", ""), newline=""), delimiter=delimiter)
            if any(f.strip() for f in r)]
    return len(rows) - 1


def _state(db: Path) -> dict:
    from core.store import connect_read

    with connect_read(db) as con:
        return {t: con.execute(f"SELECT count(*), coalesce(bit_xor(hash(x)), 0) FROM {t} x").fetchall()[0] for t in TABLES}


def run_corpus(work: Path) -> dict:
    """Every corpus case on a fresh copy of a small synthetic database; per case: passed, rows in, accounted, lost."""
    from core.datasets.build import build_synthetic
    from core.errors import UserInputError
    from core.ingest import ColumnMapping, ingest
    from core.store import connect_read

    base = work / "base.duckdb"
    build_synthetic(base, **TINY)
    results = []
    for case in _cases():
        db = work / "case.duckdb"
        db.unlink(missing_ok=True)
        shutil.copy2(base, db)
        if case.get("toml"):
            mapping = ColumnMapping.from_toml(BAD / case["toml"])
        else:
            mapping = ColumnMapping(**case["mapping"]) if case["mapping"] else None
        before = _state(db)
        row = {"case": f"{case['preset']}:{case['file']}", "source": case["source"], "kind": case["kind"]}
        try:
            result = ingest(db, case["preset"], BAD / case["file"], mapping=mapping)
        except UserInputError as exc:
            unchanged = _state(db) == before
            one_sentence = "\n" not in str(exc) and "Traceback" not in str(exc)
            row.update(passed=case["kind"] == "refused" and bool(re.search(case["error"], str(exc))) and unchanged
                       and one_sentence, refused=str(exc)[:200], tables_unchanged=unchanged, rows_lost=0)
            results.append(row)
            continue
        except Exception as exc:  # anything but a one-sentence refusal is a failure of the case
            row.update(passed=False, crash=f"{type(exc).__name__}: {exc}"[:300], rows_lost=None)
            results.append(row)
            continue
        got = (result.accepted, result.rejected, result.duplicates)
        with connect_read(db) as con:
            new_events = con.execute("SELECT count(*) FROM events WHERE run_id = ?", [result.run_id]).fetchone()[0]
            new_rejects = con.execute("SELECT count(*) FROM rejects WHERE run_id = ?", [result.run_id]).fetchone()[0]
        try:
            rows_in = count_records(BAD / case["file"], case["preset"], case["mapping"])
        except Exception as exc:  # the independent count failed: the case cannot be accounted for
            rows_in, row["count_error"] = None, f"{type(exc).__name__}: {exc}"[:200]
        accounted = result.accepted + result.rejected + result.duplicates
        stored_ok = new_events == result.accepted and new_rejects == result.rejected
        lost = None if rows_in is None else (max(0, rows_in - accounted) + max(0, result.accepted - new_events)
                                             + max(0, result.rejected - new_rejects))
        row.update(passed=case["kind"] == "accepted" and got == case["counts"] and stored_ok and rows_in == accounted,
                   counts=got, expected=case["counts"], rows_in=rows_in, accounted=accounted,
                   events_added=new_events, rejects_added=new_rejects, rows_lost=lost)
        results.append(row)
    lost = sum(r["rows_lost"] or 0 for r in results)
    return {"tried": len(results), "passed": sum(r["passed"] for r in results),
            "refused": sum(r["kind"] == "refused" for r in results),
            "accepted": sum(r["kind"] == "accepted" for r in results),
            "rows_in": sum(r.get("rows_in") or 0 for r in results),
            "rows_uncounted_cases": sum(r["kind"] == "accepted" and r.get("rows_in") is None for r in results),
            "rows_accounted": sum(r.get("accounted", 0) for r in results),
            "rows_lost": lost, "failures": [r for r in results if not r["passed"]], "cases": results}


# ---------------------------------------------------------------------------------------------------- faults


def run_faults(work: Path, files: tuple[str, ...] = FAULT_TESTS, name: str = "faults") -> dict:
    """Tests under pytest (by default the fault tests); tried / passed / failed from the JUnit report."""
    report = work / f"{name}.xml"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
                           *files], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if not report.exists():
        return {"error": (proc.stdout + proc.stderr)[-2000:], "tried": 0, "passed": 0}
    cases = []
    for tc in ET.parse(report).getroot().iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if tc.find(tag) is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
        cases.append({"test": f"{tc.get('classname')}::{tc.get('name')}", "outcome": outcome})
    return {"tried": len(cases), "passed": sum(c["outcome"] == "passed" for c in cases),
            "failed": [c["test"] for c in cases if c["outcome"] in ("failed", "error")],
            "skipped": [c["test"] for c in cases if c["outcome"] == "skipped"],
            "seconds": round(seconds, 1), "cases": cases}


# ---------------------------------------------------------------------------------------------------- load


def load_figures() -> dict | None:
    """The summary of the newest bench/results/load-*.json."""
    runs = sorted(RESULTS.glob("load-*.json"), key=lambda p: p.stat().st_mtime)
    if not runs:
        return None
    data = json.loads(runs[-1].read_text())
    return {"file": str(runs[-1].relative_to(ROOT)), **(data.get("summary") or {}),
            "load_average_before": (data.get("setup") or {}).get("load_average_before")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skip-faults", action="store_true", help="do not run the fault and corpus tests under pytest")
    args = ap.parse_args()
    out: dict = {"name": "reliability", "machine": machine_info(), "versions": versions(),
                 "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    with tempfile.TemporaryDirectory(prefix="interestlens-reliability-") as tmp:
        work = Path(tmp)
        corpus = run_corpus(work)
        faults = None if args.skip_faults else run_faults(work)
        corpus_tests = None if args.skip_faults else run_faults(work, CORPUS_TESTS, "corpus_tests")
    secrets = scan_secrets()
    load = load_figures()
    out.update(corpus=corpus, corpus_tests=corpus_tests, faults=faults, secrets=secrets, load=load)
    out["summary"] = {
        "corpus_cases_tried": corpus["tried"], "corpus_cases_passed": corpus["passed"],
        "corpus_rows_in": corpus["rows_in"], "corpus_rows_accounted": corpus["rows_accounted"],
        "rows_lost": corpus["rows_lost"],
        "corpus_tests_tried": corpus_tests["tried"] if corpus_tests else None,
        "corpus_tests_passed": corpus_tests["passed"] if corpus_tests else None,
        "fault_tests_tried": faults["tried"] if faults else None, "fault_tests_passed": faults["passed"] if faults else None,
        "secret_findings": len(secrets["findings"]), "files_scanned_for_secrets": secrets["files_scanned"],
        "load": {k: (load or {}).get(k) for k in (
            "file", "sessions", "seconds", "errors", "switch_p50_ms_alone", "switch_p95_ms_alone", "switch_p50_ms_load",
            "switch_p95_ms_load", "explain_p50_ms_load", "explain_p95_ms_load", "server_rss_mb_after_warmup",
            "server_rss_mb_end", "server_rss_growth", "load_average_before", "load_average_after")} if load else None,
    }
    out["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "reliability.json"
    tmp_path = path.with_suffix(".json.tmp")
    tmp_path.write_text(json.dumps(out, indent=2, default=str))
    tmp_path.replace(path)
    print(json.dumps(out["summary"], indent=2, default=str))
    for f in corpus["failures"]:
        print("corpus failure:", json.dumps(f, default=str))
    for f in (faults or {}).get("failed", []) + (corpus_tests or {}).get("failed", []):
        print("test failed:", f)
    for f in secrets["findings"]:
        print("secret:", f)
    print(f"wrote {path}")
    if (corpus["rows_lost"] or corpus["failures"] or secrets["findings"] or (faults and faults.get("failed"))
            or (corpus_tests and corpus_tests.get("failed"))):
        sys.exit(1)


if __name__ == "__main__":
    main()
