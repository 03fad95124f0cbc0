"""Run the service: bind sockets, serve until SIGINT/SIGTERM, optionally as N worker processes.

Workers share the listening sockets (bound once, before forking) and so the port; each opens its
own pools. Metrics are summed across workers through prometheus-client's multiprocess mode, which
needs ``PROMETHEUS_MULTIPROC_DIR`` before prometheus-client is first imported: when it is not set,
``run_workers`` re-executes the command with a fresh directory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Sequence

import tornado.httpserver
import tornado.netutil

from streaming.app import make_app, make_metrics_app
from streaming.config import Settings
from streaming.errors import ServiceUnavailable
from streaming.services import Services

log = logging.getLogger(__name__)

Listeners = tuple[list[socket.socket], list[socket.socket]]  # service sockets, metrics sockets

_OWNED_METRICS_DIR = "STREAMING_OWNS_METRICS_DIR"


class ListenError(ServiceUnavailable):
    """A listening socket could not be opened: the port is in use, the address is not this host's, ..."""


def _bind_sockets(port: int, address: str, key: str) -> list[socket.socket]:
    try:
        return tornado.netutil.bind_sockets(port, address)
    except OSError as exc:
        raise ListenError(f"cannot listen on {address or '*'}:{port} ({key}): {exc.strerror or exc}") from exc


def bind(settings: Settings) -> Listeners:
    """Listening sockets for the service port and, if configured, the metrics port; ListenError
    (nothing left open) when either cannot be bound."""
    server = settings.server
    service = _bind_sockets(server.port, server.address, "server.port")
    try:
        metrics = (
            _bind_sockets(server.metrics_port, server.address, "server.metrics_port")
            if server.metrics_port
            else []
        )
    except BaseException:
        _close_sockets((service, []))
        raise
    return service, metrics


def _close_sockets(sockets: Listeners) -> None:
    for sock in (*sockets[0], *sockets[1]):
        sock.close()


async def serve_until_stopped(
    settings: Settings,
    services: Services,
    on_ready: Callable[[], None] | None = None,
    sockets: Listeners | None = None,
) -> None:
    """Serve on ``sockets`` (bound now if not given) until SIGINT/SIGTERM, then shut down cleanly.
    ``services`` are closed on the way out, also when the sockets cannot be bound."""
    try:
        service_sockets, metrics_sockets = sockets or bind(settings)
    except BaseException:
        await services.close()
        raise
    servers = [tornado.httpserver.HTTPServer(make_app(services), xheaders=True)]
    servers[0].add_sockets(service_sockets)
    if metrics_sockets:
        servers.append(tornado.httpserver.HTTPServer(make_metrics_app(services)))
        servers[1].add_sockets(metrics_sockets)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        if on_ready is not None:
            on_ready()
        await stop.wait()
    finally:
        log.info("shutting down")
        await shut_down(servers, services)


async def shut_down(servers: Sequence[tornado.httpserver.HTTPServer], services: Services) -> None:
    """Stop accepting, tell every viewer the server is going away (1001), close the services."""
    for server in servers:
        server.stop()
    await services.close()
    for server in servers:
        await server.close_all_connections()


async def serve(
    settings: Settings,
    sockets: Listeners | None = None,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """``streaming serve`` in one process. The sockets are bound before any pool is opened, so a
    port in use fails fast and leaves nothing open."""
    owned = sockets is None
    sockets = sockets or bind(settings)
    try:
        services = await Services.start(settings)
    except BaseException:
        if owned:
            _close_sockets(sockets)
        raise
    log.info("listening on %s:%d (pid %d)", settings.server.address, settings.server.port, os.getpid())
    await serve_until_stopped(settings, services, on_ready=on_ready, sockets=sockets)
    return 0


def run_workers(settings: Settings, workers: int, argv: Sequence[str]) -> int:
    """Fork ``workers`` processes serving the same sockets; forward signals; wait for all of them."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        directory = tempfile.mkdtemp(prefix="streaming-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        os.environ[_OWNED_METRICS_DIR] = directory
        os.execv(sys.executable, [sys.executable, "-m", "streaming", *argv])
    try:
        return _supervise(settings, workers)
    finally:
        owned = os.environ.get(_OWNED_METRICS_DIR)
        if owned:  # the directory this command made for its workers' metrics, also when binding failed
            shutil.rmtree(owned, ignore_errors=True)


def _supervise(settings: Settings, workers: int) -> int:
    """Bind, fork the workers, replace those that die, and return once all have stopped."""
    from prometheus_client import multiprocess

    sockets = bind(settings)

    def start_worker(number: int) -> tuple[int, int]:
        """Fork worker ``number``; returns its pid and a pipe it writes a byte to once it serves."""
        ready_read, ready_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            for fd in (ready_read, *(pipe for _, pipe in children.values())):
                os.close(fd)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

            def say_ready() -> None:
                os.write(ready_write, b"!")

            code = 1
            try:
                code = asyncio.run(serve(settings, sockets, on_ready=say_ready))
            except BaseException:
                log.exception("worker %d failed", number)
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(ready_write)
        os.set_blocking(ready_read, False)
        return pid, ready_read

    children: dict[int, tuple[int, int]] = {}  # pid -> (worker number, its readiness pipe)
    for number in range(workers):
        pid, ready = start_worker(number)
        children[pid] = (number, ready)
    log.info("started %d workers: %s", workers, sorted(children))
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    failures = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid not in children:
            continue
        number, ready = children.pop(pid)
        had_served = _read_ready(ready)
        multiprocess.mark_process_dead(pid)
        code = os.waitstatus_to_exitcode(status)
        if stopping:
            failures += code != 0
            continue
        log.error("worker %d (pid %d) exited with status %d", number, pid, code)
        if not had_served:
            # It failed to start (database, store, configuration): a replacement would fail too.
            log.error("worker %d failed before serving; stopping", number)
            failures += 1
            forward(signal.SIGTERM, None)
            continue
        pid, ready = start_worker(number)
        children[pid] = (number, ready)
        log.warning("restarted worker %d as pid %d", number, pid)
    for _number, ready in children.values():
        os.close(ready)
    return 1 if failures else 0


def _read_ready(ready: int) -> bool:
    """Whether the worker behind this pipe said it was serving; closes the pipe."""
    try:
        return bool(os.read(ready, 1))
    except BlockingIOError:
        return False
    finally:
        os.close(ready)
