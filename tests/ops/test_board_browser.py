"""The live stock board and the product-page widget, in real headless Chromium.

Debian's `chromium` driven by Playwright's Python package (never `playwright install`: the
browser is the system one). Skipped, with the reason, where either is missing; `make test`
installs both where it can (see the Makefile's `browser` target). Screenshots go to
test-artifacts/; with OMNISTOCK_UPDATE_SCREENSHOT=1 the board's also replaces docs/board.png.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app.credentials import hash_key

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LIVE_TIMEOUT_MS = 2000  # the acceptance bar: a change shows within 2 s


def chromium_path() -> str | None:
    """OMNISTOCK_CHROMIUM if set (only it), else Debian's /usr/bin/chromium or one on PATH."""
    chosen = os.environ.get("OMNISTOCK_CHROMIUM")
    if chosen is not None:
        return chosen if os.access(chosen, os.X_OK) else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed: pip install -e '.[dev]'"
    )
    executable = chromium_path()
    if executable is None:
        pytest.skip(
            "no Chromium: install Debian's `chromium` package (`make browser` does as root), "
            "or point OMNISTOCK_CHROMIUM at one"
        )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def seed(http: httpx.Client) -> None:
    """A DC and two stores; `web` sells from all three, `pickup` from the stores."""
    for loc, body in {
        "dc-north": {"type": "dc", "name": "DC North", "ship": True, "priority": 1},
        "store-12": {"type": "store", "name": "Store 12", "pickup": True, "priority": 10},
        "store-7": {"type": "store", "name": "Store 7", "pickup": True, "priority": 20},
    }.items():
        http.put(f"/v1/locations/{loc}", json=body).raise_for_status()
    http.put(
        "/v1/channels/web", json={"locations": ["dc-north", "store-12", "store-7"]}
    ).raise_for_status()
    http.put(
        "/v1/channels/pickup",
        json={"locations": ["store-12", "store-7"], "low_stock_threshold": 2},
    ).raise_for_status()
    for loc, stock in {
        "dc-north": {"on_hand": 10, "safety_stock": 2},
        "store-12": {"on_hand": 4},
        "store-7": {"on_hand": 3},
    }.items():
        http.put(f"/v1/stock/SKU-1/{loc}", json=stock).raise_for_status()


def available_cell(page: Any, location: str) -> Any:
    return page.locator(f'#locations tr[data-location="{location}"] td.available')


def channel_cell(page: Any, channel: str) -> Any:
    return page.locator(f'#channels tr[data-channel="{channel}"] td.available')


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_board_shows_a_stock_change_within_2_seconds(
    start_service: Any, store_url: str, page: Any
) -> None:
    from playwright.sync_api import expect

    service = start_service(OMNISTOCK_REDIS_URL=store_url)
    with httpx.Client(base_url=service.base_url, timeout=5) as http:
        seed(http)
        page.goto(f"{service.base_url}/board/?sku=SKU-1")
        expect(available_cell(page, "store-12")).to_have_text("4")
        expect(channel_cell(page, "web")).to_have_text("15")
        expect(page.locator("#state")).to_have_text("live")

        start = time.monotonic()
        http.put("/v1/stock/SKU-1/store-12", json={"on_hand": 7}).raise_for_status()
        expect(available_cell(page, "store-12")).to_have_text("7", timeout=LIVE_TIMEOUT_MS)
        shown_after = time.monotonic() - start
        expect(channel_cell(page, "web")).to_have_text("18", timeout=LIVE_TIMEOUT_MS)
        expect(page.locator("#total")).to_have_text("18", timeout=LIVE_TIMEOUT_MS)

        # A cart hold and a till sale: both show up in the table of recent events.
        hold = {
            "channel": "web",
            "reference": "cart-81",
            "lines": [{"sku": "SKU-1", "quantity": 2}],
        }
        http.post("/v1/holds", json=hold).raise_for_status()
        sale = {
            "id": "store-7:till-1:0042",
            "type": "sale",
            "sku": "SKU-1",
            "location": "store-7",
            "quantity": 1,
        }
        http.post("/v1/stock/events", json={"events": [sale]}).raise_for_status()
        expect(available_cell(page, "dc-north")).to_have_text("6", timeout=LIVE_TIMEOUT_MS)
        expect(available_cell(page, "store-7")).to_have_text("2", timeout=LIVE_TIMEOUT_MS)
        expect(page.locator("#events tbody tr")).to_have_count(3, timeout=LIVE_TIMEOUT_MS)
        expect(page.locator("#events tbody tr").first).to_contain_text("stock.sale")
    page.wait_for_timeout(1300)  # let the change highlight fade before the picture
    shot = screenshot(page, "board.png")
    if os.environ.get("OMNISTOCK_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "board.png")
    assert shown_after < LIVE_TIMEOUT_MS / 1000


def test_board_reads_with_an_api_key_when_the_service_requires_one(
    start_service: Any, store_url: str, page: Any, tmp_path: Path
) -> None:
    """EventSource cannot send Authorization; the board's fetch-based stream reader can."""
    from playwright.sync_api import expect

    admin, reader = "osk_board-test-admin-key-0001", "osk_board-test-read-key-0002"
    keys = tmp_path / "keys.json"
    keys.write_bytes(
        orjson.dumps(
            {
                "keys": [
                    {"name": "ops", "sha256": hash_key(admin), "scopes": ["admin"]},
                    {"name": "board", "sha256": hash_key(reader), "scopes": ["read"]},
                ]
            }
        )
    )
    service = start_service(OMNISTOCK_REDIS_URL=store_url, OMNISTOCK_API_KEYS_FILE=str(keys))
    headers = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=service.base_url, timeout=5, headers=headers) as http:
        seed(http)
        page.goto(f"{service.base_url}/board/")
        page.locator("#key-box summary").click()
        page.locator("#api-key").fill(reader)
        page.locator("#api-key").dispatch_event("change")
        page.locator("#sku").fill("SKU-1")
        page.locator("#pick button").click()
        expect(available_cell(page, "store-7")).to_have_text("3")
        expect(page.locator("#state")).to_have_text("live")
        http.put("/v1/stock/SKU-1/store-7", json={"on_hand": 9}).raise_for_status()
        expect(available_cell(page, "store-7")).to_have_text("9", timeout=LIVE_TIMEOUT_MS)


def test_board_without_the_key_a_service_requires_says_so(
    start_service: Any, store_url: str, page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    keys = tmp_path / "keys.json"
    keys.write_bytes(
        orjson.dumps(
            {"keys": [{"name": "ops", "sha256": hash_key("osk_x" * 8), "scopes": ["admin"]}]}
        )
    )
    service = start_service(OMNISTOCK_REDIS_URL=store_url, OMNISTOCK_API_KEYS_FILE=str(keys))
    page.goto(f"{service.base_url}/board/?sku=SKU-1")
    expect(page.locator("#message")).to_contain_text("unauthorized")
    expect(page.locator("#state")).to_have_text("error")


def test_widget_counts_the_stores_with_stock_and_follows_a_sell_out(
    start_service: Any, store_url: str, page: Any
) -> None:
    from playwright.sync_api import expect

    service = start_service(OMNISTOCK_REDIS_URL=store_url)
    with httpx.Client(base_url=service.base_url, timeout=5) as http:
        seed(http)
        page.goto(f"{service.base_url}/board/widget-example.html?sku=SKU-1&channel=pickup")
        widget = page.locator("#widget")
        expect(widget).to_have_text("In stock at 2 stores")
        expect(widget).to_have_attribute("data-live", "true")
        sale = {
            "id": "store-7:till-2:0001",
            "type": "sale",
            "sku": "SKU-1",
            "location": "store-7",
            "quantity": 3,
        }
        http.post("/v1/stock/events", json={"events": [sale]}).raise_for_status()
        expect(widget).to_have_text("In stock at 1 store", timeout=LIVE_TIMEOUT_MS)
        expect(widget).to_have_attribute("data-count", "1")
        screenshot(page, "widget.png")
        http.put("/v1/stock/SKU-1/store-12", json={"on_hand": 0}).raise_for_status()
        expect(widget).to_have_text("Out of stock in stores", timeout=LIVE_TIMEOUT_MS)


@pytest.fixture
def other_origin() -> Iterator[str]:
    """The board's files (the real widget example) served by a plain http.server on another
    port: another origin than the service's."""
    handler = functools.partial(QuietFiles, directory=str(ROOT / "app" / "board"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def widget_page(page_origin: str, service: Any, channel: str = "pickup") -> str:
    return (
        f"{page_origin}/widget-example.html?sku=SKU-1&channel={channel}&service={service.base_url}/"
    )


def console_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def test_widget_on_another_origin_the_service_allows_shows_live_availability(
    start_service: Any, store_url: str, page: Any, other_origin: str
) -> None:
    from playwright.sync_api import expect

    service = start_service(OMNISTOCK_REDIS_URL=store_url, OMNISTOCK_CORS_ORIGINS=other_origin)
    with httpx.Client(base_url=service.base_url, timeout=5) as http_client:
        seed(http_client)
        page.goto(widget_page(other_origin, service))
        widget = page.locator("#widget")
        expect(widget).to_have_text("In stock at 2 stores")
        expect(widget).to_have_attribute("data-live", "true")  # EventSource across origins
        http_client.put("/v1/stock/SKU-1/store-12", json={"on_hand": 0}).raise_for_status()
        expect(widget).to_have_text("In stock at 1 store", timeout=LIVE_TIMEOUT_MS)


def test_widget_on_an_origin_the_service_does_not_allow_is_blocked_and_says_why(
    start_service: Any, store_url: str, page: Any, other_origin: str
) -> None:
    from playwright.sync_api import expect

    errors = console_errors(page)
    service = start_service(
        OMNISTOCK_REDIS_URL=store_url, OMNISTOCK_CORS_ORIGINS="https://shop.example.com"
    )
    with httpx.Client(base_url=service.base_url, timeout=5) as http_client:
        seed(http_client)
    page.goto(widget_page(other_origin, service))
    widget = page.locator("#widget")
    expect(widget).to_have_attribute("data-error", "unreachable")
    expect(widget).to_have_text("Store stock can't be shown right now")
    expect(page.locator("#dev-note")).to_contain_text("unreachable")
    assert any("OMNISTOCK_CORS_ORIGINS" in e and other_origin in e for e in errors), errors


def test_widget_and_board_follow_a_channels_buffer(
    start_service: Any, store_url: str, page: Any
) -> None:
    """A channel whose buffer keeps every unit back shows no store; one unit more for the
    channel and each store with stock counts again, as the API answers (channel rules)."""
    from playwright.sync_api import expect

    service = start_service(OMNISTOCK_REDIS_URL=store_url)
    with httpx.Client(base_url=service.base_url, timeout=5) as http:
        seed(http)
        pickup = {"locations": ["store-12", "store-7"], "buffer": {"units": 7}}
        http.put("/v1/channels/pickup", json=pickup).raise_for_status()
        page.goto(f"{service.base_url}/board/widget-example.html?sku=SKU-1&channel=pickup")
        widget = page.locator("#widget")
        expect(widget).to_have_text("Out of stock in stores")
        expect(widget).to_have_attribute("data-live", "true")
        http.put("/v1/stock/SKU-1/store-12", json={"on_hand": 5}).raise_for_status()
        expect(widget).to_have_text("In stock at 2 stores", timeout=LIVE_TIMEOUT_MS)
    page.goto(f"{service.base_url}/board/?sku=SKU-1")  # the board says why the figure is low
    row = page.locator('#channels tr[data-channel="pickup"]')
    expect(row.locator("td.channel")).to_have_text("pickup (keeps 7 back)")
    expect(row.locator("td.available")).to_have_text("1")


def test_widget_for_a_channel_that_does_not_exist_tells_the_developer(
    start_service: Any, store_url: str, page: Any
) -> None:
    from playwright.sync_api import expect

    errors = console_errors(page)
    service = start_service(OMNISTOCK_REDIS_URL=store_url)
    page.goto(f"{service.base_url}/board/widget-example.html?sku=SKU-1&channel=kiosk")
    widget = page.locator("#widget")
    expect(widget).to_have_attribute("data-error", "channel_not_found")
    expect(page.locator("#dev-note")).to_contain_text("channel_not_found")
    assert any("/v1/channels/kiosk" in e and "channel_not_found" in e for e in errors), errors


def test_board_without_channels_says_how_to_create_one(
    start_service: Any, tmp_path: Path, page: Any
) -> None:
    from playwright.sync_api import expect

    service = start_service(OMNISTOCK_DATA_DIR=str(tmp_path / "data"))  # an empty store
    page.goto(f"{service.base_url}/board/?sku=SKU-1")
    expect(page.locator("#no-channels")).to_contain_text("PUT /v1/channels/")


def test_board_nearby_panel_finds_stores_and_holds_at_one(
    start_service: Any, store_url: str, page: Any
) -> None:
    from playwright.sync_api import expect

    service = start_service(OMNISTOCK_REDIS_URL=store_url)
    with httpx.Client(base_url=service.base_url, timeout=5) as http:
        for loc, (lat, lon), on_hand in (
            ("store-5", (48.8706, 2.3318), 0),
            ("store-7", (48.8532, 2.3691), 3),
            ("store-9", (48.8918, 2.2389), 1),
        ):
            body = {"name": loc.title(), "pickup": True, "geo": {"lat": lat, "lon": lon}}
            http.put(f"/v1/locations/{loc}", json=body).raise_for_status()
            http.put(f"/v1/stock/SKU-9/{loc}", json={"on_hand": on_hand}).raise_for_status()
        http.put("/v1/channels/pos", json={"locations": ["store-5", "store-7"]}).raise_for_status()
        page.goto(f"{service.base_url}/board/?sku=SKU-9")
        expect(page.locator("#nearby-card")).to_be_visible()
        page.select_option("#nearby-from", "store-5")
        page.fill("#nearby-ref", "customer-4411")
        page.click("#nearby-form button[type=submit]")
        rows = page.locator("#nearby tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.first).to_have_attribute("data-location", "store-7")
        rows.first.locator("button").click()
        expect(page.locator("#nearby-result")).to_contain_text("held at store-7")
        expect(rows.first.locator("td").nth(2)).to_have_text("2")
        held = http.get("/v1/stock/SKU-9").json()["positions"]
        assert {p["location"]: p["held"] for p in held}["store-7"] == 1


def test_board_shows_a_kit_in_whole_kits_and_follows_its_components(
    start_service: Any, store_url: str, page: Any
) -> None:
    from playwright.sync_api import expect

    service = start_service(OMNISTOCK_REDIS_URL=store_url)
    with httpx.Client(base_url=service.base_url, timeout=5) as http:
        seed(http)
        http.put("/v1/stock/WHEEL/store-12", json={"on_hand": 5}).raise_for_status()
        http.put("/v1/stock/SKU-1/store-12", json={"on_hand": 4}).raise_for_status()
        body = {"components": [{"sku": "SKU-1", "quantity": 1}, {"sku": "WHEEL", "quantity": 2}]}
        http.put("/v1/kits/BIKE", json=body).raise_for_status()
        page.goto(f"{service.base_url}/board/?sku=BIKE")
        expect(available_cell(page, "store-12")).to_have_text("2")
        expect(page.locator("#state")).to_have_text("live")
        http.put("/v1/stock/WHEEL/store-12", json={"on_hand": 9}).raise_for_status()
        expect(available_cell(page, "store-12")).to_have_text("4", timeout=LIVE_TIMEOUT_MS)
        expect(channel_cell(page, "web")).to_have_text("4", timeout=LIVE_TIMEOUT_MS)
