"""A throwaway TLS certificate for the local fakes that clients only talk to over https.

azure-identity refuses an authority that is not https, and azure-core refuses to send a bearer token
over http, so the fake token endpoint and the fake Key Vault listen with TLS. The certificate is
made on the spot (an EC key, valid for a day, for 127.0.0.1 and localhost); clients trust it by
passing `cert_path` as azure-core's `connection_verify`.
"""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class LocalTls:
    """A self-signed certificate in a private temporary folder. `close()` removes the folder."""

    def __init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="secretbot-tls-"))
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "secretbot local fake")])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.cert_path = self._folder / "cert.pem"
        self.cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path = self._folder / "key.pem"
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key_path.chmod(0o600)
        self.server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_context.load_cert_chain(self.cert_path, key_path)
        key_path.unlink()  # loaded; nothing else needs the key

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts this certificate (for aiohttp or httpx clients)."""
        return ssl.create_default_context(cafile=str(self.cert_path))

    def close(self) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)


class LocalHttpsServer:
    """An aiohttp app on a loopback port behind a `LocalTls` certificate: the lifecycle the https
    fakes (Entra's token endpoint, Key Vault) share. Subclasses give `_app()`."""

    def __init__(self) -> None:
        self._tls: LocalTls | None = None
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    def _app(self) -> web.Application:
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        self._tls = LocalTls()
        runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, host, port, ssl_context=self._tls.server_context).start()
        self._runner = runner
        self._url = f"https://{host}:{runner.addresses[0][1]}"
        return self._url

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        if self._tls is not None:
            self._tls.close()
            self._tls = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError(f"{type(self).__name__} has not been started")
        return self._url

    @property
    def cert_path(self) -> str:
        """The certificate clients trust (`connection_verify`)."""
        if self._tls is None:
            raise RuntimeError(f"{type(self).__name__} has not been started")
        return str(self._tls.cert_path)
