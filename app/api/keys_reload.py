"""The API keys file, re-read while the service runs: on SIGHUP and when the file changes.

Each worker watches the file itself (a stat every second: inode, device, mtime and size, so an
edit in place, a rename over it and a Kubernetes secret's symlink swap are all seen), and on
SIGHUP reads it at once (`omnistock serve` forwards its SIGHUP to every worker,
app/server/supervision.py). A reload builds the whole new KeyRing and validates it before it
replaces the old one in a single reference assignment on the event loop's thread, so a request
sees the old keys or the new ones, never a mix. A file that does not load (bad JSON, bad
entry, missing) keeps the old keys and logs an error once: a typo never locks every client out.
A worker that starts while the file is broken starts from the last version that loaded, which
the serve process keeps (app/server/last_good_keys.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Any

from app.api.auth import KeyRing
from app.credentials import Fingerprint, KeysFileError, fingerprint
from app.domain.tasks import cancel_and_wait
from app.server.last_good_keys import load_fallback

log = logging.getLogger("omnistock.keys")

POLL_SECONDS = 1.0


class KeysReloader:
    """Loads `path` (if it is bad: the serve process's last good copy, or KeysFileError and
    the service does not start), then, once
    started, keeps `state.keyring` (the app's state) up to date with it."""

    def __init__(self, path: Path, poll_seconds: float = POLL_SECONDS) -> None:
        self._path = path
        self._poll = poll_seconds
        self._seen = fingerprint(path)  # taken before the read: a change during it is seen
        try:
            self.keyring = KeyRing.from_file(path)
        except KeysFileError as exc:
            # A worker started while the file is broken: the serve process's last good copy.
            self.keyring = KeyRing.from_file(load_fallback(exc))
        self._state: Any = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._on_sighup = False

    def start(self, state: Any) -> None:
        self._state = state
        loop = asyncio.get_running_loop()
        # Only the main thread may own a signal; an app run in a test's thread polls only.
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signal.SIGHUP, self.request_reload)
            self._on_sighup = True
        self._task = asyncio.create_task(self._run(), name="keys-reload")

    async def stop(self) -> None:
        if self._on_sighup:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        await cancel_and_wait(self._task)

    def request_reload(self) -> None:
        """Read the file now, changed or not (SIGHUP)."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)
            forced = self._wake.is_set()
            self._wake.clear()
            current = fingerprint(self._path)
            if forced or current != self._seen:
                self.reload(current)

    def reload(self, seen: Fingerprint) -> bool:
        """Load the file; swap it in if valid. `seen` was taken before the read, so a change
        made during the read shows as a new fingerprint at the next poll and is read again."""
        self._seen = seen
        try:
            ring = KeyRing.from_file(self._path)
        except KeysFileError as exc:
            log.error("omnistock: keys file not reloaded, the previous keys stay in use: %s", exc)
            return False
        self.keyring = self._state.keyring = ring
        log.info("omnistock: %d API key(s) reloaded from %s", len(ring), self._path)
        return True
