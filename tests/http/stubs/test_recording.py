"""Record and playback, offline: a second refservers HTTP server stands in for the real API."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from servers.core import Server
from servers.core.config import ConfigError


def admin(server: Any, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{server.url}/__admin{path}", timeout=10, **kwargs)


def _upstream(server: Server) -> None:
    """The 'real service': a few stubs, and httpbin's endpoints behind them."""
    server.stub(request={"method": "GET", "url": "/api/items?page=1"}, response={"jsonBody": [{"id": 1}], "headers": {"Content-Type": "application/json", "X-Upstream": "yes"}})  # type: ignore[attr-defined]
    server.stub(request={"method": "POST", "url": "/api/items"}, response={"status": 201, "jsonBody": {"created": True}, "headers": {"Content-Type": "application/json"}})  # type: ignore[attr-defined]
    for required, new, status in (("Started", "up", 503), ("up", None, 200)):
        mapping: dict[str, Any] = {"scenarioName": "warmup", "requiredScenarioState": required, "request": {"url": "/api/health"}, "response": {"status": status, "body": f"health {status}"}}
        if new:
            mapping["newScenarioState"] = new
        server.stub(mapping)  # type: ignore[attr-defined]


def test_record_then_replay_offline(refservers_http: Server, refservers_start: Any, tmp_path: Path) -> None:
    upstream = refservers_http
    _upstream(upstream)
    stubs_dir = tmp_path / "recorded"
    recorder = refservers_start("http", stubs_dir=str(stubs_dir), unmatched="404")

    assert admin(recorder, "GET", "/recordings/status").json() == {"status": "NeverStarted"}
    assert admin(recorder, "POST", "/recordings/start", json={"targetBaseUrl": upstream.url}).status_code == 200
    assert admin(recorder, "GET", "/recordings/status").json() == {"status": "Recording"}
    live = {
        "items": requests.get(recorder.url + "/api/items?page=1", timeout=10),
        "create": requests.post(recorder.url + "/api/items", json={"name": "tea"}, timeout=10),
        "health1": requests.get(recorder.url + "/api/health", timeout=10),
        "health2": requests.get(recorder.url + "/api/health", timeout=10),
        "httpbin": requests.get(recorder.url + "/anything/recorded?x=1", timeout=10),
    }
    assert live["items"].headers["X-Upstream"] == "yes" and live["create"].status_code == 201
    assert [live["health1"].status_code, live["health2"].status_code] == [503, 200]
    upstream.verify({"method": "POST", "url": "/api/items", "bodyPatterns": [{"equalToJson": {"name": "tea"}}]}, count=1)  # type: ignore[attr-defined]

    stopped = admin(recorder, "POST", "/recordings/stop")
    assert stopped.status_code == 200
    recorded = stopped.json()["mappings"]
    assert sorted({(m["request"]["method"], m["request"]["url"]) for m in recorded}) == [
        ("GET", "/anything/recorded?x=1"), ("GET", "/api/health"), ("GET", "/api/items?page=1"), ("POST", "/api/items"),
    ]  # fmt: skip
    health = [m for m in recorded if m["request"]["url"] == "/api/health"]
    assert [m["requiredScenarioState"] for m in health] == ["Started", health[0]["newScenarioState"]]

    # Saved as WireMock does: mapping files, bodies in __files/.
    files = sorted(p.name for p in (stubs_dir / "__files").iterdir())
    assert len(list((stubs_dir / "mappings").glob("*.json"))) == 5
    items_mapping = next(m for m in recorded if m["request"]["url"] == "/api/items?page=1")
    assert items_mapping["response"]["bodyFileName"] in files
    assert json.loads((stubs_dir / "__files" / items_mapping["response"]["bodyFileName"]).read_text()) == [{"id": 1}]

    # Offline forever: the real service is gone, a new server replays from the directory.
    upstream.stop()
    replay = refservers_start("http", stubs_dir=str(stubs_dir), unmatched="404")
    again = requests.get(replay.url + "/api/items?page=1", timeout=10)
    assert (again.status_code, again.json(), again.headers["X-Upstream"]) == (200, [{"id": 1}], "yes")
    assert requests.post(replay.url + "/api/items", json={"name": "tea"}, timeout=10).json() == {"created": True}
    assert [requests.get(replay.url + "/api/health", timeout=10).status_code for _ in range(3)] == [503, 200, 200]
    echoed = requests.get(replay.url + "/anything/recorded?x=1", timeout=10).json()
    assert echoed["args"] == {"x": "1"} and echoed["url"] == live["httpbin"].json()["url"]
    assert requests.get(replay.url + "/api/other", timeout=10).status_code == 404


def test_snapshot_of_a_proxy_stub(refservers_http: Server, refservers_start: Any, tmp_path: Path) -> None:
    upstream = refservers_http
    _upstream(upstream)
    front = refservers_start("http", stubs_dir=str(tmp_path / "snap"))
    front.stub(request={"urlPathPattern": "/api/.*"}, response={"proxyBaseUrl": upstream.url})
    assert requests.get(front.url + "/api/items?page=1", timeout=10).json() == [{"id": 1}]
    snapshot = admin(front, "POST", "/recordings/snapshot", json={"persist": False}).json()["mappings"]
    assert [m["request"]["url"] for m in snapshot] == ["/api/items?page=1"]
    assert json.loads(snapshot[0]["response"]["body"]) == [{"id": 1}]
    assert not (tmp_path / "snap" / "mappings").exists()  # persist: false keeps them in memory


def test_proxied_stubs_go_through_the_proxy_and_its_toxics(refservers_http: Server, refservers_start: Any) -> None:
    upstream = refservers_http
    _upstream(upstream)
    proxy = refservers_start("proxy")
    front = refservers_start("http", upstream_proxy=f"http://127.0.0.1:{proxy.port}")
    front.stub(request={"urlPathPattern": "/api/.*"}, response={"proxyBaseUrl": upstream.url})
    proxy.core.faults.add({"server": "proxy", "action": "latency", "match": "*/api/items*", "params": {"latency": 400}})
    started = time.monotonic()
    assert requests.get(front.url + "/api/items?page=1", timeout=10).json() == [{"id": 1}]
    assert time.monotonic() - started >= 0.4
    event = proxy.journal.wait_for(lambda e: e.details.get("target", "").endswith("/api/items?page=1"), server="proxy", kind="request")
    assert event.details["toxics"] == ["latency"]


def test_upstream_proxy_must_be_an_http_url(refservers_start: Any) -> None:
    with pytest.raises(ConfigError, match=r"^\[http\] upstream_proxy: expected http://host:port, got 'proxy:3128'$"):
        refservers_start("http", upstream_proxy="proxy:3128")
