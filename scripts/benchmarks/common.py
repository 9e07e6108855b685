"""What every benchmark needs: fresh emulators, the action run as the runner runs it."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from store_emulator import Emulator, Recorded
from store_emulator.actions_runner import run_action
from store_emulator.step_results import ActionRun

from .record import Sample

REPO = Path(__file__).resolve().parents[2]
STOPPED = "PackageRolloutStopped"


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def children_cpu() -> float:
    """CPU seconds (user + system) used so far by this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def clean_environment() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("INPUT_", "GITHUB_", "ACTIONS_", "RUNNER_", "AZURE_"))
        and key not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "PYTHONPATH")
    }


@contextmanager
def fresh_emulator() -> Iterator[Emulator]:
    with Emulator() as emulator:
        emulator.seed_demo()
        yield emulator


def inputs_for(emulator: Emulator, **extra: str) -> dict[str, str]:
    return {
        "tenant-id": emulator.tenant_id,
        "client-id": emulator.client_id,
        "client-secret": emulator.client_secret,
        "store-api-url": emulator.url,
        "authority-host": emulator.url,
        **extra,
    }


def action(
    emulator: Emulator,
    inputs: dict[str, str],
    files: dict[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> tuple[ActionRun, float]:
    """Run the entrypoint as the runner does; also returns when (monotonic) it started."""
    env = {"REQUESTS_CA_BUNDLE": emulator.ca_path, **(extra_env or {})}
    run = run_action(inputs, extra_env=env, files=files)
    started = time.monotonic() - run.seconds
    if "Traceback" in run.stdout + run.stderr:
        raise RuntimeError(f"the action crashed:\n{run.stdout}\n{run.stderr}")
    return run, started


def expect_halted(run: ActionRun, what: str) -> None:
    if run.exit_code != 0 or run.outputs.get("result") != "halted":
        raise RuntimeError(
            f"{what}: expected a halt, got exit {run.exit_code}, "
            f"result {run.outputs.get('result')!r}\n{run.stdout}\n{run.stderr}"
        )


def short(request: Recorded) -> str:
    return f"{request.method} {request.path.rsplit('/', 1)[-1]}"


def phases(started: float, seconds: float, requests: Sequence[Recorded], cpu: float) -> Sample:
    first, last = requests[0].started, requests[-1].started
    return Sample(
        seconds=seconds,
        startup=first - started,
        http=last - first,
        tail=started + seconds - last,
        requests=len(requests),
        cpu=cpu,
    )


def run_python(*args: str) -> subprocess.CompletedProcess[str]:
    """`python *args` in a new process, with this repository importable."""
    return subprocess.run(
        [sys.executable, *args],
        env=clean_environment() | {"PYTHONPATH": str(REPO)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def timed_python(statement: str) -> tuple[float, float, str]:
    """Wall and CPU time of `python -c statement` (a new process), and its stdout."""
    cpu = children_cpu()
    started = time.monotonic()
    completed = run_python("-c", statement)
    seconds = time.monotonic() - started
    return seconds, children_cpu() - cpu, completed.stdout
