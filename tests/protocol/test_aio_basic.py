"""protocol.aio: our client against our server (both event loops, ws and wss, options)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any

import pytest

from protocol.aio import WebSocket, broadcast, connect, run, serve
from protocol.aio.loop import loop_name
from protocol.errors import ConnectionClosed, HandshakeError, InvalidState
from protocol.frames import prepare_message
from protocol.handshake import Headers, Request, Response


async def echo(ws: WebSocket) -> None:
    async for msg in ws:
        await ws.send(msg)


@pytest.mark.parametrize("uvloop", [True, False], ids=["uvloop", "asyncio"])
def test_echo_text_and_binary_on_both_loops(uvloop: bool) -> None:
    async def main() -> str:
        async with await serve(echo, "127.0.0.1", 0) as server:
            ws = await connect(f"ws://127.0.0.1:{server.port}/chat?x=1")
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\xffbin")
            assert await ws.recv() == b"\x00\xffbin"
            big = bytes(range(256)) * 1000  # 256 KB: several reads, 64-bit length
            await ws.send(big)
            assert await ws.recv() == big
            (sws,) = server.connections
            assert sws.request is not None and sws.request.path == "/chat"
            assert sws.request.query == "x=1"
            await ws.close()
            assert ws.closed and ws.close_code == 1000
            return loop_name()

    assert run(main(), prefer_uvloop=uvloop) == ("uvloop" if uvloop else "asyncio")


def test_wss_with_custom_ca(server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext) -> None:
    async def main() -> None:
        async with await serve(echo, "127.0.0.1", 0, ssl=server_ssl) as server:
            ws = await connect(f"wss://localhost:{server.port}/", ssl=client_ssl)
            for msg in ("a" * 10, b"b" * 70000):
                await ws.send(msg)
                assert await ws.recv() == msg
            await ws.close()
            assert ws.close_code == 1000
            # An untrusting client (system CAs only) refuses our throwaway certificate.
            with pytest.raises(ssl.SSLCertVerificationError):
                await connect(f"wss://localhost:{server.port}/", open_timeout=5)

    run(main())


def test_subprotocol_selection_and_deflate() -> None:
    async def main() -> None:
        got: list[Any] = []

        async def handler(ws: WebSocket) -> None:
            got.append(ws.subprotocol)
            await echo(ws)

        async with await serve(
            handler, "127.0.0.1", 0, subprotocols=["game.v2", "game.v1"], deflate=True
        ) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            # The first of the *client's* offers that the server supports wins.
            ws = await connect(url, subprotocols=["x", "game.v1", "game.v2"], deflate=True)
            assert ws.subprotocol == "game.v1"
            text = "compress me " * 1000
            await ws.send(text)
            assert await ws.recv() == text
            await ws.close()
            ws = await connect(url, subprotocols=["nope"])
            assert ws.subprotocol is None
            await ws.send(b"x")
            assert await ws.recv() == b"x"
            await ws.close()
        assert got == ["game.v1", None]

    run(main())


def _head(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body


async def _http(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    data = await asyncio.wait_for(reader.read(), 5)  # read to EOF: the server closes
    writer.close()
    return data


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_process_request_serves_plain_http(is_async: bool) -> None:
    seen: list[str] = []

    def route(req: Request) -> Response | None:
        seen.append(req.path)
        if req.path == "/healthz":
            return Response(200, "OK", Headers([("Content-Type", "text/plain")]), b"ok\n")
        return None

    async def aroute(req: Request) -> Response | None:
        await asyncio.sleep(0)
        return route(req)

    pr: Callable[[Request], Any] = aroute if is_async else route

    async def main() -> None:
        async with await serve(echo, "127.0.0.1", 0, process_request=pr) as server:
            status, headers, body = _head(
                await _http(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            )
            assert (status, body) == (200, b"ok\n")
            assert headers["connection"] == "close"
            other = await _http(server.port, b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, _ = _head(other)
            assert status == 404
            ws = await connect(f"ws://127.0.0.1:{server.port}/ws")  # None: upgrade goes on
            await ws.send("hi")
            assert await ws.recv() == "hi"
            await ws.close()
        assert seen == ["/healthz", "/other", "/ws"]

    run(main())


def test_refused_upgrade_raises_handshake_error_in_client() -> None:
    async def main() -> None:
        async with await serve(echo, "127.0.0.1", 0, origins=["https://good.example"]) as server:
            with pytest.raises(HandshakeError) as info:
                await connect(f"ws://127.0.0.1:{server.port}/", origin="https://evil.example")
            assert info.value.status == 403
            ws = await connect(f"ws://127.0.0.1:{server.port}/", origin="https://good.example")
            await ws.close()

    run(main())


def test_handler_exception_logged_and_closed_1011(caplog: pytest.LogCaptureFixture) -> None:
    async def boom(ws: WebSocket) -> None:
        await ws.recv()
        raise RuntimeError("game bug")

    async def main() -> None:
        async with await serve(boom, "127.0.0.1", 0) as server:
            ws = await connect(f"ws://127.0.0.1:{server.port}/")
            await ws.send("go")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.code == 1011
            await ws.wait_closed()

    with caplog.at_level(logging.ERROR, logger="protocol.aio"):
        run(main())
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert "game bug" in str(errors[0].exc_info[1])


def test_handler_return_closes_1000_and_server_closes_tcp_first() -> None:
    async def bye(ws: WebSocket) -> None:
        await ws.send("bye")

    async def main() -> None:
        async with await serve(bye, "127.0.0.1", 0) as server:
            ws = await connect(f"ws://127.0.0.1:{server.port}/", close_timeout=30)
            assert await ws.recv() == "bye"
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.code == 1000
            # The client does not close TCP itself before close_timeout (30 s): returning
            # promptly proves the server closed it first (RFC 6455 section 7.1.1).
            await asyncio.wait_for(ws.wait_closed(), 5)
            assert ws.close_code == 1000

    run(main())


def test_ping_rtt_and_recv_iteration() -> None:
    async def main() -> None:
        async with await serve(echo, "127.0.0.1", 0) as server:
            ws = await connect(f"ws://127.0.0.1:{server.port}/")
            rtt = await ws.ping()
            assert 0 < rtt < 5
            for i in range(5):
                ws.send_nowait(str(i))
            got = []
            async for msg in ws:
                got.append(msg)
                if len(got) == 5:
                    break
            assert got == ["0", "1", "2", "3", "4"]
            await ws.close()
            with pytest.raises(ConnectionClosed):
                await ws.send("late")
            assert ws.write_prepared(b"\x81\x00") is False

    run(main())


def test_shutdown_closes_all_connections_with_1001() -> None:
    async def main() -> None:
        server = await serve(echo, "127.0.0.1", 0)
        clients = [await connect(f"ws://127.0.0.1:{server.port}/") for _ in range(20)]
        for ws in clients:  # every handler is running
            await ws.send("x")
            assert await ws.recv() == "x"
        assert len(server.connections) == 20
        await asyncio.wait_for(server.shutdown(), 5)
        assert not server.connections
        for ws in clients:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.code == 1001
        await asyncio.gather(*(ws.wait_closed() for ws in clients))
        with pytest.raises(OSError):
            await connect(f"ws://127.0.0.1:{server.port}/", open_timeout=2)

    run(main())


def test_broadcast_counts_open_connections() -> None:
    async def main() -> None:
        opened = asyncio.Event()
        conns: list[WebSocket] = []

        async def hold(ws: WebSocket) -> None:
            conns.append(ws)
            if len(conns) == 5:
                opened.set()
            await ws.wait_closed()

        async with await serve(hold, "127.0.0.1", 0) as server:
            clients = [await connect(f"ws://127.0.0.1:{server.port}/") for _ in range(5)]
            await opened.wait()
            await clients[0].close()
            await conns[0].wait_closed()
            assert broadcast(server.connections, "tick") == 4
            assert broadcast(conns, b"\x01\x02") == 4  # the closed one is skipped
            for ws in clients[1:]:
                assert await ws.recv() == "tick"
                assert await ws.recv() == b"\x01\x02"
                await ws.close()

    run(main())


def test_coalesced_sends_keep_order_with_write_prepared_and_broadcast() -> None:
    async def main() -> None:
        got_conn: asyncio.Future[WebSocket] = asyncio.get_running_loop().create_future()

        async def hold(ws: WebSocket) -> None:
            got_conn.set_result(ws)
            await ws.wait_closed()

        async with await serve(hold, "127.0.0.1", 0) as server:
            client = await connect(f"ws://127.0.0.1:{server.port}/")
            ws = await got_conn
            ws.send_nowait("a")  # queued until the end of this loop iteration...
            assert ws.buffered_bytes > 0
            broadcast([ws], "b")  # ...but flushed before a pre-framed write
            ws.send_nowait("c")
            assert ws.write_prepared(prepare_message("d"))
            for i in range(1000):  # > CORK_BYTES in one iteration: written as it goes
                ws.send_nowait(str(i) * 10)
            got = [await client.recv() for _ in range(1004)]
            assert got[:4] == ["a", "b", "c", "d"]
            assert got[4:] == [str(i) * 10 for i in range(1000)]
            await client.close()

    run(main())


def test_loop_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    from protocol.aio import new_event_loop

    for prefer, expected in ((True, "uvloop"), (False, "asyncio")):
        loop = new_event_loop(prefer)
        try:
            assert loop_name(loop) == expected
        finally:
            loop.close()
    monkeypatch.setenv("GAMESERVER_NO_UVLOOP", "1")
    loop = new_event_loop()
    try:
        assert loop_name(loop) == "asyncio"
    finally:
        loop.close()


def test_process_request_bug_gets_500_and_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    def broken(req: Request) -> Response | None:
        raise KeyError("oops")

    async def main() -> None:
        async with await serve(echo, "127.0.0.1", 0, process_request=broken) as server:
            status, headers, _ = _head(
                await _http(server.port, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
            )
            assert status == 500 and headers["connection"] == "close"

    with caplog.at_level(logging.ERROR, logger="protocol.aio"):
        run(main())
    assert [r.exc_info is not None for r in caplog.records if r.levelno >= logging.ERROR] == [True]


def test_connect_when_the_handshake_completes_inside_create_connection() -> None:
    """Regression: a fast server's 101 can be processed before create_connection returns."""

    async def main() -> None:
        async with await serve(echo, "127.0.0.1", 0) as server:
            loop = asyncio.get_running_loop()
            real = loop.create_connection

            async def slow_return(*args: Any, **kwargs: Any) -> Any:
                result = await real(*args, **kwargs)
                proto = result[1]
                await asyncio.wait_for(proto._hs_done, 5)  # handshake done before we return
                return result

            loop.create_connection = slow_return  # type: ignore[method-assign]
            try:
                ws = await connect(f"ws://127.0.0.1:{server.port}/")
            finally:
                del loop.create_connection
            await ws.send("ok")
            assert await ws.recv() == "ok"
            await ws.close()

    run(main(), prefer_uvloop=False)  # an asyncio loop's methods can be patched per instance


# ------------------------------------------------------------- callback receive mode


def test_message_handler_keeps_order_with_queued_messages_and_reports_close() -> None:
    async def main() -> None:
        ready = asyncio.Event()  # the client saw its pong: m1..m9 sit in the server's queue
        drained = asyncio.Event()
        finished = asyncio.Event()
        got: list[str | bytes] = []
        result: dict[str, Any] = {}

        async def handler(ws: WebSocket) -> None:
            result["first"] = await ws.recv()
            await ready.wait()
            loop = asyncio.get_running_loop()
            closed: asyncio.Future[ConnectionClosed] = loop.create_future()
            ws.set_message_handler(got.append, on_close=closed.set_result)
            result["drained"] = list(got)  # queued messages were passed inside the call
            with pytest.raises(InvalidState):
                await ws.recv()  # our misuse while a handler is set
            drained.set()
            exc = await asyncio.wait_for(closed, 5)
            result["close"] = (exc.code, exc.reason)
            finished.set()

        async with await serve(handler, "127.0.0.1", 0) as server:
            ws = await connect(f"ws://127.0.0.1:{server.port}/")
            for i in range(10):
                ws.send_nowait(f"m{i}")
            ws.send_nowait(b"bin")
            await ws.ping()  # the server handled every frame before our ping
            ready.set()
            await asyncio.wait_for(drained.wait(), 5)
            for i in range(10, 20):
                await ws.send(f"m{i}")
            await ws.close(1000, "done")
            await asyncio.wait_for(finished.wait(), 5)  # the handler recorded the close

        assert result["first"] == "m0"
        assert result["drained"] == [f"m{i}" for i in range(1, 10)] + [b"bin"]
        assert got == [f"m{i}" for i in range(1, 10)] + [b"bin"] + [f"m{i}" for i in range(10, 20)]
        assert result["close"] == (1000, "done")

    run(main())


def test_message_handler_exception_is_logged_and_closes_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        got: list[str | bytes] = []
        closes: list[int] = []
        finished = asyncio.Event()

        def on_message(data: str | bytes) -> None:
            if data == "bad":
                raise ValueError("consumer bug")
            got.append(data)

        async def handler(ws: WebSocket) -> None:
            ws.set_message_handler(on_message, on_close=lambda exc: closes.append(exc.code))
            await ws.wait_closed()
            finished.set()

        async with await serve(handler, "127.0.0.1", 0) as server:
            ws = await connect(f"ws://127.0.0.1:{server.port}/")
            for msg in ("ok", "bad", "after"):
                ws.send_nowait(msg)
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.code == 1011
            await asyncio.wait_for(finished.wait(), 5)
        assert got == ["ok"]  # nothing is delivered after the handler failed
        assert closes == [1011]

    with caplog.at_level(logging.ERROR, logger="protocol.aio"):
        run(main())
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert "consumer bug" in str(errors[0].exc_info[1])


def test_message_handler_set_after_close_gets_queued_messages_then_on_close() -> None:
    async def bye(ws: WebSocket) -> None:
        await ws.send("a")
        await ws.send(b"b")

    async def main() -> None:
        async with await serve(bye, "127.0.0.1", 0) as server:
            ws = await connect(f"ws://127.0.0.1:{server.port}/")
            await asyncio.wait_for(ws.wait_closed(), 5)
            got: list[str | bytes] = []
            loop = asyncio.get_running_loop()
            closed: asyncio.Future[ConnectionClosed] = loop.create_future()
            ws.set_message_handler(got.append, on_close=closed.set_result)
            assert got == ["a", b"b"]
            assert not closed.done()  # never called from inside set_message_handler()
            exc = await asyncio.wait_for(closed, 5)
            assert exc.code == 1000
            ws.set_message_handler(None)  # back to recv(): the stream is over
            with pytest.raises(ConnectionClosed):
                await ws.recv()

    run(main())


def test_set_message_handler_while_recv_waits_is_misuse() -> None:
    async def main() -> None:
        async with await serve(echo, "127.0.0.1", 0) as server:
            ws = await connect(f"ws://127.0.0.1:{server.port}/")
            pending = asyncio.ensure_future(ws.recv())
            await asyncio.sleep(0)  # let recv() start waiting
            with pytest.raises(InvalidState):
                ws.set_message_handler(lambda data: None)
            await ws.send("x")
            assert await pending == "x"
            await ws.close()

    run(main())
