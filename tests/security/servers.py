"""A throwaway Redis/Valkey server with a config of the test's choosing (ACL users, TLS)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from app.store.embedded import free_port


class ConfiguredServer:
    def __init__(self, binary: str, workdir: Path, lines: list[str], tls: bool = False) -> None:
        self.port = free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        port_lines = ["port 0", f"tls-port {self.port}"] if tls else [f"port {self.port}"]
        config = [
            "bind 127.0.0.1",
            *port_lines,
            f"dir {workdir}",
            'save ""',
            "appendonly no",
            "logfile server.log",
            *lines,
        ]
        (workdir / "server.conf").write_text("\n".join(config) + "\n")
        self.proc = subprocess.Popen(
            [binary, str(workdir / "server.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self, client: Redis, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.workdir / "server.log").read_text()[-2000:]
                raise RuntimeError(f"server exited: {log}")
            try:
                if client.ping():
                    return
            except RedisError:
                time.sleep(0.05)
        raise RuntimeError("server not ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
