"""The real process: `python -m gameserver` prints its URL; SIGTERM closes every client with
1001, runs on_leave, and exits 0 within a few seconds; the bare command serves the arena."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from protocol import messages as M
from protocol.aio import connect
from protocol.errors import ConnectionClosed

HERE = Path(__file__).parent
URL_LINE = re.compile(r"gameserver: serving (.+?) at (http://\S+) \(ws at (ws://\S+)\)")


async def recv_bytes(ws: Any) -> bytes:
    data = await ws.recv()
    assert isinstance(data, bytes)
    return data


def start(*args: str) -> tuple[subprocess.Popen[str], str, str]:
    env = dict(os.environ, PYTHONPATH=f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.Popen([sys.executable, "-m", "gameserver", *args, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = URL_LINE.search(line)
    assert m, f"no URL line: {line!r}"
    return proc, m.group(1), m.group(3)


def test_sigterm_graceful_shutdown() -> None:
    proc, games, ws_url = start("serve", "conftest:Walker", "conftest:Swarm")
    assert games == "walker, swarm"
    try:
        async def main() -> list[int | None]:
            socks = []
            for game in ("walker", "walker", "swarm"):
                ws = await connect(ws_url)
                await ws.send(M.encode(M.Hello(game=game, name="p")))
                socks.append(ws)
            for ws in socks:  # WELCOME + first delta
                assert isinstance(M.decode_server(await recv_bytes(ws)), M.Welcome)
                await ws.recv()
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            codes: list[int | None] = []
            for ws in socks:
                try:
                    while True:
                        await asyncio.wait_for(ws.recv(), 5)
                except ConnectionClosed as exc:
                    codes.append(exc.code)
            assert time.monotonic() - t0 < 3
            return codes

        codes = asyncio.run(main())
        assert codes == [1001, 1001, 1001]
        _, err = proc.communicate(timeout=5)
        assert proc.returncode == 0, err
        assert err.count("reason=shutdown") == 2, err  # the two walker players' on_leave
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bare_command_serves_arena(kit: Any) -> None:
    proc, games, ws_url = start("--room-config", '{"critters": 20}')
    assert games == "arena"
    try:
        async def main() -> None:
            ws = await connect(ws_url)
            await ws.send(M.encode(M.Hello(name="ann")))
            welcome = M.decode_server(await recv_bytes(ws))
            assert isinstance(welcome, M.Welcome) and welcome.game == "arena"
            delta = M.decode_server(await recv_bytes(ws))
            assert isinstance(delta, M.Delta) and delta.base_tick is None
            await ws.close()
        asyncio.run(main())
        # The installed browser client is served at / (whatever its folder holds).
        http_url = ws_url.replace("ws://", "http://").removesuffix("/ws")
        with urllib.request.urlopen(http_url + "/", timeout=5) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=5)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_tls(tmp_path: Path) -> None:
    import ssl

    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    for pem in leaf.cert_chain_pems[1:]:
        pem.write_to_path(str(cert), append=True)
    leaf.private_key_pem.write_to_path(str(key))
    env = dict(os.environ, PYTHONPATH=f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gameserver", "serve", "conftest:Walker", "--port", "0",
         "--tls-cert", str(cert), "--tls-key", str(key)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"at (https://\S+) \(ws at (wss://\S+)\)", line)
        assert m, line
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)

        async def main() -> None:
            ws = await connect(m.group(2), ssl=ctx)
            await ws.send(M.encode(M.Hello(game="walker", name="tls")))
            assert isinstance(M.decode_server(await recv_bytes(ws)), M.Welcome)
            await ws.close()
        asyncio.run(main())
        with urllib.request.urlopen(m.group(1) + "healthz", context=ctx, timeout=5) as r:
            assert r.read() == b"ok\n"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=5)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
