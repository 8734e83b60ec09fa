"""The media engine: one paced scheduler and one batched receiver for ALL streams.

Design (why not one task per stream): a prototype with an asyncio task per stream spent
about 2 ms of CPU per stream-second, most of it in the event loop (a timer handle and a
wake-up per frame, a read callback and a 256 KiB buffer per datagram), and topped out near
250 streams. Here:

- **Sending**: one scheduler, driven by a single loop timer, owns a heap of
  ``(deadline, stream)``. Every deadline lies on a fixed grid (``start + n * ptime``) of
  one monotonic clock, so nothing drifts over a long call, however late a wake-up was.
  Each wake-up sends a frame for every stream that is due (encode, packetize, protect,
  send) and re-arms for the earliest next deadline. Loop timers are coarse (uvloop fires
  up to ~1.3 ms early, the default loop up to 1 ms late): the timer aims half the early
  slack before the deadline, a wake-up sends what is due within ``early_slack`` and an
  early one just re-arms. Streams start on phases spread over the frame (golden-ratio
  sequence), so 600 streams do not all fall on the same millisecond.
- **Receiving**: all RTP/RTCP sockets are registered in one ``epoll`` object. Every
  scheduler wake-up, after sending, reads the ready sockets with ``recvfrom`` (2 KiB, no
  loop object per datagram) until the next deadline comes near. Only when the next
  wake-up is more than 2 ms away does the loop watch the epoll fd itself, so a busy
  engine reads in batches and a quiet one at once (on non-Linux systems each socket gets
  ``loop.add_reader`` instead).
- Ports: a random EVEN port from [RTP Port Min, RTP Port Max] drawn with ``secrets``
  (via :mod:`sippa.net.ports`), RTCP on port + 1 unless rtcp-mux.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from sippa.media.audio import AudioSink, AudioSource
from sippa.media.config import EngineSettings, StreamConfig
from sippa.media.stream import MediaStream
from sippa.net.ports import PortRange, bind_rtp_pair

__all__ = ["LatenessHistogram", "MediaEngine", "PortReservation", "Scheduler"]

_log = logging.getLogger(__name__)

_RECV_SIZE = 2048  # RTP/RTCP datagrams larger than this are not media we handle
_EPOLL_BATCH = 1024  # ready sockets taken per epoll round
_DRAIN_ROUNDS = 4  # a socket with a backlog gives one datagram per round
_ARM_GAP = 0.002  # arm the loop reader only when the next tick is further away than this
_GOLDEN = (math.sqrt(5) - 1) / 2  # low-discrepancy phase sequence


@dataclass(slots=True)
class LatenessHistogram:
    """Send lateness (send time minus deadline) in 0.1 ms buckets, up to 100 ms."""

    buckets: list[int] = field(default_factory=lambda: [0] * 1001)
    count: int = 0
    early: int = 0
    """Frames sent before their deadline (within the early slack)."""
    max_early: float = 0.0
    """The earliest a frame went out before its deadline, seconds."""

    def add(self, lateness: float) -> None:
        if lateness <= 0:
            if lateness < 0:
                self.early += 1
                self.max_early = max(self.max_early, -lateness)
            self.buckets[0] += 1
        else:
            self.buckets[min(int(lateness * 10000), 1000)] += 1
        self.count += 1

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile (0..100) in seconds (upper edge of its bucket)."""
        if not self.count:
            return 0.0
        target = math.ceil(self.count * p / 100)
        seen = 0
        for i, n in enumerate(self.buckets):
            seen += n
            if seen >= target:
                return min((i + 1) / 10000, 0.1) if i else 0.0
        return 0.1

    def reset(self) -> None:
        self.buckets = [0] * 1001
        self.count = 0
        self.early = 0
        self.max_early = 0.0


class Scheduler:
    """Fixed-grid deadlines for many periodic jobs (sans-IO: time comes in as ``now``).

    A job is anything with ``tick(deadline, now) -> None``. ``due(now)`` pops every job whose
    deadline is at most ``now + early_slack``, calls it and re-arms it at ``deadline +
    period`` — the grid never moves with the time a job actually ran. A job that fell more
    than ``max_catch_up`` periods behind (a stalled loop) is moved forward to the next grid
    point after ``now`` and told how many frames it skipped, instead of sending a burst.
    """

    def __init__(self, *, early_slack: float = 0.001, max_catch_up: int = 5) -> None:
        self.early_slack = early_slack
        self.max_catch_up = max_catch_up
        self._heap: list[tuple[float, int, float, _Job]] = []
        self._order = 0
        self._phase = 0.0
        self.lateness = LatenessHistogram()

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, job: _Job, period: float, now: float, *, phase: float | None = None) -> float:
        """Schedule ``job`` every ``period`` seconds; returns its first deadline.

        ``phase`` (0..1 of a period) defaults to the next point of a golden-ratio sequence,
        which spreads jobs evenly over the period however many are added.
        """
        if phase is None:
            self._phase = (self._phase + _GOLDEN) % 1.0
            phase = self._phase
        first = now + phase * period
        self._order += 1
        heapq.heappush(self._heap, (first, self._order, period, job))
        return first

    def next_deadline(self) -> float | None:
        """The earliest deadline, or None when nothing is scheduled."""
        return self._heap[0][0] if self._heap else None

    def due(
        self, now: float, clock: Callable[[], float] | None = None, budget: float = 0.005
    ) -> int:
        """Run every job due at ``now``; returns how many ran.

        With ``clock``, ``now`` is refreshed every few jobs and the call returns after
        ``budget`` seconds even if more jobs are due, so an overloaded engine still lets
        the loop (and its receive path) run between batches.
        """
        heap = self._heap
        limit = now + self.early_slack
        ran = 0
        lateness = self.lateness
        buckets = lateness.buckets
        stop_at = now + budget
        pop, push = heapq.heappop, heapq.heappush
        while heap and heap[0][0] <= limit:
            # popped before the tick and pushed after it, so a tick that schedules another
            # job (Scheduler.add) cannot disturb this one's entry
            deadline, order, period, job = pop(heap)
            if job.closed:
                continue
            behind = now - deadline
            if behind > self.max_catch_up * period:
                skipped = int(behind / period)
                job.skip(skipped)
                deadline += skipped * period
                behind = now - deadline
            try:
                job.tick(deadline, now)
            except Exception:
                _log.exception("media job %r failed a tick", job)
            if behind > 0.0:  # LatenessHistogram.add, inlined (once per frame)
                buckets[int(behind * 10000) if behind < 0.1 else 1000] += 1
                lateness.count += 1
            else:
                lateness.add(behind)
            push(heap, (deadline + period, order, period, job))
            ran += 1
            if clock is not None and not ran & 15:
                now = clock()
                if now > stop_at:
                    break
                limit = now + self.early_slack
        return ran


class _Job(Protocol):  # what the Scheduler drives (MediaStream implements it)
    closed: bool

    def tick(self, deadline: float, now: float) -> None: ...

    def skip(self, frames: int) -> None: ...


@dataclass(slots=True)
class PortReservation:
    """Sockets bound for one stream before its parameters are known (for the SDP offer)."""

    port: int
    rtp: socket.socket
    rtcp: socket.socket | None


_RecvFrom = Callable[[int], tuple[bytes, tuple[str, int]]]


class _Receiver:
    """Reads every ready socket in batches (epoll on Linux, add_reader elsewhere).

    The engine calls :meth:`drain` at every scheduler wake-up. While wake-ups are close
    together (a busy engine) the loop is not told about the epoll fd at all, so received
    datagrams cost no loop iteration of their own: they are read in one batch per tick.
    When the next tick is far away, :meth:`arm` lets the loop call :meth:`drain` as soon
    as something arrives, so a quiet engine still reads with low latency.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        # fd -> (the socket's recvfrom, the stream's handler)
        self._handlers: dict[int, tuple[_RecvFrom, Callable[[bytes, tuple[str, int]], None]]]
        self._handlers = {}
        self._epoll: select.epoll | None = None
        self._armed = False
        if hasattr(select, "epoll"):
            self._epoll = select.epoll()
            self.arm()

    def arm(self) -> None:
        """Have the loop call :meth:`drain` whenever a datagram arrives."""
        if self._epoll is not None and not self._armed:
            self._loop.add_reader(self._epoll.fileno(), self.drain)
            self._armed = True

    def disarm(self) -> None:
        """Leave reading to the next :meth:`drain` call (the scheduler's next tick)."""
        if self._epoll is not None and self._armed:
            self._loop.remove_reader(self._epoll.fileno())
            self._armed = False

    def register(
        self, sock: socket.socket, handler: Callable[[bytes, tuple[str, int]], None]
    ) -> None:
        fd = sock.fileno()
        self._handlers[fd] = (sock.recvfrom, handler)
        if self._epoll is not None:
            self._epoll.register(fd, select.EPOLLIN)
        else:
            self._loop.add_reader(fd, self._read_one, fd)

    def unregister(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        if fd < 0 or self._handlers.pop(fd, None) is None:
            return
        if self._epoll is not None:
            with contextlib.suppress(OSError):
                self._epoll.unregister(fd)
        else:
            self._loop.remove_reader(fd)

    def drain(
        self,
        until: float | None = None,
        clock: Callable[[], float] | None = None,
        at_least: int = 0,
    ) -> int:
        """Read what is waiting on every socket (one datagram per socket and round).

        With ``until`` and ``clock``, stop once ``clock()`` passes ``until`` (checked every
        32 datagrams) after at least ``at_least`` datagrams: the rest stays queued for the
        next call, so reading does not delay the next send deadline, yet keeps pace with
        what was sent even when the engine is behind.
        """
        epoll = self._epoll
        if epoll is None:
            return 0
        handlers = self._handlers
        total = 0
        for _ in range(_DRAIN_ROUNDS):
            try:
                ready = epoll.poll(0, _EPOLL_BATCH)
            except OSError:
                _log.exception("epoll failed")
                return total
            for fd, _ in ready:
                entry = handlers.get(fd)
                if entry is None:
                    continue
                recvfrom, handler = entry
                try:
                    data, addr = recvfrom(_RECV_SIZE)
                except OSError:  # EAGAIN, or an ICMP error reported on a UDP socket
                    continue
                try:
                    handler(data, addr)
                except Exception:
                    _log.exception("media receive handler failed")
                total += 1
                if (
                    not total & 31
                    and until is not None
                    and clock is not None
                    and total >= at_least
                    and clock() > until
                ):
                    return total
            if len(ready) < _EPOLL_BATCH // 4:
                break  # nearly every socket was drained by this round
        return total

    def _read_one(self, fd: int) -> None:
        entry = self._handlers.get(fd)
        if entry is None:
            return
        recvfrom, handler = entry
        for _ in range(8):
            try:
                data, addr = recvfrom(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            try:
                handler(data, addr)
            except Exception:
                _log.exception("media receive handler failed")

    def close(self) -> None:
        if self._epoll is not None:
            self._loop.remove_reader(self._epoll.fileno())
            self._epoll.close()
            self._epoll = None
        else:
            for fd in list(self._handlers):
                self._loop.remove_reader(fd)
        self._handlers.clear()


class MediaEngine:
    """Runs every media stream of the process. Use ``async with MediaEngine(...)``."""

    def __init__(
        self,
        settings: EngineSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or EngineSettings()
        self.clock = clock
        self.wallclock = wallclock
        self.scheduler = Scheduler(
            early_slack=self.settings.early_slack, max_catch_up=self.settings.max_catch_up
        )
        self._ports = PortRange(self.settings.rtp_port_min, self.settings.rtp_port_max)
        self._reserved: dict[int, PortReservation] = {}
        self._streams: set[MediaStream] = set()
        self._receiver: _Receiver | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    # --- lifecycle ---

    async def start(self) -> None:
        """Start the scheduler task and the receiver."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._receiver = _Receiver(self._loop)
        self._arm()

    async def stop(self) -> None:
        """Stop every stream, then the scheduler; never hangs on a failing stream."""
        for stream in list(self._streams):
            try:
                await self.stop_stream(stream)
            except Exception:
                _log.exception("stopping %r failed", stream)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop = None
        for reservation in list(self._reserved.values()):
            self._close_reservation(reservation)
        self._reserved.clear()
        if self._receiver is not None:
            self._receiver.close()
            self._receiver = None

    async def __aenter__(self) -> MediaEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def streams(self) -> frozenset[MediaStream]:
        return frozenset(self._streams)

    # --- ports ---

    def reserve_port(self, *, rtcp_mux: bool = False) -> int:
        """Bind a random even RTP port (and port + 1 for RTCP) now; returns the RTP port.

        Both ports are bound even with rtcp-mux, so a peer that ignores a=rtcp-mux and
        sends RTCP to port + 1 meets our socket, not someone else's (RFC 5761 §5.1.1
        fallback); the RTCP socket is closed when the stream starts multiplexed.
        """
        reservation = self._bind(rtcp_mux=rtcp_mux)
        self._reserved[reservation.port] = reservation
        return reservation.port

    def _bind(self, *, rtcp_mux: bool) -> PortReservation:
        rtp, rtcp = bind_rtp_pair(self.settings.bind_host, self._ports)
        if rtcp_mux:
            rtcp.close()
        return PortReservation(int(rtp.getsockname()[1]), rtp, None if rtcp_mux else rtcp)

    def release_port(self, port: int) -> None:
        """Give back a reserved port that no stream used (the call failed)."""
        reservation = self._reserved.pop(port, None)
        if reservation is not None:
            self._close_reservation(reservation)

    @staticmethod
    def _close_reservation(reservation: PortReservation) -> None:
        reservation.rtp.close()
        if reservation.rtcp is not None:
            reservation.rtcp.close()

    def _take_sockets(self, config: StreamConfig) -> tuple[socket.socket, socket.socket | None]:
        port = config.local_port
        reservation = self._reserved.pop(port, None) if port else None
        if reservation is None:
            if port:
                raise ValueError(f"port {port} was not reserved with reserve_port()")
            reservation = self._bind(rtcp_mux=config.rtcp_mux)
        rtp, rtcp = reservation.rtp, reservation.rtcp
        if config.rtcp_mux and rtcp is not None:
            rtcp.close()
            rtcp = None
        elif not config.rtcp_mux and rtcp is None:
            rtcp = socket.socket(rtp.family, socket.SOCK_DGRAM)
            try:
                rtcp.bind((self.settings.bind_host, reservation.port + 1))
            except OSError:
                rtcp.close()
                rtp.close()
                raise
        rtp.setblocking(False)
        if rtcp is not None:
            rtcp.setblocking(False)
        return rtp, rtcp

    # --- streams ---

    def start_stream(
        self,
        config: StreamConfig,
        *,
        source: AudioSource | None = None,
        sink: AudioSink | None = None,
        record_sent: AudioSink | None = None,
        name: str = "",
    ) -> MediaStream:
        """Start sending and receiving ``config``; returns the running stream.

        ``source`` is what we send (silence if None), ``sink`` takes what we receive
        (nothing is decoded if None), ``record_sent`` gets a copy of what we send.
        """
        if self._receiver is None:
            raise RuntimeError("the media engine is not started")
        rtp, rtcp = self._take_sockets(config)
        try:
            stream = MediaStream(
                config,
                rtp,
                rtcp,
                settings=self.settings,
                clock=self.clock,
                wallclock=self.wallclock,
                source=source,
                sink=sink,
                record_sent=record_sent,
                name=name,
            )
        except BaseException:
            rtp.close()
            if rtcp is not None:
                rtcp.close()
            raise
        self._receiver.register(rtp, stream.on_rtp_datagram)
        if rtcp is not None:
            self._receiver.register(rtcp, stream.on_rtcp_datagram)
        self._streams.add(stream)
        self.scheduler.add(stream, config.ptime / 1000, self.clock())
        self._arm()
        return stream

    async def stop_stream(self, stream: MediaStream) -> None:
        """Send RTCP BYE, close the stream's sockets, sources and sinks."""
        if stream not in self._streams:
            return
        self._streams.discard(stream)
        if self._receiver is not None:
            self._receiver.unregister(stream.rtp_socket)
            if stream.rtcp_socket is not None:
                self._receiver.unregister(stream.rtcp_socket)
        stream.close()

    # --- the scheduler timer ---

    def _arm(self) -> None:
        """(Re-)arm the one timer for the earliest deadline."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.scheduler.next_deadline()
        if deadline is None or self._loop is None:
            return
        # Aim half the slack before the deadline: loop timers round (the default loop up
        # to +1 ms, uvloop up to -1.3 ms); whatever is due within the slack is sent on
        # wake-up, and an earlier wake-up just re-arms.
        delay = max(0.0, deadline - self.scheduler.early_slack / 2 - self.clock())
        self._timer = self._loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        # The timer callback runs the due frames directly: no task switch and no extra loop
        # iteration between the wake-up and the sends. Sending comes first (lateness is
        # what a peer hears); reading then uses the time left before the next deadline.
        self._timer = None
        receiver = self._receiver
        clock = self.clock
        scheduler = self.scheduler
        try:
            sent = scheduler.due(clock(), clock)
            if receiver is not None:
                deadline = scheduler.next_deadline()
                until = None if deadline is None else deadline - scheduler.early_slack
                receiver.drain(until, clock, at_least=sent)
        except Exception:
            _log.exception("media scheduler tick failed")
        self._arm()
        if receiver is not None:
            deadline = scheduler.next_deadline()
            if deadline is not None and deadline - clock() < _ARM_GAP:
                receiver.disarm()
            else:
                receiver.arm()
