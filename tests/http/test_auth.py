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


def test_digest_auth_is_lenient_like_httpbin(refservers_http):
    # httpbin's behaviour is the spec here (issue 15): an unknown qop offers both qops and an
    # unknown algorithm (names are case-sensitive, as there) is MD5, where refservers used to answer 400.
    base = refservers_http.url
    challenge = requests.get(f"{base}/digest-auth/bogus/u/p/SHA-1", timeout=10)
    assert challenge.status_code == 401
    offered = challenge.headers["WWW-Authenticate"]
    assert 'qop="auth, auth-int"' in offered and offered.endswith("algorithm=MD5")
    assert challenge.cookies.get("stale_after") == "never" and challenge.cookies.get("fake") == "fake_value"
    for path in ("/digest-auth/bogus/u/p", "/digest-auth/auth/u/p/SHA-1", "/digest-auth/auth/u/p/sha-256"):
        reply = requests.get(base + path, auth=HTTPDigestAuth("u", "p"), timeout=10)
        assert reply.json() == {"authenticated": True, "user": "u"}, path


def test_digest_require_cookie_refuses_a_client_without_cookies(curl):
    # The stale_after count lives in cookies too; httpbin's suite (test_httpbin_suite.py) covers it.
    path = "/digest-auth/auth/hal/pw?require-cookie=true"
    args = ("--digest", "-u", "hal:pw", "--write-out", "\n%{http_code}")
    assert curl(path, *args).stdout.decode().endswith("\n401")  # curl without its cookie engine
    assert curl(path, "--cookie", "", *args).stdout.decode().endswith("\n200")
