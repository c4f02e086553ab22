"""The wire: our RFC 6455 / RFC 7692 WebSocket implementation and the game message codec.

Everything directly in this package is sans-I/O (bytes in, events out; no asyncio, socket,
ssl or uvloop import, enforced by ``tests/protocol/test_sans_io.py``). The asyncio / uvloop
transport adapter lives in :mod:`protocol.aio`.
"""
