"""TLSMaterial: a local CA and a server certificate, made on first need and reused.

Files under ``<data_dir>/tls/``: ``ca.pem`` (give this to clients to trust),
``ca-key.pem``, ``server.pem`` (server certificate followed by the CA) and
``server-key.pem``. Keys are ECDSA P-256: fast to generate, accepted by every client
we test (OpenSSL, GnuTLS, Go, Java). The server certificate is re-issued when the
configured names change or it is near expiry; the CA is kept so clients stay trusting.
A ``tls_cert``/``tls_key`` pair from config replaces all of this.
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import ssl
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .durable import write_atomic

BASE_NAMES = ("localhost", "127.0.0.1", "::1")
VALIDITY = datetime.timedelta(days=825)
RENEW_BEFORE = datetime.timedelta(days=30)


class TLSMaterial:
    def __init__(
        self,
        directory: Path,
        extra_names: Iterable[str] = (),
        cert_file: Path | None = None,
        key_file: Path | None = None,
    ):
        self.directory = Path(directory)
        self.names = tuple(dict.fromkeys((*BASE_NAMES, *extra_names)))
        self._custom = (Path(cert_file), Path(key_file)) if cert_file and key_file else None
        self._ready = False
        self._lock = threading.Lock()

    @property
    def ca_file(self) -> Path | None:
        """The CA clients should trust, or None when a custom certificate is configured."""
        return None if self._custom else self.directory / "ca.pem"

    @property
    def cert_file(self) -> Path:
        self.ensure()
        return self._custom[0] if self._custom else self.directory / "server.pem"

    @property
    def key_file(self) -> Path:
        self.ensure()
        return self._custom[1] if self._custom else self.directory / "server-key.pem"

    def ensure(self) -> None:
        """Create or refresh the files (safe against other processes doing the same)."""
        with self._lock:
            if self._ready:
                return
            if self._custom:
                for path in self._custom:
                    if not path.is_file():
                        raise FileNotFoundError(f"[core] tls_cert/tls_key: {path} does not exist")
            else:
                self.directory.mkdir(parents=True, exist_ok=True)
                with open(self.directory / ".lock", "w") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX)
                    self._generate_if_needed()
            self._ready = True

    def server_context(self) -> ssl.SSLContext:
        """A stdlib server-side context (asyncio servers, aiosmtpd)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A stdlib client context that trusts our CA (used by probes and tests)."""
        context = ssl.create_default_context()
        if self.ca_file is not None:
            self.ensure()
            context.load_verify_locations(self.ca_file)
        return context

    def twisted_options(self) -> Any:
        """Twisted ``CertificateOptions`` for listenSSL and startTLS."""
        from twisted.internet import ssl as tssl

        chain = self.cert_file.read_bytes()
        key = self.key_file.read_bytes()
        blocks = [b + b"-----END CERTIFICATE-----\n" for b in chain.split(b"-----END CERTIFICATE-----")[:-1]]
        leaf = tssl.PrivateCertificate.loadPEM(blocks[0] + key)
        extra = [tssl.Certificate.loadPEM(block).original for block in blocks[1:]]
        options = tssl.CertificateOptions(
            privateKey=leaf.privateKey.original,
            certificate=leaf.original,
            extraCertChain=extra,
        )
        # Twisted hands pyOpenSSL X509 objects to pyOpenSSL, which warns that this is
        # deprecated; the warning would fire at the first handshake, on the loop thread,
        # and under ``-W error`` kill it. Build the (cached) context now, here, quietly.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            options.getContext()
        return options

    def _generate_if_needed(self) -> None:
        ca_path, ca_key_path = self.directory / "ca.pem", self.directory / "ca-key.pem"
        cert_path, key_path = self.directory / "server.pem", self.directory / "server-key.pem"
        if ca_path.exists() and ca_key_path.exists():
            ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
            ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), None)
        else:
            ca_key = ec.generate_private_key(ec.SECP256R1())
            ca_cert = _issue_ca(ca_key)
            write_atomic(ca_key_path, _key_pem(ca_key), mode=0o600)
            write_atomic(ca_path, ca_cert.public_bytes(serialization.Encoding.PEM))
        if cert_path.exists() and key_path.exists() and self._still_valid(cert_path):
            return
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue_server(key, ca_cert, ca_key, self.names)  # type: ignore[arg-type]
        write_atomic(key_path, _key_pem(key), mode=0o600)
        chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
        write_atomic(cert_path, chain)

    def _still_valid(self, cert_path: Path) -> bool:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if cert.not_valid_after_utc - _now() < RENEW_BEFORE:
            return False
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        present = {str(n) for n in names.get_values_for_type(x509.DNSName)}
        present |= {str(n) for n in names.get_values_for_type(x509.IPAddress)}
        return {_canonical(n) for n in self.names} <= present


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _canonical(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue_ca(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "refservers local CA")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(days=1))
        .not_valid_after(_now() + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _issue_server(
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    names: Iterable[str],
) -> x509.Certificate:
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(days=1))
        .not_valid_after(_now() + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
