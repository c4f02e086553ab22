"""File descriptors under attack (gameserver.fdlimit, protocol.aio ``max_open``).

In-process: with a small socket budget, idle sockets are shed oldest first (plain TCP that
never finishes its handshake before upgraded sockets that never sent HELLO), joined players
are never shed, /healthz and new players get through, and the shedding is logged once per
interval. In a subprocess with a low RLIMIT_NOFILE: the server raises its soft limit to the
hard one, hundreds of idle sockets fill its budget, and a real player still joins and
/healthz still answers.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gameserver.fdlimit import AcceptErrorLog, connection_budget, open_fd_count
from protocol import messages as M
from protocol.aio import connect

HERE = Path(__file__).parent
URL_LINE = re.compile(r"\(ws at ws://127\.0\.0\.1:(\d+)/ws\)")


async def healthz(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return int(raw.split()[1])


async def is_shed(reader: asyncio.StreamReader) -> bool:
    """True if the server dropped this idle socket (EOF or reset)."""
    try:
        data = await asyncio.wait_for(reader.read(1), 0.05)
    except TimeoutError:
        return False
    except OSError:
        return True
    return data == b""


async def join(url: str, name: str) -> Any:
    ws = await connect(url, ping_interval=None)
    await ws.send(M.encode(M.Hello(game="walker", name=name)))
    while True:
        msg = M.decode_server(await asyncio.wait_for(ws.recv(), 5))
        if isinstance(msg, M.Welcome):
            return ws


def test_budget_helpers() -> None:
    n = open_fd_count()
    assert n is not None and n > 2
    with open(os.devnull) as _f:
        assert open_fd_count() == n + 1
    budget = connection_budget(64)
    assert budget is not None and budget >= 1


def test_accept_errors_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    handler = AcceptErrorLog(interval=10.0, clock=lambda: now[0])
    loop = asyncio.new_event_loop()
    try:
        handler.install(loop)
        emfile = OSError(errno.EMFILE, "Too many open files")
        with caplog.at_level(logging.WARNING, logger="gameserver.fdlimit"):
            for _ in range(500):
                loop.call_exception_handler({"message": "accept", "exception": emfile})
                now[0] += 0.01  # 500 errors over 5 s: one line
            now[0] = 10.5
            loop.call_exception_handler({"message": "accept", "exception": emfile})
        lines = [r for r in caplog.records if "accept failed" in r.getMessage()]
        assert len(lines) == 2
        assert "; 1 accept errors" in lines[0].getMessage()  # the first, at once
        assert "; 500 accept errors" in lines[1].getMessage()  # 499 held back + this one
        assert handler.count == 501
    finally:
        loop.close()


def test_shedding_order_in_process(kit: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with kit.running() as h:
            srv = h.server._server
            port = h.server.port
            url = h.server.ws_url
            player = await join(url, "first")  # identified: never shed
            srv.max_open = 10
            idle = []
            for _ in range(6):  # TCP connections that never send a request head
                idle.append(await asyncio.open_connection("127.0.0.1", port))
            await asyncio.sleep(0.1)
            silent = [await connect(url, ping_interval=None) for _ in range(3)]  # no HELLO
            await asyncio.sleep(0.1)
            assert not any([await is_shed(r) for r, _ in idle])  # at the bound, nothing shed
            with caplog.at_level(logging.WARNING, logger="protocol.aio"):
                second = await join(url, "second")  # sheds the oldest idle TCP socket
                assert await healthz(port) == 200    # and the next one
                await asyncio.sleep(0.1)
                shed = [await is_shed(r) for r, _ in idle]
                assert shed[:2] == [True, True] and not any(shed[2:]), shed
                assert not any(ws.closed for ws in silent)
                # /healthz is done (9 open): five newcomers, the 4 remaining idle TCP
                # sockets go first
                extra = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
                await asyncio.sleep(0.1)
                assert all([await is_shed(r) for r, _ in idle])
                assert not any(ws.closed for ws in silent)
                # now only the newest TCP ones remain unidentified in the handshake: a new
                # one sheds the oldest of those (still before any upgraded socket)
                third = await join(url, "third")
                await asyncio.sleep(0.1)
                assert await is_shed(extra[0][0]) and not await is_shed(extra[1][0])
                assert not any(ws.closed for ws in silent)
                for _r, w in extra:
                    w.close()
            assert not player.closed and not second.closed and not third.closed
            assert srv.shed_total == 7  # idle 0-5 and extra[0]
            assert h.server.metrics.connections_shed.value == 7
            warnings = [r for r in caplog.records if "connection limit reached" in
                        r.getMessage()]
            assert len(warnings) == 1  # once per interval, not once per shed socket
            for ws in (player, second, third, *silent):
                await ws.close()
            for _r, w in idle:
                w.close()

    kit.run(main())


def test_upgraded_without_hello_shed_before_players(kit: Any) -> None:
    async def main() -> None:
        async with kit.running() as h:
            srv = h.server._server
            url = h.server.ws_url
            players = [await join(url, f"p{i}") for i in range(3)]
            srv.max_open = 5
            silent = [await connect(url, ping_interval=None) for _ in range(2)]
            await asyncio.sleep(0.1)
            newcomer = await join(url, "p3")  # 6 > 5: the oldest silent upgraded one goes
            for _ in range(50):
                if silent[0].closed:
                    break
                await asyncio.sleep(0.05)
            assert silent[0].closed and not silent[1].closed
            assert not any(p.closed for p in players) and not newcomer.closed
            for ws in (*players, newcomer, silent[1]):
                await ws.close()

    kit.run(main())


LAUNCHER = """
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (48, {hard}))
from gameserver.cli import main
sys.exit(main(["serve", "conftest:Walker", "--port", "0", "--hello-timeout", "60"]))
"""


def test_low_rlimit_subprocess_player_still_joins() -> None:
    hard = 160
    env = dict(os.environ, PYTHONPATH=f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER.format(hard=hard)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    socks: list[socket.socket] = []
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = URL_LINE.search(line)
        assert m, (line, proc.stderr.read() if proc.poll() is not None else "")
        port = int(m.group(1))
        # 3x the hard limit in idle sockets: without shedding, the server would be at EMFILE
        for _ in range(3 * hard):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(s)

        async def main() -> None:
            await asyncio.sleep(0.5)
            assert await healthz(port) == 200
            ws = await join(f"ws://127.0.0.1:{port}/ws", "real")
            assert isinstance(M.decode_server(await asyncio.wait_for(ws.recv(), 5)), M.Delta)
            await ws.close()
            assert await healthz(port) == 200

        from protocol.aio.loop import run

        run(asyncio.wait_for(main(), 30))
        alive = 0
        for s in socks:  # most idle sockets were shed (the server keeps within its budget)
            s.setblocking(False)
            try:
                alive += s.recv(1) != b""
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
        assert alive < hard, alive
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert f"raised the file descriptor limit soft=48->{hard}" in err, err
    assert "Traceback" not in err, err
    shed_lines = [ln for ln in err.splitlines() if "connection limit reached" in ln]
    assert 1 <= len(shed_lines) <= 2, shed_lines  # once per 10 s interval
