"""Per-websocket state: the package, the queue of page requests and the task answering them.

Knows nothing of tornado: frames leave through a FrameSink, and a closed socket surfaces as
ConnectionClosed from it.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
from collections.abc import Callable

from streaming.errors import MontageNotSupported, StreamingError, UnexpectedError
from streaming.index.models import Package
from streaming.pipeline.stream import ConnectionClosed, FrameSink, PageStreamer
from streaming.protocol.frames import json_frame
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

log = logging.getLogger(__name__)

_connection_ids = itertools.count(1)


class ViewerSession:
    """Answers one viewer's messages for one package, in the order its page requests arrive."""

    def __init__(
        self,
        package: Package,
        streamer: PageStreamer,
        sink: FrameSink,
        *,
        max_queue: int,
        start_at_epoch: bool = False,
        on_finished: Callable[[ViewerSession], None] | None = None,
    ) -> None:
        self.id = next(_connection_ids)
        self.package = package
        self.streamer = streamer
        self.sink = sink
        self.time_offset = package.start if start_at_epoch else 0
        self.last_activity = time.monotonic()
        # Newest requests win when a viewer scrolls faster than pages can be sent.
        self._queue: collections.deque[TimeSeriesRequest] = collections.deque(maxlen=max_queue)
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._current: asyncio.Task[None] | None = None
        self._replies: set[asyncio.Task[None]] = set()
        self._closed = False
        self._on_finished = on_finished

    # -- incoming -----------------------------------------------------------------------------

    def receive_text(self, text: str) -> None:
        """Handle one text frame; never raises and never waits on the socket."""
        self.last_activity = time.monotonic()
        try:
            message = parse_message(text)
            if isinstance(message, TimeSeriesRequest):
                self._enqueue(message)
            elif isinstance(message, MontageRequest):
                self._answer_montage(message)
            elif isinstance(message, DumpBufferRequest):
                self.dump()
            elif isinstance(message, KeepAlive):
                pass
            elif isinstance(message, (FilterRequest, ClearFilterRequest, ResetFilterRequest)):
                raise UnexpectedError("filters are not supported by this server version yet")
        except StreamingError as error:
            self._reject(error)

    def receive_binary(self) -> None:
        self.last_activity = time.monotonic()
        self._reject(UnexpectedError("binary frames are not accepted; send JSON text frames"))

    def _reject(self, error: StreamingError) -> None:
        log.info("connection %d: %s: %s", self.id, error.name, error.reason)
        self._reply(json_frame(error.to_json()))

    def _reply(self, frame: str) -> None:
        if self._closed:
            return
        task = asyncio.ensure_future(self._send_quietly(frame))
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)

    async def _send_quietly(self, frame: str) -> None:
        try:
            await self.sink.send_text(frame)
        except ConnectionClosed:
            pass

    def _answer_montage(self, message: MontageRequest) -> None:
        if message.montage != "NOT_MONTAGED":
            raise MontageNotSupported(
                f"montage {message.montage} is not available yet; only NOT_MONTAGED is served"
            )
        self._reply(json_frame({"channelDetails": channel_details(self.package, self.time_offset)}))

    # -- page requests ------------------------------------------------------------------------

    def _enqueue(self, request: TimeSeriesRequest) -> None:
        if self._closed:
            return
        self._queue.append(request)
        self._wakeup.set()
        if self._worker is None:
            self._worker = asyncio.ensure_future(self._work())

    def dump(self) -> None:
        """Forget every request not yet answered, and stop the one being answered."""
        self._queue.clear()
        if self._current is not None:
            self._current.cancel()

    async def _work(self) -> None:
        while not self._closed:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            request = self._queue.popleft()
            self._current = asyncio.ensure_future(
                self.streamer.stream(request, self.package, self.sink, self.time_offset)
            )
            try:
                await self._current
            except asyncio.CancelledError:
                if self._closed or not self._current.cancelled():
                    raise
                # Cancelled by a DumpBufferRequest: go on with what arrived after it.
            except ConnectionClosed:
                return
            except StreamingError as error:
                self._reject(error)
            except Exception:
                log.exception("connection %d: request failed", self.id)
                self._reply(json_frame(UnexpectedError("the server failed to answer this request").to_json()))
            finally:
                self._current = None

    # -- shutdown -------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop all work for this connection and free its state; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        tasks = [t for t in (self._current, self._worker, *self._replies) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except BaseException:
                pass
        self._replies.clear()
        if self._on_finished is not None:
            self._on_finished(self)


def channel_details(package: Package, time_offset: int = 0) -> list[dict[str, object]]:
    """The ``channelDetails`` list answering ``NOT_MONTAGED``."""
    return [
        {
            "id": channel.id,
            "name": channel.name,
            "start": channel.start - time_offset,
            "end": channel.end - time_offset,
            "channelType": channel.type.upper(),
            "rate": channel.rate,
            "unit": channel.unit,
            "group": channel.group,
        }
        for channel in package.channels
    ]
