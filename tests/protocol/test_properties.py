"""Property tests (hypothesis): chunking never changes the outcome; messages round-trip."""

from __future__ import annotations

import itertools
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.connection import Connection, Side
from protocol.deflate import DeflateParams, Deflater
from protocol.events import BinaryMessage, Event, ProtocolFailure, TextMessage
from protocol.frames import BINARY, CONT, PING, TEXT, encode_frame

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Message = str | bytes
messages = st.lists(
    st.one_of(st.text(max_size=300), st.binary(max_size=3000)), min_size=1, max_size=6
)


def send(conn: Connection, msg: str | bytes) -> None:
    if isinstance(msg, str):
        conn.send_text(msg)
    else:
        conn.send_binary(msg)


def encode_message(
    msg: Message, cuts: list[int], *, mask: bool, deflater: Deflater | None, ping_between: bool
) -> bytes:
    """One message as (possibly fragmented, compressed) frames with pings between fragments."""
    opcode = TEXT if isinstance(msg, str) else BINARY
    payload = msg.encode() if isinstance(msg, str) else msg
    rsv1 = deflater is not None
    if deflater is not None:
        payload = deflater.compress(payload)
    bounds = sorted({c % (len(payload) + 1) for c in cuts} | {0, len(payload)})
    if len(bounds) == 1:
        bounds = [0, 0]
    out = []
    key = os.urandom(4) if mask else None
    for i in range(len(bounds) - 1):
        last = i == len(bounds) - 2
        out.append(
            encode_frame(
                opcode if i == 0 else CONT,
                payload[bounds[i] : bounds[i + 1]],
                fin=last,
                mask=key,
                rsv1=rsv1 and i == 0,
            )
        )
        if ping_between and not last:
            out.append(encode_frame(PING, b"hb", mask=key))
    return b"".join(out)


def expected(msg: Message) -> Event:
    return TextMessage(msg) if isinstance(msg, str) else BinaryMessage(msg)


def feed_chunks(conn: Connection, data: bytes, cuts: list[int]) -> list[Event]:
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    events: list[Event] = []
    for a, b in itertools.pairwise(bounds):
        events += conn.receive_data(data[a:b])
    return events


def normalized(events: list[Event]) -> list[object]:
    # failure *reasons* may word the same violation differently; the code may not differ
    return [("failure", e.code) if isinstance(e, ProtocolFailure) else e for e in events]


@SETTINGS
@given(
    msgs=messages,
    frag_cuts=st.lists(st.integers(0, 5000), max_size=4),
    chunk_cuts=st.lists(st.integers(0, 50_000), max_size=30),
    deflate=st.booleans(),
    ping=st.booleans(),
)
def test_any_chunking_gives_same_events(
    msgs: list[Message], frag_cuts: list[int], chunk_cuts: list[int], deflate: bool, ping: bool
) -> None:
    params = DeflateParams() if deflate else None
    deflater = Deflater(15, False, 6, 5) if deflate else None
    data = b"".join(
        encode_message(m, frag_cuts, mask=True, deflater=deflater, ping_between=ping) for m in msgs
    )
    whole = Connection(Side.SERVER, deflate=params)
    events = whole.receive_data(data)
    assert [e for e in events if isinstance(e, TextMessage | BinaryMessage)] == [
        expected(m) for m in msgs
    ]
    chunked = Connection(Side.SERVER, deflate=params)
    assert feed_chunks(chunked, data, chunk_cuts) == events
    assert chunked.data_to_send() == whole.data_to_send()


@SETTINGS
@given(
    data=st.binary(max_size=400),
    chunk_cuts=st.lists(st.integers(0, 400), max_size=20),
    side=st.sampled_from(Side),
    deflate=st.booleans(),
)
def test_arbitrary_bytes_chunking_invariant_and_never_raises(
    data: bytes, chunk_cuts: list[int], side: Side, deflate: bool
) -> None:
    params = DeflateParams() if deflate else None
    whole = Connection(side, deflate=params, max_message_size=200)
    events = whole.receive_data(data)
    chunked = Connection(side, deflate=params, max_message_size=200)
    assert normalized(feed_chunks(chunked, data, chunk_cuts)) == normalized(events)
    assert chunked.state == whole.state and chunked.close_code == whole.close_code


@SETTINGS
@given(
    msgs=messages,
    deflate=st.booleans(),
    snct=st.booleans(),
    cnct=st.booleans(),
    min_size=st.integers(0, 100),
    bits=st.tuples(st.integers(8, 15), st.integers(8, 15)),
)
def test_round_trip_client_server_and_back(
    msgs: list[Message],
    deflate: bool,
    snct: bool,
    cnct: bool,
    min_size: int,
    bits: tuple[int, int],
) -> None:
    params = DeflateParams(snct, cnct, *bits, min_size=min_size) if deflate else None
    client = Connection(Side.CLIENT, deflate=params)
    server = Connection(Side.SERVER, deflate=params)
    for msg in msgs:
        send(client, msg)
    received = server.receive_data(client.data_to_send())
    assert received == [expected(m) for m in msgs]
    for event in received:
        assert isinstance(event, TextMessage | BinaryMessage)
        send(server, event.data)
    assert client.receive_data(server.data_to_send()) == [expected(m) for m in msgs]


@SETTINGS
@given(msgs=messages, frag_cuts=st.lists(st.integers(0, 5000), max_size=4), deflate=st.booleans())
def test_fragmented_server_to_client(
    msgs: list[Message], frag_cuts: list[int], deflate: bool
) -> None:
    deflater = Deflater(15, False, 6, 5) if deflate else None
    client = Connection(Side.CLIENT, deflate=DeflateParams() if deflate else None)
    data = b"".join(
        encode_message(m, frag_cuts, mask=False, deflater=deflater, ping_between=True) for m in msgs
    )
    events = client.receive_data(data)
    assert [e for e in events if isinstance(e, TextMessage | BinaryMessage)] == [
        expected(m) for m in msgs
    ]


frame_specs = st.lists(
    st.tuples(
        st.sampled_from([0, 1, 2, 3, 8, 9, 10, 0xB]),  # opcode, some invalid
        st.one_of(st.binary(max_size=40), st.just("é€".encode() * 5), st.just(b"\xf4\x90")),
        st.booleans(),  # fin
        st.integers(0, 20),  # rsv1 when 0 (rare)
        st.integers(0, 30),  # unmasked when 0 (rare)
    ),
    min_size=1,
    max_size=8,
)


@SETTINGS
@given(
    specs=frame_specs, chunk_cuts=st.lists(st.integers(0, 600), max_size=20), deflate=st.booleans()
)
def test_near_valid_frames_chunking_invariant(
    specs: list[tuple[int, bytes, bool, int, int]], chunk_cuts: list[int], deflate: bool
) -> None:
    data = b"".join(
        encode_frame(op, payload, fin=fin, rsv1=rsv == 0, mask=None if m == 0 else b"abcd")
        for op, payload, fin, rsv, m in specs
    )
    params = DeflateParams() if deflate else None
    whole = Connection(Side.SERVER, deflate=params, max_message_size=100)
    events = whole.receive_data(data)
    chunked = Connection(Side.SERVER, deflate=params, max_message_size=100)
    assert normalized(feed_chunks(chunked, data, chunk_cuts)) == normalized(events)
    assert chunked.data_to_send() == whole.data_to_send() or any(
        isinstance(e, ProtocolFailure) for e in events
    )
    assert (chunked.state, chunked.close_code) == (whole.state, whole.close_code)
