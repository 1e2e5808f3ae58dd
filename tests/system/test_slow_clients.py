"""Slow or silent clients against a real `omnistock serve` (raw sockets): a connection that has
not sent complete headers within the header timeout, or pauses mid-body longer than the body
timeout, is closed; a slow but steady client is not cut; stalled sockets cannot starve the
service of file descriptors. Timeouts lowered to 1 s (the default is 10 s)."""

from __future__ import annotations

import resource
import socket
import time
from typing import Any

import httpx
import psutil
import pytest

pytestmark = pytest.mark.slow

TIMEOUT = 1.0
TIMEOUTS = {
    "OMNISTOCK_HEADER_TIMEOUT_SECONDS": str(TIMEOUT),
    "OMNISTOCK_BODY_TIMEOUT_SECONDS": str(TIMEOUT),
}
PUT_HEAD = (
    b"PUT /v1/locations/slow HTTP/1.1\r\nHost: omnistock\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
)
BODY = b'{"ship": true}'


@pytest.fixture
def service(store_url: str, start_service: Any) -> Any:
    return start_service(OMNISTOCK_REDIS_URL=store_url, **TIMEOUTS)


def connect(service: Any) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=10)
    return sock


def read_response(sock: socket.socket) -> bytes:
    """One whole response (its head and a Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(4096)
    return data


def closed_after(sock: socket.socket, sent_at: float) -> tuple[float, bytes]:
    """Seconds from `sent_at` until the service closed the connection, and what it sent."""
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return time.monotonic() - sent_at, received


def test_a_silent_connection_is_closed_after_the_header_timeout(service: Any) -> None:
    with connect(service) as sock:
        elapsed, received = closed_after(sock, time.monotonic())
    assert TIMEOUT * 0.8 < elapsed < TIMEOUT + 2, elapsed
    assert received == b""


def test_a_half_sent_header_block_is_closed_with_408(service: Any) -> None:
    with connect(service) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: omnistock\r\n")
        elapsed, received = closed_after(sock, time.monotonic())
    assert TIMEOUT * 0.8 < elapsed < TIMEOUT + 2, elapsed
    assert received.startswith(b"HTTP/1.1 408 "), received


def test_headers_dripped_a_byte_at_a_time_are_cut_at_the_header_timeout(service: Any) -> None:
    """The header timeout is a total (slowloris): steady bytes do not extend it."""
    request = b"GET /healthz HTTP/1.1\r\nHost: omnistock\r\nX-Pad: " + b"a" * 40 + b"\r\n\r\n"
    with connect(service) as sock:
        started = time.monotonic()
        with pytest.raises(OSError):  # reset or broken pipe once the service has closed
            for byte in request:
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
                if time.monotonic() - started > TIMEOUT + 3:
                    pytest.fail("still open after the header timeout")
            sock.recv(1)  # (all sent: only if the timeout never fired)
            raise AssertionError("the whole dripped request was accepted")


def test_a_body_that_stalls_midway_is_closed_after_the_body_timeout(service: Any) -> None:
    with connect(service) as sock:
        sock.sendall(PUT_HEAD % len(BODY) + BODY[:5])
        elapsed, received = closed_after(sock, time.monotonic())
    assert TIMEOUT * 0.8 < elapsed < TIMEOUT + 2, elapsed
    assert b" 200 " not in received


def test_a_slow_but_steady_body_is_not_cut(service: Any) -> None:
    """A byte every half timeout: 3 s for the body, three times the body timeout."""
    body = b"{    }"
    with connect(service) as sock:
        sock.sendall(PUT_HEAD % len(body))
        for byte in body:
            time.sleep(TIMEOUT / 2)
            sock.sendall(bytes([byte]))
        response = read_response(sock)
    assert response.startswith(b"HTTP/1.1 200 "), response


def test_a_kept_alive_connection_gets_a_fresh_header_timeout_per_request(service: Any) -> None:
    with connect(service) as sock:
        for _ in range(2):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: omnistock\r\n\r\n")
            assert read_response(sock).startswith(b"HTTP/1.1 200 ")
            time.sleep(TIMEOUT * 0.7)  # under uvicorn's 5 s keep-alive, under ours each time


def test_hundreds_of_stalled_sockets_under_a_low_fd_limit_do_not_take_healthz_down(
    service: Any,
) -> None:
    """The service may hold 256 descriptors; 400 connections stall without a byte. Each is
    closed after the timeout, so the backlog drains and /healthz answers again."""
    limit = 256
    psutil.Process(service.proc.pid).rlimit(resource.RLIMIT_NOFILE, (limit, limit))
    stalled = [connect(service) for _ in range(400)]
    try:
        started = time.monotonic()
        answered = None
        while time.monotonic() - started < 15:
            try:
                if httpx.get(service.base_url + "/healthz", timeout=2).status_code == 200:
                    answered = time.monotonic() - started
                    break
            except httpx.HTTPError:
                pass
        assert answered is not None, "healthz did not answer within 15 s"
        for sock in stalled:  # every stalled socket was closed by the service
            sock.settimeout(10)
            assert sock.recv(1) == b""
    finally:
        for sock in stalled:
            sock.close()
    print(f"\n[400 stalled sockets, fd limit {limit}] /healthz answered after {answered:.2f} s")
