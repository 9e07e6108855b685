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
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from store_emulator import Emulator, Fault
from store_emulator.action_files import ENTRYPOINT
from store_emulator.actions_runner import runner_environment
from store_emulator.step_results import parse_file_command

from .conftest import APP_ID, CONTRACT_TARGETS, OTHER_APP, PUBLISHED, base_inputs
from .world import command_line, pipe_no_one_reads

# Rule 10's bound, from the signal to the process's end.
CANCEL_SECONDS = 2.0
HALT = r"/haltpackagerollout$"


@dataclass
class Running:
    """The entrypoint (or another command) running in a runner's environment."""

    process: subprocess.Popen[str]
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    readers: list[threading.Thread] = field(default_factory=list)

    def read(self) -> None:
        def pump(stream: object, into: list[str]) -> None:
            for line in stream:  # type: ignore[attr-defined]
                into.append(line)

        for stream, into in ((self.process.stdout, self.lines), (self.process.stderr, self.errors)):
            reader = threading.Thread(target=pump, args=(stream, into), daemon=True)
            reader.start()
            self.readers.append(reader)

    def wait_for(self, condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
        end = time.monotonic() + seconds
        while not condition():
            assert self.process.poll() is None, f"ended before {what}: {self.stdout}"
            assert time.monotonic() < end, f"no {what} within {seconds} s: {self.stdout}"
            time.sleep(0.02)

    def signal_and_time(self, number: int, pid: int | None = None) -> float:
        """Send `number`; the seconds until the process ended."""
        sent = time.monotonic()
        os.kill(pid or self.process.pid, number)
        try:
            self.process.wait(30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        took = time.monotonic() - sent
        for reader in self.readers:
            reader.join(5)
        return took

    @property
    def stdout(self) -> str:
        return "".join(self.lines)

    @property
    def outputs(self) -> dict[str, str]:
        return parse_file_command(Path(self.env["GITHUB_OUTPUT"]).read_text(encoding="utf-8"))

    @property
    def summary(self) -> str:
        return Path(self.env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith("::error")]


@pytest.fixture
def start(emulator: Emulator, tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def run(
        inputs: dict[str, str] | None = None,
        *,
        command: list[str] | None = None,
        files: dict[str, str] | None = None,
        extra: dict[str, str] | None = None,
    ) -> Running:
        workdir = tmp_path / f"run{len(started)}"
        env = runner_environment(
            {**base_inputs(emulator), **(inputs or {})},
            workdir,
            extra={"REQUESTS_CA_BUNDLE": emulator.ca_path, **(extra or {})},
        )
        for relative, content in (files or {}).items():
            (Path(env["GITHUB_WORKSPACE"]) / relative).write_text(content, encoding="utf-8")
        process = subprocess.Popen(
            command or [sys.executable, str(ENTRYPOINT)],
            env=env,
            cwd=env["GITHUB_WORKSPACE"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        running = Running(process, env)
        running.read()
        started.append(running)
        return running

    yield run
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()


def halt_held_back(emulator: Emulator) -> None:
    """The Store takes the halt and holds its answer back (the halt took effect)."""
    emulator.add_fault(Fault(method="POST", path=HALT, kind="hang_after", seconds=60, times=None))


def requests_after(emulator: Emulator, moment: float) -> list[str]:
    return [f"{r.method} {r.path}" for r in emulator.requests if r.started > moment]


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cancel_during_a_halt_in_flight_says_unknown_within_two_seconds(
    emulator: Emulator, start: Callable[..., Running], number: int
) -> None:
    halt_held_back(emulator)
    running = start()
    running.wait_for(lambda: bool(emulator.halt_requests), "halt request")
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


def test_cancel_during_sign_in_sends_nothing_to_the_store(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    emulator.add_fault(Fault(method="POST", path=r"/token$", kind="hang", seconds=60))
    running = start()
    running.wait_for(
        lambda: any(r.path.endswith("/token") for r in emulator.requests), "token request"
    )
    took = running.signal_and_time(signal.SIGTERM)

    assert took <= CANCEL_SECONDS
    assert running.process.returncode == 1
    assert running.outputs["result"] == "failed"
    assert emulator.store_requests == []
    [error] = running.error_lines
    assert error.startswith("::error title=Run cancelled::")


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
