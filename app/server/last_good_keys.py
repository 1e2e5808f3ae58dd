"""The last API keys file that loaded, kept by the serve process for the workers it starts.

A running worker that reads a broken keys file keeps its old keys (app/api/keys_reload.py).
A worker that *starts* while the file is broken had no old keys: it failed, and uvicorn
started it again every half second, failing the same way until someone fixed the file, so
the service lost that worker (a worker still starting when the file broke, or one restarted
after a crash). The serve process, the one process that outlives its workers, therefore
checks the file at every supervision tick (a stat; a read only when it changed, or on SIGHUP)
and keeps a copy of the last version that loads, in a private directory; a worker that cannot
load the file starts from that copy, and from then on follows the file like the others.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from app.credentials import Fingerprint, KeysFileError, fingerprint, load

log = logging.getLogger("omnistock.keys")

# The copy's path, for the workers (spawned processes inherit the environment).
ENV = "_OMNISTOCK_LAST_GOOD_KEYS"


class LastGoodKeys:
    def __init__(self, source: Path) -> None:
        self._source = source
        self._dir = Path(tempfile.mkdtemp(prefix="omnistock-keys-"))  # 0700
        self.path = self._dir / "keys.json"
        self._seen: Fingerprint = None
        self.refresh(force=True)
        os.environ[ENV] = str(self.path)

    def refresh(self, force: bool = False) -> None:
        """Copy the file if it changed (or `force`) and loads; a bad one leaves the copy."""
        seen = fingerprint(self._source)  # before the read: a change during it is seen next
        if seen == self._seen and not force:
            return
        self._seen = seen
        candidate = self._dir / "candidate.json"
        try:
            candidate.write_bytes(self._source.read_bytes())
            load(candidate)  # exactly the bytes that will be kept
        except (OSError, KeysFileError):
            return  # the workers log why; the last good copy stays
        os.replace(candidate, self.path)

    def close(self) -> None:
        os.environ.pop(ENV, None)
        shutil.rmtree(self._dir, ignore_errors=True)


def load_fallback(error: KeysFileError) -> Path:
    """In a worker whose keys file does not load: the serve process's last good copy, or
    `error` again (one worker, no supervisor: the start fails closed, as before)."""
    copy = os.environ.get(ENV)
    if not copy or not Path(copy).is_file():
        raise error
    log.error(
        "omnistock: keys file does not load, this worker starts with the last keys that "
        "loaded (kept by the serve process): %s",
        error,
    )
    return Path(copy)
