"""Autobahn|Testsuite conformance of ``python -m protocol.echo`` (fuzzingclient mode).

The suite needs Python 2.7. When ``python2.7`` exists (``$PYENV_ROOT/versions/2.7.18`` or on
PATH) the suite is installed once into ``.autobahn/site`` (gitignored) with that interpreter's
pip (setuptools 44 first, then ``autobahntestsuite==25.10.1``) and loaded via
``site.addsitedir`` by a tiny launcher. Otherwise the test is skipped, saying why.

The test runs a fast subset (groups 1-7 and 10, a few of 9 and of the permessage-deflate
groups 12-13) against one echo server started with ``--deflate`` (cases outside 12-13 do not
offer the extension, so they exercise the uncompressed path) and asserts no case FAILED.
The full run (1-7, 9, 10, 12, 13) is slow; run it by hand::

    python tests/protocol/test_autobahn.py --full      # prints counts per case group
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".autobahn"
SITE = CACHE / "site"
SUITE_VERSION = "25.10.1"

FAST_CASES = [
    "1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*",
    "9.1.1", "9.1.2", "9.1.3", "9.2.1", "9.2.2", "9.2.3",
    "12.1.1", "12.1.2", "12.1.3", "12.2.1", "12.3.1", "12.4.1", "12.5.1",
    "13.1.1", "13.1.2", "13.1.3", "13.2.1", "13.3.1", "13.4.1", "13.5.1", "13.6.1", "13.7.1",
]
FULL_CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*", "12.*", "13.*"]

LAUNCHER = """\
import site, sys
site.addsitedir(sys.argv.pop(1))
from autobahntestsuite import wstest
wstest.run()
"""


def find_python27() -> str | None:
    """Path of a Python 2.7 interpreter, or None."""
    candidates = []
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates.append(os.path.join(pyenv_root, "versions", "2.7.18", "bin", "python2.7"))
    which = shutil.which("python2.7")
    if which:
        candidates.append(which)
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def ensure_suite(py27: str) -> str | None:
    """Install the suite into :data:`SITE` if needed; None on success, else why not."""
    marker = SITE / f"autobahntestsuite-{SUITE_VERSION}.dist-info"
    if marker.is_dir():
        return None
    SITE.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(SITE), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for spec in ("setuptools==44.*", f"autobahntestsuite=={SUITE_VERSION}"):
        proc = subprocess.run(
            [py27, "-m", "pip", "install", "-q", "--upgrade", "--target", str(SITE), spec],
            env=env, capture_output=True, text=True, timeout=600,
        )
        if proc.returncode != 0:
            return f"pip install {spec} with {py27} failed: {proc.stderr.strip()[-500:]}"
    return None if marker.is_dir() else "autobahntestsuite did not install"


def start_echo(log_path: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``python -m protocol.echo --port 0 ...``; return (process, port)."""
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "protocol.echo", "--host", "127.0.0.1", "--port", "0",
         "--no-ping", *extra],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        m = re.search(rb"url=wss?://[^ ]+:(\d+)", log_path.read_bytes())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"echo server did not start: {log_path.read_text()[-2000:]}")


def run_suite(
    py27: str, cases: list[str], workdir: Path, timeout: float = 1800
) -> dict[str, dict[str, Any]]:
    """Run fuzzingclient for ``cases`` against a fresh echo server; return the per-case
    results from ``index.json`` (``{case_id: {"behavior": ..., "behaviorClose": ...}}``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    proc, port = start_echo(workdir / "echo.log", "--deflate")
    try:
        launcher = workdir / "wstest_launcher.py"
        launcher.write_text(LAUNCHER)
        reports = workdir / "reports"
        spec = {
            "outdir": str(reports),
            "servers": [{"agent": "gameserver", "url": f"ws://127.0.0.1:{port}"}],
            "cases": cases,
            "exclude-cases": [],
            "exclude-agent-cases": {},
        }
        spec_path = workdir / "spec.json"
        spec_path.write_text(json.dumps(spec))
        with (workdir / "wstest.log").open("wb") as out:
            subprocess.run(
                [py27, str(launcher), str(SITE), "-m", "fuzzingclient", "-s", str(spec_path)],
                cwd=workdir, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=True,
            )
        index = json.loads((reports / "index.json").read_text())
        return dict(index["gameserver"])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(x) for x in case_id.split("."))


def summarize(results: dict[str, dict[str, Any]]) -> str:
    """A table: per top-level case group, the counts of each behavior."""
    groups: dict[str, Counter[str]] = defaultdict(Counter)
    for case_id, r in results.items():
        groups[case_id.split(".")[0]][r["behavior"]] += 1
    kinds = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
    lines = ["group  " + "  ".join(f"{k:>13}" for k in kinds)]
    for g in sorted(groups, key=int):
        lines.append(f"{g:>5}  " + "  ".join(f"{groups[g][k]:>13}" for k in kinds))
    total: Counter[str] = sum(groups.values(), Counter())
    lines.append("total  " + "  ".join(f"{total[k]:>13}" for k in kinds))
    return "\n".join(lines)


def bad_cases(results: dict[str, dict[str, Any]], kind: str) -> list[str]:
    return sorted(
        (c for c, r in results.items() if kind in (r["behavior"], r["behaviorClose"])),
        key=_case_key,
    )


def test_autobahn_fuzzingclient(tmp_path: Path) -> None:
    py27 = find_python27()
    if py27 is None:
        pytest.skip("Autobahn|Testsuite needs Python 2.7 (not found in pyenv or on PATH)")
    why = ensure_suite(py27)
    if why is not None:
        pytest.skip(f"Autobahn|Testsuite not installable: {why}")
    results = run_suite(py27, FAST_CASES, tmp_path, timeout=600)
    print(summarize(results))
    non_strict = bad_cases(results, "NON-STRICT")
    if non_strict:
        print("NON-STRICT:", " ".join(non_strict))
    assert len(results) > 250, f"too few cases ran: {len(results)}"
    failed = bad_cases(results, "FAILED")
    assert not failed, f"Autobahn cases FAILED: {failed}"


def main(argv: list[str]) -> int:
    """``--full`` runs every case group we target (slow); default: the fast subset."""
    py27 = find_python27()
    if py27 is None:
        print("no python2.7")
        return 2
    why = ensure_suite(py27)
    if why:
        print(why)
        return 2
    cases = FULL_CASES if "--full" in argv else FAST_CASES
    # One directory per run: concurrent runs must not share report files.
    workdir = CACHE / f"run-{'full' if '--full' in argv else 'fast'}-{os.getpid()}"
    t0 = time.monotonic()
    results = run_suite(py27, cases, workdir, timeout=7200)
    print(summarize(results))
    for kind in ("NON-STRICT", "INFORMATIONAL", "FAILED"):
        ids = bad_cases(results, kind)
        print(f"{kind} ({len(ids)}): {' '.join(ids)}")
    print(f"{len(results)} cases in {time.monotonic() - t0:.0f} s; reports in {workdir}/reports")
    return 1 if bad_cases(results, "FAILED") else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
