"""protocol.aio against misbehaving peers over real sockets (raw hand-rolled clients).

Slowloris, oversized / malformed handshakes, protocol violations (RFC close codes), a peer
that never pongs, a peer that never reads (backpressure), a peer that floods (bounded queue).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from typing import Any

import pytest

from protocol.aio import WebSocket, connect, run, serve
from protocol.errors import ConnectionClosed
from protocol.handshake import accept_key


async def echo(ws: WebSocket) -> None:
    async for msg in ws:
        await ws.send(msg)


def _status(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


def test_slowloris_dropped_after_handshake_timeout(raw_client: Any) -> None:
    async def main() -> None:
        async with await serve(echo, "127.0.0.1", 0, handshake_timeout=0.5) as server:
            raw, _ = await raw_client.connect(server.port, handshake=False)
            t0 = time.monotonic()
            request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
            dropped = False
            for i in range(len(request)):  # one byte every 20 ms: would take 20 s
                try:
                    raw.writer.write(request[i : i + 1])
                    await raw.writer.drain()
                except ConnectionError:
                    dropped = True
                    break
                if raw.reader.at_eof():
                    dropped = True
                    break
                try:
                    data = await asyncio.wait_for(raw.reader.read(1), 0.02)
                except TimeoutError:
                    continue
                assert data == b"", "the server sent something to a half-sent request"
                dropped = True
                break
            elapsed = time.monotonic() - t0
            assert dropped
            assert 0.4 < elapsed < 5.0  # trickling the whole head would take 20 s
            assert not server.connections
            raw.close()

    run(main())


def test_oversized_request_head_gets_431(raw_client: Any) -> None:
    async def main() -> None:
        async with await serve(echo, "127.0.0.1", 0, max_request_size=4096) as server:
            raw, _ = await raw_client.connect(server.port, handshake=False)
            raw.writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 8000)
            head = await asyncio.wait_for(raw.reader.readuntil(b"\r\n\r\n"), 5)
            assert _status(head) == 431
            assert await raw.at_eof()

    run(main())


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([("Sec-WebSocket-Version", "8")], 426),
        ([("Sec-WebSocket-Key", "not-base64-16-bytes")], 400),
    ],
    ids=["version", "bad-key"],
)
def test_bad_handshake_gets_http_status(headers: list[tuple[str, str]], status: int) -> None:
    async def main() -> None:
        async with await serve(echo, "127.0.0.1", 0) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            base = {
                "Host": "x", "Upgrade": "websocket", "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13",
            }
            base.update(headers)
            req = "GET / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in base.items())
            writer.write(req.encode() + b"\r\n")
            data = await asyncio.wait_for(reader.read(), 5)  # to EOF: the server closes
            assert _status(data) == status
            if status == 426:
                assert b"sec-websocket-version: 13" in data.lower()
            writer.close()

    run(main())


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x81\x05hello", 1002),  # unmasked client frame (RFC 6455 5.1)
        (None, 1007),  # invalid UTF-8 in a text message (8.1)
        (None, 1009),  # over max_message_size
        (b"\x83\x80abcd", 1002),  # reserved opcode 3 (5.2)
    ],
    ids=["unmasked", "bad-utf8", "too-big", "reserved-opcode"],
)
def test_bad_frame_gets_rfc_close_code(
    frame: bytes | None, code: int, raw_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        async with await serve(echo, "127.0.0.1", 0, max_message_size=1000) as server:
            raw, head = await raw_client.connect(server.port)
            assert _status(head) == 101
            raw.send_frame(1, b"ok")  # a valid message first: echoed
            assert await raw.read_frame() == (True, 1, b"ok")
            if frame is not None:
                raw.writer.write(frame)
            elif code == 1007:
                raw.send_frame(1, b"\xff\xfe")
            else:
                raw.send_frame(2, b"x" * 1001)
            got, _ = await asyncio.wait_for(raw.read_close(), 5)
            assert got == code
            assert await raw.at_eof()  # the server closes TCP after failing
            raw.close()

    # logger= sets the level on "protocol.aio" itself: another test may have raised it.
    with caplog.at_level(logging.DEBUG, logger="protocol.aio"):
        run(main())
    # The peer's mistake: one INFO line, no traceback, nothing at WARNING or above.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    infos = [r for r in caplog.records if r.levelno == logging.INFO and r.name == "protocol.aio"]
    assert len(infos) == 1 and str(code) in infos[0].getMessage()


def test_keepalive_timeout_closes_1011(raw_client: Any) -> None:
    async def main() -> None:
        async with await serve(
            echo, "127.0.0.1", 0, ping_interval=0.2, ping_timeout=0.3
        ) as server:
            raw, _ = await raw_client.connect(server.port)
            t0 = time.monotonic()
            _, opcode, payload = await asyncio.wait_for(raw.read_frame(), 5)
            assert opcode == 9 and len(payload) == 4  # ping; we never answer
            code, _ = await asyncio.wait_for(raw.read_close(), 5)
            assert code == 1011
            assert await raw.at_eof()
            assert 0.4 < time.monotonic() - t0 < 5
            assert not server.connections
            # A peer that answers pings stays connected through several intervals.
            good = await connect(f"ws://127.0.0.1:{server.port}/", ping_interval=None)
            await asyncio.sleep(1.2)
            await good.send("still here")
            assert await good.recv() == "still here"
            await good.close()

    run(main())


def test_send_blocks_when_peer_does_not_read_and_buffer_stays_bounded(raw_client: Any) -> None:
    limit = 64 * 1024
    chunk = b"x" * 16384
    state: dict[str, int] = {}
    blocked = asyncio.Event

    async def main() -> None:
        ev = blocked()
        done = asyncio.Event()
        max_buffered = 0

        async def producer(ws: WebSocket) -> None:
            nonlocal max_buffered
            sent = 0
            while sent < 2000:  # 32 MB if nobody pushed back
                t = asyncio.ensure_future(ws.send(chunk))
                await asyncio.sleep(0)
                if not t.done():
                    state["blocked_at"] = sent
                    ev.set()
                await t
                max_buffered = max(max_buffered, ws.buffered_bytes)
                sent += 1
            state["sent"] = sent
            done.set()

        async with await serve(producer, "127.0.0.1", 0, write_limit=limit) as server:
            raw, _ = await raw_client.connect(server.port)
            await asyncio.wait_for(ev.wait(), 10)
            await asyncio.sleep(0.2)
            assert not done.is_set()  # still blocked: the peer reads nothing
            # Kernel socket buffers absorb some; our own buffer stays near write_limit.
            assert max_buffered <= limit + len(chunk) + 64
            assert state["blocked_at"] < 1000
            n = 0
            while n < 2000:
                _, opcode, payload = await asyncio.wait_for(raw.read_frame(), 10)
                assert opcode == 2 and payload == chunk
                n += 1
            await asyncio.wait_for(done.wait(), 10)
            assert state["sent"] == 2000
            raw.close()

    run(main())


def test_recv_queue_bounded_reading_paused_then_resumed(raw_client: Any) -> None:
    n_msgs = 3000  # 3 MB of 1 KiB messages: more than the kernel buffers hold

    async def main() -> None:
        release = asyncio.Event()
        received: list[bytes] = []
        observed: dict[str, int] = {}

        async def lazy(ws: WebSocket) -> None:
            await release.wait()
            observed["queued"] = len(ws._queue or ())
            observed["paused"] = int(ws._read_paused)
            for _ in range(n_msgs):
                received.append(await ws.recv())  # type: ignore[arg-type]
            await ws.send("done")

        async with await serve(lazy, "127.0.0.1", 0, max_queue=16) as server:
            raw, _ = await raw_client.connect(server.port)

            async def flood() -> None:
                for i in range(n_msgs):
                    raw.send_frame(2, struct.pack("!I", i) * 256)
                    await raw.writer.drain()

            sender = asyncio.ensure_future(flood())
            await asyncio.sleep(0.5)  # let the server read what it will
            release.set()
            _, _, payload = await asyncio.wait_for(raw.read_frame(), 20)
            assert payload == b"done"
            await sender
            raw.close()
        # The app was not reading: the queue stopped at max_queue plus at most one read
        # chunk (<= 256 KiB: ~250 such messages) and reading was paused; every message then
        # arrived, in order.
        assert observed["paused"] == 1
        assert 16 <= observed["queued"] <= 16 + 256
        assert [struct.unpack("!I", m[:4])[0] for m in received] == list(range(n_msgs))

    run(main())


def test_recv_raises_after_close_and_send_nowait_never_waits() -> None:
    async def main() -> None:
        async with await serve(echo, "127.0.0.1", 0) as server:
            ws = await connect(f"ws://127.0.0.1:{server.port}/", write_limit=1024)
            for _ in range(100):
                ws.send_nowait(b"y" * 1000)  # far above write_limit: returns anyway
            for _ in range(100):
                assert await ws.recv() == b"y" * 1000
            await ws.close(4000, "bye")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.code == 4000  # the server echoed our code
            with pytest.raises(ConnectionClosed):
                ws.send_nowait("x")

    run(main())


@pytest.mark.parametrize("slow_route", [False, True], ids=["no-route", "async-route"])
def test_frames_pipelined_behind_the_request_head(slow_route: bool, raw_client: Any) -> None:
    async def route(req: Any) -> None:
        await asyncio.sleep(0.05)  # bytes keep arriving while process_request runs
        return None

    async def main() -> None:
        async with await serve(
            echo, "127.0.0.1", 0, process_request=route if slow_route else None
        ) as server:
            raw, _ = await raw_client.connect(server.port, handshake=False)
            head = (
                "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            raw.writer.write(head.encode())
            raw.send_frame(1, b"first")  # same TCP stream, before the 101 arrives
            raw.send_frame(1, b"second")
            response = await asyncio.wait_for(raw.reader.readuntil(b"\r\n\r\n"), 5)
            assert _status(response) == 101
            assert await raw.read_frame() == (True, 1, b"first")
            assert await raw.read_frame() == (True, 1, b"second")
            raw.close()

    run(main())


def test_client_keepalive_timeout_closes_1011() -> None:
    """Our client against a raw server that completes the handshake and never pongs."""

    async def main() -> None:
        got: asyncio.Future[tuple[int, int | None]] = asyncio.get_running_loop().create_future()

        async def mute_server(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            head = await r.readuntil(b"\r\n\r\n")
            key = next(
                ln.split(b":", 1)[1].strip().decode()
                for ln in head.split(b"\r\n") if ln.lower().startswith(b"sec-websocket-key:")
            )
            w.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                + accept_key(key).encode() + b"\r\n\r\n"
            )
            opcodes = []
            code = None
            while True:  # masked client frames; payloads < 126 bytes here
                b0, b1 = await r.readexactly(2)
                payload = await r.readexactly(4 + (b1 & 0x7F))
                opcodes.append(b0 & 0x0F)
                if b0 & 0x0F == 8:
                    mask, data = payload[:4], payload[4:]
                    raw = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
                    code = struct.unpack("!H", raw[:2])[0]
                    break
            got.set_result((opcodes.count(9), code))
            w.close()

        srv = await asyncio.start_server(mute_server, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        ws = await connect(f"ws://127.0.0.1:{port}/", ping_interval=0.2, ping_timeout=0.3)
        pings, code = await asyncio.wait_for(got, 5)
        assert pings == 1 and code == 1011
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.code == 1011
        srv.close()
        await ws.wait_closed()

    run(main())
