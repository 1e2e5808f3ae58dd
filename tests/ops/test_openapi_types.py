"""Every request and response body in /openapi.json is typed: no bare object without
properties anywhere in a payload's schema, so generated SDKs get classes, not plain dicts.

No exceptions are needed today. The only untyped bodies are outside the document on purpose:
/metrics (Prometheus text) and /docs, /redoc and their assets (include_in_schema=False); the
SSE stream of /v1/events is text (`type: string`), whose `data:` lines are the events typed
by the log's `StockChangeEvent` / `ResetEvent`.
"""

from __future__ import annotations

from typing import Any

from tests.ops.conftest import operations

# (operation, status or "request", media type) allowed to hold an untyped object, with why.
EXCEPTIONS: dict[tuple[str, str, str], str] = {}


def untyped(schema: Any, schemas: dict[str, Any], where: str, seen: set[str]) -> list[str]:
    """Places under `schema` that are an object without properties, or no schema at all."""
    if not isinstance(schema, dict) or not schema:
        return [f"{where}: no schema"]
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        if name in seen:
            return []
        return untyped(schemas[name], schemas, f"{where}->{name}", seen | {name})
    found: list[str] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for i, option in enumerate(schema.get(key, [])):
            found += untyped(option, schemas, f"{where}/{key}[{i}]", seen)
    extra = schema.get("additionalProperties")
    if schema.get("type") == "object" or "properties" in schema:
        if not schema.get("properties") and not isinstance(extra, dict):
            found.append(f"{where}: object without properties")
        for name, prop in schema.get("properties", {}).items():
            found += untyped(prop, schemas, f"{where}.{name}", seen)
        if isinstance(extra, dict):
            found += untyped(extra, schemas, f"{where}{{*}}", seen)
    if schema.get("type") == "array":
        found += untyped(schema.get("items"), schemas, f"{where}[]", seen)
    if not any(k in schema for k in ("type", "anyOf", "oneOf", "allOf", "enum", "const")):
        found.append(f"{where}: no type")
    return found


def payloads(spec: dict[str, Any]) -> list[tuple[tuple[str, str, str], Any]]:
    out = []
    for name, op in operations(spec):
        for media, content in op.get("requestBody", {}).get("content", {}).items():
            out.append(((name, "request", media), content.get("schema")))
        for status, response in op["responses"].items():
            for media, content in response.get("content", {}).items():
                out.append(((name, status, media), content.get("schema")))
    return out


def test_no_payload_schema_is_an_untyped_object(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    found = [
        problem
        for where, schema in payloads(spec)
        if where not in EXCEPTIONS
        for problem in untyped(schema, schemas, " ".join(where), set())
    ]
    assert not found, "\n".join(found)


def test_stock_event_items_and_the_event_log_are_named_models(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    events_in = schemas["StockEventsIn"]["properties"]["events"]["items"]
    assert events_in == {"$ref": "#/components/schemas/StockEventIn"}
    assert set(schemas["StockEventIn"]["required"]) == {"id", "type", "sku", "location", "quantity"}
    log = spec["paths"]["/v1/events/log"]["get"]["responses"]["200"]["content"]
    assert log["application/json"]["schema"] == {"$ref": "#/components/schemas/EventPage"}
    options = schemas["EventPage"]["properties"]["events"]["items"]["anyOf"]
    assert {o["$ref"].rsplit("/", 1)[1] for o in options} == {"StockChangeEvent", "ResetEvent"}
