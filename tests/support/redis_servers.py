"""Private redis-server processes for cache tests: one standalone server, or a 3-node Redis Cluster.

Never touches the machine's shared Redis on 6379.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from streaming.devservices import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


class RedisProcess:
    """One redis-server on a fixed loopback port that can be killed and started again."""

    def __init__(self, port: int | None = None, *extra: str) -> None:
        self.port = port or free_port()
        self.directory = Path(tempfile.mkdtemp(prefix=f"redis-{self.port}-"))
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.directory),
                "--maxmemory", "512mb", "--maxmemory-policy", "allkeys-lru", *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis(port=self.port, socket_timeout=1).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server on {self.port} did not start") from None
                time.sleep(0.05)

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its sockets open but answers nothing (a hung, very slow Redis)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after ``freeze`` (harmless when the server is running or gone)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is valid and free too."""
    while True:
        port = free_port()
        if port > 55535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class RedisCluster3:
    """Three cluster-enabled redis-server masters joined with ``redis-cli --cluster create``.

    ``extra`` arguments go to every node (e.g. ``"--maxmemory-policy", "noeviction"``). A node that is
    killed and started again keeps its slots (its nodes.conf stays in its directory).
    """

    def __init__(self, *extra: str) -> None:
        options = ("--cluster-enabled", "yes", "--cluster-node-timeout", "2000", *extra)
        self.nodes = [RedisProcess(_cluster_port(), *options) for _ in range(3)]
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        try:
            subprocess.run(
                [REDIS_CLI, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=60,
            )
            self.wait_until_ok()
        except BaseException:
            self.stop()  # no orphaned servers when the cluster cannot be formed
            raise

    def wait_until_ok(self, seconds: float = 30) -> None:
        """Until every node reports ``cluster_state:ok`` (after creation, or a node's restart)."""
        deadline = time.monotonic() + seconds
        while not all(self._state(n) == "ok" for n in self.nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("Redis Cluster did not become ready")
            time.sleep(0.1)

    @staticmethod
    def _state(node: RedisProcess) -> str | None:
        try:
            return redis.Redis(port=node.port, socket_timeout=1).cluster("info").get("cluster_state")
        except redis.RedisError:
            return None

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def client(self) -> redis.RedisCluster:
        return redis.RedisCluster(host="127.0.0.1", port=self.nodes[0].port)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
