"""GET /ts/retrieve/{continuous,unit,segments} and /ts/validate-montage (protocol.md section 3)."""

from __future__ import annotations

from streaming.access import open_package
from streaming.dsp.montage import BUILT_IN_MONTAGES, missing_channels, montage_pairs
from streaming.errors import InvalidRequest, NotTimeSeries, PackageCannotBeMontaged, PackageMissingChannels
from streaming.handlers.base import JsonHandler
from streaming.index.models import Channel
from streaming.protocol.requests import MAX_TIME_US
from streaming.retrieval.samples import continuous_samples, sample_pairs, unit_events
from streaming.retrieval.segments import contiguous_spans

_EVERYTHING = (0, MAX_TIME_US)


class _ChannelQuery(JsonHandler):
    async def channel(self, kind: str) -> Channel:
        """The ``channel`` argument, checked for access and kind (CONTINUOUS or UNIT)."""
        channel_id = self.get_query_argument("channel", None)
        if not channel_id:
            raise InvalidRequest("the channel query parameter is required")
        package_id = await self.services.index.package_of_channel(channel_id)
        if package_id is None:
            raise PackageMissingChannels(f"channel {channel_id} does not exist", [channel_id])
        settings = self.services.settings
        package = await open_package(
            self.services.packages, package_id, self.token(), settings.auth.jwt_key, self.public_only
        )
        channel = package.channel(channel_id)
        if channel is None:
            raise PackageMissingChannels(f"channel {channel_id} does not exist", [channel_id])
        if channel.type.upper() != kind:
            raise NotTimeSeries(f"channel {channel.name} is {channel.type}, not {kind}", [channel.name])
        return channel

    def window(self, required: bool = True) -> tuple[int, int]:
        start = self.time_argument("start", None if required else _EVERYTHING[0])
        end = self.time_argument("end", None if required else _EVERYTHING[1])
        if start >= end:
            raise InvalidRequest(f"start ({start}) must be before end ({end})")
        return start, end

    def limit(self) -> int:
        server_limit = self.services.settings.server.query_limit
        # Any positive limit is accepted; one above the server's is capped to it.
        return min(self.integer_argument("limit", server_limit, minimum=1), server_limit)


class ContinuousHandler(_ChannelQuery):
    async def get(self) -> None:
        start, end = self.window()  # arguments first: a bad one costs no database round trip
        limit = self.limit()
        channel = await self.channel("CONTINUOUS")
        times, values = await continuous_samples(
            self.services.index, self.services.reader, channel, start, end, limit
        )
        self.write_json(sample_pairs(times, values))


class UnitHandler(_ChannelQuery):
    async def get(self) -> None:
        start, end = self.window()
        limit = self.limit()
        channel = await self.channel("UNIT")
        events = await unit_events(self.services.index, self.services.store, channel, start, end, limit)
        self.write_json(events.tolist())


class SegmentsHandler(_ChannelQuery):
    async def get(self) -> None:
        start, end = self.window(required=False)
        gap_threshold = self.float_argument(
            "gapThreshold", self.services.settings.server.default_gap_threshold
        )
        channel = await self.channel("CONTINUOUS")
        # Spans are whole: built from every block of the channel, then those touching the window kept.
        blocks = (await self.services.index.blocks_for([channel.id], *_EVERYTHING))[channel.id]
        spans = contiguous_spans(blocks, channel.rate, gap_threshold)
        self.write_json([span for span in spans if span[0] < end and start < span[1]])


class ValidateMontageHandler(JsonHandler):
    async def get(self) -> None:
        package_id = self.get_query_argument("package", None)
        if not package_id:
            raise InvalidRequest("the package query parameter is required")
        settings = self.services.settings
        package = await open_package(
            self.services.packages, package_id, self.token(), settings.auth.jwt_key, self.public_only
        )
        names = [c.name for c in package.channels]
        lacking = {m: missing_channels(montage_pairs(m), names) for m in BUILT_IN_MONTAGES}
        lacking = {m: missing for m, missing in lacking.items() if missing}
        if lacking:
            every = sorted({name for missing in lacking.values() for name in missing})
            detail = "; ".join(f"{m} lacks {', '.join(missing)}" for m, missing in lacking.items())
            raise PackageCannotBeMontaged(f"package {package_id} cannot be montaged: {detail}", every)
        self.write_json({"package": package_id, "montages": sorted(BUILT_IN_MONTAGES)})
