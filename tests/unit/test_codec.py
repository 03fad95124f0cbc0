"""The stored block format (storage.md "Block files"): gzip of big-endian float64, no header."""

from __future__ import annotations

import gzip
import struct
import zlib

import numpy as np
import pytest

from streaming.storage.codec import BlockFormatError, decode_block, encode_block

RNG_SEED = 20240611


def _samples(count: int, seed: int = RNG_SEED) -> np.ndarray:
    rng = np.random.default_rng(seed + count)
    values = rng.normal(0.0, 150.0, count)
    if count >= 6:
        values[:6] = [0.0, -0.0, np.inf, -np.inf, 1e-308, -1.7976931348623157e308]
    return values


def _big_endian_bytes(values: np.ndarray) -> bytes:
    """The raw block, built with struct, independently of the codec."""
    return struct.pack(f">{len(values)}d", *values.tolist())


def _assert_same_floats(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    # Bit-for-bit: catches byte-order mistakes and distinguishes -0.0 from 0.0.
    assert actual.astype("<f8").tobytes() == np.asarray(expected, dtype="<f8").tobytes()


@pytest.mark.parametrize("level", [0, 1, 6, 9])
@pytest.mark.parametrize("count", [0, 1, 7, 1000, 131_072])
def test_encode_then_decode_round_trip(level: int, count: int) -> None:
    values = _samples(count)
    block = encode_block(values, level=level)
    assert block[:2] == b"\x1f\x8b"
    # What encode_block wrote is exactly gzip of the big-endian bytes (independent inflate).
    assert gzip.decompress(block) == _big_endian_bytes(values)
    _assert_same_floats(decode_block(block), values)


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_decode_of_foreign_gzip_at_any_level(level: int) -> None:
    values = _samples(5000, seed=level)
    block = gzip.compress(_big_endian_bytes(values), compresslevel=level)
    expected = np.array(struct.unpack(f">{len(values)}d", _big_endian_bytes(values)))
    _assert_same_floats(decode_block(block), expected)


def test_decode_of_zlib_built_gzip_stream() -> None:
    values = _samples(300)
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = compressor.compress(_big_endian_bytes(values)) + compressor.flush()
    _assert_same_floats(decode_block(block), values)


def test_already_inflated_bytes_decode_the_same() -> None:
    values = _samples(4096)
    raw = _big_endian_bytes(values)
    assert raw[:2] != b"\x1f\x8b"
    _assert_same_floats(decode_block(raw), values)
    _assert_same_floats(decode_block(raw), decode_block(gzip.compress(raw)))


def test_known_values_decode_big_endian() -> None:
    raw = bytes.fromhex("3ff0000000000000 c000000000000000 8000000000000000")  # 1.0, -2.0, -0.0
    _assert_same_floats(decode_block(raw), np.array([1.0, -2.0, -0.0]))
    _assert_same_floats(decode_block(gzip.compress(raw)), np.array([1.0, -2.0, -0.0]))


def test_multi_member_gzip_decodes_to_concatenation() -> None:
    first, second = _samples(1000, seed=1), _samples(777, seed=2)
    block = gzip.compress(_big_endian_bytes(first), compresslevel=1) + gzip.compress(
        _big_endian_bytes(second), compresslevel=9
    )
    _assert_same_floats(decode_block(block), np.concatenate([first, second]))


def test_multi_member_whose_members_split_a_sample() -> None:
    raw = _big_endian_bytes(_samples(10))
    block = gzip.compress(raw[:13]) + gzip.compress(raw[13:])
    _assert_same_floats(decode_block(block), _samples(10))


@pytest.mark.parametrize("length", [1, 7, 9, 15, 8 * 100 + 3])
def test_length_not_a_multiple_of_eight_is_rejected(length: int) -> None:
    raw = (bytes(range(1, 256)) * 4)[:length]  # starts 01 02: no gzip magic
    assert len(raw) == length
    with pytest.raises(BlockFormatError):
        decode_block(raw)
    with pytest.raises(BlockFormatError):
        decode_block(gzip.compress(raw))


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(b"\x1f\x8b" + b"garbage-garbage-garbage", id="magic-then-garbage"),
        pytest.param(b"\x1f\x8b", id="magic-only"),
        pytest.param(gzip.compress(b"\x00" * 800)[:-5], id="truncated-trailer"),
        pytest.param(gzip.compress(bytes(range(256)) * 8)[:20], id="truncated-deflate"),
        pytest.param(gzip.compress(b"\x00" * 80) + b"junk", id="trailing-garbage"),
    ],
)
def test_corrupt_gzip_is_rejected(block: bytes) -> None:
    with pytest.raises(BlockFormatError):
        decode_block(block)


def test_crc_mismatch_is_rejected() -> None:
    block = bytearray(gzip.compress(_big_endian_bytes(_samples(64))))
    block[-8] ^= 0xFF  # CRC32 of the trailer
    with pytest.raises(BlockFormatError):
        decode_block(bytes(block))


def test_block_format_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        decode_block(b"\x1f\x8bxx")


@pytest.mark.parametrize("block", [b"", gzip.compress(b""), gzip.compress(b"", compresslevel=0)])
def test_empty_block_decodes_to_empty_array(block: bytes) -> None:
    decoded = decode_block(block)
    assert decoded.shape == (0,)
    assert decoded.dtype == np.float64


def test_result_is_native_float64_and_writable() -> None:
    decoded = decode_block(encode_block(_samples(100)))
    assert decoded.dtype == np.dtype(np.float64)
    assert decoded.dtype.isnative
    assert decoded.ndim == 1
    decoded[0] = 1.5  # numpy arithmetic downstream may work in place
    assert decoded[0] == 1.5


def test_encode_accepts_other_dtypes_and_byte_orders() -> None:
    as_int = np.arange(-5, 5, dtype=np.int32)
    little = np.arange(10, dtype="<f8") / 3
    big = little.astype(">f8")
    _assert_same_floats(decode_block(encode_block(as_int)), np.arange(-5.0, 5.0))
    assert encode_block(little) == encode_block(big)
    assert gzip.decompress(encode_block(little)) == _big_endian_bytes(little)
