"""Incremental, fail-fast UTF-8 validation for text messages (RFC 6455 section 8.1).

The text of a fragmented message is validated fragment by fragment (and chunk by chunk inside
one large frame), so an invalid byte fails the connection with 1007 as soon as it arrives,
not when the message ends (Autobahn 6.4.x). CPython's incremental decoder already raises as
soon as a sequence can no longer be valid, with one exception we patch: an encoded surrogate
prefix ``ED A0..BF`` held at the end of a chunk is only rejected once its third byte arrives.
"""

from __future__ import annotations

import codecs

from .errors import InvalidPayload

__all__ = ["Utf8Validator", "decode"]

_decoder_factory = codecs.getincrementaldecoder("utf-8")


def decode(data: bytes | bytearray | memoryview) -> str:
    """Decode a complete UTF-8 payload; raise :class:`InvalidPayload` (1007) if invalid."""
    try:
        return str(data, "utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidPayload(f"invalid UTF-8 at byte {exc.start}") from None


class Utf8Validator:
    """Decode a text message incrementally; :meth:`feed` raises on the first invalid byte."""

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = _decoder_factory("strict")

    def feed(self, data: bytes | bytearray | memoryview, final: bool = False) -> str:
        """Decode the next chunk; ``final`` means the message ends with it.

        Returns the text decoded so far from this chunk (an incomplete trailing sequence is
        held back). Raises :class:`InvalidPayload` as soon as the bytes cannot be valid UTF-8.
        """
        try:
            text: str = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise InvalidPayload(f"invalid UTF-8: {exc.reason}") from None
        if not final:
            pending = self._decoder.getstate()[0]
            # ED A0..BF starts a UTF-16 surrogate (U+D800..U+DFFF): never valid UTF-8.
            if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
                raise InvalidPayload("invalid UTF-8: encoded surrogate")
        return text

    def reset(self) -> None:
        """Forget any pending partial sequence (start of a new message)."""
        self._decoder.reset()
