"""``python -m protocol.echo`` as a subprocess, and broadcast's bytes on the wire."""

from __future__ import annotations

import asyncio
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from protocol.aio import WebSocket, broadcast, connect, run, serve
from protocol.errors import ConnectionClosed
from protocol.frames import prepare_message

ROOT = Path(__file__).resolve().parents[2]


def _start_echo(log: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "protocol.echo", "--port", "0", *args],
        cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        m = re.search(r"url=(wss?://\S+)", log.read_text())
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"echo did not start: {log.read_text()}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_echo_subprocess_tls_subprotocol_max_size_and_clean_exit(
    sig: signal.Signals, tmp_path: Path, tls_files: tuple[Path, Path, Path]
) -> None:
    cert, key, ca = tls_files
    proc, url = _start_echo(
        tmp_path / "echo.log", "--subprotocol", "b", "--subprotocol", "a",
        "--max-size", "1000", "--tls-cert", str(cert), "--tls-key", str(key),
    )
    try:
        assert url.startswith("wss://127.0.0.1:")
        ctx = ssl.create_default_context(cafile=str(ca))

        async def main() -> None:
            ws = await connect(url, ssl=ctx, subprotocols=["a", "b"])
            assert ws.subprotocol == "a"  # the first offered that the server was given
            await ws.send("text ✓")
            assert await ws.recv() == "text ✓"
            await ws.send(b"\x00" * 1000)
            assert await ws.recv() == b"\x00" * 1000
            await ws.send(b"\x00" * 1001)
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.code == 1009
            idle = await connect(url, ssl=ctx)
            proc.send_signal(sig)
            with pytest.raises(ConnectionClosed) as info:
                await idle.recv()
            assert info.value.code == 1001

        run(main())
        assert proc.wait(10) == 0
        assert "Traceback" not in (tmp_path / "echo.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_broadcast_writes_identical_bytes_to_many_connections(raw_client: Any) -> None:
    n = 50

    async def main() -> None:
        ready = asyncio.Event()
        conns: list[WebSocket] = []

        async def hold(ws: WebSocket) -> None:
            conns.append(ws)
            if len(conns) == n:
                ready.set()
            await ws.wait_closed()

        async with await serve(hold, "127.0.0.1", 0, deflate=True) as server:
            clients = []
            for _ in range(n):
                raw, head = await raw_client.connect(
                    server.port, headers=[("Sec-WebSocket-Extensions", "permessage-deflate")]
                )
                assert b"permessage-deflate" in head
                clients.append(raw)
            await asyncio.wait_for(ready.wait(), 10)
            payload = bytes(range(256)) * 2
            frame = prepare_message(payload)
            assert broadcast(conns, payload) == n
            assert broadcast(conns, "tick 1") == n
            assert all(ws.write_prepared(frame) for ws in conns)
            for raw in clients:
                # Exactly the pre-framed bytes, uncompressed even with deflate offered
                # (RFC 7692 section 6: compression is per message, optional).
                got = await asyncio.wait_for(raw.reader.readexactly(len(frame)), 5)
                assert got == frame
                assert await raw.read_frame() == (True, 1, b"tick 1")
                assert await raw.read_frame() == (True, 2, payload)
                raw.close()

    run(main())
