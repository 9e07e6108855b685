"""The truth of `result` (rules 5, 6, 7 and 7a): a halt counts only when the Store says so, a
rollout that ends up stopped is never reported as failed, and a halt this run sent ends
`halted` or `unknown`: `failed` is only for a refusal of its first halt, confirmed by a read.

The harness (`World`, `HostileServer`) is in tests/world.py.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from halt_rollout.confirm import Known, Read, Step, next_step, read_kind
from halt_rollout.errors import StoreError
from halt_rollout.store_resources import Rollout
from store_emulator import Emulator, Fault
from store_emulator.actions_runner import run_action
from store_emulator.resources import STOPPED
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
    HALT,
    IN_PROGRESS,
    MIB,
    ROLLOUT,
    STARTUP_SLACK,
    AppliedFault,
    Running,
    World,
    applied_halt,
    describe,
    forward_everything,
    loaded,
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


def _halt_applied_then_answered(world: World, status: int, body: object) -> None:
    """The halt POST takes effect in the Store, and then `status` with `body` comes back."""
    world.emulator.add_fault(
        AppliedFault(
            world.emulator, APP_ID, PUBLISHED, method="POST", path=HALT, status=status, body=body
        )
    )


def _rival_halts_first(world: World) -> None:
    """Another responder's halt lands just before ours: the rollout stops, ours gets 409."""
    _halt_applied_then_answered(world, 409, _conflict(PUBLISHED))


def test_409_because_a_rival_halted_first_is_already_halted(world: World) -> None:
    """Between our read and our halt, another responder halted it: the Store says 409."""
    _rival_halts_first(world)
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
    outcome = _two_runs(world, world.inputs())
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
    _halt_applied_then_answered(world, 504, {"statusCode": 504, "message": "Gateway Timeout"})
    run = world.run({"timeout-seconds": "30"})  # ends at once when it works: room to start
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


@pytest.mark.long
def test_final_check_of_a_lost_halt_is_not_sent_after_the_deadline(world: World) -> None:
    """The read before the halt is answered late, with a third of the deadline left; the
    halt then takes effect and its answer never comes. The contract wants the halt
    confirmed (rule 7) and nothing sent after the deadline (rule 7a): both fit only if the
    halt's wait leaves time for the check. The margins are seconds, scaled to what they
    hold: a loopback read (the reserve, 3 s), and how late the harness sees the run's
    start (the read comes 10 s before the deadline; the reserve, 3 s, needs 6 s of it)."""
    timeout = 20.0

    def well_before_the_deadline() -> float:
        assert world.deadline_started is not None
        return world.deadline_started + timeout - 10.0

    world.emulator.add_fault(
        ReadUntilFault(
            well_before_the_deadline, method="GET", path=ROLLOUT, status=200, body=IN_PROGRESS
        )
    )
    world.emulator.add_fault(Fault(method="POST", path=HALT, kind="hang_after", seconds=30))
    run = world.run({"timeout-seconds": f"{timeout:g}"})
    late = world.sent_after_deadline(timeout)
    print(f"lost halt, final check: {describe(run, timeout)}; late: {late}")
    assert late == [], late
    assert run.seconds <= timeout + STARTUP_SLACK
    # The final read has the run's fixed confirm reserve, 3 s of wall time, for a loopback
    # read of a few tens of ms. Only a machine that kept the run off the CPU for most of
    # that reserve (the kernel's count, from when the reserve began at the latest) can
    # excuse `unknown`; `failed` never.
    assert world.queue is not None
    assert world.deadline_started is not None
    starved = world.queue.seconds_after(world.deadline_started + timeout - 3.0)
    print(f"waited {starved:.1f} s for a CPU in the confirm reserve")
    if not (run.outputs["result"] == "unknown" and starved >= 2.0):
        assert run.outputs["result"] == "halted", describe(run, timeout)
    assert world.emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == (
        "PackageRolloutStopped"
    )


# A halt this run sent ends halted or unknown (rule 7a) -----------------------------------


def test_a_slow_applying_halt_ends_halted_never_failed(world: World) -> None:
    """The Store answers the halt at once but applies it 3 s later: reads say in progress
    meanwhile and a second halt gets 409 "already under way". The run keeps confirming,
    says what it waits for, and ends halted."""
    world.emulator.knobs.halt_seconds = 3.0
    world.emulator.knobs.halt_answered_at_once = True
    run = world.run({"timeout-seconds": "60"})
    halts = world.emulator.halt_requests
    print(f"slow-applying halt: {describe(run)}; halts: {[h.status for h in halts]}")
    assert (run.exit_code, run.outputs["result"]) == (0, "halted"), describe(run)
    assert run.outputs["status"] == STOPPED
    assert 1 <= len(halts) <= 2  # a second one only after a read, and it is refused
    assert f"waiting for the rollout to read {STOPPED}" in run.stdout
    assert "of timeout-seconds left" in run.stdout


@pytest.mark.long
@pytest.mark.parametrize("answered_at_once", [True, False], ids=["answered", "answer-lost"])
def test_a_slow_applying_halt_is_unknown_at_the_deadline_never_failed(
    world: World, answered_at_once: bool
) -> None:
    """The halt takes longer to apply than the run has: `unknown`, never `failed`, and
    nothing is sent after the deadline. (Answer lost: the halt's request is cut by the
    deadline while the Store still works on it.) The deadline leaves room for a slow
    start on a loaded machine; the halt takes longer still."""
    timeout = 15.0
    world.emulator.knobs.halt_seconds = 25.0
    world.emulator.knobs.halt_answered_at_once = answered_at_once
    run = world.run({"timeout-seconds": f"{timeout:g}"})
    late = world.sent_after_deadline(timeout)
    print(f"halt slower than the deadline: {describe(run, timeout)}; late: {late}")
    assert (run.exit_code, run.outputs["result"]) == (1, "unknown"), describe(run)
    assert late == [], late
    assert len(run.errors) == 1, run.errors
    assert "Halt outcome unknown" in run.errors[0], run.errors
    assert "was sent" in run.errors[0]
    # The Store is still applying the halt this run sent: `unknown` was the truth.
    assert world.emulator.halt_under_way(APP_ID, PUBLISHED), "no halt is under way"


def test_two_responders_at_once_against_a_slow_halt_both_end_well(world: World) -> None:
    """Both read the rollout in progress and send the halt; the Store applies the first in
    3 s and refuses the second (409, one under way). The second responder watches the
    rollout until it reads stopped: halted and already-halted, both exit 0."""
    world.emulator.add_fault(slow_reads(times=2))
    world.emulator.knobs.halt_seconds = 3.0
    outcome = _two_runs(world, {**world.inputs(), "timeout-seconds": "60"})
    print("two responders, slow halt: " + "; ".join(describe(run) for run in outcome))
    assert sorted(run.outputs["result"] for run in outcome) == ["already-halted", "halted"]
    assert [run.exit_code for run in outcome] == [0, 0]


@pytest.mark.long
def test_a_409_after_our_own_halt_then_failing_reads_is_unknown_not_failed(world: World) -> None:
    """Our halt reaches the Store and its answer is lost; the rollout still reads in
    progress (the Store is slow to apply it), so the halt is sent again and refused with a
    409: that proves nothing, as the first may be under way. Every read after it fails:
    `unknown` at the deadline, never `failed`."""
    world.emulator.knobs.halt_seconds = 60.0
    world.emulator.knobs.halt_answered_at_once = True
    world.emulator.add_fault(Fault(method="POST", path=HALT, kind="reset_after"))
    world.emulator.add_fault(
        Fault(method="GET", path=ROLLOUT, status=200, body=IN_PROGRESS, times=2)
    )
    world.emulator.add_fault(
        Fault(method="GET", path=ROLLOUT, status=503, body={"message": "down"}, times=None)
    )
    run = world.run({"timeout-seconds": "15"})
    halts = [h.status for h in world.emulator.halt_requests]
    print(f"409 after our own halt, reads failing: {describe(run, 15)}; halts: {halts}")
    assert 409 in halts, halts
    assert (run.exit_code, run.outputs["result"]) == (1, "unknown"), describe(run)
    assert "Halt outcome unknown" in run.errors[0], run.errors


def _rival_then_reads(world: World, *, failing_reads: int | None) -> None:
    """Another responder stops the rollout just before our halt lands (409); the reads
    after it fail (`failing_reads` times, None: always)."""
    _rival_halts_first(world)
    world.emulator.add_fault(Fault(method="GET", path=ROLLOUT, status=200, body=IN_PROGRESS))
    world.emulator.add_fault(
        Fault(
            method="GET",
            path=ROLLOUT,
            status=429,
            body={"statusCode": 429, "message": "Rate limit is exceeded."},
            times=failing_reads,
        )
    )


def test_a_409_to_our_first_halt_then_a_failing_read_keeps_reading(world: World) -> None:
    """The read after the 409 fails twice (429): the run keeps reading while time is left,
    and ends already-halted when a read shows the rival's stop (rule 6), not failed."""
    _rival_then_reads(world, failing_reads=2)
    run = world.run({"timeout-seconds": "60"})
    print(f"409, then two failing reads: {describe(run)}")
    assert (run.exit_code, run.outputs["result"]) == (0, "already-halted"), describe(run)
    assert "someone else" in run.stdout


@pytest.mark.long
def test_a_409_to_our_first_halt_then_no_read_at_all_is_unknown_not_failed(world: World) -> None:
    """No read succeeds after the 409: nothing confirms the refusal, so not `failed`; and
    the run kept reading until the deadline instead of giving up at once."""
    _rival_then_reads(world, failing_reads=None)
    run = world.run({"timeout-seconds": "15"})
    reads = [r for r in world.emulator.store_requests if r.path.endswith("/packagerollout")]
    print(f"409, then no read: {describe(run, 15)}; reads: {len(reads)}")
    assert (run.exit_code, run.outputs["result"]) == (1, "unknown"), describe(run)
    assert len(reads) >= 3  # the one before the halt, then at least two after the 409


def test_a_refusal_confirmed_by_a_read_is_failed(world: World) -> None:
    """A 4xx to the first halt, and a read that shows the rollout still in progress: the
    Store refused, nothing took effect: `failed`, with the Store's words."""
    world.emulator.add_fault(
        Fault(
            method="POST",
            path=HALT,
            status=403,
            body={"code": "Unauthorized", "message": "Not allowed"},
            times=None,
        )
    )
    run = world.run({"timeout-seconds": "30"})
    print(f"403 to the halt: {describe(run)}")
    assert (run.exit_code, run.outputs["result"]) == (1, "failed"), describe(run)
    assert "HTTP 403" in run.errors[0]
    assert "did not take effect" in run.errors[0]
    assert len(world.emulator.halt_requests) == 1


def _two_runs(world: World, inputs: dict[str, str]) -> list[ActionRun]:
    extra = {"REQUESTS_CA_BUNDLE": world.bundle}
    outcome: list[ActionRun] = []
    threads = []
    for name in ("rival-a", "rival-b"):
        workdir = world.workdir / name
        workdir.mkdir()
        threads.append(
            threading.Thread(
                target=lambda w=workdir: outcome.append(
                    run_action(inputs, extra_env=extra, workdir=w)
                )
            )
        )
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome


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
    timeout = loaded(4)  # the halt is sent: sign-in must fit
    with ConnectProxy("pass") as proxy:
        run = world.run(
            {"timeout-seconds": f"{timeout:g}", "store-api-url": server.url},
            env=proxied(proxy.url),
        )
    stopped = world.emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"]
    print(f"{describe(run, timeout)}; the Store's rollout is {stopped}")
    assert traceback_free(run)
    assert run.seconds <= timeout + STARTUP_SLACK
    assert stopped == "PackageRolloutStopped"
    assert run.outputs["result"] == "unknown", describe(run)
    assert world.sent_after_deadline(timeout) == []


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_gateway_error_hiding_a_halt_with_retry_after_past_the_deadline_is_never_failed(
    world: World, status: int
) -> None:
    """The halt took effect behind a gateway that answered 5xx with a Retry-After longer
    than what is left of timeout-seconds. The action cannot wait that long; the rollout is
    stopped all the same. A rollout that ends up stopped is never reported failed, and no
    request goes out after the deadline."""
    world.emulator.add_fault(applied_halt(world.emulator, status, headers={"Retry-After": "30"}))
    timeout = loaded(6)  # the halt is sent: sign-in must fit
    run = world.run({"timeout-seconds": f"{timeout:g}"}, timeout=timeout + 40)
    late = world.sent_after_deadline(timeout)
    stopped = world.emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"]
    print(f"{status}: {describe(run, timeout)}; late {late}; the Store's rollout is {stopped}")
    assert traceback_free(run)
    assert late == []
    assert run.seconds <= timeout + STARTUP_SLACK
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
    # The 6 s count from the halt's first answer on a free machine; what load eats of the
    # start is added, so that Retry-After still eats into the confirm reserve.
    timeout = loaded(6)
    run = world.run({"timeout-seconds": f"{timeout:g}"}, timeout=timeout + 40)
    late = world.sent_after_deadline(timeout)
    halts = len(emu.halt_requests)
    stopped = emu.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"]
    print(f"Retry-After {retry_after}: {describe(run, timeout)}; {halts} halts; {stopped}")
    print(f"late: {late}")
    assert traceback_free(run)
    assert late == []
    assert run.seconds <= timeout + STARTUP_SLACK
    if stopped == "PackageRolloutStopped":
        assert run.outputs["result"] in ("halted", "unknown"), describe(run)
    else:
        assert halts == 1


@pytest.mark.parametrize("status", [501, 505, 520, 307])
def test_a_halt_answered_by_any_status_but_a_4xx_that_then_took_effect_is_halted(
    world: World, status: int
) -> None:
    """The halt goes through behind a gateway that answers a status the retry rule does not
    name (501, 505, a proxy's 520, a redirect): an answer that is not the rollout stopped,
    so the halt may have reached the Store (rule 7a). Only a 4xx is a refusal: the run
    reads the rollout, finds it stopped by its own halt, and says `halted`, never
    `already-halted` (someone else) nor `failed`."""
    world.emulator.add_fault(applied_halt(world.emulator, status, body={"message": "gateway"}))
    run = world.run({"timeout-seconds": "30"})
    stopped = world.emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"]
    print(f"{status} after the halt took effect: {describe(run)}; Store: {stopped}")
    assert stopped == STOPPED
    assert (run.exit_code, run.outputs["result"]) == (0, "halted"), describe(run)
    assert "someone else" not in run.stdout


# The table in docs/reliability.md is the code -------------------------------------------

_ROLLOUTS = {
    "stopped": "PackageRolloutStopped",
    "in progress": "PackageRolloutInProgress",
    "not started": "PackageRolloutNotStarted",
    "finalized": "PackageRolloutComplete",
    "unread": None,
}
# Each documented row's condition, in the facts `next_step` reads (first row that fits).
_ROWS: dict[int, Callable[[Known, bool], bool]] = {
    1: lambda k, t: k.reached and k.read is Read.STOPPED,
    2: lambda k, t: not k.reached and k.read is Read.STOPPED,
    3: lambda k, t: k.read is Read.BEYOND_HALTING,
    4: lambda k, t: (
        not k.reached
        and k.refusal is not None
        and k.refusal.status == 409
        and k.rollout is not None
        and k.rollout.status == "PackageRolloutInProgress"
        and k.read is Read.ROLLING_OUT
        and not k.watched_enough
        and t
    ),
    5: lambda k, t: not k.reached and k.refusal is not None and k.read is Read.ROLLING_OUT,
    6: lambda k, t: not k.reached and k.refusal is not None and k.read is Read.NOTHING and t,
    7: lambda k, t: not k.reached and k.refusal is not None and k.read is Read.NOTHING,
    8: lambda k, t: not k.reached and k.refusal is None and t,
    9: lambda k, t: not k.reached and k.refusal is None,
    10: lambda k, t: k.reached and t and k.read is Read.ROLLING_OUT and not k.under_way,
    11: lambda k, t: k.reached and t,
    12: lambda k, t: k.reached,
}
_THEN = {
    "**halted**": Step.HALTED,
    "**already-halted**": Step.ALREADY_HALTED,
    "**failed**": Step.FAILED,
    "**unknown**": Step.UNKNOWN,
    "read again": Step.READ_AGAIN,
    "send": Step.SEND_AGAIN,
}


def _documented_steps() -> dict[int, Step]:
    text = (Path(__file__).parent.parent / "docs" / "reliability.md").read_text("utf-8")
    section = text.split("## How a result is decided", 1)[1].split("\n## ", 1)[0]
    steps: dict[int, Step] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells and cells[0].isdigit():
            then = cells[-1]
            steps[int(cells[0])] = next(s for w, s in _THEN.items() if then.startswith(w))
    return steps


def test_the_documented_table_is_how_a_result_is_decided() -> None:
    """Every combination of what can be known: the first documented row that fits gives
    the step `next_step` takes (docs/reliability.md, "How a result is decided")."""
    documented = _documented_steps()
    assert sorted(documented) == sorted(_ROWS), "rows documented and rows checked differ"
    refusals = [None, 409, 403]
    checked = 0
    for reached, status, under_way, said, time_left, watched in itertools.product(
        [True, False], refusals, [True, False], _ROLLOUTS, [True, False], [True, False]
    ):
        if under_way and not reached:
            continue  # only a refusal after one of ours reached the Store shows one
        state = _ROLLOUTS[said]
        rollout = Rollout(state != "PackageRolloutComplete", 25.0, state, "0") if state else None
        known = Known(
            reached=reached,
            refusal=StoreError("refused", status=status) if status else None,
            under_way=under_way,
            read=read_kind(rollout) if rollout else Read.NOTHING,
            rollout=rollout,
            watched_enough=watched,
        )
        row = next(n for n, fits in _ROWS.items() if fits(known, time_left))
        assert next_step(known, time_left=time_left) is documented[row], (row, known)
        checked += 1
    assert checked == 180  # every combination but a halt under way that none of ours reached
