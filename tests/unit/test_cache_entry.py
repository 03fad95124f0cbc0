"""The Redis block-cache entry (streaming/cache/entry.py): a value is served only if it is intact."""

from __future__ import annotations

import struct

import blosc2
import numpy as np
import pytest

from streaming.cache.entry import CacheEntryMismatch, decode_entry, encode_entry

KEY = "recordings/pkg-1/ch-3/000042.bin.gz"


def _samples(count: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # EEG-like: a slow wave plus noise, quantised the way EDF digital values are.
    wave = 80.0 * np.sin(np.arange(count) / 40.0) + rng.normal(0.0, 12.0, count)
    return np.round(wave * 32.0) / 32.0


def _split(entry: bytes, samples: np.ndarray) -> int:
    """Offset of the payload: the entry ends with the blosc2 frame of ``samples``."""
    payload = blosc2.compress(
        np.ascontiguousarray(samples, dtype="<f8").tobytes(),
        typesize=8,
        codec=blosc2.Codec.ZSTD,
        filter=blosc2.Filter.SHUFFLE,
        clevel=1,
    )
    assert entry.endswith(payload)
    return len(entry) - len(payload)


def _flipped(entry: bytes, position: int, mask: int = 0x01) -> bytes:
    changed = bytearray(entry)
    changed[position] ^= mask
    return bytes(changed)


def test_round_trip_is_exact():
    samples = _samples(10_000)
    samples[:4] = [0.0, -0.0, np.inf, -np.inf]
    decoded = decode_entry(encode_entry(KEY, samples), KEY)
    assert decoded.dtype == np.dtype("<f8")
    assert decoded.tobytes() == samples.astype("<f8").tobytes()


def test_empty_block_round_trips():
    assert decode_entry(encode_entry(KEY, np.zeros(0)), KEY).shape == (0,)


def test_a_byte_flipped_in_the_middle_of_the_payload_is_refused():
    samples = _samples(100_000)
    entry = encode_entry(KEY, samples)
    start = _split(entry, samples)
    middle = start + (len(entry) - start) // 2
    for mask in (0x01, 0x80, 0xFF):
        with pytest.raises(CacheEntryMismatch, match="checksum"):
            decode_entry(_flipped(entry, middle, mask), KEY)


def test_every_single_byte_change_anywhere_is_refused():
    samples = _samples(600)
    entry = encode_entry(KEY, samples)
    for position in range(len(entry)):
        for mask in (0x01, 0xFF):
            with pytest.raises(CacheEntryMismatch):
                decode_entry(_flipped(entry, position, mask), KEY)


def test_a_payload_swapped_for_another_valid_one_is_refused():
    """Header of one block, intact blosc2 frame of other samples of the same length."""
    samples, other = _samples(5_000, seed=1), _samples(5_000, seed=2)
    entry = encode_entry(KEY, samples)
    stranger = encode_entry(KEY, other)
    spliced = entry[: _split(entry, samples)] + stranger[_split(stranger, other) :]
    with pytest.raises(CacheEntryMismatch, match="checksum"):
        decode_entry(spliced, KEY)


def test_truncated_and_extended_entries_are_refused():
    samples = _samples(5_000)
    entry = encode_entry(KEY, samples)
    for bad in (entry[:-1], entry[: len(entry) // 2], entry[:10], b"", entry + b"\x00"):
        with pytest.raises(CacheEntryMismatch):
            decode_entry(bad, KEY)


def test_an_entry_of_another_block_is_refused():
    entry = encode_entry(KEY, _samples(1_000))
    with pytest.raises(CacheEntryMismatch, match="holds"):
        decode_entry(entry, KEY.replace("000042", "000043"))


def test_an_entry_of_the_previous_format_is_a_miss():
    """Format 1 (no checksum): what older processes wrote; refused, never decoded without a check."""
    samples = _samples(1_000)
    key_bytes = KEY.encode()
    payload = blosc2.compress(
        samples.astype("<f8").tobytes(), typesize=8, codec=blosc2.Codec.ZSTD, filter=blosc2.Filter.SHUFFLE
    )
    old = struct.pack("<4sBBHQ", b"STRB", 1, 1, len(key_bytes), len(samples)) + key_bytes + payload
    with pytest.raises(CacheEntryMismatch, match="format"):
        decode_entry(old, KEY)


def test_decode_accepts_any_bytes_like_value():
    samples = _samples(2_000)
    entry = encode_entry(KEY, samples)
    for value in (bytearray(entry), memoryview(entry)):
        np.testing.assert_array_equal(decode_entry(value, KEY), samples)
