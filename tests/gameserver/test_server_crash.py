"""Game code raising in one room closes that room (ERROR 4010 + close 4010, traceback logged
at ERROR) while other rooms keep ticking; metrics count it."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from gameserver.metrics import parse_text


def test_room_crash_isolation(kit: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with kit.running() as h:
            other = await h.join(game="walker", name="other")
            victim = await h.join(game="boom", name="victim")
            await victim.until(lambda: victim.deltas > 2)
            trigger = await h.join(game="boom", name="boom")
            assert trigger.welcome.room == victim.welcome.room
            for c in (victim, trigger):
                assert await c.closed() == 4010
                assert c.errors and c.errors[-1].code == 4010
            rooms = [r["game"] for r in h.server.rooms.list_rooms()]
            assert rooms == ["walker"]
            n = other.deltas
            await other.until(lambda: other.deltas >= n + 5, timeout=2)
            assert not other.ws.closed
            # A new boom room can be created afterwards (the game registry is intact).
            again = await h.join(game="boom", name="again")
            assert again.welcome.room != victim.welcome.room
            vals = parse_text(h.server.metrics.render())
            assert vals["gameserver_room_crashes_total"] == 1
    with caplog.at_level(logging.ERROR, logger="gameserver.room"):
        kit.run(main())
    crashes = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(crashes) == 1 and crashes[0].exc_info is not None
    assert "kaboom" in caplog.text
