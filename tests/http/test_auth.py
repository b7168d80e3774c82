"""Basic, hidden Basic, Digest (MD5, SHA-256, auth-int) and Bearer endpoints."""

from __future__ import annotations

import json

import pytest
import requests
from requests.auth import HTTPDigestAuth

# Real clients on host/port/url only: also run against the compose stack (make test-containers).
pytestmark = pytest.mark.container_ok


def test_basic_auth_with_requests_and_curl(refservers_http, curl):
    url = f"{refservers_http.url}/basic-auth/alice/s3cret"
    assert requests.get(url, auth=("alice", "s3cret"), timeout=10).json() == {"authenticated": True, "user": "alice"}
    wrong = requests.get(url, auth=("alice", "nope"), timeout=10)
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == 'Basic realm="Fake Realm"'
    assert json.loads(curl("/basic-auth/alice/s3cret", "-u", "alice:s3cret").stdout)["authenticated"] is True


def test_hidden_basic_auth_is_404_without_credentials(refservers_http):
    url = f"{refservers_http.url}/hidden-basic-auth/bob/pw"
    missing = requests.get(url, timeout=10)
    assert missing.status_code == 404 and "WWW-Authenticate" not in missing.headers
    assert requests.get(url, auth=("bob", "pw"), timeout=10).json()["user"] == "bob"


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_digest_auth_with_curl(curl, algorithm):
    result = curl(f"/digest-auth/auth/carol/pw/{algorithm}", "--digest", "-u", "carol:pw", "--write-out", "\n%{http_code}")
    body, code = result.stdout.decode().rsplit("\n", 1)
    assert code == "200"
    assert json.loads(body) == {"authenticated": True, "user": "carol"}


@pytest.mark.parametrize(
    "path", ["/digest-auth/auth/dave/pw", "/digest-auth/auth/dave/pw/SHA-256", "/digest-auth/auth/dave/pw/MD5"]
)
def test_digest_auth_with_requests(refservers_http, path):
    reply = requests.get(refservers_http.url + path, auth=HTTPDigestAuth("dave", "pw"), timeout=10)
    assert reply.status_code == 200
    assert reply.json() == {"authenticated": True, "user": "dave"}
    assert len(reply.history) == 1 and reply.history[0].status_code == 401


def test_digest_auth_int_covers_the_body_with_curl(curl):
    result = curl("/digest-auth/auth-int/erin/pw", "--digest", "-u", "erin:pw", "--write-out", "\n%{http_code}")
    assert result.stdout.decode().endswith("\n200")


def test_digest_auth_refuses_a_wrong_password_and_a_forged_nonce(refservers_http, curl):
    url = f"{refservers_http.url}/digest-auth/auth/frank/right"
    assert requests.get(url, auth=HTTPDigestAuth("frank", "wrong"), timeout=10).status_code == 401
    forged = (
        'Digest username="frank", realm="refservers", nonce="00ff00ff00ff00ff00ff00ff00ff00ff00ff", '
        'uri="/digest-auth/auth/frank/right", response="0123456789abcdef0123456789abcdef", qop=auth, nc=00000001, cnonce="x"'
    )
    assert requests.get(url, headers={"Authorization": forged}, timeout=10).status_code == 401
    challenge = requests.get(url, timeout=10).headers["WWW-Authenticate"]
    assert challenge.startswith('Digest realm="refservers", qop="auth", nonce="')


def test_digest_auth_rejects_unknown_qop_and_algorithm(refservers_http):
    assert requests.get(f"{refservers_http.url}/digest-auth/bogus/u/p", timeout=10).status_code == 400
    assert requests.get(f"{refservers_http.url}/digest-auth/auth/u/p/SHA-1", timeout=10).status_code == 400


def test_bearer(refservers_http):
    url = f"{refservers_http.url}/bearer"
    missing = requests.get(url, timeout=10)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    ok = requests.get(url, headers={"Authorization": "Bearer tok-123"}, timeout=10)
    assert ok.json() == {"authenticated": True, "token": "tok-123"}
    assert requests.get(url, headers={"Authorization": "Basic eDp5"}, timeout=10).status_code == 401


def test_journal_keeps_header_names_but_never_authorization_values(refservers_http):
    since = refservers_http.journal.last_id
    requests.get(f"{refservers_http.url}/bearer", headers={"Authorization": "Bearer very-secret-token"}, timeout=10)
    event = refservers_http.journal.wait_for(
        lambda e: e.details.get("path") == "/bearer", since=since, server="http", kind="request"
    )
    assert "authorization" in event.details["headers"]
    assert "very-secret-token" not in json.dumps(event.as_json())
    assert event.details["status"] == 200 and event.details["method"] == "GET"
