"""``gameserver --workers N``: one supervisor process, N worker processes, one public port.

The supervisor owns the listening socket (:class:`gameserver.acceptor.Acceptor`). It reads
each connection up to its first game message, picks the worker that hosts (or will host) the
player's room (:class:`gameserver.machine.MachineView`: room id and resume token name their
worker; a join by game name fills a free seat anywhere, else goes to the least loaded worker)
and passes the socket itself, with the bytes already read, to that worker over a Unix
socket (``SCM_RIGHTS``, :mod:`gameserver.control`). From then on the worker reads and writes
the client's socket directly: there is no proxy hop on the data path, and per-message cost is
the single-process cost.

Workers are ``python -m gameserver <the same arguments> --worker-process I,CTL,HANDOFF``
(fresh interpreters: no state inherited by fork), each a :class:`gameserver.server.GameServer`
with its own event loop and rooms, no listening socket (:mod:`gameserver.worker`).

Crash of a worker: the supervisor keeps its own reference to every socket it handed over
(released when the worker reports the connection closed), so the clients of a dead worker do
not just see the TCP connection drop: the supervisor writes them a WebSocket close frame
**4015 WORKER_RESTARTED** at once (or they see 1006 if the worker died mid-frame), and they can
join again by HELLO (their rooms are gone: a RESUME whose token names the dead process,
``w<i>.<pid>.``, is answered 4015 too, so a client that saw 1006 rejoins). The
worker is restarted with exponential backoff (0.2 s doubling to 10 s; reset after 30 s of
uptime). While a worker is down, joins by game name go to the others; a join by room id for
the down worker is refused with 4003.

``GET /matchmake`` is answered by the worker the supervisor picks (:meth:`Supervisor.matchmake`);
its token names that worker, so the HELLO carrying it is routed there (a token naming a dead
worker: 4017). ``GET /healthz``, ``/metrics`` and ``/rooms`` are answered by the supervisor
for the whole machine: it asks every worker over the control channel (bounded by
:data:`STATS_TIMEOUT`); a worker that does not answer is reported down
(``gameserver_worker_up{worker="i"} 0``).

SIGINT / SIGTERM: stop accepting, SIGTERM every worker (each closes its clients with 1001 and
runs ``on_leave``), wait at most ``SHUTDOWN_TIMEOUT`` + 3 s, SIGKILL what is left, exit 0. A
worker whose supervisor disappears sees its control channel end and stops the same way.

With ``--redis`` every worker is a cluster node and the joins the view cannot place are
routed by a Redis lookup; with ``--handover`` SIGTERM first quiesces the workers' handover
receivers and then lets each hand its rooms over (budget :data:`HANDOVER_STOP_TIMEOUT`), and
SIGHUP restarts the workers one at a time through Redis: :mod:`gameserver.supervisor_cluster`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

from gameserver.acceptor import Acceptor, Pending, close_politely
from gameserver.config import ServerConfig
from gameserver.control import Channel, ChannelError, send_handoff
from gameserver.fdlimit import raise_nofile_limit
from gameserver.http import Router, default_static_root
from gameserver.machine import MachineView, merge_metrics, worker_of_room, worker_of_token
from gameserver.server import SHUTDOWN_TIMEOUT
from gameserver.supervisor_cluster import (
    HANDOVER_STOP_TIMEOUT,
    ClusterRouter,
    _issuer_gone,
    _refusal,
    new_machine_id,
    quiesce,
    worker_node,
)
from protocol import messages as M
from protocol.codes import CloseCode
from protocol.frames import CLOSE, encode_close_payload, encode_frame
from protocol.handshake import Request, http_response, is_upgrade
from protocol.messages import SUBPROTOCOL

__all__ = ["STATS_TIMEOUT", "Supervisor", "Worker", "run_supervisor"]

log = logging.getLogger("gameserver.supervisor")

#: Seconds the supervisor waits for workers' metrics / rooms before reporting one down.
STATS_TIMEOUT = 1.0
#: Seconds a worker may take to start (import the game, bind nothing, say "ready").
START_TIMEOUT = 30.0
#: Restart backoff (s): first delay, cap; the failure count resets after STABLE_AFTER s up.
BACKOFF_FIRST = 0.2
BACKOFF_CAP = 10.0
STABLE_AFTER = 30.0
#: Seconds a worker has to answer a ``/matchmake`` reservation request (then HTTP 503).
MATCHMAKE_TIMEOUT = 2.0
#: Outstanding control requests (stats, reservations); above it /matchmake answers 503.
MAX_ASKS = 1024
#: Handoffs queued for one worker while its handoff socket is full; above it: close 1013.
MAX_QUEUED_HANDOFFS = 1024

_WORKER_CLOSE = encode_frame(CLOSE, encode_close_payload(
    int(CloseCode.WORKER_RESTARTED), "worker restarted: join again"))


class Worker:
    """The supervisor's handle on one worker process (index ``index``)."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: subprocess.Popen[bytes] | None = None
        self.ctl: Channel | None = None
        self.handoff: socket.socket | None = None
        self.ready = False
        self.started = 0.0
        self.failures = 0
        self.restarts = 0
        self.handoffs = 0
        #: our reference to every socket handed to it and not yet reported closed
        self.held: dict[int, socket.socket] = {}
        self.queue: deque[tuple[int, bytes, bytes]] = deque()
        self.writer = False
        self.retiring = False  # SIGHUP rolling restart: handing its rooms over, then respawned
        self.reader: asyncio.Task[None] | None = None
        self.ready_evt = asyncio.Event()


class Supervisor:
    """N workers behind one port; see the module docstring. ``argv`` are the CLI arguments
    the workers are started with (they re-read the same configuration)."""

    def __init__(self, config: ServerConfig, argv: Sequence[str], workers: int) -> None:
        self.config = config
        self.argv = list(argv)
        self.workers = [Worker(i) for i in range(workers)]
        caps = {name: int(config.max_players or getattr(cls, "max_players", None) or 16)
                for name, cls in config.games.items()}
        self.view = MachineView(workers, caps)
        self.default_game = next(iter(config.games))
        self.stopping = False
        self.draining = False  # --drain-seconds after SIGTERM: /readyz 503, upgrades 503
        self.rolling = False  # a SIGHUP rolling restart is under way (supervisor_cluster)
        self._stop_evt = asyncio.Event()
        self._start_failed = asyncio.Event()
        self.acceptor: Acceptor | None = None
        self._sock: socket.socket | None = None
        self._conn_ids = itertools.count(1)
        self._stats_ids = itertools.count(1)
        self._stats: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._lingering: set[socket.socket] = set()
        self._snapshot: tuple[str, list[dict[str, object]]] = ("", [])
        static = config.static_root if config.static_root is not None else default_static_root()
        self.router = Router(static_root=static, metrics=lambda: self._snapshot[0],
                             rooms=lambda: self._snapshot[1], healthy=lambda: True,
                             ws_path=config.ws_path, prefix=config.path_prefix,
                             ready=lambda: not self.stopping and not self.draining
                             and any(w.ready for w in self.workers))
        self.port = 0
        #: --redis: every worker is the cluster node <machine>-w<i> (supervisor_cluster)
        self.machine = new_machine_id()
        self.front: ClusterRouter | None = None
        if config.redis_url is not None:
            self.front = ClusterRouter(config.redis_url, self.machine, workers, self.router)

    # ------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind the port, start every worker, wait until all are ready (RuntimeError if
        one cannot start within :data:`START_TIMEOUT`), then accept."""
        cfg = self.config
        self._sock = socket.create_server((cfg.host, cfg.port), backlog=1024)
        self.port = int(self._sock.getsockname()[1])
        for w in self.workers:
            self._spawn(w)
        ready: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.gather(*(w.ready_evt.wait() for w in self.workers)))
        failed: asyncio.Future[Any] = asyncio.ensure_future(self._start_failed.wait())
        done, _ = await asyncio.wait([ready, failed], timeout=START_TIMEOUT,
                                     return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        failed.cancel()
        if ready not in done:
            why = "a worker exited while starting" if failed in done else \
                f"workers did not start within {START_TIMEOUT:.0f} s"
            raise RuntimeError(why)
        loop = asyncio.get_running_loop()
        self.acceptor = Acceptor(
            loop, self._sock, on_http=self._http, on_route=self._route,
            ws_path=cfg.path_prefix + cfg.ws_path, origins=cfg.origins,
            # as GameServer.start(): the worker checks our 101 equals its own
            subprotocols=(SUBPROTOCOL,), max_message_size=4 * cfg.max_message_size,
            accepting=lambda: not self.draining,
            hello_timeout=cfg.hello_timeout, max_pending=min(4096, cfg.max_connections))
        self.acceptor.start()
        log.info("listening port=%d workers=%d games=%s", self.port, len(self.workers),
                 ",".join(cfg.games))

    def _spawn(self, w: Worker) -> None:
        ctl_a, ctl_b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ho_a, ho_b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        spec = f"{w.index},{ctl_b.fileno()},{ho_b.fileno()}"
        extra: list[str] = []
        if self.front is not None:  # a restarted worker is a new cluster node
            self.front.nodes[w.index] = worker_node(self.machine, w.index, w.restarts)
            spec += "," + self.front.nodes[w.index]
        if self.config.public_url is None:  # what clients dial: our port, not the worker's
            extra = ["--public-url", self._ws_url()]
        cmd = [sys.executable, "-m", "gameserver", *self.argv, *extra, "--worker-process", spec]
        try:
            # A session of its own: a terminal's Ctrl-C reaches the supervisor only, which
            # then stops the workers in order (a worker never restarts because of it).
            w.proc = subprocess.Popen(cmd, pass_fds=(ctl_b.fileno(), ho_b.fileno()),
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            ctl_b.close()
            ho_b.close()
        ho_a.setblocking(False)
        w.handoff = ho_a
        w.started = time.monotonic()
        w.ready = False
        w.ready_evt = asyncio.Event()
        w.reader = asyncio.get_running_loop().create_task(self._read_worker(w, ctl_a))

    async def _read_worker(self, w: Worker, sock: socket.socket) -> None:
        try:
            ch = w.ctl = await Channel.open(sock)
            while True:
                msg = await ch.recv()
                if msg is None:
                    break
                self._on_message(w, msg)
        except (ChannelError, ValueError, TypeError, KeyError) as exc:  # our bug: restart it
            log.error("control channel broken worker=%d: %s", w.index, exc)
        finally:
            await self._worker_gone(w)

    def _on_message(self, w: Worker, msg: dict[str, Any]) -> None:
        t = msg.get("t")
        if t == "rooms":
            applied = msg.get("a")
            self.view.report(w.index, msg.get("r") or [],
                             applied if isinstance(applied, int) else None)
        elif t == "closed":
            for cid in msg.get("c") or ():
                s = w.held.pop(cid, None)
                if s is not None:
                    s.close()
        elif t in ("stats", "reserved", "quiesced"):
            fut = self._stats.pop(int(msg.get("id", 0)), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
        elif t == "ready":
            w.ready = True
            self.view.set_up(w.index, True)
            w.ready_evt.set()
            log.info("worker ready worker=%d pid=%s", w.index, msg.get("pid"))

    async def _worker_gone(self, w: Worker) -> None:
        """The control channel ended: the worker exited (or broke). Close its clients with
        4015, reap it, and restart it with backoff unless we are stopping."""
        w.ready = False
        self.view.set_up(w.index, False)
        if w.ctl is not None:
            w.ctl.close()
            w.ctl = None
        if w.handoff is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_writer(w.handoff.fileno())
            w.handoff.close()
            w.handoff = None
        w.writer = False
        w.queue.clear()  # their sockets are in w.held too
        held = list(w.held.values())
        w.held.clear()
        code = await self._reap(w)
        retiring, w.retiring = w.retiring, False
        if retiring and code == 0 and not self.stopping:  # rolling restart: rooms moved
            for s in held:
                self._close_client(s, b"")
            w.restarts += 1
            log.info("restarting worker=%d after its handover restarts=%d", w.index, w.restarts)
            try:
                self._spawn(w)
            except OSError as exc:
                log.error("cannot start worker=%d: %s", w.index, exc)
            return
        if not self.stopping:
            log.warning("worker exited worker=%d code=%s clients=%d: closing them with %d",
                        w.index, code, len(held), int(CloseCode.WORKER_RESTARTED))
            for s in held:
                self._close_client(s, _WORKER_CLOSE)
        else:
            for s in held:
                self._close_client(s, b"")
        if self.stopping:
            return
        if not w.ready_evt.is_set() and self.acceptor is None:
            # It died before its first "ready", while we start: a broken setup, not a crash
            # to ride out (start() reports it and exits 1).
            self._start_failed.set()
            return
        uptime = time.monotonic() - w.started
        if uptime > STABLE_AFTER:
            w.failures = 0
        delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** w.failures)
        w.failures += 1
        w.restarts += 1
        log.info("restarting worker=%d in=%.1fs restarts=%d", w.index, delay, w.restarts)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_evt.wait(), delay)  # a stop cuts the wait
        if not self.stopping:
            try:
                self._spawn(w)
            except OSError as exc:
                log.error("cannot start worker=%d: %s", w.index, exc)

    async def _reap(self, w: Worker) -> int | None:
        """Wait (bounded) for the worker process to exit; SIGKILL it if it lingers."""
        proc = w.proc
        if proc is None:
            return None
        deadline = time.monotonic() + (self._stop_budget() if self.stopping or w.retiring
                                       else 2.0)
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if proc.poll() is None:
            log.warning("worker did not exit, killing worker=%d pid=%d", w.index, proc.pid)
            proc.kill()
            await asyncio.to_thread(proc.wait)
        return proc.returncode

    def _close_client(self, s: socket.socket, frame: bytes) -> None:
        """Write ``frame`` (a close frame, or nothing), FIN, close when the peer answers or
        after 2 s (:func:`gameserver.acceptor.close_politely`)."""
        close_politely(asyncio.get_running_loop(), s, frame, self._lingering)

    def _stop_budget(self) -> float:
        """Seconds a stopping worker may take before it is killed (a --handover stop waits
        for other nodes to claim and restore its rooms)."""
        return HANDOVER_STOP_TIMEOUT if self.config.handover else SHUTDOWN_TIMEOUT + 3.0

    async def stop(self) -> None:
        """Graceful stop (see the module docstring); idempotent."""
        if self.stopping:
            return
        self.stopping = True
        self._stop_evt.set()
        if self.acceptor is not None:
            self.acceptor.close()
        elif self._sock is not None:
            self._sock.close()
        if self.config.handover and self.front is not None:
            await quiesce(self)  # no worker claims a sibling's room: they all stop
        for w in self.workers:
            if w.proc is not None and w.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.send_signal(signal.SIGTERM)
        readers = [w.reader for w in self.workers if w.reader is not None]
        if readers:
            await asyncio.wait(readers, timeout=self._stop_budget() + 3.0)
        for w in self.workers:  # whatever is left (a reader stuck): no orphans
            if w.proc is not None and w.proc.poll() is None:
                w.proc.kill()
                await asyncio.to_thread(w.proc.wait)
        for s in list(self._lingering):
            self._lingering.discard(s)
            s.close()
        if self.front is not None:
            await self.front.close()
        log.info("stopped")

    # -------------------------------------------------------------------------- routing

    def _route(self, p: Pending, msg: Any) -> None:
        """Decide where a connection goes (see :mod:`gameserver.machine`) and hand it over."""
        view = self.view
        cid = next(self._conn_ids)
        if self.front is not None and not self.stopping and self.front.route(self, p, msg, cid):
            return  # --redis: placed by the directory (supervisor_cluster)
        target: int | None
        if isinstance(msg, M.Hello) and msg.reservation is not None:
            # /matchmake's token names the worker that holds the seat (w<i>.)
            target = worker_of_token(msg.reservation)
            if target is not None and not view.is_up(target):
                p.refuse(*_refusal(msg))
                return
            if target is None or target >= len(self.workers):
                target = view.least_loaded()  # a forged token: that worker answers 4017
        elif isinstance(msg, M.Hello):
            if msg.room is not None:
                target = worker_of_room(msg.room)
                if target is not None and not view.is_up(target):
                    p.refuse(*_refusal(msg))
                    return
                if target is None or target >= len(self.workers):
                    target = view.least_loaded()  # it answers 4003 like a single process
            else:
                game = msg.game or self.default_game
                target = (view.choose_for_game(game, cid) if game in self.config.games
                          else view.least_loaded())
        elif isinstance(msg, M.Resume):
            target = worker_of_token(msg.token)
            # the process that issued it died (its client saw 1006, not our 4015, if it
            # died mid-frame): the room is gone: 4015 (join again), not 4005, SPEC 7
            gone = _issuer_gone(self, msg.token)
            if gone is not None:
                p.refuse(*gone)
                return
            if target is not None and not view.is_up(target):
                p.refuse(*_refusal(msg))
                return
            if target is None or target >= len(self.workers):
                target = view.least_loaded()
        else:
            target = view.least_loaded()
        if target is None or self.stopping:
            p.refuse(1013 if not self.stopping else CloseCode.GOING_AWAY,
                     "no worker available, try again later")
            return
        self._handoff(self.workers[target], p, cid)

    def _handoff(self, w: Worker, p: Pending, cid: int) -> None:
        if len(w.queue) >= MAX_QUEUED_HANDOFFS or w.handoff is None:
            p.refuse(1013, "server busy, try again later")
            return
        response = p.response
        sock, initial = p.detach()
        w.held[cid] = sock
        w.handoffs += 1
        w.queue.append((cid, initial, response))
        self._flush_handoffs(w)

    def _flush_handoffs(self, w: Worker) -> None:
        hs = w.handoff
        loop = asyncio.get_running_loop()
        while w.queue and hs is not None:
            cid, initial, response = w.queue[0]
            sock = w.held.get(cid)
            if sock is None:
                w.queue.popleft()
                continue
            try:
                send_handoff(hs, cid, initial, sock.fileno(), response)
            except ValueError:  # over MAX_HANDOFF: cannot happen (the acceptor bounds it)
                log.error("handoff too large, dropping connection bytes=%d", len(initial))
                w.queue.popleft()
                w.held.pop(cid, None)
                sock.close()
                continue
            except BlockingIOError:
                if not w.writer:
                    w.writer = True
                    loop.add_writer(hs.fileno(), self._flush_handoffs, w)
                return
            except OSError:  # the worker is gone: _worker_gone closes the held sockets
                return
            w.queue.popleft()
        if w.writer and hs is not None:
            w.writer = False
            with contextlib.suppress(ValueError, OSError):
                loop.remove_writer(hs.fileno())

    # ----------------------------------------------------------------------------- HTTP

    async def gather(self) -> list[tuple[int, dict[str, Any] | None]]:
        """Every worker's ``stats`` answer (``None``: down or no answer in time)."""
        return await self.ask_all({"t": "stats"}, STATS_TIMEOUT)

    async def ask_all(self, msg: dict[str, Any], timeout: float,
                      ) -> list[tuple[int, dict[str, Any] | None]]:
        """Send ``msg`` (with a fresh ``id``) to every live worker; their answers, ``None``
        for a worker down or silent for ``timeout`` s."""
        loop = asyncio.get_running_loop()
        asks: list[tuple[int, asyncio.Future[dict[str, Any]] | None]] = []
        for w in self.workers:
            fut: asyncio.Future[dict[str, Any]] | None = None
            if w.ready and w.ctl is not None:
                sid = next(self._stats_ids)
                fut = loop.create_future()
                self._stats[sid] = fut
                try:
                    w.ctl.send({**msg, "id": sid})
                except ChannelError:
                    self._stats.pop(sid, None)
                    fut = None
            asks.append((w.index, fut))
        futs = [f for _, f in asks if f is not None]
        if futs:
            await asyncio.wait(futs, timeout=timeout)
        out: list[tuple[int, dict[str, Any] | None]] = []
        for i, f in asks:
            if f is not None and f.done() and not f.cancelled():
                out.append((i, f.result()))
            else:
                if f is not None:
                    f.cancel()
                out.append((i, None))
        for sid in [k for k, f in self._stats.items() if f.done()]:
            self._stats.pop(sid, None)
        return out

    def _own_metrics(self, answers: Sequence[tuple[int, dict[str, Any] | None]]) -> str:
        lines = ["# HELP gameserver_workers worker processes configured (--workers)",
                 "# TYPE gameserver_workers gauge", f"gameserver_workers {len(self.workers)}",
                 "# HELP gameserver_worker_up 1 if the worker answered within the bound",
                 "# TYPE gameserver_worker_up gauge"]
        lines += [f'gameserver_worker_up{{worker="{i}"}} {0 if a is None else 1}'
                  for i, a in answers]
        for name, help_text, attr in (
                ("gameserver_worker_restarts_total", "times the worker was restarted",
                 "restarts"),
                ("gameserver_handoffs_total", "connections handed to the worker", "handoffs")):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
            lines += [f'{name}{{worker="{w.index}"}} {getattr(w, attr)}' for w in self.workers]
        lines += ["# HELP gameserver_worker_connections handed-over connections still open",
                  "# TYPE gameserver_worker_connections gauge"]
        lines += [f'gameserver_worker_connections{{worker="{w.index}"}} {len(w.held)}'
                  for w in self.workers]
        return "\n".join(lines) + "\n"

    async def matchmake(self, target: str) -> tuple[int, bytes]:
        """``GET /matchmake?game=NAME`` for the machine: the worker with a free seat of the
        game (else the least loaded: :meth:`MachineView.pick_for_game`) reserves it; its
        answer is ours, with the public url. 503 JSON if it does not answer within
        :data:`MATCHMAKE_TIMEOUT` s or none is up; 400 / 404 as a single process."""
        try:
            game = (parse_qs(target.partition("?")[2], max_num_fields=8).get("game")
                    or [""])[0]
        except ValueError:
            game = ""
        known = game in self.config.games
        # --redis: any worker runs the cluster's MATCH script (it picks room and node)
        i = self.view.pick_for_game(game) if known and self.front is None \
            else self.view.least_loaded()
        w = self.workers[i] if i is not None else None
        if w is None or w.ctl is None or not w.ready or len(self._stats) >= MAX_ASKS:
            return 503, _json_error("no worker available for matchmaking, try again")
        sid = next(self._stats_ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._stats[sid] = fut
        try:
            w.ctl.send({"t": "reserve", "id": sid, "q": target})
            msg = await asyncio.wait_for(fut, MATCHMAKE_TIMEOUT)
        except (ChannelError, TimeoutError):
            log.warning("matchmake: no answer worker=%d", w.index)
            return 503, _json_error(f"worker {w.index} did not answer within "
                                    f"{MATCHMAKE_TIMEOUT:.0f} s, try again")
        finally:
            self._stats.pop(sid, None)
        status, body = int(msg.get("s", 503)), bytes(msg.get("b") or b"")
        if status == 200:  # its url is ours: every worker runs with our --public-url
            if self.front is not None:  # the seat's node may be another worker or machine
                node = json.loads(body).get("node")
                self.view.reserved(self.front.worker_of_node(node), game)
            else:
                self.view.reserved(w.index, game)
        return status, body

    def _ws_url(self) -> str:
        cfg = self.config
        host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
        return f"ws://{host}:{self.port}{cfg.path_prefix}{cfg.ws_path}"

    async def _http(self, req: Request) -> bytes:
        path = req.target.split("?", 1)[0]
        prefix = self.config.path_prefix
        if prefix and path.startswith(prefix + "/"):
            path = path[len(prefix):]
        if path == "/matchmake" and req.method == "GET":
            status, body = await self.matchmake(req.target)
            return http_response(status, body, content_type="application/json",
                                 headers=[("Cache-Control", "no-store"),
                                          ("Connection", "close")])
        pending = self.router.route_async(req.method, req.target)
        if pending is not None:  # --redis: /rooms?scope=cluster (the directory's view)
            r = await pending
            return http_response(r.status, r.body, content_type=r.content_type,
                                 headers=[*r.headers, ("Connection", "close")])
        if path == "/healthz" and req.method in ("GET", "HEAD"):
            up = sum(1 for w in self.workers if w.ready)
            n = len(self.workers)
            if self.stopping or up == 0:
                status, text = 503, f"down workers_up={up}/{n}\n"
            else:
                status, text = 200, f"{'ok' if up == n else 'degraded'} workers_up={up}/{n}\n"
            body = text.encode() if req.method == "GET" else b""
            return http_response(status, body, headers=[("Connection", "close"),
                                                        ("Cache-Control", "no-store")])
        if path in ("/metrics", "/rooms"):
            answers = await self.gather()
            rooms: list[dict[str, object]] = []
            texts: list[tuple[str, str]] = []
            for i, a in answers:
                if a is None:
                    continue
                for r in a.get("r") or ():
                    if isinstance(r, dict):
                        rooms.append({**r, "worker": i})
                texts.append((str(i), str(a.get("m", ""))))
            if self.front is not None:  # our own Redis lookups: worker="supervisor"
                texts.append(("supervisor", self.front.metrics_text()))
            self._snapshot = (self._own_metrics(answers) + merge_metrics(texts), rooms)
        reply = self.router.route(req.method, req.target, upgrade=is_upgrade(req))
        if reply is None:  # an upgrade the acceptor did not take (odd target): 426
            reply = self.router.route(req.method, req.target, upgrade=False)
        if reply is None:
            return http_response(426, b"upgrade required\n", headers=[("Connection", "close")])
        return http_response(reply.status, reply.body, content_type=reply.content_type,
                             headers=[*reply.headers, ("Connection", "close")])


def _json_error(message: str) -> bytes:
    return json.dumps({"error": message}, separators=(",", ":")).encode()


def run_supervisor(config: ServerConfig, argv: Sequence[str], workers: int) -> int:
    """Blocking CLI entry for ``--workers N`` (N >= 2): returns the exit status."""
    from protocol.aio.loop import run

    async def main() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        raised = raise_nofile_limit()  # inherited by the workers; we hold a fd per client too
        if raised is not None and raised[1] > raised[0]:
            log.info("raised the file descriptor limit soft=%d->%d", raised[0], raised[1])
        sup = Supervisor(config, argv, workers)
        if sup.front is not None and config.handover:  # else SIGHUP's default action stays
            loop.add_signal_handler(signal.SIGHUP, sup.front.on_sighup, sup)
        try:
            await sup.start()
        except OSError as exc:
            print(f"gameserver: error: cannot listen on {config.host}:{config.port}: {exc}",
                  file=sys.stderr)
            return 1
        except RuntimeError as exc:
            print(f"gameserver: error: {exc}", file=sys.stderr)
            await sup.stop()
            return 1
        host = f"[{config.host}]" if ":" in config.host else config.host
        games = ", ".join(config.games)
        pre = config.path_prefix
        print(f"gameserver: serving {games} at http://{host}:{sup.port}{pre}/ "
              f"(ws at ws://{host}:{sup.port}{pre}{config.ws_path}) workers={workers}",
              flush=True)
        await stop.wait()
        if config.drain_seconds > 0:  # as run_server: readiness 503 first, new players refused
            sup.draining = True
            log.info("draining: new game connections refused")
            stop.clear()
            with contextlib.suppress(TimeoutError):  # a second signal ends the drain early
                await asyncio.wait_for(stop.wait(), config.drain_seconds)
        log.info("signal received, shutting down")
        await sup.stop()
        return 0

    return run(main())

