"""Cancellation is a first-class ending (rule 10).

actions/runner cancels a container action by sending SIGINT to `docker run`, which
hands it to the container's first process (ours), then SIGTERM 7.5 s later, then
SIGKILL 2.5 s after that. Either signal is the deadline arriving now: nothing new is
sent; within 2 seconds every target's truthful result, the outputs, the summary and
one `::error` saying the run was cancelled are written; a halt in flight is
`unknown`. A second signal ends the run at once. Each test signals the real
entrypoint (or the command line) while the Store holds an answer back.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from store_emulator import Emulator, Fault, demo
from store_emulator.action_files import ENTRYPOINT, container_command
from store_emulator.actions_runner import runner_environment

from .conftest import APP_ID, CONTRACT_TARGETS, OTHER_APP, OTHER_SUBMISSION, PUBLISHED
from .connect_proxy import ConnectProxy
from .world import (
    CANCEL_SECONDS,
    CONFLICT,
    HALT,
    SUBMISSION,
    Incoming,
    Running,
    Wire,
    World,
    cancel_errors,
    command_line,
    halt_held_back,
    halt_in_flight,
    many_apps,
    pipe_no_one_reads,
    proxied,
    requests_after,
    running_traceback_free,
    spawn,
)


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cancel_during_a_halt_in_flight_says_unknown_within_two_seconds(
    emulator: Emulator, start: Callable[..., Running], number: int
) -> None:
    running = halt_in_flight(emulator, start)
    signalled = time.monotonic()
    took = running.signal_and_time(number)
    print(f"{signal.Signals(number).name}: ended {took:.2f} s after the signal")

    assert took <= CANCEL_SECONDS, running.stdout
    assert running.process.returncode == 1
    assert "Traceback" not in running.stdout + "".join(running.errors)
    outputs = running.outputs
    assert outputs["result"] == "unknown"
    [record] = json.loads(outputs["results"])
    assert record["result"] == "unknown"
    assert record["submission-id"] == PUBLISHED
    assert "Partner Center" in record["error"]
    # One error, about the cancellation: what is unknown, where to check, that a re-run is safe.
    [error] = running.error_lines
    assert error.startswith("::error title=Run cancelled::")
    assert signal.Signals(number).name in error
    assert "Partner Center" in error
    assert "again is safe" in error
    assert "Run cancelled" in running.summary
    assert "unknown" in running.summary
    # The log states the result whatever the runner's files say.
    assert f"{APP_ID}: unknown, submission {PUBLISHED}" in running.stdout
    assert requests_after(emulator, signalled) == []
    # The Store did halt it: `unknown` was the truth, `failed` would have been a lie.
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == "PackageRolloutStopped"


def test_cancel_during_a_retry_after_wait_sends_nothing_more(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    # A throttled halt was never processed: cancelled then, the truth is `failed`.
    emulator.add_fault(
        Fault(method="POST", path=HALT, status=429, headers={"Retry-After": "60"}, times=None)
    )
    running = start()
    running.wait_for(lambda: "Retry-After asks" in running.stdout, "the wait's log line")
    signalled = time.monotonic()
    took = running.signal_and_time(signal.SIGINT)

    assert took <= CANCEL_SECONDS
    assert running.process.returncode == 1
    assert running.outputs["result"] == "failed"
    [record] = json.loads(running.outputs["results"])
    assert "cancelled" in record["error"]
    assert requests_after(emulator, signalled) == []
    assert len(emulator.halt_requests) == 1
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] != "PackageRolloutStopped"


def assert_cancelled_before_the_store(running: Running, emulator: Emulator, took: float) -> None:
    """Cancelled in time during sign-in: failed, said so, and nothing sent to the Store."""
    assert took <= CANCEL_SECONDS
    assert running.process.returncode == 1
    assert running.outputs["result"] == "failed"
    assert emulator.store_requests == []
    [error] = running.error_lines
    assert error.startswith("::error title=Run cancelled::")


def test_cancel_during_sign_in_sends_nothing_to_the_store(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    emulator.add_fault(Fault(method="POST", path=r"/token$", kind="hang", seconds=60))
    running = start()
    running.wait_for(
        lambda: any(r.path.endswith("/token") for r in emulator.requests), "token request"
    )
    took = running.signal_and_time(signal.SIGTERM)

    assert_cancelled_before_the_store(running, emulator, took)


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_cancel_during_sign_in_is_said_as_a_cancel_not_a_deadline(
    emulator: Emulator, start: Callable[..., Running], number: int
) -> None:
    """Entra holds the token back and the run is cancelled, long before timeout-seconds:
    every target's error says the run was cancelled and that nothing was sent for it, never
    that sign-in "did not finish before the deadline" (rule 10)."""
    emulator.add_fault(Fault(method="POST", path=r"/token$", kind="hang", seconds=60))
    running = start({"timeout-seconds": "120"})
    running.wait_for(
        lambda: any(r.path.endswith("/token") for r in emulator.requests), "token request"
    )
    took = running.signal_and_time(number)

    assert took <= CANCEL_SECONDS
    [record] = json.loads(running.outputs["results"])
    assert record["result"] == "failed", record
    assert "cancelled" in record["error"], record["error"]
    assert "deadline" not in record["error"].lower(), record["error"]
    assert "Nothing was sent for it" in record["error"], record["error"]
    assert "before the deadline" not in running.summary, running.summary
    assert emulator.store_requests == []


def test_a_sign_in_cut_by_a_cancel_is_said_to_be_cancelled_not_timed_out(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """Rule 10: the result of a target whose sign-in a cancel cut says so; it never blames
    a timeout-seconds that had not run out."""
    emulator.add_fault(Fault(method="POST", path=r"/token$", kind="hang", seconds=60))
    running = start({"timeout-seconds": "300"})
    running.wait_for(
        lambda: any(r.path.endswith("/token") for r in emulator.requests), "token request"
    )
    running.signal_and_time(signal.SIGINT)

    said = running.stdout + running.summary + running.outputs["results"]
    assert "cancelled by SIGINT" in json.loads(running.outputs["results"])[0]["error"], said
    for untrue in ("timed out", "timeout-seconds (300)", "did not answer within"):
        assert untrue not in said, said


def test_cancel_with_several_targets_keeps_every_truthful_result(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    # The other app's halt is held back; the first app and the flight are halted at once.
    emulator.add_fault(
        Fault(method="POST", path=rf"/{OTHER_APP}/.*{HALT}", kind="hang_after", seconds=60)
    )
    running = start(
        {"app-id": "", "targets": "targets.yml"}, files={"targets.yml": CONTRACT_TARGETS}
    )
    running.wait_for(lambda: len(emulator.halt_requests) == 3, "three halt requests")
    running.wait_for(lambda: running.stdout.count(": halted: ") == 2, "two confirmed halts")
    took = running.signal_and_time(signal.SIGINT)

    assert took <= CANCEL_SECONDS
    records = json.loads(running.outputs["results"])
    assert [r["result"] for r in records] == ["halted", "halted", "unknown"]
    assert running.outputs["result"] == "unknown"
    assert len(running.error_lines) == 1


def test_second_signal_ends_at_once(
    emulator: Emulator, start: Callable[..., Running], tmp_path: Path
) -> None:
    # The outputs file is a pipe whose buffer is full and whose reader never reads: after
    # the first signal, writing the outputs waits (up to its bound); the second ends it.
    halt_held_back(emulator)
    with pipe_no_one_reads(tmp_path, full=True) as pipe:
        running = start(extra={"GITHUB_OUTPUT": str(pipe)})
        running.wait_for(lambda: bool(emulator.halt_requests), "halt request")
        os.kill(running.process.pid, signal.SIGINT)
        running.wait_for(lambda: "Results:" in running.stdout, "the results in the log")
        took = running.signal_and_time(signal.SIGTERM)

    assert took <= 0.5
    assert running.process.returncode == 1
    assert "SIGTERM received again: ending now" in running.stdout


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare"
)
def test_sigterm_to_pid_1_is_handled(emulator: Emulator, start: Callable[..., Running]) -> None:
    """As the container's first process: PID 1 ignores SIGTERM it does not handle."""
    halt_held_back(emulator)
    running = start(
        command=["unshare", "--pid", "--fork", "--mount-proc", sys.executable, str(ENTRYPOINT)]
    )
    running.wait_for(lambda: bool(emulator.halt_requests), "halt request")
    children = Path(f"/proc/{running.process.pid}/task/{running.process.pid}/children")
    [pid_1] = [int(pid) for pid in children.read_text().split()]
    [namespace_pids] = [
        line.split()[1:]
        for line in Path(f"/proc/{pid_1}/status").read_text().splitlines()
        if line.startswith("NSpid:")
    ]
    assert namespace_pids[-1] == "1"  # its own PID inside the namespace
    took = running.signal_and_time(signal.SIGTERM, pid=pid_1)

    assert took <= CANCEL_SECONDS
    assert running.process.returncode == 1
    assert running.outputs["result"] == "unknown"


def test_ctrl_c_on_the_command_line(emulator: Emulator, start: Callable[..., Running]) -> None:
    halt_held_back(emulator)
    running = start(
        command=command_line(emulator, "--app-id", APP_ID, "--json"),
        extra={"AZURE_CLIENT_SECRET": emulator.client_secret},
    )
    running.wait_for(lambda: bool(emulator.halt_requests), "halt request")
    took = running.signal_and_time(signal.SIGINT)

    assert took <= CANCEL_SECONDS
    assert running.process.returncode == 1
    printed = json.loads(running.stdout)
    assert printed["result"] == "unknown"
    stderr = "".join(running.errors)
    assert "Run cancelled" in stderr
    assert "SIGINT" in stderr
    assert "Traceback" not in stderr


def handles(pid: int, number: int) -> bool:
    """Whether the process has a handler for the signal yet (/proc's SigCgt mask)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (number - 1) & 1)
    return False


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cancel_while_still_starting_sends_nothing_and_says_so(
    emulator: Emulator, start: Callable[..., Running], number: int
) -> None:
    """A cancel that comes while the action is still loading (its imports take a few
    hundred milliseconds): no traceback, nothing sent, the outputs and the error written."""
    running = start()
    # Python catches SIGINT from its start (KeyboardInterrupt); only ours catches SIGTERM,
    # and both are installed together.
    running.wait_for(lambda: handles(running.process.pid, signal.SIGTERM), "our handler", 10)
    took = running.signal_and_time(number)

    assert took <= CANCEL_SECONDS
    assert running.process.returncode == 1
    assert "Traceback" not in running.stdout + "".join(running.errors)
    assert emulator.requests == []
    assert running.outputs["result"] == "failed"
    [error] = running.error_lines
    assert error.startswith("::error title=Run cancelled::The run was cancelled by ")


def test_a_cancel_is_said_as_a_cancel_with_what_was_sent_for_each_target(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """SIGINT while one target's halt is in flight and another's rollout is still being
    read: the first is `unknown`; the second says the run was cancelled and that nothing
    was sent for it, never "Deadline reached" (rule 7a, rule 10)."""
    emulator.add_fault(
        Fault(method="POST", path=rf"/{APP_ID}/.*{HALT}", kind="hang_after", seconds=60)
    )
    emulator.add_fault(
        Fault(method="GET", path=rf"/{OTHER_APP}/.*/packagerollout$", kind="hang", seconds=60)
    )
    targets = (
        f"targets:\n  - name: first\n    app-id: {APP_ID}\n"
        f'  - name: second\n    app-id: {OTHER_APP}\n    submission-id: "{OTHER_SUBMISSION}"\n'
    )
    running = start({"app-id": "", "targets": "targets.yml"}, files={"targets.yml": targets})
    running.wait_for(
        lambda: (
            bool(emulator.halt_requests)
            and any(OTHER_APP in r.path and r.method == "GET" for r in emulator.store_requests)
        ),
        "the first target's halt and the second's read",
    )
    took = running.signal_and_time(signal.SIGINT)

    assert took <= CANCEL_SECONDS, running.stdout
    first, second = json.loads(running.outputs["results"])
    assert first["result"] == "unknown", first
    assert second["result"] == "failed", second
    assert second["error"].startswith("Run cancelled: "), second["error"]
    assert "cancelled by SIGINT" in second["error"]
    assert "Nothing was sent for it" in second["error"]
    assert "Deadline reached" not in second["error"]
    assert "Deadline reached" not in running.stdout
    assert len(running.error_lines) == 1


def no_traceback(running: Running) -> None:
    assert "Traceback" not in running.stdout + "".join(running.errors), running.stdout + "".join(
        running.errors
    )


def test_cancel_while_both_runner_files_are_full_pipes_ends_within_two_seconds(
    emulator: Emulator, start: Callable[..., Running], tmp_path: Path
) -> None:
    halt_held_back(emulator)
    with (
        pipe_no_one_reads(tmp_path / "out", full=True) as output,
        pipe_no_one_reads(tmp_path / "summary", full=True) as summary,
    ):
        running = start(extra={"GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)})
        running.wait_for(lambda: bool(emulator.halt_requests), "halt request")
        took = running.signal_and_time(signal.SIGINT)
    print(f"signal to exit with both runner files full pipes: {took:.2f} s")
    no_traceback(running)
    assert took <= CANCEL_SECONDS, running.stdout
    assert running.process.returncode == 1
    assert f"{APP_ID}: unknown" in running.stdout
    cancelled = cancel_errors(running)
    assert len(cancelled) == 1, running.error_lines


def test_two_signals_ten_ms_apart_end_at_once(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    running = halt_in_flight(emulator, start)
    sent, queued = time.monotonic(), running.queued()
    os.kill(running.process.pid, signal.SIGINT)
    time.sleep(0.01)
    os.kill(running.process.pid, signal.SIGTERM)
    took = running.seconds_to_end(sent, queued)
    print(f"two signals 10 ms apart: ended {took:.3f} s after the first")
    no_traceback(running)
    assert took <= 0.5
    assert running.process.returncode == 1


def guarded(pid: int) -> bool:
    """Whether the process blocks or handles SIGTERM yet (/proc's SigBlk and SigCgt)."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    mask = int(fields["SigBlk"], 16) | int(fields["SigCgt"], 16)
    return bool(mask >> (signal.SIGTERM - 1) & 1)


def test_signal_in_the_first_milliseconds_still_writes_the_outputs(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """A cancel may come at any moment, the interpreter's first milliseconds included:
    whenever it lands, the run must end with exit 1, the outputs and one error."""
    seen = []
    for number in (signal.SIGINT, signal.SIGTERM):
        for delay in (0.0, 0.005, 0.02, 0.05, 0.1, 0.3):
            running = start(command=container_command())  # as the image starts it
            # From the moment the image's first process is itself: `env` blocking the
            # signals (a signal in the microseconds before that ends any process).
            running.wait_for(partial(guarded, running.process.pid), "signals blocked", 10)
            time.sleep(delay)
            if running.process.poll() is not None:
                continue  # the whole run ended before the signal: nothing to cancel
            took = running.signal_and_time(number)
            if "received" not in running.stdout and running.process.returncode == 0:
                continue  # it ended between the check above and the signal: nothing to cancel
            stderr = "".join(running.errors)
            written = Path(running.env["GITHUB_OUTPUT"]).read_text(encoding="utf-8")
            if "Traceback" in running.stdout + stderr:
                print(f"traceback after {delay * 1000:.0f} ms:", (running.stdout + stderr)[-600:])
            seen.append(
                (
                    signal.Signals(number).name,
                    int(delay * 1000),
                    running.process.returncode,
                    round(took, 2),
                    "result" in written,
                    "Traceback" in running.stdout + stderr,
                )
            )
    print("(signal, ms after start, exit, seconds to end, outputs written, traceback):")
    for row in seen:
        print(f"  {row}")
    assert all(row[5] is False for row in seen), seen
    assert all(row[2] == 1 and row[4] for row in seen), seen
    assert all(row[3] <= CANCEL_SECONDS for row in seen), seen


def test_sigterm_during_sign_in_through_a_stalling_proxy(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    with ConnectProxy("stall") as proxy:
        running = start({"timeout-seconds": "60"}, extra=proxied(proxy.url))
        running.wait_for(lambda: bool(proxy.targets), "CONNECT to the proxy")
        took = running.signal_and_time(signal.SIGTERM)
    print(f"SIGTERM during sign-in via a stalled proxy: ended {took:.2f} s after")
    no_traceback(running)
    assert_cancelled_before_the_store(running, emulator, took)


@pytest.mark.long
def test_cancel_a_trickling_store_through_a_trickling_proxy(world: World, tmp_path: Path) -> None:
    def trickle_halt(req: Incoming, wire: Wire) -> None:
        upstream = wire.forward(req)  # the halt takes effect
        if req.path.endswith("/haltpackagerollout"):
            wire.trickle(upstream.raw(), every=0.5, until=time.monotonic() + 60)
        else:
            wire.send(upstream.raw())

    server = world.hostile(trickle_halt)
    with ConnectProxy("trickle-tunnel", every=0.002) as proxy:
        inputs = {**world.inputs(), "store-api-url": server.url, "timeout-seconds": "60"}
        env = runner_environment(
            inputs, tmp_path / "w", extra={"REQUESTS_CA_BUNDLE": world.bundle, **proxied(proxy.url)}
        )
        running = spawn(env)
        process = running.process
        try:
            running.wait_for(
                lambda: any(r.path.endswith("/haltpackagerollout") for r in server.requests),
                "halt at the hostile Store",
                90,  # past the run's own 60 s deadline: a run that never halts ends first
            )
            time.sleep(1.0)
            took = running.signal_and_time(signal.SIGINT)
        finally:
            if process.poll() is None:
                process.kill()
    print(f"SIGINT with a trickling Store behind a trickling proxy: ended {took:.2f} s after")
    no_traceback(running)
    assert took <= CANCEL_SECONDS
    assert running.outputs["result"] == "unknown", running.stdout
    assert len(running.error_lines) == 1


def test_cancel_a_hundred_all_flights_apps_with_hanging_listings_and_full_pipes(
    emulator: Emulator, start: Callable[..., Running], tmp_path: Path
) -> None:
    """Everything at once: 100 all-flights apps whose listings hang, halts held back, both
    runner files full pipes; SIGINT once halts are in flight."""
    targets = many_apps(emulator, 100).replace(
        "\n  - app-id:", "\n  - all-flights: true\n    app-id:"
    )
    emulator.add_fault(
        Fault(method="GET", path=r"/listflights$", kind="hang", seconds=120, times=None)
    )
    emulator.add_fault(
        Fault(
            method="POST", path=r"/haltpackagerollout$", kind="hang_after", seconds=120, times=None
        )
    )
    with (
        pipe_no_one_reads(tmp_path / "out", full=True) as output,
        pipe_no_one_reads(tmp_path / "summary", full=True) as summary,
    ):
        running = start(
            {"app-id": "", "targets": "t.yml", "timeout-seconds": "120"},
            files={"t.yml": targets},
            extra={"GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)},
        )
        running.wait_for(lambda: len(emulator.halt_requests) >= 4, "four halts in flight")
        took = running.signal_and_time(signal.SIGINT)
    print(f"SIGINT, 100 all-flights apps, full pipes: ended {took:.2f} s after the signal")
    no_traceback(running)
    assert took <= CANCEL_SECONDS, running.stdout[-3000:]
    assert running.process.returncode == 1
    assert running.stdout.count(": unknown") >= 4
    assert running.stdout.count("flights of 9NAPP") >= 100
    cancelled = cancel_errors(running)
    assert len(cancelled) == 1


def test_cancel_during_the_409_reread_wait_ends_in_time_and_says_failed(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """The Store refused the halt (409); the rollout still reads in progress, so the action
    waits 1, 2, 3 s for a rival's halt. SIGTERM during that wait: nothing more is sent,
    and the truth is `failed` (the Store refused; nothing took effect)."""
    emulator.add_fault(Fault(method="POST", path=HALT, status=409, body=CONFLICT, times=None))
    running = start()
    running.wait_for(lambda: "reading it again in" in running.stdout, "the re-read wait")
    signalled = time.monotonic()
    took = running.signal_and_time(signal.SIGTERM)
    print(f"409 re-read wait: ended {took:.2f} s after SIGTERM")

    assert took <= CANCEL_SECONDS, running.stdout
    assert running.process.returncode == 1
    assert running_traceback_free(running)
    assert requests_after(emulator, signalled) == []
    assert running.outputs["result"] == "failed"
    assert len(cancel_errors(running)) == 1, running.error_lines
    assert "Run cancelled" in running.summary
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] != "PackageRolloutStopped"


def test_cancel_during_the_flight_listing_keeps_the_apps_halt(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """all-flights: the app's own rollout is halted while the flight listing hangs; SIGINT
    then. The app's halt stands, the listing is a `failed` result, one error."""
    for number in range(3):
        emulator.add_flight(APP_ID, f"00000000-0000-0000-0000-{number:012d}", name=f"f{number}")
    emulator.add_fault(
        Fault(method="GET", path=r"/listflights", kind="hang", seconds=60, times=None)
    )
    running = start({"all-flights": "true"})
    running.wait_for(
        lambda: (
            any("listflights" in r.path for r in emulator.requests) and bool(emulator.halt_requests)
        ),
        "the listing and the app's halt",
    )
    running.wait_for(lambda: ": halted" in running.stdout, "the app's halt confirmed")
    took = running.signal_and_time(signal.SIGINT)
    print(f"listing paging: ended {took:.2f} s after SIGINT")

    assert took <= CANCEL_SECONDS, running.stdout
    assert running.process.returncode == 1
    assert running_traceback_free(running)
    records = json.loads(running.outputs["results"])
    by_name = {r["name"]: r["result"] for r in records}
    print(by_name)
    assert f"flights of {APP_ID}" in by_name
    assert by_name[f"flights of {APP_ID}"] == "failed"
    assert "halted" in by_name.values()
    assert len(cancel_errors(running)) == 1, running.error_lines
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == "PackageRolloutStopped"


def test_cancel_during_the_version_guards_read_sends_nothing(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    emulator.add_fault(
        Fault(method="GET", path=rf"/submissions/{PUBLISHED}$", kind="hang", seconds=60)
    )
    running = start({"expected-version": "1.0.0.0"})
    running.wait_for(
        lambda: any(r.path.endswith(f"/submissions/{PUBLISHED}") for r in emulator.requests),
        "the guard's read",
    )
    took = running.signal_and_time(signal.SIGTERM)
    print(f"version guard read: ended {took:.2f} s after SIGTERM")

    assert_ended_failed_before_any_halt(running, emulator, took)


def test_cancel_while_resolving_with_a_store_that_holds_every_request_like_the_runner(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """The runner's sequence: SIGINT; SIGTERM 7.5 s later; SIGKILL 2.5 s after that. The
    Store holds every request. The run must be over well before the SIGTERM."""
    emulator.add_fault(Fault(path=r"^/v1\.0/my/", kind="hang", seconds=60, times=None))
    running = start()
    running.wait_for(lambda: bool(emulator.store_requests), "a held Store request")
    sent, queued = time.monotonic(), running.queued()
    os.kill(running.process.pid, signal.SIGINT)
    if running.ends_within(7.5):
        how = "after SIGINT"
    else:
        os.kill(running.process.pid, signal.SIGTERM)
        how = "after SIGTERM" if running.ends_within(2.5) else "killed"
    took = running.seconds_to_end(sent, queued)  # kills what is left
    print(f"held Store: ended {how}, {took:.2f} s after SIGINT")

    assert how == "after SIGINT"
    assert took <= CANCEL_SECONDS
    assert running.process.returncode == 1
    assert running.outputs["result"] == "failed"
    assert emulator.halt_requests == []
    assert len(cancel_errors(running)) == 1


def test_signal_storm_ends_at_once_without_a_traceback(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """Ten signals, SIGINT and SIGTERM alternating, within 50 ms, while a halt is in flight."""
    running = halt_in_flight(emulator, start)
    sent, queued = time.monotonic(), running.queued()
    for number in range(10):
        try:
            os.kill(running.process.pid, signal.SIGINT if number % 2 == 0 else signal.SIGTERM)
        except ProcessLookupError:
            break
        time.sleep(0.005)
    took = running.seconds_to_end(sent, queued)
    print(f"storm: ended {took:.2f} s after the first signal, exit {running.process.returncode}")

    assert took <= CANCEL_SECONDS
    assert running.process.returncode == 1  # not killed by a signal's default action
    assert running_traceback_free(running)
    # Either the second signal ended it at once, or the first had already written all.
    ended_at_once = "received again: ending now" in running.stdout
    assert ended_at_once or len(cancel_errors(running)) == 1, running.stdout


def test_a_signal_after_the_results_still_says_the_run_was_cancelled(
    emulator: Emulator, start: Callable[..., Running], tmp_path: Path
) -> None:
    """The halt is confirmed, the results and annotations logged, the outputs written;
    the summary is a named pipe nobody reads, so writing it takes its half second. A
    SIGINT then: the run exits 1, so the step fails, but no `::error` says why (rule 10:
    one `::error` saying the run was cancelled; rule 9: exit 0 when every target ended
    halted). Whichever way it goes, the exit code and the log must agree."""
    with pipe_no_one_reads(tmp_path, full=True) as pipe:
        running = start(extra={"GITHUB_STEP_SUMMARY": str(pipe)})
        output = Path(running.env["GITHUB_OUTPUT"])
        running.wait_for(
            lambda: output.exists() and "halted" in output.read_text(encoding="utf-8"),
            "the outputs written",
        )
        took = running.signal_and_time(signal.SIGINT)
    print(
        f"late SIGINT: exit {running.process.returncode} after {took:.2f} s; "
        f"errors {running.error_lines}; result {running.outputs['result']!r}"
    )

    assert took <= CANCEL_SECONDS
    assert running_traceback_free(running)
    assert running.outputs["result"] == "halted"
    if running.process.returncode == 1:
        # A failed step must say why: the one error about the cancellation.
        assert len(cancel_errors(running)) == 1, running.stdout
    else:
        assert running.process.returncode == 0


def test_a_storm_of_targets_outputs_written_while_cancelled(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """100 targets, each halt held back: SIGINT once they are all in flight. Every one is
    `unknown`, all within two seconds."""
    targets = many_apps(emulator, 100)
    halt_held_back(emulator)
    running = start({"app-id": "", "targets": "targets.yml"}, files={"targets.yml": targets})
    running.wait_for(lambda: len(emulator.halt_requests) >= 4, "halts in flight", 60)
    took = running.signal_and_time(signal.SIGINT)
    records = json.loads(running.outputs["results"])
    counts: dict[str, int] = {}
    for record in records:
        counts[record["result"]] = counts.get(record["result"], 0) + 1
    print(f"100 targets: ended {took:.2f} s after SIGINT; {counts}")

    assert took <= CANCEL_SECONDS
    assert len(records) == 100
    assert counts.get("unknown", 0) == len(emulator.halt_requests)
    assert len(cancel_errors(running)) == 1
    assert threading.active_count() >= 1


def test_cancel_between_reading_the_rollout_and_sending_the_halt_sends_nothing(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """The rollout read is slow (the Store answers it after 3 s, in progress); SIGINT while
    it is on its way. The answer arriving later must not lead to a halt."""
    emulator.add_fault(Fault(method="GET", path=r"/packagerollout$", kind="delay", seconds=3))
    running = start()
    running.wait_for(
        lambda: any(r.path.endswith("/packagerollout") for r in emulator.requests),
        "the rollout read",
    )
    took = running.signal_and_time(signal.SIGINT)
    time.sleep(3.5)  # the Store's answer has come by now: nothing may follow it
    print(f"rollout read: ended {took:.2f} s after SIGINT")

    assert_ended_failed_before_any_halt(running, emulator, took)
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] != "PackageRolloutStopped"


def test_cancelled_while_the_guard_read_hangs(
    start: Any,
    emulator: Emulator,
) -> None:
    """Rule 10 while the main thread waits on the guard's future: within 2 s, outputs, one
    cancellation error, and no halt."""
    emulator.add_fault(Fault(method="GET", path=SUBMISSION, kind="hang", seconds=60, times=None))
    running = start({"expected-version": demo.VERSION, "timeout-seconds": "60"})
    running.wait_for(
        lambda: (
            any(r.method == "GET" and re.search(SUBMISSION, r.path) for r in emulator.requests)
            and any(
                r.method == "GET" and r.path.endswith("packagerollout") for r in emulator.requests
            )
        ),
        "both reads",
    )
    time.sleep(0.5)
    took = running.signal_and_time(signal.SIGINT)
    assert took < 2.5, took
    assert running.process.returncode == 1
    assert running.outputs["result"] == "failed"
    assert emulator.halt_requests == []
    assert any("cancelled" in line for line in running.error_lines)


def assert_ended_failed_before_any_halt(running: Running, emulator: Emulator, took: float) -> None:
    """Cancelled before the halt was sent: in time, failed, said once, and no halt sent."""
    assert took <= CANCEL_SECONDS
    assert running.process.returncode == 1
    assert running_traceback_free(running)
    assert emulator.halt_requests == []
    assert running.outputs["result"] == "failed"
    assert len(cancel_errors(running)) == 1, running.error_lines


# Size never beats the cancel ---------------------------------------------------------------

LISTED = 50_000


def one_page_naming(count: int) -> dict[str, object]:
    """One listflights page naming `count` flights (about 7 MB), as a Store gone wrong sends."""
    flights = [
        {
            "flightId": f"00000000-0000-4000-8000-{number:012d}",
            "friendlyName": f"flight {number}",
            "lastPublishedFlightSubmission": {"id": PUBLISHED, "resourceLocation": "x"},
            "groupIds": ["1"],
            "rankHigherThan": "Non-flighted submission",
        }
        for number in range(count)
    ]
    return {"value": flights, "totalCount": count}


def test_cancel_while_working_through_50000_listed_flights_writes_every_result_in_time(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """Rule 10, whatever the size: a listing page naming 50,000 flights is being worked
    through when SIGINT comes; within 2 seconds the outputs, the summary and the one
    cancel error are written, the flights whose work was started have their results and
    the rest are one failed listing result that says nothing was sent for them."""
    emulator.add_fault(
        Fault(method="GET", path=r"/listflights$", body=one_page_naming(LISTED), times=None)
    )
    running = start({"all-flights": "true"})
    running.wait_for(
        lambda: any(r.path.endswith("/listflights") for r in emulator.requests), "listing"
    )
    time.sleep(0.3)  # the page is on its way: its flights are being started
    took = running.signal_and_time(signal.SIGINT)
    print(f"SIGINT amid {LISTED} flights: ended {took:.2f} s after the signal")

    assert took <= CANCEL_SECONDS, running.stdout[-2000:]
    assert running.process.returncode == 1
    assert "Traceback" not in running.stdout + "".join(running.errors)
    outputs = running.outputs
    assert outputs["result"] in ("failed", "unknown")
    records = json.loads(outputs["results"])
    assert records, "the results output lost every record"
    assert "Run cancelled" in running.summary
    [error] = running.error_lines
    assert error.startswith("::error title=Run cancelled::")
    # Every result known is stated, and no flight is silently dropped: the rest of the
    # listing is a failed result of its own (or every flight was started).
    results = [line for line in running.stdout.splitlines() if line.startswith("  ")]
    listing = [line for line in results if line.startswith(f"  flights of {APP_ID}: failed")]
    assert listing or len(results) == LISTED + 1, results[-3:]
