"""The Python client decodes the shared test vectors (protocol/vectors/*.json) exactly.

Bytes go through the client's own receive path (``GameClient._decode`` -> ``_dispatch``:
``decode_server`` + the WorldView / ack / event / error bookkeeping), not just the codec.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

from clients import errors as E
from clients.client import GameClient, GameEvent, _Drop
from protocol import messages as M
from protocol.delta import Snapshot, WireSchema, encode_delta

VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors"


def load(name: str) -> list[dict[str, Any]]:
    path = VECTORS / f"{name}.json"
    if not path.exists():
        pytest.skip(f"{path} not present")
    vectors: list[dict[str, Any]] = json.loads(path.read_text())["vectors"]
    return vectors


def client_with(schema_obj: dict[str, Any]) -> GameClient:
    """A client that has 'received' a WELCOME for this schema (no network)."""
    client = GameClient("ws://127.0.0.1:9/ws")
    schema = WireSchema.from_wire(schema_obj)
    client._on_welcome(M.Welcome(player=7, room="r", game="g", tick=0, tick_rate=30,
                                 send_rate=30, schema=schema, resume="tok"))
    return client


def feed(client: GameClient, data: bytes, path: str = "fast") -> None:
    """``fast``: the client's receive path (``WorldView.apply_wire``: Replica's steady-state
    path straight from msgpack); ``general``: decode_server + Replica.apply of a Delta."""
    data = client._account(data, 0.0)
    if path == "fast":
        client._receive(data, 0.0)
    else:
        client._dispatch(client._decode(data), 0.0)


def set_base(client: GameClient, base: dict[str, Any] | None) -> None:
    if base is None:
        return
    world = client.world
    assert world is not None
    cols = {f.name: np.array(base["columns"][f.name], dtype=f.np_dtype)
            for f in world.schema.fields}
    snap = Snapshot(np.array(base["ids"], dtype=np.uint32), cols)
    feed(client, encode_delta(None, snap, tick=int(base["tick"])))


def delta_names() -> list[str]:
    path = VECTORS / "deltas.json"
    if not path.exists():
        return ["missing"]
    return [v["name"] for v in json.loads(path.read_text())["vectors"]]


@pytest.mark.parametrize("path", ["fast", "general"])
@pytest.mark.parametrize("name", delta_names())
def test_delta_vectors_through_the_client(name: str, path: str) -> None:
    vec = next(v for v in load("deltas") if v["name"] == name)
    client = client_with(vec["schema"])
    set_base(client, vec["base"])
    feed(client, bytes.fromhex(vec["hex"]), path)
    world = client.world
    assert world is not None
    exp = vec["expected"]
    assert client.tick == exp["tick"]
    assert world.ids.dtype == np.uint32 and world.ids.tolist() == exp["ids"]
    for f in world.schema.fields:
        col = world.columns[f.name]
        assert col.dtype == f.np_dtype, f.name
        assert col.tolist() == exp["columns"][f.name], f.name
        real = world[f.name]
        if f.quant is not None:
            assert real.dtype == np.float64
            assert real.tolist() == pytest.approx(exp["values"][f.name], abs=1e-9)
        else:
            assert real.tolist() == exp["values"][f.name]


def invalid_names() -> list[str]:
    path = VECTORS / "deltas_invalid.json"
    if not path.exists():
        return ["missing"]
    return [v["name"] for v in json.loads(path.read_text())["vectors"]]


@pytest.mark.parametrize("path", ["fast", "general"])
@pytest.mark.parametrize("name", invalid_names())
def test_invalid_delta_vectors_leave_replica_unchanged(name: str, path: str) -> None:
    vec = next(v for v in load("deltas_invalid") if v["name"] == name)
    client = client_with(vec["schema"])
    set_base(client, vec["base"])
    world = client.world
    assert world is not None
    before_ids = world.ids.copy()
    before = {k: c.copy() for k, c in world.columns.items()}
    tick = client.tick
    with pytest.raises(_Drop) as info:
        feed(client, bytes.fromhex(vec["hex"]), path)
    # undecodable -> protocol error (not retried); does not apply -> resync by resuming
    err = info.value.error
    assert isinstance(err, E.ServerProtocolError | E.ConnectionLost)
    assert info.value.retry == isinstance(err, E.ConnectionLost)
    assert client.tick == tick
    assert world.ids.tolist() == before_ids.tolist()
    for k, c in before.items():
        assert world.columns[k].tolist() == c.tolist()


def test_server_message_vectors_through_the_client() -> None:
    vecs = {v["name"]: v for v in load("messages")}
    client = GameClient("ws://127.0.0.1:9/ws")
    events: list[GameEvent] = []
    client.on_event(lambda c, e: events.append(e))
    w = client._decode(bytes.fromhex(vecs["welcome"]["hex"]))
    assert isinstance(w, M.Welcome)
    client._on_welcome(w)
    value = vecs["welcome"]["value"][1]
    assert client.player == value["player"] == 42 and client.entity == 257
    assert client.room == "r1" and client.game == "arena"
    assert client.tick_rate == 30 and client.send_rate == 30
    assert client.resume_token == "resume-token" and client.server_tick == 100
    assert client.world is not None and client.world.names == ("x", "y", "hp", "owner")
    assert client.world.float_fields == {"x", "y"}
    feed(client, bytes.fromhex(vecs["input_ack"]["hex"]))
    assert client.acked_seq == 7 and client.acks.acked_at(101) == 7
    assert client.acks.acked_at(100) == 0
    feed(client, bytes.fromhex(vecs["event"]["hex"]))
    assert events[0].kind == "hit" and events[0].data == {"by": 257, "dmg": 10, "at": [1.5, -2.0]}
    feed(client, bytes.fromhex(vecs["error"]["hex"]))
    assert client.stats.server_errors[-1] == (3, "dx out of range")
    feed(client, bytes.fromhex(vecs["pong"]["hex"]))
    assert client.server_tick == 101


def test_client_message_vectors_match_what_the_client_sends() -> None:
    vecs = {v["name"]: bytes.fromhex(v["hex"]) for v in load("messages")}
    # the exact constructors GameClient uses
    assert M.encode(M.Hello(game="arena", room=None, token=None, name="bob")) == vecs["hello"]
    assert M.encode(M.Hello()) == vecs["hello_minimal"]
    assert M.encode(M.Resume("r-123")) == vecs["resume"]
    assert M.encode(M.Input(7, {"dx": -1.0, "dy": 0.5, "fire": True})) == vecs["input"]
    assert M.encode(M.Ping(1234.5)) == vecs["ping"]
    assert M.encode(M.Leave()) == vecs["leave"]


def test_invalid_message_vectors_are_protocol_errors() -> None:
    for vec in load("messages_invalid"):
        client = GameClient("ws://127.0.0.1:9/ws")
        data = bytes.fromhex(vec["hex"])
        try:
            msg = client._decode(data)
        except _Drop as drop:
            assert isinstance(drop.error, E.ServerProtocolError), vec["name"]
            assert not drop.retry
            continue
        # only an unknown type or a C->S type (wrong direction for a client) is ignored
        # (SPEC.md section 1, rule 4), whatever else is wrong with its body
        assert msg is None, vec["name"]
        kind = msgpack.unpackb(data, strict_map_key=False)[0]
        assert vec["error_code"] == 2 or kind in M.CLIENT_TYPES, vec["name"]
