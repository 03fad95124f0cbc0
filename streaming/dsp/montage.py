"""Montages: virtual channels ``A<->B`` whose samples are lead A minus secondary B (protocol.md section 2)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np

from streaming.errors import InvalidMontageName

SEPARATOR = "<->"

_BIPOLAR_ANT_POS = [
    ("Fp1", "F7"), ("F7", "T7"), ("T7", "P7"), ("P7", "O1"),
    ("Fp2", "F8"), ("F8", "T8"), ("T8", "P8"), ("P8", "O2"),
    ("Fp1", "F3"), ("F3", "C3"), ("C3", "P3"), ("P3", "O1"),
    ("Fp2", "F4"), ("F4", "C4"), ("C4", "P4"), ("P4", "O2"),
    ("Fz", "Cz"), ("Cz", "Fz"),
]  # fmt: skip
_BIPOLAR_TRANSVERSE = [
    ("F7", "F3"), ("F3", "Fz"), ("Fz", "F4"), ("F4", "F8"),
    ("A1", "T7"), ("T7", "C3"), ("C3", "Cz"), ("Cz", "C4"), ("C4", "T8"), ("T8", "A2"),
    ("P7", "P3"), ("P3", "Pz"), ("Pz", "P4"), ("P4", "P8"),
    ("Fp1", "A1"), ("Fp2", "A2"), ("Q1", "A1"), ("Q2", "A2"),
]  # fmt: skip
_REFERENTIAL_VS_CZ = [
    (lead, "Cz")
    for lead in (
        "Fp1", "Fp2", "F7", "F8", "T7", "T8", "P7", "P8", "F3", "F4",
        "C3", "C4", "P3", "P4", "Q1", "Q2", "F2", "P2",
    )
]  # fmt: skip

BUILT_IN_MONTAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "BIPOLAR_ANT_POS": tuple(_BIPOLAR_ANT_POS),
    "BIPOLAR_TRANSVERSE": tuple(_BIPOLAR_TRANSVERSE),
    "REFERENTIAL_VS_CZ": tuple(_REFERENTIAL_VS_CZ),
}


@dataclasses.dataclass(frozen=True, slots=True)
class MontagePair:
    lead: str
    secondary: str

    @property
    def name(self) -> str:
        return f"{self.lead}{SEPARATOR}{self.secondary}"


def montage_pairs(montage: str, custom: Sequence[tuple[str, str]] = ()) -> list[MontagePair]:
    """The (lead, secondary) pairs of a montage; empty for NOT_MONTAGED."""
    if montage == "NOT_MONTAGED":
        return []
    if montage == "CUSTOM_MONTAGE":
        return [MontagePair(lead, secondary) for lead, secondary in custom]
    if montage not in BUILT_IN_MONTAGES:
        raise InvalidMontageName(f"unknown montage {montage!r}")
    return [MontagePair(lead, secondary) for lead, secondary in BUILT_IN_MONTAGES[montage]]


def missing_channels(pairs: Iterable[MontagePair], channel_names: Iterable[str]) -> list[str]:
    """Names the pairs need that the package lacks, in first-use order."""
    present = set(channel_names)
    missing: dict[str, None] = {}
    for pair in pairs:
        for name in (pair.lead, pair.secondary):
            if name not in present:
                missing[name] = None
    return list(missing)


def parse_virtual_name(name: str) -> MontagePair | None:
    """``"A<->B"`` -> MontagePair(A, B); a plain channel name -> None.

    Only the ``<->`` separator splits, so labels such as ``EEG Fp1-Ref`` stay whole.
    """
    if SEPARATOR not in name:
        return None
    lead, _, secondary = name.partition(SEPARATOR)
    if not lead.strip() or not secondary.strip() or SEPARATOR in secondary:
        raise InvalidMontageName(f"virtual channel name {name!r} is not of the form lead<->secondary", [name])
    return MontagePair(lead, secondary)


def subtract(lead: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Sample-by-sample lead minus secondary of two equally long, aligned blocks."""
    if lead.shape != secondary.shape:
        raise ValueError(f"blocks differ in length: {lead.shape[0]} vs {secondary.shape[0]}")
    return np.subtract(lead, secondary)
