"""GameClient against a real ``gameserver --workers 2`` (processes): the worker holding the
client's room is SIGKILLed, the client gets close 4015, rejoins by HELLO (new player id, the
``on_rejoined`` hook) and receives snapshots again; the same when it saw 1006 instead (the
worker died mid-frame): its RESUME is answered 4015 and it rejoins. Reuses the cluster fixture of
tests/gameserver/test_workers.py (which kills every child it started).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from pathlib import Path
from typing import Any

from clients.client import Backoff, GameClient
from gameserver.machine import worker_of_room

_spec = importlib.util.spec_from_file_location(
    "gameserver_test_workers", Path(__file__).parent.parent / "gameserver" / "test_workers.py")
assert _spec is not None and _spec.loader is not None
tw: Any = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = tw  # dataclasses look their module up
_spec.loader.exec_module(tw)


def test_client_on_a_killed_worker_rejoins_and_streams_again(tmp_path: Path) -> None:
    with tw.cluster(tmp_path) as cl:
        async def main() -> None:
            clients: list[GameClient] = []
            try:
                victim = None
                for i in range(6):  # joins by game name spread over both workers
                    c = GameClient(cl.ws_url, game="walker", name=f"p{i}",
                                   backoff=Backoff(base=0.2, cap=1.0, max_attempts=30))
                    clients.append(await c.connect())
                    if c.room is not None and worker_of_room(c.room) == 1:
                        victim = c
                        break
                assert victim is not None, [c.room for c in clients]
                rejoined: list[tuple[int | None, int | None]] = []
                victim.on_rejoined(lambda _c, old, new: rejoined.append((old, new)))
                old_player, old_room = victim.player, victim.room
                os.kill(cl.pids()[1], signal.SIGKILL)
                incremental = 0
                async for up in victim.updates():
                    if rejoined and not up.full:
                        incremental += 1
                        if incremental >= 3:
                            break
                assert rejoined == [(old_player, victim.player)]
                assert victim.rejoins == 1 and victim.connected and victim.game == "walker"
                assert victim.room != old_room  # a new room: the old one died with worker 1
            finally:
                for c in clients:
                    await c.close()
        tw.run(main())
        assert "Traceback" not in cl.text()


def test_client_that_saw_1006_from_a_dying_worker_rejoins(tmp_path: Path) -> None:
    with tw.cluster(tmp_path) as cl:
        async def main() -> None:
            clients: list[GameClient] = []
            try:
                victim = None
                for i in range(6):
                    c = GameClient(cl.ws_url, game="walker", name=f"p{i}",
                                   backoff=Backoff(base=0.2, cap=1.0, max_attempts=30))
                    clients.append(await c.connect())
                    if c.room is not None and worker_of_room(c.room) == 1:
                        victim = c
                        break
                assert victim is not None, [c.room for c in clients]
                rejoined: list[tuple[int | None, int | None]] = []
                victim.on_rejoined(lambda _c, old, new: rejoined.append((old, new)))
                old_player, old_room = victim.player, victim.room
                assert victim._ws is not None
                # the worker dies, and the client loses its connection without the
                # supervisor's 4015 (as when the worker died mid-frame): it sees 1006
                os.kill(cl.pids()[1], signal.SIGKILL)
                victim._ws._transport.abort()
                incremental = 0
                async for up in victim.updates():
                    if rejoined and not up.full:
                        incremental += 1
                        if incremental >= 3:
                            break
                assert rejoined == [(old_player, victim.player)]
                # it RESUMEd (the 1006) and was told 4015, not 4005
                assert (4015, "worker restarted: join again") in victim.stats.server_errors
                assert victim.rejoins == 1 and victim.connected and victim.room != old_room
                seq = victim.send_input(dx=0.5, dy=0.0)  # plays on: the input is applied
                async for _ in victim.updates():
                    if victim.acked_seq >= seq:
                        break
            finally:
                for c in clients:
                    await c.close()
        tw.run(main())
        assert "Traceback" not in cl.text()
