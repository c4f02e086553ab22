"""Plain HTTP on the game port: /healthz, /rooms, /metrics, static files, 404/405/426."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from gameserver.metrics import parse_text


async def http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    return status, headers, body


def get(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def test_http_routes(tmp_path: Path, kit: Any) -> None:
    (tmp_path / "index.html").write_text("<title>game</title>")
    (tmp_path / "client.js").write_text("export {}")
    (tmp_path.parent / "outside.txt").write_text("secret")

    async def main() -> None:
        async with kit.running(static_root=tmp_path) as h:
            port = h.server.port
            status, _, body = await http(port, get("/healthz"))
            assert (status, body) == (200, b"ok\n")
            status, headers, body = await http(port, get("/"))
            assert status == 200 and body == b"<title>game</title>"
            assert headers["content-type"].startswith("text/html")
            status, headers, _ = await http(port, get("/client.js"))
            assert status == 200 and headers["content-type"].startswith("text/javascript")
            assert (await http(port, get("/missing.js")))[0] == 404
            assert (await http(port, get("/../outside.txt")))[0] == 404
            assert (await http(port, get("/%2e%2e/outside.txt")))[0] == 404
            assert (await http(port, get("/healthz", "POST")))[0] == 405
            assert (await http(port, get("/ws")))[0] == 426
            # /rooms lists a room once a player is in it.
            c = await h.join(name="ann")
            status, headers, body = await http(port, get("/rooms"))
            rooms = json.loads(body)
            assert status == 200 and headers["content-type"] == "application/json"
            assert rooms == [{"id": c.welcome.room, "game": "walker", "players": 1,
                              "capacity": 4, "tick": rooms[0]["tick"]}]
            status, headers, body = await http(port, get("/metrics"))
            assert status == 200 and headers["content-type"].startswith("text/plain")
            vals = parse_text(body.decode())
            assert vals["gameserver_rooms"] == 1 and vals["gameserver_players"] == 1
            assert vals["gameserver_connections"] == 1
            # Counters move: ticks, send ticks, encodes, bytes and messages both ways.
            await c.input(dx=1.0, dy=0.0)
            await c.until(lambda: bool(c.acks))
            vals2 = parse_text((await http(port, get("/metrics")))[2].decode())
            for name in ("gameserver_ticks_total", "gameserver_send_ticks_total",
                         "gameserver_delta_encodes_total", "gameserver_bytes_out_total",
                         "gameserver_messages_out_total", "gameserver_bytes_in_total",
                         "gameserver_messages_in_total", "gameserver_tick_work_seconds_count",
                         "gameserver_tick_work_seconds_sum"):
                assert vals2[name] > vals.get(name, 0) > 0 or (
                    name.endswith("in_total") and vals2[name] > vals[name]), name
            assert vals2['gameserver_tick_work_seconds_bucket{le="+Inf"}'] == \
                vals2["gameserver_tick_work_seconds_count"]
            assert 0 < vals2['gameserver_tick_work_recent_seconds{quantile="0.5"}'] < 0.033
            for name in ("gameserver_tick_overruns_total", "gameserver_inputs_dropped_total",
                         "gameserver_slow_client_skips_total",
                         "gameserver_slow_client_evictions_total"):
                assert name in vals2
    kit.run(main())
