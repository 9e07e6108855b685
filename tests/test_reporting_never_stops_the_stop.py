"""Reporting can never stop or falsify the stop (rules 9 and 11): a log or output write
that fails (a reader gone, a stream that cannot encode, a runner file in a bad state, a
record too large) is absorbed and said where it still can be; the halt still goes out,
and the exit code still follows the results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from halt_rollout.step_outputs import MAX_VERSIONS_IN_RECORD
from store_emulator import Emulator, Fault
from store_emulator.actions_runner import ENTRYPOINT, parse_file_command, runner_environment

from .conftest import APP_ID, PUBLISHED, RunAction, base_inputs
from .world import command_line, run_entrypoint

FLIGHT = "43e448df-97c9-4a43-a0bc-2a445e736bcd"
ROCKET = "Insiders 🚀 ring"


@contextmanager
def pipe_whose_reader_is_gone() -> Iterator[int]:
    """The write end of a pipe no one will ever read: every write fails with EPIPE."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        yield writer
    finally:
        os.close(writer)


def action_env(emulator: Emulator, tmp_path: Path, **extra: str) -> dict[str, str]:
    return runner_environment(
        base_inputs(emulator),
        tmp_path / "run",
        extra={"REQUESTS_CA_BUNDLE": emulator.ca_path, **extra},
    )


def cli_env(emulator: Emulator, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "AZURE_CLIENT_SECRET": emulator.client_secret,
        "REQUESTS_CA_BUNDLE": emulator.ca_path,
        **extra,
    }


def outputs_of(env: Mapping[str, str]) -> dict[str, str]:
    return parse_file_command(Path(env["GITHUB_OUTPUT"]).read_text(encoding="utf-8"))


def assert_halted(emulator: Emulator) -> None:
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == "PackageRolloutStopped"
    assert len(emulator.halt_requests) == 1


# A reader that went away ------------------------------------------------------------------


def test_an_action_whose_log_no_one_reads_still_halts_and_says_so(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = action_env(emulator, tmp_path)
    with pipe_whose_reader_is_gone() as gone:
        completed = subprocess.run(
            [sys.executable, str(ENTRYPOINT)],
            env=env,
            cwd=env["GITHUB_WORKSPACE"],
            stdout=gone,
            stderr=gone,
            timeout=60,
            check=False,
        )
    assert completed.returncode == 0
    assert_halted(emulator)
    assert outputs_of(env)["result"] == "halted"
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    assert "The log could not be written" in summary, summary


def test_the_command_line_piped_into_head_still_halts(emulator: Emulator) -> None:
    """`halt-rollout … 2>&1 | head -n 2`: head leaves after two lines; the halt goes out
    and the exit code is the run's, not Python's broken-pipe 120."""
    quoted = " ".join(f"'{arg}'" for arg in command_line(emulator, "--app-id", APP_ID))
    completed = subprocess.run(
        ["bash", "-c", f"{quoted} 2>&1 | head -n 2; exit ${{PIPESTATUS[0]}}"],
        env=cli_env(emulator),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert len(completed.stdout.splitlines()) == 2
    assert "Traceback" not in completed.stdout + completed.stderr
    assert_halted(emulator)


def test_results_that_cannot_be_printed_go_to_the_log(emulator: Emulator) -> None:
    with pipe_whose_reader_is_gone() as gone:
        completed = subprocess.run(
            command_line(emulator, "--app-id", APP_ID),
            env=cli_env(emulator),
            stdout=gone,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    assert completed.returncode == 0, completed.stderr
    assert "the results could not be printed" in completed.stderr
    assert f"{APP_ID}: halted" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert_halted(emulator)


# A stream that is not there at all: started with it closed (`2>&-`, a daemon, cron), Python
# has None for it, and print() to None writes to the other stream or nowhere.
CLOSED = {"stdout": ">&-", "stderr": "2>&-", "both": ">&- 2>&-"}


@pytest.mark.parametrize("closed", list(CLOSED.values()), ids=list(CLOSED))
@pytest.mark.parametrize("route", ["python -m halt_rollout", "the image (entrypoint.py)"])
def test_a_stream_closed_before_the_start_still_halts(
    emulator: Emulator, tmp_path: Path, closed: str, route: str
) -> None:
    if route == "the image (entrypoint.py)":
        env = action_env(emulator, tmp_path)
        command = [sys.executable, str(ENTRYPOINT)]
    else:
        env = cli_env(emulator)
        command = command_line(emulator, "--app-id", APP_ID)
    quoted = " ".join(f"'{arg}'" for arg in command)
    completed = subprocess.run(
        ["bash", "-c", f"exec {quoted} {closed}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in completed.stdout + completed.stderr, completed.stderr
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert_halted(emulator)


# A stream that cannot encode ---------------------------------------------------------------

NOT_UTF8 = {
    "cp1252 (a Windows runner)": {"PYTHONIOENCODING": "cp1252"},
    "ASCII": {"PYTHONIOENCODING": "ascii"},
}


def with_rocket_flight(emulator: Emulator) -> None:
    emulator.add_flight(APP_ID, FLIGHT, last_published=PUBLISHED, name=ROCKET)


@pytest.mark.parametrize("encoding", list(NOT_UTF8.values()), ids=list(NOT_UTF8))
def test_an_action_whose_log_cannot_encode_a_name_reports_every_result(
    emulator: Emulator, action: RunAction, encoding: dict[str, str]
) -> None:
    with_rocket_flight(emulator)
    run = action({"all-flights": "true"}, env=encoding)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert "Results:" in run.stdout
    names = {record["name"] for record in json.loads(run.outputs["results"])}
    assert ROCKET in names  # the outputs file is UTF-8, whatever the log's encoding
    assert ROCKET in run.summary


@pytest.mark.parametrize("encoding", list(NOT_UTF8.values()), ids=list(NOT_UTF8))
def test_a_hint_with_an_arrow_reaches_a_log_that_cannot_encode_it(
    emulator: Emulator, action: RunAction, encoding: dict[str, str]
) -> None:
    """The project's own words (`Account settings → User management`) on a 403."""
    emulator.add_fault(Fault(method="GET", path=r"/packagerollout$", status=403))
    run = action(env=encoding)
    assert run.exit_code == 1
    [error] = run.errors
    assert "Account settings" in error, error
    assert "User management" in error, error
    assert "Results:" in run.stdout


@pytest.mark.parametrize("route", ["python -m halt_rollout", "the image (entrypoint.py)"])
@pytest.mark.parametrize("encoding", list(NOT_UTF8.values()), ids=list(NOT_UTF8))
def test_json_stays_valid_json_on_a_stream_that_cannot_encode(
    emulator: Emulator, route: str, encoding: dict[str, str]
) -> None:
    with_rocket_flight(emulator)
    arguments = command_line(emulator, "--app-id", APP_ID, "--all-flights", "--json")
    if route.startswith("the image"):
        arguments = [sys.executable, str(ENTRYPOINT), *arguments[3:]]
    completed = subprocess.run(
        arguments, env=cli_env(emulator, **encoding), capture_output=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    data = json.loads(completed.stdout)
    assert {record["name"] for record in data["results"]} == {APP_ID, ROCKET}
    assert b"Traceback" not in completed.stderr


# The runner's files in a state another step left ------------------------------------------


def test_outputs_after_another_steps_line_without_a_line_end_are_read(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = action_env(emulator, tmp_path)
    Path(env["GITHUB_OUTPUT"]).write_text("other=value", encoding="utf-8")
    completed = run_entrypoint(env)
    assert completed.returncode == 0, completed.stdout
    outputs = outputs_of(env)
    assert outputs["other"] == "value"
    assert outputs["result"] == "halted"
    assert json.loads(outputs["results"])[0]["result"] == "halted"


# A record too large for the results output ---------------------------------------------------


def test_a_submission_with_20000_versions_keeps_its_row_in_results(
    emulator: Emulator, action: RunAction
) -> None:
    versions = [f"1.{n // 10_000}.{n // 100 % 100}.{n % 100}" for n in range(20_000)]
    emulator.set_packages(APP_ID, PUBLISHED, versions)
    run = action({"expected-version": "9.9.9.9"})
    assert run.exit_code == 1
    [record] = json.loads(run.outputs["results"])
    assert record["app-id"] == APP_ID
    assert record["result"] == "failed"
    assert record["versions"] == versions[:MAX_VERSIONS_IN_RECORD]
    assert record["versions-left-out"] == 20_000 - MAX_VERSIONS_IN_RECORD
    assert "Version guard" in record["error"]
    assert "package versions" in run.stdout  # the warning that says it was shortened
