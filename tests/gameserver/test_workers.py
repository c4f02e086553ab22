"""``gameserver --workers N``: one port, N worker processes, sockets handed over (SCM_RIGHTS).

End to end against the real processes (``python -m gameserver ... --workers 2``): joins by game
name spread over both workers and stream from each; a join by room id and a RESUME land on the
worker that holds the room; ``/rooms`` and ``/metrics`` cover the machine with worker labels;
a worker killed with SIGKILL gets its clients closed with 4015 within seconds, is restarted,
and they can join again; SIGTERM stops everything (1001, on_leave) and leaves no process
behind. In-process: the adopt seam (acceptor -> ``GameServer.adopt``) and the routing view.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gameserver.acceptor import Acceptor, Pending
from gameserver.machine import MachineView, merge_metrics, worker_of_room, worker_of_token
from gameserver.metrics import parse_text
from protocol import messages as M
from protocol.aio import connect

HERE = Path(__file__).parent
URL_LINE = re.compile(r"gameserver: serving (.+?) at (http://\S+) \(ws at (ws://\S+)\)")
READY = re.compile(r"worker ready worker=(\d+) pid=(\d+)")


@dataclass
class Cluster:
    proc: subprocess.Popen[str]
    http: str
    ws_url: str
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def pids(self) -> dict[int, int]:
        """worker index -> pid of its latest start (from the supervisor's log)."""
        return {int(w): int(p) for w, p in READY.findall(self.text())}

    def children(self) -> set[int]:
        """Live child pids of the supervisor (Linux /proc)."""
        out: set[int] = set()
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{self.proc.pid}/task"):
                data = Path(f"/proc/{self.proc.pid}/task/{task}/children").read_text()
                out.update(int(x) for x in data.split())
        return out

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.http + path.lstrip("/"), timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def rooms(self) -> list[dict[str, Any]]:
        status, body = self.get("/rooms")
        assert status == 200
        rooms: list[dict[str, Any]] = json.loads(body)
        return rooms


@contextlib.contextmanager
def cluster(tmp_path: Path, *extra: str, workers: str = "2") -> Iterator[Cluster]:
    env = dict(os.environ, PYTHONPATH=f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    log = tmp_path / "server.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gameserver", "serve", "conftest:Walker", "conftest:Chatty",
             "--workers", workers, "--port", "0", "--empty-room-ttl", "30", *extra],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    children: set[int] = set()
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = URL_LINE.search(line)
        assert m, f"no URL line: {line!r} {log.read_text()}"
        c = Cluster(proc, m.group(2), m.group(3), log)
        children = c.children()
        yield c
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for pid in children:  # never leave a worker behind, whatever the test did
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's zombie waits for init)."""
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def until(pred: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


async def join(kit: Any, url: str, **hello: Any) -> Any:
    c = kit.Client(await connect(url))
    c.start()
    hello.setdefault("name", "p")
    await c.hello(**hello)
    return c


def run(coro: Any) -> Any:
    from protocol.aio.loop import run as loop_run

    return loop_run(asyncio.wait_for(coro, 90))


# ------------------------------------------------------------------------------ processes

def test_spread_route_resume_and_aggregate(kit: Any, tmp_path: Path) -> None:
    with cluster(tmp_path) as cl:
        assert len(cl.children()) == 2

        async def main() -> None:
            # Walker rooms hold 4: six joins by game name fill worker 0's room, then the
            # least loaded worker (1) gets the next room.
            clients = [await join(kit, cl.ws_url, game="walker", name=f"p{i}")
                       for i in range(6)]
            rooms = [c.welcome.room for c in clients]
            assert [worker_of_room(r) for r in rooms] == [0, 0, 0, 0, 1, 1], rooms
            assert all(worker_of_token(c.welcome.resume) == worker_of_room(c.welcome.room)
                       for c in clients)
            # Each client streams its own room: ticks advance, its entity is in its replica.
            for c in clients:
                n = c.deltas
                await c.until(lambda c=c, n=n: c.deltas >= n + 5, timeout=10)
                assert c.delta_ticks == sorted(c.delta_ticks)
                c.position(c.welcome.entity)
            # Join by room id lands on the worker that holds it (else 4003 unknown room).
            on_w1 = await join(kit, cl.ws_url, room=rooms[4], name="byid")
            assert on_w1.welcome.room == rooms[4]
            await on_w1.until(lambda: on_w1.deltas >= 2)
            full = kit.Client(await connect(cl.ws_url))
            full.start()
            await full.send(M.Hello(room=rooms[0], name="late"))
            assert await full.closed(10) == 4002  # worker 0's room is full: its answer
            # RESUME after an abrupt drop lands on the right worker: same player and entity.
            w = on_w1.welcome
            on_w1.ws._transport.abort()
            back = kit.Client(await connect(cl.ws_url))
            back.start()
            await back.send(M.Resume(token=w.resume))
            again = await back.wait_welcome()
            assert (again.player, again.entity, again.room) == (w.player, w.entity, w.room)
            await back.until(lambda: back.full_snapshots >= 1 and back.deltas >= 3)
            # A RESUME with a made-up token for a live worker: that worker's 4005.
            bad = kit.Client(await connect(cl.ws_url))
            bad.start()
            await bad.send(M.Resume(token="w1.not-a-real-token-at-all"))
            assert await bad.closed(10) == 4005
            assert bad.errors and bad.errors[-1].code == 4005

            # /rooms and /metrics describe the machine (reports arrive within ~50 ms).
            def settled() -> bool:
                got = {(r["id"], r["worker"], r["players"]) for r in cl.rooms()}
                return got == {(rooms[0], 0, 4), (rooms[4], 1, 3)}
            await asyncio.to_thread(until, settled, 10, "/rooms to show both workers")
            status, body = await asyncio.to_thread(cl.get, "/metrics")
            assert status == 200
            vals = parse_text(body.decode())
            assert vals['gameserver_players{worker="0"}'] == 4
            assert vals['gameserver_players{worker="1"}'] == 3
            assert vals['gameserver_worker_up{worker="0"}'] == 1
            assert vals['gameserver_worker_up{worker="1"}'] == 1
            assert vals["gameserver_workers"] == 2
            assert vals['gameserver_handoffs_total{worker="1"}'] >= 4
            assert body.decode().count("# TYPE gameserver_players ") == 1
            status, body = await asyncio.to_thread(cl.get, "/healthz")
            assert (status, body) == (200, b"ok workers_up=2/2\n")
            status, _ = await asyncio.to_thread(cl.get, "/nope")
            assert status == 404
            # A worker that does not answer (stopped) is reported down, within the bound.
            pid1 = cl.pids()[1]
            os.kill(pid1, signal.SIGSTOP)
            try:
                t0 = time.monotonic()
                status, body = await asyncio.to_thread(cl.get, "/metrics")
                assert time.monotonic() - t0 < 5
                vals = parse_text(body.decode())
                assert vals['gameserver_worker_up{worker="1"}'] == 0
                assert vals['gameserver_worker_up{worker="0"}'] == 1
                assert 'gameserver_players{worker="1"}' not in vals
                assert {r["worker"] for r in await asyncio.to_thread(cl.rooms)} == {0}
            finally:
                os.kill(pid1, signal.SIGCONT)
            for c in [*clients, back]:
                await c.close()
        run(main())


def test_worker_crash_closes_its_clients_and_restarts(kit: Any, tmp_path: Path) -> None:
    with cluster(tmp_path) as cl:
        async def main() -> None:
            first = [await join(kit, cl.ws_url, game="walker", name=f"a{i}") for i in range(5)]
            victims = [c for c in first if worker_of_room(c.welcome.room) == 1]
            keep = [c for c in first if worker_of_room(c.welcome.room) == 0]
            assert len(victims) == 1 and len(keep) == 4
            old_pid = cl.pids()[1]
            t0 = time.monotonic()
            os.kill(old_pid, signal.SIGKILL)
            codes = [await v.closed(10) for v in victims]
            assert codes == [4015]
            assert time.monotonic() - t0 < 5  # at once, not after a keepalive timeout
            # The other worker's clients did not notice.
            for c in keep:
                n = c.deltas
                await c.until(lambda c=c, n=n: c.deltas >= n + 3, timeout=10)
                assert not c.ws.closed
            # The room is gone: RESUME with the old token is answered 4015 (its worker
            # restarted: join again; a client that saw 1006 learns it here), while down or
            # after the restart; the worker comes back with a new pid (named by its new tokens).
            token = victims[0].welcome.resume
            assert token.startswith(f"w1.{old_pid}.")  # worker 1, the process now dead
            await asyncio.to_thread(until, lambda: cl.pids().get(1, old_pid) != old_pid, 20,
                                    "worker 1 to be restarted")
            res = kit.Client(await connect(cl.ws_url))
            res.start()
            await res.send(M.Resume(token=token))
            assert await res.closed(10) == 4015
            assert res.errors and res.errors[-1].code == 4015
            # ...and the player can join again by game name: a new room on worker 1.
            rejoin = await join(kit, cl.ws_url, game="walker", name="again")
            assert worker_of_room(rejoin.welcome.room) == 1
            new_pid = cl.pids()[1]
            assert new_pid != old_pid and rejoin.welcome.resume.startswith(f"w1.{new_pid}.")
            await rejoin.until(lambda: rejoin.deltas >= 3)
            status, body = await asyncio.to_thread(cl.get, "/metrics")
            assert status == 200
            vals = parse_text(body.decode())
            assert vals['gameserver_worker_restarts_total{worker="1"}'] == 1
            assert vals['gameserver_worker_restarts_total{worker="0"}'] == 0
            for c in [*keep, rejoin]:
                await c.close()
        run(main())
        assert "worker exited worker=1" in cl.text()
        assert "Traceback" not in cl.text()


def test_sigterm_stops_every_worker_no_orphans(kit: Any, tmp_path: Path) -> None:
    with cluster(tmp_path) as cl:
        children = cl.children()
        assert len(children) == 2

        async def main() -> list[int | None]:
            cs = [await join(kit, cl.ws_url, game="walker", name=f"s{i}") for i in range(5)]
            cs.append(await join(kit, cl.ws_url, game="chatty", name="c"))
            assert {worker_of_room(c.welcome.room) for c in cs} == {0, 1}
            cl.proc.send_signal(signal.SIGTERM)
            return [await c.closed(10) for c in cs]
        codes = run(main())
        assert codes == [1001] * 6
        assert cl.proc.wait(15) == 0
        text = cl.text()
        assert text.count("reason=shutdown") == 5, text  # every walker player's on_leave
        assert "Traceback" not in text

        until(lambda: not any(alive(pid) for pid in children), 10,
              "worker processes to exit")


def test_workers_refuse_tls_and_bad_counts(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    for args, needle in (
            (["--workers", "2", "--tls-cert", str(cert), "--tls-key", str(cert)],
             "does not terminate TLS"),
            (["--workers", "0"], "--workers must be in 1..256"),
            (["--workers", "many"], "number or 'auto'")):
        r = subprocess.run([sys.executable, "-m", "gameserver", *args, "--port", "0"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and needle in r.stderr, (args, r.stderr)


# ------------------------------------------------------------------------------ in-process

def test_acceptor_hands_hello_to_an_adopting_server(kit: Any) -> None:
    """The seam without processes: the acceptor reads head + HELLO, the bytes and the socket
    go to a non-listening GameServer, which answers WELCOME and streams; a RESUME is routed
    the same way; a PING before HELLO is answered after the handoff; no-HELLO gets 4012."""
    from gameserver.config import ServerConfig
    from gameserver.server import GameServer

    async def main() -> None:
        server = GameServer(ServerConfig(games=kit.GAMES, port=0, seed=1, worker_id=3,
                                         hello_timeout=1.0), listen=False)
        await server.start()
        routed: list[Any] = []
        adopting: set[asyncio.Task[Any]] = set()
        loop = asyncio.get_running_loop()
        lsock = socket.create_server(("127.0.0.1", 0))

        async def http(req: Any) -> bytes:
            return b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"

        tamper: list[bool] = [False]

        def route(p: Pending, msg: Any) -> None:
            routed.append(msg)
            response = b"HTTP/1.1 101 Other\r\n\r\n" if tamper[0] else p.response
            assert response.startswith(b"HTTP/1.1 101")
            sock, initial = p.detach()
            task = loop.create_task(server.adopt(sock, initial, upgraded=response))
            adopting.add(task)
            task.add_done_callback(adopting.discard)

        from protocol.messages import SUBPROTOCOL

        acc = Acceptor(loop, lsock, on_http=http, on_route=route, hello_timeout=1.0,
                       subprotocols=(SUBPROTOCOL,))
        acc.start()
        url = f"ws://127.0.0.1:{lsock.getsockname()[1]}/ws"
        try:
            c = kit.Client(await connect(url, subprotocols=[SUBPROTOCOL]))
            assert c.ws.subprotocol == SUBPROTOCOL
            c.start()
            await c.send(M.Ping(7))
            w = await c.hello(game="walker", name="adopted")
            assert w.room.endswith("-w3-1") and w.resume.startswith("w3.")
            await c.until(lambda: c.deltas >= 3 and len(c.pongs) == 1)
            assert isinstance(routed[0], M.Hello) and routed[0].name == "adopted"
            c.ws._transport.abort()
            r = kit.Client(await connect(url))
            r.start()
            await r.send(M.Resume(token=w.resume))
            assert (await r.wait_welcome()).player == w.player
            assert isinstance(routed[1], M.Resume)
            silent = kit.Client(await connect(url))
            silent.start()
            assert await silent.closed(5) == 4012
            # Settings that differ between acceptor and server (a different 101): dropped.
            tamper[0] = True
            odd = kit.Client(await connect(url))
            odd.start()
            await odd.send(M.Hello(game="walker", name="odd"))
            assert await odd.closed(5) == 1006 and odd.welcome is None
            await r.close()
        finally:
            acc.close()
            await server.stop(timeout=2)
    run(main())


def test_machine_view_and_metrics_merge() -> None:
    assert worker_of_room("walker-w12-3") == 12 and worker_of_room("walker-3") is None
    assert worker_of_token("w1.abc") == 1 and worker_of_token("abc") is None
    # resume tokens name the worker and its process: w<i>.<pid>.<token>
    from gameserver.machine import token_process
    assert worker_of_token("w1.4711.a-b_c") == 1 and token_process("w1.4711.a-b_c") == 4711
    assert token_process("w1.abc") is None and token_process("abc") is None
    assert token_process("w1.12abc") is None  # digits not followed by "." are the token
    v = MachineView(2, {"walker": 2})
    v.set_up(0, True)
    v.set_up(1, True)
    # Burst of joins before any report: fill the announced room, then the other worker.
    assert [v.choose_for_game("walker", i) for i in range(1, 6)] == [0, 0, 1, 1, 0]
    # A report that predates handoffs 2 and 5 (applied=1): they are counted on top of it,
    # so worker 0's room is full (1 reported + 1) and handoff 5's new room stays announced.
    v.report(0, [{"id": "walker-w0-1", "game": "walker", "players": 1, "capacity": 2}], 1)
    assert [(r["id"], r["players"]) for r in v.rooms() if r["worker"] == 0] == \
        [("walker-w0-1", 2)]
    assert v.workers[0].players == 3
    v.report(0, [{"id": "walker-w0-1", "game": "walker", "players": 1, "capacity": 2}])
    v.report(1, [])
    assert v.choose_for_game("walker", 6) == 0        # the free seat first
    assert v.choose_for_game("walker", 7) == 1        # then the least loaded worker
    v.set_up(0, False)
    assert v.least_loaded() == 1 and v.rooms() == []
    text = merge_metrics([
        ("0", "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n"
              "# HELP s S.\n# TYPE s summary\ns{quantile=\"0.5\"} 2\n"),
        ("1", "# HELP a_total A.\n# TYPE a_total counter\na_total 3\n")])
    assert text.count("# TYPE a_total counter") == 1
    assert parse_text(text) == {'a_total{worker="0"}': 1, 'a_total{worker="1"}': 3,
                                's{worker="0",quantile="0.5"}': 2}
    assert text.index('a_total{worker="1"}') < text.index("# HELP s ")


@pytest.mark.parametrize("value,expected", [("1", 1), ("3", 3), ("auto", os.cpu_count() or 1)])
def test_parse_workers(value: str, expected: int) -> None:
    from gameserver.cli import parse_workers

    assert parse_workers(value) == expected


def test_supervisor_answers_bad_input_like_a_single_process(kit: Any, tmp_path: Path) -> None:
    """Malformed handshakes get their HTTP status from the supervisor; a text message or a
    garbage game message before HELLO reaches a worker, which answers ERROR as usual."""
    with cluster(tmp_path) as cl:
        port = int(cl.http.rsplit(":", 1)[1].strip("/"))

        def raw(data: bytes) -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(data)
                out = b""
                while chunk := s.recv(4096):
                    out += chunk
                return out
        assert raw(b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400")
        assert raw(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 426")
        assert raw(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade"
                   b"\r\nSec-WebSocket-Version: 13\r\n\r\n").startswith(b"HTTP/1.1 400")
        assert raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").endswith(b"ok workers_up=2/2\n")

        async def main() -> None:
            c = kit.Client(await connect(cl.ws_url))
            c.start()
            await c.ws.send("hello as text")
            await c.until(lambda: len(c.errors) == 1)
            assert c.errors[0].code == 1
            await c.ws.send(b"\xc1garbage")
            await c.until(lambda: len(c.errors) == 2)
            w = await c.hello(game="walker", name="after")  # still served by that worker
            assert worker_of_room(w.room) in (0, 1)
            await c.close()
            # A peer that closes before HELLO gets its close echoed by the supervisor.
            q = await connect(cl.ws_url)
            await asyncio.wait_for(q.close(), 5)
            assert q.close_code == 1000
        run(main())
        assert "Traceback" not in cl.text()


def test_workers_stop_when_the_supervisor_is_killed(kit: Any, tmp_path: Path) -> None:
    """SIGKILL to the supervisor: its workers see the control channel end, close their
    clients with 1001 and exit by themselves (no orphan keeps the rooms or the sockets)."""
    with cluster(tmp_path) as cl:
        children = cl.children()
        assert len(children) == 2

        async def main() -> int | None:
            c = await join(kit, cl.ws_url, game="walker", name="orphan?")
            cl.proc.kill()
            return await c.closed(10)
        assert run(main()) == 1001
        cl.proc.wait(10)

        until(lambda: not any(alive(pid) for pid in children), 15,
              "workers to exit after the supervisor died")


def test_sdk_bots_play_across_two_workers(tmp_path: Path) -> None:
    """The real SDK (``python -m clients.bots``: GameClient, inputs, acks) against
    ``--workers 2``: every bot joins, streams and sends inputs; both workers hold rooms."""
    with cluster(tmp_path) as cl:
        out = tmp_path / "bots.json"
        env = dict(os.environ, PYTHONPATH=str(HERE.parent.parent))
        res = subprocess.run(
            [sys.executable, "-m", "clients.bots", cl.ws_url, "--game", "walker", "--count",
             "10", "--duration", "3", "--behavior", "random", "--input-every", "1",
             "--quiet", "--json", str(out)],
            env=env, capture_output=True, text=True, timeout=90)
        assert res.returncode == 0, res.stderr
        report = json.loads(out.read_text())
        assert report["bots"] == 10 and report["connects"] == 10 and report["failures"] == 0
        assert report["ticks_received"] > 10 * 20 and report["inputs"] > 0
        handed = parse_text(cl.get("/metrics")[1].decode())
        assert handed['gameserver_handoffs_total{worker="0"}'] >= 4
        assert handed['gameserver_handoffs_total{worker="1"}'] >= 4  # 10 players, rooms of 4


def test_prefix_and_drain_under_workers(kit: Any, tmp_path: Path) -> None:
    """``--path-prefix`` and ``--drain-seconds`` hold with workers: the game lives under the
    prefix; after SIGTERM /readyz and new game upgrades answer 503 during the drain while
    joined players keep streaming, then they get 1001 and the process exits 0."""
    with cluster(tmp_path, "--path-prefix", "/game", "--drain-seconds", "2") as cl:
        assert cl.ws_url.endswith("/game/ws") and cl.http.endswith("/game/")
        port = int(cl.http.split(":")[2].split("/")[0])
        root = f"http://127.0.0.1:{port}"

        def status(url: str) -> int:
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    return int(r.status)
            except urllib.error.HTTPError as e:
                return int(e.code)

        async def main() -> None:
            c = await join(kit, cl.ws_url, game="walker", name="pre")
            assert await asyncio.to_thread(status, root + "/game/rooms") == 200
            assert await asyncio.to_thread(status, root + "/readyz") == 200
            cl.proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(until, lambda: status(root + "/readyz") == 503, 5,
                                    "/readyz 503 while draining")
            with pytest.raises(Exception, match="503"):
                await connect(cl.ws_url)
            n = c.deltas
            await c.until(lambda: c.deltas >= n + 5)  # still streaming during the drain
            assert await c.closed(10) == 1001
        run(main())
        assert cl.proc.wait(15) == 0
