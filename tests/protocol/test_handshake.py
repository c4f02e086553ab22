"""Opening handshake: HTTP head parsing, server validation (with statuses), client checks."""

from __future__ import annotations

import pytest

from protocol.deflate import DeflateConfig, DeflateParams
from protocol.errors import HandshakeError
from protocol.handshake import (
    Headers,
    Request,
    Response,
    accept,
    accept_key,
    check_response,
    client_request,
    error_response,
    http_response,
    is_upgrade,
    new_key,
    parse_request,
    parse_response,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
BASE = [
    ("Host", "example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Version", "13"),
]


def head(lines: list[tuple[str, str]], request_line: str = "GET /chat HTTP/1.1") -> bytes:
    return ("\r\n".join([request_line] + [f"{k}: {v}" for k, v in lines]) + "\r\n\r\n").encode()


def request(
    lines: list[tuple[str, str]] = BASE, request_line: str = "GET /chat HTTP/1.1"
) -> Request:
    req = parse_request(bytearray(head(lines, request_line)))
    assert req is not None
    return req


def replace(name: str, value: str | None) -> list[tuple[str, str]]:
    out = [(k, v) for k, v in BASE if k.lower() != name.lower()]
    if value is not None:
        out.append((name, value))
    return out


def refused(req: Request, **kw: object) -> HandshakeError:
    with pytest.raises(HandshakeError) as exc:
        accept(req, **kw)  # type: ignore[arg-type]
    assert exc.value.body.strip(), "error responses explain what was wrong"
    return exc.value


# --- parsing ---------------------------------------------------------------------------------


def test_parse_request_any_chunking_keeps_leftover() -> None:
    data = head(BASE, "GET /chat?room=1 HTTP/1.1") + b"\x81\x80rest"
    buf = bytearray()
    req = None
    for i in range(len(data)):
        buf += data[i : i + 1]
        req = parse_request(buf)
        if req is not None:
            break
    assert req is not None
    assert (req.method, req.target, req.path, req.query) == (
        "GET",
        "/chat?room=1",
        "/chat",
        "room=1",
    )
    assert req.headers.get("HOST") == "example.com"
    buf += data[i + 1 :]
    assert bytes(buf) == b"\x81\x80rest"


def test_plain_http_request_parses_without_upgrade_headers() -> None:
    req = parse_request(bytearray(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert req is not None and req.path == "/healthz"
    assert not is_upgrade(req)
    assert is_upgrade(request())


def test_headers_reject_line_breaks() -> None:
    h = Headers()
    for name, value in [("A", "x\r\nInjected: 1"), ("A", "x\0"), ("A:B", "x"), ("A\n", "x")]:
        with pytest.raises(ValueError):
            h.add(name, value)
    assert len(h) == 0


def test_headers_multimap() -> None:
    h = Headers([("A", "1"), ("a", "2"), ("B", "3")])
    assert h.get("a") == "1" and h.get_all("A") == ["1", "2"] and h.get("c") is None
    assert list(h) == [("A", "1"), ("a", "2"), ("B", "3")] and "b" in h and len(h) == 3


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\nHost: x\n\n",
        b"GET / HTTP/1.1\r\nHost: x\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n continued\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        b"GET /\r\nHost: x\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
    ],
)
def test_malformed_heads_are_400(data: bytes) -> None:
    with pytest.raises(HandshakeError) as exc:
        parse_request(bytearray(data))
    assert exc.value.status == 400


def test_bare_lf_detected_before_head_completes() -> None:
    with pytest.raises(HandshakeError) as exc:
        parse_request(bytearray(b"GET / HTTP/1.1\nHost"))
    assert exc.value.status == 400


def test_head_too_large_is_431() -> None:
    with pytest.raises(HandshakeError) as exc:
        parse_request(bytearray(b"GET / HTTP/1.1\r\nX: " + b"a" * 20000), max_size=16384)
    assert exc.value.status == 431
    complete = head([("X", "a" * 500)])
    with pytest.raises(HandshakeError) as exc:
        parse_request(bytearray(complete), max_size=200)
    assert exc.value.status == 431


def test_too_many_headers_is_431() -> None:
    lines = [(f"X-{i}", "v") for i in range(10)]
    with pytest.raises(HandshakeError) as exc:
        parse_request(bytearray(head(lines)), max_headers=5)
    assert exc.value.status == 431


# --- server side -----------------------------------------------------------------------------


def test_accept_rfc_example() -> None:
    out, negotiated = accept(request())
    assert out.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in out
    assert out.endswith(b"\r\n\r\n")
    assert negotiated.subprotocol is None and negotiated.deflate is None


def test_accept_is_case_insensitive_and_accepts_token_lists() -> None:
    req = request([*replace("Upgrade", "WebSocket"), ("connection", "keep-alive, UPGRADE")])
    out, _ = accept(req)
    assert b" 101 " in out


@pytest.mark.parametrize(
    ("lines", "request_line", "status"),
    [
        (BASE, "POST /chat HTTP/1.1", 400),
        (BASE, "GET /chat HTTP/1.0", 400),
        (replace("Host", None), "GET / HTTP/1.1", 400),
        (replace("Upgrade", None), "GET / HTTP/1.1", 400),
        (replace("Upgrade", "h2c"), "GET / HTTP/1.1", 400),
        (replace("Connection", None), "GET / HTTP/1.1", 400),
        (replace("Connection", "keep-alive"), "GET / HTTP/1.1", 400),
        (replace("Sec-WebSocket-Key", None), "GET / HTTP/1.1", 400),
        (replace("Sec-WebSocket-Key", "not base64!"), "GET / HTTP/1.1", 400),
        (replace("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA"), "GET / HTTP/1.1", 400),  # 15 bytes
        ([*BASE, ("Sec-WebSocket-Key", KEY)], "GET / HTTP/1.1", 400),
        (replace("Sec-WebSocket-Version", None), "GET / HTTP/1.1", 400),
        (replace("Sec-WebSocket-Version", "8"), "GET / HTTP/1.1", 426),
        (replace("Sec-WebSocket-Version", "13, 8"), "GET / HTTP/1.1", 426),
    ],
)
def test_refusals(lines: list[tuple[str, str]], request_line: str, status: int) -> None:
    exc = refused(request(lines, request_line))
    assert exc.status == status
    if status == 426:
        assert ("Sec-WebSocket-Version", "13") in exc.headers
        response = error_response(exc)
        assert response.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
        assert b"\r\nSec-WebSocket-Version: 13\r\n" in response


def test_origin_allow_list() -> None:
    good = request([*BASE, ("Origin", "https://game.example")])
    accept(good, origins={"https://game.example"})
    exc = refused(
        request([*BASE, ("Origin", "https://evil.example")]), origins={"https://game.example"}
    )
    assert exc.status == 403
    assert refused(request(), origins={"https://game.example"}).status == 403
    accept(request(), origins={"https://game.example", None})
    accept(request([*BASE, ("Origin", "https://evil.example")]))  # no allow-list: any origin


def test_subprotocol_first_client_offer_we_support() -> None:
    req = request([*BASE, ("Sec-WebSocket-Protocol", "v3, v2"), ("Sec-WebSocket-Protocol", "v1")])
    out, negotiated = accept(req, subprotocols=["v1", "v2"])
    assert negotiated.subprotocol == "v2"
    assert b"\r\nSec-WebSocket-Protocol: v2\r\n" in out
    _, negotiated = accept(req, subprotocols=["other"])
    assert negotiated.subprotocol is None
    _, negotiated = accept(req)
    assert negotiated.subprotocol is None


def test_deflate_off_by_default_and_opt_in() -> None:
    req = request(
        [*BASE, ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")]
    )
    out, negotiated = accept(req)
    assert negotiated.deflate is None and b"Extensions" not in out
    out, negotiated = accept(req, deflate=True)
    assert negotiated.deflate == DeflateParams()
    assert b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n" in out


def test_malformed_extensions_header_is_400() -> None:
    req = request([*BASE, ("Sec-WebSocket-Extensions", "permessage-deflate; =x")])
    assert refused(req, deflate=True).status == 400


def test_http_response() -> None:
    out = http_response(404, b"not found\n")
    assert out.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert b"\r\nContent-Length: 10\r\n" in out and out.endswith(b"\r\n\r\nnot found\n")
    assert b"Content-Type: text/plain; charset=utf-8" in out
    out = http_response(200, b"{}", content_type="application/json", headers=[("X-A", "1")])
    assert b"Content-Type: application/json" in out and b"\r\nX-A: 1\r\n" in out


# --- client side -----------------------------------------------------------------------------


def server_answer(req_bytes: bytes, **kw: object) -> Response:
    req = parse_request(bytearray(req_bytes))
    assert req is not None
    out, _ = accept(req, **kw)  # type: ignore[arg-type]
    buf = bytearray(out + b"\x81\x00")
    resp = parse_response(buf)
    assert resp is not None and bytes(buf) == b"\x81\x00"
    return resp


def test_client_round_trip() -> None:
    key = new_key()
    req = client_request(
        "example.com:8080",
        "/play?x=1",
        key,
        subprotocols=["game.v1", "game.v0"],
        origin="https://game.example",
        extra_headers=[("X-Token", "t")],
    )
    parsed = parse_request(bytearray(req))
    assert parsed is not None and parsed.headers.get("X-Token") == "t"
    resp = server_answer(req, subprotocols=["game.v0", "game.v1"])
    negotiated = check_response(resp, key, subprotocols=["game.v1", "game.v0"])
    assert negotiated.subprotocol == "game.v1"


def test_client_round_trip_with_deflate() -> None:
    key = new_key()
    config = DeflateConfig(client_no_context_takeover=True, server_max_window_bits=10)
    resp = server_answer(client_request("h", "/", key, deflate=config), deflate=True)
    negotiated = check_response(resp, key, deflate=config)
    assert negotiated.deflate is not None
    assert negotiated.deflate.server_max_window_bits == 10
    assert negotiated.deflate.client_no_context_takeover


def fake_response(
    key: str,
    extra: list[tuple[str, str]] = (),  # type: ignore[assignment]
    status: str = "101 Switching Protocols",
    accept_value: str | None = None,
    drop: str = "",
) -> Response:
    lines = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_value or accept_key(key)),
        *extra,
    ]
    lines = [(k, v) for k, v in lines if k != drop]
    buf = bytearray(
        (
            "\r\n".join([f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in lines]) + "\r\n\r\n"
        ).encode()
    )
    resp = parse_response(buf)
    assert resp is not None
    return resp


def test_client_accepts_valid_response() -> None:
    key = new_key()
    assert check_response(fake_response(key), key).subprotocol is None


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"status": "403 Forbidden"}, 403),
        ({"accept_value": accept_key("AAAAAAAAAAAAAAAAAAAAAA==")}, 101),
        ({"drop": "Upgrade"}, 101),
        ({"drop": "Connection"}, 101),
        ({"drop": "Sec-WebSocket-Accept"}, 101),
        ({"extra": [("Sec-WebSocket-Protocol", "not-offered")]}, 101),
        ({"extra": [("Sec-WebSocket-Extensions", "permessage-deflate")]}, 101),
        ({"extra": [("Sec-WebSocket-Extensions", "x-unknown")]}, 101),
    ],
)
def test_client_rejects_bad_responses(kwargs: dict[str, object], status: int) -> None:
    key = new_key()
    with pytest.raises(HandshakeError) as exc:
        check_response(fake_response(key, **kwargs), key, subprotocols=["v1"])  # type: ignore[arg-type]
    assert exc.value.status == status


@pytest.mark.parametrize(
    "value",
    [
        "permessage-deflate; unknown_param",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate, permessage-deflate",
    ],
)
def test_client_rejects_invalid_deflate_params(value: str) -> None:
    key = new_key()
    resp = fake_response(key, [("Sec-WebSocket-Extensions", value)])
    with pytest.raises(HandshakeError):
        check_response(resp, key, deflate=True)


def test_parse_response_errors() -> None:
    with pytest.raises(HandshakeError) as exc:
        parse_response(bytearray(b"NOT HTTP\r\n\r\n"))
    assert exc.value.status == 0
    assert parse_response(bytearray(b"HTTP/1.1 101 Switching")) is None
