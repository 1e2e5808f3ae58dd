"""The future-supply routes' OpenAPI examples (merged into openapi_examples.OPERATIONS).

Request etas are dated from the day the document is built (an eta must be after now and
within the horizon), so every example stays one the service accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def _day(days: int) -> str:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


_PO = {"type": "purchase_order", "quantity": 20, "eta": _day(10), "reference": "PO-4471"}
_LINE = {
    "sku": "SKU-1",
    "location": "dc-north",
    "supply_id": "PO-4471",
    "type": "purchase_order",
    "quantity": 20,
    "eta": _day(10).replace("Z", ".000Z"),
    "reference": "PO-4471",
    "promised": 3,
    "incoming": 17,
}
_TIMELINE = {
    "sku": "SKU-1",
    "channel": "web",
    "location": None,
    "windows": [
        {"from": _day(0), "to": _day(10), "available": 0},
        {"from": _day(10), "to": _day(90), "available": 17},
    ],
}
_FILTERS = ("location_not_found",)

SUPPLY_OPERATIONS: dict[str, dict[str, Any]] = {
    "PUT /v1/supply/{sku}/{location}/{supply_id}": {
        "response": {**_LINE, "action": "updated", "broken_promises": []},
        "request": {
            "purchase_order": {"summary": "A purchase order due in 10 days", "value": _PO},
            "in_transit": {
                "summary": "A shipment on its way",
                "value": {"type": "in_transit", "quantity": 6, "eta": _day(3)},
            },
        },
        "errors": _FILTERS,
        "idempotent": True,
    },
    "DELETE /v1/supply/{sku}/{location}/{supply_id}": {
        "response": {
            **_LINE,
            "quantity": 0,
            "promised": 0,
            "incoming": 0,
            "action": "cancelled",
            "broken_promises": [{"hold": "hrajmztjn7opw635zkztc-b4", "units": 3}],
        },
        "errors": (*_FILTERS, "supply_not_found"),
        "idempotent": True,
    },
    "GET /v1/supply/{sku}": {"response": {"sku": "SKU-1", "lines": [_LINE]}},
    "POST /v1/supply/batch": {
        "response": {
            "results": [
                {
                    "index": 0,
                    "sku": "SKU-1",
                    "location": "dc-north",
                    "supply_id": "PO-4471",
                    "status": "created",
                    "broken_promises": [],
                }
            ]
        },
        "request": {
            "erp": {
                "summary": "Supply lines from the ERP",
                "value": {
                    "lines": [
                        {"sku": "SKU-1", "location": "dc-north", "supply_id": "PO-4471", **_PO}
                    ]
                },
            }
        },
        "idempotent": True,
    },
    "GET /v1/availability/{sku}/timeline": {
        "response": _TIMELINE,
        "errors": ("channel_not_found", "location_not_found"),
    },
}

SUPPLY_PROBLEMS: dict[str, dict[str, Any]] = {
    "supply_not_found": {"detail": "no supply line 'PO-4471' of 'SKU-1' at 'dc-north'"},
    "promise_not_received": {
        "detail": "the hold has promised units whose supply has not been received; commit it "
        "and fulfil once they arrive, or release it"
    },
}
