"""The OpenAPI document's examples: for every operation, request and response examples and
every problem `code` it can answer with, each with an example problem.

Routes stay thin: the examples and error codes live here, keyed by "METHOD /path", and are
merged into the generated document once, on first request of /openapi.json, after
openapi_doc.py has given every error response the Problem schema. Codes every
operation of a kind shares are added by rule: `invalid_request` where there is any input,
the idempotency codes where `Idempotency-Key` is accepted, `store_unavailable` on /v1, and
`unauthorized`/`forbidden` where the operation requires an API key. A route added without an
entry here fails tests/ops/test_openapi.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from app.api.nearby_examples import NEARBY_OPERATIONS
from app.api.openapi_doc import PROBLEM_SCHEMA
from app.api.problems import PROBLEM_JSON
from app.api.supply_examples import SUPPLY_OPERATIONS, SUPPLY_PROBLEMS
from app.api.webhook_examples import WEBHOOK_OPERATIONS
from app.domain.errors import PROBLEM_CODES

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Codes that belong to no operation (an unknown path): listed in the description only.
GLOBAL_CODES = ("not_found",)

DESCRIPTION = """\
Real-time inventory availability and reservations for omnichannel retail.

* **JSON** in and out; timestamps are RFC 3339 UTC; quantities are integer units.
* **Errors** are RFC 9457 problem details (`application/problem+json`) with a stable `code`;
  each operation lists the codes it can answer with, and the table below lists them all.
* **Idempotency**: every mutating request accepts `Idempotency-Key`; a retry with the same key
  and body returns the original answer and changes nothing.
* **Auth**: `Authorization: Bearer <key>` with scopes `read`, `reserve`, `pos:<location>`,
  `admin` (a service started without keys serves only on loopback and asks for none).
* **Request ids**: send `X-Request-ID` (up to 128 visible characters) to find your request in
  the service's logs; it is echoed back, or a generated one is returned.

| code | status | meaning |
| --- | --- | --- |
"""


def _ex(value: Any, summary: str = "") -> dict[str, Any]:
    return {"summary": summary, "value": value} if summary else {"value": value}


# -- example documents (taken from a real run; ids and times are illustrative) -------------

DC = {"type": "dc", "name": "DC North", "ship": True, "pickup": False, "priority": 1}
STORE = {"type": "store", "name": "Store 12", "ship": False, "pickup": True, "priority": 10}
WEB = {"locations": ["dc-north", "store-12"], "low_stock_threshold": 3}
WEB_OUT = {**WEB, "buffer": None, "exclude_skus": [], "id": "web"}
MARKETPLACE = {
    "locations": ["dc-north"],
    "low_stock_threshold": 2,
    "buffer": {"percent": 10},
    "exclude_skus": ["SKU-2"],
}
POS_DC = {
    "location": "dc-north",
    "on_hand": 10,
    "held": 0,
    "committed": 0,
    "safety_stock": 2,
    "available": 8,
}
POS_STORE = {
    "location": "store-12",
    "on_hand": 4,
    "held": 0,
    "committed": 0,
    "safety_stock": 0,
    "available": 4,
}
_AVAILABLE_AT = [
    {"location": "dc-north", "available": 8},
    {"location": "store-12", "available": 4},
]
AVAILABILITY = {
    "sku": "SKU-1",
    "channel": "web",
    "available": 12,
    "status": "in_stock",
    "locations": _AVAILABLE_AT,
}
HOLD_ID = "hrajmztjn7opw635zkztc-b4"


def _hold(status: str, expires_at: str = "2025-11-24T10:30:00.000Z") -> dict[str, Any]:
    return {
        "id": HOLD_ID,
        "status": status,
        "channel": "web",
        "reference": "cart-81",
        "created_at": "2025-11-24T10:15:00.000Z",
        "expires_at": expires_at,
        "lines": [{"sku": "SKU-1", "location": "dc-north", "quantity": 2}],
    }


EVENT = {
    "id": "1764000000123-0-180",
    "type": "hold.reserved",
    "sku": "SKU-1",
    "location": "dc-north",
    "at": "2025-11-24T10:15:00.123Z",
    "cause": {"type": "reserved", "hold": HOLD_ID},
    "position": {"on_hand": 10, "held": 2, "committed": 0, "safety_stock": 2, "available": 6},
    "availability": [
        {
            "channel": "web",
            "before": {"available": 12, "status": "in_stock"},
            "after": {"available": 10, "status": "in_stock"},
        }
    ],
}
SSE_EXAMPLE = (
    "retry: 1000\n\n"
    f"id: {EVENT['id']}\nevent: {EVENT['type']}\n"
    'data: {"id":"1764000000123-0-180","type":"hold.reserved","sku":"SKU-1",'
    '"location":"dc-north","at":"2025-11-24T10:15:00.123Z","cause":{"type":"reserved",'
    f'"hold":"{HOLD_ID}"}},"position":{{"on_hand":10,"held":2,"committed":0,'
    '"safety_stock":2,"available":6},"availability":[{"channel":"web","before":'
    '{"available":12,"status":"in_stock"},"after":{"available":10,"status":"in_stock"}}]}\n\n'
    ": keep-alive\n\n"
)

# Problem examples: the detail and extra fields each code comes with.
PROBLEM_EXAMPLES: dict[str, dict[str, Any]] = {
    "invalid_request": {
        "detail": "the request does not match the contract; see errors",
        "errors": [
            {
                "loc": ["body", "lines", 0, "quantity"],
                "msg": "Input should be a valid integer",
                "type": "int_type",
            }
        ],
    },
    "not_found": {"detail": "Not Found"},
    "hold_not_found": {"detail": f"no hold '{HOLD_ID}'"},
    "location_not_found": {"detail": "location 'store-99' is not registered"},
    "channel_not_found": {"detail": "channel 'kiosk' is not registered"},
    "insufficient_stock": {
        "detail": "not enough stock for every line",
        "lines": [{"sku": "SKU-1", "requested": 9, "available": 6}],
    },
    "invalid_transition": {
        "detail": f"hold {HOLD_ID} is fulfilled; cannot move it to released",
        "hold_id": HOLD_ID,
        "hold_status": "fulfilled",
    },
    "unknown_hold_line": {
        "detail": "the hold has no line SKU-1@store-12",
        "line": {"sku": "SKU-1", "location": "store-12", "quantity": 1},
    },
    "line_quantity_exceeded": {
        "detail": "line SKU-1@dc-north has 1 open units",
        "line": {"sku": "SKU-1", "location": "dc-north", "quantity": 2},
        "open": 1,
    },
    "idempotency_key_reused": {
        "detail": "this Idempotency-Key was used with a different request",
    },
    "idempotency_key_in_use": {
        "detail": "a request with this Idempotency-Key is still in progress; retry shortly",
    },
    "store_unavailable": {
        "detail": "the stock store did not answer in time; retry with the same Idempotency-Key",
    },
    "unauthorized": {"detail": "send an API key as `Authorization: Bearer <key>`"},
    "forbidden": {
        "detail": "this API key lacks the scope for this operation: one of reserve, admin",
        "required_scopes": ["reserve", "admin"],
    },
}


def problem_example(code: str) -> dict[str, Any]:
    status, title = PROBLEM_CODES[code]
    extra = PROBLEM_EXAMPLES.get(code, {"detail": title})
    return {"type": f"/problems/{code}", "title": title, "status": status, "code": code, **extra}


@dataclass(frozen=True)
class Doc:
    """What one operation's documentation adds to the generated schema."""

    response: Any  # the success body (a str for text/event-stream)
    request: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> example
    errors: tuple[str, ...] = ()  # codes beyond the ones added by rule
    idempotent: bool = False  # accepts Idempotency-Key
    other: dict[int, tuple[str, Any]] = field(default_factory=dict)  # non-problem responses


HOLD_ERRORS = ("hold_not_found", "invalid_transition")
LINE_ERRORS = ("unknown_hold_line", "line_quantity_exceeded")  # partial release and fulfil
ONE_UNIT = {"lines": [{"sku": "SKU-1", "location": "store-12", "quantity": 1}]}

OPERATIONS: dict[str, Doc] = {
    "GET /healthz": Doc({"status": "ok"}),
    "GET /readyz": Doc(
        {"status": "ok", "store": "ok", "scripts": "loaded"},
        other={
            503: (
                "The store does not answer (or the scripts could not be loaded): not ready.",
                {
                    "status": "unavailable",
                    "store": "unreachable",
                    "detail": "Error 111 connecting to redis:6379. Connection refused.",
                },
            )
        },
    ),
    "PUT /v1/locations/{location}": Doc(
        {**DC, "id": "dc-north"},
        request={
            "dc": _ex(DC, "A distribution centre that ships, sourced first"),
            "store": _ex(STORE, "A store offering click & collect"),
        },
        idempotent=True,
    ),
    "GET /v1/locations": Doc(
        {"locations": [{**DC, "id": "dc-north"}, {**STORE, "id": "store-12"}]}
    ),
    "PUT /v1/channels/{channel}": Doc(
        WEB_OUT,
        request={
            "web": _ex(WEB, "The web shop sells from the DC and store 12"),
            "marketplace": _ex(
                MARKETPLACE, "A marketplace: 10 % of each sku kept back, SKU-2 never shown"
            ),
        },
        idempotent=True,
    ),
    "GET /v1/channels": Doc({"channels": [WEB_OUT, {**MARKETPLACE, "id": "marketplace"}]}),
    "PUT /v1/stock/{sku}/{location}": Doc(
        POS_DC,
        request={
            "count": _ex({"on_hand": 10, "safety_stock": 2}, "ERP count with safety stock"),
            "on_hand_only": _ex({"on_hand": 4}, "Only on_hand; safety stock unchanged"),
        },
        errors=("location_not_found",),
        idempotent=True,
    ),
    "GET /v1/stock/{sku}": Doc({"sku": "SKU-1", "positions": [POS_DC, POS_STORE]}),
    "GET /v1/availability/{sku}": Doc(
        AVAILABILITY, errors=("channel_not_found", "location_not_found")
    ),
    "POST /v1/availability/query": Doc(
        {
            "results": [
                AVAILABILITY,
                {
                    **AVAILABILITY,
                    "sku": "SKU-2",
                    "available": 0,
                    "status": "out_of_stock",
                    "locations": [{**line, "available": 0} for line in _AVAILABLE_AT],
                },
            ]
        },
        request={
            "listing": _ex({"skus": ["SKU-1", "SKU-2"], "channel": "web"}, "A listing page"),
            "stores": _ex(
                {"skus": ["SKU-1"], "locations": ["store-12"]}, "One store's shelf, no channel"
            ),
        },
        errors=("channel_not_found", "location_not_found"),
    ),
    "POST /v1/holds": Doc(
        _hold("active"),
        request={
            "cart": _ex(
                {
                    "channel": "web",
                    "ttl_seconds": 900,
                    "reference": "cart-81",
                    "lines": [{"sku": "SKU-1", "quantity": 2}],
                },
                "A web cart, sourced by the service",
            ),
            "hold_it_for_me": _ex(
                {
                    "ttl_seconds": 7200,
                    "reference": "pos-12:customer-callback",
                    "lines": [{"sku": "SKU-1", "quantity": 1, "location": "store-12"}],
                },
                "A store holds one unit on its own shelf",
            ),
            "split": _ex(
                {"channel": "web", "allow_split": True, "lines": [{"sku": "SKU-1", "quantity": 9}]},
                "Allow the line to be split across locations",
            ),
            "preorder": _ex(
                {
                    "channel": "web",
                    "allow_backorder": True,
                    "lines": [{"sku": "SKU-1", "quantity": 2}],
                },
                "On-hand units first, then stock on its way (lines say `available_from`)",
            ),
            "ship_to": _ex(
                {
                    "channel": "web",
                    "ship_to": {"lat": 48.8966, "lon": 2.2206},
                    "allow_split": True,
                    "max_locations": 2,
                    "lines": [{"sku": "SKU-1", "quantity": 3}],
                },
                "Nearest stores first; a split over at most 2 locations",
            ),
        },
        errors=(
            "insufficient_stock",
            "channel_not_found",
            "location_not_found",
        ),
        idempotent=True,
    ),
    "GET /v1/holds": Doc({"data": [_hold("active")], "next": "b3BzIDE3NjQwMDAwMDAwMDAgaHI"}),
    "GET /v1/holds/{hold_id}": Doc(_hold("active"), errors=("hold_not_found",)),
    "PATCH /v1/holds/{hold_id}": Doc(
        {**_hold("active"), "metadata": {"order_id": "A-1007", "tracking": "1Z999"}},
        request={
            "set_and_remove": _ex(
                {"metadata": {"tracking": "1Z999", "gift": ""}},
                'Set a key; a key set to "" is removed',
            )
        },
        errors=("hold_not_found",),
        idempotent=True,
    ),
    "POST /v1/holds/{hold_id}/commit": Doc(_hold("committed"), errors=HOLD_ERRORS, idempotent=True),
    "POST /v1/holds/{hold_id}/fulfil": Doc(
        _hold("fulfilled"),
        request={"one_parcel": _ex(ONE_UNIT, "Fulfil one unit; the rest stays committed")},
        errors=(*HOLD_ERRORS, *LINE_ERRORS, "promise_not_received"),
        idempotent=True,
    ),
    "POST /v1/holds/{hold_id}/release": Doc(
        _hold("released"),
        request={"one_unit": _ex(ONE_UNIT, "Release one unit; the rest stays held")},
        errors=(*HOLD_ERRORS, *LINE_ERRORS),
        idempotent=True,
    ),
    "POST /v1/holds/{hold_id}/extend": Doc(
        _hold("active", "2025-11-24T10:40:00.000Z"),
        request={"ten_minutes": _ex({"ttl_seconds": 600}, "Expire 10 minutes from now")},
        errors=HOLD_ERRORS,
        idempotent=True,
    ),
    "POST /v1/stock/events": Doc(
        {
            "results": [
                {
                    "id": "store-12:till-3:000187",
                    "status": "applied",
                    "position": {**POS_STORE, "on_hand": 3, "available": 3},
                },
                {
                    "id": "asn-5521:1",
                    "status": "applied",
                    "position": {**POS_DC, "on_hand": 34, "available": 32},
                },
                {
                    "id": "asn-5521:1",
                    "status": "duplicate",
                    "position": {**POS_DC, "on_hand": 34, "available": 32},
                },
                {
                    "id": "count-7",
                    "status": "rejected",
                    "reason": "unknown type 'teleport'; one of sale, return, receipt, "
                    "adjustment, count, damage, transfer_out, transfer_in",
                },
            ]
        },
        request={
            "pos_and_receipt": _ex(
                {
                    "events": [
                        {
                            "id": "store-12:till-3:000187",
                            "type": "sale",
                            "sku": "SKU-1",
                            "location": "store-12",
                            "quantity": 1,
                            "occurred_at": "2025-11-24T10:14:58Z",
                        },
                        {
                            "id": "asn-5521:1",
                            "type": "receipt",
                            "sku": "SKU-1",
                            "location": "dc-north",
                            "quantity": 24,
                        },
                    ]
                },
                "A POS sale and a warehouse receipt",
            ),
            "count": _ex(
                {
                    "events": [
                        {
                            "id": "cycle-count:2025-11-24:SKU-1",
                            "type": "count",
                            "sku": "SKU-1",
                            "location": "store-12",
                            "quantity": 6,
                        }
                    ]
                },
                "A cycle count (absolute quantity)",
            ),
        },
        idempotent=True,
    ),
    "GET /v1/events/log": Doc(
        {"events": [EVENT], "next": EVENT["id"]},
        errors=("channel_not_found", "location_not_found"),
    ),
    "GET /v1/events": Doc(SSE_EXAMPLE, errors=("channel_not_found", "location_not_found")),
}

OPERATIONS.update({route: Doc(**fields) for route, fields in WEBHOOK_OPERATIONS.items()})
OPERATIONS.update({route: Doc(**fields) for route, fields in SUPPLY_OPERATIONS.items()})
PROBLEM_EXAMPLES.update(SUPPLY_PROBLEMS)
OPERATIONS.update({route: Doc(**fields) for route, fields in NEARBY_OPERATIONS.items()})


def codes_for(method: str, path: str, op: dict[str, Any], doc: Doc) -> list[str]:
    """Every problem code the operation can answer with, in a stable order."""
    codes = list(doc.errors)
    if op.get("parameters") or op.get("requestBody") or doc.idempotent:
        codes.append("invalid_request")
    if doc.idempotent:
        codes += ["idempotency_key_reused", "idempotency_key_in_use"]
    if path.startswith("/v1/"):
        codes.append("store_unavailable")
    if op.get("security"):
        codes += ["unauthorized", "forbidden"]
    return [c for c in dict.fromkeys(codes) if c in PROBLEM_CODES]


def _document(schema: dict[str, Any]) -> None:
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Problem", PROBLEM_SCHEMA)
    for path, item in schema.get("paths", {}).items():
        for method, op in item.items():
            doc = OPERATIONS.get(f"{method.upper()} {path}")
            if doc is not None:
                _document_operation(method, path, op, doc)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def _document_operation(method: str, path: str, op: dict[str, Any], doc: Doc) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    responses.pop("422", None)  # FastAPI's default: we answer 422 with a problem instead
    if doc.idempotent:
        op.setdefault("parameters", []).append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Makes a retry safe: the same key and body answer the first "
                "response again and change nothing (kept at least 24 hours).",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
    if doc.request:
        body = op["requestBody"]["content"]["application/json"]
        body["examples"] = doc.request
    success = next(code for code in sorted(responses) if code.startswith("2"))
    content = responses[success].setdefault("content", {})
    media = "text/event-stream" if isinstance(doc.response, str) else "application/json"
    if media == "text/event-stream":
        content.pop("application/json", None)
        content[media] = {"schema": {"type": "string"}}
    if success == "204":  # no content: nothing to show
        responses[success].pop("content", None)
    else:
        content.setdefault(media, {})["examples"] = {"default": {"value": doc.response}}
    schema = content.get("application/json", {}).get("schema")
    for status, (description, example) in doc.other.items():
        # Another status of the same shape as the success (503 of /readyz).
        media_type: dict[str, Any] = {"examples": {"default": {"value": example}}}
        if schema is not None:
            media_type["schema"] = schema
        responses[str(status)] = {
            "description": description,
            "content": {"application/json": media_type},
        }
    by_status: dict[int, list[str]] = {}
    for code in codes_for(method, path, op, doc):
        by_status.setdefault(PROBLEM_CODES[code][0], []).append(code)
    for status, codes in sorted(by_status.items()):
        responses[str(status)] = {
            "description": "; ".join(f"`{c}`: {PROBLEM_CODES[c][1]}" for c in codes),
            "content": {
                PROBLEM_JSON: {
                    "schema": PROBLEM_REF,
                    "examples": {
                        c: {"summary": PROBLEM_CODES[c][1], "value": problem_example(c)}
                        for c in codes
                    },
                }
            },
        }


def install(app: FastAPI) -> None:
    """Serve the documented schema at /openapi.json (and /docs)."""
    rows = "".join(
        f"| `{code}` | {status} | {title} |\n"
        for code, (status, title) in sorted(PROBLEM_CODES.items(), key=lambda kv: kv[1][0])
    )
    app.description = DESCRIPTION + rows
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            _document(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
