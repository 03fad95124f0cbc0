"""The REST queries of protocol.md section 3: raw samples, unit events, contiguous segments."""
