"""Data stays data (rule 8): text from data never becomes a workflow command, live Markdown,
or invisible instructions.

The harness (`World`, `HostileServer`) is in tests/world.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from store_emulator import Fault
from store_emulator.actions_runner import (
    ActionRun,
)

from .conftest import (
    APP_ID,
)
from .world import (
    HALT,
    Incoming,
    Wire,
    World,
    describe,
    forward_everything,
    injected_commands,
    json_answer,
    live_markdown,
)

# 5. Data stays data (rule 8) ---------------------------------------------------------------

HOSTILE_NAMES = [
    "::error::pwned",
    "##[error]pwned",
    "Desktop ##[warning]pwned",
    "\u00a0::warning::pwned",  # a no-break space survives str.strip(); C#'s TrimStart drops it
    "[click me](https://evil.example/x)",
    "![pixel](https://evil.example/pixel.png)",
    "<img src=https://evil.example/x.png>",
    "https://evil.example/bare",
    "<https://evil.example/autolink>",
    "www.evil.example",
    "`code` | pipe | [x]",
]


def _named_targets(name: str) -> str:
    return f"targets:\n  - name: {json.dumps(name)}\n    app-id: {APP_ID}\n"


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_target_name_stays_data_in_the_log_and_the_summary(world: World, name: str) -> None:
    run = world.run(
        {"app-id": None, "targets": "targets.yml"}, files={"targets.yml": _named_targets(name)}
    )
    injected = injected_commands(run.stdout)
    live = live_markdown(run.summary)
    print(f"name {name!r}: {describe(run)}; commands {injected[:2]}; live Markdown {live}")
    assert run.outputs["result"] == "halted", describe(run)
    assert injected == [], injected
    assert live == [], [line for line in run.summary.splitlines() if name[:6] in line]


PAYLOAD = (
    "Rejected. [click me](https://evil.example/x) ![pixel](https://evil.example/p.png) "
    "<img src=x> https://evil.example/bare www.evil.example\n::error::pwned\n"
    "  ::warning::pwned ##[error]pwned"
)


@pytest.mark.parametrize("field", ["message", "code", "MS-CorrelationId"])
def test_store_message_stays_data_in_the_log_and_the_summary(world: World, field: str) -> None:
    body: dict[str, Any] = {"code": "InvalidState", "message": "Not haltable."}
    headers = {}
    if field == "MS-CorrelationId":  # a header holds no newline
        headers[field] = PAYLOAD.replace("\n", " ")
    else:
        body[field] = PAYLOAD
    world.emulator.add_fault(
        Fault(method="POST", path=HALT, status=409, body=body, headers=headers, times=None)
    )
    assert_stays_data(world.run(), f"Store {field}")


def assert_stays_data(run: ActionRun, what: str) -> None:
    """The run failed, and what it was fed made neither a command nor live Markdown."""
    injected = injected_commands(run.stdout)
    live = live_markdown(run.summary)
    print(f"{what} with payload: {describe(run)}; commands {injected}; live {live}")
    assert run.exit_code == 1
    assert injected == [], injected
    assert live == [], live


def test_entra_message_stays_data_in_the_log_and_the_summary(world: World) -> None:
    def entra(req: Incoming, wire: Wire) -> None:
        if req.path.endswith("/oauth2/v2.0/token"):
            body = {"error": "invalid_client", "error_description": f"AADSTS7000215: {PAYLOAD}"}
            wire.send(json_answer(401, body))
        else:
            forward_everything(req, wire)

    assert_stays_data(world.run(authority=world.hostile(entra)), "Entra message")
