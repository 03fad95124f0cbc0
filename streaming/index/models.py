"""Plain records read from the index: packages, channels and stored blocks."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Channel:
    id: str
    package_id: str
    name: str
    start: int  # us, first sample
    end: int  # us, last sample + one period
    unit: str
    rate: float  # Hz
    type: str  # CONTINUOUS or UNIT
    group: str = "default"
    spike_duration: int | None = None
    properties: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def is_continuous(self) -> bool:
        return self.type.upper() == "CONTINUOUS"


@dataclasses.dataclass(frozen=True)
class Package:
    id: str
    name: str
    channels: tuple[Channel, ...]
    public: bool = False  # served read-only under /discover without a token

    @property
    def start(self) -> int:
        """The earliest channel start, the origin of ``startAtEpoch`` times."""
        return min((c.start for c in self.channels), default=0)

    def channel(self, channel_id: str) -> Channel | None:
        return next((c for c in self.channels if c.id == channel_id), None)


@dataclasses.dataclass(frozen=True, slots=True)
class UnitBlockRef:
    """One row of ``timeseries.unit_ranges``: a run of spike events of a unit channel."""

    channel: str
    lo: int
    hi: int
    count: int
    tsindex: str  # key of gzip(9-byte records: big-endian int64 time us + 1 byte unit id)
    tsblob: str  # key of gzip(big-endian float64 waveforms)


@dataclasses.dataclass(frozen=True, slots=True)
class BlockRef:
    """One row of ``timeseries.ranges``: a stored block and the half-open span it covers."""

    channel: str
    lo: int  # us, first sample
    hi: int  # us, end as the writer stored it (never used to count samples)
    location: str  # key relative to the store's base URL
    rate: float
