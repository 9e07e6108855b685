"""The guard reads every page of the Store's failure and usage data as documented, or
none: paged, unordered, fractional, late or malformed, and a page it cannot read makes
the target failed with nothing halted, never a smaller sample (contract: "Halt on
evidence", how the data are read; "Missing evidence never halts and never passes")."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from halt_rollout.analytics import ANALYTICS, _next_page
from store_emulator import Emulator, Fault

from .conftest import APP_ID, DEADLINE_ALLOWANCE, FALLBACK, FLIGHT_ID, PUBLISHED, RunAction
from .test_guard import GUARD, NEW, OLD, analytics_requests, evidence_of, rollout_status, script
from .world import CANCEL_SECONDS, Running, requests_after

USAGE = r"/analytics/usagedaily$"
FAILURES = r"/analytics/failurehits$"
ROOT = "https://store.example/v1.0/my/"
QUERY = {"applicationId": APP_ID, "groupby": "packageVersion,date"}


def today() -> Any:
    return datetime.now(UTC).date()


def test_every_page_counts_through_relative_unencoded_links(
    action: RunAction, emulator: Emulator
) -> None:
    script(emulator, "failing")
    whole = action(GUARD)
    emulator.set_rollout(APP_ID, PUBLISHED, fallback=FALLBACK)  # rolling out again
    emulator.reset_requests()
    emulator.analytics.knobs.page_cap = 3
    paged = action(GUARD)
    assert paged.outputs["result"] == "halted", paged.stdout
    (one,), (other,) = evidence_of(whole), evidence_of(paged)
    assert one == other  # the same figures, whatever the page size
    skips = [r.query.get("skip") for r in emulator.store_requests if r.path.endswith("failurehits")]
    assert len(skips) > 3
    assert skips == [None, *(str(3 * n) for n in range(1, len(skips)))]
    # Each link followed on the report's own path, still grouped as asked.
    pages = [r for r in emulator.store_requests if "/analytics/" in r.path]
    assert {r.path for r in pages} == {
        "/v1.0/my/analytics/usagedaily",
        "/v1.0/my/analytics/failurehits",
    }
    assert all(
        r.query["groupby"] in ("packageVersion,date", "packageVersion,eventType") for r in pages
    )


def test_links_with_raw_spaces_and_quotes_are_followed_as_written(
    action: RunAction, emulator: Emulator
) -> None:
    """As documented, a link is not URL-encoded: a filter in it keeps its raw spaces and
    quotes. The page it names is read, with the filter as the Store wrote it."""
    script(emulator, "failing")
    whole = evidence_of(action(GUARD))
    emulator.set_rollout(APP_ID, PUBLISHED, fallback=FALLBACK)  # rolling out again
    emulator.reset_requests()
    raw = "market eq 'US' and deviceType eq 'PC'"
    emulator.analytics.knobs.page_cap = 4
    emulator.analytics.knobs.link_filter = raw
    run = action(GUARD)
    assert run.outputs["result"] == "halted", run.stdout
    assert evidence_of(run) == whole
    followed = [r for r in emulator.store_requests if "/analytics/" in r.path and "skip" in r.query]
    assert len(followed) > 2
    assert {r.query["filter"] for r in followed} == {raw}


def test_the_figures_are_the_stores_fractional_counts(
    action: RunAction, emulator: Emulator
) -> None:
    script(emulator, "failing")
    emulator.analytics.knobs.shuffle = True  # rows in no particular order
    (evidence,) = evidence_of(action(GUARD))
    assert not float(evidence["rolling-out"]["failing-devices"]).is_integer()
    requests = analytics_requests(emulator)
    assert sorted(set(requests)) == [
        "/v1.0/my/analytics/failurehits",
        "/v1.0/my/analytics/usagedaily",
    ]


def test_late_usage_is_left_out_of_both_sides_never_counted_as_zero(
    action: RunAction, emulator: Emulator
) -> None:
    script(emulator, "healthy")
    emulator.analytics.knobs.usage_lag_days = 2  # failures of the last two days, no usage yet
    run = action(GUARD)
    assert run.outputs["result"] == "healthy", run.stdout
    (evidence,) = evidence_of(run)
    assert evidence["period"]["to"] == (today() - timedelta(days=2)).isoformat()
    assert evidence["rolling-out"]["active-devices"] == 5 * 4000


def test_late_failure_data_end_the_period_never_counted_as_zero(
    action: RunAction, emulator: Emulator
) -> None:
    """Usage through today, failures only up to two days ago: the two newest days have
    usage and no failure rows, yet they are late, not healthy; left out of both sides."""
    script(emulator, "failing")
    emulator.analytics.knobs.failure_lag_days = 2
    run = action(GUARD)
    assert run.outputs["result"] == "halted", run.stdout
    (evidence,) = evidence_of(run)
    assert evidence["period"]["to"] == (today() - timedelta(days=2)).isoformat()
    assert evidence["rolling-out"]["active-devices"] == 5 * 4000
    assert evidence["fallback"]["active-devices"] == 5 * 16000


def test_rows_outside_the_days_asked_for_are_ignored(action: RunAction, emulator: Emulator) -> None:
    script(emulator, "healthy")
    tomorrow = today() + timedelta(days=1)  # the docs' sample has a row a day after endDate
    emulator.analytics.add_usage(APP_ID, tomorrow, NEW, 4000.0)
    emulator.analytics.add_usage(APP_ID, tomorrow, OLD, 16000.0)
    emulator.analytics.add_failures(APP_ID, tomorrow, NEW, "crash", 3000.0)
    run = action(GUARD)
    assert run.outputs["result"] == "healthy", run.stdout
    assert evidence_of(run)[0]["period"]["to"] == today().isoformat()


@pytest.mark.parametrize("written", ["T00:00:00", " 00:00:00", "T00:00:00.000+00:00"])
def test_a_rows_date_with_a_time_is_that_day(
    action: RunAction, emulator: Emulator, written: str
) -> None:
    """The hour level writes `yyyy-mm-dd hh:mm:ss`; ISO 8601's other spellings of a day
    with a time are the same day, not a page of another shape."""
    script(emulator, "failing")
    plain = evidence_of(action(GUARD))
    emulator.set_rollout(APP_ID, PUBLISHED, fallback=FALLBACK)  # rolling out again
    emulator.analytics.knobs.date_suffix = written
    run = action(GUARD)
    assert run.outputs["result"] == "halted", run.stdout
    assert evidence_of(run) == plain


def test_a_row_of_no_version_counts_for_neither_side(action: RunAction, emulator: Emulator) -> None:
    """Xbox's usage has no packageVersion, as documented: not a malformed page."""
    script(emulator, "healthy")
    xbox = {"date": today().isoformat(), "packageVersion": None, "dailyActiveDevices": 9e6}
    emulator.add_fault(Fault(method="GET", path=USAGE, status=200, body={"Value": [xbox]}))
    run = action(GUARD)
    assert (run.exit_code, run.outputs["result"]) == (0, "inconclusive"), run.stdout
    assert "1 row(s) without a packageVersion left out" in run.stdout


def test_a_throttled_read_waits_as_asked_then_decides(
    action: RunAction, emulator: Emulator
) -> None:
    script(emulator, "failing")
    emulator.add_fault(Fault(method="GET", path=FAILURES, status=429, headers={"Retry-After": "1"}))
    run = action(GUARD)
    assert run.outputs["result"] == "halted", run.stdout
    assert "429 from the Store; waiting 1 s as Retry-After asks (attempt 2)" in run.stdout


def _refused_by(emulator: Emulator, run: Any, *words: str) -> None:
    assert (run.exit_code, run.outputs["result"]) == (1, "failed"), run.stdout
    assert emulator.halt_requests == []
    assert rollout_status(emulator) == "PackageRolloutInProgress"
    assert run.outputs["evidence"] == "[]"
    (error,) = run.errors
    assert "the failure data could not be read; nothing was halted" in error
    for word in words:
        assert word in error, error


def test_the_documented_400_is_shown(action: RunAction, emulator: Emulator) -> None:
    script(emulator, "failing")
    emulator.analytics.knobs.status = 400
    _refused_by(emulator, action(GUARD), "HTTP 400", "top parameter cannot be more than 10000")


def _row(**fields: Any) -> dict[str, Any]:
    return {"applicationId": APP_ID, "packageVersion": NEW, **fields}


@pytest.mark.parametrize(
    ("path", "page", "said"),
    [
        (USAGE, {"Value": [_row(dailyActiveDevices=10.0)]}, "a row has no date"),
        (USAGE, {"Value": [_row(date="someday", dailyActiveDevices=1)]}, "not a date"),
        (USAGE, {"Value": [{"date": "2026-01-01", "packageVersion": "All"}]}, "not grouped"),
        (
            FAILURES,
            {"Value": [_row(date="2026-01-01", eventType="crash", deviceCount="7")]},
            "deviceCount",
        ),
        (FAILURES, {"value": "rows"}, "no list of rows"),
        (USAGE, {"Value": [], "TotalCount": 40}, "TotalCount"),
        # More devices than exist: not a count, and sums of such would overflow to infinity.
        (
            USAGE,
            {"Value": [_row(date="2026-01-01", dailyActiveDevices=1e308)]},
            "not a count of devices",
        ),
        (
            FAILURES,
            {"Value": [_row(date="2026-01-01", eventType="crash", deviceCount=1e30)]},
            "not a count of devices",
        ),
    ],
)
def test_a_page_not_of_the_documented_shape_makes_the_evidence_unreadable(
    action: RunAction, emulator: Emulator, path: str, page: dict[str, Any], said: str
) -> None:
    script(emulator, "failing")
    emulator.add_fault(Fault(method="GET", path=path, status=200, body=page))
    _refused_by(emulator, action(GUARD), said)


def test_a_later_page_that_fails_fails_the_whole_read(
    action: RunAction, emulator: Emulator
) -> None:
    script(emulator, "failing")
    emulator.analytics.knobs.page_cap = 5
    # Pages 1 and 2 are served; from page 3 on the Store keeps failing.
    emulator.add_fault(Fault(method="GET", path=FAILURES, times=2, kind="delay", seconds=0.0))
    emulator.add_fault(Fault(method="GET", path=FAILURES, times=None, status=503))
    _refused_by(emulator, action({**GUARD, "timeout-seconds": "6"}), "HTTP 503")


@pytest.mark.parametrize("link", [None, "", "  ", "absent"])
def test_a_last_page_names_no_next_one_in_any_of_its_spellings(
    action: RunAction, emulator: Emulator, link: str | None
) -> None:
    """`"@nextLink": null` (an old sample's), empty, blank or absent: the last page. A
    Store that always answers so is read once, not as a loop."""
    script(emulator, "failing")
    page: dict[str, Any] = {"Value": [_row(date=today().isoformat(), dailyActiveDevices=3.5)]}
    if link != "absent":
        page["@nextLink"] = link
    emulator.add_fault(Fault(method="GET", path=USAGE, status=200, body=page, times=None))
    run = action(GUARD)
    assert (run.exit_code, run.outputs["result"]) == (0, "inconclusive"), run.stdout
    assert analytics_requests(emulator).count("/v1.0/my/analytics/usagedaily") == 1


@pytest.mark.parametrize(
    ("link", "said"),
    [
        (
            "https://evil.example/v1.0/my/analytics/usagedaily?skip=1",
            "away from the Store's own host",
        ),
        ("//evil.example/v1.0/my/analytics/usagedaily?skip=1", "away from the Store's own host"),
        ("http://127.0.0.1/v1.0/my/analytics/usagedaily?skip=1", "away from the Store's own host"),
        ("../applications/9NBLGGH4R315/submissions?skip=1", "not a further page of usagedaily"),
        ("usagedaily?applicationId=9WZDNCRFJ3PS&skip=1", "another applicationId"),
    ],
)
def test_a_next_link_elsewhere_is_refused(
    action: RunAction, emulator: Emulator, link: str, said: str
) -> None:
    script(emulator, "failing")
    page = {"Value": [_row(date=today().isoformat(), dailyActiveDevices=3.5)], "@nextLink": link}
    emulator.add_fault(Fault(method="GET", path=USAGE, status=200, body=page))
    _refused_by(emulator, action(GUARD), said)


def test_a_next_link_that_loops_is_refused(action: RunAction, emulator: Emulator) -> None:
    script(emulator, "failing")
    page = {
        "Value": [_row(date=today().isoformat(), dailyActiveDevices=3.5)],
        "@nextLink": f"usagedaily?applicationId={APP_ID}&skip=1",
    }
    emulator.add_fault(Fault(method="GET", path=USAGE, status=200, body=page, times=None))
    _refused_by(emulator, action(GUARD), "already read")


def test_a_next_link_is_resolved_on_the_report_and_encoded() -> None:
    """As documented: relative to the report, with raw spaces and quotes in it."""
    link = (
        "usagedaily?applicationId=9NBLGGH4R315&filter=market eq 'US' and deviceType eq 'PC'&skip=10"
    )
    path = _next_page(ROOT, "usagedaily", link, QUERY)
    assert path == (
        f"{ANALYTICS}usagedaily?applicationId=9NBLGGH4R315"
        "&filter=market%20eq%20'US'%20and%20deviceType%20eq%20'PC'&skip=10"
        "&groupby=packageVersion,date"  # kept as asked when the link drops it
    )
    # Relative to the API root, absolute on the host, or whole: the same page.
    for same in (f"analytics/{link}", f"/v1.0/my/analytics/{link}", f"{ROOT}analytics/{link}"):
        assert _next_page(ROOT, "usagedaily", same, QUERY) == path
    # An escape the Store did write is not escaped twice.
    assert "%20" in _next_page(ROOT, "usagedaily", "usagedaily?filter=a%20b", QUERY)
    assert "%2520" not in _next_page(ROOT, "usagedaily", "usagedaily?filter=a%20b", QUERY)


OTHER_FLIGHT = "5a1c0d4e-2b7f-4c9e-9d3a-6f8e1b2c3d4e"


def healthy_flight(emulator: Emulator) -> None:
    """The demo flight's rollout, scripted healthy against its own fallback."""
    emulator.script_guard(
        APP_ID,
        PUBLISHED,
        flight_id=FLIGHT_ID,
        scenario="healthy",
        fallback="1152921504621086000",
        version="1.5.0.0",
        fallback_version="1.4.9.0",
    )


def test_each_flight_is_judged_on_its_own_evidence(action: RunAction, emulator: Emulator) -> None:
    script(emulator, "failing")  # the app's own rollout
    healthy_flight(emulator)
    emulator.add_flight(APP_ID, OTHER_FLIGHT, last_published="1152921504621099001", name="Beta")
    emulator.script_guard(
        APP_ID,
        "1152921504621099001",
        flight_id=OTHER_FLIGHT,
        scenario="too-early",
        fallback="1152921504621099000",
        version="1.6.0.0",
        fallback_version="1.5.9.0",
    )
    run = action({**GUARD, "all-flights": "true"})
    assert (run.exit_code, run.outputs["result"]) == (0, "halted"), run.stdout
    outcomes = {(e["flight-id"], e["outcome"]) for e in evidence_of(run)}
    assert outcomes == {
        (None, "failing"),
        (FLIGHT_ID, "healthy"),
        (OTHER_FLIGHT, "inconclusive"),
    }
    results = {r["flight-id"]: r["result"] for r in json.loads(run.outputs["results"])}
    assert results == {None: "halted", FLIGHT_ID: "healthy", OTHER_FLIGHT: "inconclusive"}
    (halt,) = emulator.halt_requests
    assert "/flights/" not in halt.path
    # The app's analytics are read once for all its rollouts.
    assert analytics_requests(emulator).count("/v1.0/my/analytics/usagedaily") == 1


def test_a_blind_guard_fails_every_rollout_of_the_app(
    action: RunAction, emulator: Emulator
) -> None:
    script(emulator, "failing")
    emulator.analytics.knobs.status = 403
    run = action({**GUARD, "all-flights": "true"})
    assert (run.exit_code, run.outputs["result"]) == (1, "failed")
    assert emulator.halt_requests == []
    results = [r["result"] for r in json.loads(run.outputs["results"])]
    assert results == ["failed", "failed"]


def test_a_flights_fallback_is_read_where_it_lives(action: RunAction, emulator: Emulator) -> None:
    """A flight's fallback may be an app submission: read there when the flight has none."""
    script(emulator, "failing")
    healthy_flight(emulator)
    emulator.set_rollout(APP_ID, PUBLISHED, flight_id=FLIGHT_ID, fallback=FALLBACK)
    run = action({**GUARD, "flight-id": FLIGHT_ID})
    assert run.exit_code == 0, run.stdout
    (evidence,) = evidence_of(run)
    assert evidence["fallback"]["versions"] == [OLD]
    read = [r.path for r in emulator.store_requests if r.path.endswith(f"/submissions/{FALLBACK}")]
    assert read == [
        f"/v1.0/my/applications/{APP_ID}/flights/{FLIGHT_ID}/submissions/{FALLBACK}",
        f"/v1.0/my/applications/{APP_ID}/submissions/{FALLBACK}",
    ]


def test_an_analytics_read_that_hangs_ends_by_the_deadline(
    action: RunAction, emulator: Emulator
) -> None:
    script(emulator, "failing")
    emulator.add_fault(Fault(method="GET", path=FAILURES, kind="hang", seconds=60.0))
    run = action({**GUARD, "timeout-seconds": "3"})
    assert run.seconds < 3 + DEADLINE_ALLOWANCE
    _refused_by(emulator, run)
    # The deadline cuts the read ("in time"); on a busy machine the socket's own timeout,
    # set to the time left, may fire first: then no time is left for another attempt.
    (error,) = run.errors
    assert "in time" in error or "no time is left of timeout-seconds (3)" in error, error


def test_a_cancel_during_an_analytics_read_halts_nothing_and_says_so(
    emulator: Emulator,
    start: Callable[..., Running],
) -> None:
    script(emulator, "failing")
    emulator.add_fault(Fault(method="GET", path=FAILURES, kind="hang", seconds=60, times=None))
    running = start(GUARD)
    running.wait_for(
        lambda: any(r.path.endswith("/failurehits") for r in emulator.requests), "analytics read"
    )
    signalled = time.monotonic()
    took = running.signal_and_time(signal.SIGINT)
    assert took <= CANCEL_SECONDS, running.stdout
    assert running.process.returncode == 1
    outputs = running.outputs
    assert (outputs["result"], outputs["evidence"]) == ("failed", "[]")
    (record,) = json.loads(outputs["results"])
    assert "nothing was halted" in record["error"]
    (error,) = running.error_lines
    assert error.startswith("::error title=Run cancelled::")
    assert emulator.halt_requests == []
    assert requests_after(emulator, signalled) == []
