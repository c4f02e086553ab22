"""The SPEC.md rules a native implementer had to guess, checked against the real server.

HELLO ``game`` / ``room`` (section 2), the WELCOME tick and the first snapshot (section 3),
INPUT_ACK ticks that are not DELTA ticks, and the order after RESUME (INPUT_ACK may precede
the full snapshot; the resume token stays the same).
"""

from __future__ import annotations

import asyncio
from typing import Any

from protocol import messages as M
from protocol.aio import WebSocket, connect


async def recv(ws: WebSocket, timeout: float = 5.0) -> Any:
    data = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(data, bytes)
    return M.decode_server(data)


async def hello(url: str, **kw: Any) -> tuple[WebSocket, Any]:
    """Connect and send HELLO; the first answer (WELCOME or ERROR)."""
    ws = await connect(url, ping_interval=None)
    await ws.send(M.encode(M.Hello(**kw)))
    return ws, await recv(ws)


async def refused(url: str, code: int, **kw: Any) -> str:
    ws, msg = await hello(url, **kw)
    assert isinstance(msg, M.Error) and msg.code == code, msg
    await asyncio.wait_for(ws.wait_closed(), 5)
    assert ws.close_code == code
    return msg.message


def test_hello_game_and_room(kit: Any) -> None:
    async def main() -> None:
        async with kit.running() as h:
            url = h.server.ws_url
            # neither: the server's default game (the first configured, walker)
            a, wa = await hello(url, name="a")
            assert isinstance(wa, M.Welcome) and wa.game == "walker"
            # game only: the first room of that game with a free seat (the same room)
            b, wb = await hello(url, game="walker", name="b")
            assert wb.room == wa.room
            # room only: that room; room and game: the room, if it plays that game
            c, wc = await hello(url, room=wa.room, name="c")
            assert wc.room == wa.room and wc.game == "walker"
            d, wd = await hello(url, room=wa.room, game="walker", name="d")
            assert wd.room == wa.room
            # room full (walker: 4 seats) -> 4002; wrong game for the room -> 4003
            await refused(url, 4002, room=wa.room, name="e")
            assert "swarm" in await refused(url, 4003, room=wa.room, game="swarm", name="f")
            # unknown room id: 4003 (a client cannot create a room by naming it)
            await refused(url, 4003, room="my-own-room", name="g")
            await refused(url, 4003, game="chess", name="h")
            # the walker room is full: game only -> a new room of that game
            i, wi = await hello(url, game="walker", name="i")
            assert wi.room != wa.room and wi.game == "walker"
            for ws in (a, b, c, d, i):
                await ws.close()

    kit.run(main())


def test_welcome_tick_and_first_snapshot(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(tick_rate=30, send_rate=10) as h:
            for n in range(3):
                ws, w = await hello(h.server.ws_url, game="walker", name=f"w{n}")
                assert isinstance(w, M.Welcome)
                first = await recv(ws)
                while not isinstance(first, M.Delta):
                    first = await recv(ws)
                # the first DELTA is a full snapshot of a later tick than WELCOME's, holding
                # the player's entity (on_join ran before it); not necessarily tick + 1
                assert first.base_tick is None
                assert first.tick > w.tick
                assert w.entity is not None and w.entity in first.spawned_ids.tolist()
                await ws.close()

    kit.run(main())


def test_input_ack_ticks_need_not_be_delta_ticks(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(tick_rate=30, send_rate=10) as h:
            ws, _ = await hello(h.server.ws_url, game="walker", name="acker")
            order: list[tuple[str, int]] = []
            seq = 0
            # one input at a time: it is applied in the next tick (often not a send tick)
            # and acknowledged with that tick in the next send tick (every 3rd tick)
            for _ in range(12):
                seq += 1
                await ws.send(M.encode(M.Input(seq, {"dx": 0.5, "dy": 0.0})))
                while True:
                    msg = await recv(ws)
                    if isinstance(msg, M.Delta):
                        order.append(("delta", msg.tick))
                    elif isinstance(msg, M.InputAck):
                        order.append(("ack", msg.tick))
                        break
                await asyncio.sleep(0.011 * (seq % 4))
            delta_ticks = {t for k, t in order if k == "delta"}
            ack_ticks = [t for k, t in order if k == "ack"]
            assert any(t not in delta_ticks for t in ack_ticks), (ack_ticks, delta_ticks)
            # every ack is followed by a DELTA whose tick is >= the ack's (compare with <=)
            for i, (kind, t) in enumerate(order):
                if kind == "ack":
                    later = [u for k, u in order[i + 1:] if k == "delta"]
                    if later:
                        assert later[0] >= t
            await ws.close()

    kit.run(main())


def test_resume_order_ack_before_snapshot_same_token(kit: Any) -> None:
    async def main() -> None:
        async with kit.running(resume_grace=5.0) as h:
            ws, w = await hello(h.server.ws_url, game="walker", name="phoenix")
            assert isinstance(w, M.Welcome)
            for s in (1, 2, 3):
                await ws.send(M.encode(M.Input(s, {"dx": 1.0, "dy": 0.0})))
            while True:  # wait until input 3 is acknowledged
                msg = await recv(ws)
                if isinstance(msg, M.InputAck) and msg.seq == 3:
                    break
            ws._transport.abort()  # drop without a close: the player waits for RESUME
            await asyncio.sleep(0.2)
            ws2 = await connect(h.server.ws_url, ping_interval=None)
            await ws2.send(M.encode(M.Resume(w.resume)))
            w2 = await recv(ws2)
            assert isinstance(w2, M.Welcome)
            assert (w2.player, w2.entity, w2.room) == (w.player, w.entity, w.room)
            assert w2.resume == w.resume  # the token stays the same
            assert w2.tick >= w.tick
            kinds: list[Any] = []
            while not kinds or not isinstance(kinds[-1], M.Delta):
                kinds.append(await recv(ws2))
            # the last applied input's ack comes first, then the full snapshot
            acks = [m for m in kinds if isinstance(m, M.InputAck)]
            assert acks and acks[0].seq == 3 and kinds.index(acks[0]) < len(kinds) - 1
            assert kinds[-1].base_tick is None and kinds[-1].tick > w2.tick
            # inputs continue with the next seq
            await ws2.send(M.encode(M.Input(4, {"dx": 1.0, "dy": 0.0})))
            while True:
                msg = await recv(ws2)
                if isinstance(msg, M.InputAck):
                    assert msg.seq == 4
                    break
            await ws2.close()

    kit.run(main())
