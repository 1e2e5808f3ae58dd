"""The OpenAPI document describes the errors the service really sends: RFC 9457 problems."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if method in ("get", "put", "post", "delete", "patch")
    ]


async def test_every_declared_client_error_is_a_problem_json_body(
    client: httpx.AsyncClient,
) -> None:
    """(A 5xx may be something else: /readyz answers 503 with its plain status document.)"""
    doc = (await client.get("/openapi.json")).json()
    for method, path, op in operations(doc):
        for status, response in op["responses"].items():
            if status[0] == "4" or status == "default":
                assert list(response["content"]) == ["application/problem+json"], (path, status)
                media = response["content"]["application/problem+json"]
                assert media["schema"] == PROBLEM_REF, (method, path, status)


async def test_every_operation_declares_a_default_problem(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    for method, path, op in operations(doc):
        assert "default" in op["responses"], (method, path)


async def test_fastapis_own_validation_error_schema_is_not_documented(
    client: httpx.AsyncClient,
) -> None:
    """The service never sends `HTTPValidationError`: a 422 is a problem with `errors`."""
    doc = (await client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert set(schemas["Problem"]["required"]) == {"type", "title", "status", "detail", "code"}
    assert "HTTPValidationError" not in str(doc)


async def test_a_422_matches_the_documented_problem(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    r = await client.put("/v1/stock/sku-1/dc", json={"on_hand": "5"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    for name in doc["components"]["schemas"]["Problem"]["required"]:
        assert name in body, name
