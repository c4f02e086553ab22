"""The container recipe: Dockerfile, .dockerignore and compose.yaml hold their essentials
(docker itself does not run on the test machines), and the HEALTHCHECK's probe works."""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from gameserver.cli import build_config, parse_args, parse_settings
from gameserver.probe import default_url, probe

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text()
    joined = text.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def test_dockerfile_multi_stage_non_root_healthcheck() -> None:
    ins = instructions()
    froms = [(i, a) for i, (w, a) in enumerate(ins) if w == "FROM"]
    assert len(froms) >= 2, "multi-stage: a builder and a runtime stage"
    assert froms[0][1].split()[-2:] == ["AS", "builder"]
    last = froms[-1][0]
    assert "slim" in froms[-1][1].split()[0]
    builder = [a for w, a in ins[froms[0][0]:last] if w == "RUN"]
    assert any("pip wheel" in a for a in builder), "the builder builds the wheel"
    runtime = ins[last:]
    words = [w for w, _ in runtime]
    assert any("from=builder" in a or "--from=builder" in a
               for w, a in runtime if w in ("RUN", "COPY")), "runtime takes the builder's wheels"
    assert any("pip install" in a and "--no-index" in a for w, a in runtime if w == "RUN")
    users = [a for w, a in runtime if w == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0"), "runs as a non-root user"
    assert words.index("USER") < words.index("CMD")
    assert ("EXPOSE", "8000") in runtime
    hc = [a for w, a in runtime if w == "HEALTHCHECK"]
    assert len(hc) == 1 and "CMD" in hc[0]
    hc_cmd = exec_form(hc[0].split("CMD", 1)[1].strip())
    assert hc_cmd == ["python", "-m", "gameserver.probe"]  # urllib: slim has no curl
    assert default_url({}) == "http://127.0.0.1:8000/healthz"
    cmd = exec_form(next(a for w, a in runtime if w == "CMD"))
    assert cmd == ["gameserver", "--host", "0.0.0.0"]
    assert parse_args(cmd[1:], {}).host == "0.0.0.0"
    for w, a in ins:  # what the builder copies exists and is not dockerignored
        if w == "COPY" and "--from" not in a:
            for src in a.split()[:-1]:
                assert (ROOT / src).exists(), src
                assert src not in ignored(), src


def ignored() -> set[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return {ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")}


def test_dockerignore_keeps_context_small() -> None:
    ig = ignored()
    assert {".git", "clients/web/node_modules", "tests", "**/__pycache__"} <= ig


def test_compose_server_and_redis(capsys: Any) -> None:
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = doc["services"]
    assert services["redis"]["image"] == "redis:7"
    gs = services["gameserver"]
    assert gs["build"] == "." and "8000:8000" in gs["ports"]
    assert gs["depends_on"]["redis"]["condition"] == "service_healthy"
    cmd = gs["command"]
    cmd = shlex.split(cmd) if isinstance(cmd, str) else cmd
    assert cmd[0] == "gameserver"
    i = cmd.index("--redis")
    assert cmd[i + 1] == "redis://redis:6379/0"
    assert cmd[cmd.index("--public-url") + 1] == "ws://localhost:8000/ws"
    # The command and environment are valid settings of this very CLI.
    env = {k: str(v) for k, v in gs.get("environment", {}).items()}
    assert all(k.startswith("GAMESERVER_") for k in env)
    ns = parse_settings(cmd[1:], env).namespace
    assert "unknown environment variable" not in capsys.readouterr().err
    config = build_config(ns)
    assert config.host == "0.0.0.0" and config.redis_url == "redis://redis:6379/0"
    assert config.drain_seconds == float(env["GAMESERVER_DRAIN_SECONDS"])
    grace = float(str(gs["stop_grace_period"]).rstrip("s"))
    assert grace > config.drain_seconds + 3  # drain + the graceful close fit


def test_probe_against_a_server(kit: Any) -> None:
    async def main() -> None:
        async with kit.running() as h:
            base = f"http://127.0.0.1:{h.server.port}"
            assert await asyncio.to_thread(probe, base + "/healthz") is None
            h.server.drain()
            assert await asyncio.to_thread(probe, base + "/readyz") == "status 503"
            assert await asyncio.to_thread(probe, base + "/healthz") is None
            port = h.server.port
        r = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "gameserver.probe",
                             f"http://127.0.0.1:{port}/healthz"],
            capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "gameserver.probe" in r.stderr  # server gone

    kit.run(main())
