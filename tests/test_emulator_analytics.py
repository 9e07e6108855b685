"""The emulator's analytics answer as store-api.md's "Store analytics" documents them, quirks
included, so that the guard's tests run against the documented Store, not a convenient one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from store_emulator import Emulator

from .conftest import APP_ID, FALLBACK, PUBLISHED
from .test_emulator import Client, client, emu  # noqa: F401 (fixtures)

TODAY = datetime.now(UTC).date()
DATES = {
    "startDate": (TODAY - timedelta(days=29)).strftime("%m/%d/%Y"),
    "endDate": TODAY.strftime("%m/%d/%Y"),
}


@pytest.fixture
def scripted(emu: Emulator) -> Emulator:  # noqa: F811 (the fixture)
    emu.script_guard(
        APP_ID,
        PUBLISHED,
        scenario="failing",
        fallback=FALLBACK,
        version="1.4.2.0",
        fallback_version="1.4.1.0",
    )
    return emu


def report(client: Client, name: str, **query: Any) -> requests.Response:  # noqa: F811
    return client.store("GET", f"analytics/{name}", params={"applicationId": APP_ID, **query})


def test_usage_without_groupby_is_one_row_without_a_date(
    scripted: Emulator,
    client: Client,  # noqa: F811 (the fixture)
) -> None:
    body = report(client, "usagedaily", **DATES).json()
    (row,) = body["Value"]
    assert "date" not in row
    assert row["packageVersion"] == "All"
    grouped = report(client, "usagedaily", groupby="packageVersion,date", **DATES).json()
    assert {row["packageVersion"] for row in grouped["Value"]} == {"1.4.2.0", "1.4.1.0", "0.9.0.0"}
    assert all("date" in row for row in grouped["Value"])


def test_failures_are_fractional_and_finer_groups_count_a_device_twice(
    scripted: Emulator,
    client: Client,  # noqa: F811 (the fixture)
) -> None:
    grouped = report(
        client,
        "failurehits",
        groupby="packageVersion,eventType",
        aggregationLevel="day",
        **DATES,
    ).json()["Value"]
    unique = sum(r["deviceCount"] for r in grouped if r["eventType"] == "crash")
    assert not unique.is_integer()
    assert all(row["osArchitecture"] is None for row in grouped)  # extra null fields
    by_name = report(client, "failurehits", **DATES).json()["Value"]
    assert all("failureName" in row for row in by_name)
    assert sum(r["deviceCount"] for r in by_name if r["eventType"] == "crash") > unique


def test_pages_link_on_relative_and_unencoded(
    scripted: Emulator,
    client: Client,  # noqa: F811 (the fixture)
) -> None:
    scripted.analytics.knobs.page_cap = 4
    body = report(client, "usagedaily", groupby="packageVersion,date", **DATES).json()
    assert len(body["Value"]) == 4
    assert body["TotalCount"] > 4
    link = body["@nextLink"]
    assert link.startswith("usagedaily?applicationId=")
    assert "skip=4" in link
    assert "startDate=" + DATES["startDate"] in link  # as sent: slashes not encoded


def test_top_over_ten_thousand_is_the_documented_400(
    client: Client,  # noqa: F811 (the fixture)
) -> None:
    answer = report(client, "failurehits", top="10001")
    assert answer.status_code == 400
    body = answer.json()
    assert body["innererror"]["data"] == ["top parameter cannot be more than 10000"]
    assert body["source"] == "AnalyticsAPI"


def test_lag_and_refusals_by_knob(
    scripted: Emulator,
    client: Client,  # noqa: F811 (the fixture)
) -> None:
    scripted.analytics.knobs.usage_lag_days = 3
    rows = report(client, "usagedaily", groupby="packageVersion,date", **DATES).json()["Value"]
    assert max(row["date"] for row in rows) == (TODAY - timedelta(days=3)).isoformat()
    scripted.analytics.knobs.status = 429
    scripted.analytics.knobs.retry_after = 2
    throttled = report(client, "usagedaily")
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "2")
    scripted.analytics.knobs.status = 403
    assert report(client, "usagedaily").status_code == 403


def test_the_control_api_scripts_a_guarded_rollout(
    emu: Emulator,  # noqa: F811 (the fixture)
    client: Client,  # noqa: F811 (the fixture)
) -> None:
    script = {
        "app_id": APP_ID,
        "submission_id": PUBLISHED,
        "scenario": "healthy",
        "fallback": FALLBACK,
        "version": "1.4.2.0",
        "fallback_version": "1.4.1.0",
    }
    assert client.call("POST", "/_emulator/analytics/script", json=script).status_code == 200
    knobs = client.call("POST", "/_emulator/analytics/knobs", json={"page_cap": 2}).json()
    assert knobs["page_cap"] == 2
    bad = client.call("POST", "/_emulator/analytics/knobs", json={"status": 418})
    assert bad.status_code == 400
    rows = report(client, "usagedaily", groupby="packageVersion,date", **DATES).json()["Value"]
    assert len(rows) == 2
