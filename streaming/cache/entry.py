"""The value stored in Redis for a block: a self-describing header, then the samples compressed.

Header (little-endian): magic ``STRB``, format version, codec id, key length (u16), sample count
(u64), then the block key. Every read checks key and count against what was asked for, so a value
from a cancelled read that came back on the wrong request, or any stale or foreign value, is
refused instead of served.

Samples are compressed with blosc2 (byte shuffle + zstd level 1): measured on real EEG it gave
the fastest Redis GET + decode of the candidates (scripts/bench_cache_codec.py, README "Cache").
"""

from __future__ import annotations

import struct

import blosc2
import numpy as np

MAGIC = b"STRB"
VERSION = 1
CODEC_BLOSC2_ZSTD_SHUFFLE = 1
_HEADER = struct.Struct("<4sBBHQ")


class CacheEntryMismatch(ValueError):
    """A cached value that is not the block that was asked for."""


def encode_entry(key: str, samples: np.ndarray) -> bytes:
    """Header + blosc2-compressed native float64 samples."""
    key_bytes = key.encode("utf-8")
    data = np.ascontiguousarray(samples, dtype="<f8")
    payload = blosc2.compress(
        data.tobytes(), typesize=8, codec=blosc2.Codec.ZSTD, filter=blosc2.Filter.SHUFFLE, clevel=1
    )
    header = _HEADER.pack(MAGIC, VERSION, CODEC_BLOSC2_ZSTD_SHUFFLE, len(key_bytes), data.shape[0])
    return header + key_bytes + payload


def decode_entry(value: bytes, key: str) -> np.ndarray:
    """The samples of ``value`` if it is the entry for ``key``; raise CacheEntryMismatch otherwise."""
    if len(value) < _HEADER.size:
        raise CacheEntryMismatch("value shorter than the header")
    magic, version, codec, key_length, count = _HEADER.unpack_from(value)
    if magic != MAGIC or version != VERSION or codec != CODEC_BLOSC2_ZSTD_SHUFFLE:
        raise CacheEntryMismatch("not a block entry of this format")
    stored_key = value[_HEADER.size : _HEADER.size + key_length].decode("utf-8", "replace")
    if stored_key != key:
        raise CacheEntryMismatch(f"entry holds {stored_key!r}, not {key!r}")
    try:
        raw = blosc2.decompress(value[_HEADER.size + key_length :])
    except Exception as exc:  # blosc2 raises several types for corrupt input
        raise CacheEntryMismatch(f"corrupt payload: {exc}") from exc
    if raw is None or len(raw) != count * 8:
        raise CacheEntryMismatch(f"payload holds {len(raw or b'') // 8} samples, header says {count}")
    return np.frombuffer(raw, dtype="<f8")
