"""Every fault of every call ends as the contract says (rules 7 and 9): retried while it may
clear, one error that says what happened when it never does.

One row per (call, fault): the four Store calls (app and flight resolution, the rollout
read, the halt) and the three sign-in calls (Entra's OpenID configuration and token
endpoints, GitHub's OIDC endpoint). Each row ends in the contract's outcome:

* a fault that clears: the run halts (exit 0) and logs the wait as it starts
  (`<reason>; waiting … (attempt 2)`), and every retry it logs really is sent;
* a fault that never clears: the run fails (exit 1) with exactly one `::error title=…::`
  line naming what happened, and the outputs are written all the same;
* never a Python traceback, never a second halt after one took effect, and never a halt
  that took effect reported as failed. Every row says how many halts the Store saw.

Each row runs against its own emulator and in its own subprocess as GitHub's runner runs
it. Most of a row's time is spent waiting (backoff, Retry-After, hangs up to
timeout-seconds), so pytest-xdist runs several at a time. With HALT_ROLLOUT_FAULT_RESULTS
set to a folder, each row also writes what it saw there as a JSON line:
scripts/fault_table.py (`make fault-table`) runs this module so and writes the table of
docs/reliability.md from those lines.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from store_emulator import Emulator, Fault, Recorded
from store_emulator.actions_runner import run_action
from store_emulator.responses import Response
from store_emulator.step_results import ActionRun

from .conftest import APP_ID, FALLBACK, FLIGHT_ID, PUBLISHED, base_inputs

# Rows that clear get plenty of time; rows that never clear end at a short deadline.
CLEARS_TIMEOUT = 8.0
NEVER_TIMEOUT = 4.0  # the deadline counts the imports and sign-in too
# Stands for "an HTTP date three seconds from now", computed as the fault answers.
HTTP_DATE_SOON = "<http-date now+3s>"
HTTP_DATE_SECONDS = 3

Body = str | bytes | dict[str, Any] | None
WAIT = r"; waiting [\d.]+ s (?:before trying again|as Retry-After asks) \(attempt \d+\)"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # regular expression searched in the request path, as Fault takes it
    service: str  # "store", "entra" or "github"
    inputs: Mapping[str, str] = field(default_factory=dict)
    oidc: bool = False  # sign in with GitHub's OIDC token instead of a client secret


ENDPOINTS = {
    "app": Endpoint("GET", rf"^/v1\.0/my/applications/{APP_ID}$", "store"),
    "flight": Endpoint("GET", rf"/flights/{FLIGHT_ID}$", "store", inputs={"flight-id": FLIGHT_ID}),
    "rollout": Endpoint("GET", r"/packagerollout$", "store"),
    "halt": Endpoint("POST", r"/haltpackagerollout$", "store"),
    "discovery": Endpoint("GET", r"/v2\.0/\.well-known/openid-configuration$", "entra"),
    "token": Endpoint("POST", r"/oauth2/v2\.0/token$", "entra"),
    "oidc": Endpoint("GET", r"^/github-oidc/token$", "github", oidc=True),
}
SOURCE = {"store": "the Store", "entra": "Microsoft Entra ID", "github": "GitHub's OIDC endpoint"}
# What an error line must name, per service, besides the row's own words.
NAMED = {"store": (), "entra": ("Entra",), "github": ("OIDC",)}

HTML_PAGE = "<html><head><title>503 Service Unavailable</title></head><body>busy</body></html>"
ERROR_JSON: dict[str, dict[str, Any]] = {
    "store": {"code": "ServiceUnavailable", "message": "The service is temporarily unavailable."},
    "entra": {
        "error": "temporarily_unavailable",
        "error_description": "AADSTS90033: A transient error has occurred. Please try again.",
    },
    "github": {"message": "Server Error"},
}
THROTTLED_JSON: dict[str, dict[str, Any]] = {
    "store": {"statusCode": 429, "message": "Rate limit is exceeded."},
    "entra": {
        "error": "temporarily_unavailable",
        "error_description": "AADSTS50196: The server terminated an operation because it "
        "encountered a client request loop.",
    },
    "github": {"message": "API rate limit exceeded."},
}
IN_PROGRESS = {
    "isPackageRollout": True,
    "packageRolloutPercentage": 25.0,
    "packageRolloutStatus": "PackageRolloutInProgress",
    "fallbackSubmissionId": FALLBACK,
}
NOT_JSON = "<html><body>Please sign in to the proxy</body></html>"
# A 200 that parses but lacks what the action needs from that call.
LACKING: dict[str, dict[str, Any]] = {
    "app": {"id": APP_ID, "lastPublishedApplicationSubmission": {"resourceLocation": "x"}},
    "flight": {"flightId": FLIGHT_ID, "lastPublishedFlightSubmission": {"resourceLocation": "x"}},
    "rollout": {"isPackageRollout": True, "packageRolloutStatus": "PackageRolloutInProgress"},
    "halt": {"packageRolloutStatus": "PackageRolloutStopped"},
    "discovery": {"issuer": "https://login.microsoftonline.com/x/v2.0"},
    "token": {"token_type": "Bearer", "expires_in": 3599},
    "oidc": {"count": 1},
}


@dataclass(frozen=True)
class Row:
    """One fault on one call, and the outcome the contract asks for."""

    where: str  # a key of ENDPOINTS
    fault: str  # what goes wrong, in a few words (the test id and the docs)
    kind: str = "respond"
    status: int = 500
    body: Body = None
    headers: Mapping[str, str] = field(default_factory=dict)
    times: int | None = 1
    timeout: float = CLEARS_TIMEOUT
    expect: str = "halted"
    halts: tuple[int, int] = (1, 1)  # least and most halt POSTs the Store may see
    wait: str | None = None  # a regular expression the log must match (a wait, as it starts)
    min_gap: float = 0.0  # least seconds between the first two requests to the call
    error: tuple[str, ...] = ()  # what the one error line must contain
    also: tuple[Fault, ...] = ()  # further faults, for rows about what follows a fault
    # The halt took effect but the Store could not be read to confirm it: "unknown" is then
    # the honest answer, never "failed".
    unknowable: bool = False

    @property
    def id(self) -> str:
        return f"{self.where}: {self.fault}"

    @property
    def endpoint(self) -> Endpoint:
        return ENDPOINTS[self.where]

    def faults(self) -> list[Fault]:
        dated = HTTP_DATE_SOON in self.headers.values()
        main = (DatedFault if dated else Fault)(
            method=self.endpoint.method,
            path=self.endpoint.path,
            times=self.times,
            kind=self.kind,
            status=self.status,
            body=self.body,
            headers=dict(self.headers),
        )
        return [main, *self.also]


class DatedFault(Fault):
    """A fault whose HTTP-date headers are dated when it answers, not when it was added."""

    def response(self) -> Response:
        answer = super().response()
        soon = formatdate(time.time() + HTTP_DATE_SECONDS, usegmt=True)
        answer.headers = {
            name: soon if value == HTTP_DATE_SOON else value
            for name, value in answer.headers.items()
        }
        return answer


# The table ----------------------------------------------------------------------------


def _wait_for(where: str, status: int | None, *, retry_after: bool = False) -> str:
    """The wait line a row must log: the status (or a network failure) and the source."""
    source = re.escape(SOURCE[ENDPOINTS[where].service])
    reason = rf"\b{status} from {source}" if status else rf"talking to {source}"
    how = "as Retry-After asks" if retry_after else "before trying again"
    return rf"{reason}; waiting [\d.]+ s {how} \(attempt 2\)"


def _halts_when_cleared(where: str, kind: str, status: int) -> tuple[int, int]:
    """Halts seen when a fault on `where` clears: one, or two when the first never arrived."""
    if where != "halt" or kind in ("reset_after", "hang_after"):
        return (1, 1)
    if kind == "truncate" and status == 200:
        return (1, 1)  # the halt took effect; only its answer was cut
    return (2, 2)


def transient_rows() -> Iterator[Row]:
    """Faults that clear: the run must halt, after logging the wait."""
    for where, endpoint in ENDPOINTS.items():
        service = endpoint.service
        yield Row(
            where,
            "429 with Retry-After in seconds",
            status=429,
            headers={"Retry-After": "1"},
            body=THROTTLED_JSON[service],
            wait=_wait_for(where, 429, retry_after=True).replace(r"[\d.]+", r"1(?:\.0)?"),
            min_gap=1.0,
            halts=_halts_when_cleared(where, "respond", 429),
        )
        yield Row(
            where,
            "429 with Retry-After as an HTTP date",
            status=429,
            headers={"Retry-After": HTTP_DATE_SOON},
            body=None if service == "entra" else THROTTLED_JSON[service],
            wait=_wait_for(where, 429, retry_after=True),
            min_gap=1.0,
            halts=_halts_when_cleared(where, "respond", 429),
        )
        yield Row(
            where,
            "429 without Retry-After",
            status=429,
            body=THROTTLED_JSON[service],
            wait=_wait_for(where, 429),
            halts=_halts_when_cleared(where, "respond", 429),
        )
        yield Row(
            where,
            "connection reset before the request arrived",
            kind="reset_before",
            wait=_wait_for(where, None),
            halts=_halts_when_cleared(where, "reset_before", 0),
        )
        if where in ("halt", "token", "oidc"):  # the calls whose request has an effect
            yield Row(
                where,
                "connection reset after the request took effect",
                kind="reset_after",
                wait=_wait_for(where, None),
            )
        yield Row(
            where,
            "200 whose body is cut short",
            kind="truncate",
            status=200,
            wait=WAIT,
            halts=_halts_when_cleared(where, "truncate", 200),
        )
    yield Row(
        "app",
        "429 whose gateway message says when (no Retry-After)",
        status=429,
        body={"statusCode": 429, "message": "Rate limit is exceeded. Try again in 1 seconds."},
        wait=_wait_for("app", 429, retry_after=True),
        min_gap=1.0,
    )
    # Every 5xx with every kind of body, spread over the seven calls (each call gets
    # two or three different statuses and bodies).
    statuses = (500, 502, 503, 504)
    bodies = ("JSON", "HTML", "empty", "truncated")
    wheres = tuple(ENDPOINTS)
    for number in range(len(statuses) * len(bodies)):
        status, shape = statuses[number % 4], bodies[number // 4]
        where = wheres[number % len(wheres)]
        service = ENDPOINTS[where].service
        body: Body = {"JSON": ERROR_JSON[service], "HTML": HTML_PAGE, "empty": None}.get(
            shape, json.dumps(ERROR_JSON[service])
        )
        source = re.escape(SOURCE[service])
        reason = rf"(?:\b{status} from|talking to) {source}" if shape == "truncated" else None
        yield Row(
            where,
            f"{status} with {'truncated JSON' if shape == 'truncated' else shape} body",
            kind="truncate" if shape == "truncated" else "respond",
            status=status,
            body=body,
            wait=(
                rf"{reason}; waiting [\d.]+ s before trying again \(attempt 2\)"
                if reason
                else _wait_for(where, status)
            ),
            halts=_halts_when_cleared(where, "respond", status),
        )


def _never(where: str, fault: str, **kwargs: Any) -> Row:
    kwargs.setdefault("expect", "failed")
    return Row(where, fault, times=None, timeout=NEVER_TIMEOUT, **kwargs)


def permanent_rows() -> Iterator[Row]:
    """Faults that never clear: the run must fail, once, and say what happened. A halt
    that may have reached the Store (anything but a 429, which was never processed) is
    `unknown` at the deadline, never `failed` (rule 7a)."""
    never_statuses = (429, 500, 502, 503, 504, 429, 503)
    for (where, endpoint), status in zip(ENDPOINTS.items(), never_statuses, strict=True):
        service = endpoint.service
        named = NAMED[service]
        halt = where == "halt"
        store = ("MS-CorrelationId",) if service == "store" else ()
        reached = "unknown" if halt else "failed"
        yield _never(
            where,
            f"{status} on every attempt",
            expect=reached if status != 429 else "failed",
            status=status,
            body=(THROTTLED_JSON if status == 429 else ERROR_JSON)[service],
            # A 429 was never processed: resent at once. Any other status may have been:
            # read first, then resent, as long as time remains.
            halts=(1, 10) if halt else (0, 0),
            error=(*named, str(status), "timeout-seconds", *store),
        )
        yield _never(
            where,
            "connection reset on every attempt",
            expect=reached,
            kind="reset_before",
            halts=(1, 10) if halt else (0, 0),
            error=(*named, "could not be reached", "timeout-seconds"),
        )
        yield _never(
            where,
            "hang past the deadline",
            expect=reached,
            kind="hang",
            halts=(1, 1) if halt else (0, 0),
            error=(*named, "timeout-seconds"),
        )
        yield _never(
            where,
            "200 whose body is not JSON",
            expect=reached,
            status=200,
            body=NOT_JSON,
            halts=(1, 10) if halt else (0, 0),
            error=named,
        )
        yield _never(
            where,
            "200 that lacks the fields the action needs",
            expect=reached,
            status=200,
            body=LACKING[where],
            halts=(1, 10) if halt else (0, 0),
            error=named,
        )
    yield _never(
        "token",
        "hang after the token was issued",
        kind="hang_after",
        halts=(0, 0),
        error=("Entra", "timeout-seconds"),
    )


def halt_rows() -> Iterator[Row]:
    """What follows a halt whose answer was lost, garbled or refused."""
    # The first read (before the halt) is answered as the Store would; the faults after it
    # hit the read that confirms the halt.
    first_read = Fault(method="GET", path=r"/packagerollout$", status=200, body=IN_PROGRESS)
    read_503 = Fault(method="GET", path=r"/packagerollout$", status=503, body=ERROR_JSON["store"])
    yield Row(
        "halt",
        "200 not JSON once, then answered",
        status=200,
        body=NOT_JSON,
        wait=WAIT,
        halts=(2, 2),
    )
    yield Row(
        "halt",
        "200 lacking fields once, then answered",
        status=200,
        body=LACKING["halt"],
        wait=WAIT,
        halts=(2, 2),
    )
    yield Row(
        "halt",
        "connection reset after it took effect, on every attempt",
        kind="reset_after",
        times=None,
        wait=WAIT,
    )
    yield Row(
        "halt",
        "reset after it took effect, then a 503 on the confirming read",
        kind="reset_after",
        wait=WAIT,
        also=(first_read, read_503),
    )
    yield Row(
        "halt",
        "hang after it took effect, past the deadline",
        kind="hang_after",
        times=None,
        timeout=NEVER_TIMEOUT,
    )
    yield Row(
        "halt",
        "reset after it took effect, and the rollout can no longer be read",
        kind="reset_after",
        timeout=3.0,
        expect="unknown",
        also=(first_read, replace(read_503, times=None)),
        error=("Halt outcome unknown", "Partner Center"),
        unknowable=True,
    )


TRANSIENT = list(transient_rows())
PERMANENT = list(permanent_rows())
HALT = list(halt_rows())
# Already covered one-for-one by tests/test_action.py.
COVERED_ELSEWHERE = {
    "halt: 429 with Retry-After in seconds",  # test_429_waits_as_retry_after_asks_and_says_so
    "rollout: 429 with Retry-After as an HTTP date",  # test_retry_after_as_an_http_date
    "halt: connection reset before the request arrived",  # test_halt_dropped_before_it_...
    "halt: connection reset after the request took effect",  # test_halt_whose_answer_was_...
    "rollout: hang past the deadline",  # test_hung_store_ends_at_the_deadline
}


def params(rows: list[Row]) -> list[Any]:
    return [pytest.param(row, id=row.id) for row in rows if row.id not in COVERED_ELSEWHERE]


# Running the rows ----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    run: ActionRun
    requests: list[Recorded]
    rollout_status: str  # the target's packageRolloutStatus after the run

    def to(self, where: str) -> list[Recorded]:
        endpoint = ENDPOINTS[where]
        return [
            r
            for r in self.requests
            if r.method == endpoint.method and re.search(endpoint.path, r.path)
        ]

    @property
    def halts(self) -> list[Recorded]:
        return self.to("halt")


def run_row(row: Row, workdir: Path) -> Outcome:
    """Run the action against a fresh emulator with the row's faults."""
    with Emulator() as emu:
        emu.seed_demo()
        for fault in row.faults():
            emu.add_fault(fault)
        inputs = base_inputs(emu) | dict(row.endpoint.inputs)
        inputs["timeout-seconds"] = f"{row.timeout:g}"
        env: dict[str, str | None] = {"REQUESTS_CA_BUNDLE": emu.ca_path}
        if row.endpoint.oidc:
            del inputs["client-secret"]
            env["ACTIONS_ID_TOKEN_REQUEST_URL"] = emu.oidc_request_url
            env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = emu.oidc_request_token
        run = run_action(inputs, extra_env=env, workdir=workdir, timeout=60)
        flight = row.endpoint.inputs.get("flight-id")
        status = emu.rollout(APP_ID, PUBLISHED, flight)["packageRolloutStatus"]
        return Outcome(run, emu.requests, str(status))


# Set to a folder to have each row's outcome written there as a JSON line, for
# scripts/fault_table.py: HALT_ROLLOUT_FAULT_RESULTS=/tmp/rows pytest tests/test_faults.py
RESULTS_ENV = "HALT_ROLLOUT_FAULT_RESULTS"
ROWS = TRANSIENT + PERMANENT + HALT  # in the table's order


def logged_wait(run: ActionRun) -> str | None:
    """The first wait the run logged, without the target's name in front."""
    wait = re.search(
        rf"^(?:{re.escape(APP_ID)}(?: flight {FLIGHT_ID})?: )?(.*{WAIT})$", run.stdout, re.M
    )
    return wait.group(1) if wait else None


def note(row: Row, outcome: Outcome | None, verdict: str) -> None:
    """Write the row's outcome as a JSON line, when RESULTS_ENV asks for it."""
    folder = os.environ.get(RESULTS_ENV)
    if not folder:
        return
    run = outcome.run if outcome else None
    log = run.stdout + run.stderr if run else ""
    errors = run.errors if run else []
    line = {
        "order": ROWS.index(row),
        "id": row.id,
        "call": row.where,
        "fault": row.fault,
        "expect": row.expect,
        "halts_expected": list(row.halts),
        "ran": run is not None,
        "result": run.outputs.get("result") if run else None,
        "exit_code": run.exit_code if run else None,
        "traceback": "Traceback" in log,
        "crash": next((e for e in errors if "crashed" in e), None),
        "error": errors[0] if errors else None,
        "wait": logged_wait(run) if run else None,
        "halts": len(outcome.halts) if outcome else None,
        "seconds": run.seconds if run else None,
        "verdict": verdict,
    }
    # One file per xdist worker, so that lines from parallel processes never interleave.
    name = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with (Path(folder) / f"{name}.jsonl").open("a", encoding="utf-8") as results:
        results.write(json.dumps(line) + "\n")


# The checks ----------------------------------------------------------------------------


def applied(request: Recorded, row: Row) -> bool:
    """Whether this halt request took effect in the Store (the emulator applied it)."""
    if request.fault is None:
        return request.status == 200
    if request.fault == "truncate":
        return row.where != "halt" or row.body is None
    return request.fault in ("reset_after", "hang_after")


def check(row: Row, outcome: Outcome) -> None:
    """What every row must show, whatever its fault."""
    run = outcome.run
    log = run.stdout + run.stderr
    context = f"\n--- stdout ---\n{run.stdout}\n--- stderr ---\n{run.stderr}"
    assert "Traceback" not in log, "a Python traceback reached the log" + context
    assert "crashed" not in run.stdout, "the action crashed" + context

    # The outcome, in the exit code, the outputs and the annotations.
    result = run.outputs.get("result")
    assert result == row.expect, f"result={result}, expected {row.expect}" + context
    assert run.exit_code == (0 if row.expect == "halted" else 1), "exit code" + context
    [record] = json.loads(run.outputs["results"])
    assert record["result"] == row.expect
    assert run.summary.strip(), "the job summary is written whatever happens"
    if row.expect == "halted":
        assert run.errors == [], "an error line in a run that halted" + context
        assert run.outputs["status"] == "PackageRolloutStopped"
        assert outcome.rollout_status == "PackageRolloutStopped"
    else:
        assert len(run.errors) == 1, f"{len(run.errors)} error lines, not one" + context
        [error] = run.errors
        assert error.startswith("::error title="), error
        missing = [words for words in row.error if words not in error]
        assert not missing, f"{missing} not in {error!r}"
        assert record["error"], "a failed target's record says why"

    # Halts: how many, never one after a halt took effect, and a read before any resend
    # that might follow a halt which reached the Store.
    halts = outcome.halts
    least, most = row.halts
    assert least <= len(halts) <= most, [(r.status, r.fault) for r in halts]
    took_effect = [n for n, request in enumerate(halts) if applied(request, row)]
    if took_effect:
        assert took_effect[0] == len(halts) - 1, "a halt was sent after one took effect"
        assert outcome.rollout_status == "PackageRolloutStopped"
        if not row.unknowable:
            assert row.expect == "halted", "a halt that took effect was reported as failed"
    for first, second in itertools.pairwise(halts):
        if first.status != 429:
            assert any(
                r.method == "GET"
                and r.path.endswith("/packagerollout")
                and first.started < r.started < second.started
                for r in outcome.requests
            ), "a halt was resent without reading the rollout first"
    if not halts:
        assert outcome.rollout_status == "PackageRolloutInProgress"


def check_waits(row: Row, outcome: Outcome) -> None:
    """A fault that clears: the wait is logged as it starts, and each retry is really sent."""
    run = outcome.run
    assert row.wait is not None
    found = re.search(row.wait, run.stdout) is not None
    assert found, f"no wait logged as “{readable(row.wait)}”:\n{run.stdout}"
    if row.where != "halt":
        waits = len(re.findall(WAIT, run.stdout))
        calls = len(outcome.to(row.where))
        sent = calls == waits + 1
        assert sent, (
            f"{waits} wait(s) logged, {calls} request(s) reached {row.where}:\n{run.stdout}"
        )
    if row.min_gap:
        first, second = outcome.to(row.where)[:2]
        gap = second.started - first.started
        assert gap >= row.min_gap - 0.05, f"retried after {gap:.2f} s, before Retry-After"


def readable(pattern: str) -> str:
    """A wait-line pattern as a person reads it: `429 from the Store; waiting N s …`."""
    text = pattern.replace(r"[\d.]+", "N").replace(r"(?:\.0)?", "").replace(r"\b", "")
    text = re.sub(r"\(\?:([^|)]*)\|([^)]*)\)", r"\1 or \2", text)
    return re.sub(r"\\(.)", r"\1", text)


def verify(row: Row, workdir: Path, *, waits: bool) -> Outcome:
    """Run a row and check its outcome; note what it saw and the verdict for the table."""
    try:
        outcome = run_row(row, workdir)
    except Exception as error:
        note(row, None, f"error: {type(error).__name__}: {error}")
        raise
    try:
        check(row, outcome)
        if waits:
            check_waits(row, outcome)
    except Exception as failure:
        words = (str(failure).splitlines() or [""])[0].rstrip(": ")
        if not isinstance(failure, AssertionError):
            words = f"{type(failure).__name__}: {words}"
        note(row, outcome, f"fails: {words}")
        raise
    note(row, outcome, "pass")
    return outcome


@pytest.mark.parametrize("row", params(TRANSIENT))
def test_a_fault_that_clears_ends_halted(row: Row, tmp_path: Path) -> None:
    verify(row, tmp_path, waits=True)


@pytest.mark.parametrize("row", params(PERMANENT))
def test_a_fault_that_never_clears_fails_once_and_says_what(row: Row, tmp_path: Path) -> None:
    outcome = verify(row, tmp_path, waits=False)
    # Deadline-bound rows end near timeout-seconds, not at the runner's own limit.
    assert outcome.run.seconds < row.timeout + 10


@pytest.mark.parametrize("row", params(HALT))
def test_a_halt_is_sent_again_only_when_it_did_not_take_effect(row: Row, tmp_path: Path) -> None:
    outcome = verify(row, tmp_path, waits=row.wait is not None)
    if row.unknowable:
        assert outcome.rollout_status == "PackageRolloutStopped"
        assert len(outcome.halts) == 1


def test_the_table_covers_every_call_and_fault() -> None:
    """Each call has each kind of fault, and every 5xx is tried with every kind of body."""
    rows = ROWS
    for where in ENDPOINTS:
        faults = {row.fault for row in rows if row.where == where}
        for words in (
            "429 with Retry-After in seconds",
            "429 with Retry-After as an HTTP date",
            "429 without Retry-After",
            "connection reset before the request arrived",
            "connection reset on every attempt",
            "hang past the deadline",
            "200 whose body is not JSON",
            "200 that lacks the fields the action needs",
            "200 whose body is cut short",
        ):
            assert words in faults, (where, words)
        assert any(f.startswith(("500", "502", "503", "504")) for f in faults), where
    combos = {row.fault for row in rows if row.fault[:3] in ("500", "502", "503", "504")}
    for status in ("500", "502", "503", "504"):
        for body in ("JSON body", "HTML body", "empty body", "truncated JSON body"):
            assert any(c.startswith(status) and c.endswith(body) for c in combos), (status, body)
    assert len({row.id for row in rows}) == len(rows), "row ids are unique"
