"""HTTP authentication checks for the httpbin auth endpoints.

Basic (RFC 7617), Bearer (RFC 6750) and Digest (RFC 7616, algorithms MD5, SHA-256 and
SHA-512, qop ``auth`` and ``auth-int``). Credentials come from the URL, as in httpbin,
not from the shared user table: the endpoint is a target for a client's auth code.

Digest nonces are stateless: a timestamp and a random salt signed with a per-process
key, so a nonce the server never issued (or one from another run) is refused without
keeping a table, and two challenges never share a nonce. Like httpbin, an unknown qop
in the URL offers both ``auth`` and ``auth-int`` (and a client may answer without qop,
RFC 2069 style), an unknown algorithm falls back to MD5, and nonce staleness is kept in
the client's cookies (``stale_after``, ``last_nonce``), not on the server: see
routes.digest_auth.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time

DIGEST_ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256, "SHA-512": hashlib.sha512}
DIGEST_QOPS = ("auth", "auth-int")
REALM = "refservers"
_NONCE_KEY = secrets.token_bytes(32)
_PARAM = re.compile(r'([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from a Basic Authorization header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _hash(algorithm: str, text: str) -> str:
    return DIGEST_ALGORITHMS[algorithm](text.encode("utf-8")).hexdigest()


def new_nonce() -> str:
    issued = f"{int(time.time()):x}{secrets.token_hex(8)}"
    signature = hmac.new(_NONCE_KEY, issued.encode(), hashlib.sha256).hexdigest()[:32]
    return issued + signature


def _nonce_is_ours(nonce: str) -> bool:
    issued, signature = nonce[:-32], nonce[-32:]
    expected = hmac.new(_NONCE_KEY, issued.encode(), hashlib.sha256).hexdigest()[:32]
    return bool(issued) and hmac.compare_digest(signature, expected)


def digest_challenge(qop: str | None, algorithm: str, stale: bool = False) -> str:
    """The WWW-Authenticate value; ``qop`` None offers both (httpbin's answer to an unknown qop)."""
    opaque = hashlib.md5(REALM.encode()).hexdigest()
    offered = qop or ", ".join(DIGEST_QOPS)
    challenge = (
        f'Digest realm="{REALM}", qop="{offered}", nonce="{new_nonce()}", '
        f'opaque="{opaque}", algorithm={algorithm}'
    )
    return challenge + ", stale=true" if stale else challenge


def digest_params(authorization: str | None) -> dict[str, str] | None:
    if not authorization:
        return None
    scheme, _, rest = authorization.partition(" ")
    if scheme.lower() != "digest":
        return None
    return {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _PARAM.finditer(rest)}


def digest_ok(
    params: dict[str, str],
    method: str,
    request_uri: str,
    body: bytes,
    user: str,
    password: str,
    qop: str | None,
    algorithm: str,
) -> bool:
    """Check a Digest response (RFC 7616 section 3.4.1) against the expected user/password.

    ``qop`` is what the challenge asked for; None accepts either (httpbin's unknown qop).
    """
    required = ("username", "realm", "nonce", "uri", "response")
    if any(key not in params for key in required):
        return False
    if params["username"] != user or params["realm"] != REALM or not _nonce_is_ours(params["nonce"]):
        return False
    if params.get("algorithm", "MD5").upper() != algorithm or params["uri"] != request_uri:
        return False
    ha1 = _hash(algorithm, f"{user}:{REALM}:{password}")
    client_qop = params.get("qop")
    if client_qop == "auth-int":
        ha2 = _hash(algorithm, f"{method}:{params['uri']}:{DIGEST_ALGORITHMS[algorithm](body).hexdigest()}")
    else:
        ha2 = _hash(algorithm, f"{method}:{params['uri']}")
    if client_qop is None:
        expected = _hash(algorithm, f"{ha1}:{params['nonce']}:{ha2}")
    elif client_qop in ((qop,) if qop else DIGEST_QOPS) and "nc" in params and "cnonce" in params:
        expected = _hash(algorithm, f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:{client_qop}:{ha2}")
    else:
        return False
    return hmac.compare_digest(expected, params["response"].lower())
