"""Postgres: the range index of stored blocks plus package and channel metadata."""
