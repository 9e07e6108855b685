"""What the live Store was seen doing (docs/store-api.md, "Seen in the field") is taken in
stride (rules 4 to 7), and the whole-app stop (all-flights) of an app with 23 flights."""

from __future__ import annotations

import json
import re

import pytest

from store_emulator import Emulator, Fault, demo

from .conftest import APP_ID, DEADLINE_ALLOWANCE, PUBLISHED, RunAction
from .world import (
    APP,
    HALT,
    IN_PROGRESS,
    ROLLOUT,
    STOPPED,
    Incoming,
    Wire,
    World,
    describe,
    forward_everything,
)

STOPPED_STATUS = "PackageRolloutStopped"


def test_integer_percentages_are_taken_and_shown_as_floats(
    emulator: Emulator, action: RunAction
) -> None:
    emulator.knobs.integer_percentages = True
    run = action({"dry-run": "true"})
    assert run.exit_code == 0, run.stdout
    assert run.outputs["rollout-percentage"] == "25.0"
    run = action()
    assert run.outputs["result"] == "halted"
    assert run.outputs["rollout-percentage"] == "0.0"


def test_a_gateway_504_that_hid_a_successful_halt_is_reported_halted(
    emulator: Emulator, action: RunAction
) -> None:
    emulator.add_fault(Fault(method="POST", path=HALT, kind="respond_after", status=504))
    run = action()
    assert run.exit_code == 0, run.stdout
    assert run.outputs["result"] == "halted"
    assert "the halt had taken effect although its answer was lost" in run.stdout
    assert sum(r.path.endswith("haltpackagerollout") for r in emulator.requests) == 1


def test_a_409_because_someone_else_halted_meanwhile_is_already_halted(
    emulator: Emulator, action: RunAction
) -> None:
    # Another responder's halt lands between our read and our halt: the Store says 409.
    emulator.add_fault(
        Fault(
            method="POST",
            path=HALT,
            kind="respond_after",
            status=409,
            body={"code": "InvalidState", "message": "The package rollout cannot be halted."},
        )
    )
    run = action()
    assert run.exit_code == 0, run.stdout
    assert run.outputs["result"] == "already-halted"
    assert run.outputs["status"] == STOPPED_STATUS
    assert "someone else" in run.stdout
    assert run.errors == []


@pytest.mark.long
def test_the_account_service_503_fails_within_about_30_seconds_with_the_hint(
    world: World,
) -> None:
    """Every Store call answers 503 "Account service is experiencing issue" (the Entra app was
    never added to the Partner Center account): the run gives up after about 30 s, long
    before its deadline, and says what to do."""
    world.emulator.knobs.account_not_added = True
    # Backoff waits are at most 20 s: a run that only stops at its deadline ends after
    # 40 s at the earliest, one that keeps the 30 s cap by 35 s.
    timeout = 170.0
    run = world.run({"timeout-seconds": f"{timeout:g}"})
    attempts = len([r for r in world.emulator.store_requests if re.search(APP, r.path)])
    print(f"account-service 503: {describe(run, timeout)}; {attempts} attempts")
    assert run.exit_code == 1
    assert run.seconds <= 30 + 5, f"failed after {run.seconds:.1f} s, not within ~30 s"
    [error] = run.errors
    assert "Partner Center" in error
    assert "never added" in error


def test_a_403_with_an_empty_body_names_a_foreign_app(world: World) -> None:
    """The Store answers 403 with an empty body about an app of another account."""
    world.emulator.knobs.foreign_apps.add(APP_ID)
    run = world.run()
    print(f"403 empty body: {describe(run)}")
    assert run.exit_code == 1
    [error] = run.errors
    assert "HTTP 403" in error
    assert "not one of this account's apps" in error
    assert re.search(r"app(?:-id| ID)?\b.*\b(?:not|another|other)\b.*account", error, re.I), error
    assert "Traceback" not in run.stdout + run.stderr


def test_a_slow_answer_within_the_deadline_is_waited_for(world: World) -> None:
    """The Store's gateway holds an answer for 6 s, well inside a 20 s deadline."""

    def slow(req: Incoming, wire: Wire) -> None:
        if req.method == "GET" and re.search(APP, req.path):
            wire.stopping.wait(6.0)
        forward_everything(req, wire)

    run = world.run({"timeout-seconds": "20"}, store=world.hostile(slow))
    print(f"6 s answer, 20 s deadline: {describe(run, 20)}")
    assert run.exit_code == 0, run.stdout
    assert run.outputs["result"] == "halted", describe(run)


def test_a_slow_answer_past_the_deadline_ends_at_the_deadline(
    emulator: Emulator, action: RunAction
) -> None:
    emulator.add_fault(
        Fault(method="GET", path=rf"applications/{APP_ID}$", kind="delay", seconds=16, times=None)
    )
    run = action({"timeout-seconds": "4"})
    assert run.exit_code == 1
    assert run.outputs["result"] == "failed"
    assert run.seconds < 4 + DEADLINE_ALLOWANCE


def test_absent_and_differently_cased_keys_resolve_the_published_submission(
    emulator: Emulator, action: RunAction
) -> None:
    body = {
        "id": APP_ID,
        "PackageFamilyName": demo.PACKAGE_FAMILY_NAME,
        "LastPublishedApplicationSubmission": {"Id": PUBLISHED},
    }
    emulator.add_fault(Fault(method="GET", path=rf"applications/{APP_ID}$", status=200, body=body))
    run = action()
    assert run.exit_code == 0, run.stdout
    assert run.outputs["submission-id"] == PUBLISHED


# -- all-flights ------------------------------------------------------------------------


@pytest.fixture
def whole_app(emulator: Emulator) -> Emulator:
    emulator.seed_whole_app()
    emulator.knobs.listflights_page_cap = 10  # several pages to follow
    return emulator


def test_all_flights_halts_the_app_and_every_flight_in_one_run(
    whole_app: Emulator, action: RunAction
) -> None:
    run = action({"app-id": demo.WHOLE_APP_ID, "all-flights": "true"})
    assert run.exit_code == 0, run.stdout
    records = json.loads(run.outputs["results"])
    assert len(records) == 1 + len(demo.WHOLE_FLIGHTS)
    by_flight = {record["flight-id"]: record for record in records}
    assert by_flight[None]["result"] == "halted"
    for index, flight in enumerate(demo.WHOLE_FLIGHTS):
        record = by_flight[flight.flight_id]
        assert record["name"] == flight.name
        expected = {
            demo.NO_PUBLISHED_INDEX: "nothing-to-halt",
            demo.STOPPED_INDEX: "already-halted",
            demo.NOT_PACKAGE_ROLLOUT_INDEX: "nothing-to-halt",
        }.get(index, "halted")
        assert record["result"] == expected, record
    assert run.outputs["result"] == "halted"
    # One summary row per rollout, and every page of listflights was asked for.
    assert sum(line.startswith("| `") for line in run.summary.splitlines()) == len(records)
    pages = [r for r in whole_app.requests if r.path.endswith("/listflights")]
    assert len(pages) >= 3


def test_all_flights_dry_run_sends_no_halt(whole_app: Emulator, action: RunAction) -> None:
    run = action({"app-id": demo.WHOLE_APP_ID, "all-flights": "true", "dry-run": "true"})
    assert run.exit_code == 0, run.stdout
    assert run.outputs["result"] == "dry-run"
    assert not [r for r in whole_app.requests if r.method == "POST" and "halt" in r.path]
    records = json.loads(run.outputs["results"])
    assert sum(record["result"] == "dry-run" for record in records) == len(records) - 3


def test_all_flights_fails_only_for_a_rollout_in_progress_that_was_not_halted(
    whole_app: Emulator, action: RunAction
) -> None:
    flight = demo.WHOLE_FLIGHTS[0]
    whole_app.add_fault(
        Fault(
            method="POST",
            path=rf"/flights/{flight.flight_id}/.*haltpackagerollout$",
            status=404,
            body={"code": "ResourceNotFound", "message": "gone"},
        )
    )
    run = action({"app-id": demo.WHOLE_APP_ID, "all-flights": "true"})
    assert run.exit_code == 1
    records = json.loads(run.outputs["results"])
    failed = [record for record in records if record["result"] == "failed"]
    assert [record["name"] for record in failed] == [flight.name]
    assert len(run.errors) == 1


def test_all_flights_is_refused_with_a_flight_id(emulator: Emulator, action: RunAction) -> None:
    run = action({"all-flights": "true", "flight-id": "43e448df-97c9-4a43-a0bc-2a445e736bcd"})
    assert run.exit_code == 1
    assert "all-flights" in run.errors[0]
    assert emulator.requests == []


def test_all_flights_in_a_targets_file(whole_app: Emulator, action: RunAction) -> None:
    targets = f"targets:\n  - name: Fleet\n    app-id: {demo.WHOLE_APP_ID}\n    all-flights: true\n"
    run = action({"app-id": None, "targets": "t.yml"}, files={"t.yml": targets})
    assert run.exit_code == 0, run.stdout
    records = json.loads(run.outputs["results"])
    assert records[0]["name"] == "Fleet"
    assert len(records) == 1 + len(demo.WHOLE_FLIGHTS)


@pytest.mark.parametrize(
    ("next_link", "followed"),
    [
        (f"applications/{demo.WHOLE_APP_ID}/listflights/?skip=10&top=10", True),
        (f"applications/{demo.WHOLE_APP_ID}/listflights?skip=10&top=10", True),
        ("https://evil.example/v1.0/my/applications/x/listflights?skip=1", False),
        (f"applications/{APP_ID}/listflights?skip=10&top=10", False),
        (f"applications/{demo.WHOLE_APP_ID}/listflights?skip=10&top=10&$filter=x", False),
    ],
)
def test_only_a_next_page_of_this_apps_listflights_is_followed(
    whole_app: Emulator, action: RunAction, next_link: str, followed: bool
) -> None:
    first = {
        "@nextLink": next_link,
        "value": [
            {"flightId": flight.flight_id, "friendlyName": flight.name}
            for flight in demo.WHOLE_FLIGHTS[:10]
        ],
        "totalCount": len(demo.WHOLE_FLIGHTS),
    }
    whole_app.add_fault(Fault(method="GET", path=r"/listflights/?$", status=200, body=first))
    run = action({"app-id": demo.WHOLE_APP_ID, "all-flights": "true", "dry-run": "true"})
    pages = [r for r in whole_app.requests if "/listflights" in r.path]
    if followed:
        assert run.exit_code == 0, run.stdout
        assert len(pages) >= 2
    else:
        assert run.exit_code == 1
        assert "@nextLink" in run.errors[0]
        assert len(pages) == 1


def test_all_flights_pages_by_total_count_when_no_next_link_is_sent(
    whole_app: Emulator, action: RunAction
) -> None:
    # Microsoft's documented example has no @nextLink: only totalCount says more remain.
    whole_app.knobs.listflights_next_link = False
    run = action({"app-id": demo.WHOLE_APP_ID, "all-flights": "true", "dry-run": "true"})
    assert run.exit_code == 0, run.stdout
    assert len(json.loads(run.outputs["results"])) == 1 + len(demo.WHOLE_FLIGHTS)
    skips = [r.query.get("skip") for r in whole_app.requests if r.path.endswith("/listflights")]
    assert skips == [None, "10", "20"]


def test_all_flights_of_an_app_without_flights_is_its_own_rollout(
    emulator: Emulator, action: RunAction
) -> None:
    # The documented answer for an app with no flights is a 404 from listflights.
    emulator.knobs.listflights_empty_404 = True
    emulator.add_app(demo.OTHER_APP, last_published=demo.OTHER_SUBMISSION)
    emulator.set_rollout(demo.OTHER_APP, demo.OTHER_SUBMISSION)
    run = action({"app-id": demo.OTHER_APP, "all-flights": "true"})
    assert run.exit_code == 0, run.stdout
    [record] = json.loads(run.outputs["results"])
    assert record["result"] == "halted"
    assert record["flight-id"] is None


def test_absent_keys_are_read_as_none(world: World) -> None:
    world.emulator.add_fault(
        Fault(
            method="GET",
            path=APP,
            status=200,
            body={
                "id": APP_ID,
                "primaryName": "x",
                "lastPublishedApplicationSubmission": {"id": PUBLISHED},
            },
        )
    )
    world.emulator.add_fault(
        Fault(
            method="POST",
            path=HALT,
            status=200,
            body={k: v for k, v in STOPPED.items() if k != "fallbackSubmissionId"},
        )
    )
    run = world.run()
    print(f"absent keys: {describe(run)}")
    assert run.outputs["result"] == "halted", describe(run)


def test_key_casing_differences_are_tolerated(world: World) -> None:
    """Captures show PascalCase keys next to camelCase ones (`PackageFamilyName`)."""
    pascal = {key[0].upper() + key[1:]: value for key, value in IN_PROGRESS.items()}
    world.emulator.add_fault(Fault(method="GET", path=ROLLOUT, status=200, body=pascal))
    run = world.run()
    print(f"PascalCase rollout keys: {describe(run)}")
    assert run.outputs["result"] == "halted", describe(run)


def test_every_store_call_sends_content_type_json(world: World) -> None:
    # The emulator is as strict as the Store: a POST without it is a 400.
    assert world.emulator.knobs.content_type_rule == "strict"
    run = world.run()
    store_calls = [r for r in world.emulator.requests if r.path.startswith("/v1.0/my/")]
    missing = [
        f"{r.method} {r.path}"
        for r in world.emulator.store_requests
        if not r.headers.get("content-type", "").startswith("application/json")
    ]
    print(f"Content-Type: {describe(run)}; calls without application/json: {missing}")
    assert run.exit_code == 0, run.stdout
    assert run.outputs["result"] == "halted"
    assert missing == []
    assert store_calls
    assert all(r.headers.get("content-type") == "application/json" for r in store_calls)
