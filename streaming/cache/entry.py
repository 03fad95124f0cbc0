"""The value stored in Redis for a block: a self-describing header, then the samples compressed.

Header (little-endian): magic ``STRB``, format version, codec id, key length (u16), sample count
(u64), CRC-32 of the compressed payload (u32), then the block key. Every read checks key and count
against what was asked for, so a value from a cancelled read that came back on the wrong request,
or any stale or foreign value, is refused instead of served; and it checks the CRC before the
payload is decompressed, so a value damaged in Redis or on the way (blosc2 has no checksum of its
own: a flipped byte decodes to wrong samples without an error) is refused too. A refused value is
a miss. Format 1 had no checksum; its entries are refused as "not this format".

Samples are compressed with blosc2 (byte shuffle + zstd level 1): measured on real EEG it gave
the fastest Redis GET + decode of the candidates (``make bench``: scripts/bench_helpers/cache_levels.py,
README "Block cache").
The CRC is ISA-L's (``isal_zlib.crc32``, the zlib CRC-32 polynomial): about 0.1 ms for the ~7 MiB
payload of an 8 MiB block, ten times faster than ``zlib.crc32``.
"""

from __future__ import annotations

import struct

import blosc2
import numpy as np
from isal.isal_zlib import crc32

MAGIC = b"STRB"
VERSION = 2
CODEC_BLOSC2_ZSTD_SHUFFLE = 1
_HEADER = struct.Struct("<4sBBHQI")


class CacheEntryMismatch(ValueError):
    """A cached value that is not the block that was asked for, or not intact."""


def encode_entry(key: str, samples: np.ndarray) -> bytes:
    """Header + blosc2-compressed native float64 samples."""
    key_bytes = key.encode("utf-8")
    data = np.ascontiguousarray(samples, dtype="<f8")
    payload = blosc2.compress(
        data.tobytes(), typesize=8, codec=blosc2.Codec.ZSTD, filter=blosc2.Filter.SHUFFLE, clevel=1
    )
    header = _HEADER.pack(
        MAGIC, VERSION, CODEC_BLOSC2_ZSTD_SHUFFLE, len(key_bytes), data.shape[0], crc32(payload)
    )
    return header + key_bytes + payload


def decode_entry(value: bytes | bytearray | memoryview, key: str) -> np.ndarray:
    """The samples of ``value`` if it is the intact entry for ``key``; raise CacheEntryMismatch otherwise."""
    view = memoryview(value)  # slices below are views: no copy of the payload
    if len(view) < _HEADER.size:
        raise CacheEntryMismatch("value shorter than the header")
    magic, version, codec, key_length, count, checksum = _HEADER.unpack_from(view)
    if magic != MAGIC or version != VERSION or codec != CODEC_BLOSC2_ZSTD_SHUFFLE:
        raise CacheEntryMismatch("not a block entry of this format")
    key_end = _HEADER.size + key_length
    stored_key = bytes(view[_HEADER.size : key_end]).decode("utf-8", "replace")
    if stored_key != key:
        raise CacheEntryMismatch(f"entry holds {stored_key!r}, not {key!r}")
    payload = view[key_end:]
    if crc32(payload) != checksum:
        raise CacheEntryMismatch("payload checksum mismatch (corrupt entry)")
    try:
        raw = blosc2.decompress(payload)
    except Exception as exc:  # blosc2 raises several types for corrupt input
        raise CacheEntryMismatch(f"corrupt payload: {exc}") from exc
    if raw is None or len(raw) != count * 8:
        raise CacheEntryMismatch(f"payload holds {len(raw or b'') // 8} samples, header says {count}")
    return np.frombuffer(raw, dtype="<f8")
