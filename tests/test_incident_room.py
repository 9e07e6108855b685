"""The incident room (contract v1.2, "Who, why, and what happens next").

The log's first lines and the summary's head say who started the run, why, and the
run's URL; after a halt the summary says what it means in the Store's documented terms;
after already-halted, unknown and failed, what to do now. Every run here is the real
entrypoint as the runner starts it, and the summary is read as GitHub renders it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from store_emulator import Emulator, Fault
from store_emulator.actions_runner import run_action
from store_emulator.runner_layout import Job
from store_emulator.step_results import ActionRun

from .conftest import APP_ID, FALLBACK, FLIGHT_ID, PUBLISHED, RunAction, base_inputs
from .test_cli import RunCli, cli  # noqa: F401 (cli is a fixture)
from .test_data_stays_data import assert_renders_as_text

HALT = r"/haltpackagerollout$"
REASON = "Crash on start in 1.4.2.0: see INC-4711"
PARTNER_CENTER = "https://partner.microsoft.com/dashboard/products"
RUN_URL = "https://github.com/octo-org/octo-repo/actions/runs/1"


def run_as(emulator: Emulator, tmp_path: Path, job: Job, **inputs: str) -> ActionRun:
    return run_action(
        {**base_inputs(emulator), **inputs},
        extra_env={"REQUESTS_CA_BUNDLE": emulator.ca_path},
        workdir=tmp_path / "run",
        job=job,
    )


def log_lines(run: ActionRun) -> list[str]:
    return [line for line in run.stdout.splitlines() if not line.startswith("::add-mask::")]


def head_of(summary: str) -> str:
    """The summary up to its table."""
    return summary.split("| Target |", 1)[0]


def test_why_who_and_the_run_come_first_in_the_log_and_the_summary(
    emulator: Emulator, tmp_path: Path
) -> None:
    job = Job(actor="release-captain", triggering_actor="on-call-sre", run_attempt=2)
    run = run_as(emulator, tmp_path, job, reason=REASON)

    assert run.exit_code == 0
    assert log_lines(run)[:3] == [
        f"Reason: {REASON}",
        "Started by: release-captain (this attempt started by on-call-sre)",
        f"Run: {RUN_URL}/attempts/2",
    ]
    head = head_of(run.summary)
    assert head.startswith("## 🛑 Rollout halted\n")
    assert f"**Why:** `{REASON}`" in head
    assert "**Who:** `release-captain` (this attempt started by `on-call-sre`)" in head
    assert f"**Run:** [{RUN_URL}/attempts/2]({RUN_URL}/attempts/2)" in head
    assert_renders_as_text(run.summary)


def test_without_a_reason_the_record_says_none_was_given(
    emulator: Emulator, tmp_path: Path
) -> None:
    run = run_as(emulator, tmp_path, Job())
    assert log_lines(run)[:3] == [
        "Reason: none given (the reason input records why)",
        "Started by: octocat",
        f"Run: {RUN_URL}",
    ]
    assert "**Why:** *no reason given*" in head_of(run.summary)
    assert "this attempt started by" not in run.stdout + run.summary


@pytest.mark.parametrize(
    "reason",
    [
        "[click](https://evil.example) <img src=x> ::error::pwned",
        "line one\nline two\t`tick`",
        "right-to-left \u202eexe.txt",
    ],
    ids=["markup", "newlines and backticks", "bidi override"],
)
def test_the_reason_is_data(emulator: Emulator, tmp_path: Path, reason: str) -> None:
    run = run_as(emulator, tmp_path, Job(), reason=reason)
    assert run.exit_code == 0
    [why] = [line for line in log_lines(run) if line.startswith("Reason: ")]
    assert not any(line.lstrip().startswith("::error") for line in log_lines(run))
    assert "\u202e" not in run.stdout + run.summary
    assert "\n" not in why
    assert_renders_as_text(run.summary)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GITHUB_SERVER_URL", "javascript:alert(1)//"),
        ("GITHUB_SERVER_URL", "http://github.example"),
        ("GITHUB_SERVER_URL", "https://evil.example/x?y"),
        ("GITHUB_SERVER_URL", "https://github.com?"),
        ("GITHUB_SERVER_URL", "https://github.com#"),
        ("GITHUB_SERVER_URL", "https://user@evil.example"),
        ("GITHUB_REPOSITORY", "octo-org/octo-repo)](https://evil.example"),
        ("GITHUB_RUN_ID", "1/../../evil"),
    ],
)
def test_a_run_url_that_is_not_githubs_shape_is_left_out(
    action: RunAction, variable: str, value: str
) -> None:
    run = action(env={variable: value})
    assert run.exit_code == 0
    assert not any(line.startswith("Run: ") for line in run.stdout.splitlines())
    assert "**Run:**" not in run.summary
    assert "evil" not in run.summary
    assert_renders_as_text(run.summary)


def test_after_a_halt_the_summary_says_what_it_means(action: RunAction) -> None:
    run = action({"reason": REASON})
    assert run.outputs["result"] == "halted"
    meaning = run.summary.split("### What the halt means", 1)[1]
    for words in (
        "no longer distributed to anyone",
        "get the packages of the fallback submission",
        "keep them: there is no rollback",
        "publish a new submission with fixed packages",
        "starts as a clone of the halted one",
        "replace them before you commit it",
        "describes no way to resume a halted rollout",
    ):
        assert words in meaning, words
    assert "flight" not in meaning.lower()  # an app's halt: nothing about flights
    link = f"{PARTNER_CENTER}/{APP_ID}/submissions/{PUBLISHED}"
    assert f"[submission {PUBLISHED} in Partner Center]({link})" in meaning
    assert "resume" not in run.summary.replace("describes no way to resume", "")
    assert_renders_as_text(run.summary)


def test_after_a_flights_halt_it_says_what_to_do_for_the_flight(action: RunAction) -> None:
    run = action({"flight-id": FLIGHT_ID})
    assert run.outputs["result"] == "halted"
    assert "create an update for the same flight with a newer, fixed package" in run.summary


def test_after_already_halted_it_says_what_the_halt_means_too(
    emulator: Emulator, action: RunAction
) -> None:
    emulator.set_rollout(APP_ID, PUBLISHED, status="PackageRolloutStopped", percentage=0.0)
    run = action()
    assert run.outputs["result"] == "already-halted"
    assert "### What the halt means" in run.summary
    assert f"{PARTNER_CENTER}/{APP_ID}/submissions/{PUBLISHED}" in run.summary


def test_after_unknown_it_says_to_check_now_and_that_a_rerun_is_safe(
    emulator: Emulator, action: RunAction
) -> None:
    # The halt reaches the Store, its answer never comes, and the rollout cannot be read.
    rollout = r"/packagerollout$"
    in_progress = emulator.rollout(APP_ID, PUBLISHED)
    emulator.add_fault(Fault(method="POST", path=HALT, kind="hang_after", times=None))
    emulator.add_fault(Fault(method="GET", path=rollout, status=200, body=in_progress))
    emulator.add_fault(Fault(method="GET", path=rollout, status=503, times=None))
    run = action({"timeout-seconds": "5"})
    assert run.outputs["result"] == "unknown", run.stdout
    section = run.summary.split("### Not confirmed: check these now", 1)[1]
    assert f"{PARTNER_CENTER}/{APP_ID}/submissions/{PUBLISHED}" in section
    assert "Running this again is safe" in section
    assert "### What the halt means" not in run.summary  # nothing is known to be halted
    assert_renders_as_text(run.summary)


def test_after_a_failure_it_says_what_to_do_now(emulator: Emulator, action: RunAction) -> None:
    emulator.add_fault(
        Fault(method="POST", path=HALT, status=409, times=None, body={"code": "InvalidState"})
    )
    run = action()
    assert run.outputs["result"] == "failed"
    section = run.summary.split("### What to do now", 1)[1]
    assert "halt it in Partner Center" in section
    assert f"{PARTNER_CENTER}/{APP_ID}/submissions/{PUBLISHED}" in section
    assert "### What the halt means" not in run.summary


def test_a_dry_run_promises_nothing(emulator: Emulator, action: RunAction) -> None:
    run = action({"dry-run": "true", "reason": REASON})
    assert run.outputs["result"] == "dry-run"
    assert REASON in run.summary
    assert "### What the halt means" not in run.summary
    assert "dry-run: false" in run.summary


def test_a_refused_input_still_records_who_and_why(action: RunAction, emulator: Emulator) -> None:
    run = action({"app-id": "9NBL/../x", "reason": REASON})
    assert run.exit_code == 1
    assert log_lines(run)[0] == f"Reason: {REASON}"
    assert f"**Why:** `{REASON}`" in run.summary
    assert emulator.requests == []


def test_the_command_line_records_who_and_why(cli: RunCli) -> None:  # noqa: F811 (the fixture)
    run = cli("--app-id", APP_ID, "--reason", REASON, "--json", env={"GITHUB_ACTOR": "laptop-user"})
    assert run.exit_code == 0, run.stderr
    assert run.stderr.splitlines()[:2] == [f"Reason: {REASON}", "Started by: laptop-user"]
    assert run.json()["result"] == "halted"
    assert FALLBACK in run.stdout
