"""Reduce more samples than pixels to (min, max) pairs per pixel group."""

from streaming.resample.minmax import group_size, minmax_pairs, needs_resampling

__all__ = ["group_size", "minmax_pairs", "needs_resampling"]
