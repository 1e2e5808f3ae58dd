"""The service's HTTP protocol writes once a turn of the event loop per connection
(app/server/writes.py): a response's head and body leave together, nothing is held longer
than that turn, and closing sends what is held first. On a real loop, with a transport that
records what reaches it."""

from __future__ import annotations

import asyncio
from typing import Any

from app.server.writes import CoalescingTransport


class Recording:
    """What a coalescing transport hands to the real one."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5)}.get(name, default)


def coalescing() -> tuple[CoalescingTransport, Recording]:
    real = Recording()
    return CoalescingTransport(real, asyncio.get_running_loop()), real  # type: ignore[arg-type]


async def test_a_response_head_and_body_leave_in_one_write_after_the_turn() -> None:
    transport, real = coalescing()
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(bytearray(b"{}"))
    assert real.writes == []  # still in this turn of the loop
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]


async def test_a_write_in_a_later_turn_is_a_write_of_its_own() -> None:
    transport, real = coalescing()
    transport.write(b"head")
    await asyncio.sleep(0)
    transport.write(b"event")
    await asyncio.sleep(0)
    assert real.writes == [b"head", b"event"]


async def test_closing_sends_what_is_held_first() -> None:
    transport, real = coalescing()
    transport.write(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
    transport.close()
    assert real.writes == [b"HTTP/1.1 408 Request Timeout\r\n\r\n"]
    assert real.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert len(real.writes) == 1


async def test_what_is_held_when_the_connection_closes_is_dropped() -> None:
    transport, real = coalescing()
    transport.write(b"late")
    real.close()  # the peer went away within the turn
    await asyncio.sleep(0)
    assert real.writes == []


async def test_everything_else_is_the_real_transports() -> None:
    transport, real = coalescing()
    assert transport.get_extra_info("peername") == ("127.0.0.1", 5)
    assert not transport.is_closing()
    real.close()
    assert transport.is_closing()
