"""GET /ts/health: open websockets, uptime and the server clock."""

from __future__ import annotations

import time

from streaming.handlers.base import JsonHandler


class HealthHandler(JsonHandler):
    def get(self) -> None:
        now = time.time()
        self.write_json(
            {
                "connections": len(self.services.sessions),
                "age": int((now - self.services.started_at) * 1000),
                "currentTime": int(now * 1000),
            }
        )
