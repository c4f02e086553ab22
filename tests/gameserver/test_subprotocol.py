"""The ``gameserver.v1`` WebSocket subprotocol (SPEC.md section 1, RFC 6455 section 4.2.2).

Standard clients that offer a subprotocol refuse a 101 that does not select one they offered
(browsers, Node's WebSocket); the server selects ``gameserver.v1`` when offered, accepts a
client that offers none, and selects nothing (but still accepts) when only unknown ones are
offered. Tested with real clients: the ``websockets`` library, ``protocol.aio.connect``, the
Python SDK, and Node's built-in WebSocket (``--experimental-websocket``) when node has it.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect

from clients import GameClient
from protocol import messages as M
from protocol.aio import connect


async def _hello_roundtrip(ws: Any) -> M.Welcome:
    await ws.send(M.encode(M.Hello(game="walker", name=f"p{id(ws) % 10000}")))
    while True:
        msg = M.decode_server(await asyncio.wait_for(ws.recv(), 5))
        if isinstance(msg, M.Welcome):
            return msg


def test_websockets_library_gets_the_subprotocol(kit: Any) -> None:
    async def main() -> None:
        async with kit.running() as h:
            async with ws_connect(h.server.ws_url, subprotocols=[M.SUBPROTOCOL]) as ws:
                assert ws.subprotocol == "gameserver.v1"
                assert ws.response.headers["Sec-WebSocket-Protocol"] == "gameserver.v1"
                welcome = await _hello_roundtrip(ws)
                assert welcome.player > 0
            # offering none: accepted, nothing selected
            async with ws_connect(h.server.ws_url) as ws:
                assert ws.subprotocol is None
                assert "Sec-WebSocket-Protocol" not in ws.response.headers
                await _hello_roundtrip(ws)
            # only unknown ones: accepted without selecting (RFC 6455 4.2.2 /subprotocol/)
            async with ws_connect(h.server.ws_url, subprotocols=["chat.v9", "x"]) as ws:
                assert ws.subprotocol is None
                assert "Sec-WebSocket-Protocol" not in ws.response.headers
            # ours among others, not first: still ours
            async with ws_connect(h.server.ws_url,
                                  subprotocols=["chat.v9", M.SUBPROTOCOL]) as ws:
                assert ws.subprotocol == "gameserver.v1"

    kit.run(main())


def test_protocol_aio_and_sdk_offer_and_get_it(kit: Any) -> None:
    async def main() -> None:
        async with kit.running() as h:
            ws = await connect(h.server.ws_url, subprotocols=(M.SUBPROTOCOL,))
            try:
                assert ws.subprotocol == "gameserver.v1"
                await _hello_roundtrip(ws)
            finally:
                await ws.close()
            async with GameClient(h.server.ws_url, game="walker", name="sdk") as client:
                assert client._ws is not None
                assert client._ws.subprotocol == "gameserver.v1"
                # the server side saw it too
                sub = {s.ws.subprotocol for s in h.server.sessions}
                assert sub == {"gameserver.v1"}

    kit.run(main())


_NODE_SCRIPT = r"""
const hello = Buffer.from(process.argv[2], "hex");
const ws = new WebSocket(process.argv[1], ["gameserver.v1"]);
ws.binaryType = "arraybuffer";
const timer = setTimeout(() => { console.log("TIMEOUT"); process.exit(3); }, 8000);
ws.onopen = () => { console.log("OPEN " + ws.protocol); ws.send(hello); };
ws.onmessage = (ev) => {
  const b = new Uint8Array(ev.data);
  // [16, {...}]: fixarray(2) then positive fixint 16 = WELCOME
  console.log("MSG " + b[0] + " " + b[1]);
  clearTimeout(timer); ws.close(); process.exit(0);
};
ws.onerror = (e) => { console.log("ERROR " + (e.message || e.type)); process.exit(2); };
"""


def _node_websocket() -> list[str] | None:
    node = shutil.which("node")
    if node is None:
        return None
    for flags in ([], ["--experimental-websocket"]):
        r = subprocess.run([node, *flags, "-e", "process.exit(typeof WebSocket === "
                            "'function' ? 0 : 1)"], capture_output=True, timeout=20)
        if r.returncode == 0:
            return [node, *flags]
    return None


def test_node_builtin_websocket_accepts_the_upgrade(kit: Any) -> None:
    cmd = _node_websocket()
    if cmd is None:
        pytest.skip("node with a built-in WebSocket is not available")
    hello = M.encode(M.Hello(game="walker", name="js-client")).hex()

    async def main() -> None:
        async with kit.running() as h:
            proc = await asyncio.create_subprocess_exec(
                *cmd, "-e", _NODE_SCRIPT, h.server.ws_url, hello,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            try:
                out, _ = await asyncio.wait_for(proc.communicate(), 30)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            text = out.decode()
            assert "OPEN gameserver.v1" in text, text
            assert "MSG 146 16" in text, text  # 0x92 fixarray(2), type 16 WELCOME
            assert proc.returncode == 0, text

    kit.run(main())
