"""Service configuration, read from OMNISTOCK_* environment variables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.logs import redact

_ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"
)


# The bounds most settings share.
Seconds = Annotated[float, Field(gt=0)]
AtLeastOne = Annotated[int, Field(ge=1)]
AtLeastZero = Annotated[int, Field(ge=0)]


class Settings(BaseSettings):
    """Each setting's docstring is its description: `omnistock config reference` and README.md's
    table show it (`reference_table`)."""

    model_config = SettingsConfigDict(
        env_prefix="OMNISTOCK_", extra="ignore", use_attribute_docstrings=True
    )

    # Store. Unset: `omnistock serve` runs its own private server under data_dir.
    redis_url: str | None = None
    """unset: run a private embedded store under `OMNISTOCK_DATA_DIR`; set: use that server
    (`redis://`, `rediss://`, `unix://`)"""
    redis_cluster: bool = False
    """`1`: the URL is a Redis/Valkey cluster; `OMNISTOCK_REDIS_URL` may then name several seed
    nodes, comma-separated (see "Running on a cluster")"""
    data_dir: Path = Path("./data")
    """the embedded store's append-only files (docs/operations.md: backup)"""
    # Every store call is bounded: connect, reply and the wait for a pooled connection each
    # give up after redis_timeout_seconds; a request as a whole answers 503 store_unavailable
    # (with Retry-After) when it has not started its response within request_deadline_seconds.
    redis_timeout_seconds: Seconds = 1.0
    """each store call (connect, reply, wait for a pooled connection) gives up after this"""
    request_deadline_seconds: Seconds = 1.25
    """a request without a response by then answers 503 `store_unavailable` (see
    docs/reliability.md)"""
    redis_max_connections: AtLeastOne = 256
    """store connections per worker (the pool's size)"""
    # Durability beyond one store: a change is acknowledged only once this many replicas hold
    # it (WAIT), or with wait_aof once the primary's and that many replicas' append-only files
    # have it fsynced (WAITAOF); else 503 within the request deadline (app/store/durable.py).
    wait_replicas: AtLeastZero = 0
    """N ≥ 1: a change is acknowledged only once N replicas hold it (`WAIT`), else 503
    `store_unavailable` within the deadline; needs `OMNISTOCK_REDIS_URL` (docs/reliability.md)"""
    wait_aof: bool = False
    """`1`: wait with `WAITAOF 1 N` instead: fsynced to the primary's and N replicas' append-only
    files (Redis ≥ 7.2, Valkey ≥ 8; refused at start otherwise)"""
    # TLS to the store (a `rediss://` URL): the CA that signed the server's certificate, and
    # a client certificate and key when the server asks for one (`tls-auth-clients yes`).
    redis_ca_file: Path | None = None
    """TLS to the store (`rediss://`): the CA that signed the server's certificate"""
    redis_cert_file: Path | None = None
    """TLS to the store: a client certificate, when the server asks for one"""
    redis_key_file: Path | None = None
    """TLS to the store: the client certificate's key"""

    # API keys and their scopes (see `omnistock keys new`). Unset: no authentication, and
    # `omnistock serve` binds only to loopback ("protected mode").
    api_keys_file: Path | None = None
    """API keys and scopes (see Security; re-read on change and SIGHUP); unset: no auth, loopback
    only"""
    # Larger request bodies are refused with 413 before they are read.
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1024 * 1024
    """larger request bodies get 413 `payload_too_large`"""

    # Slow or silent clients: a connection must send complete request headers within
    # header_timeout_seconds, and may not pause mid-body longer than body_timeout_seconds.
    header_timeout_seconds: Seconds = 10.0
    """a connection that has not sent complete request headers by then is closed (408)"""
    body_timeout_seconds: Seconds = 10.0
    """a request body that pauses this long is cut"""

    host: str = "127.0.0.1"
    """where to listen (anything but loopback needs `OMNISTOCK_API_KEYS_FILE`)"""
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    """the port to listen on"""
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    """worker processes sharing the one store"""
    # Log lines: one JSON object per line (for log shippers) or plain text for a terminal.
    log_format: Literal["json", "text"] = "json"
    """`json`: one object per line; `text` for a terminal"""

    # Holds.
    default_hold_ttl_seconds: Annotated[int, Field(ge=1, le=7 * 86400)] = 900
    """hold TTL when a request gives none"""
    max_lines_per_hold: Annotated[int, Field(ge=1, le=1000)] = 100
    """lines one hold may have"""
    # A multi-partition hold reserves every part as `pending` first; its home part can be
    # confirmed only this long after, and a part still pending then gets settled (confirmed
    # or rolled back, as its home part decided: app/domain/hold_parts.py).
    pending_ttl_seconds: AtLeastOne = 30
    """a multi-partition hold's parts stay `pending` this long before they are settled"""
    # A pending part's lines keep counting this long past its deadline, so settling it never
    # needs units given away meanwhile (the reaper settles it within seconds of the deadline).
    pending_grace_seconds: AtLeastZero = 600
    """a pending part's lines keep counting this long past its deadline"""

    # Finished holds (fulfilled, released, expired) stay readable this long.
    finished_hold_ttl_seconds: AtLeastOne = 7 * 86400
    """fulfilled, released and expired holds stay readable this long"""

    # Idempotency records are kept at least this long (contract: >= 24 h).
    idempotency_ttl_seconds: AtLeastOne = 86400
    """how long Idempotency-Key responses are kept"""
    # A claim whose request never completed (crashed worker) may be retried after this.
    idempotency_lease_seconds: AtLeastOne = 5
    """a claimed Idempotency-Key whose request never completed (crashed worker) may be retried after
    this"""

    # Reaper: how often each worker looks for expired holds, and how many it expires per pass.
    reaper_interval_seconds: Seconds = 1.0
    """how often each worker looks for expired holds"""
    reaper_batch: AtLeastOne = 200
    """expired holds released per reaper pass"""
    reaper_enabled: bool = True
    """`0`: this service expires no holds (another one does)"""

    # Incoming stock event ids are remembered this long (a POS replaying an older offline
    # batch than this would apply it again).
    event_dedupe_seconds: Annotated[int, Field(ge=60)] = 7 * 86400
    """how long incoming stock events are remembered by (location, id)"""

    # Outgoing event streams keep roughly this long (XADD MINID trimming).
    event_retention_seconds: Annotated[int, Field(ge=60)] = 86400
    """how long outgoing events are kept"""
    # Server-Sent Events: an idle stream gets a `: keep-alive` comment this often, and each
    # client's queue holds this many events; a client that falls further behind reads on
    # from the store instead of holding memory.
    sse_keepalive_seconds: Seconds = 15.0
    """an idle event stream gets a `: keep-alive` comment this often"""
    sse_queue_size: AtLeastOne = 1000
    """events queued per stream client; one further behind reads on from the store"""
    # On a cluster (app/events/source.py): events are delivered once every node's clock is
    # this far past them (covers clock skew between a primary and the replica promoted in
    # its place), and the reader polls the nodes this often (no blocking read spans slots).
    event_clock_margin_ms: AtLeastZero = 50
    """cluster only: events are delivered once every primary's clock is this far past them (clock
    skew across a failover)"""
    event_poll_ms: AtLeastOne = 20
    """cluster only: how often the event reader polls the primaries (backing off to 8 times while
    idle)"""

    # How often a worker re-reads locations/channels written by another worker.
    config_refresh_seconds: Seconds = 0.5
    """how often a worker re-reads locations and channels written by another worker"""

    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    """browsers on these origins may call the API (CORS): comma-separated `scheme://host[:port]`, or
    `*` alone for any origin; empty: no CORS headers at all"""

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(o.strip() for o in value.split(",") if o.strip())
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        if "*" in origins and len(origins) > 1:
            raise ValueError("`*` (any origin) stands alone")
        for origin in origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                # A browser sends exactly scheme://host[:port]: a path or a trailing slash
                # would never match, silently.
                raise ValueError(f"{origin!r} is not an origin like https://shop.example.com")
        return origins

    # Webhooks (app/webhooks/). One worker of all processes delivers (a lease in the store).
    webhooks_enabled: bool = True
    """Run the webhook deliverer in this process's workers."""
    webhook_timeout_seconds: Seconds = 10.0
    """A receiver must answer a delivery within this."""
    webhook_max_attempts: AtLeastOne = 8
    """Attempts per delivery; a subscription is disabled after this many consecutive failures of one
    delivery."""
    webhook_retry_initial_seconds: Seconds = 2.0
    """Wait after the first failed attempt; each later wait is 5 times the previous
    (2 s, 10 s, 50 s, ... about 4 h over 8 attempts by default)."""
    webhook_retry_max_seconds: Seconds = 7200.0
    """The longest wait between two attempts."""
    webhook_lease_seconds: Seconds = 5.0
    """The deliverer's lease: if its worker dies, another takes over within this."""
    webhook_poll_seconds: Seconds = 1.0
    """How often an idle subscription reads the log even without a wake-up from the process's event
    reader (which wakes it at once on new events)."""
    webhook_log_size: AtLeastOne = 100
    """Delivery attempts kept per subscription."""


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
        name = env_name("_".join(str(p) for p in error["loc"]))
        value = redact(repr(error["input"])) if error["type"] != "missing" else "(unset)"
        parts.append(f"{name}={value}: {error['msg']}")
    return "bad configuration: " + "; ".join(parts)


def env_name(field: str) -> str:
    return f"OMNISTOCK_{field.upper()}"


def default_text(value: object) -> str:
    """A default as one would set it in the environment: `0`/`1`, `./data`, `unset`."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`1`" if value else "`0`"
    if isinstance(value, Path) and not value.is_absolute():
        return f"`./{value.as_posix()}`"
    return f"`{value}`"


def reference_table() -> str:
    """The Markdown table of every setting (README.md "Configuration"; `omnistock config
    reference`), from the fields themselves: one source, a test keeps the README in step."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        if not field.description:
            raise ValueError(f"setting {name} has no description")
        description = " ".join(field.description.split())  # a docstring's lines, joined
        lines.append(f"| `{env_name(name)}` | {default_text(field.default)} | {description} |")
    return "\n".join(lines) + "\n"
