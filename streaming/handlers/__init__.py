"""Tornado handlers: parse, call a service object, write. No logic lives here."""
