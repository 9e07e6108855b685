"""The contract's promises (rules 7a, 8 and 9) hold against a hostile world
(docs/reliability.md, "Hostile world").

Servers that trickle bytes, send bodies without end or pathological ones, files
that are pipes or YAML 1.1 traps, two responders at once, extreme numbers, data
that looks like a workflow command, secrets in disguise. Each test holds one row
of the table; each failed on the main of 2026-11 before its fix.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from halt_rollout.errors import InputError
from halt_rollout.inputs import read_settings
from store_emulator import Emulator, Fault
from store_emulator.step_results import ActionRun

from .conftest import (
    APP_ID,
    DEADLINE_ALLOWANCE,
    FALLBACK,
    FLIGHT_ID,
    PUBLISHED,
    VALID_INPUTS,
    RunAction,
    visible_text,
)
from .hostile_server import Seen, both_cas, endless_chunks, hostile, http_answer, trickle
from .world import OUR_LINKS

STOPPED = "PackageRolloutStopped"
IN_PROGRESS = "PackageRolloutInProgress"
HALT = r"/haltpackagerollout$"
ROLLOUT = r"/packagerollout$"
APP = rf"^/v1\.0/my/applications/{APP_ID}$"
STARTUP_ALLOWANCE = DEADLINE_ALLOWANCE


def rollout_body(status: str, percentage: float | int = 25.0) -> dict[str, object]:
    return {
        "isPackageRollout": True,
        "packageRolloutPercentage": percentage,
        "packageRolloutStatus": status,
        "fallbackSubmissionId": FALLBACK,
    }


def assert_failed_cleanly(run: ActionRun) -> None:
    """A failure as the contract wants it: exit 1, outputs and summary written, one error."""
    assert run.exit_code == 1, run.stdout
    assert run.outputs["result"] == "failed"
    assert json.loads(run.outputs["results"])
    assert run.summary.startswith("## ❌")
    assert len(run.errors) == 1, run.errors


# -- The deadline is absolute (rule 7a) ------------------------------------------------


def _store_run(
    action: RunAction,
    emulator: Emulator,
    tmp_path: Path,
    server_url: str,
    *,
    ca: Path,
    timeout: str,
) -> ActionRun:
    bundle = both_cas(emulator.ca_path, ca, into=tmp_path / "bundle.pem")
    return action(
        {"store-api-url": server_url, "timeout-seconds": timeout},
        env={"REQUESTS_CA_BUNDLE": bundle},
        timeout=60,
    )


@pytest.mark.parametrize("part", ["headers", "body after Connection: close"])
def test_a_store_that_trickles_its_answer_cannot_outlive_the_deadline(
    emulator: Emulator, action: RunAction, tmp_path: Path, part: str
) -> None:
    # A byte every 0.2 s never trips a per-read timeout: only a deadline ends it. With
    # `Connection: close`, the connection hands its socket to the answer after the headers.
    answer = http_answer(
        200,
        json.dumps(rollout_body(IN_PROGRESS)).encode() + b" " * 5000,
        {"Connection": "close"} if part != "headers" else None,
    )
    head, separator, body = answer.partition(b"\r\n\r\n")
    first, rest = (b"", answer) if part == "headers" else (head + separator, body)
    with hostile(lambda stop: trickle(rest, 0.2, stop, head=first), tmp_path) as server:
        run = _store_run(action, emulator, tmp_path, server.url, ca=server.ca_path, timeout="4")
        seen = list(server.seen)
    assert_failed_cleanly(run)
    assert run.seconds < 4 + STARTUP_ALLOWANCE
    assert "could not be reached in time" in run.errors[0]
    assert seen, "the store was asked"


def test_a_body_without_end_is_cut_and_nothing_is_sent_after_the_deadline(
    emulator: Emulator, action: RunAction, tmp_path: Path
) -> None:
    with hostile(endless_chunks, tmp_path) as server:
        run = _store_run(action, emulator, tmp_path, server.url, ca=server.ca_path, timeout="4")
        process_started = time.monotonic() - run.seconds  # the server shares this clock
        seen: list[Seen] = list(server.seen)
    assert_failed_cleanly(run)
    assert run.seconds < 4 + STARTUP_ALLOWANCE
    # The endless answer is cut at the size cap (or at the deadline, whichever comes
    # first) and never asked for again: asking again would get the same. Nothing is sent
    # after the deadline (it counts from when the package loads, a little after the start).
    assert len(seen) == 1
    assert max(request.at for request in seen) < process_started + 4 + 0.5
    assert "larger than" in run.errors[0] or "in time" in run.errors[0], run.errors


def test_a_sign_in_that_trickles_cannot_outlive_the_deadline(
    emulator: Emulator, action: RunAction, tmp_path: Path
) -> None:
    answer = http_answer(200, b'{"token_endpoint": "' + b"x" * 5000 + b'"}')
    with hostile(lambda stop: trickle(answer, 0.2, stop), tmp_path) as server:
        bundle = both_cas(emulator.ca_path, server.ca_path, into=tmp_path / "bundle.pem")
        run = action(
            {"authority-host": server.url, "timeout-seconds": "4"},
            env={"REQUESTS_CA_BUNDLE": bundle},
            timeout=60,
        )
    assert_failed_cleanly(run)
    assert run.seconds < 4 + STARTUP_ALLOWANCE
    assert "Sign-in" in run.errors[0]


def test_the_last_look_after_a_lost_halt_stays_inside_the_deadline(
    emulator: Emulator, action: RunAction
) -> None:
    # The halt hangs past the deadline; the last look must still fit in, not follow it.
    emulator.add_fault(Fault(method="POST", path=HALT, kind="hang_after", seconds=60))
    run = action({"timeout-seconds": "6"})
    process_started = time.monotonic() - run.seconds  # the emulator shares this clock
    last = max(r.started for r in emulator.requests)
    assert run.exit_code == 0, run.stdout
    assert run.outputs["result"] == "halted"
    assert "the halt had taken effect although its answer was lost" in run.stdout
    assert last < process_started + 6, "a request was sent after the deadline"


@pytest.mark.parametrize("kind", ["named pipe", "directory"])
def test_a_targets_file_that_is_no_regular_file_is_refused_at_once(
    tmp_path: Path, kind: str
) -> None:
    # Opening a named pipe blocks until a writer comes.
    if kind == "named pipe":
        os.mkfifo(tmp_path / "targets.yml")
    else:
        (tmp_path / "targets.yml").mkdir()
    raw = {**VALID_INPUTS, "app-id": "", "targets": "targets.yml"}
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            read_settings(raw, workspace=tmp_path, oidc_available=False)
        except InputError as error:
            outcome.append(error)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(10)
    assert outcome, "reading the targets file hung"
    assert "is not a regular file" in str(outcome[0])


# -- The truth of the result (rules 5 and 6) --------------------------------------------


def test_a_halt_answered_200_but_still_in_progress_is_not_reported_halted(
    emulator: Emulator, action: RunAction
) -> None:
    emulator.add_fault(
        Fault(method="POST", path=HALT, status=200, body=rollout_body(IN_PROGRESS), times=None)
    )
    run = action({"timeout-seconds": "5"})
    # An answer that is not the rollout stopped is a lost answer (rule 5): the halt may be
    # under way, so it ends `unknown` at the deadline, never `halted` nor `failed` (rule 7a).
    assert run.outputs["result"] == "unknown"
    assert run.exit_code == 1
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == IN_PROGRESS


def test_a_halt_answered_200_in_progress_once_is_read_and_sent_again(
    emulator: Emulator, action: RunAction
) -> None:
    emulator.add_fault(Fault(method="POST", path=HALT, status=200, body=rollout_body(IN_PROGRESS)))
    run = action()
    assert run.exit_code == 0, run.stdout
    assert run.outputs["result"] == "halted"
    assert run.outputs["status"] == STOPPED
    assert [r.method for r in emulator.requests if r.path.endswith("haltpackagerollout")] == [
        "POST",
        "POST",
    ]


def test_two_responders_at_once_both_end_well(emulator: Emulator, action: RunAction) -> None:
    # The Store takes two seconds to apply a halt: the second responder's halt lands in it.
    emulator.knobs.halt_seconds = 2.0
    runs: list[ActionRun] = []
    threads = [threading.Thread(target=lambda: runs.append(action())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(run.exit_code for run in runs) == [0, 0], [r.stdout for r in runs]
    assert sorted(run.outputs["result"] for run in runs) == ["already-halted", "halted"]
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == STOPPED


def test_the_same_submission_twice_in_one_run_is_never_a_failure(
    emulator: Emulator, action: RunAction
) -> None:
    """By app and by its submission: one rollout (contract v1.3, "Several targets"),
    halted once and reported once."""
    emulator.knobs.halt_seconds = 2.0  # both are worked on at once: their halts would meet
    targets = (
        f"targets:\n  - app-id: {APP_ID}\n"
        f"  - name: the same one, by ID\n    app-id: {APP_ID}\n    submission-id: '{PUBLISHED}'\n"
    )
    run = action({"app-id": None, "targets": "t.yml"}, files={"t.yml": targets})
    assert run.exit_code == 0, run.stdout
    results = [record["result"] for record in json.loads(run.outputs["results"])]
    assert results == ["halted"]
    assert len(emulator.halt_requests) == 1


# -- No crash, ever (rule 9) ---------------------------------------------------------


@pytest.mark.parametrize("retry_after", ["1e400", "1e308", "99999999999999999999999", "nan"])
def test_absurd_retry_after_values_fail_cleanly(
    emulator: Emulator, action: RunAction, retry_after: str
) -> None:
    emulator.add_fault(
        Fault(
            method="GET", path=ROLLOUT, status=429, headers={"Retry-After": retry_after}, times=None
        )
    )
    run = action({"timeout-seconds": "3"})
    assert_failed_cleanly(run)
    assert run.seconds < 3 + STARTUP_ALLOWANCE


@pytest.mark.parametrize("timeout", ["1e308", "1e20", "99999999999"])
def test_absurd_timeouts_still_halt_and_say_what_was_used(
    emulator: Emulator, action: RunAction, timeout: str
) -> None:
    # "Never give up" is a fair wish in an incident: it gets the longest a job may run.
    run = action({"timeout-seconds": timeout})
    assert run.exit_code == 0, run.stdout
    assert run.outputs["result"] == "halted"
    assert "using 21600 (6 hours)" in run.stdout


def test_a_deeply_nested_answer_is_an_unusable_answer_not_a_crash(
    emulator: Emulator, action: RunAction
) -> None:
    emulator.add_fault(Fault(method="GET", path=APP, status=200, body="[" * 200_000, times=None))
    run = action({"timeout-seconds": "3"})
    assert_failed_cleanly(run)
    assert "not a JSON object" in run.errors[0]


def test_a_pathological_error_page_is_read_in_linear_time(
    emulator: Emulator, action: RunAction
) -> None:
    page = "<html>" + "<title " * 100_000  # 700 kB: under the size cap
    emulator.add_fault(Fault(method="GET", path=APP, status=404, body=page, times=None))
    run = action({"timeout-seconds": "20"})
    assert_failed_cleanly(run)
    assert "HTTP 404" in run.errors[0]
    assert run.seconds < 10


def test_deeply_nested_targets_file_is_refused(emulator: Emulator, action: RunAction) -> None:
    deep = "targets: " + "[" * 5000 + "]" * 5000 + "\n"
    run = action({"app-id": None, "targets": "t.yml"}, files={"t.yml": deep})
    assert run.exit_code == 1
    assert "nested too deeply" in run.errors[0]
    assert emulator.requests == []


# -- IDs are what the user wrote --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reading"),
    [("0123", "int"), ("0x1F", "int"), ("1:20", "int"), ("1_000", "int"), ("0b11", "int")],
)
def test_yaml_1_1_readings_of_an_id_are_refused_with_quote_it(
    emulator: Emulator, action: RunAction, value: str, reading: str
) -> None:
    targets = f"targets:\n  - app-id: {APP_ID}\n    submission-id: {value}\n"
    run = action({"app-id": None, "targets": "t.yml"}, files={"t.yml": targets})
    assert run.exit_code == 1
    assert "quote it" in run.errors[0]
    assert f"as a {reading}" in run.errors[0]
    assert emulator.requests == []


def test_duplicate_keys_in_a_targets_entry_are_refused(
    emulator: Emulator, action: RunAction
) -> None:
    targets = (
        f"targets:\n  - app-id: {APP_ID}\n    flight-id: {FLIGHT_ID}\n    flight-id: {FLIGHT_ID}\n"
    )
    run = action({"app-id": None, "targets": "t.yml"}, files={"t.yml": targets})
    assert run.exit_code == 1
    assert "duplicate key: flight-id is given twice" in run.errors[0]
    assert emulator.requests == []


def test_an_unquoted_long_submission_id_is_taken_as_written(
    emulator: Emulator, action: RunAction
) -> None:
    targets = f"targets:\n  - app-id: {APP_ID}\n    submission-id: {PUBLISHED}\n"
    run = action({"app-id": None, "targets": "t.yml"}, files={"t.yml": targets})
    assert run.exit_code == 0, run.stdout
    assert run.outputs["submission-id"] == PUBLISHED


# -- Data stays data (rule 8) -------------------------------------------------------------

HOSTILE_NAMES = [
    "::error::pwned",
    "  ::warning title=x::pwned",
    "ok ##[error]pwned",
    "[click](https://evil.example/x) ![i](https://evil.example/i.png) <b>bold</b> https://evil.example",
    "`code` | pipe",
]


def our_commands_only(stdout: str) -> list[str]:
    """Lines the runner would take for a command and that we did not mean as one."""
    # The runner parses `::` commands first: `##[` inside one of ours is its data.
    ours = ("::add-mask::", "::error title=", "::group::", "::endgroup::")
    return [
        line
        for line in stdout.splitlines()
        if not line.startswith(ours) and (line.lstrip().startswith("::") or "##[" in line)
    ]


def test_target_names_never_become_workflow_commands_or_live_markdown(
    emulator: Emulator, action: RunAction
) -> None:
    entries = "".join(
        f"  - name: {json.dumps(name)}\n    app-id: {APP_ID}\n"
        + f"    submission-id: '{index + 1}'\n"
        + (f"    flight-id: {FLIGHT_ID}\n" if index % 2 else "")
        for index, name in enumerate(HOSTILE_NAMES)
    )
    run = action({"app-id": None, "targets": "t.yml"}, files={"t.yml": "targets:\n" + entries})
    assert our_commands_only(run.stdout) == []
    for name in HOSTILE_NAMES:
        # Shown as written, in the summary as a code span (pipes escaped for the table).
        assert " ".join(name.split()).replace("|", "\\|") in run.summary
    # In the summary every name is inside a code span; outside code, no link, image or HTML
    # but the summary's own links (to Partner Center and the run, from checked IDs).
    summary = OUR_LINKS.sub("", run.summary)
    outside_code = _outside_code(summary)
    for live in ("](", "<b>", "https://evil", "![i]"):
        assert live not in outside_code, outside_code


def test_store_messages_never_become_workflow_commands(
    emulator: Emulator, action: RunAction
) -> None:
    message = (
        "::error::pwned\n::set-output name=result::halted ##[error]x [x](https://evil.example)"
    )
    emulator.add_fault(
        Fault(method="GET", path=ROLLOUT, status=400, body={"code": "Bad", "message": message})
    )
    run = action()
    assert run.exit_code == 1
    assert our_commands_only(run.stdout) == []
    assert "https://evil" not in _outside_code(run.summary)


def _outside_code(markdown: str) -> str:
    """The Markdown with fenced blocks and code spans removed."""
    kept: list[str] = []
    fence = ""
    for line in markdown.splitlines():
        if fence:
            if line.startswith(fence):
                fence = ""
            continue
        if line.startswith("```"):
            fence = line[: len(line) - len(line.lstrip("`"))]
            continue
        kept.append(re.sub(r"(`+)(.*?)\1", "", line.replace("\\|", "")))
    return "\n".join(kept)


# -- Secrets in disguise (rule 8) ----------------------------------------------------------


@pytest.mark.parametrize(
    "disguise",
    [
        pytest.param(lambda s: quote(s, safe=""), id="url-encoded"),
        pytest.param(quote_plus, id="form-encoded"),
        pytest.param(lambda s: " ".join(s.split()), id="whitespace-folded"),
    ],
)
def test_a_secret_in_disguise_never_shows(
    emulator: Emulator, action: RunAction, disguise: object
) -> None:
    secret = "Ab  c/d+e f~g=h&i"
    emulator.entra.client_secret = secret
    assert callable(disguise)
    echoed = disguise(secret)
    emulator.add_fault(
        Fault(
            method="POST",
            path=r"/oauth2/v2\.0/token$",
            status=400,
            body={
                "error": "invalid_client",
                "error_description": f"AADSTS7000215: Invalid client secret provided: {echoed}",
                "error_codes": [7000215],
            },
        )
    )
    run = action({"client-secret": secret})
    assert run.exit_code == 1
    assert echoed not in visible_text(run)
    assert "***" in run.stdout
