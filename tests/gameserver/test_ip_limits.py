"""Per-IP limits: concurrent connections (HTTP 429 before the upgrade), join rate (4020),
one INFO line per interval, a metric, and a bounded table; /readyz vs /healthz."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import os
from typing import Any

import pytest

from gameserver.iplimits import IpLimiter, ip_key, key_text
from gameserver.metrics import parse_text
from protocol import messages as M
from protocol.codes import CloseCode, ErrorCode
from protocol.errors import HandshakeError


def ip(s: str) -> Any:
    return ipaddress.ip_address(s)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- unit level


def test_connection_limit_and_release() -> None:
    lim = IpLimiter(max_connections=2, exempt=(), clock=Clock())
    a = ip("198.51.100.1")
    assert lim.acquire(a) is None and lim.acquire(a) is None
    assert lim.acquire(a) == "connections"
    assert lim.acquire(ip("198.51.100.2")) is None  # another address is not affected
    lim.release(a)
    assert lim.connections(a) == 1 and lim.acquire(a) is None
    assert lim.acquire(ip("127.0.0.1")) is None  # no exemption given: but 1 < 2 anyway
    exempt = IpLimiter(max_connections=1, clock=Clock())  # default: loopback exempt
    for _ in range(5):
        assert exempt.acquire(ip("127.0.0.1")) is None and exempt.acquire(ip("::1")) is None
    assert len(exempt) == 0


def test_join_bucket_refills() -> None:
    clock = Clock()
    lim = IpLimiter(join_rate=2.0, join_burst=3, exempt=(), clock=clock)
    a = ip("198.51.100.1")
    assert [lim.allow_join(a) for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token back at 2/s
    assert lim.allow_join(a) and not lim.allow_join(a)
    assert IpLimiter(join_rate=0, exempt=(), clock=clock).allow_join(a)  # 0: no limit


def test_ipv6_counts_by_slash_64() -> None:
    assert key_text(ip_key(ip("2001:db8:1:2:aaaa::1"))) == "2001:db8:1:2::/64"
    assert key_text(ip_key(ip("192.0.2.1"))) == "192.0.2.1"
    assert ip_key(ip("::c000:201")) != ip_key(ip("192.0.2.1"))  # families never collide
    lim = IpLimiter(max_connections=2, exempt=(), clock=Clock())
    assert lim.acquire(ip("2001:db8:1:2::1")) is None
    assert lim.acquire(ip("2001:db8:1:2::2")) is None
    assert lim.acquire(ip("2001:db8:1:2:ffff::3")) == "connections"
    assert lim.acquire(ip("2001:db8:1:3::1")) is None


def test_table_bounded_evicts_idle_never_active() -> None:
    clock = Clock()
    kinds: list[str] = []
    lim = IpLimiter(max_connections=4, join_rate=1.0, join_burst=5, exempt=(),
                    max_tracked=3, clock=clock, on_refuse=kinds.append)
    active = [ip(f"198.51.100.{i}") for i in (1, 2)]
    for a in active:
        assert lim.acquire(a) is None
    for i in range(1000):  # a spray of one-off joiners from distinct addresses
        assert lim.allow_join(ip(f"203.0.{i // 250}.{i % 250}"))
        assert len(lim) <= 3
    assert all(lim.connections(a) == 1 for a in active)  # active entries kept
    assert lim.acquire(ip("192.0.2.77")) is None  # evicts the idle one
    assert lim.acquire(ip("192.0.2.78")) == "table_full"  # all three active: refused
    assert kinds == ["table_full"]
    lim.release(active[0])
    assert lim.acquire(ip("192.0.2.78")) is None
    # Idle entries whose bucket refilled are swept: they are the same as unknown ones.
    for a in (active[1], ip("192.0.2.77"), ip("192.0.2.78")):
        lim.release(a)
    clock.now += 60
    lim.allow_join(ip("192.0.2.99"))
    assert len(lim) == 1


def test_one_log_line_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    lim = IpLimiter(max_connections=1, exempt=(), log_interval=10, clock=clock)
    a = ip("198.51.100.1")
    lim.acquire(a)
    with caplog.at_level(logging.INFO, logger="gameserver.iplimits"):
        for _ in range(500):
            assert lim.acquire(a) == "connections"
        lines = [r for r in caplog.records if "per-IP limit" in r.getMessage()]
        assert len(lines) == 1
        clock.now += 11
        lim.acquire(a)
        lines = [r.getMessage() for r in caplog.records if "per-IP limit" in r.getMessage()]
        assert len(lines) == 2 and "connections=500" in lines[1]  # 499 held + this one


# ------------------------------------------------------------------- against a server


async def raw_upgrade(port: int, path: str = "/ws",
                      headers: tuple[tuple[str, str], ...] = ()) -> tuple[int, dict[str, str]]:
    """Send an upgrade request; return the status and headers of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
    writer.write((f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    writer.close()
    lines = head.decode().split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in fields.items()}


def xff(addr: str) -> tuple[tuple[str, str], ...]:
    return (("X-Forwarded-For", addr),)


async def metric(h: Any, name: str) -> float:
    return parse_text(h.server.metrics.render()).get(name, 0.0)


def test_connection_limit_429_before_upgrade(kit: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with kit.running(trusted_proxies=("127.0.0.0/8",), max_connections_per_ip=2,
                               origins=("http://ok", None)) as h:
            port = h.server.port
            one = await h.connect(extra_headers=xff("198.51.100.1"))
            two = await h.connect(extra_headers=xff("198.51.100.1"))
            with caplog.at_level(logging.INFO, logger="gameserver.iplimits"):
                for _ in range(3):
                    status, headers = await raw_upgrade(port, headers=xff("198.51.100.1"))
                    assert status == 429 and int(headers["retry-after"]) > 0
                    assert "upgrade" not in headers  # refused before any WebSocket
            lines = [r for r in caplog.records if "per-IP limit" in r.getMessage()]
            assert len(lines) == 1 and "198.51.100.1" in lines[0].getMessage()
            assert await metric(
                h, 'gameserver_ip_limit_refusals_total{kind="connections"}') == 3
            # Another client address (through the same trusted proxy) still gets in.
            other = await h.connect(extra_headers=xff("198.51.100.2"))
            await other.hello(game="walker", name="other")
            # Refused upgrades (bad Origin) do not leak a slot of the address.
            await one.close()
            await asyncio.wait_for(_until(lambda: h.server.ip_limits.connections(
                ip("198.51.100.1")) == 1), 10)
            for _ in range(4):
                status, _ = await raw_upgrade(
                    port, headers=(*xff("198.51.100.1"), ("Origin", "http://evil")))
                assert status == 403
            await asyncio.sleep(0.05)
            assert h.server.ip_limits.connections(ip("198.51.100.1")) == 1
            back = await h.connect(extra_headers=xff("198.51.100.1"))
            assert not back.ws.closed
            await two.close()
            await back.close()
            await other.close()
            await asyncio.wait_for(_until(lambda: len(h.server.ip_limits._active) == 0), 10)

    kit.run(main())


async def _until(pred: Any) -> None:
    while not pred():
        await asyncio.sleep(0.02)


def test_untrusted_peer_limited_by_its_own_address(kit: Any) -> None:
    async def main() -> None:
        # No trusted proxy, no loopback exemption: the forwarded header is ignored and
        # the TCP peer 127.0.0.1 is the address counted.
        async with kit.running(max_connections_per_ip=1, ip_limit_exempt=()) as h:
            await h.connect(extra_headers=xff("198.51.100.1"))
            status, _ = await raw_upgrade(h.server.port, headers=xff("198.51.100.9"))
            assert status == 429
            with pytest.raises(HandshakeError) as exc:
                await h.connect()
            assert exc.value.status == 429
        # The default exemption (loopback) lets local tools open many connections.
        async with kit.running(max_connections_per_ip=1) as h:
            for _ in range(3):
                await h.connect()

    kit.run(main())


def test_join_rate_closes_4020(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(trusted_proxies=("127.0.0.1",), join_rate_per_ip=0.01,
                               join_burst_per_ip=2) as h:
            for i in range(2):
                c = await h.connect(extra_headers=xff("198.51.100.5"))
                await c.hello(game="walker", name=f"p{i}")
            c = await h.connect(extra_headers=xff("198.51.100.5"))
            await c.send(M.Hello(game="walker", name="third"))
            assert await c.closed() == CloseCode.JOIN_RATE_LIMITED == 4020
            assert [e.code for e in c.errors] == [ErrorCode.JOIN_RATE_LIMITED]
            assert await metric(h, 'gameserver_ip_limit_refusals_total{kind="joins"}') == 1
            # Other addresses, and the two seated players, are unaffected.
            d = await h.connect(extra_headers=xff("198.51.100.6"))
            await d.hello(game="walker", name="d")
            assert h.clients[0].ws.open and h.clients[1].ws.open

    kit.run(main())


def test_readyz_and_healthz(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(max_connections=2) as h:
            port = h.server.port
            assert (await raw_get(port, "/readyz"))[0] == 200
            a = await h.join(name="a")
            await h.join(name="b")
            # At max_connections: not ready (still alive).
            await asyncio.wait_for(_until(lambda: len(h.server.sessions) == 2), 10)
            assert (await raw_get(port, "/readyz"))[0] == 503
            assert (await raw_get(port, "/healthz")) == (200, b"ok\n")
            await a.close()
            await asyncio.wait_for(_until(lambda: len(h.server.sessions) == 1), 10)
            assert (await raw_get(port, "/readyz")) == (200, b"ready\n")
            # Draining (what SIGTERM does with --drain-seconds): readyz 503, new game
            # connections refused with 503, the player already in keeps playing.
            h.server.drain()
            assert (await raw_get(port, "/readyz")) == (503, b"not ready\n")
            assert (await raw_get(port, "/healthz"))[0] == 200
            status, headers = await raw_upgrade(port)
            assert status == 503 and "retry-after" in headers
            assert h.clients[1].ws.open

    kit.run(main())


async def raw_get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_sigterm_drain_flips_readyz_then_exits(tmp_path: Any) -> None:
    """The real process with --drain-seconds: after SIGTERM /readyz is 503 (healthz 200)
    while players keep playing; then it stops (1001) and exits 0."""
    import re
    import signal
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "gameserver", "--port", "0", "--drain-seconds", "3",
         "--path-prefix", "/g"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"at (http://\S+/g/) \(ws at (ws://\S+/g/ws)\)", line)
        assert m, line
        base, ws_url = m.group(1), m.group(2)

        def status(path: str) -> int:
            try:
                with urllib.request.urlopen(base + path, timeout=5) as r:
                    return int(r.status)
            except urllib.error.HTTPError as exc:
                return int(exc.code)

        assert status("readyz") == 200

        async def main() -> tuple[int | None, float]:
            from protocol.aio import connect
            from protocol.errors import ConnectionClosed

            ws = await connect(ws_url)
            await ws.send(M.encode(M.Hello(name="drainer")))
            assert isinstance(M.decode_server(await ws.recv()), M.Welcome)
            proc.send_signal(signal.SIGTERM)
            t0 = time.monotonic()
            seen = []
            while time.monotonic() - t0 < 1.5:
                seen.append(await asyncio.to_thread(status, "readyz"))
                if seen[-1] == 503:
                    break
            assert seen[-1] == 503, seen
            assert await asyncio.to_thread(status, "healthz") == 200
            received = 0
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 8)
                    received += 1
            except ConnectionClosed as exc:
                assert received > 10  # deltas kept coming while draining
                return exc.code, time.monotonic() - t0

        code, elapsed = asyncio.run(main())
        assert code == 1001 and 2.0 < elapsed < 10.0
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "draining" in err and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_forwarded_ipv6_client_counted_by_slash_64(kit: Any,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gameserver.session")

    async def main() -> None:
        async with kit.running(trusted_proxies=("127.0.0.0/8",), max_connections_per_ip=1,
                               hello_timeout=0.5) as h:
            fwd = (("Forwarded", 'for="[2001:db8:5:6::5]:4711";proto=https'),)
            c = await h.connect(extra_headers=fwd)
            await asyncio.wait_for(_until(lambda: len(h.server.sessions) == 1), 10)
            assert [s.peer for s in h.server.sessions] == ["2001:db8:5:6::5"]
            same64 = (("Forwarded", 'for="[2001:db8:5:6:ffff::9]"'),)
            assert (await raw_upgrade(h.server.port, headers=same64))[0] == 429
            other64 = (("Forwarded", 'for="[2001:db8:5:7::9]"'),)
            assert (await raw_upgrade(h.server.port, headers=other64))[0] == 101
            # The client address is what the session's log line names (here: no HELLO).
            assert await c.closed() == CloseCode.HELLO_TIMEOUT
            assert any("peer=2001:db8:5:6::5" in r.getMessage() for r in caplog.records)

    kit.run(main())
