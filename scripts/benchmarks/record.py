"""The record `make bench` measures and renders from: plain JSON, in .bench/record.json.

Raw samples only (seconds, counts, request lists); medians, ratios and verdicts are
the renderer's. Times are seconds, sizes bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypedDict, cast

VERSION = 4


class Sample(TypedDict):
    """One run of an arm: wall time, and its three phases seen from the emulator's clock."""

    seconds: float
    startup: float  # process start → first request received
    http: float  # first request received → halt request received
    tail: float  # halt request received → process exited
    requests: int
    cpu: float  # user + system time of the process


class ImportRuns(TypedDict):
    """`python -c "import sys, <modules>"` in a new process, once per round."""

    modules: str
    wall: list[float]
    cpu: list[float]
    loaded: int  # len(sys.modules) after the import


class TimeToHalt(TypedDict):
    rounds: int
    arms: dict[str, list[Sample]]  # arm name → one sample per round
    imports: dict[str, ImportRuns]  # what a process of each arm loads, same rotation


class Group(TypedDict):
    name: str  # a top-level package, or "standard library"
    seconds: float  # -X importtime self time


class Unshared(TypedDict):
    """A module the entrypoint imports on its common path and the same-stack arm does not."""

    module: str
    importer: str  # the module whose import pulled it in ("(at run time)": a call did)
    # -X importtime, medians over the runs. `beyond`: what it costs that the same stack
    # does not pay (foreign: cumulative; halt_rollout's own: self + foreign imports).
    beyond: float
    cumulative: float
    own: float


class ImportProfile(TypedDict):
    runs: int
    groups: list[Group]  # `import halt_rollout.main` by top-level package, median run
    unshared: list[Unshared]  # biggest `beyond` first
    beyond: float  # all the entrypoint imports beyond the same stack, median run
    entrypoint_modules: int  # modules imported by a common-path run of the entrypoint
    same_stack_modules: int


class Throttled(TypedDict):
    retry_after: int
    waited: float  # the 429 answered → the halt that landed
    run_seconds: float
    logged: bool  # the wait was logged as it started


class Targets(TypedDict):
    count: int
    seconds: list[float]
    http: list[float]
    requests: int
    store_requests: int  # those the Store's rate limit counts (not Entra's)


class Several(TypedDict):
    rounds: int
    parallel: int  # targets worked on at a time (halt_rollout.run)
    targets: list[Targets]


class Guard(TypedDict):
    """The version guard's cost: the halt's HTTP phase with and without expected-version,
    interleaved, with every Store read answered `store_latency` seconds late (as the live
    Store is slow; on loopback a round trip is too short to see)."""

    rounds: int
    store_latency: float
    unguarded: list[float]  # first request received → halt request received
    guarded: list[float]


class Distribution(TypedDict):
    name: str
    bytes: int


class Size(TypedDict):
    total: int
    by_distribution: list[Distribution]  # biggest first
    seconds: float  # to create the venv and install
    excluded: list[str]  # the venv's own tools, left out
    error: str  # why it was not measured; "" when it was


class Image(TypedDict):
    path: str  # relative to the repository
    data: dict[str, Any]  # the container test's record as it is


class Machine(TypedDict):
    cpu: str
    cores: int
    system: str
    python: str
    interpreter: str  # relative to the repository when inside it
    date: str
    commit: str
    dirty: bool  # uncommitted changes to the measured code
    load_start: float  # 1-minute load average
    load_end: float
    bench_seconds: float


class FalseHalts(TypedDict):
    """Healthy 7-day hourly watches that any look halted: the guard's and the naive rule's."""

    world: dict[str, Any]  # the simulated rollouts (scripts/benchmarks/evidence_world.World)
    margin: float
    watches: int
    guard: int
    naive: int  # the observed ratio of failing shares passed the margin at some look
    naive_with_minimum: int  # the same, from at least the guard's minimum of failing devices
    seconds: float


class HoursToHalt(TypedDict):
    daily_devices: int
    worse: float
    margin: float
    hours: list[int | None]  # per watch: the first halting look's hour; None: not in 7 days


class EvidenceRecord(TypedDict):
    """Halt on evidence, simulated through the real decision (benchmarks/evidence_watch.py)."""

    healthy: dict[str, Any]  # the healthy rollouts' World
    power_rollout: list[float]
    min_failing_devices: int
    false_halts: list[FalseHalts]
    hours_to_halt: list[HoursToHalt]


class Record(TypedDict):
    version: int
    machine: Machine
    time_to_halt: TimeToHalt
    imports: ImportProfile
    round_trips: dict[str, list[str]]  # case → "METHOD last-path-segment" per request
    retry_after: list[Throttled]
    several: Several
    guard: Guard
    size: Size
    image: Image | None
    evidence: EvidenceRecord


def write(record: Record, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Local state, like .pytest_cache: the folder keeps itself out of git.
    (path.parent / ".gitignore").write_text("*\n", encoding="utf-8")
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def read(path: Path) -> Record:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise ValueError(f"{path} is not a version {VERSION} bench record: run `make bench`")
    return cast(Record, data)
