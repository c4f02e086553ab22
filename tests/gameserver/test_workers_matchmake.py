"""``GET /matchmake`` on a ``--workers 2`` server (real processes, see test_workers.py).

The supervisor picks the worker, that worker reserves the seat; the token names it (``w<i>.``)
so the HELLO carrying it is routed there and seats the player in the reserved room; the seat
is held against joins by game name; forged tokens get 4017; unknown game -> 404 as a single
process; new rooms spread over both workers; a worker that does not answer -> 503 JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

from test_workers import cluster, join, run

from gameserver.machine import worker_of_room, worker_of_token
from protocol import messages as M
from protocol.aio import connect


def _mm(cl: Any, game: str) -> tuple[int, dict[str, Any]]:
    status, body = cl.get(f"/matchmake?game={game}")
    return status, json.loads(body)


def test_matchmake_reserve_route_hold_spread(kit: Any, tmp_path: Path) -> None:
    with cluster(tmp_path) as cl:
        async def main() -> None:
            # Walker rooms hold 4. One reservation, then a HELLO with it: the reserved room,
            # on the worker the token names.
            status, r = await asyncio.to_thread(_mm, cl, "walker")
            assert status == 200, r
            w = worker_of_token(r["reservation"])
            assert w is not None and worker_of_room(r["room"]) == w
            assert r["url"] == cl.ws_url
            a = await join(kit, r["url"], game="walker", reservation=r["reservation"])
            assert a.welcome.room == r["room"]
            assert worker_of_room(a.welcome.room) == w
            # three more reservations fill that room (4 seats); a join by game name then
            # cannot take a held seat: it lands in another room
            more = [await asyncio.to_thread(_mm, cl, "walker") for _ in range(3)]
            assert all(s == 200 and x["room"] == r["room"] for s, x in more), more
            other = await join(kit, cl.ws_url, game="walker", name="plain")
            assert other.welcome.room != r["room"]
            seated = [await join(kit, cl.ws_url, reservation=x["reservation"], name=f"r{i}")
                      for i, (_, x) in enumerate(more)]
            assert all(c.welcome.room == r["room"] for c in seated)
            # a used token, a forged one with and without a worker prefix: 4017
            for tok in (r["reservation"], "w0.forged-token-forged-token", "nope", "w7.x"):
                bad = kit.Client(await connect(cl.ws_url))
                bad.start()
                await bad.send(M.Hello(game="walker", reservation=tok, name="x"))
                assert await bad.closed(10) == 4017, tok
            # unknown game: the single-process status (404); missing game: 400
            status, _ = await asyncio.to_thread(_mm, cl, "nosuchgame")
            assert status == 404
            status, _ = await asyncio.to_thread(cl.get, "/matchmake")
            assert status == 400
            # new rooms spread: reservations fill a room, then the least loaded worker gets one
            rooms = [(await asyncio.to_thread(_mm, cl, "walker"))[1]["room"]
                     for _ in range(8)]
            assert {worker_of_room(x) for x in rooms} == {0, 1}, rooms
            for c in [a, other, *seated]:
                await c.close()

        run(main())
        # a worker that does not answer: 503 with a JSON error (then it goes on)
        pids = cl.pids()
        for pid in pids.values():
            os.kill(pid, signal.SIGSTOP)
        try:
            status, body = cl.get("/matchmake?game=walker")
            assert status == 503 and "error" in json.loads(body)
        finally:
            for pid in pids.values():
                os.kill(pid, signal.SIGCONT)


def test_view_counts_reservations_and_names_matchmade_rooms() -> None:
    from gameserver.machine import MachineView

    assert worker_of_room("walker-w1-m0a1b2c") == 1
    assert worker_of_room("walker-node-w3-m0a1b2c") == 3
    assert worker_of_room("walker-mab12cd") is None  # a single process's: no worker
    view = MachineView(2, {"walker": 2})
    view.set_up(0, True)
    view.set_up(1, True)
    assert view.pick_for_game("walker") == 0
    view.reserved(0, "walker")  # counted until the next report
    assert view.pick_for_game("walker") == 0  # the announced room has a free seat
    view.reserved(0, "walker")
    assert view.pick_for_game("walker") == 1  # full: the least loaded worker
    # the worker's report counts held seats as players: the room stays full
    view.report(0, [{"id": "walker-w0-m1", "game": "walker", "players": 2, "capacity": 2}])
    assert view.pick_for_game("walker") == 1
    view.set_up(1, False)
    assert view.pick_for_game("walker") == 0
