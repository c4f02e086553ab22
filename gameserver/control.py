"""The channels between the ``--workers`` supervisor and its worker processes.

Two Unix socket pairs per worker, created by the supervisor and inherited by the worker:

* the **control channel** (``SOCK_STREAM``, both directions): msgpack maps, each framed by a
  4-byte big-endian length (:class:`Channel`). A frame over :data:`MAX_FRAME` bytes is our own
  bug (both ends are this code) and ends the channel.
* the **handoff socket** (``SOCK_SEQPACKET``, supervisor -> worker): one message per handed-over
  client connection: the client's TCP socket as ``SCM_RIGHTS`` ancillary data (Linux
  ``unix(7)``) and a msgpack map ``{"c": connection id, "i": bytes already read from it,
  "r": the 101 response the supervisor wrote}``
  (:func:`send_handoff`, :func:`recv_handoffs`). SEQPACKET keeps each message and its fd
  together; a message is at most :data:`MAX_HANDOFF` bytes.

Control messages (``"t"`` is the type):

==========  =========  =====================================================================
t           direction  body
==========  =========  =====================================================================
ready       W -> S     ``pid``: the worker is serving (sent once, after start)
rooms       W -> S     ``r``: list of ``{"id","game","players","capacity","tick"}``; ``a``: every
                       handoff with an id <= a has had its HELLO / RESUME processed (so the
                       list counts its seat); sent when either changed (checked every
                       :data:`REPORT_INTERVAL` s) and at least every :data:`REPORT_MAX_AGE` s
closed      W -> S     ``c``: ids of handed-over connections that ended (the supervisor drops
                       its copy of their sockets)
stats       S -> W     ``id``: request for the worker's metrics and rooms
stats       W -> S     ``id``, ``m``: Prometheus text, ``r``: rooms (as in ``rooms``)
reserve     S -> W     ``id``, ``q``: the ``/matchmake?...`` request target to answer
reserved    W -> S     ``id``, ``s``: HTTP status, ``b``: JSON body (the worker's answer)
quiesce     S -> W     ``id``: stop claiming handover offers (the machine stops, --handover)
quiesced    W -> S     ``id``: done (a claim in flight was restored or given back first)
==========  =========  =====================================================================
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import msgpack

__all__ = ["MAX_FRAME", "MAX_HANDOFF", "REPORT_INTERVAL", "REPORT_MAX_AGE", "Channel",
           "ChannelError", "recv_handoffs", "send_handoff"]

#: Largest control frame (bytes): a worker's metrics text plus 1,000 room entries fit easily.
MAX_FRAME = 8 * 2**20
#: Largest handoff message (bytes): request head (16 KiB) + pre-read frames (bounded by the
#: acceptor to 64 KiB in all) + envelope.
MAX_HANDOFF = 96 * 1024
#: Seconds between a worker's checks for changed rooms / seats.
REPORT_INTERVAL = 0.05
#: A worker reports its rooms at least this often (s), changed or not.
REPORT_MAX_AGE = 1.0
#: Bytes the control channel may hold unsent before the peer counts as stuck.
MAX_PENDING_WRITE = 16 * 2**20

_LEN = struct.Struct(">I")


class ChannelError(Exception):
    """The control channel broke its framing (our bug) or its peer is stuck."""


class Channel:
    """One end of a control channel (see the module docstring); not thread-safe."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.closed = False

    @classmethod
    async def open(cls, sock: socket.socket) -> Channel:
        """Wrap a connected ``AF_UNIX`` stream socket."""
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=MAX_FRAME)
        return cls(reader, writer)

    def send(self, msg: dict[str, Any]) -> None:
        """Queue one message (never waits). Raises :class:`ChannelError` if the peer has
        not read :data:`MAX_PENDING_WRITE` bytes (it is stuck: the caller treats it as down)."""
        if self.closed:
            return
        data = msgpack.packb(msg, use_bin_type=True)
        if len(data) > MAX_FRAME:
            raise ChannelError(f"control message of {len(data)} bytes over {MAX_FRAME}")
        transport = self._writer.transport
        if transport.is_closing():
            self.closed = True
            return
        if transport.get_write_buffer_size() > MAX_PENDING_WRITE:
            raise ChannelError("control channel peer is not reading")
        transport.write(_LEN.pack(len(data)) + data)

    async def recv(self) -> dict[str, Any] | None:
        """The next message, or ``None`` at the end of the channel (the peer exited)."""
        try:
            head = await self._reader.readexactly(4)
            (n,) = _LEN.unpack(head)
            if n > MAX_FRAME:
                raise ChannelError(f"control frame of {n} bytes over {MAX_FRAME}")
            body = await self._reader.readexactly(n)
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed = True
            return None
        msg = msgpack.unpackb(body, raw=False)
        if not isinstance(msg, dict):
            raise ChannelError("control message is not a map")
        return msg

    def close(self) -> None:
        self.closed = True
        self._writer.close()


def send_handoff(sock: socket.socket, conn_id: int, initial: bytes, fd: int,
                 response: bytes = b"") -> None:
    """Hand one client socket (``fd``) and the bytes already read from it to a worker.

    ``sock`` is the non-blocking SEQPACKET end; raises ``BlockingIOError`` when the worker's
    queue is full (the caller retries when writable) and ``OSError`` if the worker is gone.
    """
    payload = msgpack.packb({"c": conn_id, "i": initial, "r": response}, use_bin_type=True)
    if len(payload) > MAX_HANDOFF:
        raise ValueError(f"handoff of {len(payload)} bytes over {MAX_HANDOFF}")
    socket.send_fds(sock, [payload], [fd])


Handoff = tuple[int, bytes, int, bytes]  # (connection id, initial bytes, fd, 101 written)


def recv_handoffs(sock: socket.socket, limit: int = 64) -> tuple[list[Handoff], bool]:
    """Read up to ``limit`` handoffs from the non-blocking SEQPACKET end.

    Returns ``(handoffs, eof)``: each handoff is ``(conn_id, initial bytes, fd, the 101
    response written)`` and the caller owns ``fd``; ``eof`` is True when the supervisor
    closed its end.
    """
    out: list[Handoff] = []
    for _ in range(limit):
        try:
            data, fds, flags, _ = socket.recv_fds(sock, MAX_HANDOFF, 4)
        except BlockingIOError:
            return out, False
        if not data and not fds:
            return out, True
        bad = bool(flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC)) or len(fds) != 1
        try:
            msg = msgpack.unpackb(data, raw=False) if not bad else None
        except ValueError:
            msg = None
        if not isinstance(msg, dict) or not isinstance(msg.get("c"), int) \
                or not isinstance(msg.get("i"), bytes) \
                or not isinstance(msg.get("r", b""), bytes):
            for fd in fds:  # our own bug: never leak the descriptor
                socket.close(fd)
            raise ChannelError("malformed handoff message")
        out.append((msg["c"], msg["i"], fds[0], msg.get("r", b"")))
    return out, False
