"""Loads every Lua script once per process and calls it through a typed registry.

`--!include name.lua` lines are replaced by `lua/includes/name.lua` at load time (`expand`:
includes nest and are expanded once per script). Each expanded script is then turned into a
Valkey function library (app/store/functions.py: its includes' definitions at the library's
top level, built once by FUNCTION LOAD) and called by FCALL; on "Function not found" (a new
or flushed server, FUNCTION FLUSH) the library is loaded where it was missing and the call
sent once more, so a missing library never reaches a client. A Lua error's
`user_function:N` (or `user_script:N` of the plain script) is followed by the `lua/` file and
line it came from (`translate_error`, `located`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError
from redis.typing import EncodableT, KeyT

from app.store.calls import Call, Script
from app.store.durable import Writer
from app.store.functions import Library, located_lines
from app.store.mux import Multiplexer

_INCLUDE = re.compile(r"^--!include (\S+)\s*$")
_SCRIPT_LINE = re.compile(r"user_script:(\d+)")


def lua_dir() -> Path:
    """`app/lua` inside an installed wheel, the repository's `lua/` in a source checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "lua", here.parent / "lua"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("lua/ scripts not found next to the app package")


@dataclass(frozen=True)
class Expanded:
    """A script with its includes expanded, and where each of its lines came from."""

    text: str
    origins: tuple[tuple[str, int], ...]  # line n (1-based) -> origins[n - 1]: (file, line)

    def origin(self, line: int) -> tuple[str, int] | None:
        return self.origins[line - 1] if 0 < line <= len(self.origins) else None

    def translate(self, message: str) -> str:
        """`message` (a Lua error) with each `user_script:N` (a line of the expanded text)
        followed by the `lua/` file and line it came from."""
        return located_lines(message, _SCRIPT_LINE, self.origins)


def expand(name: str, read: Callable[[str], str]) -> Expanded:
    """`name`.lua with every `--!include x.lua` line replaced by `includes/x.lua`, itself
    expanded: includes nest, and each is expanded once per script (where it is first reached;
    a later `--!include` of it becomes a comment line). `read(path)` reads a path relative to
    `lua/`. Each expanded line keeps its origin, so errors can name the `lua/` file and line."""
    lines: list[str] = []
    origins: list[tuple[str, int]] = []
    done: set[str] = set()

    def emit(path: str) -> None:
        for number, line in enumerate(read(path).splitlines(), start=1):
            match = _INCLUDE.match(line)
            if match is None:
                lines.append(line)
            elif match.group(1) in done:
                lines.append(f"-- {match.group(1)}: included above")
            else:
                done.add(match.group(1))
                emit(f"includes/{match.group(1)}")
                continue
            origins.append((f"lua/{path}", number))

    emit(f"{name}.lua")
    return Expanded("\n".join(lines) + "\n", tuple(origins))


@cache
def expanded(name: str) -> Expanded:
    base = lua_dir()
    return expand(name, lambda path: (base / path).read_text())


def script_source(name: str) -> str:
    return expanded(name).text


@cache
def library(name: str) -> Library:
    """Script `name` as a function library (app/store/functions.py)."""
    lines = expanded(name)
    return Library.of(name, lines.text, lines.origins)


def translate_error(name: str, message: str) -> str:
    """A Lua error of script `name` (called by FCALL, or as a plain script), naming the `lua/`
    file and line (Library.translate, Expanded.translate)."""
    return expanded(name).translate(library(name).translate(message))


def located(lib: Library, error: ResponseError) -> ResponseError:
    """`error` (a Lua error of the function of `lib`) naming the `lua/` file and line it came
    from."""
    if "user_function:" not in str(error):
        return error
    return type(error)(lib.translate(str(error)))


def function_missing(error: Exception) -> bool:
    """The store has no such function (a new or flushed server): the call did not run."""
    return isinstance(error, ResponseError) and str(error).startswith("Function not found")


@cache
def library_of(source: str, lines: Expanded | None) -> Library:
    """The library of a script given as its text and, if known, its expanded lines."""
    if lines is None:
        count = len(source.splitlines())
        lines = Expanded(source, tuple(("script", n) for n in range(1, count + 1)))
    first = lines.origins[0][0] if lines.origins else "script"
    return Library.of(Path(first).stem, lines.text, lines.origins)


class _Registered(AsyncScript):
    """A registered script, called as a function: each call (FCALL, sent by `_send`) reports
    its round trip to `observe` (seconds), a Lua error names the `lua/` file and line (`lines`:
    the script's expanded lines), and on "Function not found" (the call did not run) its
    library is loaded (`_load`) and the call sent once more."""

    def __init__(
        self,
        client: Redis,
        source: str,
        observe: Callable[[float], None],
        lines: Expanded | None = None,
        via: Any = None,
    ) -> None:
        super().__init__(client, source)
        self._observe = observe
        self.library = library_of(source, lines)
        self._via = via

    async def __call__(
        self,
        keys: Sequence[KeyT] | None = None,
        args: Iterable[EncodableT] | None = None,
        client: Any = None,
    ) -> Any:
        keys = list(keys or ())
        command = ("FCALL", self.library.function, len(keys), *keys, *(args or ()))
        start = time.perf_counter()
        try:
            try:
                return await self._send(command, client)
            except ResponseError as error:
                if not function_missing(error):
                    raise
                await self._load(keys, client)
                return await self._send(command, client)
        except ResponseError as error:
            moved = located(self.library, error)
            if moved is error:
                raise
            raise moved from error
        finally:
            self._observe(time.perf_counter() - start)

    def _send(self, command: tuple[Any, ...], client: Any) -> Awaitable[Any]:
        raise NotImplementedError

    def _load(self, keys: list[KeyT], client: Any) -> Awaitable[Any]:
        raise NotImplementedError


class TimedScript(_Registered):
    """A registered script called through redis-py's client (`client`, or the one it was
    registered with).

    On "Function not found" (a new or flushed server; a cluster node that joined empty —
    functions reach replicas and persist in the RDB/AOF, unlike SCRIPT LOAD) the library is
    loaded where it was missing and the call sent once more. On a cluster that is the one
    node serving the keys, not every primary, which would fail while any other one is
    down."""

    def _send(self, command: tuple[Any, ...], client: Any) -> Awaitable[Any]:
        return (client or self.registered_client).execute_command(*command)

    def _load(self, keys: list[KeyT], client: Any) -> Awaitable[Any]:
        return load_where_missing(client or self.registered_client, self.library, keys)


async def load_where_missing(client: Any, lib: Library, keys: Sequence[KeyT]) -> None:
    """FUNCTION LOAD after "Function not found": on a cluster on the one node serving `keys`
    (every primary would fail while any other one is down)."""
    try:
        if isinstance(client, RedisCluster) and keys:
            node = client.get_node_from_key(str(keys[0]))
            await client.execute_command("FUNCTION", "LOAD", lib.text, target_nodes=node)
        else:
            await client.execute_command("FUNCTION", "LOAD", lib.text)
    except ResponseError as error:
        if not already_loaded(error):
            raise


def already_loaded(error: Exception) -> bool:
    """FUNCTION LOAD's answer for a library of that name, loaded meanwhile (by another
    worker): the same text, since the name carries its digest."""
    return isinstance(error, ResponseError) and "already exists" in str(error)


class MuxScript(_Registered):
    """A registered script called through the multiplexer `via` (app/store/mux.py): FCALL,
    and on "Function not found" FUNCTION LOAD and once more."""

    def _send(self, command: tuple[Any, ...], client: Any) -> Awaitable[Any]:
        return self._via.execute(*command)  # type: ignore[no-any-return]

    async def _load(self, keys: list[KeyT], client: Any) -> None:
        try:
            await self._via.execute("FUNCTION", "LOAD", self.library.text)
        except ResponseError as error:
            if not already_loaded(error):
                raise


class WaitingScript(_Registered):
    """A mutating script whose every call writes, then waits for replicas, through the writer
    `via` (app/store/durable.py); on "Function not found" (it did not run) FUNCTION LOAD and
    once more."""

    def _send(self, command: tuple[Any, ...], client: Any) -> Awaitable[Any]:
        return self._via.write(command)  # type: ignore[no-any-return]

    def _load(self, keys: list[KeyT], client: Any) -> Awaitable[Any]:
        return load_where_missing(self.registered_client, self.library, keys)


# Writes that never wait for replicas: the claims, whose loss in a failover the change's own
# marker covers (a lost Idempotency-Key claim or stored response makes a retry run again and
# meet the marker; a lost event identity claim is re-made, the partition's record decides);
# the webhook deliverers' writes (a lost cursor delivers again: at least once).
UNWAITED_WRITES = frozenset(
    {
        Script.IDEMPOTENCY_CLAIM,
        Script.IDEMPOTENCY_COMPLETE,
        Script.EVENT_CLAIM,
        Script.HOLD_LIST,
        Script.HOLD_INDEX_SWEEP,
        Script.WEBHOOK_FENCED_SET,
        Script.WEBHOOK_LEASE_RENEW,
        Script.WEBHOOK_LEASE_RELEASE,
    }
)  # hold_list.lua writes only to drop index members of records already gone


def writes(name: str) -> bool:
    """Whether script `name` may write: every script not flagged `no-writes`."""
    return not script_source(name).startswith("#!lua flags=no-writes")


def waits(name: str) -> bool:
    """Whether a call of script `name` waits for replicas (when a wait policy is set): every
    script that changes something a client is told about; reads (`no-writes`) never do."""
    return name not in UNWAITED_WRITES and writes(name)


def _ignore(_: float) -> None:
    pass


@dataclass(frozen=True)
class Scripts:
    stock_set: AsyncScript
    stock_events: AsyncScript
    event_claim: AsyncScript
    availability: AsyncScript
    hold_read: AsyncScript
    hold_due: AsyncScript
    hold_reserve: AsyncScript
    hold_commit: AsyncScript
    hold_fulfil: AsyncScript
    hold_release: AsyncScript
    hold_extend: AsyncScript
    hold_confirm: AsyncScript
    hold_abort: AsyncScript
    hold_rollback: AsyncScript
    hold_expire: AsyncScript
    hold_lines: AsyncScript
    hold_list: AsyncScript
    hold_index_sweep: AsyncScript
    hold_metadata: AsyncScript
    idempotency_claim: AsyncScript
    idempotency_complete: AsyncScript
    config_put: AsyncScript
    stock_import: AsyncScript
    audit_snapshot: AsyncScript
    audit_repair: AsyncScript
    supply_put: AsyncScript
    supply_read: AsyncScript
    hold_backorder: AsyncScript
    supply_receive: AsyncScript
    audit_supply: AsyncScript
    webhook_fenced_set: AsyncScript
    webhook_lease_renew: AsyncScript
    webhook_lease_release: AsyncScript

    @classmethod
    def register(
        cls,
        redis: Redis,
        timer: Callable[[str], Callable[[float], None]] | None = None,
        mux: Multiplexer | None = None,
        writer: Writer | None = None,
        write_mux: Multiplexer | None = None,
    ) -> Scripts:
        """`timer(name)`, if given, returns the function each call's duration goes to; with
        `mux`, calls go through it instead of redis-py's pool; with `writer`, every call of a
        script that `waits` goes through it (write, then wait for replicas); with `write_mux`,
        the scripts that write go through that one and only the reads through `mux`."""
        if mux is not None or writer is not None:
            return cls(
                **{
                    f.name: _script(f.name, redis, timer, mux, writer, write_mux)
                    for f in fields(cls)
                }
            )
        return cls(
            **{
                f.name: TimedScript(
                    redis,
                    script_source(f.name),
                    timer(f.name) if timer else _ignore,
                    expanded(f.name),
                )
                for f in fields(cls)
            }
        )

    def of(self, script: Script) -> AsyncScript:
        s: AsyncScript = getattr(self, script.value)
        return s

    async def run(self, call: Call) -> Any:
        """Send a call built by app/store/calls.py."""
        return await self.of(call.script)(keys=call.keys, args=call.args)

    def all(self) -> list[AsyncScript]:
        return [getattr(self, f.name) for f in fields(self)]

    def libraries(self) -> list[Library]:
        return [s.library for s in self.all() if isinstance(s, _Registered)]

    async def load(self, redis: Redis) -> None:
        """Preload (readiness): FUNCTION LOAD every library that is not there yet; idempotent.
        On a cluster, node by node: fails only when no primary could load them, so one primary
        down (its slots answer 503) does not turn every worker unready; the others load on
        "Function not found"."""
        if not isinstance(redis, RedisCluster):
            await _load_missing(redis, self.libraries(), {})
            return
        await redis.initialize()
        nodes = redis.get_primaries()
        results = await asyncio.gather(
            *(self._load_on(redis, node) for node in nodes), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if len(failures) == len(nodes) and failures:
            raise failures[0]

    async def _load_on(self, redis: RedisCluster, node: Any) -> None:
        await _load_missing(redis, self.libraries(), {"target_nodes": node})


async def _load_missing(redis: Any, libraries: list[Library], where: dict[str, Any]) -> None:
    """FUNCTION LOAD each of `libraries` that the server (`where`: a cluster node) lacks."""
    listed = await redis.execute_command("FUNCTION", "LIST", "LIBRARYNAME", "os_*", **where)
    have = {_library_name(entry) for entry in listed or ()}
    for lib in libraries:
        if lib.name in have:
            continue
        try:
            await redis.execute_command("FUNCTION", "LOAD", lib.text, **where)
        except ResponseError as error:
            if not already_loaded(error):
                raise


def _library_name(entry: Any) -> str:
    """`library_name` of one FUNCTION LIST entry (a flat list, or a dict with RESP3)."""
    if isinstance(entry, dict):
        return str(entry.get("library_name", ""))
    pairs = dict(zip(entry[::2], entry[1::2], strict=False))
    name = pairs.get("library_name", pairs.get(b"library_name", ""))
    return name.decode() if isinstance(name, bytes) else str(name)


def _script(
    name: str,
    redis: Redis,
    timer: Callable[[str], Callable[[float], None]] | None,
    mux: Multiplexer | None,
    writer: Writer | None,
    write_mux: Multiplexer | None = None,
) -> AsyncScript:
    observe = timer(name) if timer else _ignore
    if writer is not None and waits(name):
        return WaitingScript(redis, script_source(name), observe, expanded(name), writer)
    if write_mux is not None and writes(name):
        return MuxScript(redis, script_source(name), observe, expanded(name), write_mux)
    if mux is not None:
        return MuxScript(redis, script_source(name), observe, expanded(name), mux)
    return TimedScript(redis, script_source(name), observe, expanded(name))


async def call(script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
    return await script(keys=keys, args=args)
