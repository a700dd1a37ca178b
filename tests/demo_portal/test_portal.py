"""The demo portal over real HTTP on loopback: sign-in, search, validation, submission, export, faults."""

from __future__ import annotations

import datetime as dt
import re

from collections.abc import Iterator

import httpx
import pytest

from demo_portal import PortalProcess

_clients: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


def signed_in(portal: PortalProcess) -> httpx.Client:
    client = httpx.Client(base_url=portal.url, follow_redirects=True, timeout=10)
    _clients.append(client)
    page = client.post("/login", data={"username": "clerk", "password": "demo-password"})
    assert page.status_code == 200 and "Find a case" in page.text
    return client


def change(client: httpx.Client, ref: str, **overrides: str) -> httpx.Response:
    form = client.get(f"/cases/{ref}/address").text
    token = re.search(r'name="form_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    data = {"form_token": token, "address_line1": "1 High Street", "city": "Leeds", "postcode": "LS1 4AB",
            "country": "GB-ENG", "contact_method": "email", "effective_date": dt.date.today().isoformat(),
            "consent": "yes", "your_ref": ref, **overrides}
    return client.post(f"/cases/{ref}/address", data=data)


def test_pages_need_a_session_and_a_wrong_password_is_refused(portal: PortalProcess) -> None:
    client = httpx.Client(base_url=portal.url, timeout=10)
    _clients.append(client)
    assert client.get("/cases").status_code == 303
    assert client.post("/login", data={"username": "clerk", "password": "nope"}).status_code == 401


def test_a_valid_change_is_confirmed_exported_and_shown_in_the_history(portal: PortalProcess) -> None:
    client = signed_in(portal)
    page = change(client, "CASE-000042")
    confirmation = re.search(r'id="confirmation-ref"[^>]*>(CHG-\d+)<', page.text).group(1)  # type: ignore[union-attr]
    export = httpx.get(f"{portal.url}/api/export").json()
    assert [(e["case_ref"], e["confirmation"], e["values"]["postcode"]) for e in export] == [
        ("CASE-000042", confirmation, "LS1 4AB")]
    assert f'data-your-ref="CASE-000042"><td class="confirmation">{confirmation}' in client.get("/cases/CASE-000042").text


def test_a_change_breaking_a_rule_shows_the_error_and_is_not_recorded(portal: PortalProcess) -> None:
    client = signed_in(portal)
    page = change(client, "CASE-000043", postcode="ZZ9 9XX")
    assert "Postcode not recognised in the address directory" in page.text and 'class="error-summary"' in page.text
    assert httpx.get(f"{portal.url}/api/export").json() == []


def test_a_form_token_is_good_for_one_submission_only(portal: PortalProcess) -> None:
    client = signed_in(portal)
    form = client.get("/cases/CASE-000044/address").text
    token = re.search(r'name="form_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    data = {"form_token": token, "address_line1": "1 A St", "city": "York", "postcode": "YO1 7HH",
            "country": "GB-ENG", "contact_method": "post", "effective_date": dt.date.today().isoformat(),
            "consent": "yes"}
    assert "Change recorded" in client.post("/cases/CASE-000044/address", data=data).text
    assert "This form has expired" in client.post("/cases/CASE-000044/address", data=data).text
    assert len(httpx.get(f"{portal.url}/api/export").json()) == 1


def test_the_fault_knobs_turn_page_requests_into_503s_but_leave_the_api_alone(portal: PortalProcess) -> None:
    assert httpx.put(f"{portal.url}/api/faults", json={"error_rate": 1.0}).status_code == 200
    assert httpx.get(f"{portal.url}/login").status_code == 503
    assert httpx.get(f"{portal.url}/api/export").status_code == 200
    assert httpx.put(f"{portal.url}/api/faults", json={"bogus": 1}).status_code == 400


def test_the_portal_counts_sessions_at_once_and_sessions_and_pages_started_in_the_busiest_minute(
        portal: PortalProcess) -> None:
    from concurrent.futures import ThreadPoolExecutor

    assert httpx.put(f"{portal.url}/api/faults", json={"latency_ms": 1500}).status_code == 200
    httpx.delete(f"{portal.url}/api/load").raise_for_status()

    def visit(_: int) -> int:  # one client (one connection) a visitor, three pages each
        with httpx.Client(base_url=portal.url, timeout=30) as client:
            return sum(client.get("/login").status_code == 200 for _ in range(3))

    with ThreadPoolExecutor(max_workers=3) as pool:
        pages = list(pool.map(visit, range(3)))
    httpx.get(f"{portal.url}/api/export")  # the API is not a visit
    load = httpx.get(f"{portal.url}/api/load").json()
    assert pages == [3, 3, 3]
    assert load["sessions_peak"] == 3 and load["sessions_now"] == 0, load
    assert load["sessions_started"] == 3 and load["sessions_started_busiest_minute"] in (2, 3), load
    assert load["requests"] == 9 and load["requests_busiest_60s"] == 9, load
    reset = httpx.delete(f"{portal.url}/api/load").json()
    assert reset["sessions_peak"] == 0 and reset["requests"] == 0


def test_the_busiest_minute_and_the_busiest_60_seconds_count_what_they_say() -> None:
    from demo_portal.load import EventCounter, LoadMeter

    counter = EventCounter()
    for at in [0.0, 10.0, 59.9, 60.0, 100.0, 119.8, 125.0]:
        counter.add(at)
    assert counter.total == 7
    assert counter.busiest_60s == 4  # 59.9, 60, 100 and 119.8 (0 and 60 are a full minute apart)
    assert counter.busiest_minute == 3  # 00:00-00:59 holds 0, 10, 59.9; 01:00-01:59 holds 60, 100, 119.8
    assert EventCounter().busiest_60s == EventCounter().busiest_minute == 0

    meter = LoadMeter()
    meter.started(("127.0.0.1", 50000), now=0.0)
    meter.finished(("127.0.0.1", 50000), now=1.0)
    meter.started(("127.0.0.1", 50000), now=2.0)  # the same connection: the same session
    meter.started(("127.0.0.1", 50001), now=3.0)
    assert (meter.sessions.total, meter.requests.total, meter.peak_in_flight) == (2, 3, 2)
