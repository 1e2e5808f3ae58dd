"""The OpenAPI document says what the service really answers on errors.

FastAPI documents a 422 as `application/json` with its own `HTTPValidationError` body, and
other errors without any body; the service answers every error with an RFC 9457 problem
(`application/problem+json`, see problems.py). This rewrites the generated document once:
every 4xx/5xx response a route declares gets the `Problem` schema, and every operation gets a
`default` problem response for the statuses no route declares (405, 413, 503 ...), so a client
generated from the document, and the schemathesis run in tests/fuzz, read errors right.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from app.api.problems import PROBLEM_JSON
from app.domain.models import StockEventIn, SupplyLineIn

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem. `code` is stable and machine-readable; problems may "
    "carry more fields (`errors` for invalid requests, `lines` for insufficient stock, ...).",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ValidationIssue"}},
    },
}
# One entry of an invalid_request problem's `errors`: where and what; `type` is pydantic's
# error type when pydantic found it (checks of the service's own give loc and msg only).
VALIDATION_ISSUE_SCHEMA: dict[str, Any] = {
    "title": "ValidationIssue",
    "type": "object",
    "required": ["loc", "msg"],
    "properties": {
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "msg": {"type": "string"},
        "type": {"type": "string"},
    },
}
# Models a route validates by hand and the document still names (`WithJsonSchema` refs).
REFERENCED_MODELS: tuple[type[BaseModel], ...] = (StockEventIn, SupplyLineIn)
_REF_TEMPLATE = "#/components/schemas/{model}"
_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
_FASTAPI_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def problem_document(document: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a generated document in place (idempotent) and return it."""
    for operations in document.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if status[0] in "45":
                    response["content"] = dict(_PROBLEM_CONTENT)
            responses.setdefault(
                "default",
                {"description": "Any other error, as a problem", "content": dict(_PROBLEM_CONTENT)},
            )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["ValidationIssue"] = VALIDATION_ISSUE_SCHEMA
    for model in REFERENCED_MODELS:
        schema = model.model_json_schema(ref_template=_REF_TEMPLATE)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    for name in _FASTAPI_ERROR_SCHEMAS:
        schemas.pop(name, None)
    return document


def install(app: FastAPI) -> None:
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problem_document(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
