"""memo.lua's contract, enforced: hold_reserve.lua reuses the tables it decoded from a repeated
argument (lines, candidates, channels) and the locations derived from them across calls, which
is safe only while nothing writes into them. Nothing in the production path checks it (a
check per call would cost what the memo saves); instead these tests load hold_reserve's
library under its own name with one more function appended, `os_memo_check_test`, which sees
the library's memo tables and answers where a memoized value differs from a fresh parse of
its text (or the derived locations from a fresh derivation). Many varied holds go through the
service, each followed by the check: a write into a decoded table shows in the call that made
it, before any later call could hide it. The second test shows the check catching such a write
(a mutant hold_reserve.lua that records a sourced location in its decoded line)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.store.calls import Script
from app.store.functions import Library
from app.store.scripts import expand, library, lua_dir
from tests.api.helpers import skus_in_distinct_partitions
from tests.conftest import seed

CHECK = "os_memo_check_test"

# Appended to the library text: at its top level, so it sees the library's locals (MEMO_TEXT,
# MEMO_VALUE, LOCATIONS_OF, hold_locations). Replies {memo slots filled, {what differs...}}.
CHECK_FUNCTION = f"""
local function memo_check_same(a, b)
  if type(a) ~= 'table' or type(b) ~= 'table' then return a == b end
  for k, v in pairs(a) do if not memo_check_same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
local function memo_check_copy(t)
  if type(t) ~= 'table' then return t end
  local out = {{}}
  for k, v in pairs(t) do out[k] = memo_check_copy(v) end
  return out
end
redis.register_function{{function_name='{CHECK}', flags={{'no-writes'}},
  callback=function()
    local filled, bad = 0, {{}}
    for slot, text in pairs(MEMO_TEXT) do
      filled = filled + 1
      local value = MEMO_VALUE[slot]
      local fresh = type(value) == 'table' and cjson.decode(text) or tonumber(text)
      if not memo_check_same(value, fresh) then
        bad[#bad + 1] = 'slot ' .. slot .. ': ' .. cjson.encode(value) .. ' ~= ' .. text
      end
    end
    local m = LOCATIONS_OF
    if m[1] then
      local kept = {{m[1], m[2], m[3], m[4], m[5], m[6]}}
      local wanted, at, nw = hold_locations(memo_check_copy(m[1]), memo_check_copy(m[2]),
                                            memo_check_copy(m[3]))
      if not (memo_check_same(wanted, kept[4]) and memo_check_same(at, kept[5])
              and nw == kept[6]) then
        bad[#bad + 1] = 'locations: ' .. cjson.encode(kept[4]) .. ' ~= ' .. cjson.encode(wanted)
      end
      for i = 1, 6 do m[i] = kept[i] end
    end
    return {{filled, bad}}
  end}}
"""

Patch = Callable[[str], str]


def checked_library(patch: Patch | None = None) -> str:
    """hold_reserve's library text as the service calls it (its production name), its script
    changed by `patch`, with the check function appended."""
    base = lua_dir()
    real = library(Script.HOLD_RESERVE.value)

    def read(path: str) -> str:
        text = (base / path).read_text()
        return patch(text) if patch and path == "hold_reserve.lua" else text

    lines = expand(Script.HOLD_RESERVE.value, read)
    variant = Library.of(Script.HOLD_RESERVE.value, lines.text, lines.origins)
    return variant.text.replace(variant.name, real.name) + CHECK_FUNCTION


@pytest.fixture
async def load_checked(redis: Redis) -> AsyncIterator[Callable[..., Any]]:
    """load(patch=None): hold_reserve's checked library in place of the real one; the real one
    is put back after the test (functions outlive the FLUSHALL between tests)."""

    async def load(patch: Patch | None = None) -> None:
        await redis.execute_command("FUNCTION", "LOAD", "REPLACE", checked_library(patch))

    yield load
    real = library(Script.HOLD_RESERVE.value)
    await redis.execute_command("FUNCTION", "LOAD", "REPLACE", real.text)


A, B, C = skus_in_distinct_partitions(3, "memo")
KIT = "memo-kit"


async def varied_holds(client: httpx.AsyncClient) -> AsyncIterator[httpx.Response]:
    """Holds that send hold_reserve different and repeating lines, candidates and channels:
    sourced, pinned, split and capped, kits, other channels (one with a buffer and an
    exclusion), several partitions, short (409), keyed, other TTLs; each yielded answered."""
    await seed(
        client,
        {(s, loc): 40 for s in (A, B, C) for loc in ("dc", "store-a", "store-b")},
        channels={"web": ["dc", "store-a", "store-b"], "pickup": ["store-a", "store-b"]},
    )
    rules = {"locations": ["dc", "store-b"], "buffer": {"units": 2}, "exclude_skus": [C]}
    assert (await client.put("/v1/channels/outlet", json=rules)).status_code == 200
    kit = {"components": [{"sku": A, "quantity": 1}, {"sku": B, "quantity": 2}]}
    assert (await client.put(f"/v1/kits/{KIT}", json=kit)).status_code == 200
    carts: list[dict[str, Any]] = [
        {"channel": "web", "lines": [{"sku": A, "quantity": 1}]},
        {"channel": "web", "lines": [{"sku": A, "quantity": 1}]},  # the same texts again
        {"channel": "web", "lines": [{"sku": A, "quantity": 2, "location": "store-b"}]},
        {"channel": "pickup", "lines": [{"sku": A, "quantity": 1}]},
        {"channel": "web", "lines": [{"sku": A, "quantity": 1}, {"sku": A, "quantity": 2}]},
        {"channel": "web", "allow_split": True, "lines": [{"sku": A, "quantity": 50}]},
        {
            "channel": "web",
            "allow_split": True,
            "max_locations": 2,
            "lines": [{"sku": B, "quantity": 45}],
        },
        {"channel": "web", "lines": [{"sku": A, "quantity": 500}]},  # short: 409
        {"channel": "outlet", "lines": [{"sku": A, "quantity": 1}]},
        {"channel": "outlet", "lines": [{"sku": C, "quantity": 1}]},  # excluded: 409
        {"channel": "web", "lines": [{"sku": KIT, "quantity": 1}]},
        {"channel": "web", "lines": [{"sku": A, "quantity": 1}, {"sku": B, "quantity": 1}]},
        {"channel": "web", "lines": [{"sku": C, "quantity": 1, "location": "dc"}]},
        {"lines": [{"sku": B, "quantity": 1, "location": "store-a"}]},  # no channel
        {"channel": "web", "ttl_seconds": 60, "lines": [{"sku": A, "quantity": 1}]},
    ]
    for n, cart in enumerate(itertools.chain(carts, carts, reversed(carts))):
        headers = {"Idempotency-Key": f"memo-{n}"} if n % 3 == 0 else {}
        r = await client.post("/v1/holds", json=cart, headers=headers)
        assert r.status_code in (201, 409), r.text
        yield r


async def memo_check(redis: Redis) -> tuple[int, list[str]]:
    filled, bad = await redis.execute_command("FCALL", CHECK, 0)
    return int(filled), list(bad or [])


async def test_no_hold_writes_into_a_memoized_argument(
    client: httpx.AsyncClient, redis: Redis, load_checked: Callable[..., Any]
) -> None:
    await load_checked()
    created = 0
    async for r in varied_holds(client):
        created += r.status_code == 201
        filled, bad = await memo_check(redis)
        assert filled == 5 and bad == [], (r.request.content, bad)
    assert created > 20


def records_its_location(text: str) -> str:
    """A mutant: a line without a location is given the first candidate in its decoded table
    (which the memo hands to the next call with the same lines)."""
    anchor = "local wanted, at, nw = hold_locations(lines, candidates, channels)\n"
    assert anchor in text
    return text.replace(
        anchor, anchor + "if not lines[1].l and candidates[1] then lines[1].l = candidates[1] end\n"
    )


async def test_the_check_sees_a_write_into_a_decoded_line(
    client: httpx.AsyncClient, redis: Redis, load_checked: Callable[..., Any]
) -> None:
    await load_checked(records_its_location)
    found: list[str] = []
    async for _ in varied_holds(client):
        found += (await memo_check(redis))[1]
    assert any(entry.startswith("slot 3: ") for entry in found), found
