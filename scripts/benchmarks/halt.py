"""Time-to-halt: the entrypoint beside two minimal scripts, interleaved, fresh emulators.

Arms, each a new process against its own emulator:

* floor: a `requests` script sending only the token POST and the halt POST
  (`arms/floor.py`), what any Python implementation must at least do;
* same stack: azure-identity's ClientSecretCredential, one `requests` halt POST and
  GITHUB_OUTPUT (`arms/same_stack.py`), under the runner's environment;
* the entrypoint as the runner runs it, with the submission given and resolved.

In the same rotation, processes that only import what each arm imports, so the
start-up cost is measured under the same load.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from store_emulator import Emulator
from store_emulator.actions_runner import run_action
from store_emulator.demo import APP_ID, PUBLISHED

from .common import (
    STOPPED,
    action,
    children_cpu,
    clean_environment,
    expect_halted,
    fresh_emulator,
    inputs_for,
    phases,
    say,
    timed_python,
)
from .record import ImportRuns, Sample, TimeToHalt

ROUNDS = 15  # interleaved runs of each arm; one more warm-up round is discarded
ARMS_DIR = Path(__file__).resolve().parent / "arms"
FLOOR = ARMS_DIR / "floor.py"
SAME_STACK = ARMS_DIR / "same_stack.py"
GIVEN = {"app-id": APP_ID, "submission-id": PUBLISHED}
# What a process of each arm imports: nothing but the interpreter's own, the floor's,
# the same stack's, the entrypoint's.
IMPORTS = ("sys", "requests", "requests, azure.identity", "halt_rollout.main")


def _halted(emulator: Emulator) -> bool:
    return bool(emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == STOPPED)


def floor_once(emulator: Emulator) -> Sample:
    env = clean_environment() | {
        "REQUESTS_CA_BUNDLE": emulator.ca_path,
        "BENCH_URL": emulator.url,
        "BENCH_TENANT": emulator.tenant_id,
        "BENCH_CLIENT_ID": emulator.client_id,
        "BENCH_SECRET": emulator.client_secret,
        "BENCH_HALT_PATH": f"/v1.0/my/applications/{APP_ID}/submissions/{PUBLISHED}"
        "/haltpackagerollout",
    }
    cpu = children_cpu()
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, str(FLOOR)],
        env=env,
        cwd=ARMS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    seconds = time.monotonic() - started
    if completed.returncode != 0 or not _halted(emulator):
        raise RuntimeError(f"the floor script did not halt:\n{completed.stderr}")
    return phases(started, seconds, emulator.requests, children_cpu() - cpu)


@dataclass(frozen=True)
class Process:
    completed: subprocess.CompletedProcess[str]
    outputs: dict[str, str]  # GITHUB_OUTPUT, as the runner reads it
    started: float  # monotonic
    seconds: float


def as_the_runner(
    script: Path, emulator: Emulator, inputs: Mapping[str, str], *flags: str
) -> Process:
    """`python *flags script` under the runner's environment (its inputs, its files)."""
    command = [sys.executable, *flags, str(script)]
    started = time.monotonic()
    run = run_action(
        inputs, extra_env={"REQUESTS_CA_BUNDLE": emulator.ca_path}, timeout=60, command=command
    )
    seconds = run.seconds
    completed = subprocess.CompletedProcess(command, run.exit_code, run.stdout, run.stderr)
    outputs = run.outputs
    if completed.returncode != 0 or outputs.get("result") != "halted" or not _halted(emulator):
        raise RuntimeError(f"{script.name} did not halt:\n{completed.stdout}\n{completed.stderr}")
    return Process(completed, outputs, started, seconds)


def same_stack_once(emulator: Emulator) -> Sample:
    cpu = children_cpu()
    run = as_the_runner(SAME_STACK, emulator, inputs_for(emulator, **GIVEN))
    return phases(run.started, run.seconds, emulator.requests, children_cpu() - cpu)


def entrypoint_once(emulator: Emulator, extra: Mapping[str, str]) -> Sample:
    cpu = children_cpu()
    run, started = action(emulator, inputs_for(emulator, **extra))
    cpu = children_cpu() - cpu
    expect_halted(run, "time-to-halt")
    return phases(started, run.seconds, emulator.requests, cpu)


ARMS: dict[str, Callable[[Emulator], Sample]] = {
    "floor": floor_once,
    "same-stack": same_stack_once,
    "given": lambda emulator: entrypoint_once(emulator, GIVEN),
    "resolved": lambda emulator: entrypoint_once(emulator, {"app-id": APP_ID}),
}


def time_to_halt() -> TimeToHalt:
    arms: dict[str, list[Sample]] = {name: [] for name in ARMS}
    imports = {name: ImportRuns(modules=name, wall=[], cpu=[], loaded=0) for name in IMPORTS}
    names = [*ARMS, *IMPORTS]
    for round_number in range(ROUNDS + 1):  # round 0 warms caches and is discarded
        # Rotate the order so that no arm always runs first (or right after another).
        order = names[round_number % len(names) :] + names[: round_number % len(names)]
        for name in order:
            if name in imports:
                runs = imports[name]
                seconds, cpu, out = timed_python(
                    f"import sys, {runs['modules']}; print(len(sys.modules))"
                )
                if round_number:
                    runs["wall"].append(seconds)
                    runs["cpu"].append(cpu)
                    runs["loaded"] = int(out)
                continue
            with fresh_emulator() as emulator:
                sample = ARMS[name](emulator)
            if round_number:
                arms[name].append(sample)
        if round_number:
            say(f"time-to-halt round {round_number}/{ROUNDS}")
    return TimeToHalt(rounds=ROUNDS, arms=arms, imports=imports)
