"""Helpers shared by the tests: protobuf decoding, a websocket viewer client, reference computations."""
