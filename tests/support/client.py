"""A viewer over a real websocket: sends JSON, collects protobuf and JSON frames."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from typing import Any

import tornado.websocket
import ujson

from tests.support.proto import decode_message


@dataclasses.dataclass
class Page:
    """Every frame that answered one request: segments per channel id, and JSON text frames."""

    segments: dict[str, list[Any]]
    texts: list[dict[str, Any]]

    def channel(self, channel_id: str) -> list[Any]:
        return self.segments[channel_id]


class ViewerClient:
    def __init__(self, connection: tornado.websocket.WebSocketClientConnection) -> None:
        self.connection = connection

    @classmethod
    async def connect(cls, url: str) -> ViewerClient:
        return cls(await tornado.websocket.websocket_connect(url))

    async def send(self, payload: dict[str, Any] | str | bytes) -> None:
        if isinstance(payload, dict):
            payload = ujson.dumps(payload)
        await self.connection.write_message(payload, binary=isinstance(payload, bytes))

    async def receive(self, timeout: float = 20.0) -> str | bytes | None:
        return await asyncio.wait_for(self.connection.read_message(), timeout)

    async def receive_json(self, timeout: float = 20.0) -> dict[str, Any]:
        frame = await self.receive(timeout)
        assert isinstance(frame, str), f"expected a text frame, got {type(frame).__name__}"
        return ujson.loads(frame)

    async def page(self, request: dict[str, Any], timeout: float = 60.0) -> Page:
        """Send a TimeSeriesRequest and read until every channel got its ``totalResponses`` messages."""
        await self.send(request)
        return await self.read_page([vc["id"] for vc in request["virtualChannels"]], timeout)

    async def read_page(self, channel_ids: list[str], timeout: float = 60.0) -> Page:
        segments: dict[str, list[Any]] = collections.defaultdict(list)
        totals: dict[str, int] = {}
        texts: list[dict[str, Any]] = []
        expected = collections.Counter(channel_ids)
        deadline = asyncio.get_running_loop().time() + timeout

        def complete() -> bool:
            return all(
                cid in totals and len(segments[cid]) >= totals[cid] * count for cid, count in expected.items()
            )

        while not complete():
            frame = await self.receive(max(0.1, deadline - asyncio.get_running_loop().time()))
            if frame is None:
                raise ConnectionError("server closed the websocket")
            if isinstance(frame, str):
                texts.append(ujson.loads(frame))
                if "error" in texts[-1] and not texts[-1].get("channelNames"):
                    raise AssertionError(f"request failed: {texts[-1]}")
                continue
            message = decode_message(frame)
            source = message.segment.source
            segments[source].append(message)
            totals[source] = message.totalResponses
        return Page(dict(segments), texts)

    def close(self) -> None:
        self.connection.close()
