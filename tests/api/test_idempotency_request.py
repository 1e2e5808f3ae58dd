"""What names a keyed request: its key's validity and its fingerprint's target (method, path
and query as Starlette's `request.url` gives them), unchanged by how they are computed, so a
retry after an upgrade is still the same request."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from app.api.idempotency import _target, _valid_key


def test_a_key_is_visible_ascii_and_nothing_else() -> None:
    for code in range(0x250):
        c = chr(code)
        assert _valid_key(c) == (33 <= code <= 126), repr(c)
        assert _valid_key(f"k{c}k") == (33 <= code <= 126), repr(c)


def test_a_key_is_1_to_255_characters() -> None:
    assert not _valid_key("")
    assert _valid_key("k")
    assert _valid_key("k" * 255)
    assert not _valid_key("k" * 256)


def _request(path: str, query: bytes = b"", host: bytes | None = b"127.0.0.1:8080") -> Request:
    headers = [] if host is None else [(b"host", host)]
    return Request(
        {
            "type": "http",
            "method": "POST",
            "scheme": "http",
            "server": ("127.0.0.1", 8080),
            "root_path": "",
            "path": path,
            "raw_path": path.encode("utf-8", "surrogateescape"),
            "query_string": query,
            "headers": headers,
        }
    )


def _by_url(request: Request) -> str:
    """The fingerprint's target as it was always computed."""
    url = request.url
    return url.path + (f"?{url.query}" if url.query else "")


PATHS = [
    "/",
    "/v1/holds",
    "/v1/holds/hxyz234567abcdefghijk-1f/commit",
    "/v1/stock/SKU-1/dc-north",
    "/v1/stock/a%2Fb/dc",
    "/v1/stock/a:b@c!$&'()*+,;=~/x",
    "/v1/holds/",
    "//v1/holds",
    "/v1//holds",
    "/v1/stock/a?b/dc",
    "/v1/stock/a#b/dc",
    "/v1/stock/a\\b/dc",
    "/v1/stock/a\tb/dc",
    "/v1/stock/a\nb/dc",
    "/v1/stock/a b/dc",
    "/v1/stock/caf\u00e9/dc",
    "/v1/stock/\x7f/dc",
    "",
    "v1/holds",
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("query", [b"", b"from=0-0", b"a=1&b=%20", b"x#y"])
@pytest.mark.parametrize("host", [b"127.0.0.1:8080", b"shop.example", b"bad host/", None])
def test_the_target_is_what_the_url_gives(path: str, query: bytes, host: bytes | None) -> None:
    request = _request(path, query, host)
    assert _target(request) == _by_url(request)


class _NoURL(Request):
    """A request whose `url` may not be built: what `_target` reads without it."""

    @property
    def url(self) -> object:  # type: ignore[override]
        raise AssertionError("request.url built")


@pytest.mark.parametrize("path", ["/", "/v1/holds", "/v1/stock/a:b@c!$&'()*+,;=~/x"])
def test_a_plain_path_without_a_query_is_taken_from_the_scope(path: str) -> None:
    # the comparison above is only worth something if this branch runs: it is not the URL's
    request = _NoURL(_request(path).scope)
    assert _target(request) == path
