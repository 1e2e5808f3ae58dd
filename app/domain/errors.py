"""Domain errors. The HTTP layer maps each to an RFC 9457 problem with a stable `code`."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidRequest(DomainError):
    status = 422
    code = "invalid_request"
    title = "Invalid request"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class HoldNotFound(NotFound):
    code = "hold_not_found"
    title = "Hold not found"


class LocationNotFound(NotFound):
    code = "location_not_found"
    title = "Location not found"


class ChannelNotFound(NotFound):
    code = "channel_not_found"
    title = "Channel not found"


class KitNotFound(NotFound):
    code = "kit_not_found"
    title = "Kit not found"


class WebhookNotFound(NotFound):
    code = "webhook_not_found"
    title = "Webhook subscription not found"


class InsufficientStock(DomainError):
    status = 409
    code = "insufficient_stock"
    title = "Insufficient stock"


class InvalidTransition(DomainError):
    status = 409
    code = "invalid_transition"
    title = "Invalid hold transition"


class IdempotencyKeyReused(DomainError):
    status = 422
    code = "idempotency_key_reused"
    title = "Idempotency key reused with a different request"


class IdempotencyKeyInUse(DomainError):
    status = 409
    code = "idempotency_key_in_use"
    title = "A request with this idempotency key is still in progress"


class StoreUnavailable(DomainError):
    status = 503
    code = "store_unavailable"
    title = "Store unavailable"


class Unauthorized(DomainError):
    """No API key, or one the service does not know (answered with `WWW-Authenticate`)."""

    status = 401
    code = "unauthorized"
    title = "Unauthorized"

    def __init__(self, detail: str, error: str | None = None) -> None:
        super().__init__(detail)
        # RFC 6750: a bare challenge when no key came, `error="invalid_token"` for a bad one,
        # `error="invalid_request"` for a malformed request (several Authorization headers).
        self.challenge = 'Bearer realm="omnistock"' + (f', error="{error}"' if error else "")


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


# Every problem `code` the service can answer with, for the docs and the OpenAPI description.
PROBLEM_CODES: dict[str, tuple[int, str]] = {
    cls.code: (cls.status, cls.title)
    for cls in (
        InvalidRequest,
        NotFound,
        HoldNotFound,
        LocationNotFound,
        ChannelNotFound,
        WebhookNotFound,
        KitNotFound,
        InsufficientStock,
        InvalidTransition,
        IdempotencyKeyReused,
        IdempotencyKeyInUse,
        StoreUnavailable,
        Unauthorized,
        Forbidden,
    )
}
