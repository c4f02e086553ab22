"""``python -m protocol.echo``: a WebSocket echo server (conformance and benchmark testee).

Echoes every text and binary message back unchanged, up to ``--max-size`` bytes (default
16 MiB; larger messages are refused with close code 1009). Selects the first subprotocol the
client offers among the ``--subprotocol`` names it was given. ``--deflate`` enables
permessage-deflate (RFC 7692). ``--tls-cert`` / ``--tls-key`` serve wss://. Logs its URL at
startup (``echo listening url=ws://HOST:PORT``, also with ``--port 0``) and exits cleanly on
SIGINT / SIGTERM (closing open connections with 1001).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import sys

from .aio import WebSocket, run, serve
from .aio.loop import loop_name

log = logging.getLogger("protocol.echo")


async def echo(ws: WebSocket) -> None:
    """Send every received message back (with ``send``: waits under backpressure)."""
    async for message in ws:
        await ws.send(message)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m protocol.echo", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9001, help="0 picks a free port (logged)")
    p.add_argument("--subprotocol", action="append", default=[], metavar="NAME")
    p.add_argument("--max-size", type=int, default=16 * 2**20, metavar="BYTES")
    p.add_argument("--deflate", action="store_true", help="accept permessage-deflate")
    p.add_argument("--tls-cert", metavar="PEM", help="certificate chain (wss://)")
    p.add_argument("--tls-key", metavar="PEM", help="private key for --tls-cert")
    p.add_argument("--no-ping", action="store_true", help="disable keepalive pings")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    return args


async def _main(args: argparse.Namespace) -> None:
    ctx = None
    if args.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
    server = await serve(
        echo, args.host, args.port, ssl=ctx, subprotocols=args.subprotocol,
        deflate=args.deflate, max_message_size=args.max_size,
        ping_interval=None if args.no_ping else 20.0,
        # Echoing big messages: let a whole max-size message be queued and buffered.
        read_limit=max(2**20, args.max_size), write_limit=max(64 * 1024, args.max_size),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    scheme = "wss" if ctx else "ws"
    host = f"[{args.host}]" if ":" in args.host else args.host
    log.info("echo listening url=%s://%s:%d loop=%s deflate=%s subprotocols=%s",
             scheme, host, server.port, loop_name(), args.deflate, ",".join(args.subprotocol))
    await stop.wait()
    log.info("echo shutting down connections=%d", len(server.connections))
    await server.shutdown(1001, "server shutting down", timeout=2.0)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    run(_main(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
