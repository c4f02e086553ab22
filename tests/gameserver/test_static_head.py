"""Static files never leave their root (symlinks included); HEAD never carries a body.

Against a running server over raw TCP: a symlink to a file outside ``--static-root``, one to a
directory outside it, and a directory whose ``index.html`` links outside are all 404, while
links that stay inside the root are served. HEAD on every route (static, /healthz, /metrics,
/rooms, /ws's 426, a 404, a refused upgrade) answers the GET's status and Content-Length and
no body byte.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from gameserver.http import StaticFiles


async def http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one request, read until the server closes; (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def req(path: str, method: str = "GET", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<title>game</title>")
    (root / "sub" / "page.txt").write_text("inside")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret")
    (outside / "index.html").write_text("outside index")
    (root / "file_link.txt").symlink_to(outside / "secret.txt")
    (root / "dir_link").symlink_to(outside, target_is_directory=True)
    (root / "linkedindex").mkdir()
    (root / "linkedindex" / "index.html").symlink_to(outside / "index.html")
    (root / "inner_link.txt").symlink_to(root / "sub" / "page.txt")  # stays inside: fine
    return root


def test_resolver_refuses_links_out_of_the_root(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    st = StaticFiles(root)
    for path in ("/file_link.txt", "/dir_link/secret.txt", "/dir_link/", "/dir_link",
                 "/linkedindex/", "/linkedindex", "/dir_link/index.html"):
        assert st.resolve(path) is None, path
        assert st.lookup(path) is None, path
    found = st.lookup("/inner_link.txt")
    assert found is not None and found[0] == b"inside"
    assert st.lookup("/sub/page.txt") == (b"inside", "text/plain; charset=utf-8")


def test_server_refuses_links_and_head_has_no_body(tmp_path: Path, kit: Any) -> None:
    root = _tree(tmp_path)

    async def main() -> None:
        async with kit.running(static_root=root) as h:
            port = h.server.port
            for path in ("/file_link.txt", "/dir_link/secret.txt", "/dir_link/",
                         "/linkedindex/"):
                status, _, body = await http(port, req(path))
                assert status == 404, path
                assert b"secret" not in body and b"outside" not in body
            status, _, body = await http(port, req("/inner_link.txt"))
            assert (status, body) == (200, b"inside")

            upgrade = ("Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n")
            cases = [("/", ""), ("/sub/page.txt", ""), ("/healthz", ""), ("/metrics", ""),
                     ("/rooms", ""), ("/ws", ""), ("/nope.txt", ""), ("/file_link.txt", ""),
                     ("/ws", upgrade)]  # an upgrade by HEAD: 426 like a GET without upgrade
            for path, extra in cases:
                g_status, g_headers, g_body = await http(port, req(path, "GET", extra if
                                                                   path != "/ws" else ""))
                status, headers, body = await http(port, req(path, "HEAD", extra))
                assert body == b"", (path, body)
                assert status == g_status, path
                if path != "/metrics":  # metrics text changes between two requests
                    assert headers["content-length"] == g_headers["content-length"], path
                    assert int(headers["content-length"]) == len(g_body), path
                assert int(headers["content-length"]) > 0, path
            status, _, _ = await http(port, req("/ws", "HEAD"))
            assert status == 426

    kit.run(main())
