"""Per-connection state of a viewer's websocket."""
