"""``python -m clients.bots``: multi-process swarm against a real server subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clients.bots import SwarmConfig, run_bots
from clients.bots.__main__ import parse_args

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("gameserver.server")


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gameserver", "--host", "127.0.0.1", "--port", "0",
         "--log-level", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the server prints its URL line first
        m = re.search(r"ws://[^\s)]+", line)
        assert m, f"no ws URL in the server's first line: {line!r}"
        yield m.group(0)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_cli_two_processes_writes_report(server_url: str, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "clients.bots", server_url, "--count", "6", "--procs", "2",
         "--duration", "2", "--behavior", "random", "--input-every", "1", "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
    )
    assert res.returncode == 0, res.stderr
    assert time.monotonic() - t0 < 60
    report = json.loads(out.read_text())
    assert report["bots"] == 6 and report["connects"] == 6 and report["failures"] == 0
    assert len(report["cpu_per_process"]) == 2 and report["config"]["procs"] == 2
    assert report["ticks_received"] > 6 * 5 and report["inputs"] > 0
    assert [b["bot"] for b in report["per_bot_detail"]] == list(range(6))
    assert all(b["messages_in"] > 0 and b["bytes_in"] > 0 for b in report["per_bot_detail"])
    assert report["tick_age_ms"]["p99"] is not None
    st = report["steady"]  # the second second: both processes marked their tick ages
    assert st is not None and st["tick_age_ms"]["count"] > 0
    # stderr is not a TTY here: plain progress lines, then the summary
    assert "connected |" in res.stderr and "ticks/s" in res.stderr
    assert "\r" not in res.stderr
    assert "ticks received:" in res.stderr


def test_two_swarms_share_one_room(server_url: str, tmp_path: Path) -> None:
    """Bot names carry a per-run tag (or --name-prefix): two commands against the same
    arena room, which refuses duplicate names, both get every bot in."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = []
    for i, extra in enumerate(([], ["--name-prefix", "alpha-"], [])):
        out = tmp_path / f"r{i}.json"
        procs.append((out, subprocess.Popen(
            [sys.executable, "-m", "clients.bots", server_url, "--count", "4", "--duration",
             "1.5", "--behavior", "idle", "--quiet", "--json", str(out),
             *extra], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)))
    for out, proc in procs:
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        report = json.loads(out.read_text())
        assert report["connects"] == 4 and report["failures"] == 0, report["failure_reasons"]


def test_unreachable_server_fails_every_bot_with_a_reason() -> None:
    async def main() -> None:
        # ramp 2/s, run 0.75 s: bot 0 starts (and cannot connect); bots 3 and 4 (slots at
        # 1.5 s and 2 s) never start; bots 1-2 are near the deadline either way
        cfg = SwarmConfig(url="ws://127.0.0.1:9/ws", count=5, duration=0.75, ramp=2.0)
        snap = await run_bots(cfg, 0, 5, stop=asyncio.Event())
        first = snap["bots"][0]
        assert "ConnectionLost" in first["failure"] or "NotConnected" in first["failure"]
        assert first["connect_attempts"] >= 1
        for b in snap["bots"]:
            assert b["failure"], b  # every bot has a reason
        for b in snap["bots"][3:]:
            assert b["failure"].startswith("NotStarted") and b["connect_attempts"] == 0

    asyncio.run(asyncio.wait_for(main(), 30))


def test_cli_usage_errors() -> None:
    ns = parse_args(["ws://h/ws", "--count", "3", "--procs", "2", "--behavior", "chase"])
    assert ns.count == 3 and ns.procs == 2 and ns.behavior == "chase"
    res = subprocess.run(
        [sys.executable, "-m", "clients.bots", "ws://127.0.0.1:9/ws", "--behavior", "nope"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert res.returncode == 2 and "behavior 'nope'" in res.stderr
