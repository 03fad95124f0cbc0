"""streaming: serve long biosignal recordings to web viewers over a websocket."""

__version__ = "0.1.0"
