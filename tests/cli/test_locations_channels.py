"""`omnistock locations` and `omnistock channels`: configuration through the service's API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app.credentials import hash_key
from app.store.embedded import free_port


def location(api: httpx.Client, loc: str) -> dict[str, Any]:
    return next(x for x in api.get("/v1/locations").json()["locations"] if x["id"] == loc)


def channel(api: httpx.Client, ch: str) -> dict[str, Any]:
    return next(x for x in api.get("/v1/channels").json()["channels"] if x["id"] == ch)


def test_locations_put_registers_a_location_from_its_flags(
    api: httpx.Client, cli: Any, live_url: str
) -> None:
    result = cli(
        "locations",
        "put",
        "store-12",
        "--url",
        live_url,
        "--type",
        "store",
        "--name",
        "Store 12",
        "--pickup",
        "--no-ship",
        "--priority",
        "10",
    )
    assert result.code == 0, result.err
    assert "registered location store-12" in result.err
    assert location(api, "store-12") == {
        "id": "store-12",
        "type": "store",
        "name": "Store 12",
        "ship": False,
        "pickup": True,
        "priority": 10,
    }


def test_locations_put_changes_only_the_fields_given(
    api: httpx.Client, cli: Any, live_url: str
) -> None:
    api.put(
        "/v1/locations/dc-north",
        json={"type": "dc", "name": "DC North", "ship": True, "priority": 1},
    )
    result = cli("locations", "put", "dc-north", "--url", live_url, "--priority", "5")
    assert result.code == 0, result.err
    assert "updated location dc-north" in result.err
    assert location(api, "dc-north") == {
        "id": "dc-north",
        "type": "dc",
        "name": "DC North",
        "ship": True,
        "pickup": False,
        "priority": 5,
    }


def test_locations_list_prints_a_table_by_sourcing_priority(
    api: httpx.Client, cli: Any, live_url: str
) -> None:
    api.put("/v1/locations/store-12", json={"type": "store", "priority": 10})
    api.put("/v1/locations/dc-north", json={"type": "dc", "priority": 1})
    result = cli("locations", "list", "--url", live_url)
    assert result.code == 0
    header, first, second = result.out.splitlines()
    assert header.split() == ["ID", "TYPE", "NAME", "SHIP", "PICKUP", "PRIORITY"]
    assert first.startswith("dc-north") and second.startswith("store-12")


def test_locations_list_as_json_is_what_the_api_answers(
    api: httpx.Client, cli: Any, live_url: str
) -> None:
    api.put("/v1/locations/dc-north", json={"type": "dc", "priority": 1})
    result = cli("locations", "list", "--url", live_url, "--json")
    assert orjson.loads(result.out) == api.get("/v1/locations").json()


def test_locations_put_with_a_value_the_service_refuses_exits_2_with_its_reason(
    cli: Any, live_url: str
) -> None:
    result = cli("locations", "put", "store-12", "--url", live_url, "--priority", "-1")
    assert result.code == 2
    assert "422 invalid_request" in result.err
    assert "body.priority" in result.err


def test_channels_put_sets_locations_and_threshold(
    api: httpx.Client, cli: Any, live_url: str
) -> None:
    for loc in ("dc-north", "store-12"):
        api.put(f"/v1/locations/{loc}", json={})
    result = cli(
        "channels",
        "put",
        "web",
        "--url",
        live_url,
        "--locations",
        "dc-north,store-12",
        "--low-stock-threshold",
        "3",
    )
    assert result.code == 0, result.err
    assert channel(api, "web") == {
        "id": "web",
        "locations": ["dc-north", "store-12"],
        "low_stock_threshold": 3,
        "buffer": None,
        "exclude_skus": [],
    }


def test_channels_put_sets_channel_rules_and_keeps_them_when_not_given(
    api: httpx.Client, cli: Any, live_url: str
) -> None:
    api.put("/v1/locations/dc-north", json={})
    args = ["channels", "put", "market", "--url", live_url]
    result = cli(
        *args, "--locations", "dc-north", "--buffer-percent", "10", "--exclude-skus", "A,B"
    )
    assert result.code == 0, result.err
    assert cli(*args, "--low-stock-threshold", "1").code == 0
    saved = channel(api, "market")
    assert (saved["buffer"], saved["exclude_skus"]) == ({"percent": 10}, ["A", "B"])
    assert "10%" in cli("channels", "list", "--url", live_url).out
    assert cli(*args, "--no-buffer", "--exclude-skus", "").code == 0
    saved = channel(api, "market")
    assert (saved["buffer"], saved["exclude_skus"]) == (None, [])


def test_channels_put_adds_and_removes_locations_keeping_the_threshold(
    api: httpx.Client, cli: Any, live_url: str
) -> None:
    for loc in ("dc-north", "store-12", "store-7"):
        api.put(f"/v1/locations/{loc}", json={})
    api.put(
        "/v1/channels/web", json={"locations": ["dc-north", "store-12"], "low_stock_threshold": 4}
    )
    result = cli(
        "channels", "put", "web", "--url", live_url, "--add", "store-7", "--remove", "dc-north"
    )
    assert result.code == 0, result.err
    assert channel(api, "web") == {
        "id": "web",
        "locations": ["store-12", "store-7"],
        "low_stock_threshold": 4,
        "buffer": None,
        "exclude_skus": [],
    }


def test_channels_put_with_an_unknown_location_exits_2_and_changes_nothing(
    api: httpx.Client, cli: Any, live_url: str
) -> None:
    api.put("/v1/locations/dc-north", json={})
    api.put("/v1/channels/web", json={"locations": ["dc-north"]})
    result = cli("channels", "put", "web", "--url", live_url, "--add", "store-99")
    assert result.code == 2
    assert "unknown location 'store-99'" in result.err
    assert channel(api, "web")["locations"] == ["dc-north"]


def test_a_new_channel_needs_its_locations(cli: Any, live_url: str) -> None:
    result = cli("channels", "put", "app", "--url", live_url, "--low-stock-threshold", "2")
    assert result.code == 2
    assert "give its --locations" in result.err


def test_channels_list_shows_each_channel_and_its_locations(
    api: httpx.Client, cli: Any, live_url: str
) -> None:
    for loc in ("dc-north", "store-12"):
        api.put(f"/v1/locations/{loc}", json={})
    api.put("/v1/channels/web", json={"locations": ["dc-north", "store-12"]})
    result = cli("channels", "list", "--url", live_url)
    assert result.out.splitlines()[1].split() == ["web", "5", "dc-north,store-12", "-", "0"]


@pytest.mark.parametrize("command", [("locations", "list"), ("channels", "list")])
def test_an_unreachable_service_exits_3(cli: Any, command: tuple[str, ...]) -> None:
    result = cli(*command, "--url", f"http://127.0.0.1:{free_port()}")
    assert result.code == 3
    assert "service unreachable" in result.err


def test_a_url_that_is_not_http_is_a_usage_error(cli: Any) -> None:
    result = cli("locations", "list", "--url", "127.0.0.1:8080")
    assert result.code == 2


class TestWithApiKeys:
    ADMIN = "osk_cli-test-admin-key-000000000001"
    READER = "osk_cli-test-read-key-0000000000002"

    @pytest.fixture
    def keyed_url(self, serve_app: Any, tmp_path: Path) -> str:
        keys = tmp_path / "keys.json"
        keys.write_bytes(
            orjson.dumps(
                {
                    "keys": [
                        {"name": "ops", "sha256": hash_key(self.ADMIN), "scopes": ["admin"]},
                        {"name": "dash", "sha256": hash_key(self.READER), "scopes": ["read"]},
                    ]
                }
            )
        )
        url: str = serve_app(api_keys_file=keys)
        return url

    def test_without_a_key_the_command_exits_2_unauthorized(
        self, cli: Any, keyed_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("OMNISTOCK_API_KEY", raising=False)
        result = cli("locations", "list", "--url", keyed_url)
        assert result.code == 2
        assert "401 unauthorized" in result.err

    def test_a_read_key_may_list_but_not_change(
        self, cli: Any, keyed_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("OMNISTOCK_API_KEY", self.READER)
        assert cli("locations", "list", "--url", keyed_url).code == 0
        result = cli("locations", "put", "dc-north", "--url", keyed_url)
        assert result.code == 2
        assert "403 forbidden" in result.err

    def test_the_key_file_flag_wins_over_the_environment(
        self, cli: Any, keyed_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("OMNISTOCK_API_KEY", self.READER)
        key_file = tmp_path / "admin.key"
        key_file.write_text(self.ADMIN + "\n")
        result = cli(
            "locations",
            "put",
            "dc-north",
            "--url",
            keyed_url,
            "--api-key-file",
            key_file,
            "--type",
            "dc",
        )
        assert result.code == 0, result.err
        assert self.ADMIN not in result.err + result.out
