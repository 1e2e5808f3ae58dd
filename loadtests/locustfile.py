"""Omnistock load-test scenarios for Locust (`FastHttpUser`), with weights that mirror retail
traffic: many availability reads per hold, few store POS sales.

- StorefrontUser (80): product pages (one sku) and listings (a batch of 24 skus).
- CheckoutUser (15): hold a cart of 1-3 lines, then commit (4 in 5) or release it.
- PosUser (5): store tills posting sales to POST /v1/stock/events.
- FlashSaleUser (run alone): every user holds one unit of the same sku until it sells out.

`make loadtest` (loadtests/run.py) starts the store and the service, seeds the catalogue and
runs the mix, then the flash sale, headless. Standalone:

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8080 \
        StorefrontUser CheckoutUser PosUser

Settings (environment): LOADTEST_SKUS (catalogue size, 10000), LOADTEST_FLASH_SKU (FLASH-1),
LOADTEST_API_KEY (a bearer key, when the service requires one), LOADTEST_GRANTED_FILE (the flash
sale writes how many units it was granted there, for the invariant check).
"""

from __future__ import annotations

import os
import random
import uuid
from typing import Any

from locust import FastHttpUser, between, constant, events, task

SKUS = int(os.environ.get("LOADTEST_SKUS", "10000"))
FLASH_SKU = os.environ.get("LOADTEST_FLASH_SKU", "FLASH-1")
STORES = ["store-1", "store-2", "store-3"]
API_KEY = os.environ.get("LOADTEST_API_KEY")


def a_sku() -> str:
    return f"SKU-{random.randrange(SKUS):07d}"


class OmnistockUser(FastHttpUser):
    abstract = True
    wait_time = between(0.05, 0.2)  # a client pauses between requests; keep the mix realistic

    def headers(self, **extra: str) -> dict[str, str]:
        out = {"Authorization": f"Bearer {API_KEY}"} if API_KEY else {}
        out.update(extra)
        return out


class StorefrontUser(OmnistockUser):
    weight = 80

    @task(4)
    def product_page(self) -> None:
        self.client.get(
            f"/v1/availability/{a_sku()}?channel=web",
            name="GET /v1/availability/[sku]",
            headers=self.headers(),
        )

    @task(1)
    def listing(self) -> None:
        self.client.post(
            "/v1/availability/query",
            json={"skus": [a_sku() for _ in range(24)], "channel": "web"},
            name="POST /v1/availability/query (24 skus)",
            headers=self.headers(),
        )


class CheckoutUser(OmnistockUser):
    weight = 15

    @task
    def checkout(self) -> None:
        lines = [
            {"sku": a_sku(), "quantity": random.randint(1, 2)} for _ in range(random.randint(1, 3))
        ]
        body = {
            "channel": "web",
            "ttl_seconds": 600,
            "reference": f"cart-{uuid.uuid4().hex[:12]}",
            "lines": lines,
        }
        with self.client.post(
            "/v1/holds",
            json=body,
            name="POST /v1/holds",
            headers=self.headers(**{"Idempotency-Key": uuid.uuid4().hex}),
            catch_response=True,
        ) as r:
            if r.status_code == 409:
                r.success()  # out of stock is an answer, not a failure
                return
            if r.status_code != 201:
                r.failure(f"hold: {r.status_code}")
                return
            hold_id = r.json()["id"]
        action = "commit" if random.random() < 0.8 else "release"
        self.client.post(
            f"/v1/holds/{hold_id}/{action}",
            name=f"POST /v1/holds/[id]/{action}",
            headers=self.headers(**{"Idempotency-Key": uuid.uuid4().hex}),
        )


class PosUser(OmnistockUser):
    weight = 5

    @task
    def sale(self) -> None:
        store = random.choice(STORES)
        event = {
            "id": f"{store}:till-{random.randint(1, 9)}:{uuid.uuid4().hex[:16]}",
            "type": "sale",
            "sku": a_sku(),
            "location": store,
            "quantity": 1,
        }
        self.client.post(
            "/v1/stock/events",
            json={"events": [event]},
            name="POST /v1/stock/events (sale)",
            headers=self.headers(),
        )


GRANTED = {"units": 0, "refused": 0}


class FlashSaleUser(OmnistockUser):
    """Every user wants the same sku, one unit at a time, as fast as it can."""

    wait_time = constant(0)

    @task
    def grab(self) -> None:
        with self.client.post(
            "/v1/holds",
            json={"channel": "web", "lines": [{"sku": FLASH_SKU, "quantity": 1}]},
            name="POST /v1/holds (flash sale)",
            headers=self.headers(),
            catch_response=True,
        ) as r:
            if r.status_code == 201:
                GRANTED["units"] += 1
            elif r.status_code == 409:
                GRANTED["refused"] += 1
                r.success()
            else:
                r.failure(f"hold: {r.status_code}")


@events.test_stop.add_listener
def _write_granted(**_: Any) -> None:
    path = os.environ.get("LOADTEST_GRANTED_FILE")
    if path and (GRANTED["units"] or GRANTED["refused"]):
        with open(path, "w") as fh:
            fh.write(f'{{"units": {GRANTED["units"]}, "refused": {GRANTED["refused"]}}}\n')
