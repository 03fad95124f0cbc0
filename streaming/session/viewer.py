"""Per-websocket state: montage, filters, the queue of page requests, cancellation and liveness.

Knows nothing of tornado: frames leave through a FrameSink (a closed socket surfaces as
ConnectionClosed from it), and the connection is closed through a callback.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import logging
import time
from collections.abc import Callable

from streaming.config import ServerSettings
from streaming.dsp.filters import FilterSpec, FilterSpecError
from streaming.dsp.montage import missing_channels, montage_pairs
from streaming.errors import (
    InvalidFilter,
    InvalidRequest,
    PackageCannotBeMontaged,
    PackageMissingChannels,
    StreamingError,
    UnexpectedError,
)
from streaming.index.models import Channel, Package
from streaming.metrics import (
    BAD_MESSAGES,
    BYTES_SENT,
    MESSAGES_SENT,
    REQUEST_SECONDS,
    REQUESTS_CANCELLED,
    WEBSOCKET_CONNECTIONS,
)
from streaming.pipeline.plan import ViewState
from streaming.pipeline.stream import ConnectionClosed, FrameSink, PageStreamer
from streaming.protocol.frames import json_frame, keepalive_frame
from streaming.protocol.requests import (
    ClearFilterRequest,
    DumpBufferRequest,
    FilterRequest,
    KeepAlive,
    MontageRequest,
    ResetFilterRequest,
    TimeSeriesRequest,
    parse_message,
)
from streaming.session.throttle import Throttle

log = logging.getLogger(__name__)
request_log = logging.getLogger("streaming.requests")

_connection_ids = itertools.count(1)
# A viewer that sends faster than it reads must not grow the server without bound.
MAX_PENDING_REPLIES = 256
# Per connection, lines about its bad messages and dropped requests; then only the metrics count.
LOGGED_COMPLAINTS = 20


@dataclasses.dataclass(frozen=True)
class SessionLimits:
    max_queue: int = 10
    keepalive_seconds: float = 15.0
    idle_timeout_seconds: float = 300.0
    throttle_items: int = 50
    throttle_period_seconds: float = 1.0

    @classmethod
    def from_settings(cls, server: ServerSettings) -> SessionLimits:
        return cls(
            max_queue=server.max_message_queue,
            keepalive_seconds=server.keepalive_seconds,
            idle_timeout_seconds=server.idle_timeout_seconds,
            throttle_items=server.throttle_items,
            throttle_period_seconds=server.throttle_period_seconds,
        )


class RequestDropped(Exception):
    """A frame for a request that a DumpBufferRequest dropped; its work stops."""


class _RequestSink:
    """The sink one page request writes through; refuses once the request has been dropped."""

    def __init__(self, session: ViewerSession, generation: int) -> None:
        self.session = session
        self.generation = generation
        self.expected: int | None = None
        self.sent = 0

    @property
    def delivered(self) -> bool:
        """Every binary frame answering the request has been handed to the socket."""
        return self.expected is not None and self.sent >= self.expected

    def expect(self, frames: int) -> None:
        self.expected = frames

    def _check(self) -> None:
        if self.generation != self.session.generation:
            raise RequestDropped()

    async def send_binary(self, frame: bytes) -> None:
        self._check()
        await self.session.send_binary(frame)
        self.sent += 1

    async def send_text(self, frame: str) -> None:
        self._check()
        await self.session.send_text(frame)


class ViewerSession:
    """Answers one viewer's messages for one package, page requests in arrival order."""

    def __init__(
        self,
        package: Package,
        streamer: PageStreamer,
        sink: FrameSink,
        *,
        limits: SessionLimits | None = None,
        start_at_epoch: bool = False,
        on_finished: Callable[[ViewerSession], None] | None = None,
        close_connection: Callable[[int, str], None] | None = None,
    ) -> None:
        self.id = next(_connection_ids)
        self.package = package
        self.streamer = streamer
        self.sink = sink
        self.limits = limits or SessionLimits()
        self.view = ViewState(time_offset=package.start if start_at_epoch else 0)
        self.montage = "NOT_MONTAGED"
        self.generation = 0  # bumped by every DumpBufferRequest
        self.last_received = self.last_sent = time.monotonic()
        # Newest requests win when a viewer scrolls faster than pages can be sent.
        self._queue: collections.deque[_Queued] = collections.deque(maxlen=self.limits.max_queue)
        self._wakeup = asyncio.Event()
        self._throttle = Throttle(self.limits.throttle_items, self.limits.throttle_period_seconds)
        self._worker: asyncio.Task[None] | None = None
        self._current: asyncio.Task[None] | None = None
        self._current_sink: _RequestSink | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._replies: set[asyncio.Task[None]] = set()
        self._complaints = 0
        self._closed = False
        self._on_finished = on_finished
        self._close_connection = close_connection

    def start(self) -> None:
        """Begin keep-alives and the idle check (call once the socket is open)."""
        if self._watchdog is None:
            WEBSOCKET_CONNECTIONS.inc()
            self._watchdog = asyncio.ensure_future(self._watch())

    # -- incoming -----------------------------------------------------------------------------

    def receive_text(self, text: str) -> None:
        """Handle one text frame; never raises and never waits on the socket."""
        self.last_received = time.monotonic()
        try:
            message = parse_message(text)
            if isinstance(message, (TimeSeriesRequest, MontageRequest)):
                self._check_package(message.package_id)
            if isinstance(message, TimeSeriesRequest):
                self._enqueue(message)
            elif isinstance(message, MontageRequest):
                self._switch_montage(message)
            elif isinstance(message, FilterRequest):
                self._set_filter(message)
            elif isinstance(message, ClearFilterRequest):
                for channel_id in self._known(message.channels):
                    self.view.clear_filter(channel_id)
            elif isinstance(message, ResetFilterRequest):
                for channel_id in self._known(message.channels):
                    self.view.reset_filter(channel_id)
            elif isinstance(message, DumpBufferRequest):
                self.dump()
            elif isinstance(message, KeepAlive):
                pass
        except StreamingError as error:
            self._reject(error)

    def receive_binary(self) -> None:
        self.last_received = time.monotonic()
        self._reject(UnexpectedError("binary frames are not accepted; send JSON text frames"))

    def _check_package(self, package_id: str | None) -> None:
        if package_id is not None and package_id != self.package.id:
            raise InvalidRequest(
                f"this connection serves package {self.package.id}; open another for {package_id}"
            )

    def _reject(self, error: StreamingError) -> None:
        BAD_MESSAGES.labels(error.name).inc()
        if self._may_complain():
            log.info("connection %d: %s: %s", self.id, error.name, error.reason)
        self._reply(json_frame(error.to_json()))

    def _may_complain(self) -> bool:
        """Whether to log another line about this connection's bad messages or dropped requests."""
        self._complaints += 1
        if self._complaints == LOGGED_COMPLAINTS + 1:
            log.info("connection %d: further bad messages and dropped requests are only counted", self.id)
        return self._complaints <= LOGGED_COMPLAINTS

    def _reply(self, frame: str) -> None:
        if self._closed:
            return
        if len(self._replies) >= MAX_PENDING_REPLIES:
            if self._may_complain():
                log.info(
                    "connection %d: %d replies wait for a viewer that is not reading; dropping more",
                    self.id,
                    len(self._replies),
                )
            return
        task = asyncio.ensure_future(self._send_quietly(frame))
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)

    async def _send_quietly(self, frame: str) -> None:
        try:
            await self.send_text(frame)
        except ConnectionClosed:
            pass

    def _known(self, channel_ids: tuple[str, ...]) -> tuple[str, ...]:
        missing = [cid for cid in channel_ids if self.package.channel(cid) is None]
        if missing:
            raise PackageMissingChannels(
                f"{len(missing)} channel(s) are not in package {self.package.id}", missing
            )
        return channel_ids

    # -- montages and filters -------------------------------------------------------------------

    def _switch_montage(self, message: MontageRequest) -> None:
        pairs = montage_pairs(message.montage, message.montage_map)
        missing = missing_channels(pairs, (c.name for c in self.package.channels))
        if missing:
            raise PackageCannotBeMontaged(
                f"montage {message.montage} needs channels this package lacks: {', '.join(missing)}; "
                f"still using {self.montage}",
                missing,
            )
        self.montage = message.montage
        offset = self.view.time_offset
        if not pairs:
            details = channel_details(self.package, offset)
        else:
            by_name = {c.name: c for c in self.package.channels}
            details = [_detail(by_name[p.lead], p.name, offset) for p in pairs]
        self._reply(json_frame({"channelDetails": details}))

    def _set_filter(self, message: FilterRequest) -> None:
        try:
            spec = FilterSpec.from_request(message.filter, message.parameters)
            for channel_id in self._known(message.channels):
                channel = self.package.channel(channel_id)
                assert channel is not None
                try:
                    spec.check_rate(channel.rate)
                except FilterSpecError as exc:
                    raise InvalidFilter(f"channel {channel.name}: {exc}", [channel.name]) from exc
        except FilterSpecError as exc:
            raise InvalidFilter(str(exc)) from exc
        for channel_id in message.channels:
            self.view.set_filter(channel_id, spec)

    # -- page requests ------------------------------------------------------------------------

    def _enqueue(self, request: TimeSeriesRequest) -> None:
        if self._closed:
            return
        if len(self._queue) == self._queue.maxlen:
            self._log_dropped(self._queue.popleft(), "overflow")
        self._queue.append(_Queued(request, time.perf_counter()))
        self._wakeup.set()
        if self._worker is None:
            self._worker = asyncio.ensure_future(self._work())

    def dump(self) -> None:
        """Drop every request not yet answered; nothing more is sent for them."""
        self.generation += 1
        in_flight = self._current is not None and not (self._current_sink and self._current_sink.delivered)
        dropped = len(self._queue) + in_flight
        self._drop_queued("dump")
        if self._current is not None:
            self._current.cancel()
        log.debug("connection %d: dump dropped %d request(s)", self.id, dropped)
        # Every frame of a dropped request was written before this point (see _RequestSink).
        self._reply(json_frame({"requestType": "DumpBufferAck", "dropped": dropped}))

    async def _work(self) -> None:
        while not self._closed:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._throttle.acquire()
            if not self._queue:
                continue
            request = self._queue.popleft().request
            generation = self.generation
            sink = self._current_sink = _RequestSink(self, generation)
            self._current = asyncio.ensure_future(
                self.streamer.stream(request, self.package, sink, self.view)
            )
            started = time.perf_counter()
            outcome = "cancelled"
            try:
                await self._current
                outcome = "ok"
            except asyncio.CancelledError:
                outcome = _stopped_outcome(sink, self._closed)
                if self._closed or not self._current.cancelled():
                    raise
            except (ConnectionClosed, RequestDropped):
                outcome = _stopped_outcome(sink, self._closed)
                if self._closed:
                    return
            except StreamingError as error:
                outcome = "error"
                if generation == self.generation:
                    self._reject(error)
            except Exception:
                outcome = "error"
                log.exception("connection %d: request failed", self.id)
                self._reply(json_frame(UnexpectedError("the server failed to answer this request").to_json()))
            finally:
                self._current = self._current_sink = None
                self._log_request(request, outcome, time.perf_counter() - started)

    def _drop_queued(self, reason: str) -> None:
        while self._queue:
            self._log_dropped(self._queue.popleft(), reason)

    def _log_dropped(self, queued: _Queued, reason: str) -> None:
        """A request that never started: pushed out of a full queue, dumped, or its peer left."""
        REQUESTS_CANCELLED.labels(reason).inc()
        if reason != "overflow" or self._may_complain():
            self._log_line(queued.request, "dropped", time.perf_counter() - queued.received, reason)

    def _log_request(self, request: TimeSeriesRequest, outcome: str, seconds: float) -> None:
        REQUEST_SECONDS.labels("page", outcome).observe(seconds)
        reason = _CANCEL_REASONS.get(outcome)
        if reason is not None:
            REQUESTS_CANCELLED.labels(reason).inc()
        self._log_line(request, outcome, seconds, reason)

    def _log_line(self, request: TimeSeriesRequest, outcome: str, seconds: float, reason: str | None) -> None:
        fields: dict[str, object] = {
            "connection": self.id,
            "package": self.package.id,
            "channels": len(request.channels),
            "start": request.start,
            "end": request.end,
            "pixelWidth": request.pixel_width,
            "outcome": outcome,
            "ms": round(seconds * 1000, 3),
        }
        if reason is not None:
            fields["reason"] = reason
        request_log.info("page %s", outcome, extra=fields)

    # -- outgoing and liveness -------------------------------------------------------------------

    async def send_binary(self, frame: bytes) -> None:
        await self.sink.send_binary(frame)
        self.last_sent = time.monotonic()
        MESSAGES_SENT.labels("binary").inc()
        BYTES_SENT.labels("binary").inc(len(frame))

    async def send_text(self, frame: str) -> None:
        await self.sink.send_text(frame)
        self.last_sent = time.monotonic()
        MESSAGES_SENT.labels("text").inc()
        BYTES_SENT.labels("text").inc(len(frame.encode()))

    async def _watch(self) -> None:
        tick = max(0.01, min(self.limits.keepalive_seconds, self.limits.idle_timeout_seconds) / 4)
        while not self._closed:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if now - self.last_received >= self.limits.idle_timeout_seconds:
                log.info("connection %d: idle for %.0f s, closing", self.id, now - self.last_received)
                if self._close_connection is not None:
                    self._close_connection(1000, "idle timeout")
                return
            if now - self.last_sent >= self.limits.keepalive_seconds:
                self.last_sent = now
                self._reply(keepalive_frame(int(time.time() * 1000)))

    # -- shutdown -------------------------------------------------------------------------------

    async def shut_down(self) -> None:
        """Server shutdown: say so to the peer (close code 1001), then stop all work."""
        if not self._closed and self._close_connection is not None:
            self._close_connection(1001, "server shutting down")
        await self.close()

    async def close(self) -> None:
        """Stop all work for this connection and free its state; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._watchdog is not None:
            WEBSOCKET_CONNECTIONS.dec()
        self.generation += 1
        self._drop_queued("disconnect")
        tasks = [t for t in (self._current, self._worker, self._watchdog, *self._replies) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except BaseException:
                pass
        self._replies.clear()
        self.view.filter_states.clear()
        self.view.filters.clear()
        if self._on_finished is not None:
            self._on_finished(self)

    @property
    def busy(self) -> bool:
        """True while any task of this connection is alive (for leak checks)."""
        tasks = (self._current, self._worker, self._watchdog, *self._replies)
        return any(t is not None and not t.done() for t in tasks)


@dataclasses.dataclass(frozen=True)
class _Queued:
    request: TimeSeriesRequest
    received: float  # perf_counter() when it arrived


# Outcomes of a started request that stopped early, and the reason counted for each.
_CANCEL_REASONS = {"cancelled": "dump", "disconnected": "disconnect"}


def _stopped_outcome(sink: _RequestSink, closed: bool) -> str:
    """A request stopped early; if every frame had gone out, it was answered all the same."""
    if sink.delivered:
        return "ok"
    return "disconnected" if closed else "cancelled"


def _detail(channel: Channel, name: str, time_offset: int) -> dict[str, object]:
    return {
        "id": channel.id,
        "name": name,
        "start": channel.start - time_offset,
        "end": channel.end - time_offset,
        "channelType": channel.type.upper(),
        "rate": channel.rate,
        "unit": channel.unit,
        "group": channel.group,
    }


def channel_details(package: Package, time_offset: int = 0) -> list[dict[str, object]]:
    """The ``channelDetails`` list answering ``NOT_MONTAGED``."""
    return [_detail(channel, channel.name, time_offset) for channel in package.channels]
