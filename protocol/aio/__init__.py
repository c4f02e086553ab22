"""asyncio / uvloop transport adapter for the sans-I/O WebSocket core.

* :func:`serve` / :class:`Server`: the server (ws:// and wss://) on :class:`asyncio.Protocol`.
* :func:`connect`: the client.
* :class:`WebSocket`: one connection (both sides): ``recv`` / ``send`` / ``close``.
* :func:`broadcast`: frame once, write the same bytes to many connections.
* :func:`new_event_loop` / :func:`run`: uvloop when importable, asyncio otherwise.
"""

from .client import connect
from .loop import new_event_loop, run
from .server import Server, serve
from .websocket import WebSocket, broadcast

__all__ = ["Server", "WebSocket", "broadcast", "connect", "new_event_loop", "run", "serve"]
