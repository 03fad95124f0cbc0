"""Turn a page request into one ChannelPage per virtual channel, using the connection's view state."""

from __future__ import annotations

import dataclasses

from streaming.dsp.filters import ChannelFilter, FilterSpec
from streaming.dsp.montage import parse_virtual_name
from streaming.errors import InvalidMontageName, MontageMisalignment, NotTimeSeries, PackageMissingChannels
from streaming.index.models import Package
from streaming.pipeline.render import ChannelPage
from streaming.protocol.requests import TimeSeriesRequest


@dataclasses.dataclass
class ViewState:
    """What a connection has chosen that changes its pages: time origin and filters."""

    time_offset: int = 0  # startAtEpoch: the package's earliest channel start
    filters: dict[str, FilterSpec] = dataclasses.field(default_factory=dict)  # by channel id
    # Running filter state per (channel id, virtual channel name), carried across pages.
    filter_states: dict[tuple[str, str], ChannelFilter] = dataclasses.field(default_factory=dict)

    def set_filter(self, channel_id: str, spec: FilterSpec) -> None:
        self.filters[channel_id] = spec
        self._drop_states(channel_id)

    def clear_filter(self, channel_id: str) -> None:
        self.filters.pop(channel_id, None)
        self._drop_states(channel_id)

    def reset_filter(self, channel_id: str) -> None:
        for (state_channel, _), state in self.filter_states.items():
            if state_channel == channel_id:
                state.reset()

    def _drop_states(self, channel_id: str) -> None:
        for key in [key for key in self.filter_states if key[0] == channel_id]:
            del self.filter_states[key]

    def filter_for(self, channel_id: str, virtual_name: str, rate: float) -> ChannelFilter | None:
        spec = self.filters.get(channel_id)
        if spec is None:
            return None
        key = (channel_id, virtual_name)
        state = self.filter_states.get(key)
        if state is None or state.rate != rate:
            state = self.filter_states[key] = ChannelFilter.create(spec, rate)
        return state


def plan_pages(
    request: TimeSeriesRequest, package: Package, view: ViewState | None = None
) -> list[ChannelPage]:
    """One ChannelPage per distinct requested virtual channel.

    A name ``A<->B`` makes a montage channel: the id names the lead, B is found by name.
    Unknown ids or names raise PackageMissingChannels listing them all.
    """
    view = view or ViewState()
    by_name = {channel.name: channel for channel in package.channels}
    missing: list[str] = []
    pages: list[ChannelPage] = []
    seen: set[tuple[str, str]] = set()
    for virtual in request.channels:
        channel = package.channel(virtual.id)
        if channel is None:
            missing.append(virtual.id)
            continue
        name = virtual.name or channel.name
        if (channel.id, name) in seen:
            continue
        seen.add((channel.id, name))
        if not channel.is_continuous:
            raise NotTimeSeries(f"channel {channel.name} is a {channel.type} channel", [channel.name])
        secondary_id = None
        # A stored label may itself contain "<->": the channel's own name is never a montage.
        pair = None if name == channel.name else parse_virtual_name(name)
        if pair is not None:
            if pair.lead != channel.name:
                raise InvalidMontageName(
                    f"virtual channel {name!r} names lead {pair.lead!r}, "
                    f"but its id is channel {channel.name!r}",
                    [name],
                )
            secondary = by_name.get(pair.secondary)
            if secondary is None:
                missing.append(pair.secondary)
                continue
            if secondary.rate != channel.rate:
                raise MontageMisalignment(
                    f"{name}: {channel.name} is sampled at {channel.rate:g} Hz "
                    f"but {secondary.name} at {secondary.rate:g} Hz",
                    [name],
                )
            secondary_id = secondary.id
        pages.append(
            ChannelPage(
                channel_id=channel.id,
                channel_name=name,
                unit=channel.unit,
                rate=channel.rate,
                start=request.start + view.time_offset,
                end=request.end + view.time_offset,
                pixel_width=request.pixel_width,
                query_limit=request.query_limit,
                time_offset=view.time_offset,
                secondary_id=secondary_id,
                filter=view.filter_for(channel.id, name, channel.rate),
            )
        )
    if missing:
        raise PackageMissingChannels(
            f"{len(missing)} requested channel(s) are not in package {package.id}", missing
        )
    return pages
