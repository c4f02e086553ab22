"""Client address behind reverse proxies (Forwarded / X-Forwarded-For) and the path prefix."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest

from gameserver.proxy import (
    MAX_HOPS,
    TrustedProxies,
    normalize_ip,
    parse_forwarded,
    parse_networks,
)
from protocol.aio import connect
from protocol.errors import HandshakeError
from protocol.handshake import Headers


def ip(s: str) -> Any:
    return ipaddress.ip_address(s)


def H(*pairs: tuple[str, str]) -> Headers:
    return Headers(list(pairs))


PROXIES = TrustedProxies(["10.0.0.0/8", "2001:db8:ffff::/48"])


def test_untrusted_peer_headers_ignored() -> None:
    h = H(("X-Forwarded-For", "6.6.6.6"), ("Forwarded", "for=7.7.7.7"))
    assert PROXIES.client_ip("203.0.113.9", h) == ip("203.0.113.9")
    assert TrustedProxies().client_ip("10.0.0.1", h) == ip("10.0.0.1")  # none trusted


def test_x_forwarded_for_rightmost_untrusted() -> None:
    h = H(("X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.1.1.1"))
    # 6.6.6.6 is what the client wrote; 198.51.100.7 is what our proxy 10.1.1.1 saw.
    assert PROXIES.client_ip("10.0.0.1", h) == ip("198.51.100.7")
    two = H(("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.8"))
    assert PROXIES.client_ip("10.0.0.1", two) == ip("198.51.100.8")
    all_trusted = H(("X-Forwarded-For", "10.9.9.9, 10.1.1.1"))
    assert PROXIES.client_ip("10.0.0.1", all_trusted) == ip("10.9.9.9")
    assert PROXIES.client_ip("10.0.0.1", H()) == ip("10.0.0.1")  # no header: the proxy
    ports = H(("X-Forwarded-For", "198.51.100.7:5555"))
    assert PROXIES.client_ip("10.0.0.1", ports) == ip("198.51.100.7")
    v6 = H(("X-Forwarded-For", "[2001:db8::1]:443"))
    assert PROXIES.client_ip("10.0.0.1", v6) == ip("2001:db8::1")


def test_unreadable_hop_stops_at_last_vouched_address() -> None:
    h = H(("X-Forwarded-For", "198.51.100.7, garbage, 10.2.2.2"))
    assert PROXIES.client_ip("10.0.0.1", h) == ip("10.2.2.2")
    h = H(("Forwarded", "for=unknown"))
    assert PROXIES.client_ip("10.0.0.1", h) == ip("10.0.0.1")
    h = H(("Forwarded", "for=_hidden, for=198.51.100.3"))
    assert PROXIES.client_ip("10.0.0.1", h) == ip("198.51.100.3")


def test_forwarded_rfc7239_quoting_and_ipv6() -> None:
    # RFC 7239 section 4 / 7.4 examples: quoted IPv6 with port, case-insensitive names,
    # several pairs per element, commas inside quoted strings.
    values = ['for="_gazonk"', 'For="[2001:db8:cafe::17]:4711"',
              'for=192.0.2.60;proto=http;by=203.0.113.43', 'for=192.0.2.43, for=198.51.100.17',
              'proto=https;by="x,y";FOR="198.51.100.99"', 'by=1.2.3.4']
    assert parse_forwarded(values) == [
        "_gazonk", "[2001:db8:cafe::17]:4711", "192.0.2.60", "192.0.2.43", "198.51.100.17",
        "198.51.100.99", None]
    assert parse_forwarded(['for="a\\"b;c"']) == ['a"b;c']  # quoted-pair
    h = H(("Forwarded", 'for=192.0.2.43, for="[2001:db8:cafe::17]:4711";proto=https'))
    assert PROXIES.client_ip("10.0.0.1", h) == ip("2001:db8:cafe::17")
    # Forwarded wins over X-Forwarded-For when both are present.
    both = H(("X-Forwarded-For", "198.51.100.1"), ("Forwarded", "for=198.51.100.2"))
    assert PROXIES.client_ip("10.0.0.1", both) == ip("198.51.100.2")
    # A trusted IPv6 proxy, and hops inside the trusted IPv6 range are skipped.
    h6 = H(("Forwarded", 'for=198.51.100.5, for="[2001:db8:ffff::9]"'))
    assert PROXIES.client_ip("2001:db8:ffff::1", h6) == ip("198.51.100.5")


def test_normalization_and_bounds() -> None:
    assert normalize_ip("::ffff:10.0.0.1") == ip("10.0.0.1")  # dual-stack socket peer
    assert PROXIES.client_ip("::ffff:10.0.0.1", H(("X-Forwarded-For", "198.51.100.7"))) == \
        ip("198.51.100.7")
    assert normalize_ip("not-an-ip") is None
    with pytest.raises(ValueError, match="bogus"):
        parse_networks(["10.0.0.0/8", "bogus"])
    # A long forged chain costs at most MAX_HOPS steps: all trusted -> the leftmost read.
    chain = ", ".join(["10.0.0.5"] * (MAX_HOPS * 4))
    assert PROXIES.client_ip("10.0.0.1", H(("X-Forwarded-For", "1.1.1.1, " + chain))) == \
        ip("10.0.0.5")


async def _http(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_path_prefix_serves_ws_and_routes(tmp_path: Any, kit: Any) -> None:
    (tmp_path / "index.html").write_text("<title>prefixed</title>")

    async def main() -> None:
        async with kit.running(path_prefix="/game", static_root=tmp_path) as h:
            port = h.server.port
            assert h.server.ws_url.endswith(f":{port}/game/ws")
            assert h.server.url.endswith(f":{port}/game/")
            assert await _http(port, "/game/healthz") == (200, b"ok\n")
            assert await _http(port, "/game/readyz") == (200, b"ready\n")
            assert await _http(port, "/healthz") == (200, b"ok\n")  # bare probe kept
            assert await _http(port, "/game/") == (200, b"<title>prefixed</title>")
            assert (await _http(port, "/game"))[0] == 308
            assert (await _http(port, "/game/metrics"))[0] == 200
            assert (await _http(port, "/"))[0] == 404
            assert (await _http(port, "/metrics"))[0] == 404
            assert (await _http(port, "/gamex/ws"))[0] == 404
            c = await h.join(name="pre")  # connects to server.ws_url: /game/ws
            assert c.welcome is not None and c.welcome.game == "walker"
            with pytest.raises(HandshakeError) as exc:
                await connect(f"ws://127.0.0.1:{port}/ws")
            assert exc.value.status == 404

    kit.run(main())


def test_router_prefix_unit(tmp_path: Any) -> None:
    from gameserver.http import Router

    (tmp_path / "index.html").write_text("hi")
    r = Router(static_root=tmp_path, metrics=lambda: "", rooms=lambda: [], prefix="/g/",
               ready=lambda: False)
    assert r.route("GET", "/g/ws", upgrade=True) is None
    assert r.route("GET", "/ws", upgrade=True) is not None  # outside the prefix: no upgrade
    reply = r.route("HEAD", "/elsewhere", upgrade=False)
    assert reply is not None and reply.status == 404 and reply.body == b""
    reply = r.route("GET", "/g?x=1", upgrade=False)
    assert reply is not None and reply.status == 308 and ("Location", "/g/") in reply.headers
    reply = r.route("GET", "/g/readyz", upgrade=False)
    assert reply is not None and reply.status == 503 and ("Retry-After", "5") in reply.headers
    reply = r.route("GET", "/g/", upgrade=False)
    assert reply is not None and reply.body == b"hi"
