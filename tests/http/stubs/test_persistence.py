"""Mapping files: persistence as WireMock 3 does it, read-only stub packs, bad files at start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from servers.core.config import ConfigError

ORDER = {"request": {"method": "GET", "url": "/orders"}, "response": {"status": 200, "body": "orders"}}


def admin(server: Any, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{server.url}/__admin{path}", timeout=10, **kwargs)


def mapping_files(stubs_dir: Path) -> list[Path]:
    return sorted((stubs_dir / "mappings").glob("*.json")) if (stubs_dir / "mappings").is_dir() else []


def test_persistent_stub_is_written_at_once_and_deleted_with_its_file(refservers_start: Any, tmp_path: Path) -> None:
    server = refservers_start("http", stubs_dir=str(tmp_path))
    stub_id = admin(server, "POST", "/mappings", json={**ORDER, "persistent": True}).json()["id"]
    [written] = mapping_files(tmp_path)
    assert stub_id in written.name and json.loads(written.read_text())["request"] == ORDER["request"]
    admin(server, "POST", "/mappings", json={"request": {"url": "/memory"}, "response": {"status": 204}})
    assert len(mapping_files(tmp_path)) == 1  # not persistent: memory only
    assert admin(server, "DELETE", f"/mappings/{stub_id}").status_code == 200
    assert mapping_files(tmp_path) == []


def test_save_writes_every_stub_and_reset_reloads_from_files(refservers_start: Any, tmp_path: Path) -> None:
    server = refservers_start("http", stubs_dir=str(tmp_path))
    admin(server, "POST", "/mappings", json=ORDER)
    assert mapping_files(tmp_path) == []
    assert admin(server, "POST", "/mappings/save").status_code == 200
    assert len(mapping_files(tmp_path)) == 1
    admin(server, "POST", "/mappings", json={"request": {"url": "/memory"}, "response": {"status": 204}})
    assert admin(server, "POST", "/reset").status_code == 200
    urls = [m["request"]["url"] for m in admin(server, "GET", "/mappings").json()["mappings"]]
    assert urls == ["/orders"]  # the saved one came back from its file, the other is gone
    assert requests.get(server.url + "/orders", timeout=10).text == "orders"
    # A restarted server with the same directory has it too.
    again = refservers_start("http", stubs_dir=str(tmp_path))
    assert requests.get(again.url + "/orders", timeout=10).text == "orders"


def test_edit_of_a_persistent_stub_rewrites_its_file(refservers_start: Any, tmp_path: Path) -> None:
    server = refservers_start("http", stubs_dir=str(tmp_path))
    stub_id = admin(server, "POST", "/mappings", json={**ORDER, "persistent": True}).json()["id"]
    admin(server, "PUT", f"/mappings/{stub_id}", json={**ORDER, "response": {"status": 200, "body": "edited"}})
    [written] = mapping_files(tmp_path)
    assert json.loads(written.read_text())["response"]["body"] == "edited"


def _pack(base: Path) -> Path:
    pack = base / "packs" / "shop"
    (pack / "mappings").mkdir(parents=True)
    (pack / "__files").mkdir()
    (pack / "__files" / "catalog.json").write_text('{"items": ["tea"]}')
    (pack / "mappings" / "catalog.json").write_text(
        json.dumps({"request": {"url": "/catalog"}, "response": {"bodyFileName": "catalog.json", "headers": {"Content-Type": "application/json"}}})
    )
    return base / "packs"


def test_stub_packs_are_loaded_read_only(refservers_start: Any, tmp_path: Path) -> None:
    packs = _pack(tmp_path)
    stubs_dir = tmp_path / "stubs"
    server = refservers_start("http", stubs_dir=str(stubs_dir), stub_packs=str(packs))
    assert requests.get(server.url + "/catalog", timeout=10).json() == {"items": ["tea"]}
    [mapping] = admin(server, "GET", "/mappings").json()["mappings"]
    admin(server, "POST", "/mappings/save")
    assert mapping_files(stubs_dir) == []  # packs are never written
    admin(server, "DELETE", f"/mappings/{mapping['id']}")
    assert (packs / "shop" / "mappings" / "catalog.json").exists()
    assert requests.get(server.url + "/catalog", timeout=10).status_code == 404
    admin(server, "POST", "/mappings/reset")
    assert requests.get(server.url + "/catalog", timeout=10).status_code == 200


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"request": {"url": "/x"', r"bad\.json: invalid JSON"),
        ('{"request": {"url": "/x", "method": 5}}', r"bad\.json: request\.method: expected an HTTP method"),
        ('{"mappings": [{"request": {}}, {"request": {"urlPath": "/y"}, "response": {"status": "ok"}}]}', r"bad\.json: mappings\[1\]\.response\.status: expected an HTTP status code"),
        ('{"request": {"url": "/x"}, "response": {"body": "{{#each x}}{{/if}}", "transformers": ["response-template"]}}', r"bad\.json: response\.body: template does not parse"),
    ],
)
def test_a_bad_mapping_file_fails_start_up_naming_file_and_field(refservers_start: Any, tmp_path: Path, content: str, expected: str) -> None:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "bad.json").write_text(content)
    with pytest.raises(ConfigError, match=r"^\[http\] stubs: .*" + expected) as raised:
        refservers_start("http", stubs_dir=str(tmp_path))
    assert "\n" not in str(raised.value)
