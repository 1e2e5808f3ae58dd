"""`app.api.headers.header` reads a request header as Starlette's `Headers.get` does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers

from app.api.headers import header

NAMES = ["content-type", "idempotency-key", "x-request-id", "host"]
# As a server hands them over (ASGI): names lower case, values any latin-1 bytes.
raw_headers = st.lists(
    st.tuples(
        st.sampled_from(NAMES).map(str.encode)
        | st.binary(min_size=1, max_size=12).map(bytes.lower),
        st.binary(max_size=20),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(headers=raw_headers, name=st.sampled_from([*NAMES, "Content-Type", "IDEMPOTENCY-KEY"]))
def test_a_header_is_the_first_of_its_name_as_starlette_reads_it(
    headers: list[tuple[bytes, bytes]], name: str
) -> None:
    scope = {"type": "http", "headers": headers}
    assert header(scope, name) == Headers(scope=scope).get(name)


def test_an_absent_header_is_none() -> None:
    assert header({"headers": [(b"host", b"x")]}, "Idempotency-Key") is None
