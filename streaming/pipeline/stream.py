"""Stream one page request: every channel, block by block, with bounded memory and backpressure."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from streaming.cache.reader import BlockReader
from streaming.cpu import CpuPool
from streaming.errors import BlockReadError, NotTimeSeries, PackageMissingChannels, StreamingError
from streaming.index.database import IndexDatabase
from streaming.index.models import BlockRef, Package
from streaming.pipeline.render import ChannelPage, render_block, render_empty
from streaming.protocol.frames import json_frame
from streaming.protocol.requests import TimeSeriesRequest
from streaming.stages import StageClock

log = logging.getLogger(__name__)


class ConnectionClosed(Exception):
    """Raised by a FrameSink when the peer has gone; the work for it stops quietly."""


class FrameSink(Protocol):
    """Where frames go; ``send_*`` wait until the frame is handed to the socket (backpressure)."""

    async def send_binary(self, frame: bytes) -> None: ...

    async def send_text(self, frame: str) -> None: ...


def plan_pages(request: TimeSeriesRequest, package: Package, time_offset: int = 0) -> list[ChannelPage]:
    """One ChannelPage per requested channel; unknown ids raise PackageMissingChannels."""
    missing = [vc.id for vc in request.channels if package.channel(vc.id) is None]
    if missing:
        raise PackageMissingChannels(
            f"{len(missing)} requested channel(s) are not in package {package.id}", missing
        )
    pages = []
    for virtual in request.channels:
        channel = package.channel(virtual.id)
        assert channel is not None
        if not channel.is_continuous:
            raise NotTimeSeries(f"channel {channel.name} is a {channel.type} channel", [channel.name])
        pages.append(
            ChannelPage(
                channel_id=channel.id,
                channel_name=virtual.name or channel.name,
                unit=channel.unit,
                rate=channel.rate,
                start=request.start + time_offset,
                end=request.end + time_offset,
                pixel_width=request.pixel_width,
                query_limit=request.query_limit,
                time_offset=time_offset,
            )
        )
    return pages


class PageStreamer:
    """Runs the data path for page requests; shared by every connection of a process."""

    def __init__(
        self,
        index: IndexDatabase,
        reader: BlockReader,
        cpu: CpuPool,
        clock: StageClock,
        parallelism: int,
    ) -> None:
        self.index = index
        self.reader = reader
        self.cpu = cpu
        self.clock = clock
        self.parallelism = parallelism

    async def stream(
        self,
        request: TimeSeriesRequest,
        package: Package,
        sink: FrameSink,
        time_offset: int = 0,
    ) -> None:
        """Send every message that answers ``request``; returns when all were handed to the socket."""
        pages = plan_pages(request, package, time_offset)
        if request.query_limit == 0:
            blocks: dict[str, list[BlockRef]] = {page.channel_id: [] for page in pages}
        else:
            with self.clock.stage("lookup"):
                blocks = await self.index.blocks_for(
                    [page.channel_id for page in pages], pages[0].start, pages[0].end
                )
        slots = asyncio.Semaphore(self.parallelism)

        async def run(page: ChannelPage) -> None:
            async with slots:
                await self._stream_channel(page, blocks[page.channel_id], sink)

        try:
            async with asyncio.TaskGroup() as group:
                for page in pages:
                    group.create_task(run(page))
        except BaseExceptionGroup as failures:
            # One failed channel cancels its siblings; report the failure that explains the rest.
            raise _most_telling(failures) from None

    async def _stream_channel(self, page: ChannelPage, blocks: Sequence[BlockRef], sink: FrameSink) -> None:
        if not blocks:
            await self._send(sink, render_empty(page, self.clock))
            return
        total = len(blocks)
        # Read one block ahead: the next fetch overlaps this block's rendering and sending, and at
        # most two decoded blocks per channel are alive, however long the window.
        upcoming: asyncio.Task[np.ndarray] | None = asyncio.ensure_future(self.reader.samples(blocks[0]))
        try:
            for sequence_id, block in enumerate(blocks):
                assert upcoming is not None
                current, upcoming = upcoming, None
                if sequence_id + 1 < total:
                    upcoming = asyncio.ensure_future(self.reader.samples(blocks[sequence_id + 1]))
                try:
                    samples = await current
                except BlockReadError as exc:
                    log.warning("channel %s: %s", page.channel_id, exc.reason)
                    await sink.send_text(json_frame({**exc.to_json(), "channelNames": [page.channel_name]}))
                    samples = np.empty(0)
                frame = await self.cpu.run(
                    samples.shape[0], render_block, samples, block.lo, page, sequence_id, total, self.clock
                )
                del samples
                await self._send(sink, frame)
        finally:
            if upcoming is not None:
                await _discard(upcoming)

    async def _send(self, sink: FrameSink, frame: bytes) -> None:
        with self.clock.stage("send"):
            await sink.send_binary(frame)


def _most_telling(failures: BaseExceptionGroup) -> BaseException:  # type: ignore[type-arg]
    leaves: list[BaseException] = []
    pending: list[BaseException] = [failures]
    while pending:
        error = pending.pop()
        if isinstance(error, BaseExceptionGroup):
            pending.extend(error.exceptions)
        else:
            leaves.append(error)
    for kind in (ConnectionClosed, StreamingError):
        for error in leaves:
            if isinstance(error, kind):
                return error
    return leaves[0]


async def _discard(task: asyncio.Task[np.ndarray]) -> None:
    """Cancel a read-ahead nobody will use, and consume its outcome so nothing is logged."""
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
