"""Write small EDF+/EDF+D files byte by byte (EDF+ spec), for recordings the tests need to invent.

Digital and physical ranges are equal, so the physical value of every sample is its integer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np


@dataclasses.dataclass(frozen=True)
class EdfSignalSpec:
    label: str
    samples_per_record: int
    digital: np.ndarray  # int16 values, len = samples_per_record * records
    unit: str = "uV"


def _field(value: object, width: int) -> bytes:
    text = str(value).encode("ascii")
    assert len(text) <= width, (value, width)
    return text.ljust(width, b" ")


def write_edf_plus(
    path: Path,
    signals: Sequence[EdfSignalSpec],
    record_onsets: Sequence[float],
    record_duration: float = 1.0,
    discontinuous: bool = True,
    start: str = ("14.10.08", "20.48.12"),  # type: ignore[assignment]
) -> Path:
    """An EDF+ file whose data record ``i`` starts ``record_onsets[i]`` seconds after the header time."""
    records = len(record_onsets)
    annotation_bytes = 64
    all_labels = [s.label for s in signals] + ["EDF Annotations"]
    counts = [s.samples_per_record for s in signals] + [annotation_bytes // 2]
    count = len(all_labels)
    header = b"".join(
        [
            _field("0", 8),
            _field("X X X X", 80),
            _field("Startdate 14-OCT-2008 X X X", 80),
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
        [_field(-32768, 8)] * count,  # physical minimum
        [_field(32767, 8)] * count,  # physical maximum
        [_field(-32768, 8)] * count,  # digital minimum
        [_field(32767, 8)] * count,  # digital maximum
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
        tal = f"+{onset:g}\x14\x14\x00".encode("ascii")
        body += tal.ljust(annotation_bytes, b"\x00")
    path.write_bytes(header + bytes(body))
    return path
