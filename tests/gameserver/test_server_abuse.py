"""Misbehaving clients: input flood (ERROR 4 then 4008), oversize (ERROR 5; 1009 above the
WebSocket limit), garbage msgpack (ERROR 1, then 4000 when repeated), wrong message type
(ERROR 2), invalid input (ERROR 3). None of it disturbs another player in the same room."""

from __future__ import annotations

from typing import Any

import msgpack

from gameserver.metrics import parse_text
from protocol import messages as M


def test_abuse_is_contained(kit: Any) -> None:
    async def main() -> None:
        async with kit.running() as h:
            good = await h.join(name="good")
            await good.until(lambda: good.deltas > 0)

            async def progressing() -> None:
                """good's tick stream continues and it is still connected."""
                n = good.deltas
                await good.until(lambda: good.deltas >= n + 3, timeout=2)
                assert not good.ws.closed and not good.errors

            # Input flood: rate limited (ERROR 4), then closed 4008.
            flood = await h.join(name="flood")
            for _ in range(400):
                if flood.ws.closed:
                    break
                await flood.input(dx=0.5, dy=0.0)
            assert await flood.closed() == 4008
            assert any(e.code == 4 for e in flood.errors)
            await progressing()

            # Oversize: over the game limit -> ERROR 5; over the WebSocket limit -> 1009.
            big = await h.join(name="big")
            await big.ws.send(msgpack.packb([3, {"s": 1, "d": {"pad": "x" * 5000}}]))
            await big.until(lambda: bool(big.errors))
            assert big.errors[0].code == 5
            await big.ws.send(b"\x90" * 20000)
            assert await big.closed() == 1009
            await progressing()

            # Garbage, wrong type, invalid input: ERRORs, then 4000 when repeated.
            bad = await h.join(name="bad")
            await bad.ws.send(b"\xc1\xc1")
            await bad.until(lambda: len(bad.errors) == 1)
            assert bad.errors[0].code == 1
            await bad.ws.send(msgpack.packb([99, {}]))
            await bad.until(lambda: len(bad.errors) == 2)
            assert bad.errors[1].code == 2
            await bad.send(M.Input(1, {"dx": 7.0, "dy": 0.0}))  # out of range
            await bad.until(lambda: len(bad.errors) == 3)
            assert bad.errors[2].code == 3
            await bad.send(M.Hello(game="walker"))  # already joined
            await bad.until(lambda: len(bad.errors) == 4)
            assert bad.errors[3].code == 6
            await bad.ws.send("text is not used")
            await bad.until(lambda: len(bad.errors) == 5)
            assert bad.errors[4].code == 1
            for _ in range(10):
                if bad.ws.closed:
                    break
                await bad.ws.send(b"\xc1")
            assert await bad.closed() == 4000
            await progressing()

            # The counters saw it all.
            vals = parse_text(h.server.metrics.render())
            assert vals["gameserver_inputs_dropped_total"] > 10
            assert vals['gameserver_protocol_violations_total{kind="flood_close"}'] == 1
            assert vals['gameserver_protocol_violations_total{kind="protocol_misuse_close"}'] == 1
            # good still moves normally.
            await good.input(dx=1.0, dy=0.0)
            await good.until(lambda: bool(good.acks) and good.acks[-1].seq == 1)
    kit.run(main())
