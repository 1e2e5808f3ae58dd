"""GET /v1/events against a real service process: one event per change, order, resume with
no gap or duplicate, many clients, and a stalled client that blocks nobody."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.conftest import ServiceProcess, seed
from tests.events.conftest import QUEUE_SIZE
from tests.events.helpers import SSE, event_key, open_sse, read_log, stream_ids, unique_skus

pytestmark = pytest.mark.slow


async def put(api: httpx.AsyncClient, sku: str, location: str, on_hand: int) -> dict[str, Any]:
    r = await api.put(f"/v1/stock/{sku}/{location}", json={"on_hand": on_hand})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def hold(api: httpx.AsyncClient, sku: str, lines: list[tuple[str, int]]) -> str:
    r = await api.post(
        "/v1/holds",
        json={
            "channel": "web",
            "lines": [{"sku": sku, "location": loc, "quantity": q} for loc, q in lines],
        },
    )
    assert r.status_code == 201, r.text
    hold_id: str = r.json()["id"]
    return hold_id


async def act(api: httpx.AsyncClient, hold_id: str, action: str) -> None:
    r = await api.post(f"/v1/holds/{hold_id}/{action}")
    assert r.status_code == 200, r.text


async def receipts(api: httpx.AsyncClient, sku: str, first: int, n: int) -> None:
    """`n` incoming receipts of one unit of `sku` at dc (ids from `first`), 1000 a batch."""
    for start in range(first, first + n, 1000):
        batch = [
            {"id": f"{sku}-r{i}", "type": "receipt", "sku": sku, "location": "dc", "quantity": 1}
            for i in range(start, min(first + n, start + 1000))
        ]
        r = await api.post("/v1/stock/events", json={"events": batch})
        assert r.status_code == 200, r.text
        assert {x["status"] for x in r.json()["results"]} == {"applied"}


def assert_ordered(events: list[SSE]) -> None:
    keys_ = [event_key(e.id or "") for e in events]
    assert keys_ == sorted(keys_) and len(set(keys_)) == len(keys_)


async def test_one_event_per_change(api: httpx.AsyncClient, sse_service: ServiceProcess) -> None:
    await seed(api)
    (sku,) = unique_skus(1)
    expected: list[str] = []
    async with open_sse(api, params={"sku": sku}) as stream:
        first = await put(api, sku, "dc", 10)
        await put(api, sku, "store-a", 4)
        expected += ["stock.set", "stock.set"]
        h1 = await hold(api, sku, [("dc", 3)])
        await act(api, h1, "commit")
        await act(api, h1, "fulfil")
        expected += ["hold.reserved", "hold.committed", "hold.fulfilled"]
        h2 = await hold(api, sku, [("dc", 1), ("store-a", 2)])  # one event per line
        await act(api, h2, "release")
        expected += ["hold.reserved"] * 2 + ["hold.released"] * 2
        r = await api.post(
            "/v1/stock/events",
            json={
                "events": [
                    {"id": f"{sku}-s", "type": "sale", "sku": sku, "location": "dc", "quantity": 1}
                ]
            },
        )
        assert r.status_code == 200, r.text
        expected.append("stock.sale")

        got = await stream.take(len(expected))
        assert [e.event for e in got] == expected
        with pytest.raises(TimeoutError):  # and nothing more
            extra = await stream.next(within=1.2)
            raise AssertionError(f"unexpected event {extra}")
        assert "keep-alive" in stream.comments  # OMNISTOCK_SSE_KEEPALIVE_SECONDS=0.5

    assert_ordered(got)
    for e in got:
        assert e.json["id"] == e.id and e.json["type"] == e.event and e.json["sku"] == sku
    assert got[0].json["position"] == {k: v for k, v in first.items() if k != "location"}
    assert got[2].json["cause"] == {"type": "reserved", "hold": h1}
    assert got[-1].json["cause"] == {"type": "sale", "source_event": f"{sku}-s"}
    # The same events as the log.
    log, _ = await read_log(api, sku=sku)
    assert [e["id"] for e in log] == [e.id for e in got]
    assert [e["type"] for e in log] == expected


async def test_order_per_position_with_concurrent_writers(
    api: httpx.AsyncClient, sse_service: ServiceProcess
) -> None:
    await seed(api)
    skus = unique_skus(5)
    n = 30
    async with open_sse(api) as stream:

        async def writer(sku: str) -> None:
            for i in range(1, n + 1):
                await put(api, sku, "dc", i)

        await asyncio.gather(*(writer(s) for s in skus))
        got = await stream.take(len(skus) * n)
    assert_ordered(got)
    for sku in skus:
        assert [e.json["position"]["on_hand"] for e in got if e.json["sku"] == sku] == list(
            range(1, n + 1)
        )


async def test_resume_after_forced_disconnect(
    api: httpx.AsyncClient, sse_service: ServiceProcess, store: Redis
) -> None:
    await seed(api)
    skus = unique_skus(3)
    received: list[SSE] = []
    async with open_sse(api) as stream:
        for i in range(10):
            await put(api, skus[i % 3], "dc", i)
        received += await stream.take(4)
    # The connection is gone mid-stream with 6 events unread; 10 more changes happen.
    for i in range(10, 20):
        await put(api, skus[i % 3], "dc", i)

    # Resume (header), while a writer keeps changing stock during the hand-over from the
    # catch-up to the live feed.
    async def writer() -> None:
        for i in range(20, 60):
            await put(api, skus[i % 3], "dc", i)
            await asyncio.sleep(0.005)

    task = asyncio.create_task(writer())
    async with open_sse(api, headers={"Last-Event-ID": received[-1].id or ""}) as stream:
        await task
        received += await stream.take(56)
        with pytest.raises(TimeoutError):
            await stream.next(within=0.8)
    assert_ordered(received)
    assert [e.id for e in received] == await stream_ids(store, skus)
    assert [e.json["position"]["on_hand"] for e in received] == list(range(60))

    # The query parameter works too; the header wins over it.
    async with open_sse(api, params={"last_event_id": received[49].id or ""}) as stream:
        assert [e.id for e in await stream.take(10)] == [e.id for e in received[50:]]
    async with open_sse(
        api,
        params={"last_event_id": received[0].id or ""},
        headers={"Last-Event-ID": received[57].id or ""},
    ) as stream:
        assert [e.id for e in await stream.take(2)] == [e.id for e in received[58:]]


async def test_old_or_bad_resume_point(api: httpx.AsyncClient, sse_service: ServiceProcess) -> None:
    await seed(api)
    (sku,) = unique_skus(1)
    async with open_sse(api, params={"sku": sku}, headers={"Last-Event-ID": "1000-0-000"}) as s:
        reset = await s.next()
        assert reset.event == "reset" and reset.json["reason"] == "cursor_expired"
        await put(api, sku, "dc", 7)
        after = await s.next()
        assert after.event == "stock.set" and event_key(after.id or "") > event_key(reset.id or "")
    for bad in ("nope", "1-2-999"):
        r = await api.get("/v1/events", headers={"Last-Event-ID": bad})
        assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    r = await api.get("/v1/events", params={"channel": "nope"})
    assert r.status_code == 404


async def test_live_filters(api: httpx.AsyncClient, sse_service: ServiceProcess) -> None:
    await seed(api, channels={"web": ["dc", "store-a", "store-b"], "kerb": ["store-b"]})
    a, b = unique_skus(2)
    async with (
        open_sse(api, params={"channel": "kerb"}) as by_channel,
        open_sse(api, params={"location": "dc", "sku": b}) as by_both,
    ):
        for sku in (a, b):
            for loc in ("dc", "store-a", "store-b"):
                await put(api, sku, loc, 3)
        got = await by_channel.take(2)
        assert [(e.json["sku"], e.json["location"]) for e in got] == [
            (a, "store-b"),
            (b, "store-b"),
        ]
        (only,) = await by_both.take(1)
        assert (only.json["sku"], only.json["location"]) == (b, "dc")
        with pytest.raises(TimeoutError):
            await by_both.next(within=0.5)


async def test_200_clients_receive_every_event(
    api: httpx.AsyncClient, sse_service: ServiceProcess
) -> None:
    await seed(api)
    skus = unique_skus(4)
    n = 40
    async with _many(api, 200) as streams:
        for i in range(n):
            await put(api, skus[i % 4], "dc", i)
        results = await asyncio.gather(*(s.take(n, within=20) for s in streams))
    reference = [e.id for e in results[0]]
    assert len(reference) == n and len(set(reference)) == n
    for got in results:
        assert [e.id for e in got] == reference


async def test_stalled_client_does_not_block_others(
    api: httpx.AsyncClient, sse_service: ServiceProcess
) -> None:
    await seed(api)
    (sku,) = unique_skus(1)
    # A client that stops reading right after it connected. A 64 KiB receive buffer: small,
    # yet a sane TCP window once it reads again.
    transport = httpx.AsyncHTTPTransport(
        socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)]
    )
    async with (
        httpx.AsyncClient(base_url=sse_service.base_url, transport=transport) as slow_api,
        open_sse(slow_api, params={"sku": sku}, paused=True) as stalled,
        open_sse(api, params={"sku": sku}) as healthy,
    ):
        # Write until the stalled stream's socket buffers and then its queue are full
        # (about 15 000 events here: the kernel buffers ~5 MB of them).
        overflows = await _overflows(api)
        sent = 0
        while await _overflows(api) == overflows:
            assert sent < 100_000, "the stalled client's queue never filled up"
            await receipts(api, sku, sent, 5000)
            sent += 5000
        assert sent > 100 * QUEUE_SIZE
        # Meanwhile the healthy client got everything, in order, without waiting.
        got = await healthy.take(sent, within=30)
        assert [e.json["position"]["on_hand"] for e in got] == list(range(1, sent + 1))

        # Once it reads again it gets every event exactly once, in order: what overflowed
        # its queue it reads from the store.
        stalled.resume()
        late = await stalled.take(sent, within=30)
        assert [e.id for e in late] == [e.id for e in got]


async def _overflows(api: httpx.AsyncClient) -> float:
    text = (await api.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith("omnistock_sse_overflows_total "):
            return float(line.split()[1])
    return 0.0


class _many:
    """`n` SSE clients connected at once (each on its own connection)."""

    def __init__(self, api: httpx.AsyncClient, n: int) -> None:
        self.api, self.n = api, n
        self.contexts: list[Any] = []

    async def __aenter__(self) -> list[Any]:
        self.contexts = [open_sse(self.api) for _ in range(self.n)]
        return list(await asyncio.gather(*(c.__aenter__() for c in self.contexts)))

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(c.__aexit__(None, None, None) for c in self.contexts))


async def test_200_clients_catching_up_at_once_get_every_event_without_a_traceback(
    api: httpx.AsyncClient, sse_service: ServiceProcess
) -> None:
    """Many clients resuming from an old id at once all catch up from the store together:
    each must get every event after its resume point, and the service must log no error."""
    await seed(api)
    skus = unique_skus(64)
    await put(api, skus[0], "dc", 0)
    start = (await read_log(api, sku=skus[0]))[0][-1]["id"]
    rounds = 12  # 768 events to catch up: enough to cut streams before the fix
    for round_ in range(rounds):
        await asyncio.gather(*(put(api, sku, "dc", round_ + 1) for sku in skus))
    log = (await read_log(api, limit=1000, after=start))[0]
    expected = [e["id"] for e in log if e["sku"] in skus]
    assert len(expected) == rounds * len(skus)
    log_size = sse_service.log_path.stat().st_size

    async def client() -> list[str]:
        async with open_sse(api, params={"last_event_id": start}) as stream:
            got: list[str] = []
            while len(got) < len(expected):
                event = await stream.next(within=20)
                if event.json.get("sku") in skus:
                    got.append(event.id or "")
            return got

    results = await asyncio.gather(*(client() for _ in range(200)))
    assert all(got == expected for got in results)
    new_log = sse_service.log_path.read_bytes()[log_size:].decode(errors="replace")
    assert "Traceback" not in new_log and '"level":"error"' not in new_log, new_log[-3000:]
