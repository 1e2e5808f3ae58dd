"""`--!include` expansion (app/store/scripts.py): includes nest, each is expanded once per
script, and a Lua error names the `lua/` file and line it came from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app.store.scripts import Expanded, TimedScript, expand, expanded, lua_dir, script_source

TREE = {
    "main.lua": "local rcall = redis.call\n--!include a.lua\n--!include b.lua\nreturn a_value()\n",
    "includes/a.lua": "-- a, which needs b\n--!include b.lua\n"
    "local function a_value()\n  return b_value()\nend\n",
    "includes/b.lua": "-- b\nlocal function b_value()\n  return missing_global.field\nend\n",
}


def tree_script() -> Expanded:
    return expand("main", TREE.__getitem__)


def test_includes_nest_and_expand_once() -> None:
    text = tree_script().text
    assert text.count("local function b_value()") == 1
    assert "--!include" not in text
    assert text.index("b_value()\n  return missing") < text.index("local function a_value")


def test_each_expanded_line_knows_its_file_and_line() -> None:
    script = tree_script()
    lines = script.text.splitlines()
    for number, (path, line) in enumerate(script.origins, start=1):
        source = TREE[path.removeprefix("lua/")].splitlines()[line - 1]
        assert lines[number - 1] == source or source.startswith("--!include")


async def test_a_lua_error_names_the_include_file_and_line(redis: Redis) -> None:
    script = TimedScript(redis, tree_script().text, lambda _: None, tree_script())
    with pytest.raises(ResponseError) as caught:
        await script(keys=[], args=[])
    assert "lua/includes/b.lua:3" in str(caught.value)
    assert "missing_global" in str(caught.value)


async def test_a_real_script_error_points_into_lua(redis: Redis) -> None:
    """hold_commit with an ARGV it cannot decode: the error names a file under lua/."""
    script = TimedScript(
        redis, script_source("hold_commit"), lambda _: None, expanded("hold_commit")
    )
    keys = ["os:{1}:hold:x", "os:{1}:expiry", "os:{1}:events", "os:{1}:op:x"]
    with pytest.raises(ResponseError) as caught:
        await script(keys=keys, args=["0", "x", "1000", "60", "[]", "0", "not json"])
    found = re.search(r"\((lua/[\w/]+\.lua):(\d+)\)", str(caught.value))
    assert found is not None, str(caught.value)
    path, line = found.group(1), int(found.group(2))
    assert "cjson.decode" in (lua_dir().parent / path).read_text().splitlines()[line - 1]


def listed(path: Path) -> list[str]:
    return re.findall(r"^--!include (\S+)", path.read_text(), re.MULTILINE)


def reached(name: str) -> set[str]:
    """Every include that `includes/name` brings, directly or through others."""
    out: set[str] = set()
    for inner in listed(lua_dir() / "includes" / name):
        out |= {inner} | reached(inner)
    return out


def test_scripts_list_only_what_no_include_brings() -> None:
    """Includes name what they need; a script does not repeat what its includes bring."""
    for path in lua_dir().glob("*.lua"):
        names = listed(path)
        brought = set().union(*(reached(name) for name in names))
        assert not brought & set(names), (path.name, brought & set(names))
