"""A client frozen (SIGSTOP) with its socket open comes back with the same player.

SPEC.md section 7: for a socket that is silent but open, the resume grace starts when the
server gives up on it (keepalive: no pong within ``ping_interval + ping_timeout``), not at the
client's last message. So a client frozen for less than that detection time plus
``resume_grace`` resumes its player; frozen longer, its RESUME gets 4005.

The client is the Python SDK in a subprocess, stopped and continued with SIGSTOP / SIGCONT;
the server runs in the test with small deadlines.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

CLIENT = textwrap.dedent('''
    import asyncio, sys
    from clients import GameClient
    from clients.backoff import Backoff

    async def main():
        client = GameClient(sys.argv[1], game="walker", name=sys.argv[2], stall_timeout=1.0,
                            ping_interval=0.2, backoff=Backoff(base=0.05, cap=0.2,
                                                               max_attempts=4))
        await client.connect()
        print("JOINED", client.player, flush=True)
        seen = 0
        try:
            async for _ in client.updates():
                if client.stats.reconnects != seen:
                    seen = client.stats.reconnects
                    print("RESUMED", client.player, flush=True)
        except Exception as exc:
            print("FAILED", getattr(exc, "code", None), type(exc).__name__, flush=True)
            return
        if client.error is not None:
            print("FAILED", getattr(client.error, "code", None),
                  type(client.error).__name__, flush=True)

    asyncio.run(main())
''')

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP")


async def _line(proc: asyncio.subprocess.Process, timeout: float) -> str:
    assert proc.stdout is not None
    return (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode().strip()


async def _freeze(h: Any, name: str, seconds: float) -> tuple[int, list[str], list[int]]:
    """Start a client, freeze it ``seconds``, thaw it; (player, later lines, close codes)."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, h.server.ws_url, name, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    lines: list[str] = []
    try:
        first = await _line(proc, 20)
        assert first.startswith("JOINED"), first
        player = int(first.split()[1])
        session = next(s for s in h.server.sessions if s.player is not None
                       and s.player.player_id == player)
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGSTOP)
        t0 = time.monotonic()
        await asyncio.sleep(seconds)
        # the server noticed the frozen socket through its keepalive, during the freeze
        codes = [session.ws.close_code] if session.ws.closed else []
        proc.send_signal(signal.SIGCONT)
        assert time.monotonic() - t0 >= seconds
        while True:
            try:
                line = await _line(proc, 10)
            except TimeoutError:
                break
            if not line:
                break
            lines.append(line)
            if line.startswith(("RESUMED", "FAILED")):
                break
        return player, lines, codes
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            await proc.wait()


def test_frozen_client_resumes_within_keepalive_plus_grace(kit: Any) -> None:
    async def main() -> None:
        # detection <= 0.5 + 0.5 + one sweep tick (62 ms); grace 6 s
        async with kit.running(ping_interval=0.5, ping_timeout=0.5, resume_grace=6.0) as h:
            # frozen 3 s: well past the detection (~1 s), within detection + grace (~7 s)
            player, lines, codes = await _freeze(h, "frozen", 3.0)
            assert codes == [1011], codes  # cut by the keepalive while frozen ...
            assert lines and lines[-1] == f"RESUMED {player}", lines  # ... and resumed
            assert player in h.server.rooms.rooms[next(iter(h.server.rooms.rooms))].players

    kit.run(main())


def test_frozen_past_keepalive_plus_grace_gets_4005(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(ping_interval=0.5, ping_timeout=0.5, resume_grace=1.0) as h:
            # detection ~1 s + grace 1 s: frozen 5 s is well past the bound
            _player, lines, codes = await _freeze(h, "glacier", 5.0)
            assert codes == [1011], codes
            assert lines and lines[-1].startswith("FAILED 4005"), lines

    kit.run(main())
