"""The truth of `result` (rules 5, 6 and 7): a halt counts only when the Store says so, and a
rollout that ends up stopped is never reported as failed.

The harness (`World`, `HostileServer`) is in tests/world.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from store_emulator import Fault
from store_emulator.actions_runner import run_action
from store_emulator.responses import Response
from store_emulator.step_results import ActionRun

from .conftest import (
    APP_ID,
    FLIGHT_ID,
    PUBLISHED,
)
from .world import (
    DEADLINE,
    HALT,
    IN_PROGRESS,
    ROLLOUT,
    STARTUP_SLACK,
    AppliedFault,
    World,
    describe,
    forward_everything,
    results_of,
)

# 0. The harness itself --------------------------------------------------------------------


def test_control_run_through_the_hostile_server_halts(world: World) -> None:
    """Forwarding alone changes nothing: sign-in and the Store through the hostile server."""
    server = world.hostile(forward_everything)
    run = world.run(store=server, authority=server)
    assert run.exit_code == 0, describe(run)
    assert run.outputs["result"] == "halted"
    assert any(r.path.endswith("/haltpackagerollout") for r in server.requests)
    print(f"control run: {run.seconds:.2f} s")


# 3. The truth of the result (rules 5 and 6) ------------------------------------------------


class SlowReadFault(Fault):
    """Answers the rollout read as the Store would (in progress), but only after a pause:
    enough for two halts in flight to both read the rollout before either lands."""

    def response(self) -> Response:
        time.sleep(0.7)
        return super().response()


def slow_reads(times: int) -> SlowReadFault:
    return SlowReadFault(method="GET", path=ROLLOUT, status=200, body=IN_PROGRESS, times=times)


def test_halt_answered_200_still_in_progress_is_not_reported_halted(world: World) -> None:
    world.emulator.add_fault(Fault(method="POST", path=HALT, status=200, body=IN_PROGRESS))
    run = world.run({"timeout-seconds": "10"})
    halts = len(world.emulator.halt_requests)
    stopped = world.emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"]
    print(
        f"200 InProgress to the halt: {describe(run)}; status output {run.outputs.get('status')!r}"
        f"; halts sent: {halts}; Store: {stopped}"
    )
    if run.outputs["result"] == "halted":
        assert run.outputs["status"] == "PackageRolloutStopped", describe(run)
        assert stopped == "PackageRolloutStopped"


def _conflict(submission: str) -> dict[str, Any]:
    return {
        "code": "InvalidState",
        "data": [],
        "details": [],
        "message": f"The package rollout of submission {submission} cannot be halted: its status "
        "is PackageRolloutStopped.",
        "source": "Ingestion Api",
        "target": "submission",
    }


def test_409_because_a_rival_halted_first_is_already_halted(world: World) -> None:
    """Between our read and our halt, another responder halted it: the Store says 409."""
    world.emulator.add_fault(
        AppliedFault(
            world.emulator,
            APP_ID,
            PUBLISHED,
            method="POST",
            path=HALT,
            status=409,
            body=_conflict(PUBLISHED),
        )
    )
    run = world.run()
    reads = [r for r in world.emulator.store_requests if r.path.endswith("/packagerollout")]
    print(f"409 after a rival's halt: {describe(run)}; rollout reads: {len(reads)}")
    assert run.exit_code == 0, describe(run)
    assert run.outputs["result"] == "already-halted"
    assert len(reads) == 2  # before the halt, and after its 409
    assert "meanwhile" in run.stdout or "someone" in run.stdout or "another" in run.stdout


def test_two_runs_at_once_both_end_well(world: World) -> None:
    """Two responders press the button at once, against one Store."""
    world.emulator.add_fault(slow_reads(times=2))
    inputs = world.inputs()
    extra = {"REQUESTS_CA_BUNDLE": world.bundle}
    workdirs = [world.workdir / "rival-a", world.workdir / "rival-b"]
    for workdir in workdirs:
        workdir.mkdir()
    outcome: list[ActionRun] = []
    threads = [
        threading.Thread(
            target=lambda w=w: outcome.append(run_action(inputs, extra_env=extra, workdir=w))
        )
        for w in workdirs
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    halts = len(world.emulator.halt_requests)
    print(
        "two runs at once: "
        + "; ".join(describe(run) for run in outcome)
        + f"; halts sent: {halts}"
    )
    assert sorted(run.outputs["result"] for run in outcome) == ["already-halted", "halted"]
    assert [run.exit_code for run in outcome] == [0, 0]


def test_same_submission_twice_in_one_targets_run(world: World) -> None:
    """The app (resolved to its last published submission) and that submission by ID."""
    world.emulator.add_fault(slow_reads(times=2))
    targets = f"""\
targets:
  - name: by app
    app-id: {APP_ID}
  - name: by submission
    app-id: {APP_ID}
    submission-id: "{PUBLISHED}"
"""
    run = world.run({"app-id": None, "targets": "targets.yml"}, files={"targets.yml": targets})
    results = [r["result"] for r in results_of(run)]
    print(f"same submission twice: {describe(run)}; results {results}")
    assert world.emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == (
        "PackageRolloutStopped"
    )
    assert "failed" not in results, describe(run)
    assert run.exit_code == 0


def test_gateway_504_that_hid_a_halt_is_reported_halted(world: World) -> None:
    world.emulator.add_fault(
        AppliedFault(
            world.emulator,
            APP_ID,
            PUBLISHED,
            method="POST",
            path=HALT,
            status=504,
            body={"statusCode": 504, "message": "Gateway Timeout"},
        )
    )
    run = world.run({"timeout-seconds": "10"})
    print(
        f"504 after the halt took effect: {describe(run)}; halts: "
        f"{len(world.emulator.halt_requests)}"
    )
    assert run.exit_code == 0, describe(run)
    assert run.outputs["result"] == "halted"
    assert len(world.emulator.halt_requests) == 1


class ReadUntilFault(Fault):
    """Answers the rollout read (in progress) only when `until()` (monotonic) has come."""

    def __init__(self, until: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._until = until

    def response(self) -> Response:
        time.sleep(max(0.0, self._until() - time.monotonic()))
        return super().response()


def test_final_check_of_a_lost_halt_is_not_sent_after_the_deadline(world: World) -> None:
    """The read before the halt is answered late, with under two seconds of the deadline
    left; the halt then takes effect and its answer never comes. The contract wants the
    halt confirmed (rule 7) and nothing sent after the deadline (rule 7a): both fit only
    if the halt's wait leaves time for the check. (With less time left than twice that
    reserve, the halt is sent without one: sending it comes first.)"""

    def shortly_before_the_deadline() -> float:
        assert world.deadline_started is not None
        return world.deadline_started + DEADLINE - 1.8

    world.emulator.add_fault(
        ReadUntilFault(
            shortly_before_the_deadline, method="GET", path=ROLLOUT, status=200, body=IN_PROGRESS
        )
    )
    world.emulator.add_fault(Fault(method="POST", path=HALT, kind="hang_after", seconds=30))
    run = world.run({"timeout-seconds": f"{DEADLINE:g}"})
    late = world.sent_after_deadline(DEADLINE)
    print(f"lost halt, final check: {describe(run, DEADLINE)}; late: {late}")
    assert late == [], late
    assert run.seconds <= DEADLINE + STARTUP_SLACK
    assert run.outputs["result"] == "halted"
    assert world.emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == (
        "PackageRolloutStopped"
    )


def test_all_flights_halts_the_flights_too(world: World) -> None:
    """CONTRACT v1.1 "The whole app": `all-flights: true` halts the app's rollout and each
    flight's. The runner passes the input as INPUT_ALL-FLIGHTS whatever action.yml says."""
    run = world.run(env={"INPUT_ALL-FLIGHTS": "true"})
    flight = world.emulator.rollout(APP_ID, PUBLISHED, FLIGHT_ID)["packageRolloutStatus"]
    print(f"all-flights: {describe(run)}; results {len(results_of(run))}; flight: {flight}")
    assert flight == "PackageRolloutStopped", describe(run)
    assert len(results_of(run)) == 2
