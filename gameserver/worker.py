"""One ``--workers`` worker process: a :class:`GameServer` without a listening socket.

Started by the supervisor (:mod:`gameserver.supervisor`) as ``python -m gameserver <same
arguments> --worker-process I,CTL_FD,HANDOFF_FD``. It:

* serves with ``config.worker_id = I`` (room ids ``<game>-wI-<n>``, resume tokens ``wI.``);
* takes each handed-over client socket from the handoff socket and adopts it with the bytes
  the supervisor already read (:meth:`GameServer.adopt`, ``upgraded=True``): the session sees
  the very HELLO / RESUME the supervisor routed on;
* reports over the control channel: ``ready`` once, its rooms when they change (checked
  every 50 ms) and every second, ``closed`` for connections that ended (so the supervisor
  drops its reference), and answers ``stats`` requests (metrics text + rooms) and
  ``reserve`` requests (its ``/matchmake`` answer; seats it holds for reservations count as
  players in its room reports, so the supervisor fills and spreads on them);
* stops gracefully on SIGTERM / SIGINT **or when the control channel ends** (the supervisor
  is gone): 1001 to every client, ``on_leave`` for every player, exit status 0.

Log lines carry ``worker=I``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from dataclasses import replace
from typing import Any

from gameserver.cluster.directory import room_capacity
from gameserver.cluster.matchmake import matchmake_reply
from gameserver.cluster.seats import LocalSeats
from gameserver.config import ConfigError, ServerConfig
from gameserver.control import (
    REPORT_INTERVAL,
    REPORT_MAX_AGE,
    Channel,
    ChannelError,
    recv_handoffs,
)
from gameserver.http import HttpReply
from gameserver.server import GameServer
from protocol.aio import WebSocket

__all__ = ["parse_worker_spec", "run_worker"]

log = logging.getLogger("gameserver.worker")

#: Seconds after which a handed-over connection that has not joined counts as processed.
PENDING_MAX = 2.0


def parse_worker_spec(spec: str) -> tuple[int, int, int]:
    """``"I,CTL_FD,HANDOFF_FD"`` -> ints (ConfigError otherwise)."""
    try:
        index, ctl, handoff = (int(x) for x in spec.split(","))
    except ValueError:
        raise ConfigError(f"bad --worker-process spec {spec!r}") from None
    if index < 0 or ctl < 0 or handoff < 0:
        raise ConfigError(f"bad --worker-process spec {spec!r}")
    return index, ctl, handoff


class _Tag(logging.Filter):
    def __init__(self, index: int) -> None:
        super().__init__()
        self.suffix = f" worker={index}"

    def filter(self, record: logging.LogRecord) -> bool:
        # The suffix has no "%": safe to append whether or not the record has args.
        if isinstance(record.msg, str) and not record.msg.endswith(self.suffix):
            record.msg += self.suffix
        return True


class WorkerProcess:
    """The worker's event-loop side (see the module docstring)."""

    def __init__(self, config: ServerConfig, index: int, ctl_fd: int, handoff_fd: int) -> None:
        self.index = index
        self.server = GameServer(replace(config, worker_id=index, port=0), listen=False)
        self._ctl_sock = socket.socket(fileno=ctl_fd)
        self._handoff = socket.socket(fileno=handoff_fd)
        self._handoff.setblocking(False)
        self.ctl: Channel | None = None
        self.stop = asyncio.Event()
        self._closed: list[int] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_rooms: Any = None
        #: handoffs whose HELLO / RESUME is not processed yet: id -> (connection, loop time)
        self._pending: dict[int, tuple[WebSocket | None, float]] = {}
        self._received = 0  # highest handoff id received

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        await self.server.start()
        self.ctl = await Channel.open(self._ctl_sock)
        loop.add_reader(self._handoff.fileno(), self._on_handoff)
        self._send({"t": "ready", "pid": os.getpid()})
        reader = loop.create_task(self._read_control())
        reporter = loop.create_task(self._report())
        await self.stop.wait()
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(self._handoff.fileno())
        self._handoff.close()
        await self.server.stop()
        reporter.cancel()
        reader.cancel()
        await asyncio.gather(reporter, reader, return_exceptions=True)
        self._flush_closed()
        if self.ctl is not None:
            self.ctl.close()
        return 0

    def _send(self, msg: dict[str, Any]) -> None:
        ch = self.ctl
        if ch is None:
            return
        try:
            ch.send(msg)
        except ChannelError as exc:
            log.error("control channel stuck, stopping: %s", exc)
            self.stop.set()

    # ------------------------------------------------------------------------ handoffs

    def _on_handoff(self) -> None:
        try:
            items, eof = recv_handoffs(self._handoff)
        except ChannelError as exc:
            log.error("bad handoff from the supervisor: %s", exc)
            return
        except OSError:
            items, eof = [], True
        now = asyncio.get_running_loop().time()
        for cid, initial, fd, response in items:
            sock = socket.socket(fileno=fd)
            self._pending[cid] = (None, now)
            self._received = max(self._received, cid)
            task = asyncio.get_running_loop().create_task(
                self._adopt(cid, sock, initial, response))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if eof:
            self.stop.set()

    async def _adopt(self, cid: int, sock: socket.socket, initial: bytes,
                     response: bytes) -> None:
        ws = await self.server.adopt(sock, initial, upgraded=response or True,
                                     on_lost=lambda: self._lost(cid))
        if ws is None:
            self._pending.pop(cid, None)
        elif cid in self._pending:
            self._pending[cid] = (ws, self._pending[cid][1])

    def _applied(self) -> int:
        """Every handoff id <= this one has had its first message processed (joined,
        refused or closed; one that takes over PENDING_MAX s counts as processed)."""
        pending = self._pending
        if pending:
            now = asyncio.get_running_loop().time()
            by_ws = {s.ws: s for s in self.server.sessions}
            for cid, (ws, t0) in list(pending.items()):
                s = by_ws.get(ws) if ws is not None else None
                if (now - t0 > PENDING_MAX or (ws is not None and ws.closed)
                        or (s is not None and s.player is not None)):
                    del pending[cid]
        return min(pending) - 1 if pending else self._received

    def _lost(self, cid: int) -> None:
        if not self._closed:
            asyncio.get_running_loop().call_soon(self._flush_closed)
        self._closed.append(cid)

    def _flush_closed(self) -> None:
        if self._closed:
            ids, self._closed = self._closed, []
            self._send({"t": "closed", "c": ids})

    # ------------------------------------------------------------------------- control

    def _rooms(self) -> list[dict[str, object]]:
        rooms = self.server.rooms
        return rooms.list_rooms() if rooms is not None else []

    def _report_rooms(self) -> list[dict[str, object]]:
        """The rooms as the supervisor routes on them: reserved seats (``/matchmake``)
        counted as players, rooms allocated for reservations included."""
        rooms = self._rooms()
        mgr = self.server.rooms
        seats = mgr.seats if mgr is not None else None
        held = seats.reserved_seats() if isinstance(seats, LocalSeats) else {}
        for r in rooms:
            n = held.pop(str(r["id"]), ("", 0))[1]
            if n:
                r["players"] = int(str(r["players"])) + n
        for rid, (game, n) in held.items():
            cls = mgr.games.get(game) if mgr is not None else None
            if cls is not None and mgr is not None:
                rooms.append({"id": rid, "game": game, "players": n,
                              "capacity": room_capacity(mgr.config, cls)})
        return rooms

    async def _reserve(self, rid: Any, target: str) -> None:
        """Answer the supervisor's ``reserve``: this worker's ``/matchmake`` reply."""
        mgr = self.server.rooms
        if mgr is None or mgr.seats is None:
            reply = HttpReply(503, b'{"error":"worker not serving"}', "application/json")
        else:
            reply = await matchmake_reply(mgr.seats, target)
        self._send({"t": "reserved", "id": rid, "s": reply.status, "b": reply.body})

    async def _read_control(self) -> None:
        ch = self.ctl
        assert ch is not None
        try:
            while True:
                msg = await ch.recv()
                if msg is None:
                    log.info("supervisor gone, stopping")
                    break
                if msg.get("t") == "stats":
                    self._send({"t": "stats", "id": msg.get("id"),
                                "m": self.server.metrics.render(), "r": self._rooms()})
                elif msg.get("t") == "reserve" and isinstance(msg.get("q"), str):
                    task = asyncio.get_running_loop().create_task(
                        self._reserve(msg.get("id"), msg["q"]))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        except (ChannelError, ValueError) as exc:
            log.error("control channel broken, stopping: %s", exc)
        self.stop.set()

    async def _report(self) -> None:
        """Send the rooms when seats change (polled) and at least every REPORT_MAX_AGE s."""
        loop = asyncio.get_running_loop()
        last_sent = 0.0
        while True:
            await asyncio.sleep(REPORT_INTERVAL)
            applied = self._applied()
            report = self._report_rooms()
            sig = (applied, tuple((r["id"], r["players"]) for r in report))
            now = loop.time()
            if sig != self._last_rooms or now - last_sent >= REPORT_MAX_AGE:
                self._last_rooms = sig
                last_sent = now
                self._send({"t": "rooms", "r": report, "a": applied})


def run_worker(config: ServerConfig, spec: str) -> int:
    """Blocking entry of a worker process (``--worker-process``); returns the exit status."""
    from protocol.aio.loop import run

    index, ctl_fd, handoff_fd = parse_worker_spec(spec)
    tag = _Tag(index)
    for h in logging.getLogger().handlers:
        h.addFilter(tag)

    async def main() -> int:
        return await WorkerProcess(config, index, ctl_fd, handoff_fd).run()

    return run(main())
