"""L1 (streaming/cache/lru.py): a byte bound that holds, least recently used out first."""

from __future__ import annotations

import numpy as np
import pytest

from streaming.cache.lru import ByteBoundedLRU

KIB = 1024


def _block(kib: int, fill: float = 0.0) -> np.ndarray:
    """``kib`` KiB of float64 samples."""
    return np.full(kib * KIB // 8, fill, dtype=np.float64)


def _held_bytes(lru: ByteBoundedLRU) -> int:
    """What the entries really weigh, counted from the arrays themselves, not from ``lru.size``."""
    return sum(lru._entries[key].nbytes for key in lru._entries)


def _check_accounting(lru: ByteBoundedLRU) -> None:
    assert lru.size == _held_bytes(lru)
    assert lru.size <= lru.capacity


def test_never_holds_more_than_its_byte_bound():
    lru = ByteBoundedLRU(100 * KIB)
    rng = np.random.default_rng(11)
    for i in range(500):
        lru.put(f"k{rng.integers(0, 60)}", _block(int(rng.integers(1, 40)), i))
        _check_accounting(lru)
        if i % 3 == 0:
            lru.get(f"k{rng.integers(0, 60)}")
        if i % 17 == 0:
            lru.discard(f"k{rng.integers(0, 60)}")
            _check_accounting(lru)
    assert len(lru) > 1


def test_fills_up_to_exactly_the_bound_without_evicting():
    lru = ByteBoundedLRU(40 * KIB)
    for key in "abcd":
        lru.put(key, _block(10))
    assert len(lru) == 4 and lru.size == 40 * KIB
    lru.put("e", _block(1))
    assert lru.get("a") is None and len(lru) == 4 and lru.size == 31 * KIB


def test_evicts_least_recently_put_first():
    lru = ByteBoundedLRU(30 * KIB)
    for key in "abc":
        lru.put(key, _block(10))
    lru.put("d", _block(10))
    assert lru.get("a") is None
    assert all(lru.get(key) is not None for key in "bcd")
    lru.put("e", _block(20))  # needs two entries' room: the two least recently used go
    assert lru.get("b") is None and lru.get("c") is None
    assert lru.get("d") is not None and lru.get("e") is not None
    _check_accounting(lru)


def test_a_get_makes_an_entry_the_most_recently_used():
    lru = ByteBoundedLRU(30 * KIB)
    for key in "abc":
        lru.put(key, _block(10))
    assert lru.get("a") is not None  # "b" is now the least recently used
    lru.put("d", _block(10))
    assert lru.get("b") is None
    assert all(lru.get(key) is not None for key in "acd")


def test_a_miss_does_not_change_the_order():
    lru = ByteBoundedLRU(20 * KIB)
    lru.put("a", _block(10))
    lru.put("b", _block(10))
    assert lru.get("nope") is None
    lru.put("c", _block(10))
    assert lru.get("a") is None and lru.get("b") is not None


def test_an_entry_larger_than_the_whole_bound_is_not_kept():
    lru = ByteBoundedLRU(30 * KIB)
    lru.put("a", _block(10))
    lru.put("b", _block(10))
    lru.put("huge", _block(31))
    assert lru.get("huge") is None
    assert lru.get("a") is not None and lru.get("b") is not None, "a refused entry must not evict others"
    assert lru.size == 20 * KIB
    _check_accounting(lru)


def test_an_entry_of_exactly_the_bound_replaces_everything():
    lru = ByteBoundedLRU(30 * KIB)
    lru.put("a", _block(10))
    lru.put("b", _block(10))
    lru.put("whole", _block(30))
    assert len(lru) == 1 and lru.get("whole") is not None and lru.size == 30 * KIB


def test_a_too_large_value_for_a_held_key_leaves_no_older_value():
    lru = ByteBoundedLRU(30 * KIB)
    lru.put("a", _block(10, 1.0))
    lru.put("b", _block(10))
    lru.put("a", _block(31, 2.0))
    assert lru.get("a") is None, "the key still answered with the value that was replaced"
    assert lru.get("b") is not None
    assert lru.size == 10 * KIB
    _check_accounting(lru)


@pytest.mark.parametrize(("old_kib", "new_kib"), [(10, 10), (10, 4), (4, 10), (10, 25)])
def test_replacing_a_key_counts_only_the_new_value(old_kib, new_kib):
    lru = ByteBoundedLRU(30 * KIB)
    lru.put("a", _block(old_kib, 1.0))
    lru.put("b", _block(5))
    lru.put("a", _block(new_kib, 2.0))
    assert lru.get("a") is not None and lru.get("a")[0] == 2.0
    assert len([key for key in lru._entries if key == "a"]) == 1
    _check_accounting(lru)
    if new_kib + 5 <= 30:
        assert lru.get("b") is not None and lru.size == (new_kib + 5) * KIB
    else:  # the new value needs the room of "b", the least recently used
        assert lru.get("b") is None and lru.size == new_kib * KIB


def test_replacing_a_key_makes_it_the_most_recently_used():
    lru = ByteBoundedLRU(30 * KIB)
    for key in "abc":
        lru.put(key, _block(10))
    lru.put("a", _block(10, 3.0))
    lru.put("d", _block(10))
    assert lru.get("b") is None and lru.get("a") is not None


def test_discard_and_clear_give_the_bytes_back():
    lru = ByteBoundedLRU(30 * KIB)
    lru.put("a", _block(10))
    lru.put("b", _block(10))
    lru.discard("a")
    lru.discard("never-there")
    assert lru.size == 10 * KIB and lru.get("a") is None
    lru.put("c", _block(20))
    assert lru.get("b") is not None, "a discarded entry's bytes were still counted"
    lru.clear()
    assert lru.size == 0 and len(lru) == 0
    lru.put("d", _block(30))
    assert lru.get("d") is not None


def test_entries_are_read_only_and_shared():
    lru = ByteBoundedLRU(30 * KIB)
    samples = _block(10, 5.0)
    lru.put("a", samples)
    got = lru.get("a")
    assert got is samples
    with pytest.raises(ValueError):
        got[0] = 0.0
