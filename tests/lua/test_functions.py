"""Every script as a function library (app/store/functions.py, app/store/scripts.py): each
library loads, its includes' definitions are built once while per-call state is set on every
call, names carry the text's digest, a store without the library gets it on the first call,
and read-only scripts are `no-writes` functions."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest
from redis.asyncio import Redis

from app.store.functions import Library, LibraryError
from app.store.scripts import Expanded, Scripts, TimedScript, expand, library, writes

# An include in the shape of includes/idempotency.lua: per-call state read from KEYS/ARGV at
# its top level (a default, then an `if` that sets it), a constant and a definition.
STATEFUL = {
    "main.lua": "local rcall, tonumber = redis.call, tonumber\n--!include state.lua\n"
    "return {flag(), tonumber(ARGV[2]) + 1, #SHARED}\n",
    "includes/state.lua": "local key = KEYS[1]\n"
    "local flag_value = ''\n"
    "if key == 'keyed' then\n"
    "  flag_value = ARGV[1]\n"
    "end\n"
    "local SHARED = {'a', 'b',\n"
    "                'c'}\n"
    "local function flag()\n"
    "  return flag_value\n"
    "end\n",
}


def pairs(flat: list[Any]) -> dict[str, Any]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


async def loaded(redis: Redis) -> dict[str, set[str]]:
    """{library name: its function's flags} of every library the store has."""
    out = {}
    for entry in await redis.function_list():
        lib = pairs(entry)
        out[lib["library_name"]] = set(pairs(lib["functions"][0])["flags"])
    return out


def stateful() -> Expanded:
    return expand("main", STATEFUL.__getitem__)


def test_every_script_is_a_library_whose_name_carries_its_digest() -> None:
    names = {f.name: library(f.name) for f in fields(Scripts)}
    for name, lib in names.items():
        assert lib.name.startswith(f"os_{name}_") and len(lib.name) == len(f"os_{name}_") + 16
        assert lib.text.startswith(f"#!lua name={lib.name}\n")
    assert len({lib.name for lib in names.values()}) == len(names)


def test_a_changed_script_gets_a_new_name() -> None:
    one = stateful()
    other = expand("main", {**STATEFUL, "main.lua": STATEFUL["main.lua"] + "-- x\n"}.__getitem__)
    assert Library.of("main", one.text, one.origins).name == library_of_tree(one).name
    assert Library.of("main", other.text, other.origins).name != library_of_tree(one).name


def library_of_tree(script: Expanded) -> Library:
    return Library.of("main", script.text, script.origins)


async def test_every_library_loads(redis: Redis) -> None:
    """FUNCTION LOAD compiles the whole library: a prelude the transformation got wrong (a
    name read before it is set at load time, too many upvalues) fails here."""
    scripts = Scripts.register(redis)
    await redis.function_flush()
    await scripts.load(redis)
    assert {lib.name for lib in scripts.libraries()} <= set(await loaded(redis))


async def test_constants_are_built_once_and_per_call_state_every_call(redis: Redis) -> None:
    lib = library_of_tree(stateful())
    top = lib.text.split("redis.register_function", 1)[0]
    assert "local SHARED = {'a', 'b'," in top and "local function flag()" in top
    assert "local flag_value\n" in top  # declared there, set in the function
    script = TimedScript(redis, stateful().text, lambda _: None, stateful())
    assert await script(keys=["keyed"], args=["x", "11"]) == ["x", 12, 3]
    assert await script(keys=["plain"], args=["y", "1"]) == ["", 2, 3]  # no 'x' left over


def test_a_name_declared_twice_in_a_prelude_is_refused() -> None:
    tree = {**STATEFUL, "includes/state.lua": STATEFUL["includes/state.lua"] + "local key = 1\n"}
    script = expand("main", tree.__getitem__)
    with pytest.raises(LibraryError, match="declared twice"):
        Library.of("main", script.text, script.origins)


async def test_a_store_without_the_library_gets_it_on_the_first_call(redis: Redis) -> None:
    script = TimedScript(redis, stateful().text, lambda _: None, stateful())
    await script(keys=["keyed"], args=["x", "1"])
    await redis.function_flush()
    assert await script(keys=["keyed"], args=["x", "1"]) == ["x", 2, 3]
    assert script.library.name in await loaded(redis)


async def test_readiness_loads_only_the_libraries_the_store_lacks(redis: Redis) -> None:
    scripts = Scripts.register(redis)
    await scripts.load(redis)
    await redis.config_resetstat()
    await scripts.load(redis)
    stats = await redis.info("commandstats")
    assert "cmdstat_function|load" not in stats
    assert stats["cmdstat_function|list"]["calls"] == 1


async def test_read_only_scripts_are_no_writes_functions(redis: Redis) -> None:
    scripts = Scripts.register(redis)
    await scripts.load(redis)
    flags = await loaded(redis)
    for f in fields(Scripts):
        lib = library(f.name)
        assert ("no-writes" in flags[lib.name]) == (not writes(f.name)), f.name
    assert any(not writes(f.name) for f in fields(Scripts))
