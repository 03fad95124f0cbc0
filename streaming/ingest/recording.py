"""Read EDF, EDF+ (continuous and discontinuous) and BDF recordings: channels, contiguous segments, samples.

Signal headers and samples come from edfio (a maintained, numpy-based EDF/BDF reader that loads
only the data records asked for). edfio treats EDF+D data records as back to back, so the onset of
each data record is read here from the first TAL of the time-keeping annotation signal
(EDF+ spec 2.2.4), which is all EDF+D adds.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import re
from collections.abc import Sequence
from pathlib import Path

import edfio
import numpy as np

_EDF_ANNOTATIONS = ("EDF Annotations", "BDF Annotations")
_TAL_ONSET = re.compile(rb"^([+-]\d+(?:\.\d*)?)\x14")


class RecordingError(ValueError):
    """The file is not a recording this reader understands."""


@dataclasses.dataclass(frozen=True)
class Signal:
    """One data channel of a recording."""

    index: int  # position among edfio's ordinary signals
    label: str
    rate: float  # Hz
    unit: str
    samples_per_record: int


@dataclasses.dataclass(frozen=True)
class Segment:
    """Data records ``[first_record, stop_record)`` that follow each other without a gap."""

    first_record: int
    stop_record: int
    start_us: float  # time of the first sample, microseconds since the epoch


class Recording:
    """An opened EDF/EDF+/BDF file; samples are read per slice, never the whole file at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with path.open("rb") as handle:
                header = handle.read(256)
            is_bdf = header[:1] == b"\xff"
            self._file: edfio.Edf | edfio.Bdf = (
                edfio.read_bdf(path) if is_bdf else edfio.read_edf(path, lazy_load_data=True)
            )
        except (OSError, ValueError, IndexError, UnicodeDecodeError) as exc:
            raise RecordingError(f"{path}: not a readable EDF/BDF file: {exc}") from exc
        self.record_duration = float(self._file.data_record_duration)
        self.num_records = int(self._file.num_data_records)
        sources: Sequence[edfio.EdfSignal | edfio.BdfSignal] = self._file.signals
        self.signals = [
            Signal(
                index=i,
                label=signal.label.strip(),
                rate=float(signal.sampling_frequency),
                unit=signal.physical_dimension.strip(),
                samples_per_record=int(signal.samples_per_data_record),
            )
            for i, signal in enumerate(sources)
            if signal.label.strip() not in _EDF_ANNOTATIONS and signal.sampling_frequency > 0
        ]
        if not self.signals:
            raise RecordingError(f"{path}: no data channels")
        if self.num_records <= 0:
            raise RecordingError(f"{path}: no data records")
        self.record_onsets = _record_onsets(path, self.num_records, self.record_duration)
        start = datetime.datetime.combine(
            self._file.startdate, self._file.starttime.replace(microsecond=0), tzinfo=datetime.UTC
        )
        self.start_us = int(start.timestamp()) * 1_000_000

    def segments(self, signal: Signal, gap_threshold: float) -> list[Segment]:
        """Contiguous runs of records for ``signal``: a new run starts where the step between
        consecutive samples exceeds ``gap_threshold`` sample periods."""
        period_s = 1.0 / signal.rate
        onsets = self.record_onsets
        steps = onsets[1:] - (onsets[:-1] + self.record_duration) + period_s
        breaks = (np.nonzero((steps > gap_threshold * period_s) | (steps < 0))[0] + 1).tolist()
        bounds = [0, *breaks, self.num_records]
        return [
            Segment(first, stop, self.start_us + float(onsets[first]) * 1e6)
            for first, stop in itertools.pairwise(bounds)
        ]

    def read(self, signal: Signal, first_sample: int, stop_sample: int) -> np.ndarray:
        """Physical values of samples ``[first_sample, stop_sample)`` of ``signal`` (records back to back)."""
        source = self._file.signals[signal.index]
        return np.asarray(
            source.get_data_slice(first_sample / signal.rate, stop_sample / signal.rate), dtype=np.float64
        )


def _record_onsets(path: Path, num_records: int, record_duration: float) -> np.ndarray:
    """Seconds from the header's start time to each data record's first sample.

    Plain EDF and files without an annotation signal: records follow each other (``i * duration``).
    EDF+/BDF+: the first TAL of the first annotation signal in each record holds its onset.
    """
    regular = np.arange(num_records, dtype=np.float64) * record_duration
    with path.open("rb") as handle:
        fixed = handle.read(256)
        reserved = fixed[192:236].decode("ascii", "replace")
        if not reserved.startswith(("EDF+", "BDF+")):
            return regular
        bytes_per_sample = 3 if fixed[:1] == b"\xff" else 2
        header_bytes = int(fixed[184:192])
        count = int(fixed[252:256])
        signal_header = handle.read(256 * count)
        labels = [
            signal_header[16 * i : 16 * (i + 1)].decode("ascii", "replace").strip() for i in range(count)
        ]
        spr_offset = count * (16 + 80 + 8 + 8 + 8 + 8 + 8 + 80)
        samples_per_record = [
            int(signal_header[spr_offset + 8 * i : spr_offset + 8 * (i + 1)]) for i in range(count)
        ]
        annotation = next((i for i, label in enumerate(labels) if label in _EDF_ANNOTATIONS), None)
        if annotation is None:
            return regular
        record_bytes = sum(samples_per_record) * bytes_per_sample
        before = sum(samples_per_record[:annotation]) * bytes_per_sample
        width = samples_per_record[annotation] * bytes_per_sample
        onsets = np.empty(num_records, dtype=np.float64)
        for record in range(num_records):
            handle.seek(header_bytes + record * record_bytes + before)
            match = _TAL_ONSET.match(handle.read(min(width, 64)))
            if match is None:
                raise RecordingError(f"{path}: data record {record} has no time-keeping annotation")
            onsets[record] = float(match.group(1))
    return onsets
