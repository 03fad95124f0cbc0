"""The header of an EDF, EDF+ or BDF file, parsed and checked against the file's size.

EDF spec section 2, EDF+ spec section 2.1. A file whose size is not exactly its header plus the
data records the header announces, a signal with no samples per data record, or a signal whose
physical or digital minimum equals its maximum is refused with a :class:`RecordingError`, instead
of being ingested partly or with wrong values. Data record onsets come from the first TAL of the
time-keeping annotation signal (EDF+ spec 2.2.4).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
from pathlib import Path

import numpy as np

EDF_ANNOTATIONS = ("EDF Annotations", "BDF Annotations")
_TAL_ONSET = re.compile(rb"^([+-]\d+(?:\.\d*)?)\x14")
_DATE_OR_TIME = re.compile(r"\s*(\d{1,2})[.:'\-/ ](\s?\d{1,2})[.:'\-/ ](\s?\d{1,2})\s*")
_EDF_PLUS_DATE = re.compile(r"(\d{1,2})-([A-Za-z]{3})-(\d{4})")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_FIXED_HEADER = 256
_SIGNAL_HEADER = 256
# Per-signal header fields, each stored as one column for all signals (EDF spec section 2.1).
_SIGNAL_FIELDS = (
    ("label", 16),
    ("transducer type", 80),
    ("physical dimension", 8),
    ("physical minimum", 8),
    ("physical maximum", 8),
    ("digital minimum", 8),
    ("digital maximum", 8),
    ("prefiltering", 80),
    ("number of samples in each data record", 8),
    ("reserved", 32),
)


class RecordingError(ValueError):
    """The file is not a recording this reader understands."""


@dataclasses.dataclass(frozen=True)
class SignalHeader:
    """One signal's fields of the header, as checked by ``read_header``."""

    label: str
    unit: str
    physical_min: float
    physical_max: float
    digital_min: int
    digital_max: int
    samples_per_record: int

    @property
    def is_annotation(self) -> bool:
        return self.label in EDF_ANNOTATIONS


@dataclasses.dataclass(frozen=True)
class Header:
    """The fixed and per-signal header fields of an EDF/BDF file, checked against the file's size."""

    is_bdf: bool
    is_plus: bool  # EDF+ / BDF+ (reserved field starts with "EDF+" or "BDF+")
    start: datetime.datetime  # header start date and time, whole seconds, UTC
    header_bytes: int
    num_records: int
    record_duration: float  # seconds
    signals: tuple[SignalHeader, ...]

    @property
    def bytes_per_sample(self) -> int:
        return 3 if self.is_bdf else 2

    @property
    def record_bytes(self) -> int:
        return sum(s.samples_per_record for s in self.signals) * self.bytes_per_sample


def read_header(path: Path) -> Header:
    """Parse and check the header of ``path``; any inconsistency is a :class:`RecordingError`."""
    try:
        with path.open("rb") as handle:
            fixed = handle.read(_FIXED_HEADER)
            size = path.stat().st_size
            if len(fixed) < _FIXED_HEADER:
                raise RecordingError(
                    f"{path}: not an EDF/BDF file: {size} bytes, shorter than the {_FIXED_HEADER}-byte header"
                )
            is_bdf = fixed[:1] == b"\xff"
            if not is_bdf and fixed[:8].strip() != b"0":
                raise RecordingError(f"{path}: not an EDF/BDF file (version field {fixed[:8]!r}, not '0')")
            text = fixed.decode("ascii", "replace")
            count = _int(path, text[252:256], "number of signals")
            if count <= 0:
                raise RecordingError(f"{path}: the header announces {count} signals")
            header_bytes = _int(path, text[184:192], "number of bytes in header record")
            if header_bytes != _FIXED_HEADER + count * _SIGNAL_HEADER:
                raise RecordingError(
                    f"{path}: header size field says {header_bytes} bytes, but {count} signals need "
                    f"{_FIXED_HEADER + count * _SIGNAL_HEADER}"
                )
            if size < header_bytes:
                raise RecordingError(
                    f"{path}: file is truncated inside its header ({size} of {header_bytes} header bytes)"
                )
            signal_header = handle.read(count * _SIGNAL_HEADER).decode("ascii", "replace")
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc}") from exc
    num_records = _int(path, text[236:244], "number of data records")
    if num_records == -1:
        raise RecordingError(f"{path}: unknown number of data records (-1: the recording was not closed)")
    if num_records == 0:
        raise RecordingError(f"{path}: no data records")
    if num_records < 0:
        raise RecordingError(f"{path}: invalid number of data records {num_records}")
    record_duration = _float(path, text[244:252], "duration of a data record")
    if not record_duration > 0:
        raise RecordingError(f"{path}: record duration must be positive, got {text[244:252].strip()!r}")
    signals = _signal_headers(path, signal_header, count)
    header = Header(
        is_bdf=is_bdf,
        is_plus=text[192:236].startswith(("EDF+", "BDF+")),
        start=_start(path, text),
        header_bytes=header_bytes,
        num_records=num_records,
        record_duration=record_duration,
        signals=signals,
    )
    expected = header_bytes + num_records * header.record_bytes
    if size < expected:
        complete = (size - header_bytes) // header.record_bytes
        raise RecordingError(
            f"{path}: file is truncated: the header announces {num_records} data records of "
            f"{header.record_bytes} bytes ({expected} bytes in all), the file has {size} bytes "
            f"({complete} complete data records)"
        )
    if size > expected:
        raise RecordingError(
            f"{path}: {size - expected} unexpected bytes after the last of the {num_records} data records "
            f"the header announces (expected {expected} bytes, the file has {size})"
        )
    return header


def _signal_headers(path: Path, raw: str, count: int) -> tuple[SignalHeader, ...]:
    columns: dict[str, list[str]] = {}
    offset = 0
    for name, width in _SIGNAL_FIELDS:
        columns[name] = [raw[offset + width * i : offset + width * (i + 1)] for i in range(count)]
        offset += width * count
    signals = []
    for i in range(count):
        label = columns["label"][i].strip()
        where = f"signal {i + 1} ({label!r})"
        samples = _int(
            path, columns["number of samples in each data record"][i], f"{where} samples per record"
        )
        if samples <= 0:
            raise RecordingError(f"{path}: {where} has {samples} samples per data record")
        signal = SignalHeader(
            label=label,
            unit=columns["physical dimension"][i].strip(),
            physical_min=_float(path, columns["physical minimum"][i], f"{where} physical minimum"),
            physical_max=_float(path, columns["physical maximum"][i], f"{where} physical maximum"),
            digital_min=_int(path, columns["digital minimum"][i], f"{where} digital minimum"),
            digital_max=_int(path, columns["digital maximum"][i], f"{where} digital maximum"),
            samples_per_record=samples,
        )
        if not signal.is_annotation:
            # Samples are scaled by (physical range) / (digital range): equal bounds make that 0 or 1/0.
            if signal.physical_min == signal.physical_max:
                raise RecordingError(
                    f"{path}: {where}: physical minimum and maximum are both {signal.physical_min:g}"
                )
            if signal.digital_min == signal.digital_max:
                raise RecordingError(
                    f"{path}: {where}: digital minimum and maximum are both {signal.digital_min}"
                )
        signals.append(signal)
    return tuple(signals)


def _int(path: Path, field: str, name: str) -> int:
    try:
        return int(field.strip())
    except ValueError:
        raise RecordingError(f"{path}: header field {name!r} is not an integer: {field.strip()!r}") from None


def _float(path: Path, field: str, name: str) -> float:
    try:
        value = float(field.strip())
    except ValueError:
        raise RecordingError(f"{path}: header field {name!r} is not a number: {field.strip()!r}") from None
    if not math.isfinite(value):
        raise RecordingError(f"{path}: header field {name!r} is not a finite number: {field.strip()!r}")
    return value


def _start(path: Path, fixed: str) -> datetime.datetime:
    """Header start date and time. The date of an EDF+ ``Startdate dd-MMM-yyyy`` recording field wins
    over the legacy ``dd.mm.yy`` field (EDF+ spec 2.1.3.3, whose 4-digit year outlasts 2084)."""
    date_field, time_field = fixed[168:176], fixed[176:184]
    date = _edf_plus_date(fixed[88:168])
    try:
        if date is None:
            day, month, year = _three_numbers(date_field)
            date = datetime.date(year + (1900 if year >= 85 else 2000), month, day)
        hour, minute, second = _three_numbers(time_field)
        return datetime.datetime.combine(date, datetime.time(hour, minute, second), tzinfo=datetime.UTC)
    except ValueError:
        raise RecordingError(
            f"{path}: invalid start date or time in the header: {date_field.strip()!r} {time_field.strip()!r}"
        ) from None


def _three_numbers(field: str) -> tuple[int, int, int]:
    match = _DATE_OR_TIME.fullmatch(field)
    if match is None:
        raise ValueError(field)
    first, second, third = (int(group) for group in match.groups())
    return first, second, third


def _edf_plus_date(recording: str) -> datetime.date | None:
    parts = recording.split()
    if len(parts) < 2 or parts[0] != "Startdate":
        return None
    match = _EDF_PLUS_DATE.fullmatch(parts[1])
    if match is None or match.group(2).upper() not in _MONTHS:
        return None
    try:
        return datetime.date(
            int(match.group(3)), _MONTHS.index(match.group(2).upper()) + 1, int(match.group(1))
        )
    except ValueError:
        return None


def record_onsets(path: Path, header: Header) -> np.ndarray:
    """Seconds from the header's start time to each data record's first sample.

    Plain EDF and files without an annotation signal: records follow each other (``i * duration``).
    EDF+/BDF+: the first TAL of the first annotation signal in each record holds its onset.
    """
    num_records = header.num_records
    regular = np.arange(num_records, dtype=np.float64) * header.record_duration
    annotation = next((i for i, s in enumerate(header.signals) if s.is_annotation), None)
    if not header.is_plus or annotation is None:
        return regular
    before = sum(s.samples_per_record for s in header.signals[:annotation]) * header.bytes_per_sample
    width = header.signals[annotation].samples_per_record * header.bytes_per_sample
    onsets = np.empty(num_records, dtype=np.float64)
    try:
        with path.open("rb") as handle:
            for record in range(num_records):
                handle.seek(header.header_bytes + record * header.record_bytes + before)
                match = _TAL_ONSET.match(handle.read(min(width, 64)))
                if match is None:
                    raise RecordingError(f"{path}: data record {record} has no time-keeping annotation")
                onsets[record] = float(match.group(1))
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc}") from exc
    return onsets
