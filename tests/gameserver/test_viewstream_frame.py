"""The steady VIEW frame built in one join (``viewstream._steady_frame``) is byte for byte
the generic path's ``prepare_message(view_message(...))`` at every WebSocket length form
(7-bit, 16-bit, 64-bit: RFC 6455 section 5.2) and every msgpack array header size."""

from __future__ import annotations

import msgpack
import pytest

from gameserver.viewstream import _steady_frame
from protocol.codes import MsgType
from protocol.frames import prepare_message
from protocol.pieces import view_message


@pytest.mark.parametrize(("count", "size"), [(0, 0), (1, 5), (3, 30), (11, 9), (12, 9),
                                              (5, 200), (20, 3000), (3, 40000),
                                              (2, 70000), (70, 1000)])
@pytest.mark.parametrize("tick", [1, 300, 70000])
def test_steady_frame_equals_generic(count: int, size: int, tick: int) -> None:
    parts = [msgpack.packb([k, bytes([k % 251]) * size], use_bin_type=True)
             for k in range(count)]
    head = msgpack.packb([int(MsgType.VIEW), tick, tick - 1, None], use_bin_type=True)[1:]
    got = _steady_frame(head, parts)
    assert got == prepare_message(view_message(tick, tick - 1, None, parts))
