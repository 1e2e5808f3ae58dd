"""Service configuration, read from OMNISTOCK_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.logs import redact


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OMNISTOCK_", extra="ignore")

    # Store. Unset: `omnistock serve` runs its own private server under data_dir.
    redis_url: str | None = None
    redis_cluster: bool = False
    data_dir: Path = Path("./data")
    # Every store call is bounded: connect, reply and the wait for a pooled connection each
    # give up after redis_timeout_seconds; a request as a whole answers 503 store_unavailable
    # (with Retry-After) when it has not started its response within request_deadline_seconds.
    redis_timeout_seconds: float = Field(default=1.0, gt=0)
    request_deadline_seconds: float = Field(default=1.25, gt=0)
    redis_max_connections: int = Field(default=256, ge=1)
    # Durability beyond one store: a change is acknowledged only once this many replicas hold
    # it (WAIT), or with wait_aof once the primary's and that many replicas' append-only files
    # have it fsynced (WAITAOF); else 503 within the request deadline (app/store/durable.py).
    wait_replicas: int = Field(default=0, ge=0)
    wait_aof: bool = False
    # TLS to the store (a `rediss://` URL): the CA that signed the server's certificate, and
    # a client certificate and key when the server asks for one (`tls-auth-clients yes`).
    redis_ca_file: Path | None = None
    redis_cert_file: Path | None = None
    redis_key_file: Path | None = None

    # API keys and their scopes (see `omnistock keys new`). Unset: no authentication, and
    # `omnistock serve` binds only to loopback ("protected mode").
    api_keys_file: Path | None = None
    # Larger request bodies are refused with 413 before they are read.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    # Slow or silent clients: a connection must send complete request headers within
    # header_timeout_seconds, and may not pause mid-body longer than body_timeout_seconds.
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    body_timeout_seconds: float = Field(default=10.0, gt=0)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    # Log lines: one JSON object per line (for log shippers) or plain text for a terminal.
    log_format: Literal["json", "text"] = "json"

    # Holds.
    default_hold_ttl_seconds: int = Field(default=900, ge=1, le=7 * 86400)
    max_lines_per_hold: int = Field(default=100, ge=1, le=1000)
    # A multi-partition hold reserves every part as `pending` first; its home part can be
    # confirmed only this long after, and a part still pending then gets settled (confirmed
    # or rolled back, as its home part decided: app/domain/hold_parts.py).
    pending_ttl_seconds: int = Field(default=30, ge=1)
    # A pending part's lines keep counting this long past its deadline, so settling it never
    # needs units given away meanwhile (the reaper settles it within seconds of the deadline).
    pending_grace_seconds: int = Field(default=600, ge=0)

    # Finished holds (fulfilled, released, expired) stay readable this long.
    finished_hold_ttl_seconds: int = Field(default=7 * 86400, ge=1)

    # Idempotency records are kept at least this long (contract: >= 24 h).
    idempotency_ttl_seconds: int = Field(default=86400, ge=1)
    # A claim whose request never completed (crashed worker) may be retried after this.
    idempotency_lease_seconds: int = Field(default=5, ge=1)

    # Reaper: how often each worker looks for expired holds, and how many it expires per pass.
    reaper_interval_seconds: float = Field(default=1.0, gt=0)
    reaper_batch: int = Field(default=200, ge=1)
    reaper_enabled: bool = True

    # Incoming stock event ids are remembered this long (a POS replaying an older offline
    # batch than this would apply it again).
    event_dedupe_seconds: int = Field(default=7 * 86400, ge=60)
    max_events_per_batch: int = Field(default=1000, ge=1)

    # Outgoing event streams keep roughly this long (XADD MINID trimming).
    event_retention_seconds: int = Field(default=86400, ge=60)
    # Server-Sent Events: an idle stream gets a `: keep-alive` comment this often, and each
    # client's queue holds this many events; a client that falls further behind reads on
    # from the store instead of holding memory.
    sse_keepalive_seconds: float = Field(default=15.0, gt=0)
    sse_queue_size: int = Field(default=1000, ge=1)
    # On a cluster (app/events/source.py): events are delivered once every node's clock is
    # this far past them (covers clock skew between a primary and the replica promoted in
    # its place), and the reader polls the nodes this often (no blocking read spans slots).
    event_clock_margin_ms: int = Field(default=50, ge=0)
    event_poll_ms: int = Field(default=20, ge=1)

    # How often a worker re-reads locations/channels written by another worker.
    config_refresh_seconds: float = Field(default=0.5, gt=0)

    max_batch_skus: int = Field(default=1000, ge=1)

    # Webhooks (app/webhooks/). One worker of all processes delivers (a lease in the store).
    webhooks_enabled: bool = Field(
        default=True, description="Run the webhook deliverer in this process's workers."
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="A receiver must answer a delivery within this."
    )
    webhook_max_attempts: int = Field(
        default=8,
        ge=1,
        description="Attempts per delivery; a subscription is disabled after this many "
        "consecutive failures of one delivery.",
    )
    webhook_retry_initial_seconds: float = Field(
        default=2.0,
        gt=0,
        description="Wait after the first failed attempt; each later wait is 5 times the "
        "previous (2 s, 10 s, 50 s, ... about 4 h over 8 attempts by default).",
    )
    webhook_retry_max_seconds: float = Field(
        default=7200.0, gt=0, description="The longest wait between two attempts."
    )
    webhook_lease_seconds: float = Field(
        default=5.0,
        gt=0,
        description="The deliverer's lease: if its worker dies, another takes over within this.",
    )
    webhook_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often an idle subscription reads the log even without a wake-up "
        "from the process's event reader (which wakes it at once on new events).",
    )
    webhook_log_size: int = Field(
        default=100, ge=1, description="Delivery attempts kept per subscription."
    )


class SettingsError(ValueError):
    """A setting with a bad value; the message names it, in one line."""


def load_settings(**overrides: object) -> Settings:
    """Settings from OMNISTOCK_* and `overrides` (command-line flags), or SettingsError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """`OMNISTOCK_PORT='abc': Input should be a valid integer, ...`, one line for all errors."""
    parts = []
    for error in exc.errors():
        name = f"OMNISTOCK_{'_'.join(str(p) for p in error['loc']).upper()}"
        value = redact(repr(error["input"])) if error["type"] != "missing" else "(unset)"
        parts.append(f"{name}={value}: {error['msg']}")
    return "bad configuration: " + "; ".join(parts)
