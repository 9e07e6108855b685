"""The version guard (`expected-version`), end to end through the entrypoint and the emulator."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import pytest

from store_emulator import Emulator, Fault, demo
from store_emulator.resources import IN_PROGRESS, STOPPED
from store_emulator.step_results import ActionRun

from .conftest import APP_ID, FLIGHT_ID, OTHER_APP, OTHER_SUBMISSION, PUBLISHED, RunAction
from .conftest import visible_text as visible

# The submission resource's path (not its /packagerollout or /haltpackagerollout).
SUBMISSION = re.compile(r"/submissions/\d+$")


def records(run: ActionRun) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = json.loads(run.outputs["results"])
    return result


def submission_reads(emu: Emulator) -> list[str]:
    return [r.path for r in emu.store_requests if r.method == "GET" and SUBMISSION.search(r.path)]


def assert_no_signature(emu: Emulator, run: ActionRun) -> None:
    """The upload URL's signature, in any spelling, is nowhere a person or a step can read."""
    text = visible(run) + "\n" + "\n".join(run.stdout.splitlines())
    for form in (emu.upload_signature, quote(emu.upload_signature, safe="")):
        assert form not in text
    assert "fileUploadUrl" not in text
    assert "sig=" not in text


def test_the_expected_version_halts(action: RunAction, emulator: Emulator) -> None:
    run = action({"expected-version": demo.VERSION})
    assert (run.exit_code, run.outputs["result"]) == (0, "halted")
    assert records(run)[0]["versions"] == [demo.VERSION]
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == STOPPED
    assert submission_reads(emulator) == [f"/v1.0/my/applications/{APP_ID}/submissions/{PUBLISHED}"]
    assert "version guard passed" in run.stdout
    assert_no_signature(emulator, run)


def test_missing_parts_of_the_version_count_as_zero(action: RunAction) -> None:
    run = action({"expected-version": "1.4.2"})
    assert run.outputs["result"] == "halted"


def test_another_version_fails_and_sends_nothing(action: RunAction, emulator: Emulator) -> None:
    run = action({"expected-version": "1.4.1.0"})
    assert (run.exit_code, run.outputs["result"]) == (1, "failed")
    assert len(run.errors) == 1
    assert run.errors[0].startswith("::error title=Version guard%3A not the expected version::")
    record = records(run)[0]
    assert record["versions"] == [demo.VERSION]
    assert "1.4.1.0" in record["error"]
    assert demo.VERSION in record["error"]
    assert record["status"] == IN_PROGRESS  # what was read is still reported
    assert emulator.halt_requests == []
    assert [r for r in emulator.store_requests if r.method != "GET"] == []
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == IN_PROGRESS
    assert "Nothing was sent" in run.summary
    assert_no_signature(emulator, run)


def test_a_submission_without_versioned_packages(action: RunAction, emulator: Emulator) -> None:
    emulator.set_packages(APP_ID, PUBLISHED, [None])
    run = action({"expected-version": demo.VERSION})
    assert run.outputs["result"] == "failed"
    assert records(run)[0]["versions"] == []
    assert "no package with a version" in records(run)[0]["error"]
    assert emulator.halt_requests == []


@pytest.mark.parametrize(("version", "result"), [(demo.VERSION, "dry-run"), ("9.9", "failed")])
def test_a_dry_run_says_whether_the_guard_would_pass(
    action: RunAction, emulator: Emulator, version: str, result: str
) -> None:
    run = action({"expected-version": version, "dry-run": "true"})
    assert run.outputs["result"] == result
    assert records(run)[0]["versions"] == [demo.VERSION]
    assert emulator.halt_requests == []
    assert_no_signature(emulator, run)


def test_a_flight_reads_its_flight_submission(action: RunAction, emulator: Emulator) -> None:
    wrong = action({"flight-id": FLIGHT_ID, "expected-version": demo.VERSION})
    assert wrong.outputs["result"] == "failed"
    assert records(wrong)[0]["versions"] == [demo.FLIGHT_VERSION]
    assert emulator.halt_requests == []
    right = action({"flight-id": FLIGHT_ID, "expected-version": demo.FLIGHT_VERSION})
    assert right.outputs["result"] == "halted"
    flight_path = f"/v1.0/my/applications/{APP_ID}/flights/{FLIGHT_ID}/submissions/{PUBLISHED}"
    assert submission_reads(emulator) == [flight_path, flight_path]
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == IN_PROGRESS
    assert_no_signature(emulator, right)


def test_all_flights_halts_only_the_rollouts_of_that_version(
    action: RunAction, emulator: Emulator
) -> None:
    emulator.seed_whole_app()
    run = action(
        {
            "app-id": demo.WHOLE_APP_ID,
            "all-flights": "true",
            "expected-version": demo.WHOLE_VERSION,
            "timeout-seconds": "120",
        }
    )
    assert run.exit_code == 0, run.stdout
    by_name = {record["name"]: record for record in records(run)}
    expected = {demo.WHOLE_APP_ID} | {
        f.name for f in demo.WHOLE_FLIGHTS if f.in_progress and f.version == demo.WHOLE_VERSION
    }
    halted = {name for name, record in by_name.items() if record["result"] == "halted"}
    assert halted == expected
    assert len(emulator.halt_requests) == len(expected)
    for flight in demo.WHOLE_FLIGHTS:
        record = by_name[flight.name]
        if flight.published is None:
            assert record["versions"] is None  # nothing published: nothing to read
            continue
        assert record["versions"] == [flight.version]
        if flight.version != demo.WHOLE_VERSION:
            assert record["result"] == "nothing-to-halt"
            state = emulator.rollout(demo.WHOLE_APP_ID, flight.published, flight.flight_id)
            assert state["packageRolloutStatus"] == flight.status
    assert "left alone" in run.stdout
    # The summary says why: another version, not "not rolling out".
    other = sum(1 for f in demo.WHOLE_FLIGHTS if f.published and f.version != demo.WHOLE_VERSION)
    assert run.summary.count(f"➖ not version {demo.WHOLE_VERSION}: left alone") == other
    assert_no_signature(emulator, run)


def test_targets_file_entries_carry_their_own_versions(
    action: RunAction, emulator: Emulator
) -> None:
    targets = f"""\
targets:
  - name: desktop
    app-id: {APP_ID}
    expected-version: "{demo.VERSION}"
  - name: insiders
    app-id: {APP_ID}
    flight-id: {FLIGHT_ID}
    expected-version: "{demo.VERSION}"
  - name: tools
    app-id: {OTHER_APP}
    submission-id: "{OTHER_SUBMISSION}"
"""
    run = action(
        {"app-id": None, "targets": "t.yml", "expected-version": demo.OTHER_VERSION},
        files={"t.yml": targets},
    )
    results = {r["name"]: (r["result"], r["versions"]) for r in records(run)}
    assert results == {
        "desktop": ("halted", [demo.VERSION]),
        "insiders": ("failed", [demo.FLIGHT_VERSION]),  # the flight ships another version
        "tools": ("halted", [demo.OTHER_VERSION]),  # the run's expected-version
    }
    assert run.exit_code == 1
    assert len(run.errors) == 1
    assert len(emulator.halt_requests) == 2


@pytest.mark.parametrize("version", ["1.4.2.0.0", "1.4.x", "65536", "01.4", "v1.4", "1.4 beta"])
def test_a_bad_expected_version_is_refused_before_any_request(
    action: RunAction, emulator: Emulator, version: str
) -> None:
    run = action({"expected-version": version})
    assert run.outputs["result"] == "failed"
    assert "is not a package version" in run.errors[0]
    assert emulator.requests == []


@pytest.mark.parametrize("flight", ['""', "null", "", "~"])
def test_an_empty_flight_id_in_a_targets_file_is_refused(
    action: RunAction, emulator: Emulator, flight: str
) -> None:
    run = action(
        {"app-id": None, "targets": "t.yml"},
        files={"t.yml": f"targets:\n  - app-id: {APP_ID}\n    flight-id: {flight}\n"},
    )
    assert run.outputs["result"] == "failed"
    assert "flight-id is empty" in run.errors[0]
    assert emulator.requests == []


def test_without_the_input_no_submission_is_read(action: RunAction, emulator: Emulator) -> None:
    run = action({"flight-id": FLIGHT_ID})
    assert run.outputs["result"] == "halted"
    assert submission_reads(emulator) == []
    assert records(run)[0]["versions"] is None
    assert [r.method for r in emulator.store_requests] == ["GET", "GET", "POST"]


def test_the_two_reads_run_in_parallel(action: RunAction, emulator: Emulator) -> None:
    for path in (r"/packagerollout$", r"/submissions/\d+$"):
        emulator.add_fault(Fault(method="GET", path=path, kind="delay", seconds=1.5))
    run = action({"submission-id": PUBLISHED, "expected-version": demo.VERSION})
    assert run.outputs["result"] == "halted"
    reads = [r for r in emulator.store_requests if r.method == "GET"]
    assert [r.fault for r in reads] == ["delay", "delay"]
    # Each was answered 1.5 s after it arrived: both arrived before either was answered.
    assert abs(reads[0].started - reads[1].started) < 1.0


LEAKY_BODIES = {
    "500, the resource echoed": (500, "resource"),
    "500, text naming the URL": (500, "text"),
    "400, JSON message with the URL": (400, "json"),
    "200, not JSON": (200, "text"),
    "200, no packages": (200, "nopackages"),
}


@pytest.mark.parametrize("case", list(LEAKY_BODIES))
def test_a_failed_read_never_shows_the_upload_url(
    action: RunAction, emulator: Emulator, case: str
) -> None:
    status, shape = LEAKY_BODIES[case]
    resource = emulator.state.submission(APP_ID, PUBLISHED)
    url = resource["fileUploadUrl"]
    bodies: dict[str, str | dict[str, Any]] = {
        "resource": json.dumps(resource),
        "text": f"upstream failed: PUT {url} gave 403 (sig={emulator.upload_signature})",
        "json": {"code": "InvalidParameterValue", "message": f"bad upload {url}"},
        "nopackages": json.dumps({"fileUploadUrl": url, "packages": "see " + url}),
    }
    body = bodies[shape]
    emulator.add_fault(
        Fault(method="GET", path=r"/submissions/\d+$", times=None, status=status, body=body)
    )
    run = action({"expected-version": demo.VERSION, "timeout-seconds": "4"})
    assert run.outputs["result"] == "failed"
    assert emulator.halt_requests == []
    assert submission_reads(emulator)
    assert_no_signature(emulator, run)
