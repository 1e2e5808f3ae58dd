"""Loads every Lua script once per process and calls it through a typed registry.

`--!include name.lua` lines are replaced by `lua/includes/name.lua` at load time. redis-py's
Script objects send EVALSHA and, on NOSCRIPT (a restarted server, SCRIPT FLUSH), load the
script and retry, so a flushed script cache never reaches a client.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, KeyT

from app.store.mux import Multiplexer

_INCLUDE = re.compile(r"^--!include (\S+)\s*$", re.MULTILINE)


def lua_dir() -> Path:
    """`app/lua` inside an installed wheel, the repository's `lua/` in a source checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "lua", here.parent / "lua"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("lua/ scripts not found next to the app package")


@cache
def script_source(name: str) -> str:
    base = lua_dir()
    text = (base / f"{name}.lua").read_text()

    def expand(match: re.Match[str]) -> str:
        return (base / "includes" / match.group(1)).read_text()

    return _INCLUDE.sub(expand, text)


class TimedScript(AsyncScript):
    """A registered script that reports each call's round trip to `observe` (seconds)."""

    def __init__(self, client: Redis, source: str, observe: Callable[[float], None]) -> None:
        super().__init__(client, source)
        self._observe = observe

    async def __call__(
        self,
        keys: Sequence[KeyT] | None = None,
        args: Iterable[EncodableT] | None = None,
        client: Any = None,
    ) -> Any:
        start = time.perf_counter()
        try:
            return await super().__call__(keys, args, client)
        finally:
            self._observe(time.perf_counter() - start)


class MuxScript(AsyncScript):
    """A registered script called through the multiplexer (app/store/mux.py): EVALSHA, and on
    NOSCRIPT (the script cache was flushed; the script did not run) SCRIPT LOAD and once more."""

    def __init__(
        self, client: Redis, source: str, mux: Multiplexer, observe: Callable[[float], None]
    ) -> None:
        super().__init__(client, source)
        self._mux = mux
        self._observe = observe

    async def __call__(
        self,
        keys: Sequence[KeyT] | None = None,
        args: Iterable[EncodableT] | None = None,
        client: Any = None,
    ) -> Any:
        keys, args = keys or (), args or ()
        start = time.perf_counter()
        try:
            try:
                return await self._mux.execute("EVALSHA", self.sha, len(keys), *keys, *args)
            except NoScriptError:
                await self._mux.execute("SCRIPT", "LOAD", self.script)
                return await self._mux.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        finally:
            self._observe(time.perf_counter() - start)


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
    idempotency_claim: AsyncScript
    idempotency_complete: AsyncScript
    config_put: AsyncScript
    stock_import: AsyncScript
    audit_snapshot: AsyncScript
    audit_repair: AsyncScript

    @classmethod
    def register(
        cls,
        redis: Redis,
        timer: Callable[[str], Callable[[float], None]] | None = None,
        mux: Multiplexer | None = None,
    ) -> Scripts:
        """`timer(name)`, if given, returns the function each call's duration goes to; with
        `mux`, calls go through it instead of redis-py's pool."""
        if mux is not None:
            return cls(
                **{
                    f.name: MuxScript(
                        redis, script_source(f.name), mux, timer(f.name) if timer else _ignore
                    )
                    for f in fields(cls)
                }
            )
        if timer is None:
            return cls(
                **{f.name: redis.register_script(script_source(f.name)) for f in fields(cls)}
            )
        return cls(
            **{
                f.name: TimedScript(redis, script_source(f.name), timer(f.name))
                for f in fields(cls)
            }
        )

    def all(self) -> list[AsyncScript]:
        return [getattr(self, f.name) for f in fields(self)]

    async def load(self, redis: Redis) -> None:
        """Preload (readiness): SCRIPT LOAD every script; idempotent."""
        for script in self.all():
            await redis.script_load(script.script)


async def call(script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
    return await script(keys=keys, args=args)
