"""GameClient against the fake server: join, replica, inputs, RTT, resume, failures.

Every test is bounded by ``asyncio.timeout``: a hang is a failure, never a stuck suite.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from clients_fakeserver import FakeServer

from clients import errors as E
from clients.client import Backoff, GameClient, TickUpdate


def run(coro_fn: Callable[[], Awaitable[None]], limit: float = 20.0) -> None:
    async def main() -> None:
        async with asyncio.timeout(limit):
            await coro_fn()

    asyncio.run(main())


def fast_backoff(n: int = 3) -> Backoff:
    return Backoff(base=0.01, cap=0.05, max_attempts=n, rng=random.Random(1))


def test_join_replica_updates_and_callbacks() -> None:
    async def main() -> None:
        async with FakeServer(entities=4) as srv:
            ticks: list[TickUpdate] = []
            client = GameClient(srv.url, game="fake", name="ann", on_tick=lambda c, u:
                                ticks.append(u))
            await client.connect()
            try:
                assert srv.hellos[0].game == "fake" and srv.hellos[0].name == "ann"
                assert client.player == 1 and client.entity == (1 << 8) | 1
                assert client.room == "r1" and client.tick_rate == 50.0
                world = client.world
                assert world is not None and len(world) == 4
                assert ticks and ticks[0].full and ticks[0].tick == 100
                seen = []
                async for up in client.updates():
                    seen.append(up)
                    if len(seen) == 3:
                        break
                assert [u.tick for u in seen] == list(range(seen[0].tick, seen[0].tick + 3))
                assert not seen[0].full and seen[0].missed == 0
                t = client.tick
                # replica matches the server's world for that tick, dequantized
                expect = srv.snapshot(t)
                assert world.ids.tolist() == expect.ids.tolist()
                assert np.allclose(world["x"], expect.columns["x"] * 0.01)
                assert world["kind"].dtype == np.uint8
                ent = world.entity(int(expect.ids[1]))
                assert ent is not None and ent["kind"] == 1
                assert world.entity(12345) is None
                assert world.float_fields == {"x", "y"}
                assert client.stats.deltas >= 4 and client.stats.bytes_in > 0
            finally:
                await client.close()
            assert srv.leaves == 1

    run(main)


def test_inputs_numbered_acked_and_rtt_measured() -> None:
    async def main() -> None:
        async with FakeServer() as srv:
            async with GameClient(srv.url, ping_interval=0.05) as client:
                seqs = [client.send_input(dx=1.0, dy=0.0) for _ in range(3)]
                assert seqs == [1, 2, 3]
                assert [p[0] for p in client.pending_inputs] == [1, 2, 3]
                while client.acked_seq < 3 or client.rtt is None:
                    await asyncio.sleep(0.01)
                assert not client.pending_inputs
                assert client.acks.acked_at(client.tick + 10) == 3
                assert 0 <= client.rtt < 1.0 and client.srtt is not None
                while client.bytes_in_per_s == 0:
                    await asyncio.sleep(0.02)
                assert client.bytes_in_per_s > 0 and client.bytes_out_per_s > 0
                player = next(iter(srv.players.values()))
                assert player.inputs[0] == {"dx": 1.0, "dy": 0.0} and player.last_seq == 3

    run(main)


def test_events_iterator_and_unknown_message_types_ignored() -> None:
    from protocol import messages as M

    async def main() -> None:
        async with FakeServer() as srv:
            got: list[Any] = []
            async with GameClient(srv.url, on_event=lambda c, e: got.append(e)) as client:
                ws = next(iter(srv.server.connections))  # type: ignore[union-attr]
                ws.send_nowait(b"\x92\x3f\x80")  # [63, {}]: a future message type
                ws.send_nowait(M.encode(M.Event("boom", {"at": [1, 2]})))
                async for ev in client.events():
                    assert ev.kind == "boom" and ev.data == {"at": [1, 2]}
                    break
                assert got and got[0].kind == "boom"
                assert client.stats.unknown_messages == 1
                assert client.connected

    run(main)


@pytest.mark.parametrize(
    ("code", "exc"),
    [(4001, E.Unauthorized), (4002, E.RoomFull), (4003, E.UnknownRoom),
     (4004, E.VersionMismatch), (4006, E.Rejected)],
)
def test_join_rejections_map_to_exceptions(code: int, exc: type[E.JoinRejected]) -> None:
    async def main() -> None:
        async with FakeServer(mode="reject", reject_code=code, reject_reason="nope: reason") as srv:
            client = GameClient(srv.url, retry_connect=True, backoff=fast_backoff())
            with pytest.raises(exc) as info:
                await client.connect()
            assert info.value.code == code and "nope: reason" in info.value.reason
            assert isinstance(info.value, E.JoinRejected)
            assert client.stats.connect_attempts == 1  # a refusal is never retried

    run(main)


def test_rejection_from_close_code_alone() -> None:
    async def main() -> None:
        async with FakeServer(mode="reject", reject_code=4006, reject_reason="no bots allowed",
                              close_with_error=False) as srv:
            with pytest.raises(E.Rejected, match="no bots allowed"):
                await GameClient(srv.url).connect()

    run(main)


def test_resume_after_forced_disconnect_keeps_player() -> None:
    async def main() -> None:
        async with FakeServer(drop_after=3) as srv:
            client = GameClient(srv.url, backoff=fast_backoff())
            await client.connect()
            try:
                player = client.player
                fulls = 0
                async for up in client.updates():
                    fulls += up.full
                    if up.full:
                        break  # the full snapshot that follows the RESUME
                assert fulls == 1
                assert client.player == player
                assert client.stats.reconnects == 1
                assert srv.resumes == [client.resume_token]
                assert client.connected
                # still streaming after the resume
                async for up in client.updates():
                    assert not up.full
                    break
            finally:
                await client.close()

    run(main)


def test_garbage_from_server_is_protocol_error() -> None:
    async def main() -> None:
        async with FakeServer(mode="garbage") as srv:
            client = GameClient(srv.url, backoff=fast_backoff())
            await client.connect()
            with pytest.raises(E.ServerProtocolError, match="undecodable"):
                async for _ in client.updates():
                    pass
            assert client.stats.reconnects == 0
            with pytest.raises(E.ClientClosed):
                client.send_input(dx=0)
            await client.close()

    run(main)


def test_text_message_is_protocol_error() -> None:
    async def main() -> None:
        async with FakeServer(mode="text") as srv:
            client = GameClient(srv.url)
            await client.connect()
            with pytest.raises(E.ServerProtocolError, match="text"):
                await client.wait_closed()

    run(main)


def test_delta_that_does_not_apply_resyncs_then_fails() -> None:
    async def main() -> None:
        async with FakeServer(mode="bad_delta") as srv:
            client = GameClient(srv.url, backoff=fast_backoff())
            await client.connect()
            with pytest.raises(E.ServerProtocolError, match="does not apply"):
                await client.wait_closed()
            assert client.stats.resyncs >= 2 and client.stats.reconnects >= 1
            assert len(srv.resumes) >= 1

    run(main)


def test_close_mid_message_is_a_drop_then_connection_lost() -> None:
    async def main() -> None:
        async with FakeServer(mode="close_mid") as srv:
            client = GameClient(srv.url, backoff=fast_backoff(2))
            await client.connect()
            with pytest.raises(E.ConnectionLost, match="not resumed after 2 attempts"):
                await client.wait_closed()
            assert len(srv.resumes) == 2  # the resumes connected, then dropped again

    run(main)


def test_close_mid_message_without_reconnect() -> None:
    async def main() -> None:
        async with FakeServer(mode="close_mid") as srv:
            client = GameClient(srv.url, reconnect=False)
            await client.connect()
            with pytest.raises(E.ConnectionLost, match="1006"):
                async for _ in client.updates():
                    pass

    run(main)


def test_stall_is_detected_and_never_hangs() -> None:
    async def main() -> None:
        async with FakeServer(mode="stall") as srv:
            client = GameClient(srv.url, stall_timeout=0.3, ping_interval=0.05,
                                backoff=fast_backoff(1))
            await client.connect()
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises(E.ConnectionLost, match="no message from the server"):
                await client.wait_closed()
            assert loop.time() - t0 < 5.0  # 2 stalls of 0.3 s + a resume; generous for load
            assert srv.pings > 0

    run(main)


def test_silent_server_join_times_out() -> None:
    async def main() -> None:
        async with FakeServer(mode="silent_join") as srv:
            client = GameClient(srv.url, connect_timeout=0.3)
            with pytest.raises(E.ConnectTimeout):
                await client.connect()

    run(main)


def test_connection_refused_is_retried_then_connection_lost() -> None:
    async def main() -> None:
        async with FakeServer() as srv:
            url = srv.url
        # the server is gone: nothing listens on that port now
        client = GameClient(url, retry_connect=True, backoff=fast_backoff(2))
        with pytest.raises(E.ConnectionLost, match="after 3 attempts"):
            await client.connect()
        assert client.stats.connect_attempts == 3

    run(main)


def test_backoff_is_exponential_bounded_and_jittered() -> None:
    b = Backoff(base=0.1, factor=2, cap=1.0, max_attempts=6, jitter=False)
    assert list(b) == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    j = Backoff(base=0.1, factor=2, cap=1.0, max_attempts=50, rng=random.Random(3))
    delays = list(j)
    assert len(delays) == 50
    assert all(0 <= d <= min(1.0, 0.1 * 2**i) for i, d in enumerate(delays))
    assert len(set(delays)) > 40  # jittered
    with pytest.raises(ValueError):
        Backoff(factor=0.5)


def test_wss_with_custom_ca_file_and_context(tmp_path: Any) -> None:
    import ssl

    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))

    async def main() -> None:
        async with FakeServer(ssl=server_ctx) as srv:
            assert srv.url.startswith("wss://")
            async with GameClient(srv.url, cafile=str(cafile)) as client:
                assert client.connected and client.world is not None and len(client.world) == 5
            client_ctx = ssl.create_default_context()
            ca.configure_trust(client_ctx)
            async with GameClient(srv.url, ssl=client_ctx) as client:
                async for _ in client.updates():
                    break
            # an untrusted server certificate is a clear connect error, not a hang
            with pytest.raises(E.ConnectionLost, match="cannot connect"):
                await GameClient(srv.url).connect()

    run(main)


def test_interpolation_buffer_fed_by_the_client() -> None:
    async def main() -> None:
        async with FakeServer(tick_rate=50.0) as srv, GameClient(srv.url) as client:
            buf = client.interpolation(delay=0.05)
            n = 0
            async for _ in client.updates():
                n += 1
                if n == 8:
                    break
            # render between the two newest snapshots (ticks t-1, t): at local time
            # server time + clock offset + delay
            t = client.tick
            mid = (t - 0.5) / 50.0
            offset = buf.clock_offset
            assert offset is not None
            frame = buf.sample(now=mid + offset + 0.05)
            assert frame is not None and not frame.starved
            assert frame.alpha == pytest.approx(0.5)
            assert frame.newer_time is not None
            # the fake world: x = (i * 100 + tick * 10) * 0.01, so x is linear in time and
            # the interpolated value matches the render time exactly
            tick_f = frame.render_time * 50.0
            expect = (np.arange(5) * 100 + tick_f * 10) * 0.01
            assert frame.columns["x"] == pytest.approx(expect, abs=1e-6)
            assert frame.columns["kind"].dtype == np.uint8  # ints are not interpolated
            assert buf.fields == {"x", "y"}

    run(main)


def test_prediction_wired_to_the_client() -> None:
    async def main() -> None:
        async with FakeServer() as srv, GameClient(srv.url) as client:
            def extract(world: Any, entity: int | None) -> float:
                assert entity is not None
                me = world.entity(entity)
                return float(me["y"]) if me else 0.0

            pred = client.prediction(lambda s, i: s + float(i["dy"]), extract)
            base = pred.state
            assert base == 5.0  # the fake world's y (500 * 0.01)
            for _ in range(3):
                client.send_input(dx=0.0, dy=1.0)
            # predicted at once: authoritative + 3 unacked inputs
            assert pred.state == base + 3 and len(pred.pending) == 3
            async for _ in client.updates():
                if pred.acked_seq == 3:
                    break
            # the fake server acknowledges but does not move us: the prediction snaps back
            assert not pred.pending and pred.state == base
            assert pred.latency is not None and pred.latency >= 0

    run(main)
