"""Cluster fixtures. `cluster_with_replicas`: 3 primaries with one replica each, AOF on
(tests/cluster/support.py), one per test module; tests that kill a node restore it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.support import LocalCluster


@pytest.fixture(scope="module")
def cluster_with_replicas(
    server_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    cluster = LocalCluster(server_binary, tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()
