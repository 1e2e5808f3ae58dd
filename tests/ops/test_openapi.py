"""/openapi.json: every operation has request and response examples and documents every
problem `code` it can answer with; the examples are valid and the service accepts them."""

from __future__ import annotations

from typing import Any

import httpx
from jsonschema import Draft202012Validator

from app.api.openapi_examples import GLOBAL_CODES
from app.domain.errors import PROBLEM_CODES
from tests.ops.conftest import operations

PROBLEM_JSON = "application/problem+json"


def validator(spec: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for `schema`; its `#/components/...` refs resolve into the document."""
    return Draft202012Validator({**schema, "components": spec["components"]})


def examples(media: dict[str, Any]) -> list[Any]:
    found = [e["value"] for e in media.get("examples", {}).values()]
    if "example" in media:
        found.append(media["example"])
    return found


def problem_codes_of(op: dict[str, Any]) -> dict[str, int]:
    """code -> the status it is documented under, from the problem examples."""
    out = {}
    for status, response in op["responses"].items():
        media = response.get("content", {}).get(PROBLEM_JSON)
        if media and status != "default":
            for value in examples(media):
                out[value["code"]] = int(status)
    return out


def test_every_operation_has_a_success_example(spec: dict[str, Any]) -> None:
    missing = []
    for name, op in operations(spec):
        success = [s for s in op["responses"] if s.startswith("2")]
        if success == ["204"]:
            continue  # no content, nothing to show
        contents = [op["responses"][s].get("content", {}) for s in success]
        if not any(examples(media) for content in contents for media in content.values()):
            missing.append(name)
    assert missing == []


def test_every_operation_with_a_body_has_request_examples(spec: dict[str, Any]) -> None:
    missing = [
        name
        for name, op in operations(spec)
        if "requestBody" in op and not examples(op["requestBody"]["content"]["application/json"])
    ]
    assert missing == []


def test_every_error_response_carries_an_example_for_each_of_its_codes(
    spec: dict[str, Any],
) -> None:
    for name, op in operations(spec):
        for status, response in op["responses"].items():
            if status[0] not in "45":
                continue
            if PROBLEM_JSON not in response["content"]:  # /readyz's 503 is its own document
                assert all(examples(m) for m in response["content"].values()), (name, status)
                continue
            values = examples(response["content"][PROBLEM_JSON])
            assert values, (name, status)
            for value in values:
                assert value["status"] == int(status), (name, value)
                assert PROBLEM_CODES[value["code"]][0] == int(status), (name, value)
                assert f"`{value['code']}`" in response["description"], (name, value)


def test_every_problem_code_is_documented_on_some_operation(spec: dict[str, Any]) -> None:
    documented = {code for _, op in operations(spec) for code in problem_codes_of(op)}
    assert documented | set(GLOBAL_CODES) == set(PROBLEM_CODES)


def test_the_description_lists_every_problem_code(spec: dict[str, Any]) -> None:
    for code, (status, _) in PROBLEM_CODES.items():
        assert f"| `{code}` | {status} |" in spec["info"]["description"]


def test_every_operation_with_input_documents_invalid_request(spec: dict[str, Any]) -> None:
    for name, op in operations(spec):
        if op.get("parameters") or op.get("requestBody"):
            assert "invalid_request" in problem_codes_of(op), name


def test_every_operation_that_needs_a_key_documents_401_and_403(spec: dict[str, Any]) -> None:
    secured = [(name, op) for name, op in operations(spec) if op.get("security")]
    for name, op in secured:
        codes = problem_codes_of(op)
        assert codes.get("unauthorized") == 401, name
        assert codes.get("forbidden") == 403, name


def test_every_store_operation_documents_store_unavailable(spec: dict[str, Any]) -> None:
    for name, op in operations(spec):
        if name.split(" ")[1].startswith("/v1/"):
            assert problem_codes_of(op).get("store_unavailable") == 503, name


def test_mutating_operations_document_the_idempotency_key_and_its_codes(
    spec: dict[str, Any],
) -> None:
    mutating = [
        (name, op)
        for name, op in operations(spec)
        if name.startswith(("PUT", "POST", "PATCH", "DELETE"))
        and name not in ("POST /v1/availability/query", "POST /v1/availability/nearby")
    ]
    assert len(mutating) >= 13
    for name, op in mutating:
        headers = {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}
        assert "Idempotency-Key" in headers, name
        codes = problem_codes_of(op)
        assert codes.get("idempotency_key_reused") == 422, name
        assert codes.get("idempotency_key_in_use") == 409, name


def test_hold_operations_document_their_specific_codes(spec: dict[str, Any]) -> None:
    ops = dict(operations(spec))
    assert {"insufficient_stock", "channel_not_found"} <= set(
        problem_codes_of(ops["POST /v1/holds"])
    )
    for action in ("commit", "fulfil", "release", "extend"):
        codes = problem_codes_of(ops[f"POST /v1/holds/{{hold_id}}/{action}"])
        assert {"hold_not_found", "invalid_transition"} <= set(codes), action


def test_request_examples_match_their_schema(spec: dict[str, Any]) -> None:
    for name, op in operations(spec):
        if "requestBody" in op:
            media = op["requestBody"]["content"]["application/json"]
            check = validator(spec, media["schema"])
            for value in examples(media):
                errors = [e.message for e in check.iter_errors(value)]
                assert errors == [], (name, value)


def test_response_examples_match_their_schema(spec: dict[str, Any]) -> None:
    checked = 0
    for name, op in operations(spec):
        for status, response in op["responses"].items():
            for media in response.get("content", {}).values():
                if "schema" not in media or media["schema"] == {}:
                    continue
                check = validator(spec, media["schema"])
                for value in examples(media):
                    errors = [e.message for e in check.iter_errors(value)]
                    assert errors == [], (name, status, value)
                    checked += 1
    assert checked > 40


async def test_the_service_accepts_every_request_example(
    client: httpx.AsyncClient, spec: dict[str, Any]
) -> None:
    """Each request example, sent as documented, succeeds (in a store set up for them)."""
    for loc, body in (
        ("dc-north", {"type": "dc", "ship": True, "priority": 1}),
        ("store-12", {"type": "store", "pickup": True, "priority": 10}),
    ):
        assert (await client.put(f"/v1/locations/{loc}", json=body)).status_code == 200
    await client.put("/v1/channels/web", json={"locations": ["dc-north", "store-12"]})
    await client.put("/v1/stock/SKU-1/store-12", json={"on_hand": 20})
    for sku in ("SKU-2", "SKU-3"):  # the components of the kit example
        await client.put(f"/v1/stock/{sku}/store-12", json={"on_hand": 4})
    two = {"lines": [{"sku": "SKU-1", "quantity": 2}]}  # a partial change leaves it open
    hold = await client.post("/v1/holds", json=two)
    committed = (await client.post("/v1/holds", json=two)).json()["id"]
    assert (await client.post(f"/v1/holds/{committed}/commit")).status_code == 200
    params = {
        "sku": "SKU-1",
        "location": "dc-north",
        "channel": "web",
        "hold_id": hold.json()["id"],
        "supply_id": "PO-4471",
        "sub_id": (await client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/"})).json()[
            "id"
        ],
    }
    sent = 0
    for name, op in operations(spec):
        if "requestBody" not in op:
            continue
        method, template = name.split(" ")
        for value in examples(op["requestBody"]["content"]["application/json"]):
            if name == "POST /v1/holds/{hold_id}/fulfil":  # fulfils a committed hold
                r = await client.request(method, f"/v1/holds/{committed}/fulfil", json=value)
            else:
                r = await client.request(method, template.format(**params), json=value)
            assert r.is_success, (name, value, r.text)
            sent += 1
    assert sent >= 10
