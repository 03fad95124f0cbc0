"""Signal processing on decoded samples: trimming to a window (montages and filters come later)."""
