"""The worst day in the incident room: the version guard, the incident record, and the
documented workflows, attacked (an attacker's third round).

Each test states a promise of the contract (v1.2) or of the README's examples and tries
to break it. Six broke one when written (a submission over the transport's old 1 MiB cap,
the upload URL echoed by a later error, the emergency-stop workflow's own summary step
and its `cat` of the results, a `results` too large for one environment variable, Slack
mentions in the chat example, an empty `?` in GITHUB_SERVER_URL); they hold now.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import yaml

from halt_rollout.halt import Failure, Result, TargetResult
from halt_rollout.inputs import Target
from halt_rollout.step_outputs import outputs
from store_emulator import Emulator, Fault, demo
from store_emulator.actions_runner import run_action
from store_emulator.resources import IN_PROGRESS, STOPPED
from store_emulator.runner_layout import Job
from store_emulator.step_results import ActionRun

from .conftest import APP_ID, PUBLISHED, RunAction, base_inputs
from .conftest import visible_text as visible
from .test_cancellation import Running, start  # noqa: F401 (the fixture)
from .test_data_stays_data import assert_renders_as_text

ROOT = Path(__file__).resolve().parent.parent
SUBMISSION = r"/submissions/\d+$"
HALT = r"/haltpackagerollout$"
ROLLOUT = r"/packagerollout$"
MIB = 1024 * 1024
DEFAULT_JOB = Job()


def records(run: ActionRun | Running) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = json.loads(run.outputs["results"])
    return result


def assert_no_upload_url(emu: Emulator, text: str) -> None:
    for form in (emu.upload_signature, quote(emu.upload_signature, safe=""), "sig="):
        assert form not in text
    assert "blob.core.windows.net" not in text.lower()


def log_lines(run: ActionRun) -> list[str]:
    return [line for line in run.stdout.splitlines() if not line.startswith("::add-mask::")]


# 1. The version guard ------------------------------------------------------------------


def _big_resource(emu: Emulator, packages: int, languages: int) -> dict[str, Any]:
    """A real-sized app submission: many packages and a listing in many languages, each
    with a description of the Store's maximum length (10,000 characters)."""
    resource = emu.state.submission(APP_ID, PUBLISHED)
    template = dict(resource["applicationPackages"][0])
    template["capabilities"] = ["runFullTrust", "internetClient", "privateNetworkClientServer"]
    resource["applicationPackages"] = [
        {**template, "id": str(10**18 + i), "version": demo.VERSION} for i in range(packages)
    ]
    resource["listings"] = {
        f"lang-{n:03d}": {
            "baseListing": {
                "title": "Contoso App",
                "description": "A fine application. " * 500,
                "releaseNotes": "Fixes. " * 200,
                "features": ["A feature described at length." * 6] * 20,
            }
        }
        for n in range(languages)
    }
    return resource


def test_a_real_sized_submission_resource_passes_the_guard(
    action: RunAction, emulator: Emulator
) -> None:
    """The guard halts when a package carries the version. The submission resource is the
    whole submission (listings in every language, every package), not a few hundred bytes:
    one over MAX_ANSWER_BYTES (1 MiB) is taken for a network failure, retried until the
    deadline, and the stop fails although the version is right. Observed: result failed
    ("Store unreachable ... larger than 1048576 bytes"), nothing halted."""
    resource = _big_resource(emulator, packages=1000, languages=60)
    body = json.dumps(resource)
    assert len(body) > MIB
    emulator.add_fault(Fault(method="GET", path=SUBMISSION, times=None, status=200, body=body))
    run = action({"expected-version": demo.VERSION, "timeout-seconds": "10"})
    assert run.outputs["result"] == "halted", records(run)[0].get("error")
    assert_no_upload_url(emulator, visible(run))


@pytest.mark.parametrize(
    ("where", "method", "status"),
    [("halt", "POST", 409), ("halt", "POST", 404), ("rollout", "GET", 404)],
)
def test_the_upload_url_echoed_by_a_later_error_is_hidden(
    action: RunAction, emulator: Emulator, where: str, method: str, status: int
) -> None:
    """fileUploadUrl is never printed, on any path. With expected-version the action has
    read it (it holds the resource), but does not redact it: when the Store's error on
    another request of the same run echoes it in `message`, that message is quoted.
    Observed: the signed URL in the error annotation, the summary and `results`."""
    url = emulator.state.submission(APP_ID, PUBLISHED)["fileUploadUrl"]
    message = {"code": "InvalidState", "message": f"Submission upload {url} is locked"}
    path = HALT if where == "halt" else ROLLOUT
    emulator.add_fault(Fault(method=method, path=path, times=None, status=status, body=message))
    run = action({"expected-version": demo.VERSION, "timeout-seconds": "8"})
    assert run.outputs["result"] == "failed"
    assert_no_upload_url(emulator, visible(run))


@pytest.mark.parametrize(
    "answer",
    [
        (429, {"statusCode": 429, "message": "{url} Try again in 1 seconds."}),
        (503, {"code": "x", "message": "Account service is experiencing issue {url}"}),
        (404, {"code": "ResourceNotFound", "message": "no blob {url}"}),
        (401, {"error": {"code": "Unauthorized", "message": "{url}"}}),
        (302, "moved"),
    ],
    ids=["429", "503-account", "404", "401-nested", "302-location"],
)
def test_the_guard_read_never_shows_the_upload_url_whatever_the_error(
    action: RunAction, emulator: Emulator, answer: tuple[int, Any]
) -> None:
    status, body = answer
    url = emulator.state.submission(APP_ID, PUBLISHED)["fileUploadUrl"]
    if isinstance(body, dict):
        body = json.loads(json.dumps(body).replace("{url}", url))
    emulator.add_fault(
        Fault(
            method="GET",
            path=SUBMISSION,
            times=None,
            status=status,
            body=body,
            headers={"Location": url},
        )
    )
    run = action({"expected-version": demo.VERSION, "timeout-seconds": "4"})
    assert run.outputs["result"] == "failed"
    assert emulator.halt_requests == []
    assert_no_upload_url(emulator, visible(run))


@pytest.mark.parametrize("casing", ["FileUploadUrl", "FILEUPLOADURL", "fileuploadurl"])
def test_the_upload_url_under_other_casings_and_fields_is_not_printed(
    action: RunAction, emulator: Emulator, casing: str
) -> None:
    resource = emulator.state.submission(APP_ID, PUBLISHED)
    url = resource.pop("fileUploadUrl")
    resource[casing] = url
    resource["applicationPackages"][0]["fileName"] = url
    resource["applicationPackages"][0]["id"] = url
    resource["applicationPackages"].append({"version": url})  # long: never a version
    emulator.add_fault(Fault(method="GET", path=SUBMISSION, times=None, status=200, body=resource))
    run = action({"expected-version": "9.9.9.9"})
    assert run.outputs["result"] == "failed"
    assert emulator.halt_requests == []
    assert_no_upload_url(emulator, visible(run))


HOSTILE_PACKAGES = {
    "numbers": [{"version": 1.4}, {"version": 1}, {"version": None}, {"version": True}],
    "nested": [{"version": {"version": demo.VERSION}}, {"version": [demo.VERSION]}],
    "duplicates": [{"version": "9.0.0.0"}] * 500 + [{"version": "9.0.0.0 "}] * 500,
    "markdown": [
        {"version": "[x](https://evil.example)"},
        {"version": "::error::forged"},
        {"version": "<img src=x>"},
        {"version": "##[warning]forged"},
        {"version": "1.4.2.0\u202e"},
        {"version": "`` `x` ``"},
    ],
    "not a list": {"version": demo.VERSION},
    "1000 distinct": [{"version": f"{i}.{'9' * 50}.{i}"} for i in range(1000)],
}


@pytest.mark.parametrize("case", list(HOSTILE_PACKAGES))
def test_hostile_versions_fail_send_nothing_and_stay_data(
    action: RunAction, emulator: Emulator, case: str
) -> None:
    resource = emulator.state.submission(APP_ID, PUBLISHED)
    resource["applicationPackages"] = HOSTILE_PACKAGES[case]
    emulator.add_fault(Fault(method="GET", path=SUBMISSION, times=None, status=200, body=resource))
    run = action({"expected-version": demo.VERSION})
    assert (run.exit_code, run.outputs["result"]) == (1, "failed")
    assert emulator.halt_requests == []
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == IN_PROGRESS
    assert_renders_as_text(run.summary)
    assert len(run.summary.encode()) < MIB
    lines = log_lines(run)
    assert not [line for line in lines if line.lstrip().startswith("::error::forged")]
    # Inside an annotation's message (the line is already a `::` command) it is inert.
    assert not [line for line in lines if "##[warning]forged" in line and line[:2] != "::"]
    assert "\u202e" not in visible(run)
    if case == "duplicates":
        assert records(run)[0]["versions"] == ["9.0.0.0"]


def test_the_guard_names_the_versions_found_in_the_error(action: RunAction) -> None:
    run = action({"expected-version": "1.4.1"})
    record = records(run)[0]
    assert record["result"] == "failed"
    assert demo.VERSION in record["error"]
    assert demo.VERSION in run.summary
    assert demo.VERSION in run.errors[0]


@pytest.mark.parametrize("hung", [SUBMISSION, ROLLOUT], ids=["submission-hangs", "rollout-hangs"])
def test_one_parallel_read_hanging_ends_by_the_deadline_and_sends_nothing(
    action: RunAction, emulator: Emulator, hung: str
) -> None:
    emulator.add_fault(Fault(method="GET", path=hung, kind="hang", seconds=60, times=None))
    started = time.monotonic()
    run = action({"expected-version": demo.VERSION, "timeout-seconds": "5"})
    took = time.monotonic() - started
    assert took < 5 + 6, took
    assert run.outputs["result"] == "failed"
    assert emulator.halt_requests == []
    assert [r for r in emulator.store_requests if r.method == "POST"] == []
    assert "timeout-seconds" in records(run)[0]["error"] or "time" in records(run)[0]["error"]


def test_a_guard_read_throttled_past_the_deadline_sends_no_halt(
    action: RunAction, emulator: Emulator
) -> None:
    emulator.add_fault(
        Fault(
            method="GET",
            path=SUBMISSION,
            times=None,
            status=429,
            body={"statusCode": 429, "message": "Rate limit is exceeded."},
            headers={"Retry-After": "600"},
        )
    )
    run = action({"expected-version": demo.VERSION, "timeout-seconds": "4"})
    assert run.outputs["result"] == "failed"
    assert emulator.halt_requests == []


def test_cancelled_while_the_guard_read_hangs(
    start: Any,  # noqa: F811 (the fixture)
    emulator: Emulator,
) -> None:
    """Rule 10 while the main thread waits on the guard's future: within 2 s, outputs, one
    cancellation error, and no halt."""
    emulator.add_fault(Fault(method="GET", path=SUBMISSION, kind="hang", seconds=60, times=None))
    running = start({"expected-version": demo.VERSION, "timeout-seconds": "60"})
    running.wait_for(
        lambda: (
            any(r.method == "GET" and re.search(SUBMISSION, r.path) for r in emulator.requests)
            and any(
                r.method == "GET" and r.path.endswith("packagerollout") for r in emulator.requests
            )
        ),
        "both reads",
    )
    time.sleep(0.5)
    took = running.signal_and_time(signal.SIGINT)
    assert took < 2.5, took
    assert running.process.returncode == 1
    assert running.outputs["result"] == "failed"
    assert emulator.halt_requests == []
    assert any("cancelled" in line for line in running.error_lines)


def test_all_flights_guard_read_failing_for_one_flight_halts_no_other_version(
    action: RunAction, emulator: Emulator
) -> None:
    emulator.seed_whole_app()
    first = next(f for f in demo.WHOLE_FLIGHTS if f.in_progress and f.published)
    emulator.add_fault(
        Fault(
            method="GET",
            path=rf"/flights/{first.flight_id}/submissions/\d+$",
            times=None,
            status=500,
            body="boom",
        )
    )
    run = action(
        {
            "app-id": demo.WHOLE_APP_ID,
            "all-flights": "true",
            "expected-version": demo.WHOLE_VERSION,
            "timeout-seconds": "20",
        }
    )
    by_name = {r["name"]: r for r in records(run)}
    assert by_name[first.name]["result"] == "failed"
    assert run.exit_code == 1
    assert first.published is not None
    state = emulator.rollout(demo.WHOLE_APP_ID, first.published, first.flight_id)
    assert state["packageRolloutStatus"] == first.status
    for flight in demo.WHOLE_FLIGHTS:
        if flight.published and flight.version != demo.WHOLE_VERSION:
            assert by_name[flight.name]["result"] != "halted"


# 2. Who, why, and what happens next ----------------------------------------------------


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
    from .world import outside_code

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
        emulator.add_fault(
            Fault(method="POST", path=HALT, status=409, times=None, body={"code": "InvalidState"})
        )
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


# 3. The README's and the workflows' examples ------------------------------------------


def _workflow_step(path: Path, name: str) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            if step.get("name") == name:
                return dict(step)
    raise AssertionError(f"no step {name} in {path}")


def _readme_yaml_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [m.group(2) for m in re.finditer(r"(?ms)^( *)```ya?ml\n(.*?)^\1```", text)]


def _run_scripts(node: Any) -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if (key == "run" and isinstance(value, str)) or (
                key == "script" and isinstance(value, str)
            ):
                found.append(value)
            else:
                found += _run_scripts(value)
    elif isinstance(node, list):
        for item in node:
            found += _run_scripts(item)
    return found


def test_no_example_puts_an_expression_inside_a_script() -> None:
    sources = [*_readme_yaml_blocks()]
    sources += [p.read_text(encoding="utf-8") for p in (ROOT / ".github/workflows").glob("*.yml")]
    scripts = []
    for source in sources:
        scripts += _run_scripts(yaml.safe_load(textwrap_dedent(source)))
    assert scripts
    assert [s for s in scripts if "${{" in s] == []


def textwrap_dedent(text: str) -> str:
    return textwrap.dedent(text)


def _bash_step(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-c", script],
        env={"PATH": os.environ["PATH"], **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _dry_run_with_status(emulator: Emulator, tmp_path: Path, status: str) -> ActionRun:
    emulator.add_fault(
        Fault(
            method="GET",
            path=ROLLOUT,
            times=None,
            status=200,
            body={
                "isPackageRollout": True,
                "packageRolloutPercentage": 25,
                "packageRolloutStatus": status,
                "fallbackSubmissionId": "0",
            },
        )
    )
    return run_action(
        {**base_inputs(emulator), "dry-run": "true", "reason": "[r](https://evil.example)"},
        extra_env={"REQUESTS_CA_BUNDLE": emulator.ca_path},
        workdir=tmp_path / "run",
    )


def test_emergency_stop_writes_no_store_data_into_the_summary(
    emulator: Emulator, tmp_path: Path
) -> None:
    """It once wrote the `status` output (the Store's packageRolloutStatus, any printable
    text) between backticks into the job summary: a backtick in it made a live image and
    link. The action's own summary says it all; no step of the workflow adds to it."""
    hostile = "InProgress` ![p](https://evil.example/p.png) [x](https://evil.example) `"
    run = _dry_run_with_status(emulator, tmp_path, hostile)
    assert run.outputs["status"] == hostile
    assert_renders_as_text(run.summary)
    workflow = yaml.safe_load((ROOT / ".github/workflows/emergency-stop.yml").read_text())
    scripts = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert not any("GITHUB_STEP_SUMMARY" in script for script in scripts)


def test_emergency_stop_keeps_the_results_without_printing_them(
    emulator: Emulator, tmp_path: Path
) -> None:
    """The artifact step `cat`s halt-results.json into the log. The action's own log keeps
    `##[` inert (redact.inert: the runner reads the older command syntax anywhere in a
    line); this step prints the reason and the Store's messages (in `results`) raw.
    Observed: a log line holding `##[error]forged` (a forged annotation)."""
    reason = "##[error]forged from the reason"
    step = _workflow_step(ROOT / ".github/workflows/emergency-stop.yml", "Keep the results")
    results = json.dumps([{"name": "a", "result": "failed", "error": "##[warning]forged Store"}])
    env = {
        "RESULTS": results,
        "RESULT": "failed",
        "REASON": reason,
        "GITHUB_ACTOR": "octocat",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_RUN_ID": "1",
    }
    done = _bash_step(step["run"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "halt-results.json").read_text())
    assert record["reason"] == reason  # the JSON itself is built safely
    assert record["results"][0]["error"] == "##[warning]forged Store"
    assert [line for line in done.stdout.splitlines() if "##[" in line] == []


def _telling_the_team_script() -> str:
    for block in _readme_yaml_blocks():
        if "Write the chat message" in block:
            steps = yaml.safe_load(textwrap_dedent(block))
            for step in steps:
                if step.get("name") == "Write the chat message":
                    return str(step["run"])
    raise AssertionError("no 'Write the chat message' example in README.md")


HOSTILE_TEXT = "\"quoted\" $(touch pwned) `touch pwned2` \\ \n'single' {x} \u202e"


def test_telling_the_team_builds_valid_json_from_hostile_outputs(tmp_path: Path) -> None:
    results = json.dumps(
        [{"name": HOSTILE_TEXT, "result": "failed"}, {"name": None, "result": "halted"}]
    )
    done = _bash_step(
        _telling_the_team_script(),
        {
            "RESULT": "failed",
            "RESULTS": results,
            "REASON": HOSTILE_TEXT,
            "RUN_URL": "https://github.com/o/r/actions/runs/1",
            "RUNNER_TEMP": str(tmp_path),
        },
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    message = json.loads((tmp_path / "slack.json").read_text())
    assert HOSTILE_TEXT in message["text"]
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "pwned2").exists()


def test_telling_the_team_takes_the_largest_results_the_action_makes(tmp_path: Path) -> None:
    """Linux refuses any one environment string over 128 KiB (MAX_ARG_STRLEN), and the
    README passes `results` to the chat step as one: the action keeps it under that. Built
    here by the action's own report from 1000 failed targets with long Store messages."""
    failure = Failure("Halt refused by the Store (HTTP 409)", "Halt refused: " + "m" * 1500)
    many = [
        TargetResult(Target(APP_ID, name=f"Contoso {n}"), Result.FAILED, f"{n}", None, failure)
        for n in range(1000)
    ]
    results = outputs(many)["results"]
    assert 100_000 < len(results.encode()) < 128 * 1024
    done = _bash_step(
        _telling_the_team_script(),
        {
            "RESULT": "failed",
            "RESULTS": results,
            "REASON": "r",
            "RUN_URL": "https://github.com/o/r/actions/runs/1",
            "RUNNER_TEMP": str(tmp_path),
        },
        tmp_path,
    )
    assert done.returncode == 0, done.stderr


def test_telling_the_team_chat_message_carries_no_live_mentions_or_links(
    tmp_path: Path,
) -> None:
    """The chat message's text is Slack mrkdwn: `<!channel>` notifies everyone and
    `<https://x|label>` is a disguised link. The README builds the JSON safely, but the
    reason and the targets' names (a flight's friendlyName comes from the Store) go in as
    they are. Observed: `<!channel>` and `<https://evil.example|Partner Center>` in the
    payload's text."""
    reason = "<!channel> see <https://evil.example|Partner Center>"
    results = json.dumps([{"name": "<!here>", "result": "halted"}])
    done = _bash_step(
        _telling_the_team_script(),
        {
            "RESULT": "halted",
            "RESULTS": results,
            "REASON": reason,
            "RUN_URL": "https://github.com/o/r/actions/runs/1",
            "RUNNER_TEMP": str(tmp_path),
        },
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    text = json.loads((tmp_path / "slack.json").read_text())["text"]
    assert "<!" not in text
    assert "<https://evil.example" not in text


def test_callers_grant_what_the_called_workflow_asks() -> None:
    called = yaml.safe_load((ROOT / ".github/workflows/halt-rollout.yml").read_text())
    asked = called["jobs"]["halt"]["permissions"]
    for block in _readme_yaml_blocks():
        if "halt-rollout.yml@" not in block:
            continue
        workflow = yaml.safe_load(block)
        for job in workflow["jobs"].values():
            if "halt-rollout.yml@" in str(job.get("uses", "")):
                granted = job.get("permissions", workflow.get("permissions", {}))
                for scope, level in asked.items():
                    assert granted.get(scope) == level or granted.get(scope) == "write", scope


def test_emergency_stop_run_name_reason_is_an_expression_not_a_script() -> None:
    workflow = (ROOT / ".github/workflows/emergency-stop.yml").read_text()
    parsed = yaml.safe_load(workflow)
    assert "inputs.reason" in parsed["run-name"]
    # The reason reaches scripts only through env.
    for script in _run_scripts(parsed):
        assert "inputs." not in script


def test_results_after_a_halt_keep_the_rollout_stopped(
    action: RunAction, emulator: Emulator
) -> None:
    run = action({"expected-version": demo.VERSION, "reason": "r"})
    assert records(run)[0]["status"] == STOPPED
