"""Admin API over real HTTP: health reflects server state, events reflect real traffic."""

from __future__ import annotations

import urllib.error
import urllib.request

from .conftest import call


def test_health_is_200_when_all_ready_and_503_after_a_stop(refservers_http, refservers_admin):
    status, health = call(refservers_admin.url + "/health")
    assert status == 200
    (entry,) = health["servers"]
    assert entry["name"] == "http" and entry["state"] == "ready"
    assert entry["listeners"] == refservers_http.listeners
    refservers_http.stop()
    status, health = call(refservers_admin.url + "/health")
    assert status == 503
    assert health["servers"][0]["state"] == "stopped"


def test_events_reflect_real_requests_and_can_be_filtered_and_cleared(refservers_http, refservers_admin):
    since = refservers_http.journal.last_id
    for path in ("/get", "/get?x=1"):
        with urllib.request.urlopen(refservers_http.url + path) as reply:
            reply.read()
    refservers_http.journal.wait_for(server="http", since=since, predicate=lambda e: e.kind == "request")
    status, body = call(f"{refservers_admin.url}/api/v1/events?server=http&since={since}")
    assert status == 200
    assert body["events"] and all(event["server"] == "http" for event in body["events"])
    assert all(event["id"] > since for event in body["events"])
    status, limited = call(f"{refservers_admin.url}/api/v1/events?server=http&limit=1")
    assert len(limited["events"]) == 1 and limited["events"][0]["id"] == body["events"][-1]["id"]
    assert call(refservers_admin.url + "/api/v1/events", "DELETE") == (200, {"cleared": True})
    assert call(f"{refservers_admin.url}/api/v1/events?server=http")[1]["events"] == []


def test_bad_query_and_unknown_paths_get_json_errors(refservers_admin):
    status, body = call(refservers_admin.url + "/api/v1/events?limit=many")
    assert status == 400 and "limit" in body["error"]
    status, body = call(refservers_admin.url + "/api/v1/nothing")
    assert status == 404
    status, body = call(refservers_admin.url + "/health", "POST", {})
    assert status == 405


def test_fault_rules_are_added_listed_and_removed(refservers_admin):
    base = refservers_admin.url + "/api/v1/faults"
    status, added = call(base, "POST", {"server": "http", "action": "delay", "match": "/get", "probability": 0.5, "seed": 3})
    assert status == 201
    rule_id = added["faults"][0]["id"]
    assert [rule["id"] for rule in call(base)[1]["faults"]] == [rule_id]
    assert call(f"{base}/{rule_id}", "DELETE") == (200, {"removed": rule_id})
    assert call(f"{base}/{rule_id}", "DELETE")[0] == 404
    assert call(base)[1]["faults"] == []


def test_invalid_fault_rules_are_refused_with_the_field_named(refservers_admin):
    base = refservers_admin.url + "/api/v1/faults"
    status, body = call(base, "POST", {"server": "nope", "action": "delay"})
    assert status == 400 and body["error"].startswith("rule 0: server: expected one of")
    status, body = call(base, "POST", {"server": "http", "action": "delay", "probability": 2})
    assert status == 400 and "probability" in body["error"]
    status, body = call(base, "POST", {"server": "http", "action": "delay", "colour": "red"})
    assert status == 400 and "unknown field 'colour'" in body["error"]


def test_index_lists_endpoints(refservers_admin):
    status, body = call(refservers_admin.url + "/api/v1")
    assert status == 200
    paths = {(e["method"], e["path"]) for e in body["endpoints"]}
    assert ("GET", "/health") in paths and ("DELETE", "/api/v1/events") in paths
