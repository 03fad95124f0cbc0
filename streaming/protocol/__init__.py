"""The wire format: parse client JSON messages, encode protobuf and JSON frames (pure functions)."""
