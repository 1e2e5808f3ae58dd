"""Webhook tests run the service in process with the deliverer's waits in milliseconds."""

from __future__ import annotations

import pytest

from app.settings import Settings
from tests.conftest import make_settings

FAST = {
    "webhooks_enabled": True,
    "webhook_retry_initial_seconds": 0.001,
    "webhook_retry_max_seconds": 0.004,
    "webhook_max_attempts": 6,
    "webhook_timeout_seconds": 0.3,
    "webhook_lease_seconds": 0.6,
    "webhook_poll_seconds": 0.02,
}


@pytest.fixture
def settings(store_url: str) -> Settings:
    return make_settings(store_url, **FAST)
