"""Workers die with the `omnistock serve` process that started them, however it dies.

uvicorn's supervisor (the serve process) starts each worker with multiprocessing's `spawn`. If
the supervisor is killed with SIGKILL it cannot stop them: they would live on as orphans,
holding the listening socket, so a restart fails with "Address already in use". Each worker
therefore asks the kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG; set in the worker
itself, since a new process does not inherit it) and, should that ever not fire (it is tied to
the parent *thread* that forked, and a parent that died before the worker set it), a watchdog
thread notices the parent gone (its multiprocessing sentinel closes, or getppid() changes).
Either way the worker shuts down gracefully and, if that takes too long, exits regardless.

SIGHUP to the serve process reaches every worker, which re-reads the API keys file (KeysSupervisor).
A worker that starts while the keys file is broken starts from the last version that loaded,
which the serve process keeps (app/server/last_good_keys.py).

The embedded store is a child of the serve process and sets the same signal for itself
(app/store/embedded.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import threading
from multiprocessing.process import BaseProcess
from pathlib import Path
from socket import socket

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors.multiprocess import Multiprocess

from app.server.last_good_keys import LastGoodKeys

log = logging.getLogger("omnistock.server")

PR_SET_PDEATHSIG = 1
# A worker whose parent is gone has this long for a graceful shutdown, then exits: within the
# contract's 5 s of the parent's death (watchdog poll 0.5 s + this).
ORPHAN_GRACE_SECONDS = 3.0
POLL_SECONDS = 0.5


def create_worker_app() -> FastAPI:
    """uvicorn's app factory in each worker: tie the worker to its parent, then build the app."""
    from app.api.main import create_app_from_env

    die_with_parent()
    return create_app_from_env()


def die_with_parent() -> None:
    """In a spawned worker: SIGTERM when the parent dies, and a watchdog. In the serve process
    itself (one worker, no supervisor) there is nothing to do."""
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None:
        return
    parent_pid = parent.pid
    with contextlib.suppress(Exception):  # not Linux: the watchdog alone
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    threading.Thread(
        target=_watch_parent, args=(parent, parent_pid), name="parent-watchdog", daemon=True
    ).start()


def _watch_parent(parent: BaseProcess, parent_pid: int) -> None:
    # join() returns when the parent's sentinel pipe closes, i.e. when it exits.
    while parent.is_alive() and os.getppid() == parent_pid:
        parent.join(POLL_SECONDS)
    log.error("omnistock: the serve process (pid %d) is gone; this worker exits", parent_pid)
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown
    threading.Event().wait(ORPHAN_GRACE_SECONDS)
    os._exit(1)


def run(config: uvicorn.Config, keys_file: Path | None = None) -> None:
    """uvicorn.run for our config: one worker in this process, or several under KeysSupervisor.
    (uvicorn's own supervisor answers SIGHUP by replacing every worker; we want each worker to
    re-read the keys file instead and keep its connections.)"""
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        if config.workers > 1:
            last_good = LastGoodKeys(keys_file) if keys_file is not None else None
            try:
                KeysSupervisor(config, [config.bind_socket()], last_good).run()
            finally:
                if last_good is not None:
                    last_good.close()
            return
        server.run()
    if not server.started:
        raise SystemExit(3)  # uvicorn's STARTUP_FAILURE


class KeysSupervisor(Multiprocess):
    """uvicorn's worker supervisor, with SIGHUP passed on to every worker (each reloads its
    API keys, app/api/keys_reload.py) rather than a restart of them all, and the last keys
    file that loaded kept for the workers it starts (app/server/last_good_keys.py)."""

    def __init__(
        self, config: uvicorn.Config, sockets: list[socket], last_good: LastGoodKeys | None
    ) -> None:
        super().__init__(config, sockets)
        self._last_good = last_good

    def keep_subprocess_alive(self) -> None:
        # Every tick (0.5 s), before a dead worker is started again.
        if self._last_good is not None:
            self._last_good.refresh()
        super().keep_subprocess_alive()

    def handle_hup(self) -> None:
        log.info("omnistock: SIGHUP: the workers re-read the API keys file")
        if self._last_good is not None:
            self._last_good.refresh(force=True)
        for worker in self.processes:
            # Only a worker done starting has its SIGHUP handler (the default would kill it);
            # one still starting reads the file as it starts anyway.
            pid = worker.pid
            if pid is not None and worker.is_ready(timeout=1):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGHUP)
