"""The harness's own promise: a run of entrypoint.py forked from the pre-imported fork server
(tests/zygote.py, used by `make test`) is seen by a test as the new process it stands for:
the same output and exit code, its own pid for signals, its own signal handlers, the
variables and folder it was given, its deadline counted from its own start, and a
signal's death as a negative exit code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from subprocess import PIPE

import pytest

from store_emulator import Emulator, Fault
from store_emulator.action_files import ENTRYPOINT
from store_emulator.actions_runner import runner_environment

from .conftest import base_inputs
from .zygote import ForkedPopen, Launcher

ENTRYPOINT_ARGV = [sys.executable, str(ENTRYPOINT)]
REPO = ENTRYPOINT.parent


@pytest.fixture
def launcher() -> Iterator[Launcher]:
    forking = Launcher()
    try:
        yield forking
    finally:
        forking.close()


def forked(launcher: Launcher, env: dict[str, str]) -> ForkedPopen:
    process = launcher(
        ENTRYPOINT_ARGV,
        env=env,
        cwd=env["GITHUB_WORKSPACE"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert isinstance(process, ForkedPopen)
    return process


def test_a_forked_run_says_and_ends_as_a_started_one(launcher: Launcher, tmp_path: Path) -> None:
    # An app ID the validation refuses: the run ends at once, before any network call.
    env = runner_environment({"app-id": "not an app"}, tmp_path / "run")
    cwd = env["GITHUB_WORKSPACE"]
    with subprocess.Popen(ENTRYPOINT_ARGV, env=env, cwd=cwd, stdout=PIPE, stderr=PIPE) as started:
        started_out, started_err = started.communicate(timeout=60)
    process = forked(launcher, env)
    stdout, stderr = process.communicate(timeout=60)
    assert started.returncode == 1
    assert (process.returncode, stdout, stderr) == (1, started_out.decode(), started_err.decode())


@pytest.mark.parametrize(
    "arguments",
    [["--app-id", "not an app"], ["--version"], ["--help"]],
    ids=["refused input", "version", "help"],
)
def test_a_forked_command_line_says_and_ends_as_a_started_one(
    launcher: Launcher, tmp_path: Path, arguments: list[str]
) -> None:
    """`python -m halt_rollout` from another folder, the repository on PYTHONPATH, as the
    command line's tests run it: the same output and exit code either way."""
    argv = [sys.executable, "-m", "halt_rollout", *arguments]
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "LANG": "C.UTF-8"}
    with subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=PIPE, stderr=PIPE) as started:
        started_out, started_err = started.communicate(timeout=60)
    process = launcher(argv, env=env, cwd=tmp_path, stdout=PIPE, stderr=PIPE, text=True)
    assert isinstance(process, ForkedPopen)
    stdout, stderr = process.communicate(timeout=60)
    assert (process.returncode, stdout, stderr) == (
        started.returncode,
        started_out.decode(),
        started_err.decode(),
    )


@pytest.mark.parametrize(("number", "exit_code"), [(signal.SIGTERM, 1), (signal.SIGKILL, -9)])
def test_a_forked_run_takes_signals_as_its_own_process(
    launcher: Launcher, emulator: Emulator, tmp_path: Path, number: int, exit_code: int
) -> None:
    """SIGTERM meets the run's own cancellation handler (exit 1, `Run cancelled`); SIGKILL
    ends it as the kernel ends any process (-9)."""
    emulator.add_fault(Fault(method="POST", path=r"/token$", kind="hang", seconds=60))
    env = runner_environment(
        base_inputs(emulator), tmp_path / "run", extra={"REQUESTS_CA_BUNDLE": emulator.ca_path}
    )
    process = forked(launcher, env)
    end = time.monotonic() + 30
    while not any(r.path.endswith("/token") for r in emulator.requests):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < end, "no sign-in within 30 s"
        time.sleep(0.02)
    process.send_signal(number)
    stdout, _ = process.communicate(timeout=30)
    assert process.returncode == exit_code
    if number == signal.SIGTERM:
        assert "::error title=Run cancelled::" in stdout


def test_a_forked_runs_deadline_counts_from_its_own_start(
    launcher: Launcher, emulator: Emulator, tmp_path: Path
) -> None:
    """The server loaded halt_rollout long before, but timeout-seconds counts from the
    run's start, as from a fresh interpreter's: a run forked after the server idled
    past its whole deadline still gets all of it (here, a sign-in that never answers)."""
    warm_up = forked(launcher, runner_environment({"app-id": "not an app"}, tmp_path / "warm"))
    warm_up.communicate(timeout=60)
    emulator.add_fault(Fault(method="POST", path=r"/token$", kind="hang", seconds=60))
    env = runner_environment(
        {**base_inputs(emulator), "timeout-seconds": "3"},
        tmp_path / "run",
        extra={"REQUESTS_CA_BUNDLE": emulator.ca_path},
    )
    time.sleep(4)  # longer than the run's whole deadline
    began = time.monotonic()
    process = forked(launcher, env)
    stdout, _ = process.communicate(timeout=60)
    waited = time.monotonic() - began
    assert process.returncode == 1
    assert any(r.path.endswith("/token") for r in emulator.requests), stdout
    # A deadline counted from the server's start would have run out before the run began.
    assert waited >= 2.0, f"ended after {waited:.2f} s of a 3 s deadline:\n{stdout}"
