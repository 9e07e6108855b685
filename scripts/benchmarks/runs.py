"""Runs of the action with a given shape: round trips, a 429 on the halt, many targets."""

from __future__ import annotations

import re

from halt_rollout.run import MAX_PARALLEL_TARGETS
from store_emulator import Emulator, Fault
from store_emulator.demo import APP_ID, FLIGHT_ID, PUBLISHED, VERSION

from .common import action, expect_halted, fresh_emulator, inputs_for, phases, say, short
from .record import Guard, Several, Targets, Throttled

RETRY_AFTERS = (1, 2, 5)
TARGET_COUNTS = (1, 5, 20)
TARGET_ROUNDS = 5
GUARD_ROUNDS = 7
GUARD_STORE_LATENCY = 0.25  # seconds; the live Store answers reads in about that


def round_trips() -> dict[str, list[str]]:
    cases = {
        "given submission": {"app-id": APP_ID, "submission-id": PUBLISHED},
        "resolved submission": {"app-id": APP_ID},
        "flight (resolved)": {"app-id": APP_ID, "flight-id": FLIGHT_ID},
        "given, version guard": {
            "app-id": APP_ID,
            "submission-id": PUBLISHED,
            "expected-version": VERSION,
        },
    }
    trips = {}
    for name, extra in cases.items():
        with fresh_emulator() as emulator:
            run, _ = action(emulator, inputs_for(emulator, **extra))
            expect_halted(run, name)
            trips[name] = [short(r) for r in emulator.requests]
    return trips


def guard_latency() -> Guard:
    """The halt with and without the version guard, the Store's reads made slow: the guard's
    read runs next to the rollout's, so the halt should not land any later."""
    arms: dict[str, list[float]] = {"unguarded": [], "guarded": []}
    for round_number in range(GUARD_ROUNDS + 1):  # round 0 warms caches and is discarded
        order = list(arms) if round_number % 2 else list(reversed(arms))
        for name in order:
            with fresh_emulator() as emulator:
                emulator.add_fault(
                    Fault(
                        method="GET",
                        path=r"^/v1\.0/my/",
                        times=None,
                        kind="delay",
                        seconds=GUARD_STORE_LATENCY,
                    )
                )
                extra = {"app-id": APP_ID, "submission-id": PUBLISHED}
                if name == "guarded":
                    extra["expected-version"] = VERSION
                run, started = action(emulator, inputs_for(emulator, **extra))
                expect_halted(run, f"{name} halt")
                if round_number:
                    arms[name].append(phases(started, run.seconds, emulator.requests, 0.0)["http"])
        if round_number:
            say(f"version guard round {round_number}/{GUARD_ROUNDS}")
    return Guard(
        rounds=GUARD_ROUNDS,
        store_latency=GUARD_STORE_LATENCY,
        unguarded=arms["unguarded"],
        guarded=arms["guarded"],
    )


def retry_after() -> list[Throttled]:
    results = []
    for seconds in RETRY_AFTERS:
        with fresh_emulator() as emulator:
            emulator.add_fault(
                Fault(
                    method="POST",
                    path=r"/haltpackagerollout$",
                    status=429,
                    headers={"Retry-After": str(seconds)},
                    body={
                        "statusCode": 429,
                        "message": f"Rate limit is exceeded. Try again in {seconds} seconds.",
                    },
                )
            )
            run, _ = action(emulator, inputs_for(emulator, **{"app-id": APP_ID}))
            expect_halted(run, f"Retry-After {seconds}")
            first, second = emulator.halt_requests
            if (first.status, second.status) != (429, 200):
                raise RuntimeError(f"unexpected halt statuses {first.status}, {second.status}")
            logged = bool(
                re.search(
                    rf"429 from the Store; waiting {seconds}(\.0)? s as Retry-After", run.stdout
                )
            )
            results.append(
                Throttled(
                    retry_after=seconds,
                    waited=second.started - first.started,
                    run_seconds=run.seconds,
                    logged=logged,
                )
            )
        say(f"Retry-After {seconds}: halt landed after {results[-1]['waited']:.2f} s")
    return results


def several_targets() -> Several:
    results = {
        count: Targets(count=count, seconds=[], http=[], requests=0, store_requests=0)
        for count in TARGET_COUNTS
    }
    for round_number in range(TARGET_ROUNDS):
        for count in TARGET_COUNTS if round_number % 2 == 0 else reversed(TARGET_COUNTS):
            with Emulator() as emulator:
                lines = ["targets:"]
                for number in range(count):
                    app, submission = f"9BENCH{number:06d}", str(1152921504621300000 + number)
                    emulator.add_app(app, last_published=submission, name=f"Bench {number}")
                    emulator.set_rollout(app, submission, percentage=20.0)
                    lines += [f"  - name: Bench app {number}", f"    app-id: {app}"]
                run, started = action(
                    emulator,
                    inputs_for(emulator, targets="targets.yml"),
                    files={"targets.yml": "\n".join(lines) + "\n"},
                )
                expect_halted(run, f"{count} targets")
                if len(emulator.halt_requests) != count:
                    raise RuntimeError(f"{count} targets: {len(emulator.halt_requests)} halts")
                sample = phases(started, run.seconds, emulator.requests, 0.0)
                results[count]["seconds"].append(run.seconds)
                results[count]["http"].append(sample["http"])
                results[count]["requests"] = sample["requests"]
                results[count]["store_requests"] = len(emulator.store_requests)
        say(f"several targets round {round_number + 1}/{TARGET_ROUNDS}")
    return Several(
        rounds=TARGET_ROUNDS, parallel=MAX_PARALLEL_TARGETS, targets=list(results.values())
    )
