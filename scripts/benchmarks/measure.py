"""Run every benchmark and return the record; nothing here formats a figure."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from .common import REPO, say
from .evidence_watch import evidence_record
from .halt import time_to_halt
from .imports import import_profile
from .install import container_record, installed_size
from .record import VERSION, Machine, Record
from .runs import guard_latency, retry_after, round_trips, several_targets


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], check=False, cwd=REPO, capture_output=True, text=True
    ).stdout.strip()


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(load_start: float, bench_seconds: float) -> Machine:
    python = Path(sys.executable)
    shown = python.relative_to(REPO) if python.is_relative_to(REPO) else python
    measured = ("halt_rollout", "entrypoint.py", "requirements.txt")
    return Machine(
        cpu=_cpu(),
        cores=os.cpu_count() or 0,
        system=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        interpreter=str(shown),
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        commit=_git("rev-parse", "--short", "HEAD") or "unknown",
        dirty=bool(_git("status", "--porcelain", "--", *measured)),
        load_start=load_start,
        load_end=os.getloadavg()[0],
        bench_seconds=bench_seconds,
    )


def measure() -> Record:
    started = time.monotonic()
    load = os.getloadavg()[0]
    say("time-to-halt: entrypoint vs the same stack vs the floor, interleaved")
    tth = time_to_halt()
    say("import profile")
    imports = import_profile()
    say("round trips")
    trips = round_trips()
    say("Retry-After")
    throttled = retry_after()
    say("several targets")
    several = several_targets()
    say("version guard")
    guard = guard_latency()
    say("installed size (fresh venv)")
    size = installed_size()
    image = container_record()
    evidence = evidence_record()
    return Record(
        version=VERSION,
        machine=machine(load, time.monotonic() - started),
        time_to_halt=tth,
        imports=imports,
        round_trips=trips,
        retry_after=throttled,
        several=several,
        guard=guard,
        size=size,
        image=image,
        evidence=evidence,
    )
