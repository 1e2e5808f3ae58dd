"""Domain errors. The HTTP layer maps each to an RFC 9457 problem with a stable `code`."""

from __future__ import annotations

from typing import Any

# Every problem `code` the service can answer with, for the docs and the OpenAPI description:
# each subclass of DomainError enters itself as it is defined (in this order).
PROBLEM_CODES: dict[str, tuple[int, str]] = {}


class DomainError(Exception):
    """A subclass names its problem in its header: `class X(DomainError, status=409,
    code="...", title="...")`; a subclass of a subclass keeps the status it does not give."""

    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init_subclass__(
        cls, *, status: int | None = None, code: str | None = None, title: str | None = None
    ) -> None:
        super().__init_subclass__()
        cls.status = status if status is not None else cls.status
        cls.code = code if code is not None else cls.code
        cls.title = title if title is not None else cls.title
        PROBLEM_CODES[cls.code] = (cls.status, cls.title)

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidRequest(DomainError, status=422, code="invalid_request", title="Invalid request"): ...


class NotFound(DomainError, status=404, code="not_found", title="Not found"): ...


class HoldNotFound(NotFound, code="hold_not_found", title="Hold not found"): ...


class LocationNotFound(NotFound, code="location_not_found", title="Location not found"): ...


class ChannelNotFound(NotFound, code="channel_not_found", title="Channel not found"): ...


class WebhookNotFound(
    NotFound, code="webhook_not_found", title="Webhook subscription not found"
): ...


class SupplyNotFound(NotFound, code="supply_not_found", title="Supply line not found"): ...


class PromiseNotReceived(
    DomainError, status=409, code="promise_not_received", title="Promised units not received yet"
): ...


class KitNotFound(NotFound, code="kit_not_found", title="Kit not found"): ...


class InsufficientStock(
    DomainError, status=409, code="insufficient_stock", title="Insufficient stock"
): ...


class InvalidTransition(
    DomainError, status=409, code="invalid_transition", title="Invalid hold transition"
):
    @classmethod
    def expired(cls, hold_id: str) -> InvalidTransition:
        """The hold has lapsed (its script found it past expires_at)."""
        return cls(f"hold {hold_id} has expired", hold_status="expired", hold_id=hold_id)

    @classmethod
    def refused(cls, hold_id: str, status: str, doing: str) -> InvalidTransition:
        """The hold is `status`, so it cannot `doing`."""
        return cls(
            f"hold {hold_id} is {status}; cannot {doing}", hold_status=status, hold_id=hold_id
        )


class UnknownHoldLine(
    DomainError, status=422, code="unknown_hold_line", title="The hold has no such line"
): ...


class LineQuantityExceeded(
    DomainError,
    status=409,
    code="line_quantity_exceeded",
    title="More units than the hold line has open",
): ...


class IdempotencyKeyReused(
    DomainError,
    status=422,
    code="idempotency_key_reused",
    title="Idempotency key reused with a different request",
): ...


class IdempotencyKeyInUse(
    DomainError,
    status=409,
    code="idempotency_key_in_use",
    title="A request with this idempotency key is still in progress",
): ...


class StoreUnavailable(
    DomainError, status=503, code="store_unavailable", title="Store unavailable"
): ...


class Unauthorized(DomainError, status=401, code="unauthorized", title="Unauthorized"):
    """No API key, or one the service does not know (answered with `WWW-Authenticate`)."""

    def __init__(self, detail: str, error: str | None = None) -> None:
        super().__init__(detail)
        # RFC 6750: a bare challenge when no key came, `error="invalid_token"` for a bad one,
        # `error="invalid_request"` for a malformed request (several Authorization headers).
        self.challenge = 'Bearer realm="omnistock"' + (f', error="{error}"' if error else "")


class Forbidden(DomainError, status=403, code="forbidden", title="Forbidden"): ...
