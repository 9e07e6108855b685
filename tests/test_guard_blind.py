"""A guard that cannot read the failure data halts nothing and passes nothing: the target
is `failed`, says "the failure data could not be read; nothing was halted" and what to
check, within the deadline, without a secret; an answer that clears by waiting is waited
for; and a blind guard costs the run's other targets nothing (contract: "Halt on
evidence", "Missing evidence never halts and never passes"; rules 7, 7a, 8, 9)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from store_emulator import Emulator, Fault

from .conftest import APP_ID, DEADLINE_ALLOWANCE, OTHER_APP, RunAction, secrets_of, visible_text
from .test_guard import GUARD, NEW, OLD, evidence_of, rollout_status, script
from .test_guard_reading import FAILURES, USAGE

BLIND = "the failure data could not be read; nothing was halted"
TIMEOUT = 8


def assert_blind(emulator: Emulator, run: Any, *words: str) -> None:
    assert (run.exit_code, run.outputs["result"]) == (1, "failed"), run.stdout
    assert emulator.halt_requests == []
    assert rollout_status(emulator) == "PackageRolloutInProgress"
    assert run.outputs["evidence"] == "[]"
    (error,) = run.errors
    assert BLIND in error
    for word in words:
        assert word in error, error
    assert run.seconds < TIMEOUT + DEADLINE_ALLOWANCE


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        (Fault(method="GET", path=USAGE, status=403, body=""), "Manager role"),
        (Fault(method="GET", path=USAGE, status=500, times=None), "HTTP 500"),
        (Fault(method="GET", path=FAILURES, status=503, times=None), "HTTP 503"),
        (
            Fault(
                method="GET",
                path=USAGE,
                status=200,
                body="<html><body>Sign in to continue</body></html>",
                headers={"Content-Type": "text/html"},
            ),
            "not what its API documents",
        ),
        (Fault(method="GET", path=FAILURES, status=200, body='{"Value": [{"date": "20'), ""),
        (Fault(method="GET", path=USAGE, kind="truncate", body={"Value": []}, times=None), ""),
    ],
    ids=["403-empty", "500-persistent", "503-persistent", "html-page", "cut-json", "truncated"],
)
def test_analytics_that_cannot_be_read_leave_the_rollout_alone_and_say_so(
    action: RunAction, emulator: Emulator, fault: Fault, said: str
) -> None:
    script(emulator, "failing")  # the data, could they be read, would halt it
    emulator.add_fault(fault)
    run = action({**GUARD, "timeout-seconds": str(TIMEOUT)})
    assert_blind(emulator, run, said)


def test_the_stores_own_words_are_shown_and_a_secret_in_them_is_not(
    action: RunAction, emulator: Emulator
) -> None:
    """The documented 400, its innererror naming what was wrong, echoing the secret."""
    script(emulator, "failing")
    secret = emulator.client_secret
    body = {
        "code": "BadRequest",
        "innererror": {
            "code": "InvalidQueryParameters",
            "data": [f"top parameter cannot be more than 10000 ({secret})"],
            "message": "One or more query parameters has invalid values.",
            "source": "AnalyticsAPI",
        },
        "message": f"The calling client sent a bad request to the service. {secret}",
        "source": "AnalyticsAPI",
    }
    emulator.add_fault(Fault(method="GET", path=USAGE, status=400, body=body))
    run = action(GUARD)
    assert_blind(emulator, run, "HTTP 400", "top parameter cannot be more than 10000")
    shown = visible_text(run)
    for each in secrets_of(emulator):
        assert each not in shown


@pytest.mark.parametrize("status", [429, 503])
def test_a_refusal_that_clears_by_waiting_is_waited_for_then_decided(
    action: RunAction, emulator: Emulator, status: int
) -> None:
    """Without Retry-After, the retry rule's own backoff; the decision is then made."""
    script(emulator, "failing")
    emulator.add_fault(Fault(method="GET", path=FAILURES, status=status, times=2))
    run = action(GUARD)
    assert (run.exit_code, run.outputs["result"]) == (0, "halted"), run.stdout
    assert f"{status} from the Store; waiting" in run.stdout
    assert evidence_of(run)[0]["outcome"] == "failing"


def test_a_blind_guard_costs_the_other_targets_nothing(
    action: RunAction, emulator: Emulator
) -> None:
    """One app's analytics keep failing to the deadline; the other app is judged and
    halted meanwhile."""
    script(emulator, "failing")
    other = "1152921504621200001"
    emulator.script_guard(
        OTHER_APP,
        other,
        scenario="failing",
        fallback="1152921504621200000",
        version=NEW,
        fallback_version=OLD,
    )
    emulator.analytics.knobs.refused_apps = {OTHER_APP: 503}
    targets = (
        f'targets:\n  - app-id: {APP_ID}\n  - app-id: {OTHER_APP}\n    submission-id: "{other}"\n'
    )
    run = action(
        {**GUARD, "app-id": None, "targets": "t.yml", "timeout-seconds": str(TIMEOUT)},
        files={"t.yml": targets},
    )
    results = {r["app-id"]: r["result"] for r in json.loads(run.outputs["results"])}
    assert results == {APP_ID: "halted", OTHER_APP: "failed"}, run.stdout
    assert run.exit_code == 1
    assert [e["app-id"] for e in evidence_of(run)] == [APP_ID]
    (error,) = run.errors
    assert BLIND in error
    assert OTHER_APP in error
    assert run.seconds < TIMEOUT + DEADLINE_ALLOWANCE
