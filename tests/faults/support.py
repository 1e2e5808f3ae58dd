"""Shared by the fault tests: hold traffic that records what was acknowledged, a store that
can be killed and restarted from its AOF, and the checks run after recovery."""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis

from app import keys
from app.domain.audit import Auditor, AuditReport
from app.store.embedded import EmbeddedStore
from app.store.scripts import Scripts
from tests.api.helpers import skus_in_distinct_partitions, skus_in_one_partition

LOCATIONS = ("dc", "store-a")


def fault_skus() -> list[str]:
    """Skus for hold traffic: four in partitions of their own (carts over them are
    multi-partition holds) and two sharing one partition."""
    return skus_in_distinct_partitions(4, "fault") + skus_in_one_partition(2, "fault-same")


def seed_sync(base_url: str, skus: list[str], on_hand: int = 1_000_000) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as c:
        for i, loc in enumerate(LOCATIONS):
            r = c.put(f"/v1/locations/{loc}", json={"priority": i + 1, "ship": True})
            assert r.status_code == 200, r.text
        r = c.put("/v1/channels/web", json={"locations": list(LOCATIONS)})
        assert r.status_code == 200, r.text
        for sku in skus:
            for loc in LOCATIONS:
                r = c.put(f"/v1/stock/{sku}/{loc}", json={"on_hand": on_hand})
                assert r.status_code == 200, r.text


@cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every client of the process. Each httpx client otherwise builds its
    own from the CA bundle (~30 ms of CPU, 140 ms on a contended machine) although the service
    is plain http: 12 of them delayed the first hold of the traffic by 2.7 s, past the store
    kill it was meant to meet (tests/faults/test_store_kill.py)."""
    return httpx.create_ssl_context()


@dataclass
class Traffic:
    """Concurrent hold creation; every answer is recorded by outcome. A fault test injects its
    fault once `flowing` says the traffic is live, not after a fixed sleep: on a contended
    machine the clients' first answers may take seconds."""

    base_url: str
    skus: list[str]
    clients: int = 12
    acknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)  # hold id -> hold
    sent_lines: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # key -> lines
    unacknowledged: list[str] = field(default_factory=list)  # Idempotency-Keys
    retried: dict[str, dict[str, Any]] = field(default_factory=dict)  # acknowledged on retry
    refused: int = 0  # 409 insufficient_stock etc.: answered, nothing changed
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0  # no HTTP answer at all (connection reset by a dying worker)
    answers: list[tuple[float, float, int]] = field(default_factory=list)  # sent, answered, status
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client(i)) for i in range(self.clients)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def flowing(self, acknowledged: int = 50, within: float = 60) -> None:
        """Wait until `acknowledged` holds have been acknowledged (the traffic is live)."""
        await self._until(lambda: len(self.acknowledged) >= acknowledged, within, "acknowledged")

    async def failing(self, more: int | None = None, within: float = 60) -> None:
        """Wait until `more` further requests (default: one per client) go unanswered or
        answer 5xx: the fault just injected has met live requests."""
        count = len(self.unacknowledged) + (self.clients if more is None else more)
        await self._until(lambda: len(self.unacknowledged) >= count, within, "unacknowledged")

    async def _until(self, done: Callable[[], bool], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while not done():
            if time.monotonic() > deadline or all(t.done() for t in self._tasks):
                for task in self._tasks:
                    if task.done() and (error := task.exception()) is not None:
                        raise error  # a client crashed: its error, not a timeout
                raise AssertionError(
                    f"traffic: not enough {what} within {within} s (statuses {self.statuses}, "
                    f"no answer {self.errors})"
                )
            await asyncio.sleep(0.01)

    async def _client(self, n: int) -> None:
        rng = random.Random(n)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10, verify=tls_context()) as c:
            i = 0
            while not self._stop.is_set():
                i += 1
                key = f"fault-{n}-{i}"
                lines = [
                    {"sku": sku, "quantity": rng.randint(1, 3)}
                    for sku in rng.sample(self.skus, rng.randint(1, 3))
                ]
                self.sent_lines[key] = lines
                sent = time.monotonic()
                try:
                    r = await c.post(
                        "/v1/holds",
                        json={"channel": "web", "lines": lines},
                        headers={"Idempotency-Key": key},
                    )
                except httpx.HTTPError:
                    self.errors += 1
                    self.unacknowledged.append(key)
                    await asyncio.sleep(0.02)
                    continue
                self.answers.append((sent, time.monotonic(), r.status_code))
                self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
                if r.status_code == 201:
                    self.acknowledged[r.json()["id"]] = r.json()
                elif r.status_code >= 500:
                    self.unacknowledged.append(key)
                    await asyncio.sleep(0.02)
                else:
                    self.refused += 1


async def retry_unacknowledged(traffic: Traffic, give_up_after: float = 20) -> dict[str, int]:
    """Send every unacknowledged request again with its Idempotency-Key, as a client would,
    until it gets a final answer: a 503, or 409 `idempotency_key_in_use` (the first attempt's
    claim has not run out yet), is tried again. Returns the final status counts; the holds
    acknowledged now join `retried`."""
    outcomes: dict[str, int] = {}
    gate = asyncio.Semaphore(traffic.clients)
    async with httpx.AsyncClient(base_url=traffic.base_url, timeout=10, verify=tls_context()) as c:

        async def one(key: str) -> None:
            deadline = time.monotonic() + give_up_after
            async with gate:
                while True:
                    r = await c.post(
                        "/v1/holds",
                        json={"channel": "web", "lines": traffic.sent_lines[key]},
                        headers={"Idempotency-Key": key},
                    )
                    code = r.json().get("code", "") if r.status_code >= 400 else ""
                    again = r.status_code == 503 or code == "idempotency_key_in_use"
                    if not again or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.25)
            label = f"{r.status_code} {code}".strip()
            outcomes[label] = outcomes.get(label, 0) + 1
            if r.status_code == 201:
                traffic.retried[r.json()["id"]] = r.json()

        await asyncio.gather(*(one(key) for key in traffic.unacknowledged))
    return outcomes


def restart_store(old: EmbeddedStore) -> EmbeddedStore:
    """A new server on the same port and data directory, recovering from the AOF."""
    old.stop()  # the process is gone; this releases the data directory lock
    store = EmbeddedStore(old.data_dir, fsync=old.fsync, port=old.port, supervise=False)
    store.start()
    return store


async def wait_ready(base_url: str, within: float = 20) -> float:
    """Seconds until /readyz answers 200."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base_url, timeout=2, verify=tls_context()) as c:
        while time.monotonic() - started < within:
            try:
                if (await c.get("/readyz")).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.02)
    raise AssertionError(f"service not ready within {within} s")


async def hold_records(redis: Redis) -> dict[str, dict[int, dict[str, str]]]:
    """Every hold record in the store: hold id -> partition -> record."""
    out: dict[str, dict[int, Any]] = {}
    key: Any
    async for key in redis.scan_iter(match=f"{keys.PREFIX}:{{*}}:hold:*", count=1000):
        p = int(key.split("{", 1)[1][:3])
        hold_id = key.split(":hold:", 1)[1]
        out.setdefault(hold_id, {})[p] = await redis.hgetall(key)
    return out


async def wait_no_pending(redis: Redis, within: float = 30) -> None:
    """Parts left `pending` by an interrupted reservation lapse at their deadline and the
    reaper expires them; wait for that."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        records = await hold_records(redis)
        if not any(
            r.get("status") == "pending" for parts in records.values() for r in parts.values()
        ):
            return
        await asyncio.sleep(0.2)
    raise AssertionError("pending parts were not settled")


def part_statuses(parts: dict[int, dict[str, str]]) -> set[str]:
    return {r.get("status", "") for r in parts.values()}


def half_applied(records: dict[str, dict[int, dict[str, str]]]) -> dict[str, str]:
    """Holds whose parts disagree, or that are open with a part missing. (An interrupted
    cart whose parts all expired may lack the parts it never reached: nothing of it counts.)"""
    out = {}
    for hold_id, parts in records.items():
        statuses = part_statuses(parts)
        listed = {int(p) for p in next(iter(parts.values()))["parts"].split(",")}
        if len(statuses) > 1:
            out[hold_id] = f"parts disagree: {statuses}"
        elif statuses & {"active", "committed", "pending"} and set(parts) != listed:
            out[hold_id] = f"{statuses} with parts {sorted(parts)} of {sorted(listed)}"
    return out


def held_units(lines: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in lines:
        out[line["sku"]] = out.get(line["sku"], 0) + line["quantity"]
    return out


async def audit(redis: Redis) -> AuditReport:
    auditor = Auditor(redis, Scripts.register(redis))  # the store's clock decides lapses
    return await auditor.audit()


def check_acknowledged(
    acknowledged: dict[str, dict[str, Any]], records: dict[str, dict[int, dict[str, str]]]
) -> list[str]:
    """Acknowledged holds that are missing or differ from what was acknowledged."""
    lost = []
    for hold_id, hold in acknowledged.items():
        parts = records.get(hold_id)
        if not parts or part_statuses(parts) != {"active"}:
            lost.append(f"{hold_id}: {parts and part_statuses(parts)}")
            continue
        stored = [line for r in parts.values() for line in orjson.loads(r["lines"])]
        if sorted(map(_line_key, stored)) != sorted(map(_line_key, hold["lines"])):
            lost.append(f"{hold_id}: lines {stored} != acknowledged {hold['lines']}")
    return lost


def _line_key(line: dict[str, Any]) -> tuple[str, str, int]:
    return line["sku"], line["location"], line["quantity"]


def summary(report: AuditReport) -> str:
    return "\n".join(f"{f.kind}: {f.message}" for f in report.findings[:20])
