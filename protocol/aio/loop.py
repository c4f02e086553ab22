"""Event loop selection: uvloop when importable, the standard asyncio loop otherwise.

uvloop is a runtime dependency on POSIX, but the adapter never requires it: every code path
in :mod:`protocol.aio` only uses the public ``asyncio`` loop / transport API, so the plain
asyncio loop is a complete (slower) fallback. Set ``GAMESERVER_NO_UVLOOP=1`` to force the
fallback (used by the tests to exercise both paths).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["HAVE_UVLOOP", "loop_name", "new_event_loop", "run"]

T = TypeVar("T")

_uvloop: Any
try:  # pragma: no cover - depends on the platform
    import uvloop as _uvloop
except ImportError:  # pragma: no cover
    _uvloop = None

#: True when uvloop is importable (it may still be disabled by ``GAMESERVER_NO_UVLOOP``).
HAVE_UVLOOP: bool = _uvloop is not None


def _use_uvloop(prefer_uvloop: bool | None) -> bool:
    if prefer_uvloop is None:
        prefer_uvloop = os.environ.get("GAMESERVER_NO_UVLOOP", "") in ("", "0")
    return prefer_uvloop and _uvloop is not None


def new_event_loop(prefer_uvloop: bool | None = None) -> asyncio.AbstractEventLoop:
    """Return a new event loop: a uvloop loop when available and wanted, else asyncio's.

    ``prefer_uvloop=None`` means "uvloop unless ``GAMESERVER_NO_UVLOOP`` is set".
    """
    if _use_uvloop(prefer_uvloop):
        assert _uvloop is not None
        return _uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(
    coro: Coroutine[Any, Any, T], *, prefer_uvloop: bool | None = None, debug: bool | None = None
) -> T:
    """Run ``coro`` to completion on a fresh loop from :func:`new_event_loop` and close it.

    Same semantics as :func:`asyncio.run` (remaining tasks are cancelled, async generators
    and the default executor are shut down).
    """
    with asyncio.Runner(
        debug=debug, loop_factory=lambda: new_event_loop(prefer_uvloop)
    ) as runner:
        return runner.run(coro)


def loop_name(loop: asyncio.AbstractEventLoop | None = None) -> str:
    """``"uvloop"`` or ``"asyncio"`` for ``loop`` (default: the running loop); for logs."""
    if loop is None:
        loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
