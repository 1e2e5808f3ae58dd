"""RFC 9457 problem responses, produced in one place for every error."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from redis.exceptions import BusyLoadingError, ConnectionError, ResponseError, TimeoutError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from app.domain.errors import DomainError, Unauthorized
from app.store.cluster import CLUSTER_BUGS, CLUSTER_DOWN_ERRORS
from app.store.durable import ReplicasDidNotAcknowledge
from app.store.embedded import is_embedded
from app.store.persistence import refusal_detail

log = logging.getLogger("omnistock.api")

PROBLEM_JSON = "application/problem+json"
CLIENT_CLOSED_REQUEST = 499  # nginx's status for it; never sent, since no one is listening
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def store_unavailable(detail: str) -> Response:
    """503 for a store that is down, paused or too slow: the outcome of a mutating request is
    unknown, and a retry with the same Idempotency-Key is safe."""
    return problem(
        503,
        "store_unavailable",
        "Store unavailable",
        f"{detail}; retry with the same Idempotency-Key",
        {"Retry-After": "1"},
    )


def on_embedded_store(request: Request) -> bool:
    """Whether this process's store is the one `omnistock serve` runs under its data dir."""
    settings = request.app.state.services.settings
    return is_embedded(settings.redis_url, settings.data_dir)


def domain_problem(exc: DomainError) -> Response:
    headers = {"Retry-After": "1"} if exc.status == 503 else None
    if isinstance(exc, Unauthorized):
        headers = {"WWW-Authenticate": exc.challenge}
    return problem(exc.status, exc.code, exc.title, exc.detail, headers, **exc.extra)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only loc, msg and type: `input` and `ctx` may hold objects that are not JSON.
    return [
        {"loc": list(err.get("loc", ())), "msg": str(err.get("msg", "")), "type": err.get("type")}
        for err in exc.errors()
    ]


def install(app: FastAPI) -> None:
    async def on_domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        return domain_problem(exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return problem(
            422,
            "invalid_request",
            "Invalid request",
            "the request does not match the contract; see errors",
            errors=_validation_errors(exc),
        )

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if isinstance(exc.__cause__, ClientDisconnect):
            # FastAPI's 400 for a body the client stopped sending (it closed the connection):
            # nobody reads the answer; the access log says 499, "client closed request".
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        if exc.status_code == 400:
            # FastAPI's "error parsing the body" (e.g. bytes that are not UTF-8): a malformed
            # request like any other, so 422 invalid_request as the contract says.
            return problem(
                422,
                "invalid_request",
                "Invalid request",
                "the request body could not be parsed as JSON",
                errors=[{"loc": ["body"], "msg": str(exc.detail), "type": "json_invalid"}],
            )
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return problem(
            exc.status_code,
            code,
            str(exc.detail),
            str(exc.detail),
            dict(exc.headers) if exc.headers else None,
        )

    async def on_store_down(request: Request, exc: Exception) -> Response:
        log.warning("store unavailable: %s", exc)
        return store_unavailable("the stock store did not answer in time")

    async def on_replicas_behind(request: Request, exc: Exception) -> Response:
        log.warning("%s", exc)
        return store_unavailable(f"{exc}; the change may or may not survive a failover")

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500, "internal_error", "Internal error", "an unexpected error; it has been logged"
        )

    async def on_store_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ResponseError)
        detail = refusal_detail(exc, on_embedded_store(request))
        if detail is None:
            return await on_unexpected(request, exc)
        log.warning("store refuses writes: %s", exc)
        return store_unavailable(detail)

    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    # A cluster's outage errors too (the cluster client reports them as ConnectionError, but
    # a per-node call may raise redis-py's own): 503, never 500.
    down: tuple[type[Exception], ...] = (ConnectionError, TimeoutError, BusyLoadingError)
    for exc_type in (*down, *CLUSTER_DOWN_ERRORS):
        app.add_exception_handler(exc_type, on_store_down)
    app.add_exception_handler(ReplicasDidNotAcknowledge, on_replicas_behind)
    app.add_exception_handler(ResponseError, on_store_error)  # a full disk, a replica, OOM
    for exc_type in (*CLUSTER_BUGS, Exception):
        app.add_exception_handler(exc_type, on_unexpected)
