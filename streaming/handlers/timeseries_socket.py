"""GET /ts/query: the viewers' websocket. Checks the package and caller before upgrading."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlparse

import tornado.iostream
import tornado.websocket

from streaming.access import open_package
from streaming.auth import bearer_token
from streaming.errors import InvalidRequest, StreamingError
from streaming.index.models import Package
from streaming.pipeline.stream import ConnectionClosed
from streaming.protocol.frames import json_frame
from streaming.services import Services
from streaming.session.viewer import SessionLimits, ViewerSession


class TimeSeriesSocket(tornado.websocket.WebSocketHandler):
    services: Services
    session: ViewerSession | None = None
    package: Package

    def initialize(self, services: Services) -> None:
        self.services = services

    async def get(self, *args: Any, **kwargs: Any) -> None:
        try:
            self.package = await self._resolve_package()
        except StreamingError as error:
            self.set_status(error.status)
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json_frame(error.to_json()))
            return
        await super().get(*args, **kwargs)

    async def _resolve_package(self) -> Package:
        package_id = self.get_query_argument("package", None)
        if not package_id:
            raise InvalidRequest("the package query parameter is required")
        token = bearer_token(
            self.request.headers.get("Authorization"), self.get_query_argument("session", None)
        )
        public_only = self.request.path.startswith("/discover/")
        jwt_key = self.services.settings.auth.jwt_key
        return await open_package(self.services.packages, package_id, token, jwt_key, public_only)

    def check_origin(self, origin: str) -> bool:
        allowed = self.services.settings.server.allowed_origins
        return "*" in allowed or origin in allowed or urlparse(origin).netloc == self.request.host

    def open(self, *args: Any, **kwargs: Any) -> None:
        start_at_epoch = self.get_query_argument("startAtEpoch", "false").lower() == "true"
        self.session = ViewerSession(
            self.package,
            self.services.streamer,
            self,
            limits=SessionLimits.from_settings(self.services.settings.server),
            start_at_epoch=start_at_epoch,
            on_finished=self.services.sessions.discard,
            close_connection=self.close,
        )
        self.services.sessions.add(self.session)
        self.session.start()
        self.set_nodelay(True)

    def on_message(self, message: str | bytes) -> None:
        if self.session is None:
            return
        if isinstance(message, bytes):
            self.session.receive_binary()
        else:
            self.session.receive_text(message)

    def on_close(self) -> None:
        if self.session is not None:
            self.services.run_in_background(self.session.close())

    # FrameSink: awaited writes give backpressure; a gone peer becomes ConnectionClosed.
    async def send_binary(self, frame: bytes) -> None:
        await self._write(frame, binary=True)

    async def send_text(self, frame: str) -> None:
        await self._write(frame, binary=False)

    async def _write(self, frame: str | bytes, binary: bool) -> None:
        try:
            written = self.write_message(frame, binary=binary)
            # A dropped request cancels its writer; cancelling tornado's own write future instead
            # makes tornado log a CancelledError traceback. The frame is in the stream's buffer
            # already, so shield it and let it finish; its outcome is consumed either way.
            written.add_done_callback(_consume_outcome)
            await asyncio.shield(written)
        except (tornado.websocket.WebSocketClosedError, tornado.iostream.StreamClosedError) as exc:
            raise ConnectionClosed() from exc


def _consume_outcome(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
