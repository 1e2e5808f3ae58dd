"""Stopping a deliverer while a delivery is in flight: the delivery is neither lost nor failed
by its own worker's shutdown; the next deliverer sends it again (at-least-once)."""

from __future__ import annotations

import asyncio
import functools

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from app.domain import tasks
from app.settings import Settings
from app.webhooks import deliverer as deliverer_module
from app.webhooks.deliverer import WebhookDeliverer
from tests.conftest import make_settings, seed
from tests.events.helpers import stream_ids
from tests.webhooks.conftest import FAST
from tests.webhooks.receivers import Receiver, serve
from tests.webhooks.test_delivery import changes, fresh_sku, subscribe, until
from tests.webhooks.test_takeover import second_worker


@pytest.fixture
def settings(store_url: str) -> Settings:
    # A delivery that stays in flight until the test releases it (no timeout meanwhile).
    return make_settings(store_url, **{**FAST, "webhook_timeout_seconds": 30.0})


def delivery_tasks() -> list[asyncio.Task[object]]:
    return [
        t
        for t in asyncio.all_tasks()
        if t.get_name().startswith("webhook-") and t.get_name() != "webhook-deliverer"
    ]


async def test_a_deliverer_stopped_mid_delivery_leaves_it_to_the_next_one_intact(
    app: FastAPI,
    client: httpx.AsyncClient,
    redis: Redis,
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # stop() cancels the deliverer's loop again and again until it ends (cancel_and_wait): here
    # at once rather than every 0.5 s, so a re-cancel always lands in the loop's own clean-up of
    # its delivery tasks and cuts it short, as a contended machine's slow clean-up once did.
    # stop() must still end every delivery task before it closes the HTTP client: one that
    # ran on would fail every attempt on the closed client and disable the subscription.
    eager = functools.partial(tasks.cancel_and_wait, every=0.0)
    monkeypatch.setattr(deliverer_module, "cancel_and_wait", eager)
    await seed(client)
    sku = fresh_sku()
    first: WebhookDeliverer = app.state.deliverer
    gate = asyncio.Event()
    async with serve(Receiver(gate=gate)) as receiver:
        try:
            sub = await subscribe(client, receiver.url, skus=[sku])
            await changes(client, sku, [1, 2])
            await until(lambda: receiver.requests == 1)  # the first delivery is in flight

            await first.stop()

            assert not first.leading
            assert [t.get_name() for t in delivery_tasks() if not t.done()] == []
            await asyncio.sleep(0.2)  # what a task left running would do meanwhile: fail, disable
            r = await client.get(f"/v1/webhooks/{sub['id']}")
            assert r.json()["enabled"] is True, r.json()
            attempts = (await client.get(f"/v1/webhooks/{sub['id']}/attempts")).json()["attempts"]
            assert attempts == []  # nothing acknowledged, nothing failed

            gate.set()
            second, second_redis = second_worker(app, store_url)
            second.start()
            try:
                expected = await stream_ids(redis, [sku])
                await until(lambda: len(receiver.ids()) >= len(expected))
                assert receiver.ids() == expected  # the one in flight first, then the rest
                assert receiver.all_signed(sub["secret"])
            finally:
                await second.stop()
                await second_redis.aclose()
        finally:
            gate.set()  # the receiver's server ends only once its requests are answered
