"""Contiguous spans of a channel from its stored blocks (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from streaming.index.models import BlockRef


def contiguous_spans(blocks: Sequence[BlockRef], rate: float, gap_threshold: float) -> list[list[int]]:
    """``[start, end]`` spans of consecutive blocks, joined when the next block starts less than
    ``gap_threshold`` sample periods after the previous one ends.

    Blocks must be in time order. A writer that stored ``hi`` as last sample + 1 us leaves a
    step of one period minus 1 us between blocks, which any threshold of at least 1 joins.
    """
    joined_within = gap_threshold * 1e6 / rate
    spans: list[list[int]] = []
    for block in blocks:
        if spans and block.lo - spans[-1][1] < joined_within:
            spans[-1][1] = max(spans[-1][1], block.hi)
        else:
            spans.append([block.lo, block.hi])
    return spans
