"""Structured request logs: one line per request, a request id echoed back, no secrets."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.api import request_log
from app.logs import (
    REQUEST_ID,
    JsonFormatter,
    TextFormatter,
    _lone_json_handler,
    _timestamp,
    info_record,
    log_info,
    redact,
)
from app.store.embedded import free_port
from tests.conftest import bare_store

ACCESS = "omnistock.access"


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS]


async def test_a_valid_x_request_id_is_echoed_back(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": "checkout-7f3a:retry-2"})
    assert r.headers["x-request-id"] == "checkout-7f3a:retry-2"


async def test_a_request_without_x_request_id_gets_a_new_one_each_time(
    client: httpx.AsyncClient,
) -> None:
    first = (await client.get("/healthz")).headers["x-request-id"]
    second = (await client.get("/healthz")).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


@pytest.mark.parametrize(
    "bad",
    ["x" * 129, "has space", "tab\there", "", "naïve-ü"],
    ids=["129-chars", "space", "tab", "empty", "non-ascii"],
)
async def test_an_unusable_x_request_id_is_replaced_by_a_generated_one(
    client: httpx.AsyncClient, bad: str
) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": bad.encode()})  # type: ignore[dict-item,arg-type]
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])


async def test_a_request_id_of_128_visible_characters_is_kept(client: httpx.AsyncClient) -> None:
    rid = "A" * 64 + "~!#$%&'*+-.^_`|" + "z" * 49
    assert len(rid) == 128
    r = await client.get("/healthz", headers={"X-Request-ID": rid})
    assert r.headers["x-request-id"] == rid


async def test_every_request_logs_exactly_one_line_with_route_template_status_and_timing(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    r = await client.get("/v1/holds/h-does-not-exist", headers={"X-Request-ID": "req-1"})
    assert r.status_code == 404
    (record,) = access_records(caplog)
    fields: dict[str, Any] = record.fields  # type: ignore[attr-defined]
    assert fields["method"] == "GET"
    assert fields["route"] == "/v1/holds/{hold_id}"
    assert fields["status"] == 404
    assert isinstance(fields["duration_ms"], float) and fields["duration_ms"] >= 0
    assert fields["client"] == "127.0.0.1"
    assert "h-does-not-exist" not in record.getMessage()


async def test_the_log_line_carries_the_request_id_the_client_sent(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    await client.get("/healthz", headers={"X-Request-ID": "trace-abc"})
    (record,) = access_records(caplog)
    doc = json.loads(_format_in_request(record, "trace-abc"))
    assert doc["request_id"] == "trace-abc"
    assert (doc["method"], doc["route"], doc["status"]) == ("GET", "/healthz", 200)


def test_a_lean_access_record_is_the_record_logger_info_makes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As `omnistock serve` logs (no thread or process names), the access log's own record
    has every attribute, with the same values, of the one `Logger.info` would make."""
    for flag in ("logThreads", "logProcesses", "logMultiprocessing", "logAsyncioTasks"):
        monkeypatch.setattr(logging, flag, False, raising=False)
    logger = logging.getLogger(ACCESS)
    fields = {"method": "GET", "status": 200}
    lean = info_record(logger, "%s %d", ("GET", 200), fields)
    standard = logger.makeRecord(
        ACCESS, logging.INFO, "(unknown file)", 0, "%s %d", ("GET", 200), None,
        "(unknown function)", {"fields": fields},
    )  # fmt: skip
    timing = ("created", "msecs", "relativeCreated")
    assert {k: v for k, v in vars(lean).items() if k not in timing} == {
        k: v for k, v in vars(standard).items() if k not in timing
    }
    assert abs(lean.created - standard.created) < 1
    assert 0 <= lean.msecs < 1000 and lean.relativeCreated > 0
    assert lean.getMessage() == "GET 200"


def _format_in_request(record: logging.LogRecord, request_id: str) -> str:
    """Format as the handler did: inside the request, where REQUEST_ID is set."""
    token = REQUEST_ID.set(request_id)
    try:
        return JsonFormatter().format(record)
    finally:
        REQUEST_ID.reset(token)


def test_json_formatter_writes_one_json_object_per_line_with_level_and_logger() -> None:
    record = logging.LogRecord(
        "omnistock.store", logging.WARNING, __file__, 1, "down: %s", ("x",), None
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    doc = json.loads(line)
    assert (doc["level"], doc["logger"], doc["msg"]) == ("warning", "omnistock.store", "down: x")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc["ts"])
    assert "request_id" not in doc


def test_text_formatter_appends_the_request_id() -> None:
    record = logging.LogRecord(ACCESS, logging.INFO, __file__, 1, "GET /healthz 200", (), None)
    token = REQUEST_ID.set("rid-9")
    try:
        line = TextFormatter().format(record)
    finally:
        REQUEST_ID.reset(token)
    assert line.endswith("GET /healthz 200 request_id=rid-9")


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("connect redis://:hunter2@10.0.0.5:6379/0 failed", "hunter2"),
        ("rediss://svc-user:p%40ss@cache:6380", "p%40ss"),
        ("url=redis://omnistock:s3cr3t@redis", "s3cr3t"),
        ("Authorization: Bearer osk_AbC-123_xyz=", "osk_AbC-123_xyz="),
        ("authorization: basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        # not ASCII: the pattern's case folding matches U+017F (long s) as "s"
        ("Authorization: Ba\u017fic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ],
)
def test_redact_removes_credentials_from_urls_and_authorization_values(
    text: str, secret: str
) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert "***" in cleaned


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "GET /v1/stock/{sku} 200 1.2ms user@example.com ordered"
    assert redact(text) == text


def test_json_formatter_redacts_secrets_in_messages_and_tracebacks() -> None:
    try:
        raise ConnectionError("redis://:topsecret@127.0.0.1:1/0 refused")
    except ConnectionError:
        import sys

        record = logging.LogRecord(
            "omnistock",
            logging.ERROR,
            __file__,
            1,
            "store %s",
            ("redis://u:pw123@h",),
            sys.exc_info(),
        )
    line = JsonFormatter().format(record)
    assert "topsecret" not in line and "pw123" not in line
    assert "Traceback" in json.loads(line)["exc"]


@pytest.mark.slow
def test_service_writes_only_json_lines_one_per_request_and_no_secrets(
    start_service: Any, server_binary: str, tmp_path: Path
) -> None:
    """A real `omnistock serve` on a password-protected store, called with API-key-looking
    headers and query parameters: every log line is JSON, there is one access line per
    request with the echoed id, uvicorn's own access log is off, and no secret appears."""
    password = "store-pw-5b1e9c"
    port = free_port()
    store = bare_store(server_binary, port, tmp_path, "--requirepass", password)
    try:
        service = start_service(OMNISTOCK_REDIS_URL=f"redis://:{password}@127.0.0.1:{port}/0")
        api_key = "osk_not-a-real-key-3f9d1c77"
        with httpx.Client(base_url=service.base_url, timeout=5) as http:
            ids = []
            for path in ("/healthz", f"/v1/stock/sku-1?api_key={api_key}", "/v1/holds/nope"):
                r = http.get(
                    path,
                    headers={"Authorization": f"Bearer {api_key}", "X-Api-Key": api_key},
                )
                ids.append(r.headers["x-request-id"])
            store.kill()
            store.wait()
            r = http.get("/v1/stock/sku-1", headers={"X-Request-ID": "after-store-died"})
            assert r.status_code == 503
        lines = _wait_for_lines(service.log_path, "after-store-died")
    finally:
        if store.poll() is None:
            store.kill()
            store.wait()
    docs = [json.loads(line) for line in lines]  # every line is one JSON object
    # (start_service polled /readyz before the test's own requests)
    access = [d for d in docs if d["logger"] == ACCESS and d["route"] != "/readyz"]
    assert [d["request_id"] for d in access] == [*ids, "after-store-died"]
    assert [d["route"] for d in access] == [
        "/healthz",
        "/v1/stock/{sku}",
        "/v1/holds/{hold_id}",
        "/v1/stock/{sku}",
    ]
    text = service.log_path.read_text()
    assert "HTTP/1.1" not in text  # uvicorn's own access log stays off
    for secret in (password, api_key):
        assert secret not in text


def _wait_for_lines(path: Path, request_id: str) -> list[str]:
    """The log's lines once the access line of `request_id` is written (the request's own
    warnings come before it)."""
    marker = f'"request_id":"{request_id}","method"'
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = path.read_text()
        if marker in text:
            return [line for line in text.splitlines() if line.strip()]
        time.sleep(0.05)
    raise AssertionError(f"{marker!r} never logged:\n{path.read_text()[-3000:]}")


@settings(max_examples=300, deadline=None)
@given(created=st.floats(min_value=0, max_value=4e9))
def test_a_json_line_s_time_is_the_utc_second_and_its_milliseconds(created: float) -> None:
    second = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(created)))
    assert _timestamp(created) == f"{second}.{int(created * 1000) % 1000:03d}Z"


def test_a_forked_process_makes_request_ids_of_its_own() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id, then out without pytest's teardown
        os.write(write, request_log._new_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert len(child) == 32
    assert child[:16] != request_log._new_id()[:16]  # another random prefix


def _json_logger(name: str, stream: io.StringIO) -> logging.Logger:
    """`name` (a child of a logger of its own) set up as `logging_config("json")` sets up
    `omnistock`: one StreamHandler with the JSON formatter, no propagation."""
    parent = logging.getLogger(name)
    parent.handlers.clear()
    parent.filters.clear()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    parent.addHandler(handler)
    parent.setLevel(logging.INFO)
    parent.propagate = False
    return logging.getLogger(f"{name}.access")


def test_the_direct_access_line_is_the_bytes_the_logging_module_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_764_800_000.1234)
    fields = {"method": "POST", "route": "/v1/holds", "status": 201, "duration_ms": 1.25}
    args = ("POST", "/v1/holds", 201, 1.25)
    direct, standard = io.StringIO(), io.StringIO()
    token = REQUEST_ID.set("rid-direct")
    try:
        direct_logger = _json_logger("test-direct-a", direct)
        # the direct write runs (not the record path, which would make both sides the same)
        assert _lone_json_handler(direct_logger) is direct_logger.parent.handlers[0]  # type: ignore[union-attr]
        log_info(direct_logger, "%s %s %d %.1fms", args, fields)
        logger = _json_logger("test-direct-b", standard)
        logger.handle(info_record(logger, "%s %s %d %.1fms", args, fields))
    finally:
        REQUEST_ID.reset(token)
    assert direct.getvalue() == standard.getvalue().replace("test-direct-b", "test-direct-a")
    assert json.loads(direct.getvalue())["msg"] == "POST /v1/holds 201 1.2ms"


@pytest.mark.parametrize(
    "change",
    ["filter on the handler", "filter on the logger", "second handler", "text formatter"],
)
def test_the_access_line_takes_the_logging_module_when_anything_may_change_the_record(
    change: str,
) -> None:
    stream, seen = io.StringIO(), []
    logger = _json_logger(f"test-direct-{change.replace(' ', '-')}", stream)
    handler = logger.parent.handlers[0]  # type: ignore[union-attr]

    def keep(record: logging.LogRecord) -> bool:
        seen.append(record)
        return True

    if change == "filter on the handler":
        handler.addFilter(keep)
    elif change == "filter on the logger":
        logger.addFilter(keep)
    elif change == "second handler":
        logger.addHandler(logging.StreamHandler(io.StringIO()))
        logger.addFilter(keep)
    else:
        handler.setFormatter(TextFormatter())
        logger.addFilter(keep)
    log_info(logger, "%s %d", ("GET", 200), {"status": 200})
    (record,) = seen
    assert record.getMessage() == "GET 200" and record.fields == {"status": 200}  # type: ignore[attr-defined]
    assert "GET 200" in stream.getvalue()
