"""Client SDKs: the Python :class:`GameClient`, the bot swarm, and the browser client in ``web/``.

Python quick start::

    from clients import GameClient

    async with GameClient("ws://127.0.0.1:8000/ws", game="arena", name="ann") as client:
        async for update in client.updates():
            xs = client.world["x"]            # numpy, real (dequantized) values
            client.send_input(dx=1.0, dy=0.0)

See :mod:`clients.client` (connection contract), :mod:`clients.interpolation` (render
remote entities smoothly), :mod:`clients.prediction` (predict the local player) and
:mod:`clients.bots` (``python -m clients.bots``).
"""

from .client import Backoff, ClientStats, GameClient, GameEvent, TickUpdate
from .errors import (
    ClientClosed,
    ClientError,
    ConnectionLost,
    ConnectTimeout,
    Disconnected,
    JoinRejected,
    RedirectLoop,
    Rejected,
    ReservationInvalid,
    ResumeRejected,
    RoomFull,
    ServerProtocolError,
    ServerStalled,
    SpectatorsFull,
    Unauthorized,
    UnknownRoom,
    VersionMismatch,
)
from .interpolation import Frame, InterpolationBuffer, interpolate
from .matchmake import MatchmakeError, Seat, matchmake
from .prediction import AckTracker, PendingInput, Predictor
from .world import WorldView

__all__ = [
    "AckTracker",
    "Backoff",
    "ClientClosed",
    "ClientError",
    "ClientStats",
    "ConnectTimeout",
    "ConnectionLost",
    "Disconnected",
    "Frame",
    "GameClient",
    "GameEvent",
    "InterpolationBuffer",
    "JoinRejected",
    "MatchmakeError",
    "PendingInput",
    "Predictor",
    "RedirectLoop",
    "Rejected",
    "ReservationInvalid",
    "ResumeRejected",
    "RoomFull",
    "Seat",
    "ServerProtocolError",
    "ServerStalled",
    "SpectatorsFull",
    "TickUpdate",
    "Unauthorized",
    "UnknownRoom",
    "VersionMismatch",
    "WorldView",
    "interpolate",
    "matchmake",
]
