"""Recording files -> blocks in the store + rows in the range index."""
