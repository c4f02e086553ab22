"""``Connection.receiving_partial``: what the frame deadline (``frame_timeout``) watches."""

from __future__ import annotations

import os

from protocol.connection import Connection, Side
from protocol.frames import encode_frame


def _frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    return encode_frame(opcode, payload, fin=fin, mask=os.urandom(4))


def test_partial_frame_and_fragmented_message() -> None:
    c = Connection(Side.SERVER)
    assert not c.receiving_partial
    whole = _frame(2, b"hello world")
    c.receive_data(whole[:1])  # one header byte
    assert c.receiving_partial
    c.receive_data(whole[1:5])  # header + part of the mask
    assert c.receiving_partial
    events = c.receive_data(whole[5:])
    assert [type(e).__name__ for e in events] == ["BinaryMessage"]
    assert not c.receiving_partial
    # a fragmented message: partial until its final fragment, even across a ping
    c.receive_data(_frame(2, b"abc", fin=False))
    assert c.receiving_partial
    c.receive_data(_frame(9, b"p"))  # a control frame between fragments
    assert c.receiving_partial
    events = c.receive_data(_frame(0, b"def", fin=True))
    assert [type(e).__name__ for e in events] == ["BinaryMessage"]
    assert not c.receiving_partial
    # a big frame streamed in pieces: partial while payload bytes are missing
    big = _frame(2, b"x" * 70000)
    c.receive_data(big[:20000])
    assert c.receiving_partial
    c.receive_data(big[20000:])
    assert not c.receiving_partial
