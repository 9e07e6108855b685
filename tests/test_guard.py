"""Halt on evidence: with halt-when: failing, a rollout is halted only when the Store's own
failure data show it failing, never blind, every decision explained; an emergency stop
(halt-when: now) neither asks for those data nor loads the code that reads them
(contract: "Halt on evidence", Outputs, rule 9)."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from typing import Any

import pytest

from halt_rollout.evidence import FailureRow, Readings, Thresholds, UsageRow, judge
from halt_rollout.evidence_report import BARS, NOT_A_CRASH_RATE, explanation_lines
from halt_rollout.halt import Result, TargetResult
from halt_rollout.inputs import Target
from halt_rollout.job_summary import MAX_SUMMARY_BYTES, summary
from halt_rollout.step_outputs import (
    MAX_OUTPUTS_UTF16_BYTES,
    MAX_RESULTS_BYTES,
    outputs,
    results_left_out,
)
from halt_rollout.store_resources import Rollout
from store_emulator import Emulator
from store_emulator.actions_runner import ActionRun

from .conftest import APP_ID, FALLBACK, OTHER_APP, PUBLISHED, RunAction
from .test_cli import RunCli, cli  # noqa: F401 (cli is a fixture)
from .test_data_stays_data import assert_renders_as_text
from .world import injected_commands, outputs_utf16_size

NEW, OLD = "1.4.2.0", "1.4.1.0"
GUARD = {"halt-when": "failing"}
# The guard's own modules: an emergency stop must load none of them.
GUARD_MODULES = re.compile(r"\|\s+halt_rollout\.(analytics|evidence|guard)$", re.M)


def script(emulator: Emulator, scenario: str, **kwargs: Any) -> None:
    emulator.script_guard(
        APP_ID,
        PUBLISHED,
        scenario=scenario,
        fallback=FALLBACK,
        version=NEW,
        fallback_version=OLD,
        **kwargs,
    )


def analytics_requests(emulator: Emulator) -> list[str]:
    return [r.path for r in emulator.store_requests if "/analytics/" in r.path]


def evidence_of(run: ActionRun) -> list[dict[str, Any]]:
    evidence = json.loads(run.outputs["evidence"])
    assert isinstance(evidence, list)
    return evidence


def rollout_status(emulator: Emulator) -> str:
    return str(emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"])


def test_a_failing_rollout_is_halted_with_its_evidence(
    action: RunAction, emulator: Emulator
) -> None:
    script(emulator, "failing")
    run = action(GUARD)
    assert run.exit_code == 0, run.stdout
    assert run.outputs["result"] == "halted"
    assert len(emulator.halt_requests) == 1
    assert rollout_status(emulator) == "PackageRolloutStopped"
    (evidence,) = evidence_of(run)
    assert evidence["outcome"] == "failing"
    assert evidence["rolling-out"]["versions"] == [NEW]
    assert evidence["fallback"]["versions"] == [OLD]
    assert evidence["why"].endswith(": halted")
    assert evidence["ratio-bound"] > evidence["failure-ratio"] == 2
    (record,) = json.loads(run.outputs["results"])
    assert record["evidence"] == evidence


def test_a_healthy_rollout_is_left_alone_and_nothing_is_sent(
    action: RunAction, emulator: Emulator
) -> None:
    script(emulator, "healthy")
    run = action(GUARD)
    assert (run.exit_code, run.outputs["result"]) == (0, "healthy"), run.stdout
    assert emulator.halt_requests == []
    assert rollout_status(emulator) == "PackageRolloutInProgress"
    (evidence,) = evidence_of(run)
    assert evidence["outcome"] == "healthy"
    assert evidence["why"].endswith(": healthy")


def test_too_little_evidence_is_inconclusive_and_nothing_is_sent(
    action: RunAction, emulator: Emulator
) -> None:
    script(emulator, "too-early")
    run = action(GUARD)
    assert (run.exit_code, run.outputs["result"]) == (0, "inconclusive"), run.stdout
    assert emulator.halt_requests == []
    assert evidence_of(run)[0]["outcome"] == "inconclusive"
    assert "Not enough evidence" in run.summary


def test_a_dry_run_says_what_the_evidence_would_halt(action: RunAction, emulator: Emulator) -> None:
    script(emulator, "failing")
    run = action({**GUARD, "dry-run": "true"})
    assert (run.exit_code, run.outputs["result"]) == (0, "dry-run")
    assert emulator.halt_requests == []
    assert evidence_of(run)[0]["why"].endswith("would be halted (dry run)")


def test_a_rollout_without_a_fallback_is_inconclusive_without_reading_analytics(
    action: RunAction, emulator: Emulator
) -> None:
    script(emulator, "failing")
    emulator.set_rollout(APP_ID, PUBLISHED, fallback="0")
    run = action(GUARD)
    assert (run.exit_code, run.outputs["result"]) == (0, "inconclusive")
    assert emulator.halt_requests == []
    assert analytics_requests(emulator) == []
    assert "no fallback submission" in evidence_of(run)[0]["why"]


@pytest.mark.parametrize(
    ("status", "result", "code"),
    [
        ("PackageRolloutStopped", "already-halted", 0),
        ("PackageRolloutComplete", "failed", 1),
    ],
)
def test_a_rollout_not_in_progress_is_decided_as_ever_without_reading_analytics(
    action: RunAction, emulator: Emulator, status: str, result: str, code: int
) -> None:
    """Rule 4 comes first: stopped or finalized, there is nothing to judge."""
    script(emulator, "failing")
    emulator.set_rollout(APP_ID, PUBLISHED, fallback=FALLBACK, status=status)
    run = action(GUARD)
    assert (run.exit_code, run.outputs["result"]) == (code, result), run.stdout
    assert analytics_requests(emulator) == []
    assert emulator.halt_requests == []
    assert run.outputs["evidence"] == "[]"


@pytest.mark.parametrize("status", [401, 403])
def test_a_blind_guard_fails_loudly_and_halts_nothing(
    action: RunAction, emulator: Emulator, status: int
) -> None:
    script(emulator, "failing")
    emulator.analytics.knobs.status = status
    run = action(GUARD)
    assert (run.exit_code, run.outputs["result"]) == (1, "failed")
    assert emulator.halt_requests == []
    assert rollout_status(emulator) == "PackageRolloutInProgress"
    (error,) = run.errors
    assert "the failure data could not be read; nothing was halted" in error
    assert f"HTTP {status}" in error
    assert "analytics" in error
    assert "Manager role" in error
    assert evidence_of(run) == []
    assert run.summary.startswith("## ❌ Guard blind for 1 of 1 target(s)")


def test_every_decision_is_explained_in_the_log_and_the_summary(
    action: RunAction, emulator: Emulator
) -> None:
    script(emulator, "failing")
    run = action(GUARD)
    (evidence,) = evidence_of(run)
    period = evidence["period"]
    log = run.stdout
    for figure in (
        f"evidence: {evidence['why']}",
        f"period: {period['from']} to {period['to']}",
        f"rolling out {NEW}:",
        f"fallback {OLD}:",
        "confidence bound",
        "margin 2×",
        "minimum 25 failing devices",
    ):
        assert figure in log, figure
    summary = run.summary
    assert "### Evidence" in summary
    assert NOT_A_CRASH_RATE in summary
    for figure in ("active device-days", "failing device-days", "failing share", "Ratio:"):
        assert figure in summary, figure
    # The trend: one row of bars per version, in code, rendered as text by GitHub.
    trends = re.findall(rf"`([{BARS}·]+)`", summary)
    assert len(trends) == 2, summary
    assert all(len(row) == 7 for row in trends), summary
    assert_renders_as_text(summary)


def test_the_explanation_counts_the_days_compared_and_shows_small_shares_as_small() -> None:
    """Usage on both sides on the 1st and 3rd, the 2nd without the fallback's: two days
    compared, not the three between them; a share of a few in ten million is not 0.00%."""
    first = date(2026, 11, 1)
    days = [first, first + timedelta(days=1), first + timedelta(days=2)]
    usage = [UsageRow(d, NEW, 1e7) for d in days] + [UsageRow(days[0], OLD, 4e7)]
    usage.append(UsageRow(days[2], OLD, 4e7))
    failures = [FailureRow(d, v, "crash", 2.0) for d in days for v in (NEW, OLD)]
    judgement = judge(
        Readings(tuple(usage), tuple(failures), first, days[-1]),
        rolling_out_versions=(NEW,),
        fallback_versions=(OLD,),
        thresholds=Thresholds(2.0, 25, ("crash", "hang")),
    )
    text = "\n".join(explanation_lines(judgement))
    assert "2026-11-01 to 2026-11-03 (2 days with usage on both sides)" in text
    assert "(2e-05%)" in text  # 4 failing of 2e7 active device-days
    assert "0.00%" not in text


def test_an_emergency_stop_neither_reads_analytics_nor_loads_the_guard(
    action: RunAction, emulator: Emulator
) -> None:
    script(emulator, "healthy")  # the data would say healthy: a stop halts all the same
    run = action({"halt-when": "now"}, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert run.outputs["result"] == "halted"
    assert analytics_requests(emulator) == []
    assert "halt_rollout.halt" in run.stderr  # the import profile was written
    assert GUARD_MODULES.findall(run.stderr) == []
    assert run.outputs["evidence"] == "[]"
    emulator.set_rollout(APP_ID, PUBLISHED, fallback=FALLBACK)  # rolling out again
    guarded = action({**GUARD, "app-id": APP_ID}, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert GUARD_MODULES.findall(guarded.stderr)  # the check above can fail


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("halt-when", "later"),
        ("failure-ratio", "1"),
        ("failure-ratio", "1e3"),
        ("failure-ratio", "nan"),
        ("failure-ratio", "inf"),
        ("failure-ratio", "1e400"),
        ("failure-ratio", "2,5"),
        ("failure-ratio", "\u0662"),  # an Arabic-Indic 2: a digit, not an ASCII one
        ("min-failing-devices", "\u0662\u0665"),
        ("min-failing-devices", "9" * 5000),
        ("event-types", "crash\u200b"),
        ("event-types", "crash,"),
        ("min-failing-devices", "0"),
        ("min-failing-devices", "2.5"),
        ("event-types", "crash,boom"),
    ],
)
def test_a_bad_guard_input_is_refused_before_any_request(
    action: RunAction, emulator: Emulator, name: str, value: str
) -> None:
    run = action({**GUARD, name: value})
    assert (run.exit_code, run.outputs["result"]) == (1, "failed")
    (error,) = run.errors
    assert name in error
    assert "Nothing was sent" in error
    assert emulator.requests == []


def test_data_from_the_store_stays_data_in_the_guards_report(
    action: RunAction, emulator: Emulator
) -> None:
    hostile = "1.4.2.0 ::error::x [a](https://evil.example) <b>`|"
    emulator.script_guard(
        APP_ID,
        PUBLISHED,
        scenario="failing",
        fallback=FALLBACK,
        version=hostile,
        fallback_version=OLD,
        hostile_names=True,
    )
    run = action(GUARD)
    assert run.outputs["result"] == "halted", run.stdout
    assert evidence_of(run)[0]["rolling-out"]["versions"] == [hostile]
    assert injected_commands(run.stdout) == []
    assert_renders_as_text(run.summary)


def test_the_command_line_guards_with_the_same_settings(
    cli: RunCli,  # noqa: F811 (the fixture)
    emulator: Emulator,
) -> None:
    script(emulator, "healthy")
    thresholds = ("--failure-ratio", "3", "--min-failing-devices", "10", "--event-types", "crash")
    run = cli("--app-id", APP_ID, "--halt-when", "failing", *thresholds, "--json")
    assert run.exit_code == 0, run.stderr
    data = run.json()
    assert data["result"] == "healthy"
    # An array in --json, as `results` is (the step output is its JSON text).
    assert isinstance(data["evidence"], list)
    (evidence,) = data["evidence"]
    assert (evidence["failure-ratio"], evidence["min-failing-devices"]) == (3, 10)
    assert evidence["event-types"] == ["crash"]
    assert "evidence: " in run.stderr
    assert emulator.halt_requests == []
    refused = cli("--app-id", APP_ID, "--halt-when", "failing", "--failure-ratio", "0.5")
    assert refused.exit_code == 1
    assert "failure-ratio must be a number from 1.1 to 100" in refused.stderr


def test_targets_file_entries_take_the_runs_guard_or_their_own(
    action: RunAction, emulator: Emulator
) -> None:
    script(emulator, "failing")
    targets = (
        "targets:\n"
        f"  - app-id: {APP_ID}\n"
        "    failure-ratio: 2.5\n"
        f"  - app-id: {OTHER_APP}\n"
        "    halt-when: now\n"
    )
    run = action({**GUARD, "app-id": None, "targets": "t.yml"}, files={"t.yml": targets})
    assert run.exit_code == 0, run.stdout
    results = {r["app-id"]: r["result"] for r in json.loads(run.outputs["results"])}
    assert results == {APP_ID: "halted", OTHER_APP: "halted"}
    (evidence,) = evidence_of(run)
    assert (evidence["app-id"], evidence["failure-ratio"]) == (APP_ID, 2.5)
    asked = {r.query["applicationId"] for r in emulator.store_requests if "/analytics/" in r.path}
    assert asked == {APP_ID}


@pytest.mark.parametrize(
    "entry",
    ['    halt-when: ""\n', "    failure-ratio: 0.5\n", "    event-types: [crash, boom]\n"],
)
def test_a_targets_entry_with_a_bad_guard_setting_is_refused(
    action: RunAction, emulator: Emulator, entry: str
) -> None:
    targets = f"targets:\n  - app-id: {APP_ID}\n{entry}"
    run = action({**GUARD, "app-id": None, "targets": "t.yml"}, files={"t.yml": targets})
    assert (run.exit_code, run.outputs["result"]) == (1, "failed")
    assert "targets entry 1" in run.errors[0]
    assert emulator.requests == []


@pytest.mark.parametrize("count", [1, 300, 3000])
def test_the_evidence_stays_inside_githubs_limits(count: int) -> None:
    """Every judged rollout's figures and 30 days of trend, for any number of rollouts."""
    first = date(2026, 11, 1)
    days = [first + timedelta(days=n) for n in range(30)]
    versions = ("1.4.2.0 " + "9" * 50, "1.4.1.0 " + "8" * 50)
    readings = Readings(
        usage=tuple(UsageRow(d, v, 1000.5) for d in days for v in versions),
        failures=tuple(FailureRow(d, v, "crash", 40.25) for d in days for v in versions),
        asked_from=first,
        asked_to=days[-1],
    )
    judgement = judge(
        readings,
        rolling_out_versions=versions[:1],
        fallback_versions=versions[1:],
        thresholds=Thresholds(2.0, 25, ("crash", "hang")),
    )
    rollout = Rollout(True, 25.0, "PackageRolloutInProgress", FALLBACK)
    results = [
        TargetResult(
            Target(app_id=APP_ID, flight_id=f"{n:08x}-97c9-4a43-a0bc-2a445e736bcd", name="x" * 200),
            Result.HEALTHY,
            PUBLISHED,
            rollout,
            judgement=judgement,
        )
        for n in range(count)
    ]
    text = summary(results, dry_run=False)
    values = outputs(results)
    assert len(text.encode()) <= MAX_SUMMARY_BYTES
    assert outputs_utf16_size(values) <= MAX_OUTPUTS_UTF16_BYTES
    kept = json.loads(values["evidence"])
    assert len(values["evidence"].encode()) <= MAX_RESULTS_BYTES
    assert 0 < len(kept) <= count
    note = results_left_out(results) or ""
    assert (len(kept) < count) == ("evidence output leaves out" in note)
    shown = text.count("Decision: ")
    assert (shown < count) == ("evidence left out" in text)
