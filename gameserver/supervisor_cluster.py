"""``--workers N --redis URL``: the supervisor's side of the cluster (one machine, N nodes).

Every worker is a cluster node of its own: node id ``<machine>-w<i>`` (``machine``: 8 random
hex digits drawn by the supervisor at start, :func:`worker_node`), its own presence, rooms
and resume tokens in Redis, and the machine's public URL (``--public-url``, else the
supervisor's ``ws://host:port/ws``). Room ids are ``<game>-<machine>-w<i>-<n>`` (and
``<game>-<machine>-w<i>-m<hex>`` for rooms the cluster matchmaker allocates on worker ``i``),
so :func:`gameserver.machine.worker_of_room` still names the worker that made them.

Most joins are routed without Redis, as without ``--redis``: HELLO by game name
(:meth:`MachineView.choose_for_game`), HELLO with the id of a room a worker reports holding,
or of a room named after a live worker of this machine. The others cost the supervisor ONE
Redis round trip of its own (:class:`ClusterRouter`, a :class:`RedisLink`: bounded to 1 s,
degraded mode, no retry):

=======================================  ================================================
join                                     lookup
=======================================  ================================================
HELLO with ``reservation``               ``GET gs:resv:<token>`` (its JSON names the node)
HELLO with a room id not placed above    ``HGET gs:room:<id> node``
RESUME                                   ``GET gs:tok:<token>``
=======================================  ================================================

A current node of this machine -> that worker (not serving: asked again a few times, since
a rolling restart's receiver may be writing its entry; then 1013 while that worker is
handing its rooms over, else the refusal a single process gives, 4005 / 4003 / 4017). A
RESUME that no current worker holds (no entry, a dead incarnation's node, Redis down) and
whose ``w<i>.<pid>.`` names a process that is not worker i's live one: 4015, as without
``--redis``. Any other answer (another machine's node, no entry, Redis down) -> the worker
the id or token names if it is up, else the least loaded worker; it answers as any cluster
node does: 4013 REDIRECT to the other node's URL (its own lookup), or 4003 / 4005 / 4017,
or 4018 while Redis is down. A restarted worker is a new node (:func:`worker_node`). A
worker never redirects to the machine's own URL (the directory's sibling rule), so a URL
that points back here reaches the supervisor, which routes it by the same table: no loop.

Why a lookup and not a token map fed by the workers: a resume token's ``w<i>.`` prefix names
the worker that issued it, which after a handover (from a sibling during a rolling restart,
or from another machine) is not the one holding it. The receiving worker writes the token
index entry as soon as it installs the room, before its handover commit; the 4014 MOVED that
sends the player here is written only after that commit. A map reported by the workers over
the control channel would be polled (50 ms) and so later than the player, and would cost
control traffic per seat change on every worker; the lookup costs one round trip on a
RESUME only (a reconnect), never on HELLO by game name or the data path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import time
from typing import TYPE_CHECKING, Any

from gameserver.cluster import keys as K
from gameserver.cluster.directory import Directory
from gameserver.cluster.errors import BadReply, ClusterUnavailable
from gameserver.cluster.link import RedisLink
from gameserver.cluster.matchmake import rooms_reply
from gameserver.cluster.node import NodeIdentity, new_node_id
from gameserver.machine import token_process, worker_of_room, worker_of_token
from gameserver.metrics import Registry
from protocol import messages as M
from protocol.codes import CloseCode, ErrorCode

if TYPE_CHECKING:
    from gameserver.acceptor import Pending
    from gameserver.http import Router
    from gameserver.supervisor import Supervisor

__all__ = ["HANDOVER_STOP_TIMEOUT", "QUIESCE_TIMEOUT", "ClusterRouter", "new_machine_id",
           "quiesce", "rolling_restart", "worker_node"]

log = logging.getLogger("gameserver.supervisor")

_NODE = re.compile(r"(.+)-w(\d{1,4})\Z")

#: Seconds a worker stopping with --handover may take before it is killed: the handover's
#: own bounds (an offer waits <= 50 s while receivers make progress, a restore <= 10 s).
HANDOVER_STOP_TIMEOUT = 75.0
#: Seconds the supervisor waits for every worker to stop claiming offers (a claim in flight
#: is restored first: <= 0.5 s BLMOVE + 10 s restore) before it SIGTERMs them.
QUIESCE_TIMEOUT = 12.0
#: A lookup naming a worker of ours that is not serving is repeated this many times, this
#: many seconds apart (a rolling restart's receiving worker writes the token index entry
#: within milliseconds), before the single-node refusal.
RELOOKUPS = 10
RELOOKUP_DELAY = 0.05
#: Seconds a restarted worker may take to say "ready" in a rolling restart (then it stops).
RESTART_READY_TIMEOUT = 30.0


def new_machine_id() -> str:
    """The machine's random id (8 hex digits, as a single node's id)."""
    return new_node_id()


def worker_node(machine: str, worker: int, incarnation: int = 0) -> str:
    """The cluster node id of ``worker`` on ``machine``: ``<machine>-w<worker>``, and
    ``<machine>.<k>-w<worker>`` for its k-th restart (a restarted worker is a new node, as a
    restarted single process is: its fresh room ids never collide with the rooms its previous
    incarnation handed over to a sibling, which keep their ids)."""
    return f"{machine}-w{worker}" if incarnation == 0 else f"{machine}.{incarnation}-w{worker}"


class _Metrics:
    """What :class:`RedisLink` needs from a metrics holder: a registry of its own."""

    def __init__(self) -> None:
        self.registry = Registry()


class ClusterRouter:
    """The supervisor's Redis lookups (see the module docstring); ``workers`` is N."""

    def __init__(self, redis_url: str, machine: str, workers: int,
                 router: Router | None = None, *, timeout: float = 1.0) -> None:
        self.machine = machine
        self.workers = workers
        self.metrics = _Metrics()
        self.link = RedisLink(redis_url, self.metrics, timeout=timeout)  # type: ignore[arg-type]
        #: the current node id of each worker (the supervisor sets it at every spawn)
        self.nodes = [worker_node(machine, i) for i in range(workers)]
        self._tasks: set[asyncio.Task[None]] = set()  # bounded: one per acceptor Pending
        self._directory: Directory | None = None  # for /rooms?scope=cluster reads only
        self._rolls: set[asyncio.Task[int]] = set()
        if router is not None:  # the supervisor's /rooms?scope=cluster
            router.cluster_rooms = lambda: rooms_reply(self.cluster_rooms)

    def on_sighup(self, sup: Supervisor) -> None:
        """The supervisor's SIGHUP handler: start :func:`rolling_restart`."""
        task = asyncio.get_running_loop().create_task(rolling_restart(sup))
        self._rolls.add(task)
        task.add_done_callback(self._rolls.discard)

    def worker_of_node(self, node: Any) -> int | None:
        """The worker whose CURRENT node id is ``node``, else None (another machine's, or a
        previous incarnation of one of ours: its rooms and tokens died with it)."""
        if not isinstance(node, str):
            return None
        m = _NODE.match(node)
        if m is None:
            return None
        i = int(m.group(2))
        return i if i < self.workers and self.nodes[i] == node else None

    def made_by(self, room_id: str) -> int | None:
        """The worker whose current incarnation made ``room_id``
        (``<game>-<its node id>-<n>``), else None."""
        i = worker_of_room(room_id)
        if i is None or i >= self.workers:
            return None
        return i if f"-{self.nodes[i]}-" in room_id else None

    async def cluster_rooms(self) -> list[dict[str, object]]:
        """``/rooms?scope=cluster`` on the supervisor: every live room of the cluster (the
        directory's read; it never touches a room manager). ClusterUnavailable if down."""
        if self._directory is None:
            node = NodeIdentity(f"{self.machine}-supervisor", "ws://supervisor.invalid/")
            self._directory = Directory(self.link, node, None)  # type: ignore[arg-type]
        view = await self._directory.view(None)
        # no sync task here to prune with: stale ids this read found stay until a node's own
        # read prunes them (every reader skips them anyway); keep nothing between reads
        self._directory._prune_nodes.clear()
        self._directory._prune_rooms.clear()
        return [r.info() for r in sorted(view.rooms, key=lambda r: (r.node, r.room))]

    def metrics_text(self) -> str:
        """The link's own metrics (round trips, latency, degraded) in Prometheus text."""
        return self.metrics.registry.render()

    async def locate(self, msg: Any) -> tuple[str, int | None]:
        """Where the node holding ``msg``'s room / token / reservation is:
        ``("here", worker)``, ``("elsewhere", None)`` (another node holds it),
        ``("unknown", None)`` (no entry) or ``("down", None)`` (Redis unavailable)."""
        if isinstance(msg, M.Hello) and msg.reservation is not None:
            key, op = K.resv_key(msg.reservation), "resv"
        elif isinstance(msg, M.Hello) and msg.room is not None:
            key, op = K.room_key(msg.room), "room"
        elif isinstance(msg, M.Resume):
            key, op = K.tok_key(msg.token), "tok"
        else:
            return "unknown", None
        try:
            if op == "room":
                raw = await self.link.call("front_locate", lambda r: r.hget(key, "node"))
            else:
                raw = await self.link.call("front_locate", lambda r: r.get(key))
        except BadReply:  # the key holds something else: as good as absent
            return "unknown", None
        except ClusterUnavailable:
            return "down", None
        node: str | None
        if op == "resv":
            v = K.load_json(raw) if raw is not None else None
            node = K.as_str(v.get("node"), 64) if isinstance(v, dict) else None
        else:
            node = K.as_str(raw, 64)
        if node is None:
            return "unknown", None
        i = self.worker_of_node(node)
        if i is not None:
            return "here", i
        m = _NODE.match(node)
        if m is not None and m.group(1).split(".", 1)[0] == self.machine:
            return "unknown", None  # a dead incarnation of one of ours: that died with it
        return "elsewhere", None



    # -------------------------------------------------------------------------- routing

    def route(self, sup: Supervisor, p: Pending, msg: Any, cid: int) -> bool:
        """Route ``msg``'s connection if it needs the cluster (True: handled, now or after a
        lookup); False: the supervisor's plain routing applies (HELLO by game name, a room
        named after a live worker of this machine, anything else)."""
        view = sup.view
        if isinstance(msg, M.Hello) and msg.reservation is None:
            if msg.room is None:
                return False
            holder = view.holder(msg.room)
            if holder is not None:  # reported by a worker: it holds the room (moved or not)
                sup._handoff(sup.workers[holder], p, cid)
                return True
            made = self.made_by(msg.room)
            if made is not None and view.is_up(made):
                sup._handoff(sup.workers[made], p, cid)  # made here, not reported yet (new)
                return True
        elif not isinstance(msg, M.Hello | M.Resume):
            return False
        task = asyncio.get_running_loop().create_task(self._route_later(sup, p, msg, cid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _route_later(self, sup: Supervisor, p: Pending, msg: Any, cid: int) -> None:
        where, target = await self.locate(msg)
        for _ in range(RELOOKUPS):
            if where != "here" or sup.view.is_up(target) or p.settled or sup.stopping:
                break
            # ours but not serving: a worker handing its rooms over (rolling restart) while
            # the receiving sibling's index entry is in flight: ask again shortly
            await asyncio.sleep(RELOOKUP_DELAY)
            where, target = await self.locate(msg)
        if p.settled:  # timed out (4012) or aborted by a stop meanwhile
            return
        if sup.stopping:
            p.refuse(CloseCode.GOING_AWAY, "server shutting down")
            return
        view = sup.view
        if where == "here":
            if not view.is_up(target) and target is not None:
                if sup.workers[target].retiring:  # its rooms are still moving: retry later
                    p.refuse(1013, "the room is moving to another process, try again")
                    return
                code, why = _refusal(msg)  # it crashed (its rooms died): a single node's
                p.refuse(code, why)
                return
        else:  # another node's, unknown, or Redis down: a worker answers as a cluster node
            named: int | None = None
            if isinstance(msg, M.Resume):
                named = worker_of_token(msg.token)
                dead = _issuer_gone(sup, msg.token) if where != "elsewhere" else None
                if dead is not None:  # nobody here holds it and its process died: SPEC 7
                    p.refuse(*dead)
                    return
            elif isinstance(msg, M.Hello) and msg.room is not None:
                named = self.made_by(msg.room)
            target = named if view.is_up(named) else view.least_loaded()
        if target is None:
            p.refuse(1013, "no worker available, try again later")
            return
        sup._handoff(sup.workers[target], p, cid)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await self.link.close()


def _issuer_gone(sup: Supervisor, token: str) -> tuple[int, str] | None:
    """For a RESUME no worker of ours holds: if the token's issuing process (``w<i>.<pid>.``)
    is not worker i's live process any more, the refusal (4015: its room died with it, join
    again; 1013 while worker i is handing its rooms over: retry), else None."""
    i, pid = worker_of_token(token), token_process(token)
    if i is None or pid is None or i >= len(sup.workers):
        return None
    w = sup.workers[i]
    if w.retiring:
        return 1013, "the room is moving to another process, try again"
    if w.proc is None or w.proc.pid != pid or not sup.view.is_up(i):
        return CloseCode.WORKER_RESTARTED, "worker restarted: join again"
    return None


def _refusal(msg: Any) -> tuple[int, str]:
    """What a single process answers for a join whose holder is gone."""
    if isinstance(msg, M.Resume):
        return ErrorCode.RESUME_FAILED, "resume token invalid or expired"
    if msg.reservation is not None:
        return ErrorCode.RESERVATION_INVALID, "seat reservation invalid, expired or already used"
    return ErrorCode.UNKNOWN_ROOM, f"unknown room {msg.room!r}"


async def quiesce(sup: Supervisor) -> int:
    """Before a ``--handover`` stop of the machine: every live worker stops its handover
    receiver (``quiesce`` / ``quiesced`` on the control channel) and only then is any of them
    SIGTERMed, so no worker claims a room its stopping sibling offers (its players would be
    sent back to a port that no longer accepts). Returns how many confirmed in time."""
    answers = await sup.ask_all({"t": "quiesce"}, QUIESCE_TIMEOUT)
    ok = sum(1 for _, a in answers if a is not None)
    if ok < len(answers):
        log.warning("handover: %d of %d workers did not stop receiving in time",
                    len(answers) - ok, len(answers))
    return ok


async def rolling_restart(sup: Supervisor) -> int:
    """SIGHUP (with ``--redis --handover``): restart the workers one at a time. Each one in
    turn leaves the machine's routing (no new joins), is SIGTERMed and hands its rooms over
    through Redis (to its live siblings, or other nodes); its players get 4014 MOVED with the
    machine's URL and RESUME through the supervisor, which finds the receiving worker in the
    directory. When it has exited it is started again at once (a new node id) and the next
    one goes only after it is ready, so there is always a receiver. Returns how many were
    restarted; a stop cuts it short; a second SIGHUP meanwhile is ignored."""
    if sup.front is None or not sup.config.handover:
        log.warning("SIGHUP ignored: a rolling restart needs --redis and --handover")
        return 0
    if sup.rolling or sup.stopping:
        log.info("SIGHUP ignored: a rolling restart or a stop is under way")
        return 0
    sup.rolling = True
    done = 0
    log.info("rolling restart started workers=%d", len(sup.workers))
    try:
        for w in sup.workers:
            old = w.proc
            if sup.stopping or old is None or not w.ready:
                continue  # down (restarting on its own): nothing to hand over
            w.retiring = True
            sup.view.set_up(w.index, False)  # no new joins; its rooms are leaving
            with contextlib.suppress(ProcessLookupError):
                old.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + HANDOVER_STOP_TIMEOUT + RESTART_READY_TIMEOUT
            while not sup.stopping and not (w.proc is not old and w.ready):
                if time.monotonic() > deadline:
                    log.warning("rolling restart stopped: worker=%d not back in time", w.index)
                    return done
                await asyncio.sleep(0.05)
            if sup.stopping:
                break
            done += 1
    finally:
        sup.rolling = False
    log.info("rolling restart finished restarted=%d", done)
    return done
