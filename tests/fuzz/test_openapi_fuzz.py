"""schemathesis against /openapi.json of a real `omnistock serve` process: every generated
request (valid and invalid bodies, path and query values, headers, content types) gets an
answer that is never a 5xx, every 4xx is an RFC 9457 problem, and every answer matches what the
document declares for it.

Why a real process and a document built in-process: schemathesis' lazy fixture loader does not
work with this pytest, and the per-operation tests are generated at import, before any fixture
runs. The document is built from the same create_app (no store needed) and a test checks the
served copy is identical; the requests go to the real process over HTTP.

A bounded run by default (CI, derandomized: about 1000 cases in 15 s, most of them schemathesis'
deterministic coverage phase); `make fuzz` (OMNISTOCK_FUZZ_EXAMPLES=60) for about 1800. The
terminal summary prints the case count and the 5xx count.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import BaseModel, ValidationError
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.api.main import create_app
from app.domain.models import StockEventIn, SupplyLineIn
from app.settings import Settings
from tests.conftest import ServiceProcess
from tests.fuzz.conftest import ADMIN_KEY
from tests.fuzz.stats import STATS

# Random cases per operation in the fuzzing phase (17 operations), on top of the coverage phase.
EXAMPLES = int(os.environ.get("OMNISTOCK_FUZZ_EXAMPLES", "12"))
# The service's JSON log lines, and uvicorn's plain ones.
ERROR_LINE = re.compile(r'"level":\s*"(error|critical)"|^(ERROR|CRITICAL):', re.IGNORECASE)
PROBLEM_FIELDS = {"type": str, "title": str, "status": int, "detail": str, "code": str}


def _document() -> dict[str, Any]:
    """The OpenAPI document the service serves, built the way the service builds it (no store
    needed); `test_served_document_is_the_fuzzed_one` checks the served copy is the same."""
    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0"))
    return app.openapi()


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=schemathesis.Config.from_dict(
        {"auth": {"openapi": {"HTTPBearer": {"bearer": ADMIN_KEY}}}}
    ),
)


def problem_details(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every 4xx is `application/problem+json` with type, title, status, detail and code."""
    if not 400 <= response.status_code < 500:
        return
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/problem+json"), (
        f"{response.status_code} with content-type {content_type!r}"
    )
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    for name, kind in PROBLEM_FIELDS.items():
        assert isinstance(body.get(name), kind), f"problem field {name!r}: {body}"
    assert body["status"] == response.status_code, body


def rejected_one_by_one(field: str, model: type[BaseModel]) -> Any:
    """POST /v1/stock/events and POST /v1/supply/batch check each item on its own (a bad one
    must not fail the batch), so an item that violates its documented model (StockEventIn,
    SupplyLineIn) is answered 200 with that item `rejected`, not 422: this replaces
    schemathesis' negative_data_rejection there."""

    def check(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
        if response.status_code != 200 or not isinstance(case.body, dict):
            return
        items = case.body.get(field)
        results = json.loads(response.content)["results"]
        assert isinstance(items, list) and len(results) == len(items), results
        for item, result in zip(items, results, strict=True):
            try:
                model.model_validate(item, strict=True)
            except ValidationError:
                assert result["status"] == "rejected", (item, result)

    check.__name__ = f"invalid_{field}_are_rejected_one_by_one"
    return check


CHECKS = [
    not_a_server_error,
    problem_details,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
PER_ITEM_CHECKS = {
    "/v1/stock/events": [
        *(c for c in CHECKS if c is not negative_data_rejection),
        rejected_one_by_one("events", StockEventIn),
    ],
    "/v1/supply/batch": [
        *(c for c in CHECKS if c is not negative_data_rejection),
        rejected_one_by_one("lines", SupplyLineIn),
    ],
}


@pytest.mark.timeout(max(120, EXAMPLES))  # per operation; a long `make fuzz` takes its time
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=os.environ.get("CI") == "true",
    suppress_health_check=list(HealthCheck),
)
def test_generated_requests_get_declared_answers_never_a_5xx(
    fuzz_service: ServiceProcess, case: schemathesis.Case
) -> None:
    # An event stream stays open: read what arrives in a short while, then move on.
    timeout = 0.5 if case.path == "/v1/events" else 10
    response = case.call(base_url=fuzz_service.base_url, timeout=timeout)
    STATS["cases"] += 1
    STATS[f"{response.status_code // 100}xx"] += 1
    STATS[f"status:{response.status_code}"] += 1
    STATS[f"phase:{case.meta.phase.name.value if case.meta else 'explicit'}"] += 1
    if 400 <= response.status_code < 500:
        content_type = (response.headers.get("content-type") or [""])[0]
        if not content_type.startswith("application/problem+json"):
            STATS["not_problem"] += 1
    per_item = PER_ITEM_CHECKS.get(case.path) if case.method == "POST" else None
    case.validate_response(response, checks=per_item or CHECKS)


def test_served_document_is_the_fuzzed_one(fuzz_service: ServiceProcess) -> None:
    served = httpx.get(f"{fuzz_service.base_url}/openapi.json").json()
    assert served == DOCUMENT


def test_fuzzed_service_logged_no_traceback_and_no_error(fuzz_service: ServiceProcess) -> None:
    log = fuzz_service.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-5000:]
    errors = [line for line in log.splitlines() if ERROR_LINE.search(line)]
    assert not errors, errors[:5]


def test_every_operation_was_fuzzed(request: pytest.FixtureRequest) -> None:
    """The run above really ran: one test per operation, each with generated cases (under
    `--dist loadfile` xdist once ran 3 of the module's items and nothing failed)."""
    name = test_generated_requests_get_declared_answers_never_a_5xx.__name__
    fuzzed = [item for item in request.session.items if item.name.startswith(name)]
    if len(fuzzed) < 10:
        pytest.skip("only part of the fuzz module was selected")
    assert STATS["cases"] >= 20 * len(fuzzed), (len(fuzzed), dict(STATS))
