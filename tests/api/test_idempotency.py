"""Idempotency-Key on every mutating endpoint."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app import keys
from app.domain.clock import ManualClock
from tests.api.helpers import (
    act,
    assert_problem,
    available,
    channels_by_id,
    hold,
    position,
    replay_after_dying,
    snapshot,
)
from tests.conftest import seed


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def same_response(a: httpx.Response, b: httpx.Response) -> None:
    assert b.status_code == a.status_code
    assert b.json() == a.json()
    assert b.headers["content-type"] == a.headers["content-type"]


# -- configuration -------------------------------------------------------------------------


async def test_put_location_retry_returns_the_same_response_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    first = await client.put("/v1/locations/dc", json={"priority": 5}, headers=key("loc-1"))
    assert first.status_code == 200
    # Another writer moves the location on; a late retry of the first request must not undo it.
    await client.put("/v1/locations/dc", json={"priority": 9})
    retry = await client.put("/v1/locations/dc", json={"priority": 5}, headers=key("loc-1"))
    same_response(first, retry)
    (dc,) = (await client.get("/v1/locations")).json()["locations"]
    assert dc["priority"] == 9


async def test_put_location_same_key_different_body_is_422_idempotency_key_reused(
    client: httpx.AsyncClient,
) -> None:
    await client.put("/v1/locations/dc", json={"priority": 5}, headers=key("loc-1"))
    r = await client.put("/v1/locations/dc", json={"priority": 6}, headers=key("loc-1"))
    assert_problem(r, 422, "idempotency_key_reused")
    (dc,) = (await client.get("/v1/locations")).json()["locations"]
    assert dc["priority"] == 5


async def test_put_channel_retry_returns_the_same_response_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, channels={"pos": ["store-a"]})
    body = {"locations": ["dc"], "low_stock_threshold": 1}
    first = await client.put("/v1/channels/web", json=body, headers=key("ch-1"))
    assert first.status_code == 200
    await client.put("/v1/channels/web", json={"locations": ["dc", "store-a"]})
    retry = await client.put("/v1/channels/web", json=body, headers=key("ch-1"))
    same_response(first, retry)
    web = (await channels_by_id(client))["web"]
    assert web["locations"] == ["dc", "store-a"]


async def test_put_channel_same_key_different_body_is_422_idempotency_key_reused(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, channels={"pos": ["store-a"]})
    await client.put("/v1/channels/web", json={"locations": ["dc"]}, headers=key("ch-1"))
    r = await client.put("/v1/channels/web", json={"locations": ["store-a"]}, headers=key("ch-1"))
    assert_problem(r, 422, "idempotency_key_reused")
    web = (await channels_by_id(client))["web"]
    assert web["locations"] == ["dc"]


async def test_put_channel_replayed_422_stays_422(client: httpx.AsyncClient) -> None:
    await seed(client, channels={"pos": ["store-a"]})
    body = {"locations": ["later"]}
    first = await client.put("/v1/channels/web", json=body, headers=key("ch-2"))
    assert_problem(first, 422, "invalid_request")
    await client.put("/v1/locations/later", json={})
    retry = await client.put("/v1/channels/web", json=body, headers=key("ch-2"))
    same_response(first, retry)
    assert "web" not in await channels_by_id(client)


# -- stock ---------------------------------------------------------------------------------


async def test_put_stock_retry_returns_the_same_response_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    first = await client.put("/v1/stock/sku-1/dc", json={"on_hand": 10}, headers=key("st-1"))
    assert first.status_code == 200
    await client.put("/v1/stock/sku-1/dc", json={"on_hand": 20})
    retry = await client.put("/v1/stock/sku-1/dc", json={"on_hand": 10}, headers=key("st-1"))
    same_response(first, retry)
    assert (await position(client, "sku-1", "dc"))["on_hand"] == 20


async def test_put_stock_same_key_different_body_is_422_idempotency_key_reused(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    await client.put("/v1/stock/sku-1/dc", json={"on_hand": 10}, headers=key("st-1"))
    r = await client.put("/v1/stock/sku-1/dc", json={"on_hand": 11}, headers=key("st-1"))
    assert_problem(r, 422, "idempotency_key_reused")
    assert (await position(client, "sku-1", "dc"))["on_hand"] == 10


async def test_same_key_on_another_path_is_422_idempotency_key_reused(
    client: httpx.AsyncClient,
) -> None:
    # The record lives in the slot of the change it guards (docs/architecture.md, "Never
    # applied twice"): another sku of the same partition finds it. (A sku of another
    # partition is another slot, where this key has no record: a new request there.)
    assert keys.partition_of("sku-124") == keys.partition_of("sku-1")
    await seed(client)
    await client.put("/v1/stock/sku-1/dc", json={"on_hand": 10}, headers=key("st-1"))
    r = await client.put("/v1/stock/sku-124/dc", json={"on_hand": 10}, headers=key("st-1"))
    assert_problem(r, 422, "idempotency_key_reused")
    assert (await client.get("/v1/stock/sku-124")).json()["positions"] == []


async def test_put_stock_replayed_404_stays_404(client: httpx.AsyncClient) -> None:
    await seed(client)
    first = await client.put("/v1/stock/sku-1/new", json={"on_hand": 3}, headers=key("st-2"))
    assert_problem(first, 404, "location_not_found")
    await client.put("/v1/locations/new", json={})
    retry = await client.put("/v1/stock/sku-1/new", json={"on_hand": 3}, headers=key("st-2"))
    same_response(first, retry)
    assert (await client.get("/v1/stock/sku-1")).json()["positions"] == []


async def test_a_request_without_key_is_applied_every_time(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    body = {"channel": "web", "lines": [{"sku": "sku-1", "quantity": 1}]}
    a = await client.post("/v1/holds", json=body)
    b = await client.post("/v1/holds", json=body)
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]
    assert await available(client, "sku-1") == 3


async def test_different_keys_are_different_requests(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    body = {"channel": "web", "lines": [{"sku": "sku-1", "quantity": 1}]}
    a = await client.post("/v1/holds", json=body, headers=key("k-a"))
    b = await client.post("/v1/holds", json=body, headers=key("k-b"))
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]
    assert await available(client, "sku-1") == 3


@pytest.mark.parametrize("bad", ["", " ", "x" * 256, "caf\u00e9"])
async def test_malformed_idempotency_key_is_422_and_changes_nothing(
    client: httpx.AsyncClient, bad: str
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    r = await client.post(
        "/v1/holds",
        json={"channel": "web", "lines": [{"sku": "sku-1", "quantity": 1}]},
        headers={"Idempotency-Key": bad.encode("utf-8")},  # type: ignore[dict-item,arg-type]
    )
    assert_problem(r, 422, "invalid_request")
    assert await available(client, "sku-1") == 5


# -- holds ---------------------------------------------------------------------------------

HOLD_BODY = {"channel": "web", "lines": [{"sku": "sku-1", "quantity": 2}]}


async def test_create_hold_retry_returns_the_same_201_and_reserves_once(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    first = await client.post("/v1/holds", json=HOLD_BODY, headers=key("h-1"))
    assert first.status_code == 201
    before = await snapshot(client, ["sku-1"])
    retry = await client.post("/v1/holds", json=HOLD_BODY, headers=key("h-1"))
    same_response(first, retry)
    assert await snapshot(client, ["sku-1"]) == before
    assert (await position(client, "sku-1", "dc"))["held"] == 2


async def test_a_created_hold_is_replayed_byte_for_byte(client: httpx.AsyncClient) -> None:
    # the script stored it with the hold in deferred form; the replay renders it again
    await seed(client, {("sku-1", "dc"): 5})
    first = await client.post("/v1/holds", json=HOLD_BODY, headers=key("h-bytes"))
    retry = await client.post("/v1/holds", json=HOLD_BODY, headers=key("h-bytes"))
    assert first.status_code == retry.status_code == 201
    assert retry.content == first.content
    assert retry.headers["idempotent-replayed"] == "true"


async def test_a_created_hold_with_metadata_is_replayed_byte_for_byte(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    body = {**HOLD_BODY, "reference": "cart-9", "metadata": {"cart": "c-9", "note": 'é " x'}}
    first = await client.post("/v1/holds", json=body, headers=key("h-meta"))
    retry = await client.post("/v1/holds", json=body, headers=key("h-meta"))
    assert first.status_code == retry.status_code == 201
    assert first.json()["metadata"] == {"cart": "c-9", "note": 'é " x'}
    assert retry.content == first.content


async def test_a_create_whose_service_died_before_answering_is_replayed_not_in_use(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    retry = await replay_after_dying(client, monkeypatch, HOLD_BODY, "h-dies")
    assert retry.json()["lines"] == [{"sku": "sku-1", "location": "dc", "quantity": 2}]
    assert (await position(client, "sku-1", "dc"))["held"] == 2


async def test_create_hold_retry_after_release_returns_the_original_201_and_holds_nothing(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    first = await client.post("/v1/holds", json=HOLD_BODY, headers=key("h-1"))
    await act(client, first.json()["id"], "release")
    retry = await client.post("/v1/holds", json=HOLD_BODY, headers=key("h-1"))
    same_response(first, retry)
    assert (await position(client, "sku-1", "dc"))["held"] == 0


async def test_create_hold_same_key_different_body_is_422_idempotency_key_reused(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    await client.post("/v1/holds", json=HOLD_BODY, headers=key("h-1"))
    other = {"channel": "web", "lines": [{"sku": "sku-1", "quantity": 3}]}
    r = await client.post("/v1/holds", json=other, headers=key("h-1"))
    assert_problem(r, 422, "idempotency_key_reused")
    assert (await position(client, "sku-1", "dc"))["held"] == 2


async def test_create_hold_replayed_409_stays_409_after_stock_arrives(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 1})
    first = await client.post("/v1/holds", json=HOLD_BODY, headers=key("h-2"))
    assert_problem(first, 409, "insufficient_stock")
    await client.put("/v1/stock/sku-1/dc", json={"on_hand": 10})
    retry = await client.post("/v1/holds", json=HOLD_BODY, headers=key("h-2"))
    same_response(first, retry)
    assert (await position(client, "sku-1", "dc"))["held"] == 0


async def _transition_retry(
    client: httpx.AsyncClient, hold_id: str, action: str, k: str, **kw: Any
) -> tuple[httpx.Response, httpx.Response, dict[str, Any], dict[str, Any]]:
    first = await act(client, hold_id, action, headers=key(k), **kw)
    assert first.status_code == 200, first.text
    after_first = await snapshot(client, ["sku-1"])
    retry = await act(client, hold_id, action, headers=key(k), **kw)
    return first, retry, after_first, await snapshot(client, ["sku-1"])


async def test_commit_retry_returns_the_same_200_and_commits_once(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}])
    first, retry, before, after = await _transition_retry(client, h["id"], "commit", "c-1")
    same_response(first, retry)
    assert after == before
    assert (await position(client, "sku-1", "dc"))["committed"] == 2


async def test_fulfil_retry_returns_the_same_200_and_lowers_on_hand_once(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}])
    await act(client, h["id"], "commit")
    first, retry, before, after = await _transition_retry(client, h["id"], "fulfil", "f-1")
    same_response(first, retry)
    assert after == before
    assert (await position(client, "sku-1", "dc"))["on_hand"] == 3


async def test_release_retry_returns_the_same_200_and_releases_once(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}])
    await act(client, h["id"], "commit")
    first, retry, before, after = await _transition_retry(client, h["id"], "release", "r-1")
    same_response(first, retry)
    assert after == before
    p = await position(client, "sku-1", "dc")
    assert (p["held"], p["committed"], p["available"]) == (0, 0, 5)


async def test_extend_retry_returns_the_same_200_and_does_not_move_expiry_again(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}], ttl_seconds=60)
    first = await act(client, h["id"], "extend", json={"ttl_seconds": 300}, headers=key("e-1"))
    assert first.status_code == 200
    clock.advance(100)
    retry = await act(client, h["id"], "extend", json={"ttl_seconds": 300}, headers=key("e-1"))
    same_response(first, retry)
    got = (await client.get(f"/v1/holds/{h['id']}")).json()
    assert got["expires_at"] == first.json()["expires_at"]


async def test_extend_same_key_different_ttl_is_422_idempotency_key_reused(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}])
    first = await act(client, h["id"], "extend", json={"ttl_seconds": 300}, headers=key("e-1"))
    r = await act(client, h["id"], "extend", json={"ttl_seconds": 900}, headers=key("e-1"))
    assert_problem(r, 422, "idempotency_key_reused")
    got = (await client.get(f"/v1/holds/{h['id']}")).json()
    assert got["expires_at"] == first.json()["expires_at"]


@pytest.mark.parametrize("action", ["commit", "release"])
async def test_transition_same_key_on_another_hold_is_422_idempotency_key_reused(
    client: httpx.AsyncClient, action: str
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    a = await hold(client, [{"sku": "sku-1", "quantity": 1}])
    b = await hold(client, [{"sku": "sku-1", "quantity": 1}])
    assert (await act(client, a["id"], action, headers=key("t-1"))).status_code == 200
    before = await snapshot(client, ["sku-1"])
    r = await act(client, b["id"], action, headers=key("t-1"))
    assert_problem(r, 422, "idempotency_key_reused")
    assert (await client.get(f"/v1/holds/{b['id']}")).json()["status"] == "active"
    assert await snapshot(client, ["sku-1"]) == before


async def test_fulfil_same_key_on_another_hold_is_422_idempotency_key_reused(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    a = await hold(client, [{"sku": "sku-1", "quantity": 1}])
    b = await hold(client, [{"sku": "sku-1", "quantity": 1}])
    for h in (a, b):
        await act(client, h["id"], "commit")
    assert (await act(client, a["id"], "fulfil", headers=key("t-2"))).status_code == 200
    r = await act(client, b["id"], "fulfil", headers=key("t-2"))
    assert_problem(r, 422, "idempotency_key_reused")
    assert (await client.get(f"/v1/holds/{b['id']}")).json()["status"] == "committed"
    assert (await position(client, "sku-1", "dc"))["on_hand"] == 4


async def test_replayed_invalid_transition_stays_409(client: httpx.AsyncClient) -> None:
    await seed(client, {("sku-1", "dc"): 5})
    h = await hold(client, [{"sku": "sku-1", "quantity": 2}])
    first = await act(client, h["id"], "fulfil", headers=key("f-2"))
    assert_problem(first, 409, "invalid_transition")
    await act(client, h["id"], "commit")
    # The hold could now be fulfilled, but the key's answer is already given.
    retry = await act(client, h["id"], "fulfil", headers=key("f-2"))
    same_response(first, retry)
    assert (await client.get(f"/v1/holds/{h['id']}")).json()["status"] == "committed"
    assert (await position(client, "sku-1", "dc"))["on_hand"] == 5


async def test_replayed_hold_not_found_stays_404(client: httpx.AsyncClient) -> None:
    first = await act(client, "haaaaaaaaaaaaaaaaaaaa-00", "commit", headers=key("nf-1"))
    assert_problem(first, 404, "hold_not_found")
    retry = await act(client, "haaaaaaaaaaaaaaaaaaaa-00", "commit", headers=key("nf-1"))
    same_response(first, retry)


async def test_a_retry_with_reordered_json_keys_is_the_same_request(
    client: httpx.AsyncClient,
) -> None:
    await seed(client, {("idem-json", "dc"): 5})
    first = await client.post(
        "/v1/holds",
        content=b'{"channel": "web", "lines": [{"sku": "idem-json", "quantity": 1}]}',
        headers={"Idempotency-Key": "json-order", "content-type": "application/json"},
    )
    retry = await client.post(
        "/v1/holds",
        content=b'{"lines":[{"quantity":1,"sku":"idem-json"}],"channel":"web"}',
        headers={"Idempotency-Key": "json-order", "content-type": "application/json"},
    )
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    position = (await client.get("/v1/stock/idem-json")).json()["positions"][0]
    assert position["held"] == 1


# -- webhook subscriptions (admin) ------------------------------------------------------------

HOOK = {"url": "http://127.0.0.1:9/hook"}


async def test_create_webhook_retry_returns_the_same_201_and_subscribes_once(
    client: httpx.AsyncClient,
) -> None:
    first = await client.post("/v1/webhooks", json=HOOK, headers=key("wh-1"))
    assert first.status_code == 201
    retry = await client.post("/v1/webhooks", json=HOOK, headers=key("wh-1"))
    same_response(first, retry)
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["secret"] == first.json()["secret"]
    assert [w["id"] for w in (await client.get("/v1/webhooks")).json()["webhooks"]] == [
        first.json()["id"]
    ]


async def test_create_webhook_same_key_different_body_is_422_idempotency_key_reused(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/v1/webhooks", json=HOOK, headers=key("wh-1"))
    other = {"url": "http://127.0.0.1:9/other"}
    r = await client.post("/v1/webhooks", json=other, headers=key("wh-1"))
    assert_problem(r, 422, "idempotency_key_reused")
    assert len((await client.get("/v1/webhooks")).json()["webhooks"]) == 1


async def test_patch_delete_and_redeliver_webhook_replay_and_refuse_another_body(
    client: httpx.AsyncClient,
) -> None:
    sub = (await client.post("/v1/webhooks", json=HOOK)).json()["id"]
    path = f"/v1/webhooks/{sub}"
    first = await client.patch(path, json={"description": "erp"}, headers=key("p"))
    assert first.status_code == 200
    await client.patch(path, json={"description": "moved on"})
    retry = await client.patch(path, json={"description": "erp"}, headers=key("p"))
    same_response(first, retry)
    assert (await client.get(path)).json()["description"] == "moved on"  # not undone
    r = await client.patch(path, json={"description": "x"}, headers=key("p"))
    assert_problem(r, 422, "idempotency_key_reused")

    event = "1763978412345-0-042"
    first = await client.post(f"{path}/redeliver", params={"from": event}, headers=key("r"))
    assert first.status_code == 200
    retry = await client.post(f"{path}/redeliver", params={"from": event}, headers=key("r"))
    same_response(first, retry)
    later = "1763978412399-0-000"
    r = await client.post(f"{path}/redeliver", params={"from": later}, headers=key("r"))
    assert_problem(r, 422, "idempotency_key_reused")

    gone = await client.delete(path, headers=key("d"))
    assert gone.status_code == 204 and gone.content == b""
    again = await client.delete(path, headers=key("d"))
    assert again.status_code == 204 and again.headers["idempotent-replayed"] == "true"
    assert_problem(await client.delete(path), 404, "webhook_not_found")
    r = await client.delete(f"/v1/webhooks/wh_{'0' * 16}", headers=key("d"))
    assert_problem(r, 422, "idempotency_key_reused")
