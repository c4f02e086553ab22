"""``bench_cluster.py --part directory``: what the Redis directory costs (issue 10).

Setup, in ONE run: a private ``redis-server`` (its own process, no persistence), and in this
process (uvloop) three game servers: ``single`` (no ``--redis``) and cluster nodes ``A`` and
``B`` sharing that Redis. The game is a trivial one (a dot per player, 1,000 seats per room) so
that what is measured is the join path, not a game. Clients are raw protocol clients in the
same process (``protocol.aio.connect`` + ``protocol.messages``).

1. **Joins, side by side** (interleaved: every round runs each variant once, in a rotating
   order, so load spikes on the shared box hit all of them alike). Latency = connect +
   HELLO until WELCOME (plus the HTTP GET for the matchmade variants; plus the refused first
   connection for the redirect), p50 / p90 / p99 in ms; the player leaves right after (not
   timed).
   Variants: ``single`` join by game name; ``cluster`` the same on node A (Redis is not on
   that path: the token write is asynchronous); ``matchmake single`` and ``matchmake
   cluster`` (GET /matchmake, then HELLO with the reservation at the returned url);
   ``by id direct`` (HELLO room=<B's room> at B) and ``by id redirected`` (the same HELLO at
   A: ERROR 4013, then again at B).
2. **Round trips and commands per join** (the join and its LEAVE: the token is written when
   the player is seated and deleted when it leaves): the nodes' own counter
   (``gameserver_redis_round_trips_total``: a pipeline or script is one) and Redis'
   ``INFO commandstats`` (commands executed, a script counts its inner commands too) before
   and after each variant's joins. For this part the periodic sync is slowed down (period and
   TTLs raised) so that only what the joins cause is counted; the per-room steady cost is
   measured on its own in part 3.
3. **Steady state per room**: node A alone with R = 0, 10, 100 rooms for ``--window`` s at the
   real 1 s sync period: round trips / s of the node, sync passes / s (a pass starts 1 s
   after the previous one ended, so a busy loop does fewer), Redis commands per pass and / s,
   per room (minus the 0-room baseline: presence).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from gameserver.cluster import keys as K
from gameserver.config import ServerConfig
from gameserver.inputs import I, InputSchema
from gameserver.rules import Game, Player
from gameserver.schema import F
from gameserver.server import GameServer
from protocol import messages as M
from protocol.aio import connect
from protocol.errors import ConnectionClosed


class Dot(Game):
    """One dot per player; nothing moves (the join path is what is measured)."""

    name = "dot"
    fields = {"x": F.float32(quant=0.01, lo=0, hi=100)}
    inputs = InputSchema({"dx": I.float32(-1, 1)})
    max_players = 1000
    tick_rate = 30

    def on_join(self, player: Player, hello: Any) -> None:
        player.entity = int(self.world.spawn(1, x=1.0)[0])


async def _welcome(url: str, hello: M.Hello) -> tuple[Any, Any]:
    """Connect, send HELLO, return (ws, first reply: Welcome or Error)."""
    ws = await connect(url)
    await ws.send(M.encode(hello))
    while True:
        m = M.decode_server(await ws.recv())  # type: ignore[arg-type]
        if isinstance(m, M.Welcome | M.Error):
            return ws, m


async def _leave(ws: Any) -> None:
    try:
        await ws.send(M.encode(M.Leave()))
        await asyncio.wait_for(ws.wait_closed(), 5)
    except (ConnectionClosed, TimeoutError):
        pass


async def _http_json(port: int, path: str) -> Any:
    import json

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return json.loads(raw.partition(b"\r\n\r\n")[2])


def _round_trips(*servers: GameServer) -> float:
    total = 0.0
    for s in servers:
        m = s.metrics.registry.get("gameserver_redis_round_trips_total")
        total += sum(c.value for c in m._children.values())  # type: ignore[attr-defined]
    return total


async def _commands(r: Any) -> int:
    stats = await r.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items()
               if k.startswith("cmdstat_") and k != "cmdstat_info")


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s)) - 1))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import redis.asyncio as aioredis
    from redis_server import start_redis

    rs = start_redis()
    r = aioredis.Redis.from_url(rs.url, decode_responses=True)
    servers: list[GameServer] = []
    saved = (K.SYNC_PERIOD, K.NODE_TTL_MS, K.ROOM_TTL_MS)
    try:
        base: dict[str, Any] = {"games": {"dot": Dot}, "host": "127.0.0.1", "port": 0,
                                "empty_room_ttl": 600.0, "static_root": None}
        single = GameServer(ServerConfig(**base))
        # Part 2 counts only what joins cause: the periodic pass is slowed down (TTLs
        # raised with it so nothing expires meanwhile); part 3 restores the real values.
        K.SYNC_PERIOD, K.NODE_TTL_MS, K.ROOM_TTL_MS = 3600.0, 3_600_000, 3_600_000
        a = GameServer(ServerConfig(**base, redis_url=rs.url))
        b = GameServer(ServerConfig(**base, redis_url=rs.url))
        servers = [single, a, b]
        for s in servers:
            await s.start()
        await _until(lambda: a.cluster.directory.syncs >= 1 and b.cluster.directory.syncs >= 1)
        # A room on B for the by-id variants (kept alive by one seated player).
        keeper, w = await _welcome(b.ws_url, M.Hello(game="dot", name="keeper"))
        room_b = w.room
        await _until(lambda: a.cluster.directory.syncs >= 1 and b.cluster.directory.syncs >= 2)

        async def v_single() -> Any:
            ws, m = await _welcome(single.ws_url, M.Hello(game="dot"))
            assert isinstance(m, M.Welcome)
            return ws

        async def v_cluster() -> Any:
            ws, m = await _welcome(a.ws_url, M.Hello(game="dot"))
            assert isinstance(m, M.Welcome)
            return ws

        async def matchmade(server: GameServer) -> Any:
            seat = await _http_json(server.port, "/matchmake?game=dot")
            ws, m = await _welcome(seat["url"], M.Hello(reservation=seat["reservation"]))
            assert isinstance(m, M.Welcome), m
            return ws

        async def v_mm_single() -> Any:
            return await matchmade(single)

        async def v_mm_cluster() -> Any:
            return await matchmade(a)

        async def v_direct() -> Any:
            ws, m = await _welcome(b.ws_url, M.Hello(room=room_b))
            assert isinstance(m, M.Welcome)
            return ws

        async def v_redirected() -> Any:
            ws, m = await _welcome(a.ws_url, M.Hello(room=room_b))
            assert isinstance(m, M.Error) and m.code == 4013 and m.url, m
            await asyncio.wait_for(ws.wait_closed(), 5)
            ws, m = await _welcome(m.url, M.Hello(room=room_b))
            assert isinstance(m, M.Welcome)
            return ws

        variants: dict[str, Callable[[], Awaitable[Any]]] = {
            "single": v_single, "cluster": v_cluster, "matchmake single": v_mm_single,
            "matchmake cluster": v_mm_cluster, "by id direct": v_direct,
            "by id redirected": v_redirected}
        names = list(variants)
        lat: dict[str, list[float]] = {n: [] for n in names}
        trips: dict[str, float] = dict.fromkeys(names, 0.0)
        cmds: dict[str, float] = dict.fromkeys(names, 0.0)
        for _ in range(3):  # warm up every path (connections to Redis, script cache)
            for n in names:
                await _leave(await variants[n]())
        await asyncio.sleep(0.3)
        for i in range(args.joins):
            order = names[i % len(names):] + names[:i % len(names)]
            for n in order:
                await asyncio.sleep(0.02)  # let the previous join's async writes go out
                rt0, c0 = _round_trips(a, b), await _commands(r)
                t0 = time.perf_counter()
                ws = await variants[n]()
                lat[n].append((time.perf_counter() - t0) * 1000)
                await _leave(ws)
                await asyncio.sleep(0.02)  # ... and this one's (token set / delete)
                trips[n] += _round_trips(a, b) - rt0
                cmds[n] += await _commands(r) - c0
        joins = {n: {"p50_ms": round(_pct(lat[n], 50), 3), "p90_ms": round(_pct(lat[n], 90), 3),
                     "p99_ms": round(_pct(lat[n], 99), 3),
                     "mean_ms": round(statistics.fmean(lat[n]), 3),
                     "redis_round_trips_per_join": round(trips[n] / args.joins, 2),
                     "redis_commands_per_join": round(cmds[n] / args.joins, 2)}
                 for n in names}
        hs = [x.metrics.registry.get("gameserver_redis_round_trip_seconds") for x in (a, b)]
        rtt = [sum(h.sum for h in hs), sum(h.count for h in hs)]  # type: ignore[attr-defined]
        counts = [sum(c) for c in zip(*(h.counts for h in hs))]  # type: ignore[attr-defined]
        bounds = [*hs[0].bounds, float("inf")]  # type: ignore[attr-defined]
        acc, rtt_p50 = 0, bounds[-1]
        for bound, n in zip(bounds, counts):
            acc += n
            if acc * 2 >= rtt[1]:
                rtt_p50 = bound
                break
        await _leave(keeper)
        await b.stop(timeout=2)
        servers.remove(b)

        # Part 3: steady state at the real sync period.
        K.SYNC_PERIOD, K.NODE_TTL_MS, K.ROOM_TTL_MS = saved
        steady = []
        assert a.rooms is not None
        for rid in list(a.rooms.rooms):
            a.rooms.rooms[rid].shutdown()
        for count in (0, 10, 100):
            while len(a.rooms.rooms) < count:
                a.rooms.create_room("dot")
            a.cluster.directory._next_sync = 0.0
            await asyncio.sleep(1.5)
            s0 = a.cluster.directory.syncs
            rt0, c0, t0 = _round_trips(a), await _commands(r), time.monotonic()
            await asyncio.sleep(args.window)
            dt = time.monotonic() - t0
            rts = (_round_trips(a) - rt0) / dt
            n_cmds = await _commands(r) - c0
            passes = max(1, a.cluster.directory.syncs - s0)
            steady.append({"rooms": count, "round_trips_per_s": round(rts, 2),
                           "commands_per_s": round(n_cmds / dt, 1),
                           "syncs_per_s": round(passes / dt, 2),
                           "commands_per_sync": round(n_cmds / passes, 1)})
        zero = steady[0]["commands_per_sync"]
        for row in steady[1:]:
            row["commands_per_sync_per_room"] = round((row["commands_per_sync"] - zero)
                                                      / row["rooms"], 2)
            row["commands_per_s_per_room"] = round(row["commands_per_sync_per_room"]
                                                   * row["syncs_per_s"], 2)
            row["round_trips_per_s_per_room"] = round(row["round_trips_per_s"] / row["rooms"],
                                                      3)
        return {"joins": joins, "steady": steady, "joins_per_variant": args.joins,
                "redis_round_trip_mean_ms": round(rtt[0] / max(1, rtt[1]) * 1000, 3),
                "redis_round_trip_p50_le_ms": rtt_p50 * 1000,
                "load_average": list(os.getloadavg())}
    finally:
        K.SYNC_PERIOD, K.NODE_TTL_MS, K.ROOM_TTL_MS = saved
        for s in servers:
            await s.stop(timeout=2)
        await r.aclose()
        rs.stop()


async def _until(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError("benchmark setup: condition not reached")
        await asyncio.sleep(0.02)


def report(res: dict[str, Any]) -> str:
    j = res["joins"]
    ref = j["single"]["p50_ms"]
    lines = [f"joins ({res['joins_per_variant']} per variant, interleaved):",
             f"{'variant':<20} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'x single':>9} "
             f"{'trips/join':>11} {'cmds/join':>10}"]
    for n, row in j.items():
        lines.append(f"{n:<20} {row['p50_ms']:>8.2f} {row['p90_ms']:>8.2f} {row['p99_ms']:>8.2f}"
                     f" {row['p50_ms'] / ref:>9.2f} {row['redis_round_trips_per_join']:>11.2f}"
                     f" {row['redis_commands_per_join']:>10.2f}")
    lines.append(f"Redis round trip seen by the nodes during the joins: mean "
                 f"{res['redis_round_trip_mean_ms']} ms, p50 <= "
                 f"{res['redis_round_trip_p50_le_ms']:g} ms (histogram bucket); load average "
                 f"at the end "
                 f"{', '.join(f'{x:.1f}' for x in res['load_average'])}")
    lines.append("steady state (node A alone, 1 s sync):")
    for row in res["steady"]:
        extra = ""
        if "commands_per_s_per_room" in row:
            extra = (f"  per room: {row['commands_per_sync_per_room']} commands/sync = "
                     f"{row['commands_per_s_per_room']} commands/s, "
                     f"{row['round_trips_per_s_per_room']} round trips/s")
        lines.append(f"  {row['rooms']:>4} rooms: {row['round_trips_per_s']} round trips/s "
                     f"({row['syncs_per_s']} syncs/s), {row['commands_per_s']} commands/s"
                     f"{extra}")
    return "\n".join(lines)


def part_directory(args: argparse.Namespace) -> dict[str, Any]:
    """Entry for ``bench_cluster.py --part directory``."""
    from protocol.aio.loop import run as loop_run

    res: dict[str, Any] = loop_run(run(args))
    print(report(res), flush=True)
    return res
