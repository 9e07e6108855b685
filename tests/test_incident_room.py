"""The incident record (the contract's "Who, why, and what happens next"): who pressed the
stop, why, the run, and what to do now.

The log's first lines and the summary's head say who started the run, why, and the
run's URL; after a halt the summary says what it means in the Store's documented terms;
after already-halted, unknown and failed, what to do now. Every run here is the real
entrypoint as the runner starts it, and the summary is read as GitHub renders it.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from store_emulator import Emulator, Fault
from store_emulator.actions_runner import run_action
from store_emulator.runner_layout import Job
from store_emulator.step_results import ActionRun

from .conftest import APP_ID, FALLBACK, FLIGHT_ID, PUBLISHED, RunAction, base_inputs
from .conftest import visible_text as visible
from .test_cli import RunCli, cli  # noqa: F401 (cli is a fixture)
from .test_data_stays_data import assert_renders_as_text
from .world import HALT, MIB, ROLLOUT, log_lines, outside_code, refuses_every_halt

REASON = "Crash on start in 1.4.2.0: see INC-4711"
PARTNER_CENTER = "https://partner.microsoft.com/dashboard/products"
RUN_URL = "https://github.com/octo-org/octo-repo/actions/runs/1"


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
    refuses_every_halt(emulator, {"code": "InvalidState"})
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


def test_reason_actor_and_run_url_head_the_log_and_summary(action: RunAction) -> None:
    """Contract: the log's first lines and the summary's head say who started the run, the
    reason given, and the run's URL."""
    reason = "Crash spike in 1.4.2 after 10% rollout"
    run = action({"reason": reason})
    assert run.exit_code == 0, run.stdout
    head = "\n".join(run.stdout.splitlines()[:10])
    summary_head = "\n".join(run.summary.splitlines()[:12])
    assert reason in head, head
    assert reason in summary_head, summary_head
    assert "octocat" in head
    assert "octocat" in summary_head
    assert "/actions/runs/" in head
    assert "/actions/runs/" in summary_head


def test_summary_says_what_a_halt_means(action: RunAction) -> None:
    """Contract: after a halt the summary says what it means: no longer distributed, new
    customers get the previous submission's packages, no rollback, a new submission that
    starts as a clone of the halted one."""
    run = action()
    assert run.outputs["result"] == "halted"
    text = run.summary.lower()
    assert "rollback" in text or "keep them" in text, run.summary
    assert "clone" in text, run.summary


DEFAULT_JOB = Job()


def run_as(emulator: Emulator, tmp_path: Path, job: Job = DEFAULT_JOB, **inputs: str) -> ActionRun:
    return run_action(
        {**base_inputs(emulator), **inputs},
        extra_env={"REQUESTS_CA_BUNDLE": emulator.ca_path},
        workdir=tmp_path / "run",
        job=job,
    )


HOSTILE_REASONS = {
    "forged lines": "oops\nStarted by: the-ceo\nRun: https://evil.example/run",
    "workflow commands": "x\n::error title=forged::forged\n::stop-commands::abc",
    "markdown and html": "[click](https://evil.example) ![i](https://evil.example/p.png) <b>b</b>",
    "bidi": "halt \u202eexe.txt\u202c now \u200b",
    "old commands": "##[error]forged ##[add-mask]x",
    "backticks": "``` `code` ```` fence",
    "line separators": "a\u2028Started by: the-ceo\u2029b\x85c",
}


@pytest.mark.parametrize("case", list(HOSTILE_REASONS))
def test_a_hostile_reason_is_one_line_of_data_first_in_the_log_and_summary(
    emulator: Emulator, tmp_path: Path, case: str
) -> None:
    run = run_as(emulator, tmp_path, reason=HOSTILE_REASONS[case])
    assert run.exit_code == 0
    head = log_lines(run)[:3]
    assert head[0].startswith("Reason: ")
    assert head[1] == "Started by: octocat"
    assert head[2].startswith("Run: https://github.com/octo-org/octo-repo/actions/runs/")
    assert sum(line.startswith("Started by:") for line in log_lines(run)) == 1
    assert [e for e in run.errors if "forged" in e] == []
    assert not any("##[" in line for line in log_lines(run))
    assert "\u202e" not in run.stdout + run.summary
    assert_renders_as_text(run.summary)
    assert run.summary.index("**Why:**") < run.summary.index("| Target |")


def test_a_100_kb_reason_is_cut_and_the_summary_fits(emulator: Emulator, tmp_path: Path) -> None:
    run = run_as(emulator, tmp_path, reason="r" * 100_000)
    assert run.exit_code == 0
    assert len(log_lines(run)[0]) < 1100
    assert len(run.summary.encode()) < 10_000


@pytest.mark.parametrize("where", ["whole", "cut"])
def test_a_secret_in_the_reason_is_redacted(emulator: Emulator, tmp_path: Path, where: str) -> None:
    secret = emulator.client_secret
    reason = f"leaked {secret} by mistake" if where == "whole" else "x" * 990 + secret
    run = run_as(emulator, tmp_path, reason=reason)
    text = visible(run)
    assert secret not in text
    assert secret[:6] not in text
    assert "***" in log_lines(run)[0]


@pytest.mark.parametrize(
    "actor",
    ["::error::forged", "[me](https://evil.example)", "a\u202egnp.exe", "<img src=x>", "a" * 40],
)
def test_a_hostile_actor_is_data(emulator: Emulator, tmp_path: Path, actor: str) -> None:
    job = Job(actor=actor, triggering_actor="##[error]forged")
    run = run_as(emulator, tmp_path, job)
    assert run.exit_code == 0
    assert [e for e in run.errors if "forged" in e] == []
    assert not any(line.lstrip().startswith("::error::forged") for line in log_lines(run))
    assert not any("##[error]" in line for line in log_lines(run))
    assert "\u202e" not in run.stdout + run.summary
    assert_renders_as_text(run.summary)


def _links(summary: str) -> list[str]:
    """The summary's links: outside code (inside it, data is shown as written, not linked)."""
    return re.findall(r"\]\((https?://[^)\s]+)\)", outside_code(summary))


@pytest.mark.parametrize(
    "server",
    [
        "https://github.com@evil.example",
        "https://evil.example/github.com",
        "javascript://github.com",
        "https://github.com:443@evil.example",
        "https://github.com?",
        "https://github.com#",
        "https://github.com/\\evil.example",
    ],
)
def test_no_run_link_but_to_the_run(emulator: Emulator, tmp_path: Path, server: str) -> None:
    """The run link, when shown, leads to the run on the runner's server, nowhere else.
    Observed for `https://github.com#` and `https://github.com?`: urlsplit sees an empty
    fragment or query, so the check passes, and the live link is
    `https://github.com#/octo-org/octo-repo/actions/runs/N` (github.com's front page, not
    the run). Low severity: GITHUB_SERVER_URL is the runner's to set."""
    run = run_action(
        base_inputs(emulator),
        extra_env={"REQUESTS_CA_BUNDLE": emulator.ca_path, "GITHUB_SERVER_URL": server},
        workdir=tmp_path / "run",
    )
    assert run.exit_code == 0
    for link in _links(run.summary):
        parts = urlsplit(link)
        if parts.netloc.endswith("partner.microsoft.com"):
            continue
        assert parts.netloc == "github.com", link
        assert re.fullmatch(r"/octo-org/octo-repo/actions/runs/\d+(/attempts/\d+)?", parts.path), (
            link
        )
        assert not parts.query, link
        assert not parts.fragment, link


@pytest.mark.parametrize(
    ("repository", "run_id"),
    [
        ("octo-org/octo-repo/../../evil", "1"),
        ("octo-org/x)", "1"),
        ("o/r", "1 2"),
        ("o/r", "9" * 30),
    ],
)
def test_run_link_parts_are_checked(
    emulator: Emulator, tmp_path: Path, repository: str, run_id: str
) -> None:
    run = run_action(
        base_inputs(emulator),
        extra_env={
            "REQUESTS_CA_BUNDLE": emulator.ca_path,
            "GITHUB_REPOSITORY": repository,
            "GITHUB_RUN_ID": run_id,
        },
        workdir=tmp_path / "run",
    )
    assert "**Run:**" not in run.summary
    assert not any(line.startswith("Run:") for line in log_lines(run))


def test_what_a_halt_means_promises_nothing_the_docs_do_not_say(
    emulator: Emulator, tmp_path: Path
) -> None:
    run = run_as(emulator, tmp_path, reason="r")
    meaning = run.summary.split("### What the halt means", 1)[1]
    lowered = meaning.lower()
    for promise in ("you can resume", "resume the rollout", "rolled back", "will be removed"):
        assert promise not in lowered
    assert "no rollback" in lowered
    assert "clone" in lowered
    assert "fallback submission" in lowered
    links = _links(meaning)
    assert links == [
        f"https://partner.microsoft.com/dashboard/products/{APP_ID}/submissions/{PUBLISHED}"
    ]


@pytest.mark.parametrize("state", ["already-halted", "unknown", "failed"])
def test_after_each_ending_the_summary_says_what_to_do(
    emulator: Emulator, tmp_path: Path, state: str
) -> None:
    if state == "already-halted":
        emulator.state.halt(APP_ID, PUBLISHED)
    elif state == "unknown":
        in_progress = emulator.rollout(APP_ID, PUBLISHED)
        emulator.add_fault(Fault(method="POST", path=HALT, kind="hang_after", times=None))
        emulator.add_fault(Fault(method="GET", path=ROLLOUT, status=200, body=in_progress))
        emulator.add_fault(Fault(method="GET", path=ROLLOUT, status=503, times=None))
    else:
        refuses_every_halt(emulator, {"code": "InvalidState"})
    run = run_as(emulator, tmp_path, Job(), reason="r", **{"timeout-seconds": "6"})
    assert run.outputs["result"] == state
    summary = run.summary
    if state == "already-halted":
        assert "### What the halt means" in summary
    elif state == "unknown":
        assert "check these now" in summary.lower()
        assert "again is safe" in summary
    else:
        assert "### What to do now" in summary
    assert any("partner.microsoft.com" in link for link in _links(summary))
    assert_renders_as_text(summary)


def test_many_long_targets_and_a_long_reason_keep_the_summary_under_1_mib(
    emulator: Emulator, tmp_path: Path
) -> None:
    name = "N" * 150 + " [x](https://evil.example)"
    targets = "targets:\n" + "".join(
        f"  - name: '{name} {i}'\n    app-id: {APP_ID}\n    submission-id: '{100 + i}'\n"
        for i in range(100)
    )
    run = run_action(
        {**base_inputs(emulator), "app-id": "", "targets": "t.yml", "reason": "why " * 300},
        extra_env={"REQUESTS_CA_BUNDLE": emulator.ca_path},
        workdir=tmp_path / "run",
        files={"t.yml": targets},
        timeout=150,
    )
    assert len(run.summary.encode()) < MIB
    assert run.summary.index("**Why:**") < run.summary.index("| Target |"), run.summary[:3000]
    assert len(_links(run.summary)) <= 12
    assert_renders_as_text(run.summary)
