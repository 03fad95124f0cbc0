"""Write small EDF+/EDF+D files byte by byte (EDF+ spec), for recordings the tests need to invent.

By default digital and physical ranges are equal, so the physical value of every sample is its
integer. ``set_header_field`` damages a written file's header in place, for tests of refusals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")

# EDF spec, section 2.1: the fixed part of the header, then one column per field for all signals.
FIXED_FIELDS = {
    "version": (0, 8),
    "patient": (8, 80),
    "recording": (88, 80),
    "startdate": (168, 8),
    "starttime": (176, 8),
    "header_bytes": (184, 8),
    "reserved": (192, 44),
    "num_records": (236, 8),
    "record_duration": (244, 8),
    "num_signals": (252, 4),
}
SIGNAL_FIELDS = (
    ("label", 16),
    ("transducer", 80),
    ("unit", 8),
    ("physical_min", 8),
    ("physical_max", 8),
    ("digital_min", 8),
    ("digital_max", 8),
    ("prefiltering", 80),
    ("samples_per_record", 8),
    ("reserved", 32),
)


@dataclasses.dataclass(frozen=True)
class EdfSignalSpec:
    label: str
    samples_per_record: int
    digital: np.ndarray  # int16 values, len = samples_per_record * records
    unit: str = "uV"
    physical_range: tuple[float, float] = (-32768, 32767)
    digital_range: tuple[int, int] = (-32768, 32767)


def _field(value: object, width: int) -> bytes:
    text = str(value).encode("ascii")
    assert len(text) <= width, (value, width)
    return text.ljust(width, b" ")


def format_onset(onset: float) -> str:
    """A TAL onset: sign, then the number with up to 7 decimals and no trailing zeros."""
    text = f"{onset:+.7f}".rstrip("0")
    return text.rstrip(".")


def _edf_plus_startdate(date: str) -> str:
    """``dd.mm.yy`` -> ``dd-MMM-yyyy`` (EDF spec: yy 85-99 are 19yy, 00-84 are 20yy)."""
    day, month, year = (int(part) for part in date.split("."))
    century = 1900 if year >= 85 else 2000
    return f"{day:02d}-{_MONTHS[month - 1]}-{century + year}"


def write_edf_plus(
    path: Path,
    signals: Sequence[EdfSignalSpec],
    record_onsets: Sequence[float],
    record_duration: float = 1.0,
    discontinuous: bool = True,
    start: tuple[str, str] = ("14.10.08", "20.48.12"),  # header date dd.mm.yy, time hh.mm.ss
) -> Path:
    """An EDF+ file whose data record ``i`` starts ``record_onsets[i]`` seconds after the header time.

    Onsets may be in any order and of any size (EDF+D); the EDF+ recording field gets the same date.
    """
    records = len(record_onsets)
    annotation_bytes = 64
    all_labels = [s.label for s in signals] + ["EDF Annotations"]
    counts = [s.samples_per_record for s in signals] + [annotation_bytes // 2]
    count = len(all_labels)
    header = b"".join(
        [
            _field("0", 8),
            _field("X X X X", 80),
            _field(f"Startdate {_edf_plus_startdate(start[0])} X X X", 80),
            _field(start[0], 8),
            _field(start[1], 8),
            _field(256 * (count + 1), 8),
            _field("EDF+D" if discontinuous else "EDF+C", 44),
            _field(records, 8),
            _field(f"{record_duration:g}", 8),
            _field(count, 4),
        ]
    )
    columns = [
        [_field(label, 16) for label in all_labels],
        [_field("", 80)] * count,
        [_field(s.unit, 8) for s in signals] + [_field("", 8)],
        [_field(f"{s.physical_range[0]:g}", 8) for s in signals] + [_field(-32768, 8)],
        [_field(f"{s.physical_range[1]:g}", 8) for s in signals] + [_field(32767, 8)],
        [_field(s.digital_range[0], 8) for s in signals] + [_field(-32768, 8)],
        [_field(s.digital_range[1], 8) for s in signals] + [_field(32767, 8)],
        [_field("", 80)] * count,
        [_field(n, 8) for n in counts],
        [_field("", 32)] * count,
    ]
    header += b"".join(b"".join(column) for column in columns)
    body = bytearray()
    for record, onset in enumerate(record_onsets):
        for signal in signals:
            chunk = signal.digital[
                record * signal.samples_per_record : (record + 1) * signal.samples_per_record
            ]
            body += np.asarray(chunk, dtype="<i2").tobytes()
        tal = f"{format_onset(onset)}\x14\x14\x00".encode("ascii")
        body += tal.ljust(annotation_bytes, b"\x00")
    path.write_bytes(header + bytes(body))
    return path


def set_header_field(path: Path, field: str, value: object, signal: int | None = None) -> Path:
    """Overwrite one header field of an EDF/BDF file in place (``signal``: index, for per-signal fields)."""
    data = bytearray(path.read_bytes())
    if signal is None:
        offset, width = FIXED_FIELDS[field]
    else:
        count = int(data[252:256])
        offset = 256
        for name, column_width in SIGNAL_FIELDS:
            if name == field:
                offset += signal * column_width
                width = column_width
                break
            offset += count * column_width
        else:
            raise KeyError(field)
    data[offset : offset + width] = _field(value, width)
    path.write_bytes(bytes(data))
    return path
