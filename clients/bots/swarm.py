"""The bot swarm: N headless :class:`~clients.client.GameClient` bots in one or P processes.

:func:`run_swarm` is the whole ``python -m clients.bots`` command:

* bots ``0 .. N-1`` are split into P contiguous shares; each share runs in its own process on
  one event loop (uvloop when available; ``procs == 1`` runs in the calling process);
* bot ``i`` starts connecting at ``i / ramp`` seconds (a ramp, so a storm of connects does not
  fail its own test), at most ``max_connecting`` joins in flight per process, and retries a
  failed connect with exponential backoff and jitter;
* every bot decodes and applies every delta (a full replica each), runs its behaviour at the
  input rate, measures tick age / gaps / RTT (see :mod:`clients.bots.report`);
* a bot that fails (join refused, connection lost for good, a bug in a behaviour) stops alone:
  its failure is recorded with its reason and the others go on;
* each process sends a cumulative stats snapshot once per second through a queue; the parent
  merges them, prints the progress line (stderr, ``\\r``-updated on a TTY, plain lines
  otherwise) and at the end the summary; :func:`run_swarm` returns the JSON report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import queue as queue_module
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

import numpy as np

from clients.client import Backoff, GameClient, TickUpdate
from clients.errors import ClientError

from .behaviors import Bot, BotView, input_defaults, load_behavior
from .report import BotStats, ProcessStats, Progress, build_report, format_summary, merge_snapshots

__all__ = ["BehaviorError", "BotRunner", "SwarmConfig", "run_bots", "run_swarm"]

log = logging.getLogger(__name__)


def _random_prefix() -> str:
    tag = "".join(random.SystemRandom().choice("abcdefghijkmnpqrstuvwxyz23456789")
                  for _ in range(4))
    return f"bot-{tag}-"


@dataclass
class SwarmConfig:
    """Settings of one swarm run (times in seconds, rates in Hz)."""

    url: str
    count: int = 10
    behavior: str = "random"
    duration: float | None = None  # None: until interrupted
    procs: int = 1
    game: str | None = None
    room: str | None = None
    ramp: float = 200.0  # connects started per second (whole swarm)
    max_connecting: int = 32  # joins in flight per process (0: unbounded)
    input_every: int = 3  # send an input every N received ticks (0: never)
    connect_timeout: float = 10.0
    stall_timeout: float = 10.0
    ping_interval: float = 2.0
    connect_retries: int = 5
    reconnect_attempts: int = 5
    cafile: str | None = None
    seed: int = 0
    #: player names are ``name_prefix + index``; the default carries a random tag per swarm
    #: ("bot-k3f9-17"), so several swarms (processes, machines) can share one room in games
    #: that refuse duplicate names, as the arena does
    name_prefix: str = field(default_factory=lambda: _random_prefix())
    #: offer the "interest" extension and its "interest/2" step (VIEW streams with SAME
    #: pieces: each bot decodes only what it sees)
    interest: bool = True

    def share(self, proc: int) -> tuple[int, int]:
        """(first bot index, bot count) of process ``proc``."""
        base, extra = divmod(self.count, self.procs)
        first = proc * base + min(proc, extra)
        return first, base + (1 if proc < extra else 0)


class BehaviorError(ClientError):
    """A bot's behaviour raised: that bot stops (its failure names the exception)."""


class BotRunner:
    """One bot: a GameClient, a behaviour instance, its stats. Lean per-delta path."""

    __slots__ = (
        "behavior",
        "client",
        "config",
        "connected_at",
        "defaults",
        "finished",
        "index",
        "min_offset",
        "pongs_seen",
        "process",
        "stats",
        "ticks_since_input",
        "view",
    )

    def __init__(self, index: int, config: SwarmConfig, behavior: Bot, stats: BotStats,
                 process: ProcessStats) -> None:
        self.index = index
        self.config = config
        self.behavior = behavior
        self.stats = stats
        self.process = process
        self.view = BotView(index, np.random.default_rng([config.seed, index]))
        self.min_offset = float("inf")
        self.ticks_since_input = 0
        self.pongs_seen = 0
        self.connected_at: float | None = None
        self.finished = False
        self.defaults: dict[str, Any] = {}
        self.client = GameClient(
            config.url,
            game=config.game,
            room=config.room,
            name=f"{config.name_prefix}{index}",
            interest=config.interest,
            cafile=config.cafile,
            connect_timeout=config.connect_timeout,
            stall_timeout=config.stall_timeout,
            ping_interval=config.ping_interval,
            reconnect=True,
            retry_connect=True,
            backoff=Backoff(base=0.2, cap=5.0, max_attempts=max(config.connect_retries,
                                                                config.reconnect_attempts)),
            on_tick=self._on_tick,
            queue_size=1,
        )

    def _on_tick(self, client: GameClient, update: TickUpdate) -> None:
        if self.finished:
            return  # closing: the bot's counters are frozen, keep the histogram in step
        # tick age: delay beyond the fastest delivery seen (report.py defines it)
        raw = update.received_at - update.tick / client.tick_rate
        if raw < self.min_offset:
            self.min_offset = raw
        self.process.tick_age.record(raw - self.min_offset)
        every = self.config.input_every
        if every <= 0:
            return
        self.ticks_since_input += 1
        if self.ticks_since_input < every:
            return
        self.ticks_since_input = 0
        view = self.view
        if view.world is None:
            return  # not set up yet (the join's first snapshot)
        view.tick = update.tick
        view.world = client.world  # a resume with a new schema replaces the world
        view.entity = client.entity
        try:
            d = self.behavior.decide(view)
        except Exception as exc:
            # the behaviour's bug stops this bot only (its client ends with this error,
            # recorded as the bot's failure); one line, not a traceback per bot
            raise BehaviorError(f"behaviour {type(self.behavior).__name__} failed: {exc!r}"
                                ) from exc
        if d is not None:
            client.send_input(**{**self.defaults, **d})

    def refresh(self) -> None:
        """Copy the client's counters into the bot's stats (called once per report)."""
        c, s = self.client, self.stats
        cs = c.stats
        s.connect_attempts = cs.connect_attempts
        s.reconnects = cs.reconnects
        s.rejoins = c.rejoins
        s.messages_in = cs.messages_in
        s.bytes_in = cs.bytes_in
        s.messages_out = cs.messages_out
        s.bytes_out = cs.bytes_out
        s.deltas = cs.deltas
        s.tick_gaps = cs.tick_gaps
        s.inputs = cs.inputs
        s.events = cs.events
        s.errors = cs.errors
        s.connected = c.connected
        s.player = c.player
        s.send_rate = c.send_rate
        if self.connected_at is not None:
            s.connected_s = time.monotonic() - self.connected_at
        if cs.pongs > self.pongs_seen and c.rtt is not None:
            self.pongs_seen = cs.pongs
            self.process.rtt.record(c.rtt)  # one RTT sample per bot per report interval
        if cs.server_errors:
            code, text = cs.server_errors[-1]
            s.last_error = f"ERROR {code}: {text}"

    async def _connect(self, gate: asyncio.Semaphore | None) -> None:
        if gate is None:
            await self.client.connect()
            return
        async with gate:
            await self.client.connect()

    async def run(self, start_delay: float, stop: asyncio.Event,
                  gate: asyncio.Semaphore | None = None) -> None:
        """Connect after ``start_delay``, play until ``stop`` or a terminal failure. Never raises
        (except cancellation): failures are recorded in ``stats.failure``."""
        client = self.client
        try:
            if start_delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), start_delay)
            if stop.is_set():
                self.stats.failure = "NotStarted: the run ended before this bot's ramp slot"
                return
            t0 = time.monotonic()
            connecting = asyncio.ensure_future(self._connect(gate))
            stopper = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait((connecting, stopper), return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopper.cancel()
            if not connecting.done():
                connecting.cancel()
                with contextlib.suppress(BaseException):
                    await connecting
                self.stats.failure = (f"NotConnected: still connecting when the run ended "
                                      f"({client.stats.connect_attempts} attempts)")
                return
            connecting.result()  # raises the connect failure
            self.connected_at = time.monotonic()
            self.process.connect_time.record(self.connected_at - t0)
            self.stats.connects = 1
            view = self.view
            view.world = client.world
            view.player = client.player
            view.entity = client.entity
            view.inputs = tuple(getattr(client.welcome, "inputs", ()) or ())
            self.defaults = input_defaults(view.inputs)
            self.behavior.setup(view)
            stopper = asyncio.ensure_future(stop.wait())
            ender = asyncio.ensure_future(client.wait_closed())
            try:
                await asyncio.wait((stopper, ender), return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopper.cancel()
            if ender.done():
                ender.result()  # raises the client's terminal error
            else:
                ender.cancel()
        except ClientError as exc:
            self.stats.failure = f"{type(exc).__name__}: {exc}"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in a behaviour: this bot stops, the others go on
            log.info("bot %d failed: %r", self.index, exc)
            self.stats.failure = f"{type(exc).__name__}: {exc}"
        finally:
            self.refresh()
            self.finished = True  # counters frozen here: what arrives while closing is not
            self.connected_at = None  # counted (connected_s stays at the session's length)
            with contextlib.suppress(Exception):
                await client.close()
            self.stats.connected = False


async def run_bots(
    config: SwarmConfig,
    first: int,
    count: int,
    *,
    stop: asyncio.Event,
    report: Callable[[dict[str, Any]], None] | None = None,
    report_interval: float = 1.0,
) -> dict[str, Any]:
    """Run bots ``first .. first+count-1`` on the running loop until ``stop`` / the duration.

    ``report(snapshot)`` is called every ``report_interval`` seconds with a cumulative
    :meth:`ProcessStats.snapshot`; the final snapshot is returned.
    """
    behavior_cls = load_behavior(config.behavior)
    pstats = ProcessStats(first, count)
    runners = [
        BotRunner(first + i, config, behavior_cls(), pstats.bots[i], pstats)
        for i in range(count)
    ]
    cpu0 = time.process_time()
    ramp = max(config.ramp, 1e-3)
    # at most this many joins in flight: a process already busy with hundreds of streams
    # would otherwise time out its own new joins (each waits for a full snapshot)
    gate = asyncio.Semaphore(config.max_connecting) if config.max_connecting > 0 else None
    tasks = [
        asyncio.ensure_future(r.run(r.index / ramp, stop, gate)) for r in runners
    ]

    t_start = time.monotonic()

    def snapshot() -> dict[str, Any]:
        for r in runners:
            if not r.finished:
                r.refresh()
        pstats.cpu_seconds = time.process_time() - cpu0
        if not stop.is_set():
            deltas = sum(r.stats.deltas for r in runners)
            elapsed = time.monotonic() - t_start
            pstats.samples.append((elapsed, pstats.cpu_seconds, deltas))
            if len(pstats.samples) > 7200:  # bounded: keep the last hour
                del pstats.samples[:-3600]
        return pstats.snapshot()

    loop = asyncio.get_running_loop()
    deadline = None if config.duration is None else loop.time() + config.duration
    mark_timer = None
    if deadline is not None and config.duration is not None:
        def mark() -> None:  # the steady window starts at half the run, whatever the cadence
            if pstats.steady_mark is None and not stop.is_set():
                pstats.steady_mark = pstats.tick_age.to_state()
        mark_timer = loop.call_at(deadline - config.duration / 2, mark)
    all_done = asyncio.gather(*tasks, return_exceptions=True)
    try:
        while not all_done.done():
            wait = report_interval
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    stop.set()
                    break
                wait = min(wait, left)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(all_done), wait)
            if not all_done.done():
                snap = snapshot()  # also records a CPU / deltas sample
                if report is not None:
                    report(snap)
        stop.set()
        # every bot closes politely (bounded by GameClient.close_timeout)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(all_done), 15.0)
    finally:
        if mark_timer is not None:
            mark_timer.cancel()
        if not all_done.done():
            for t in tasks:
                t.cancel()
            with contextlib.suppress(BaseException):
                await all_done
    return snapshot()


# ------------------------------------------------------------------------ processes

def _child(config_dict: dict[str, Any], proc: int, q: Any) -> None:
    """Entry point of one bot process: run its share, stream snapshots to the parent."""
    logging.basicConfig(level=logging.WARNING)
    config = SwarmConfig(**config_dict)
    first, count = config.share(proc)
    from protocol.aio import run

    async def main() -> dict[str, Any]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        return await run_bots(config, first, count, stop=stop,
                              report=lambda s: q.put(("progress", proc, s)))

    try:
        final = run(main())
        q.put(("final", proc, final))
    except BaseException as exc:  # report the crash; the parent marks this share failed
        q.put(("crash", proc, f"{type(exc).__name__}: {exc}"))
        raise


class _Printer:
    """The live progress line: ``\\r``-rewritten on a TTY, one line per update otherwise."""

    def __init__(self, out: TextIO, total: int) -> None:
        self.out = out
        self.tty = out.isatty()
        self.progress = Progress(total)
        self.start = time.monotonic()
        self._width = 0

    def update(self, merged: dict[str, Any]) -> None:
        now = time.monotonic()
        line = self.progress.line(merged, now, now - self.start)
        if self.tty:
            pad = max(0, self._width - len(line))
            self.out.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def done(self) -> None:
        if self.tty and self._width:
            self.out.write("\n")
            self.out.flush()


def _crashed_share(config: SwarmConfig, proc: int, why: str,
                   last: dict[str, Any] | None) -> dict[str, Any]:
    first, count = config.share(proc)
    if last is None:
        last = ProcessStats(first, count).snapshot()
    for b in last["bots"]:
        b["connected"] = False
        if not b["failure"]:
            b["failure"] = f"ProcessCrashed: {why}"
    return last


def run_swarm(config: SwarmConfig, *, out: TextIO | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Run the whole swarm (blocking); print progress + summary to ``out`` (default stderr);
    return the JSON report (see :func:`clients.bots.report.build_report`)."""
    out = out or sys.stderr
    if config.count < 1 or config.procs < 1:
        raise ValueError("count and procs must be >= 1")
    load_behavior(config.behavior)  # fail fast on a bad --behavior (our caller's mistake)
    procs = min(config.procs, config.count)
    config.procs = procs
    printer = _Printer(out, config.count) if progress else None
    t0 = time.monotonic()
    if procs == 1:
        merged = _run_inline(config, printer)
    else:
        merged = _run_processes(config, printer)
    duration = time.monotonic() - t0
    if printer is not None:
        printer.done()
    report = build_report(merged, duration=duration, config=asdict(config))
    out.write(format_summary(report) + "\n")
    out.flush()
    return report


def _run_inline(config: SwarmConfig, printer: _Printer | None) -> dict[str, Any]:
    from protocol.aio import run

    async def main() -> dict[str, Any]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)

        def show(snap: dict[str, Any]) -> None:
            if printer is not None:
                printer.update(merge_snapshots([snap]))

        snap = await run_bots(config, 0, config.count, stop=stop, report=show)
        return merge_snapshots([snap])

    return run(main())


def _run_processes(config: SwarmConfig, printer: _Printer | None) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q: Any = ctx.Queue(maxsize=1024)
    cfg = asdict(config)
    children = [ctx.Process(target=_child, args=(cfg, p, q), name=f"bots-{p}", daemon=True)
                for p in range(config.procs)]
    for c in children:
        c.start()
    latest: dict[int, dict[str, Any]] = {}
    final: dict[int, dict[str, Any]] = {}
    interrupted = False
    last_print = 0.0
    limit = None if config.duration is None else time.monotonic() + config.duration + 60.0
    try:
        while len(final) < config.procs:
            try:
                kind, proc, payload = q.get(timeout=0.5)
            except queue_module.Empty:
                for p, c in enumerate(children):
                    if p not in final and not c.is_alive():
                        final[p] = _crashed_share(config, p, f"exit code {c.exitcode}",
                                                  latest.get(p))
                if limit is not None and time.monotonic() > limit:
                    break
                continue
            except KeyboardInterrupt:
                interrupted = True  # the children got SIGINT too and are finishing
                continue
            if kind == "progress":
                latest[proc] = payload
            elif kind == "final":
                final[proc] = payload
            else:
                final[proc] = _crashed_share(config, proc, str(payload), latest.get(proc))
            now = time.monotonic()
            if printer is not None and now - last_print >= 0.9 and len(latest) == config.procs:
                last_print = now
                printer.update(merge_snapshots(latest.values()))
    finally:
        for p, c in enumerate(children):
            c.join(timeout=5.0 if not interrupted else 10.0)
            if c.is_alive():
                c.terminate()
                c.join(timeout=2.0)
            if p not in final:
                final[p] = _crashed_share(config, p, "did not report", latest.get(p))
        with contextlib.suppress(Exception):
            q.close()
    return merge_snapshots(final[p] for p in sorted(final))


def default_procs() -> int:
    """One bot process per CPU core."""
    return max(1, os.cpu_count() or 1)
