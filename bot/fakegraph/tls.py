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
