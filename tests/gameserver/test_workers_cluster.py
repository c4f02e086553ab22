"""``gameserver --workers 2 --redis URL``: every worker a cluster node behind one port.

Real processes (the supervisor and its workers, see test_workers.py) plus an in-process
single node on the same test Redis: joins by game name fill both workers and their rooms
are in the directory under nodes ``<machine>-w0`` / ``-w1`` with the machine's URL; a join
by room id through the other node is redirected (4013) to the machine and reaches the worker
that holds the room, and the other way round; a RESUME of another node's token through the
machine gets 4013; a room handed over by the other node (SIGTERM with --handover) lands on a
worker and its players RESUME through the supervisor (their token names no worker of ours:
the supervisor's directory lookup finds the holder); /matchmake on the supervisor reserves
in the cluster, the reservation is honoured on its worker, a forged or used one gets 4017.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from cluster_kit import http
from test_workers import cluster, join, run

from clients.client import Backoff, GameClient
from gameserver.config import ServerConfig
from gameserver.machine import worker_of_room, worker_of_token
from gameserver.server import GameServer
from protocol import messages as M
from protocol.aio import connect


async def _refused(kit: Any, url: str, msg: Any) -> tuple[int | None, M.Error | None]:
    c = kit.Client(await connect(url))
    c.start()
    await c.send(msg)
    code = await c.closed(10)
    return code, (c.errors[-1] if c.errors else None)


def _machine_of(room: str) -> str:
    """``walker-<machine>-w<i>-<n>`` -> machine."""
    game, machine, w, _ = room.split("-")
    assert game == "walker" and w.startswith("w"), room
    return machine


def test_workers_are_nodes_and_route_across_nodes(kit: Any, tmp_path: Path,
                                                  redis_url: str) -> None:
    with cluster(tmp_path, "--redis", redis_url) as cl:
        async def main() -> None:
            other = GameServer(ServerConfig(games=kit.GAMES, port=0, seed=3,
                                            redis_url=redis_url, handover=True))
            await other.start()
            clients: list[Any] = []
            gcs: list[GameClient] = []
            try:
                # Walker rooms hold 4: six joins by game name fill worker 0, then worker 1.
                clients = [await join(kit, cl.ws_url, game="walker", name=f"p{i}")
                           for i in range(6)]
                rooms = [c.welcome.room for c in clients]
                assert [worker_of_room(r) for r in rooms] == [0, 0, 0, 0, 1, 1], rooms
                machine = _machine_of(rooms[0])
                assert rooms[0].startswith(f"walker-{machine}-w0-")
                assert rooms[4].startswith(f"walker-{machine}-w1-")
                assert all(worker_of_token(c.welcome.resume) == worker_of_room(c.welcome.room)
                           for c in clients)

                # The directory: each worker is a node with the machine's url.
                async def listed() -> dict[str, Any]:
                    _, body = await http(other.port, "/rooms?scope=cluster")
                    return {r["id"]: r for r in body} if isinstance(body, list) else {}
                deadline = asyncio.get_running_loop().time() + 10
                while not {rooms[0], rooms[4]} <= set(got := await listed()):
                    assert asyncio.get_running_loop().time() < deadline, got
                    await asyncio.sleep(0.1)
                assert (got[rooms[0]]["node"], got[rooms[0]]["url"]) == \
                    (f"{machine}-w0", cl.ws_url)
                assert (got[rooms[4]]["node"], got[rooms[4]]["worker"]) == (f"{machine}-w1", 1)
                # the supervisor answers the cluster-wide list too
                _, mine = await asyncio.to_thread(cl.get, "/rooms?scope=cluster")
                assert {rooms[0], rooms[4]} <= {r["id"] for r in json.loads(mine)}

                # By room id through the other node: 4013 to the machine, then worker 1.
                via = GameClient(other.ws_url, game="walker", room=rooms[4], name="via")
                gcs.append(via)
                await via.connect()
                assert (via.room, via.url, via.stats.redirects) == (rooms[4], cl.ws_url, 1)
                # The other node's room by id through the machine: 4013 there.
                o = await join(kit, other.ws_url, game="walker", name="o")
                clients.append(o)
                back = GameClient(cl.ws_url, game="walker", room=o.welcome.room, name="b")
                gcs.append(back)
                await back.connect()
                assert (back.room, back.url) == (o.welcome.room, other.ws_url)
                # Its resume token through the machine: 4013 with the other node's url.
                code, err = await _refused(kit, cl.ws_url, M.Resume(token=o.welcome.resume))
                assert code == 4013 and err is not None and err.url == other.ws_url
                # Unknown ids and tokens: the single-node refusals, no redirect (no loop).
                for msg, want in ((M.Hello(room=f"walker-{machine}-w1-99", name="x"), 4003),
                                  (M.Hello(room="walker-nosuchnode-7", name="x"), 4003),
                                  (M.Resume(token="w1.not-a-real-token-at-all"), 4005),
                                  (M.Resume(token="forged"), 4005)):
                    assert (await _refused(kit, cl.ws_url, msg))[0] == want, msg

                # The other node hands its room over (SIGTERM with --handover): a worker
                # restores it; its players get 4014 with the machine's url and RESUME here
                # with a token that names no worker of ours.
                mover = GameClient(other.ws_url, game="walker", room=o.welcome.room,
                                   name="mover", backoff=Backoff(base=0.05, cap=0.3,
                                                                 max_attempts=6))
                gcs.append(mover)
                await mover.connect()
                before = (mover.player, mover.entity, mover.room)
                assert worker_of_token(mover.resume_token or "") is None
                await other.stop(timeout=2)
                deadline = asyncio.get_running_loop().time() + 20
                while not (mover.connected and mover.url == cl.ws_url):
                    assert asyncio.get_running_loop().time() < deadline, mover.url
                    await asyncio.sleep(0.05)
                assert (mover.player, mover.entity, mover.room) == before
                holder = [r["worker"] for r in cl.rooms() if r["id"] == before[2]]
                assert len(holder) == 1, cl.rooms()
                # Dropped again: RESUME through the supervisor finds the same worker.
                tick = mover.server_tick
                assert mover._ws is not None
                mover._ws._transport.abort()
                deadline = asyncio.get_running_loop().time() + 20
                while not (mover.connected and mover.server_tick > tick + 3):
                    assert asyncio.get_running_loop().time() < deadline
                    await asyncio.sleep(0.05)
                assert (mover.player, mover.entity, mover.room) == before
            finally:
                for g in gcs:
                    await g.close()
                for c in clients:
                    await c.close()
                await other.stop(timeout=2)
        run(main())
        text = cl.text()
        assert "Traceback" not in text, text


def test_matchmake_on_the_supervisor_with_redis(kit: Any, tmp_path: Path,
                                                redis_url: str) -> None:
    with cluster(tmp_path, "--redis", redis_url) as cl:
        async def main() -> None:
            def mm() -> tuple[int, dict[str, Any]]:
                status, body = cl.get("/matchmake?game=walker")
                return status, json.loads(body)
            status, r = await asyncio.to_thread(mm)
            assert status == 200, r
            machine = r["node"].rsplit("-w", 1)[0]
            w = int(r["node"].rsplit("-w", 1)[1])
            assert r["url"] == cl.ws_url and worker_of_room(r["room"]) == w
            assert r["room"].startswith(f"walker-{machine}-w{w}-m")
            a = await join(kit, cl.ws_url, reservation=r["reservation"], name="a")
            assert a.welcome.room == r["room"] and worker_of_room(a.welcome.room) == w
            # three more fill that room; the next reservation opens a room elsewhere
            more = [await asyncio.to_thread(mm) for _ in range(3)]
            assert all(s == 200 and x["room"] == r["room"] for s, x in more), more
            seated = [await join(kit, cl.ws_url, reservation=x["reservation"], name=f"r{i}")
                      for i, (_, x) in enumerate(more)]
            assert all(c.welcome.room == r["room"] for c in seated)
            status, nxt = await asyncio.to_thread(mm)
            assert status == 200 and nxt["room"] != r["room"], nxt
            # used, forged: 4017 (never someone else's seat)
            for tok in (r["reservation"], "forged-token-forged-token", "w0.forged"):
                code, _ = await _refused(kit, cl.ws_url,
                                         M.Hello(game="walker", reservation=tok, name="x"))
                assert code == 4017, tok
            status, _ = await asyncio.to_thread(cl.get, "/matchmake?game=nosuchgame")
            assert status == 404
            for c in [a, *seated]:
                await c.close()
            # the supervisor's own Redis lookups are in /metrics (worker="supervisor")
            _, body = await asyncio.to_thread(cl.get, "/metrics")
            assert 'gameserver_redis_round_trips_total{worker="supervisor",op="front_locate"}' \
                in body.decode()
        run(main())
        assert "Traceback" not in cl.text()



def test_worker_is_the_named_node_and_quiesces(kit: Any, redis_url: str) -> None:
    """In-process worker (the control + handoff socket pairs of a real one): it joins the
    cluster as the node the supervisor names, its room ids read <game>-<machine>-w<i>-<n>,
    and ``quiesce`` stops its handover receiver (heartbeat key gone) before ``quiesced``."""
    import socket

    from cluster_kit import raw_redis

    from gameserver.control import Channel
    from gameserver.handover.transfer import ALIVE
    from gameserver.supervisor_cluster import ClusterRouter, worker_node
    from gameserver.worker import WorkerProcess, parse_worker_spec

    assert parse_worker_spec("1,5,6") == (1, 5, 6, None)
    assert parse_worker_spec("1,5,6,ab12cd34-w1") == (1, 5, 6, "ab12cd34-w1")
    front = ClusterRouter(redis_url, "ab12cd34", 2)
    assert [front.worker_of_node(n) for n in ("ab12cd34-w1", "ab12cd34-w2", "other-w1",
                                              "ab12cd34", None)] == [1, None, None, None, None]
    assert front.made_by("walker-ab12cd34-w0-3") == 0
    assert front.made_by("walker-ab12cd34-w0-mab12cd") == 0
    assert front.made_by("walker-ff12cd34-w0-3") is None
    front.nodes[0] = worker_node("ab12cd34", 0, 2)  # restarted twice: a new node
    assert front.nodes[0] == "ab12cd34.2-w0" and front.worker_of_node("ab12cd34.2-w0") == 0
    assert front.made_by("walker-ab12cd34-w0-3") is None  # its previous incarnation's
    assert front.made_by("walker-ab12cd34.2-w0-3") == 0
    assert front.worker_of_node("ab12cd34-w0") is None

    async def main() -> None:
        ctl_a, ctl_b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ho_a, ho_b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cfg = ServerConfig(games=kit.GAMES, port=0, seed=1, redis_url=redis_url,
                           handover=True)
        wp = WorkerProcess(cfg, 1, ctl_b.detach(), ho_b.detach(), "ab12cd34-w1")
        task = asyncio.get_running_loop().create_task(wp.run())
        ch = await Channel.open(ctl_a)
        r = raw_redis(redis_url)
        try:
            assert (await asyncio.wait_for(ch.recv(), 10) or {}).get("t") == "ready"
            assert wp.server.cluster.node_id == "ab12cd34-w1"
            room = wp.server.rooms.create_room("walker")
            assert room.id == "walker-ab12cd34-w1-1" and worker_of_room(room.id) == 1
            room.shutdown()  # nothing to hand over when it stops
            wp.server.rooms.remove_room(room)
            agent = wp.server.handover
            deadline = asyncio.get_running_loop().time() + 10
            while not await r.exists(ALIVE + agent.node_id):  # its receiver heartbeat
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
            ch.send({"t": "quiesce", "id": 7})
            while True:
                msg = await asyncio.wait_for(ch.recv(), 15) or {}
                if msg.get("t") == "quiesced":
                    break
            assert msg["id"] == 7 and agent._stopping
            assert not await r.exists(ALIVE + agent.node_id)
        finally:
            ho_a.close()  # the supervisor is gone: the worker stops
            await asyncio.wait_for(task, 20)
            ch.close()
            await r.aclose()
            await front.close()
    run(main())


def test_router_asks_again_while_the_holder_is_not_serving(redis_url: str) -> None:
    """A RESUME whose index entry still names a worker that is handing its rooms over (a
    rolling restart): the router looks again until the receiving sibling's entry lands, and
    refuses (4005) only if it never does; another machine's node -> the worker the token
    names (it answers 4013); Redis down -> that worker too (it answers 4018)."""
    from types import SimpleNamespace

    from cluster_kit import raw_redis

    from gameserver.cluster import keys as K
    from gameserver.machine import MachineView
    from gameserver.supervisor_cluster import ClusterRouter

    class P:
        settled = False
        refused: tuple[int, str] | None = None

        def refuse(self, code: int, why: str) -> None:
            self.refused = (int(code), why)

    async def main() -> None:
        front = ClusterRouter(redis_url, "ab12cd34", 2)
        view = MachineView(2, {"walker": 4})
        view.set_up(0, False)  # retiring
        view.set_up(1, True)
        handed: list[int] = []
        sup = SimpleNamespace(view=view, stopping=False, workers=[
            SimpleNamespace(index=i, retiring=False, proc=SimpleNamespace(pid=100 + i))
            for i in range(2)],
            _handoff=lambda w, p, cid: handed.append(w.index))
        r = raw_redis(redis_url)
        try:
            await r.set(K.tok_key("w0.tok"), "ab12cd34-w0")
            loop = asyncio.get_running_loop()
            loop.call_later(0.2, lambda: loop.create_task(
                r.set(K.tok_key("w0.tok"), "ab12cd34-w1")))
            await front._route_later(sup, P(), M.Resume(token="w0.tok"), 1)  # type: ignore
            assert handed == [1]
            await r.set(K.tok_key("w0.gone"), "ab12cd34-w0")  # never updated: 4005
            p = P()
            await front._route_later(sup, p, M.Resume(token="w0.gone"), 2)  # type: ignore
            assert handed == [1] and p.refused is not None and p.refused[0] == 4005
            sup.workers[0].retiring = True  # still handing its rooms over: retryable 1013
            p = P()
            await front._route_later(sup, p, M.Resume(token="w0.gone"), 2)  # type: ignore
            assert handed == [1] and p.refused is not None and p.refused[0] == 1013
            # from here worker 0 is up and the least loaded: a token routed to the worker it
            # names (1) cannot be mistaken for the least-loaded fallback
            sup.workers[0].retiring = False
            view.set_up(0, True)
            view.report(1, [{"id": "x", "game": "walker", "players": 3, "capacity": 4}])
            assert view.least_loaded() == 0
            await r.set(K.tok_key("w1.far"), "ff00ff00-w0")  # another machine's
            await front._route_later(sup, P(), M.Resume(token="w1.far"), 3)  # type: ignore
            assert handed == [1, 1]
            # in no index, issued by worker 1's live process: it answers (e.g. a fresh token)
            await front._route_later(sup, P(), M.Resume(token="w1.101.fresh"), 5)  # type: ignore
            assert handed == [1, 1, 1]
            # ...issued by a process that died (restarted worker) or by a dead incarnation's
            # node: 4015 (join again), as without --redis
            await r.set(K.tok_key("w1.99.dead"), "ab12cd34-w1")  # w1 is now ab12cd34.1-w1
            front.nodes[1] = "ab12cd34.1-w1"
            for tok in ("w1.99.dead", "w1.98.unindexed"):
                p = P()
                await front._route_later(sup, p, M.Resume(token=tok), 6)  # type: ignore
                assert p.refused is not None and p.refused[0] == 4015, tok
            front.nodes[1] = "ab12cd34-w1"
            handed[:] = [1, 1]
            await front.link.close()  # Redis unreachable for the router: the named worker
            await front._route_later(sup, P(), M.Resume(token="w1.x"), 4)  # type: ignore
            assert handed == [1, 1, 1]
        finally:
            await r.aclose()
    run(main())


def test_crashed_worker_keeps_4015_and_comes_back_as_a_new_node(
        kit: Any, tmp_path: Path, redis_url: str) -> None:
    """SIGKILL to a worker of a --redis machine: its players get 4015 at once (no handover),
    a RESUME with the dead process's token gets 4015 too (its index entry names the dead
    incarnation's node, its ``w1.<pid>.`` the dead process: join again), and the restarted
    worker is a new node whose rooms say so."""
    import os
    import signal

    from test_workers import until as until_sync

    with cluster(tmp_path, "--redis", redis_url) as cl:
        async def main() -> None:
            cs = [await join(kit, cl.ws_url, game="walker", name=f"k{i}") for i in range(5)]
            victim = next(c for c in cs if worker_of_room(c.welcome.room) == 1)
            machine = _machine_of(victim.welcome.room)
            await asyncio.sleep(1.2)  # the token index entry is written (asynchronously)
            old_pid = cl.pids()[1]
            os.kill(old_pid, signal.SIGKILL)
            assert await victim.closed(10) == 4015
            await asyncio.to_thread(until_sync, lambda: cl.pids().get(1, old_pid) != old_pid,
                                    20, "worker 1 to be restarted")
            code, _ = await _refused(kit, cl.ws_url, M.Resume(token=victim.welcome.resume))
            assert code == 4015
            again = await join(kit, cl.ws_url, game="walker", name="again")
            assert again.welcome.room.startswith(f"walker-{machine}.1-w1-"), again.welcome.room
            await again.until(lambda: again.deltas >= 3)
            for c in [*cs, again]:
                if c is not victim:
                    await c.close()
        run(main())
        assert "Traceback" not in cl.text()
