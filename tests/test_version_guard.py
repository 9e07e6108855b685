"""The version guard (the contract's "The version guard"): a rollout of another version
than `expected-version` is left alone, end to end through the entrypoint and the emulator."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import quote

import pytest

from store_emulator import Emulator, Fault, demo
from store_emulator.resources import IN_PROGRESS, STOPPED
from store_emulator.step_results import ActionRun

from .conftest import (
    APP_ID,
    FLIGHT_ID,
    OTHER_APP,
    OTHER_SUBMISSION,
    PUBLISHED,
    RunAction,
)
from .conftest import visible_text as visible
from .test_data_stays_data import assert_renders_as_text
from .world import MIB, ROLLOUT, SUBMISSION, assert_no_upload_url, log_lines, records

# The submission resource's path (not its /packagerollout or /haltpackagerollout).


def submission_reads(emu: Emulator) -> list[str]:
    return [
        r.path for r in emu.store_requests if r.method == "GET" and re.search(SUBMISSION, r.path)
    ]


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


def _big_resource(emu: Emulator, packages: int, languages: int) -> dict[str, Any]:
    """A real-sized app submission: many packages and a listing in many languages, each
    with a description of the Store's maximum length (10,000 characters)."""
    resource = emu.state.submission(APP_ID, PUBLISHED)
    template = dict(resource["applicationPackages"][0])
    template["capabilities"] = ["runFullTrust", "internetClient", "privateNetworkClientServer"]
    resource["applicationPackages"] = [
        {**template, "id": str(10**18 + i), "version": demo.VERSION} for i in range(packages)
    ]
    resource["listings"] = {
        f"lang-{n:03d}": {
            "baseListing": {
                "title": "Contoso App",
                "description": "A fine application. " * 500,
                "releaseNotes": "Fixes. " * 200,
                "features": ["A feature described at length." * 6] * 20,
            }
        }
        for n in range(languages)
    }
    return resource


def test_a_real_sized_submission_resource_passes_the_guard(
    action: RunAction, emulator: Emulator
) -> None:
    """The guard halts when a package carries the version. The submission resource is the
    whole submission (listings in every language, every package), not a few hundred bytes:
    one over MAX_ANSWER_BYTES (1 MiB) is taken for a network failure, retried until the
    deadline, and the stop fails although the version is right. Observed: result failed
    ("Store unreachable ... larger than 1048576 bytes"), nothing halted."""
    resource = _big_resource(emulator, packages=1000, languages=60)
    body = json.dumps(resource)
    assert len(body) > MIB
    emulator.add_fault(Fault(method="GET", path=SUBMISSION, times=None, status=200, body=body))
    run = action({"expected-version": demo.VERSION, "timeout-seconds": "10"})
    assert run.outputs["result"] == "halted", records(run)[0].get("error")
    assert_no_upload_url(emulator, visible(run))


HOSTILE_PACKAGES = {
    "numbers": [{"version": 1.4}, {"version": 1}, {"version": None}, {"version": True}],
    "nested": [{"version": {"version": demo.VERSION}}, {"version": [demo.VERSION]}],
    "duplicates": [{"version": "9.0.0.0"}] * 500 + [{"version": "9.0.0.0 "}] * 500,
    "markdown": [
        {"version": "[x](https://evil.example)"},
        {"version": "::error::forged"},
        {"version": "<img src=x>"},
        {"version": "##[warning]forged"},
        {"version": "1.4.2.0\u202e"},
        {"version": "`` `x` ``"},
    ],
    "not a list": {"version": demo.VERSION},
    "1000 distinct": [{"version": f"{i}.{'9' * 50}.{i}"} for i in range(1000)],
}


@pytest.mark.parametrize("case", list(HOSTILE_PACKAGES))
def test_hostile_versions_fail_send_nothing_and_stay_data(
    action: RunAction, emulator: Emulator, case: str
) -> None:
    resource = emulator.state.submission(APP_ID, PUBLISHED)
    resource["applicationPackages"] = HOSTILE_PACKAGES[case]
    emulator.add_fault(Fault(method="GET", path=SUBMISSION, times=None, status=200, body=resource))
    run = action({"expected-version": demo.VERSION})
    assert (run.exit_code, run.outputs["result"]) == (1, "failed")
    assert emulator.halt_requests == []
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == IN_PROGRESS
    assert_renders_as_text(run.summary)
    assert len(run.summary.encode()) < MIB
    lines = log_lines(run)
    assert not [line for line in lines if line.lstrip().startswith("::error::forged")]
    # Inside an annotation's message (the line is already a `::` command) it is inert.
    assert not [line for line in lines if "##[warning]forged" in line and line[:2] != "::"]
    assert "\u202e" not in visible(run)
    if case == "duplicates":
        assert records(run)[0]["versions"] == ["9.0.0.0"]


def test_the_guard_names_the_versions_found_in_the_error(action: RunAction) -> None:
    run = action({"expected-version": "1.4.1"})
    record = records(run)[0]
    assert record["result"] == "failed"
    assert demo.VERSION in record["error"]
    assert demo.VERSION in run.summary
    assert demo.VERSION in run.errors[0]


@pytest.mark.parametrize("hung", [SUBMISSION, ROLLOUT], ids=["submission-hangs", "rollout-hangs"])
def test_one_parallel_read_hanging_ends_by_the_deadline_and_sends_nothing(
    action: RunAction, emulator: Emulator, hung: str
) -> None:
    emulator.add_fault(Fault(method="GET", path=hung, kind="hang", seconds=60, times=None))
    started = time.monotonic()
    run = action({"expected-version": demo.VERSION, "timeout-seconds": "5"})
    took = time.monotonic() - started
    assert took < 5 + 6, took
    assert run.outputs["result"] == "failed"
    assert emulator.halt_requests == []
    assert [r for r in emulator.store_requests if r.method == "POST"] == []
    assert "timeout-seconds" in records(run)[0]["error"] or "time" in records(run)[0]["error"]


def test_a_guard_read_throttled_past_the_deadline_sends_no_halt(
    action: RunAction, emulator: Emulator
) -> None:
    emulator.add_fault(
        Fault(
            method="GET",
            path=SUBMISSION,
            times=None,
            status=429,
            body={"statusCode": 429, "message": "Rate limit is exceeded."},
            headers={"Retry-After": "600"},
        )
    )
    run = action({"expected-version": demo.VERSION, "timeout-seconds": "4"})
    assert run.outputs["result"] == "failed"
    assert emulator.halt_requests == []


def test_all_flights_guard_read_failing_for_one_flight_halts_no_other_version(
    action: RunAction, emulator: Emulator
) -> None:
    emulator.seed_whole_app()
    first = next(f for f in demo.WHOLE_FLIGHTS if f.in_progress and f.published)
    emulator.add_fault(
        Fault(
            method="GET",
            path=rf"/flights/{first.flight_id}/submissions/\d+$",
            times=None,
            status=500,
            body="boom",
        )
    )
    run = action(
        {
            "app-id": demo.WHOLE_APP_ID,
            "all-flights": "true",
            "expected-version": demo.WHOLE_VERSION,
            "timeout-seconds": "20",
        }
    )
    by_name = {r["name"]: r for r in records(run)}
    assert by_name[first.name]["result"] == "failed"
    assert run.exit_code == 1
    assert first.published is not None
    state = emulator.rollout(demo.WHOLE_APP_ID, first.published, first.flight_id)
    assert state["packageRolloutStatus"] == first.status
    for flight in demo.WHOLE_FLIGHTS:
        if flight.published and flight.version != demo.WHOLE_VERSION:
            assert by_name[flight.name]["result"] != "halted"


def test_results_after_a_halt_keep_the_rollout_stopped(
    action: RunAction, emulator: Emulator
) -> None:
    run = action({"expected-version": demo.VERSION, "reason": "r"})
    assert records(run)[0]["status"] == STOPPED


# The newest package decides (contract v1.3, "The version guard") ---------------------------


@pytest.mark.parametrize(
    "versions",
    [
        ["1.5.0.0", demo.VERSION],  # a newer submission keeping the old package beside it
        [demo.VERSION, "1.4.3"],  # architectures at different versions, the newest not it
    ],
    ids=["kept-beside-a-newer-one", "architectures-at-different-versions"],
)
def test_a_newer_submission_carrying_the_expected_version_is_never_halted(
    action: RunAction, emulator: Emulator, versions: list[str]
) -> None:
    emulator.set_packages(APP_ID, PUBLISHED, versions)
    run = action({"expected-version": demo.VERSION})
    assert (run.exit_code, run.outputs["result"]) == (1, "failed"), run.stdout
    assert emulator.halt_requests == []
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == IN_PROGRESS
    error = records(run)[0]["error"]
    assert "newest package" in error
    assert max(versions, key=lambda v: [int(p) for p in v.split(".")]) in error
    assert "nothing was sent" in error.lower()


def test_the_newest_version_matches_as_numbers(action: RunAction, emulator: Emulator) -> None:
    """`1.10` is newer than `1.9.5.0` (numbers, not text), and `1.10` is `1.10.0.0`."""
    emulator.set_packages(APP_ID, PUBLISHED, ["1.9.5.0", "1.10.0.0"])
    run = action({"expected-version": "1.10"})
    assert (run.exit_code, run.outputs["result"]) == (0, "halted"), run.stdout


def test_all_flights_with_no_rollout_at_the_version_fails_never_already_halted(
    action: RunAction, emulator: Emulator
) -> None:
    """No rollout of the app is at the expected version: the target fails and says so;
    nothing is sent, and the run is never reported as halted or already halted."""
    emulator.seed_whole_app()
    run = _whole_app_guard_that_sends_nothing(action, emulator, "9.9.9.9")
    guard = [r for r in records(run) if r["result"] == "failed"]
    assert len(guard) == 1, records(run)
    assert f"No rollout of {demo.WHOLE_APP_ID} is at version 9.9.9.9" in guard[0]["error"]
    assert "nothing was sent" in guard[0]["error"]
    assert "Already halted before this run" not in run.summary
    assert "No rollout in progress" not in run.summary
    assert len(run.errors) == 1, run.errors


def test_all_flights_whose_only_match_stopped_before_the_run_fails_never_already_halted(
    action: RunAction, emulator: Emulator
) -> None:
    """The only rollout at the expected version had stopped before this run: no rollout in
    progress matches, so the target fails (contract, "The version guard"); the stopped one
    keeps its own already-halted row, and nothing is sent."""
    emulator.seed_whole_app()
    emulator.set_packages(demo.WHOLE_APP_ID, demo.WHOLE_PUBLISHED, ["7.7.7.7"])
    emulator.set_rollout(
        demo.WHOLE_APP_ID,
        demo.WHOLE_PUBLISHED,
        percentage=0.0,
        status=STOPPED,
        fallback=demo.WHOLE_FALLBACK,
    )
    run = _whole_app_guard_that_sends_nothing(action, emulator, "7.7.7.7")
    by_result: dict[str, list[dict[str, Any]]] = {}
    for record in records(run):
        by_result.setdefault(record["result"], []).append(record)
    assert [r["versions"] for r in by_result["already-halted"]] == [["7.7.7.7"]]
    [guard] = by_result["failed"]
    assert f"No rollout of {demo.WHOLE_APP_ID} in progress is at version 7.7.7.7" in guard["error"]
    assert "nothing was sent" in guard["error"]


def _whole_app_guard_that_sends_nothing(
    action: RunAction, emulator: Emulator, version: str
) -> ActionRun:
    """The whole app under a version guard no rollout in progress passes: failed, nothing sent."""
    run = action(
        {
            "app-id": demo.WHOLE_APP_ID,
            "all-flights": "true",
            "expected-version": version,
            "timeout-seconds": "120",
        }
    )
    assert (run.exit_code, run.outputs["result"]) == (1, "failed"), run.stdout
    assert emulator.halt_requests == []
    return run
