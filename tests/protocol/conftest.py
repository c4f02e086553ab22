"""Fixtures for the WebSocket adapter tests: a throwaway CA (trustme) and TLS contexts.

The CA is created once per session; the server certificate is issued for ``127.0.0.1`` and
``localhost``. Contexts are created per test (cheap) so a test may tweak its copy.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import trustme


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """A throwaway certificate authority."""
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_server_cert(tls_ca: trustme.CA) -> trustme.LeafCert:
    """A server certificate for 127.0.0.1 / localhost signed by :func:`tls_ca`."""
    return tls_ca.issue_cert("127.0.0.1", "localhost")


@pytest.fixture
def server_ssl(tls_server_cert: trustme.LeafCert) -> ssl.SSLContext:
    """Server-side TLS context presenting :func:`tls_server_cert`."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_server_cert.configure_cert(ctx)
    return ctx


@pytest.fixture
def client_ssl(tls_ca: trustme.CA) -> ssl.SSLContext:
    """Client-side TLS context trusting only :func:`tls_ca` (hostname checking on)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    tls_ca.configure_trust(ctx)
    return ctx


@pytest.fixture(scope="session")
def tls_files(
    tls_ca: trustme.CA, tls_server_cert: trustme.LeafCert, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Path, Path]]:
    """``(cert_chain_pem, private_key_pem, ca_pem)`` paths, for subprocess servers."""
    d = tmp_path_factory.mktemp("tls")
    cert, key, ca = d / "cert.pem", d / "key.pem", d / "ca.pem"
    tls_server_cert.private_key_pem.write_to_path(str(key))
    with cert.open("wb") as f:
        for blob in tls_server_cert.cert_chain_pems:
            f.write(blob.bytes())
    tls_ca.cert_pem.write_to_path(str(ca))
    yield cert, key, ca


# --------------------------------------------------------------------------- raw client


class RawClient:
    """A hand-rolled WebSocket client over asyncio streams, to misbehave on purpose.

    Frames are built and parsed here independently of ``protocol.frames`` (RFC 6455 5.2).
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls,
        port: int,
        *,
        path: str = "/",
        headers: Sequence[tuple[str, str]] = (),
        handshake: bool = True,
    ) -> tuple[RawClient, bytes]:
        """Open TCP to 127.0.0.1:port; with ``handshake`` send a valid upgrade and return the
        response head (``b""`` otherwise)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        self = cls(reader, writer)
        if not handshake:
            return self, b""
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{k}: {v}" for k, v in headers),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        return self, head

    def send_frame(
        self, opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False
    ) -> None:
        """Write one masked frame."""
        b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", b0, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", b0, 0x80 | 127, n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(head + mask + masked)

    async def read_frame(self) -> tuple[bool, int, bytes]:
        """Read one (unmasked, server) frame: ``(fin, opcode, payload)``."""
        b0, b1 = await self.reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        assert not b1 & 0x80, "server frames must not be masked"
        return bool(b0 & 0x80), b0 & 0x0F, await self.reader.readexactly(n)

    async def read_close(self) -> tuple[int | None, bytes]:
        """Skip data / ping frames until a close frame: ``(code or None, reason)``."""
        while True:
            _, opcode, payload = await self.read_frame()
            if opcode == 8:
                if len(payload) >= 2:
                    return struct.unpack("!H", payload[:2])[0], payload[2:]
                return None, b""

    async def at_eof(self, timeout: float = 5.0) -> bool:
        """Wait for the server to close TCP; True if it did (remaining bytes discarded)."""
        async with asyncio.timeout(timeout):
            while await self.reader.read(65536):
                pass
        return True

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
def raw_client() -> type[RawClient]:
    """The :class:`RawClient` class (``await raw_client.connect(port)``)."""
    return RawClient
