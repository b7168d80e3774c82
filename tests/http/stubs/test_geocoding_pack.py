"""The Geocoding example pack (configs/stubs/examples/geocoding) answers Google's JSON shape."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from servers.core import Server

PACKS = Path(__file__).resolve().parents[3] / "configs" / "stubs"


@pytest.fixture
def refservers_settings() -> list[str]:
    return [f"http.stub_packs={PACKS}"]


def geocode(server: Server, **params: str) -> dict:  # type: ignore[type-arg]
    answer = requests.get(server.url + "/maps/api/geocode/json", params=params, timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
    return answer.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("address", "formatted", "lat"),
    [
        ("1600 Amphitheatre Parkway, Mountain View, CA", "1600 Amphitheatre Pkwy, Mountain View, CA 94043, USA", 37.4224764),
        ("10 downing street, london", "10 Downing St, London SW1A 2AA, UK", 51.5033635),
        ("Eiffel Tower, Paris", "Champ de Mars, 5 Av. Anatole France, 75007 Paris, France", 48.8583701),
        ("Sydney Opera House", "Bennelong Point, Sydney NSW 2000, Australia", -33.8567844),
    ],
)
def test_known_addresses(refservers_http: Server, address: str, formatted: str, lat: float) -> None:
    reply = geocode(refservers_http, address=address, key="AIzaTest")
    assert reply["status"] == "OK"
    [result] = reply["results"]
    assert result["formatted_address"] == formatted
    assert result["geometry"]["location"]["lat"] == lat
    assert {"long_name", "short_name", "types"} <= set(result["address_components"][0])


def test_errors_in_googles_shape(refservers_http: Server) -> None:
    assert geocode(refservers_http, address="Nowhere 1", key="AIzaTest") == {"results": [], "status": "ZERO_RESULTS"}
    assert geocode(refservers_http, key="AIzaTest")["status"] == "INVALID_REQUEST"
    assert geocode(refservers_http, address="Sydney Opera House")["status"] == "REQUEST_DENIED"
