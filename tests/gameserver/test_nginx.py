"""The README's nginx example, run for real in front of the server (skipped without nginx):
wss:// terminated at nginx, the /game prefix kept, the upgrade forwarded, the client address
taken from X-Forwarded-For (so the per-IP limit applies to it)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import trustme

from protocol.aio import connect
from protocol.errors import HandshakeError

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")


def readme_site() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"```nginx\n(.*?)```", text, re.S)
    assert m, "README has an nginx example"
    return m.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def nginx(tmp: Path, site: str) -> Any:
    for d in ("logs", "tmp"):
        (tmp / d).mkdir(exist_ok=True)
    conf = tmp / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {tmp}/nginx.pid;\n"
        f"error_log {tmp}/logs/error.log info;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n access_log off;\n client_body_temp_path {tmp}/tmp/body;\n"
        f" proxy_temp_path {tmp}/tmp/proxy;\n fastcgi_temp_path {tmp}/tmp/fcgi;\n"
        f" uwsgi_temp_path {tmp}/tmp/uwsgi;\n scgi_temp_path {tmp}/tmp/scgi;\n{site}\n}}\n")
    assert NGINX is not None
    proc = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_port(port: int, proc: Any, tmp: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert proc.poll() is None, (tmp / "logs" / "error.log").read_text()
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError("nginx did not start")


def test_readme_nginx_example_in_front_of_the_server(tmp_path: Path, kit: Any) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "game.example.com")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "chain.pem"))
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    listen = free_port()

    async def main() -> None:
        async with kit.running(path_prefix="/game", trusted_proxies=("127.0.0.1",),
                               max_connections_per_ip=1) as h:
            site = readme_site()
            site = site.replace("127.0.0.1:8000", f"127.0.0.1:{h.server.port}")
            site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{listen} ssl;")
            site = re.sub(r"ssl_certificate(_key)?\s+\S+;",
                          lambda m: f"ssl_certificate{m.group(1) or ''} {tmp_path}/chain.pem;",
                          site)
            with nginx(tmp_path, site) as proc:
                await wait_port(listen, proc, tmp_path)
                url = f"wss://127.0.0.1:{listen}/game/ws"
                fwd = (("X-Forwarded-For", "198.51.100.7"),)
                ws = await connect(url, ssl=client_ctx, extra_headers=fwd)
                c = kit.Client(ws)
                h.clients.append(c)
                c.start()
                await c.hello(game="walker", name="via-nginx")
                await c.until(lambda: c.deltas >= 3)  # the stream flows through the proxy
                assert [str(s.peer) for s in h.server.sessions] == ["198.51.100.7"]
                # The per-IP limit (1) counts the forwarded address, refused at the proxy's
                # upgrade with 429; another address through the same proxy gets in.
                with pytest.raises(HandshakeError) as exc:
                    await connect(url, ssl=client_ctx, extra_headers=fwd)
                assert exc.value.status == 429
                other = await connect(url, ssl=client_ctx,
                                      extra_headers=(("X-Forwarded-For", "198.51.100.8"),))
                await other.close()
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", listen, ssl=client_ctx, server_hostname="127.0.0.1")
                writer.write(b"GET /game/readyz HTTP/1.1\r\nHost: game.example.com\r\n"
                             b"Connection: close\r\n\r\n")
                data = await asyncio.wait_for(reader.read(), 10)
                writer.close()
                assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"ready\n")

    kit.run(main())
