"""Stream one page request: every channel, block by block, with bounded memory and backpressure."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import numpy as np

from streaming.cache.reader import BlockReader
from streaming.cpu import CpuPool
from streaming.dsp.montage import subtract
from streaming.dsp.trim import window_indices
from streaming.errors import BlockReadError, MontageMisalignment, StreamingError
from streaming.index.database import IndexDatabase
from streaming.index.models import BlockRef, Package
from streaming.pipeline.plan import ViewState, plan_pages
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


class PageSink(FrameSink, Protocol):
    """The sink of one page request, told how many binary frames answer it before the first."""

    def expect(self, frames: int) -> None: ...


@dataclasses.dataclass(frozen=True)
class BlockSource:
    """The blocks of one virtual channel and how to read one of them as samples."""

    blocks: Sequence[BlockRef]
    read: Callable[[BlockRef], Awaitable[np.ndarray]]


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
        sink: PageSink,
        view: ViewState | None = None,
    ) -> None:
        """Send every message that answers ``request``; returns when all were handed to the socket."""
        pages = plan_pages(request, package, view)
        ids = {page.channel_id for page in pages} | {p.secondary_id for p in pages if p.secondary_id}
        if request.query_limit == 0:
            blocks: dict[str, list[BlockRef]] = {channel_id: [] for channel_id in ids}
        else:
            with self.clock.stage("lookup"):
                blocks = await self.index.blocks_for(sorted(ids), pages[0].start, pages[0].end)
        sources = [self._source(page, blocks) for page in pages]
        sink.expect(sum(max(1, len(source.blocks)) for source in sources))
        if request.request_annotations:
            await self._send_annotations(request, package, sink, pages[0])
        slots = asyncio.Semaphore(self.parallelism)

        async def run(page: ChannelPage, source: BlockSource) -> None:
            async with slots:
                await self._stream_channel(page, source, sink)

        try:
            async with asyncio.TaskGroup() as group:
                for page, source in zip(pages, sources, strict=True):
                    group.create_task(run(page, source))
        except BaseExceptionGroup as failures:
            # One failed channel cancels its siblings; report the failure that explains the rest.
            raise _most_telling(failures) from None

    async def _send_annotations(
        self, request: TimeSeriesRequest, package: Package, sink: FrameSink, page: ChannelPage
    ) -> None:
        """``requestAnnotations: true``: one text frame with the package's annotations in the window."""
        with self.clock.stage("lookup"):
            found = await self.index.annotations_for(package.id, page.start, page.end)
        for annotation in found:
            annotation["start"] -= page.time_offset
            annotation["end"] -= page.time_offset
        await sink.send_text(
            json_frame({"annotations": found, "pageStart": request.start, "pageEnd": request.end})
        )

    def _source(self, page: ChannelPage, blocks: dict[str, list[BlockRef]]) -> BlockSource:
        lead = blocks[page.channel_id]
        if page.secondary_id is None:
            return BlockSource(lead, self.reader.samples)
        secondary = blocks[page.secondary_id]
        if [b.lo for b in lead] != [b.lo for b in secondary]:
            raise MontageMisalignment(
                f"{page.channel_name}: the two channels are stored in differently aligned blocks",
                [page.channel_name],
            )
        partner = dict(zip((b.lo for b in lead), secondary, strict=True))

        async def difference(block: BlockRef) -> np.ndarray:
            a, b = await asyncio.gather(self.reader.samples(block), self.reader.samples(partner[block.lo]))
            if a.shape != b.shape:
                raise BlockReadError(
                    f"{page.channel_name}: blocks at {block.lo} hold {a.shape[0]} and {b.shape[0]} samples"
                )
            with self.clock.stage("montage"):
                return subtract(a, b)

        return BlockSource(lead, difference)

    async def _stream_channel(self, page: ChannelPage, source: BlockSource, sink: FrameSink) -> None:
        blocks = source.blocks
        if not blocks:
            await self._send(sink, render_empty(page, self.clock))
            return
        total = len(blocks)
        # Read one block ahead: the next fetch overlaps this block's rendering and sending, and at
        # most two decoded blocks per channel are alive, however long the window.
        upcoming: asyncio.Task[np.ndarray] | None = asyncio.ensure_future(source.read(blocks[0]))
        try:
            for sequence_id, block in enumerate(blocks):
                assert upcoming is not None
                current, upcoming = upcoming, None
                if sequence_id + 1 < total:
                    upcoming = asyncio.ensure_future(source.read(blocks[sequence_id + 1]))
                try:
                    samples = await current
                except BlockReadError as exc:
                    log.warning("channel %s: %s", page.channel_id, exc.reason)
                    await sink.send_text(json_frame({**exc.to_json(), "channelNames": [page.channel_name]}))
                    samples = np.empty(0)
                # The work is proportional to the samples inside the window, not to the block.
                first, stop = window_indices(block.lo, page.rate, samples.shape[0], page.start, page.end)
                frame = await self.cpu.run(
                    stop - first, render_block, samples, block.lo, page, sequence_id, total, self.clock
                )
                del samples
                await self._send(sink, frame)
        finally:
            if upcoming is not None:
                await _discard(upcoming)

    async def _send(self, sink: FrameSink, frame: bytes) -> None:
        with self.clock.stage("send"):
            await sink.send_binary(frame)


def _most_telling(failures: BaseExceptionGroup) -> BaseException:
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
