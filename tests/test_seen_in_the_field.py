"""What the live Store was seen doing (store-api.md, "Seen in the field"), against the
real entrypoint.

The harness (`World`, `HostileServer`) is in tests/world.py.
"""

from __future__ import annotations

import re

from store_emulator import Fault

from .conftest import (
    APP_ID,
    PUBLISHED,
)
from .world import (
    APP,
    HALT,
    IN_PROGRESS,
    ROLLOUT,
    STOPPED,
    Incoming,
    Wire,
    World,
    describe,
    forward_everything,
)

# 7. Field behaviour (store-api.md, "Seen in the field") -----------------------------------


def test_integer_percentages_are_read(world: World) -> None:
    world.emulator.add_fault(
        Fault(
            method="GET",
            path=ROLLOUT,
            status=200,
            body={**IN_PROGRESS, "packageRolloutPercentage": 25},
        )
    )
    world.emulator.add_fault(
        Fault(method="POST", path=HALT, status=200, body={**STOPPED, "packageRolloutPercentage": 0})
    )
    run = world.run()
    print(
        f"integer percentages: {describe(run)}; rollout-percentage "
        f"{run.outputs.get('rollout-percentage')!r}"
    )
    assert run.outputs["result"] == "halted", describe(run)
    assert float(run.outputs["rollout-percentage"]) == 0


def test_absent_keys_are_read_as_none(world: World) -> None:
    world.emulator.add_fault(
        Fault(
            method="GET",
            path=APP,
            status=200,
            body={
                "id": APP_ID,
                "primaryName": "x",
                "lastPublishedApplicationSubmission": {"id": PUBLISHED},
            },
        )
    )
    world.emulator.add_fault(
        Fault(
            method="POST",
            path=HALT,
            status=200,
            body={k: v for k, v in STOPPED.items() if k != "fallbackSubmissionId"},
        )
    )
    run = world.run()
    print(f"absent keys: {describe(run)}")
    assert run.outputs["result"] == "halted", describe(run)


def test_key_casing_differences_are_tolerated(world: World) -> None:
    """Captures show PascalCase keys next to camelCase ones (`PackageFamilyName`)."""
    pascal = {key[0].upper() + key[1:]: value for key, value in IN_PROGRESS.items()}
    world.emulator.add_fault(Fault(method="GET", path=ROLLOUT, status=200, body=pascal))
    run = world.run()
    print(f"PascalCase rollout keys: {describe(run)}")
    assert run.outputs["result"] == "halted", describe(run)


def test_403_with_an_empty_body_says_the_app_may_not_be_this_accounts(world: World) -> None:
    world.emulator.add_fault(Fault(method="GET", path=APP, status=403, body=None))
    run = world.run()
    print(f"403 empty body: {describe(run)}")
    assert run.exit_code == 1
    assert len(run.errors) == 1
    error = run.errors[0]
    assert "403" in error
    assert re.search(r"app(?:-id| ID)?\b.*\b(?:not|another|other)\b.*account", error, re.I), error


def test_account_service_503_fails_within_about_30_seconds(world: World) -> None:
    message = "Account service is experiencing issue. Please try again later."
    world.emulator.add_fault(
        Fault(
            method="GET",
            path=APP,
            status=503,
            times=None,
            body={"statusCode": 503, "message": message},
        )
    )
    # Backoff waits are at most 20 s: a run that only stops at its deadline ends after
    # 40 s at the earliest, one that keeps the 30 s cap by 35 s.
    timeout = 60.0
    run = world.run({"timeout-seconds": f"{timeout:g}"})
    attempts = len([r for r in world.emulator.store_requests if re.search(APP, r.path)])
    print(f"account-service 503: {describe(run, timeout)}; {attempts} attempts")
    assert run.exit_code == 1
    assert "Partner Center" in run.errors[0]
    assert run.seconds <= 30 + 5, f"failed after {run.seconds:.1f} s, not within ~30 s"


def test_every_store_call_sends_content_type_json(world: World) -> None:
    run = world.run()
    missing = [
        f"{r.method} {r.path}"
        for r in world.emulator.store_requests
        if not r.headers.get("content-type", "").startswith("application/json")
    ]
    print(f"Content-Type: {describe(run)}; calls without application/json: {missing}")
    assert run.outputs["result"] == "halted"
    assert missing == []


def test_slow_answer_within_the_deadline_is_waited_for(world: World) -> None:
    def slow(req: Incoming, wire: Wire) -> None:
        if req.method == "GET" and re.search(APP, req.path):
            wire.stopping.wait(6.0)
        forward_everything(req, wire)

    run = world.run({"timeout-seconds": "20"}, store=world.hostile(slow))
    print(f"6 s answer, 20 s deadline: {describe(run, 20)}")
    assert run.outputs["result"] == "halted", describe(run)
