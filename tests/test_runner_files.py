"""The runner's files and GitHub's size limits (rule 11).

The harness (`World`, `HostileServer`) is in tests/world.py.
"""

from __future__ import annotations

import re

import pytest

from store_emulator import Fault

from .world import (
    APP,
    DEADLINE,
    HALT,
    STARTUP_SLACK,
    Incoming,
    Wire,
    World,
    describe,
    forward_everything,
    json_answer,
    many_apps,
    traceback_free,
)

# 4b. Sizes the server controls -----------------------------------------------------------------


def test_summary_stays_under_1_mib_when_the_store_sends_long_codes(world: World) -> None:
    """100 targets (the most a file may hold), each refused with a 20 kB error `code`."""
    world.emulator.add_fault(
        Fault(
            method="POST",
            path=HALT,
            status=409,
            times=None,
            body={"code": "InvalidState" + "X" * 20_000, "message": "Not haltable."},
        )
    )
    run = world.run(
        {"app-id": None, "targets": "targets.yml", "timeout-seconds": "60"},
        files={"targets.yml": many_apps(world.emulator, 100)},
    )
    size = len(run.summary.encode())
    print(f"100 targets, 20 kB codes: {describe(run)}; summary {size} bytes")
    assert traceback_free(run)
    assert size < 1024 * 1024, f"summary is {size} bytes"


HEADER_ATTACKS = {
    "a 70 kB header line": [("X-Pad", "a" * 70_000)],
    "150 headers": [(f"X-Pad-{n}", "a") for n in range(150)],
    "a 60 kB MS-CorrelationId": [("MS-CorrelationId", "c" * 60_000)],
}


@pytest.mark.parametrize("headers", list(HEADER_ATTACKS.values()), ids=list(HEADER_ATTACKS))
def test_huge_headers_from_the_store_are_not_a_crash(
    world: World, headers: list[tuple[str, str]]
) -> None:
    def handler(req: Incoming, wire: Wire) -> None:
        if req.method == "GET" and re.search(APP, req.path):
            wire.send(json_answer(500, {"code": "InternalError", "message": "x"}, tuple(headers)))
        else:
            forward_everything(req, wire)

    run = world.run({"timeout-seconds": f"{DEADLINE:g}"}, store=world.hostile(handler))
    longest = max((len(e) for e in run.errors), default=0)
    print(f"headers: {describe(run, DEADLINE)}; longest error line {longest} chars")
    assert traceback_free(run)
    assert run.exit_code == 1
    assert run.seconds <= DEADLINE + STARTUP_SLACK
