"""The webhook routes' OpenAPI examples (merged into openapi_examples.OPERATIONS)."""

from __future__ import annotations

from typing import Any

SUB_ID = "wh_5f0c3a9d2b7e4411"
_BODY = {
    "url": "https://erp.example.com/omnistock",
    "event_types": ["stock.*", "availability.out_of_stock", "availability.back_in_stock"],
    "channels": ["web"],
}
SUBSCRIPTION = {
    "id": SUB_ID,
    "url": _BODY["url"],
    "description": "",
    "event_types": _BODY["event_types"],
    "skus": None,
    "locations": None,
    "channels": ["web"],
    "enabled": True,
    "disabled_reason": None,
    "created_at": "2025-11-24T10:00:00.000Z",
    "cursor": "1763978399999-18446744073709551615-255",
}
_NF = ("webhook_not_found",)
_FILTERS = ("location_not_found", "channel_not_found")

WEBHOOK_OPERATIONS: dict[str, dict[str, Any]] = {
    "POST /v1/webhooks": {
        "response": {**SUBSCRIPTION, "secret": "whsec_3f1d0c9e8b7a69584736251403f2e1d0c9b8a796"},
        "request": {
            "erp": {"summary": "An ERP told of stock changes and stock-outs", "value": _BODY}
        },
        "errors": _FILTERS,
        "idempotent": True,
    },
    "GET /v1/webhooks": {"response": {"webhooks": [SUBSCRIPTION]}},
    "GET /v1/webhooks/{sub_id}": {"response": SUBSCRIPTION, "errors": _NF},
    "PATCH /v1/webhooks/{sub_id}": {
        "response": SUBSCRIPTION,
        "request": {
            "enable": {"summary": "Re-enable after fixing the receiver", "value": {"enabled": True}}
        },
        "errors": (*_NF, *_FILTERS),
        "idempotent": True,
    },
    "DELETE /v1/webhooks/{sub_id}": {"response": None, "errors": _NF, "idempotent": True},
    "GET /v1/webhooks/{sub_id}/attempts": {
        "response": {
            "attempts": [
                {
                    "event": "1763978412345-0-042",
                    "type": "stock.set",
                    "attempt": 2,
                    "at": "2025-11-24T10:00:14.120Z",
                    "status": 200,
                    "latency_ms": 38.2,
                    "error": None,
                },
                {
                    "event": "1763978412345-0-042",
                    "type": "stock.set",
                    "attempt": 1,
                    "at": "2025-11-24T10:00:12.400Z",
                    "status": 503,
                    "latency_ms": 12.9,
                    "error": "HTTP 503",
                },
            ]
        },
        "errors": _NF,
    },
    "POST /v1/webhooks/{sub_id}/redeliver": {
        "response": SUBSCRIPTION,
        "errors": _NF,
        "idempotent": True,
    },
}
