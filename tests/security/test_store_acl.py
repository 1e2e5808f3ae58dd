"""The service runs as the least-privilege ACL user of docs/store-acl.conf: every operation
works (the server's ACL LOG records no denied command) — holds, both importers, webhook
subscriptions and deliveries — and what the service never needs (FLUSHALL, KEYS, CONFIG,
EVAL/EVALSHA, SCRIPT LOAD, keys outside `os:*`, ...) is refused."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI
from redis import Redis as SyncRedis
from redis.exceptions import NoPermissionError

from app.api.main import create_app
from app.cli import main
from app.domain.clock import ManualClock
from app.store.scripts import lua_dir
from tests.api.helpers import skus_in_distinct_partitions
from tests.conftest import make_settings, seed
from tests.security.servers import ConfiguredServer
from tests.webhooks.conftest import FAST as WEBHOOKS
from tests.webhooks.receivers import Receiver, serve

ACL_FILE = Path(__file__).resolve().parents[2] / "docs" / "store-acl.conf"
ADMIN_PASSWORD = "admin-pw"
SERVICE_PASSWORD = "svc-pw-7f3a"


def acl_line() -> str:
    (line,) = [ln for ln in ACL_FILE.read_text().splitlines() if ln.startswith("user omnistock ")]
    return line


def allowed_commands() -> set[str]:
    """The commands (and container|subcommands) the documented line allows."""
    return {tok[1:].lower() for tok in acl_line().split() if tok.startswith("+")}


@pytest.fixture(scope="module")
def acl_server(
    server_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConfiguredServer]:
    server = ConfiguredServer(
        server_binary,
        tmp_path_factory.mktemp("acl"),
        [
            f"user default on >{ADMIN_PASSWORD} ~* &* +@all",
            acl_line().replace(">CHANGE-ME", f">{SERVICE_PASSWORD}"),
        ],
    )
    admin = SyncRedis(port=server.port, password=ADMIN_PASSWORD, decode_responses=True)
    try:
        server.wait_ready(admin)
        yield server
    finally:
        admin.close()
        server.stop()


@pytest.fixture
def admin_conn(acl_server: ConfiguredServer) -> Iterator[SyncRedis]:
    conn = SyncRedis(port=acl_server.port, password=ADMIN_PASSWORD, decode_responses=True)
    conn.flushall()
    conn.acl_log_reset()
    yield conn
    conn.close()


def service_url(acl_server: ConfiguredServer) -> str:
    return f"redis://omnistock:{SERVICE_PASSWORD}@127.0.0.1:{acl_server.port}/0"


@pytest.fixture
async def service(
    acl_server: ConfiguredServer, admin_conn: SyncRedis, clock: ManualClock
) -> AsyncIterator[FastAPI]:
    app = create_app(make_settings(service_url(acl_server), **WEBHOOKS), clock)
    async with app.router.lifespan_context(app):
        yield app


async def test_every_operation_of_the_service_works_as_the_acl_user(
    service: FastAPI, admin_conn: SyncRedis, clock: ManualClock
) -> None:
    transport = httpx.ASGITransport(app=service)
    a, b = skus_in_distinct_partitions(2, "acl")
    async with httpx.AsyncClient(transport=transport, base_url="http://omnistock") as c:
        assert (await c.get("/readyz")).status_code == 200
        await seed(c, {(a, "dc"): 5, (a, "store-a"): 2, (b, "dc"): 5})
        assert (await c.get(f"/v1/availability/{a}", params={"channel": "web"})).json()[
            "available"
        ] == 7
        query = await c.post("/v1/availability/query", json={"skus": [a, b], "channel": "web"})
        assert query.status_code == 200, query.text
        assert (await c.get(f"/v1/stock/{a}")).status_code == 200

        # A hold over two partitions (reserve, confirm), with an Idempotency-Key and its replay.
        lines = [{"sku": a, "quantity": 1}, {"sku": b, "quantity": 1}]
        body = {"channel": "web", "lines": lines}
        created = await c.post("/v1/holds", json=body, headers={"Idempotency-Key": "acl-1"})
        assert created.status_code == 201, created.text
        replay = await c.post("/v1/holds", json=body, headers={"Idempotency-Key": "acl-1"})
        assert replay.headers["idempotent-replayed"] == "true"
        hold_id = created.json()["id"]
        for action, payload in (
            ("extend", {"ttl_seconds": 60}),
            ("commit", None),
            ("fulfil", None),
        ):
            r = await c.post(f"/v1/holds/{hold_id}/{action}", json=payload)
            assert r.status_code == 200, (action, r.text)
        assert (await c.get(f"/v1/holds/{hold_id}")).json()["status"] == "fulfilled"

        # All or nothing across partitions: the part already reserved is aborted.
        short = [{"sku": a, "quantity": 1}, {"sku": b, "quantity": 99}]
        assert (
            await c.post("/v1/holds", json={"channel": "web", "lines": short})
        ).status_code == 409
        released = (await c.post("/v1/holds", json={"lines": [{"sku": a, "quantity": 1}]})).json()
        r = await c.post(f"/v1/holds/{released['id']}/release")
        assert r.status_code == 200, r.text

        # Expiry by the reaper, then a POS sale that leaves a shortfall, and its replay.
        expiring = await c.post(
            "/v1/holds", json={"ttl_seconds": 1, "lines": [{"sku": b, "quantity": 1}]}
        )
        clock.advance(2)
        assert await service.state.services.reaper.run_once() == 1
        assert (await c.get(f"/v1/holds/{expiring.json()['id']}")).json()["status"] == "expired"
        await c.post("/v1/holds", json={"lines": [{"sku": b, "quantity": 3, "location": "dc"}]})
        sale = {"id": "till:1", "type": "sale", "sku": b, "location": "dc", "quantity": 4}
        for expected in ("applied", "duplicate"):
            r = await c.post("/v1/stock/events", json={"events": [sale]})
            assert r.json()["results"][0]["status"] == expected, r.text

        # The event log (XRANGE, XINFO, TIME) and the live reader (XREAD BLOCK).
        log = await c.get("/v1/events/log", params={"sku": b, "limit": 1000})
        assert log.status_code == 200, log.text
        assert "shortfall" in {e["type"] for e in log.json()["events"]}
        source = service.state.services.events.source
        assert await source.wait({0: "0-0"}, 10, 10) is not None

        # Flushed functions are loaded again by the service user itself.
        admin_conn.function_flush()
        assert (await c.get(f"/v1/availability/{a}")).status_code == 200
        assert (await c.put(f"/v1/stock/{a}/dc", json={"on_hand": 9})).status_code == 200

    assert admin_conn.acl_log() == []


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("KEYS", "*"),
        ("SCAN", "0"),
        ("CONFIG", "SET", "appendonly", "no"),
        ("DEBUG", "SLEEP", "0"),
        ("EVAL", "return 1", "0"),
        ("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"),
        ("SCRIPT", "LOAD", "return 1"),
        ("SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"),
        ("FUNCTION", "DELETE", "os_x"),
        ("SCRIPT", "FLUSH"),
        ("SCRIPT", "KILL"),
        ("FUNCTION", "FLUSH"),
        ("ACL", "SETUSER", "x"),
        ("SHUTDOWN",),
        ("MODULE", "LIST"),
        ("PUBLISH", "channel", "x"),
        ("SUBSCRIBE", "channel"),
        ("SET", "not-ours", "x"),
        ("GET", "other:os:1"),
    ],
)
def test_the_service_user_may_not(admin_conn: SyncRedis, command: tuple[str, ...]) -> None:
    """ACL DRYRUN asks the server whether the user could run it, without running it."""
    verdict = admin_conn.execute_command("ACL", "DRYRUN", "omnistock", *command)
    assert verdict != "OK", command
    assert "no permissions" in verdict, verdict


def test_the_service_user_is_refused_for_real(acl_server: ConfiguredServer) -> None:
    conn = SyncRedis(port=acl_server.port, username="omnistock", password=SERVICE_PASSWORD)
    try:
        for command in (("FLUSHALL",), ("KEYS", "*"), ("SET", "not-ours", "x")):
            with pytest.raises(NoPermissionError):
                conn.execute_command(*command)
        assert conn.set("os:{000}:acl-probe", "1")  # while its own keys are fine
    finally:
        conn.close()


def test_every_command_the_lua_scripts_call_is_allowed() -> None:
    """ACLs apply inside scripts too: a script calling a command the line does not allow
    would fail in production on a locked-down server. This catches it at review time."""
    called: set[str] = set()
    for path in lua_dir().rglob("*.lua"):
        called |= {
            c.lower() for c in re.findall(r"(?:rcall|redis\.call)\('([A-Za-z]+)'", path.read_text())
        }
    assert called, "no script commands found"
    assert called <= allowed_commands(), called - allowed_commands()


async def test_imports_and_webhooks_work_as_the_acl_user_without_evalsha(
    service: FastAPI, acl_server: ConfiguredServer, admin_conn: SyncRedis, tmp_path: Path
) -> None:
    """`omnistock import` (stock and supply) and the webhooks call their scripts as functions:
    the line allows no EVALSHA or SCRIPT LOAD, and the server records no denied command, also
    after the functions were flushed (each loads its library again)."""
    assert not {"evalsha", "script|load", "script", "eval"} & allowed_commands()
    url = service_url(acl_server)
    transport = httpx.ASGITransport(app=service)
    async with httpx.AsyncClient(transport=transport, base_url="http://omnistock") as c:
        await seed(c)
        async with serve(Receiver()) as receiver:
            hook = {"url": receiver.url, "event_types": ["stock.*"]}
            created = await c.post("/v1/webhooks", json=hook)
            assert created.status_code == 201, created.text
            sub = created.json()
            for round_ in range(2):
                admin_conn.function_flush()
                stock = tmp_path / f"stock-{round_}.csv"
                stock.write_text(f"sku,location,on_hand\nACL-{round_},dc,{5 + round_}\n")
                argv = ["--redis-url", url, "--no-checkpoint", "--quiet"]
                assert await asyncio.to_thread(main, ["import", str(stock), *argv]) == 0
                admin_conn.function_flush()
                eta = (datetime.now(UTC) + timedelta(days=3)).isoformat()
                row: dict[str, object] = {
                    "sku": f"ACL-{round_}",
                    "location": "dc",
                    "supply_id": "po-1",
                }
                row |= {"type": "purchase_order", "quantity": 4, "eta": eta}
                supply = tmp_path / f"supply-{round_}.ndjson"
                supply.write_bytes(orjson.dumps(row) + b"\n")
                supply_argv = ["import", str(supply), "--supply", *argv]
                assert await asyncio.to_thread(main, supply_argv) == 0
                admin_conn.function_flush()  # the deliverer's scripts too
                for _ in range(500):
                    if f"ACL-{round_}" in {r.doc.get("sku") for r in receiver.acked}:
                        break
                    await asyncio.sleep(0.02)
                read = await c.get(f"/v1/availability/ACL-{round_}")
                assert read.json()["available"] == 5 + round_, read.text
                assert read.json()["incoming"] == 4, read.text
            assert {"ACL-0", "ACL-1"} <= {r.doc.get("sku") for r in receiver.acked}
            assert receiver.all_signed(sub["secret"])
            path = f"/v1/webhooks/{sub['id']}"
            for method, url_, body in (
                ("GET", "/v1/webhooks", None),
                ("PATCH", path, {"skus": ["ACL-0"]}),
                ("GET", f"{path}/attempts", None),
                ("DELETE", path, None),
            ):
                r = await c.request(method, url_, json=body)
                assert r.status_code in (200, 204), (method, url_, r.text)
    assert admin_conn.acl_log() == []
