"""The import's pipelined writer: batches of script calls sent to the store in order from a
thread of their own, so the store always has the next batch queued (`app/domain/importer.py`
builds the calls), and what both importers share to call their script as a function with a
blocking client (`fcall`, `load_library`, `not_run`): the service's mechanism
(app/store/scripts.py), so the store user needs no EVALSHA or SCRIPT LOAD."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Sequence
from itertools import islice
from typing import Any

import redis
from redis.exceptions import ResponseError

from app.store.functions import Library
from app.store.mux import pack
from app.store.scripts import already_loaded

Call = tuple[Any, ...]  # one command: FCALL, function, numkeys, keys..., args...


def fcall(lib: Library, keys: Sequence[Any], args: Sequence[Any]) -> Call:
    """The FCALL of `lib`'s function with `keys` and `args` (the command's name a str: the
    cluster client's routing wants one)."""
    return ("FCALL", lib.function, len(keys), *keys, *args)


def not_run(reply: Any) -> bool:
    """Whether `reply` is the store's "Function not found": the call did not run (a new or
    flushed server, or `omnistock functions prune` of another version). A pipeline's error
    may carry redis-py's "Command # n (...) of pipeline caused error: " before it."""
    return isinstance(reply, ResponseError) and "Function not found" in str(reply).split(": ")[-1]


def load_library(client: redis.Redis, lib: Library) -> None:
    """FUNCTION LOAD of `lib` on the one server, or on every primary of a cluster (an import
    calls it on every one); one already there is left as it is."""
    if isinstance(client, redis.RedisCluster):
        where: list[dict[str, Any]] = [{"target_nodes": n} for n in client.get_primaries()]
    else:
        where = [{}]
    for options in where:
        try:
            client.execute_command("FUNCTION", "LOAD", lib.text, **options)  # type: ignore[no-untyped-call]
        except ResponseError as error:
            if not already_loaded(error):
                raise


class LibraryLost(ResponseError):
    """The store kept answering "Function not found" after the library was loaded again."""


class ImportWriter:
    """Batches of calls on their way to the store, in order. On one server, one connection
    carries them all (the store runs a connection's commands in the order sent) and a thread
    sends each batch, then reads the replies of the one before: the store finds the next
    batch queued when it finishes one. A cluster client gets one pipeline per batch instead,
    run by the same thread, one after the other.

    A store that lacks the library (a new or flushed server, FUNCTION FLUSH or DELETE)
    answers "Function not found" without running the call. Calls after the first such one may
    have run or not (the library can be loaded again in between), so once every sent call has
    answered, the library is loaded and every call from the first unrun one on is sent again,
    in order: rows are absolute, so each position ends with its last row, and a row applied
    twice changes nothing the second time."""

    ROUNDS = 3  # resends before giving up on a store that keeps losing the library

    def __init__(self, client: redis.Redis, lib: Library) -> None:
        self._client = client
        self._lib = lib
        self._conn: Any = None
        if not isinstance(client, redis.RedisCluster):
            self._conn = client.connection_pool.get_connection()
        self._todo: queue.SimpleQueue[list[Call] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[tuple[int, int] | BaseException] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="import-io", daemon=True)
        self._thread.start()

    def send(self, calls: list[Call]) -> None:
        self._todo.put(calls)

    def finish(self) -> None:
        """No more batches: the replies of the last one can be read."""
        self._todo.put(None)

    def ready(self) -> bool:
        return not self._done.empty()

    def result(self) -> tuple[int, int]:
        """(changed, unchanged) of the oldest batch not yet returned; waits for it."""
        got = self._done.get()
        if isinstance(got, BaseException):
            raise got
        return got

    def close(self) -> None:
        """After every result was read."""
        self._thread.join()
        if self._conn is not None:
            self._client.connection_pool.release(self._conn)

    def abort(self) -> None:
        """After a failure or an interrupt: replies may be unread, so the connection is
        closed (which also stops the thread if it waits on it) rather than reused."""
        self._todo.put(None)
        if self._conn is not None:
            self._conn.disconnect()
        self._thread.join(timeout=10)
        if self._conn is not None:
            self._client.connection_pool.release(self._conn)

    def _work(self) -> None:
        unread: deque[list[Call]] = deque()  # sent, replies not read yet
        try:
            while (calls := self._todo.get()) is not None:
                if self._conn is None:
                    self._done.put(self._pipeline(calls))
                    continue
                if calls:
                    self._conn.send_packed_command([_pack(calls)], check_health=False)
                unread.append(calls)
                if len(unread) > 1:  # the batch before this one
                    self._read(unread, 1)
            self._read(unread, len(unread))
        except BaseException as exc:  # raised in the main thread
            self._done.put(exc)

    def _read(self, unread: deque[list[Call]], count: int) -> None:
        """Reads and reports the replies of the `count` oldest batches of `unread`."""
        for _ in range(count):
            calls = unread[0]
            replies = [self._reply() for _ in calls]
            if None in replies:  # the later batches were sent too: all must answer first
                later = [[self._reply() for _ in c] for c in islice(unread, 1, None)]
                self._recover([replies, *later], unread)
                return
            unread.popleft()
            self._done.put(_counts(replies))

    def _recover(self, replies: list[list[Any]], unread: deque[list[Call]]) -> None:
        """Every sent call has answered, some not run (None): load the library and send again
        every call from the first one not run on; then report every batch of `unread`."""
        calls = [call for batch in unread for call in batch]
        flat = [reply for batch in replies for reply in batch]
        ok = [reply is not None for reply in flat]
        for _ in range(self.ROUNDS):
            if all(ok):
                break
            load_library(self._client, self._lib)
            first = ok.index(False)
            self._conn.send_packed_command([_pack(calls[first:])], check_health=False)
            for i in range(first, len(calls)):
                reply = self._reply()
                ok[i] = reply is not None
                if flat[i] is None:
                    flat[i] = reply  # counted once: the first time it ran
        else:
            if not all(ok):
                raise LibraryLost("the store keeps losing the import's function library")
        start = 0
        while unread:
            n = len(unread.popleft())
            self._done.put(_counts(flat[start : start + n]))
            start += n

    def _reply(self) -> Any:
        """One call's reply; None for "Function not found" (the call did not run)."""
        try:
            return self._conn.read_response()
        except ResponseError as error:
            if not_run(error):
                return None
            raise

    def _pipeline(self, calls: list[Call]) -> tuple[int, int]:
        """One batch on a cluster; after "Function not found" the whole batch again (as above,
        in order)."""
        for attempt in range(2):
            try:
                with self._client.pipeline(transaction=False) as pipe:
                    for call in calls:
                        pipe.execute_command(*call)  # type: ignore[no-untyped-call]
                    return _counts(pipe.execute())
            except ResponseError as error:
                if attempt or not not_run(error):
                    raise
                load_library(self._client, self._lib)
        raise AssertionError("unreachable")


def _counts(replies: list[Any]) -> tuple[int, int]:
    """(changed, unchanged) summed over script replies (None: a call that never ran)."""
    changed = unchanged = 0
    for reply in replies:
        if reply is not None:
            changed += int(reply[0])
            unchanged += int(reply[1])
    return changed, unchanged


def _pack(calls: list[Call]) -> bytes:
    return b"".join([pack(call) for call in calls])  # hiredis, in C
