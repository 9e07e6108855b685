"""The truth of `result` (rules 5, 6 and 7): a halt counts only when the Store says so, and a
rollout that ends up stopped is never reported as failed.

"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from store_emulator import Emulator, Fault
from store_emulator.actions_runner import run_action
from store_emulator.responses import Response
from store_emulator.step_results import ActionRun

from .conftest import (
    APP_ID,
    FLIGHT_ID,
    PUBLISHED,
)
from .connect_proxy import ConnectProxy
from .world import (
    CONFLICT,
    DEADLINE,
    HALT,
    IN_PROGRESS,
    MIB,
    ROLLOUT,
    STARTUP_SLACK,
    Running,
    World,
    applied_halt,
    describe,
    forward_everything,
    proxied,
    results_of,
    traceback_free,
    trickling_from_the_halt_on,
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
        applied_halt(
            world.emulator,
            409,
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
        applied_halt(world.emulator, 504, body={"statusCode": 504, "message": "Gateway Timeout"})
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


def test_rival_halt_landing_during_the_409_reread_is_already_halted(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """409, the first re-read still in progress, then another responder's halt lands: a
    rollout that ends up stopped is never reported failed."""
    emulator.add_fault(Fault(method="POST", path=HALT, status=409, body=CONFLICT, times=None))
    running = start()
    running.wait_for(lambda: "reading it again in 1 s" in running.stdout, "the first wait")
    emulator.state.halt(APP_ID, PUBLISHED)  # the rival's halt, from Partner Center
    running.process.wait(30)
    for reader in running.readers:
        reader.join(5)

    assert running.process.returncode == 0, running.stdout
    assert running.outputs["result"] == "already-halted"
    assert running.error_lines == []
    assert "someone else" in running.stdout


def test_an_answer_too_large_is_said_once_not_retried_until_the_deadline(world: World) -> None:
    """A listing page larger than any answer the action takes (16 MiB) is no network error:
    the Store answered, and asking again gets the same answer. It once was retried as a
    "connection failure" until timeout-seconds ran out, then reported as "could not be
    reached". Now it is an unusable answer, said at once; the app's own halt stands."""
    emu = world.emulator
    app = "9NASTRAL0002"
    emu.add_app(app, last_published="1152921504600000002")
    emu.set_rollout(app, "1152921504600000002")
    emu.add_fault(
        Fault(method="GET", path="listflights", kind="huge", status=200, size=20 * MIB, times=None)
    )
    run = world.run({"app-id": app, "all-flights": "true", "timeout-seconds": "25"}, timeout=60)
    listings = [r for r in world.emulator.requests if "listflights" in r.path]
    print(f"{describe(run, 25)}; {len(listings)} listing requests")
    assert traceback_free(run)
    results = {r["name"]: r["result"] for r in results_of(run)}
    assert results[f"flights of {app}"] == "failed"
    assert results[app] == "halted"
    assert not any("could not be reached" in error for error in run.errors), run.errors
    assert len(listings) == 1
    assert run.seconds < 15, describe(run, 25)


def test_a_halt_sent_through_a_proxy_to_a_store_that_then_trickles_is_unknown_not_failed(
    world: World,
) -> None:
    """Rule 7a: the halt went through the tunnel and reached the Store (it took effect);
    from then on every answer trickles in past the deadline, the confirming read too. A
    halt sent but not confirmed is `unknown`, never `failed`."""
    server = world.hostile(trickling_from_the_halt_on())
    with ConnectProxy("pass") as proxy:
        run = world.run(
            {"timeout-seconds": "4", "store-api-url": server.url}, env=proxied(proxy.url)
        )
    stopped = world.emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"]
    print(f"{describe(run, 4)}; the Store's rollout is {stopped}")
    assert traceback_free(run)
    assert run.seconds <= 4 + STARTUP_SLACK
    assert stopped == "PackageRolloutStopped"
    assert run.outputs["result"] == "unknown", describe(run)
    assert world.sent_after_deadline(4) == []


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_gateway_error_hiding_a_halt_with_retry_after_past_the_deadline_is_never_failed(
    world: World, status: int
) -> None:
    """The halt took effect behind a gateway that answered 5xx with a Retry-After longer
    than what is left of timeout-seconds. The action cannot wait that long; the rollout is
    stopped all the same. A rollout that ends up stopped is never reported failed, and no
    request goes out after the deadline."""
    world.emulator.add_fault(applied_halt(world.emulator, status, headers={"Retry-After": "30"}))
    run = world.run({"timeout-seconds": "6"}, timeout=40)
    late = world.sent_after_deadline(6)
    stopped = world.emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"]
    print(f"{status}: {describe(run, 6)}; late {late}; the Store's rollout is {stopped}")
    assert traceback_free(run)
    assert late == []
    assert run.seconds <= 6 + STARTUP_SLACK
    assert stopped == "PackageRolloutStopped"
    assert run.outputs["result"] != "failed", describe(run)


@pytest.mark.parametrize("retry_after", ["3", "4", "5"])
def test_retry_after_eating_the_confirm_reserve_then_a_lost_answer_is_never_failed(
    world: World, retry_after: str
) -> None:
    """429 with a Retry-After that leaves less than the confirm reserve of a 6 s deadline;
    the second halt takes effect and its answer never comes. Sent but not confirmed is
    `unknown`, confirmed by a read is `halted`: never `failed`; nothing after the deadline."""
    emu = world.emulator
    emu.add_fault(Fault(method="POST", path=HALT, status=429, headers={"Retry-After": retry_after}))
    emu.add_fault(Fault(method="POST", path=HALT, kind="hang_after", seconds=60))
    run = world.run({"timeout-seconds": "6"}, timeout=40)
    late = world.sent_after_deadline(6)
    halts = len(emu.halt_requests)
    stopped = emu.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"]
    print(f"Retry-After {retry_after}: {describe(run, 6)}; {halts} halts; {stopped}; late {late}")
    assert traceback_free(run)
    assert late == []
    assert run.seconds <= 6 + STARTUP_SLACK
    if stopped == "PackageRolloutStopped":
        assert run.outputs["result"] in ("halted", "unknown"), describe(run)
    else:
        assert halts == 1
