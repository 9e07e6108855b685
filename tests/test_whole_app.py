"""The whole app (the contract's "The whole app", `all-flights`) under failure, and a
pathologically nested GitHub OIDC token.

Listing an app's flights is that target's own work: it runs beside the other
targets and inside the deadline, the app's own rollout is halted whatever the
listing does, a flight entry that cannot be read is its own failed result, and a
listing that fails is a failed result named "flights of APP-ID". Every run is the
entrypoint in a subprocess against the emulator, as GitHub's runner runs it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from store_emulator import Emulator, Fault, demo

from .conftest import DEADLINE_ALLOWANCE, OTHER_APP, RunAction
from .world import (
    MIB,
    STARTUP_SLACK,
    World,
    describe,
    many_apps,
    results_of,
    traceback_free,
)

APP = demo.WHOLE_APP_ID
LISTING = r"/listflights/?$"
LISTING_NAME = f"flights of {APP}"
# B, beside the whole app: the emulator's other app, rolling out.
TARGETS = f"""\
targets:
  - app-id: {APP}
    all-flights: true
  - name: Tools
    app-id: {OTHER_APP}
"""


@pytest.fixture
def whole_app(emulator: Emulator) -> Emulator:
    emulator.seed_whole_app()
    return emulator


def records_of(run: Any) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(run.outputs["results"])
    return records


def expected_result(flight: demo.DemoFlight) -> str:
    if flight.index == demo.STOPPED_INDEX:
        return "already-halted"
    return "halted" if flight.in_progress else "nothing-to-halt"


def halt_paths(emulator: Emulator) -> list[str]:
    return [r.path for r in emulator.halt_requests]


# A listing that hangs or fails costs the other targets nothing ----------------------------


@pytest.mark.parametrize(
    "stall",
    [
        Fault(method="GET", path=LISTING, kind="hang", times=None),
        # A byte every second, without end: each read is quick, the answer never is.
        Fault(
            method="GET",
            path=LISTING,
            kind="trickle",
            status=200,
            body={"value": []},
            interval=1.0,
            endless=True,
            framing="chunked",
            times=None,
        ),
    ],
    ids=["hang", "trickle"],
)
def test_a_listing_that_never_ends_fails_alone_and_the_rest_is_halted(
    whole_app: Emulator, action: RunAction, stall: Fault
) -> None:
    whole_app.add_fault(stall)
    timeout = 6.0
    run = action(
        {"app-id": None, "targets": "t.yml", "timeout-seconds": f"{timeout:g}"},
        files={"t.yml": TARGETS},
    )
    assert run.exit_code == 1, run.stdout
    own, listing, tools = records_of(run)
    # The app's own rollout did not wait for its listing; B did not wait for either.
    assert (own["name"], own["flight-id"], own["result"]) == (APP, None, "halted")
    assert (tools["name"], tools["app-id"], tools["result"]) == ("Tools", OTHER_APP, "halted")
    assert listing["name"] == LISTING_NAME
    assert listing["result"] == "failed"
    assert "list the package flights" in listing["error"]
    assert "in time" in listing["error"]
    assert run.outputs["result"] == "failed"
    assert any(LISTING_NAME in error for error in run.errors)
    assert f"`{LISTING_NAME}`" in run.summary
    assert sorted(halt_paths(whole_app)) == sorted(
        [
            f"/v1.0/my/applications/{APP}/submissions/{demo.WHOLE_PUBLISHED}/haltpackagerollout",
            f"/v1.0/my/applications/{OTHER_APP}/submissions/{demo.OTHER_SUBMISSION}"
            "/haltpackagerollout",
        ]
    )
    assert run.seconds < timeout + DEADLINE_ALLOWANCE, run.seconds


def test_a_hung_listing_does_not_delay_another_targets_halt(
    whole_app: Emulator, action: RunAction
) -> None:
    whole_app.add_fault(Fault(method="GET", path=LISTING, kind="hang", times=None))
    run = action(
        {"app-id": None, "targets": "t.yml", "timeout-seconds": "5"}, files={"t.yml": TARGETS}
    )
    assert run.exit_code == 1, run.stdout
    requests = whole_app.requests
    first = requests[0].started  # the sign-in: the run's first request
    [listing] = [r for r in requests if r.path.endswith("/listflights")]
    halts = {r.path.split("/")[4]: r.started for r in whole_app.halt_requests}
    # Both halts reach the Store while the listing hangs, within about a second of the start.
    assert halts[OTHER_APP] - first < 1.0, halts[OTHER_APP] - first
    assert halts[APP] - first < 1.0, halts[APP] - first
    assert listing.status is None  # it never answered


def test_a_listing_failing_with_500_is_its_own_failed_result(
    whole_app: Emulator, action: RunAction
) -> None:
    whole_app.add_fault(
        Fault(
            method="GET",
            path=LISTING,
            status=500,
            body={"code": "InternalServerError", "message": "listing is down"},
            times=None,
        )
    )
    run = action({"app-id": APP, "all-flights": "true", "timeout-seconds": "4"})
    assert run.exit_code == 1, run.stdout
    own, listing = records_of(run)
    assert (own["flight-id"], own["result"]) == (None, "halted")
    assert listing["name"] == LISTING_NAME
    assert listing["result"] == "failed"
    assert "HTTP 500" in listing["error"]
    assert "listing is down" in listing["error"]
    correlations = {r.correlation_id for r in whole_app.requests if r.path.endswith("/listflights")}
    assert any(f"MS-CorrelationId: {c}" in listing["error"] for c in correlations)
    assert halt_paths(whole_app) == [
        f"/v1.0/my/applications/{APP}/submissions/{demo.WHOLE_PUBLISHED}/haltpackagerollout"
    ]


# A flight entry that cannot be read -----------------------------------------------------


@pytest.mark.parametrize(
    ("broken", "name"),
    [
        ({"flightId": "not-a-guid", "friendlyName": "Broken ring"}, "Broken ring"),
        ({"friendlyName": "No ID at all"}, "No ID at all"),
        ("a flight as a string", f"flight entry 2 of {APP}"),
        ({"flightId": None}, f"flight entry 2 of {APP}"),
    ],
    ids=["bad-id", "no-id", "not-an-object", "null-id"],
)
def test_a_malformed_flight_entry_is_its_own_failed_result(
    whole_app: Emulator, action: RunAction, broken: Any, name: str
) -> None:
    first, second = demo.WHOLE_FLIGHTS[0], demo.WHOLE_FLIGHTS[1]
    entries = [
        {
            "flightId": flight.flight_id,
            "friendlyName": flight.name,
            "lastPublishedFlightSubmission": {"id": flight.published},
        }
        for flight in (first, second)
    ]
    body = {"value": [entries[0], broken, entries[1]], "totalCount": 3}
    whole_app.add_fault(Fault(method="GET", path=LISTING, status=200, body=body))
    run = action({"app-id": APP, "all-flights": "true"})
    assert run.exit_code == 1, run.stdout
    records = records_of(run)
    assert [(r["name"], r["flight-id"], r["result"]) for r in records] == [
        (APP, None, "halted"),
        (first.name, first.flight_id, "halted"),
        (name, None, "failed"),
        (second.name, second.flight_id, "halted"),
    ]
    assert "flight entry 2" in records[2]["error"]
    assert len(halt_paths(whole_app)) == 3
    assert len(run.errors) == 1


@pytest.mark.parametrize(
    "failure",
    [
        Fault(method="GET", path=LISTING, status=500, body={"message": "page 2 is down"}),
        Fault(method="GET", path=LISTING, status=200, body="<html>not json</html>"),
    ],
    ids=["500-until-the-deadline", "garbage"],
)
def test_a_listing_that_fails_part_way_still_halts_the_flights_it_named(
    whole_app: Emulator, action: RunAction, failure: Fault
) -> None:
    whole_app.knobs.listflights_page_cap = 10
    # Page 1 passes untouched; every later page fails.
    whole_app.add_fault(Fault(method="GET", path=LISTING, kind="delay", seconds=0))
    whole_app.add_fault(Fault(**{**failure.__dict__, "times": None}))
    run = action({"app-id": APP, "all-flights": "true", "timeout-seconds": "5"})
    assert run.exit_code == 1, run.stdout
    records = records_of(run)
    page_one = demo.WHOLE_FLIGHTS[:10]
    assert [(r["name"], r["result"]) for r in records] == [
        (APP, "halted"),
        *((flight.name, expected_result(flight)) for flight in page_one),
        (LISTING_NAME, "failed"),
    ]
    assert [r["flight-id"] for r in records[1:-1]] == [f.flight_id for f in page_one]
    halted = sum(flight.in_progress for flight in page_one) + 1
    assert len(halt_paths(whole_app)) == halted
    assert "list the package flights" in records[-1]["error"]


# A pathologically nested or huge GitHub OIDC token ---------------------------------------


def oidc_env(emu: Emulator) -> dict[str, str | None]:
    return {
        "ACTIONS_ID_TOKEN_REQUEST_URL": emu.oidc_request_url,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": emu.oidc_request_token,
    }


def part(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


DEEP = 100_000
NESTED_JSON = b"[" * DEEP + b"]" * DEEP


@pytest.mark.parametrize(
    "answer",
    [
        Fault(path="github-oidc", status=200, body=b'{"value": ' + NESTED_JSON + b"}"),
        Fault(path="github-oidc", status=200, body=NESTED_JSON),
        # A JWT too large to be GitHub's (theirs are about a kilobyte).
        Fault(
            path="github-oidc",
            status=200,
            body={"value": ".".join((part(b"{}"), "A" * 600_000, "c2ln"))},
        ),
        # Not a JWT at all: a newline in it would also break the mask command.
        Fault(path="github-oidc", status=200, body={"value": "line one\n::stop-commands::x"}),
        # Larger than any answer: cut off at the transport's cap.
        Fault(path="github-oidc", kind="huge", status=200, size=4 * 1024 * 1024, times=None),
    ],
    ids=["nested-value", "nested-answer", "huge-token", "not-a-jwt", "huge-answer"],
)
def test_an_unusable_oidc_answer_is_a_clear_sign_in_error(
    emulator: Emulator, action: RunAction, answer: Fault
) -> None:
    emulator.add_fault(answer)
    timeout = 20.0
    run = action({"client-secret": None, "timeout-seconds": f"{timeout:g}"}, env=oidc_env(emulator))
    assert run.exit_code == 1, run.stdout
    [error] = run.errors
    assert "GitHub's OIDC token answer was unusable" in error, error
    assert "RecursionError" not in run.stdout + run.stderr
    # Nothing is tried with it, and nothing waits for it to change.
    assert not [r for r in emulator.requests if r.path.endswith("/oauth2/v2.0/token")]
    assert emulator.store_requests == []
    assert run.seconds < timeout / 2, run.seconds
    [record] = records_of(run)
    assert record["result"] == "failed"


def test_a_token_whose_claims_nest_thousands_deep_is_a_clear_sign_in_error(
    emulator: Emulator, action: RunAction
) -> None:
    # Well-formed, issued, but its payload carries a claim nested 4000 deep; Entra refuses
    # it (no matching federated credential), so its claims are read to explain why.
    emulator.github.nested_claim_depth = 4000
    emulator.github.subject = "repo:octo-org/octo-repo:ref:refs/heads/elsewhere"
    run = action({"client-secret": None}, env=oidc_env(emulator))
    assert run.exit_code == 1, run.stdout
    [error] = run.errors
    assert "AADSTS700213" in error
    assert "RecursionError" not in run.stdout + run.stderr
    assert "GitHub OIDC token could not be read" in error, error
    assert emulator.store_requests == []


# Many apps at once ------------------------------------------------------------------------


def test_more_apps_than_threads_are_all_halted_in_the_order_given(
    emulator: Emulator, action: RunAction
) -> None:
    # Six whole apps of three flights each, between two plain targets: more listings and
    # more rollouts than either pool has threads. Each listing hands its flights to the
    # halts' pool while other listings and halts wait for a thread: none may wait on another.
    apps = [f"9APP{n:08d}" for n in range(6)]
    lines = ["targets:", "  - name: Tools", f"    app-id: {OTHER_APP}"]
    expected: list[tuple[str, str | None]] = [("Tools", None)]
    for number, app in enumerate(apps):
        published = str(1152921504622000000 + number * 100)
        emulator.add_app(app, last_published=published)
        emulator.set_rollout(app, published)
        expected.append((app, None))
        for flight in range(3):
            flight_id = f"00000000-0000-4000-8000-{number:06d}{flight:06d}"
            submission = str(int(published) + flight + 1)
            emulator.add_flight(app, flight_id, last_published=submission, name=f"{app} f{flight}")
            emulator.set_rollout(app, submission, flight_id=flight_id)
            expected.append((f"{app} f{flight}", flight_id))
        lines += [f"  - app-id: {app}", "    all-flights: true"]
    lines += ["  - name: Demo", f"    app-id: {demo.APP_ID}"]
    expected.append(("Demo", None))
    run = action({"app-id": None, "targets": "t.yml"}, files={"t.yml": "\n".join(lines) + "\n"})
    assert run.exit_code == 0, run.stdout
    records = records_of(run)
    assert [(r["name"], r["flight-id"]) for r in records] == expected
    assert {r["result"] for r in records} == {"halted"}
    assert len(emulator.halt_requests) == len(expected)


# A listing is complete or it failed (contract, "The whole app") ---------------------------


@pytest.mark.parametrize(
    ("later", "known"),
    [("empty", 10), ("repeat", 10), ("recount", 10)],
    ids=["empty-page", "repeated-page", "count-changes"],
)
def test_a_short_listing_is_a_failed_listing_and_the_known_flights_are_still_halted(
    whole_app: Emulator, action: RunAction, later: str, known: int
) -> None:
    """Pages of 10: the second one is empty, repeats the first, or counts differently,
    before the flights seen account for totalCount. The listing failed ("flights of
    APP-ID"), the run fails, and every flight it did name is still worked on."""
    whole_app.knobs.listflights_page_cap = 10
    whole_app.knobs.listflights_later_pages = later
    run = action({"app-id": APP, "all-flights": "true", "timeout-seconds": "60"})
    assert (run.exit_code, run.outputs["result"]) == (1, "failed"), run.stdout
    records = records_of(run)
    named = demo.WHOLE_FLIGHTS[:known]
    assert [(r["name"], r["result"]) for r in records] == [
        (APP, "halted"),
        *((flight.name, expected_result(flight)) for flight in named),
        (LISTING_NAME, "failed"),
    ]
    assert "completely" in records[-1]["error"], records[-1]["error"]
    assert len(halt_paths(whole_app)) == sum(flight.in_progress for flight in named) + 1
    for flight in demo.WHOLE_FLIGHTS[known:]:
        if flight.published is not None:
            state = whole_app.rollout(APP, flight.published, flight.flight_id)
            assert state["packageRolloutStatus"] == flight.status  # neither read nor halted


def test_a_next_link_that_loops_is_a_failed_listing(whole_app: Emulator, action: RunAction) -> None:
    """The first page names one flight of three, and a next page that is itself."""
    flight = demo.WHOLE_FLIGHTS[0]
    page = {
        "value": [
            {
                "flightId": flight.flight_id,
                "friendlyName": flight.name,
                "lastPublishedFlightSubmission": {"id": flight.published},
            }
        ],
        "totalCount": 3,
        "@nextLink": f"applications/{APP}/listflights?top=100",
    }
    whole_app.add_fault(Fault(method="GET", path=LISTING, status=200, body=page, times=None))
    records = _failed_whole_app_records(action)
    assert [(r["name"], r["result"]) for r in records] == [
        (APP, "halted"),
        (flight.name, expected_result(flight)),
        (LISTING_NAME, "failed"),
    ]
    assert "a page already read" in records[-1]["error"]
    listings = [r for r in whole_app.store_requests if "listflights" in r.path]
    assert len(listings) == 1


def test_a_page_repeating_an_unreadable_entry_is_a_failed_listing_not_a_complete_one(
    whole_app: Emulator, action: RunAction
) -> None:
    """Page 1 names a flight and an entry without a flightId, of 3 in all; page 2 says the
    same again and names no next page. Counting the unreadable entry once per sighting made
    it 3 of 3, a complete listing, while the third flight was never named. An entry seen
    again is not a new flight: the listing failed, and the entry is reported once."""
    flight = demo.WHOLE_FLIGHTS[0]
    entries = [
        {
            "flightId": flight.flight_id,
            "friendlyName": flight.name,
            "lastPublishedFlightSubmission": {"id": flight.published},
        },
        {"friendlyName": "Ring without an ID"},
    ]
    first = {
        "value": entries,
        "totalCount": 3,
        "@nextLink": f"applications/{APP}/listflights?skip=2&top=2",
    }
    again = {"value": entries, "totalCount": 3}
    whole_app.add_fault(Fault(method="GET", path=LISTING, status=200, body=first))
    whole_app.add_fault(Fault(method="GET", path=LISTING, status=200, body=again))
    records = _failed_whole_app_records(action)
    assert [(r["name"], r["result"]) for r in records] == [
        (APP, "halted"),
        (flight.name, expected_result(flight)),
        ("Ring without an ID", "failed"),
        (LISTING_NAME, "failed"),
    ], records
    assert "completely" in records[-1]["error"], records[-1]["error"]


@pytest.mark.long
def test_hundred_all_flights_apps_with_hanging_listings(world: World) -> None:
    emu = world.emulator
    targets = many_apps(emu, 100).replace("\n  - app-id:", "\n  - all-flights: true\n    app-id:")
    emu.add_fault(Fault(method="GET", path=r"/listflights$", kind="hang", seconds=120, times=None))
    timeout = 12.0
    run = world.run(
        {"app-id": "", "targets": "t.yml", "timeout-seconds": f"{timeout:g}"},
        files={"t.yml": targets},
        timeout=120,
    )
    late = world.sent_after_deadline(timeout)
    print(f"{describe(run, timeout)}; late: {late}")
    records = results_of(run)
    own = [r for r in records if not r["name"].startswith("flights of ")]
    listings = [r for r in records if r["name"].startswith("flights of ")]
    print(f"own rollouts: {[r['result'] for r in own].count('halted')} halted of {len(own)}")
    assert run.seconds <= timeout + STARTUP_SLACK
    assert late == []
    assert traceback_free(run)
    assert len(own) == 100
    assert all(r["result"] == "halted" for r in own)
    assert len(listings) == 100
    assert all(r["result"] == "failed" for r in listings)
    assert len(run.summary.encode()) < MIB
    assert run.outputs["result"] == "failed"


def _failed_whole_app_records(action: RunAction) -> list[dict[str, Any]]:
    """The whole app's run that must fail (its listing did): every record, in order."""
    run = action({"app-id": APP, "all-flights": "true", "timeout-seconds": "30"})
    assert (run.exit_code, run.outputs["result"]) == (1, "failed"), run.stdout
    return records_of(run)
