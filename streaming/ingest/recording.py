"""Read EDF, EDF+ (continuous and discontinuous) and BDF recordings: channels, contiguous segments, samples.

The header is parsed and checked first (``edf_header.read_header``). Samples then come from
edfio (a maintained, numpy-based EDF/BDF reader that loads only the data records asked for).
edfio treats EDF+D data records as back to back, so the onset of each data record is read from
the first TAL of the time-keeping annotation signal (``edf_header.record_onsets``). Times are
computed directly: the start of data record ``i`` is the header's start date and time (whole
seconds) plus the record's onset; edfio's ``starttime`` is not used, as it already includes the
first record's onset and wraps at midnight.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Sequence
from pathlib import Path

import edfio
import numpy as np

from streaming.ingest.edf_header import EDF_ANNOTATIONS, RecordingError, read_header, record_onsets

log = logging.getLogger(__name__)

__all__ = ["Recording", "RecordingError", "Segment", "Signal", "unique_labels"]


@dataclasses.dataclass(frozen=True)
class Signal:
    """One data channel of a recording."""

    index: int  # position among edfio's ordinary signals
    label: str  # unique within the recording (see ``unique_labels``)
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
        header = read_header(path)
        self.header = header
        try:
            self._file: edfio.Edf | edfio.Bdf = (
                edfio.read_bdf(path) if header.is_bdf else edfio.read_edf(path, lazy_load_data=True)
            )
            sources: Sequence[edfio.EdfSignal | edfio.BdfSignal] = self._file.signals
            found = [
                (i, signal.label.strip(), float(signal.sampling_frequency), signal.physical_dimension.strip())
                for i, signal in enumerate(sources)
                if signal.label.strip() not in EDF_ANNOTATIONS
            ]
            records = int(self._file.num_data_records)
        except Exception as exc:  # edfio raises anything on damaged input: OverflowError, UnboundLocalError
            raise RecordingError(f"{path}: not a readable EDF/BDF file: {type(exc).__name__}: {exc}") from exc
        expected = [s for s in header.signals if not s.is_annotation]
        if records != header.num_records or [f[1] for f in found] != [s.label for s in expected]:
            raise RecordingError(f"{path}: edfio read the header differently from this reader; refusing it")
        if not expected:
            raise RecordingError(f"{path}: no data channels")
        labels = unique_labels([s.label for s in expected])
        for original, label in zip(expected, labels, strict=True):
            if label != original.label:
                log.warning("%s: duplicate channel label %r renamed %r", path, original.label, label)
        self.record_duration = header.record_duration
        self.num_records = header.num_records
        self.signals = [
            Signal(
                index=index,
                label=label,
                rate=source.samples_per_record / header.record_duration,
                unit=unit,
                samples_per_record=source.samples_per_record,
            )
            for (index, _, _, unit), source, label in zip(found, expected, labels, strict=True)
        ]
        self.record_onsets = record_onsets(path, header)
        self.start_us = int(header.start.timestamp()) * 1_000_000

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


def unique_labels(labels: Sequence[str]) -> list[str]:
    """Labels made unique: the first of equal labels is kept, later ones become ``label#2``, ``label#3``,
    skipping any name another channel of the file already has."""
    taken = set(labels)
    seen: set[str] = set()
    unique = []
    for label in labels:
        name = label
        if label in seen:
            number = 2
            while f"{label}#{number}" in taken:
                number += 1
            name = f"{label}#{number}"
            taken.add(name)
        seen.add(label)
        unique.append(name)
    return unique
