"""No crash (rule 9): no traceback for any answer or input, and a defect in one target never
costs the others their results.

"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from store_emulator import Emulator, Fault, demo
from store_emulator.actions_runner import run_action

from .conftest import (
    APP_ID,
    CONTRACT_TARGETS,
    PUBLISHED,
    base_inputs,
)
from .world import (
    APP,
    DEADLINE,
    HALT,
    ROLLOUT,
    STARTUP_SLACK,
    Incoming,
    Wire,
    World,
    answers_always,
    applied_halt,
    describe,
    forward_everything,
    injected_commands,
    json_answer,
    live_markdown,
    results_of,
    traceback_free,
)

# 2. No crash, and one target's defect never costs the others (rule 9) --------------------

DEEP_JSON = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("status", "where"),
    [(200, "rollout read"), (503, "rollout read error body"), (200, "halt answer")],
)
def test_deeply_nested_json_from_the_store_is_not_a_crash(
    world: World, status: int, where: str
) -> None:
    method, path = ("POST", HALT) if where == "halt answer" else ("GET", ROLLOUT)
    world.emulator.add_fault(Fault(method=method, path=path, status=status, body=DEEP_JSON))
    run = world.run({"timeout-seconds": "5"})
    print(f"deep JSON, {status} {where}: {describe(run)}")
    assert traceback_free(run), run.stdout[-800:]
    assert results_of(run) != []


def test_deeply_nested_json_answer_to_a_halt_that_took_effect(world: World) -> None:
    world.emulator.add_fault(applied_halt(world.emulator, 200, body=DEEP_JSON))
    run = world.run({"timeout-seconds": "5"})
    stopped = world.emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"]
    print(f"deep JSON after the halt took effect: {describe(run)}; Store: {stopped}")
    assert traceback_free(run), run.stdout[-600:]
    assert stopped == "PackageRolloutStopped"
    assert run.outputs["result"] == "halted"


CONTRACT_TARGETS_FILE = CONTRACT_TARGETS


@pytest.mark.parametrize(
    "defect",
    ["deeply nested JSON", "Retry-After: 1e400"],
)
def test_one_targets_defect_never_costs_the_others_their_results(world: World, defect: str) -> None:
    path = rf"/applications/{demo.OTHER_APP}/submissions/{demo.OTHER_SUBMISSION}/packagerollout$"
    if defect == "deeply nested JSON":
        fault = Fault(method="GET", path=path, status=200, body=DEEP_JSON)
    else:
        fault = Fault(method="GET", path=path, status=429, headers={"Retry-After": "1e400"})
    world.emulator.add_fault(fault)
    run = world.run(
        {"app-id": None, "targets": "targets.yml", "timeout-seconds": "10"},
        files={"targets.yml": CONTRACT_TARGETS_FILE},
    )
    records = results_of(run)
    halted_in_store = [
        world.emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"],
        world.emulator.rollout(APP_ID, PUBLISHED, demo.FLIGHT_ID)["packageRolloutStatus"],
    ]
    print(
        f"one target's {defect}: {describe(run)}; results: {len(records)}; the two others "
        f"in the Store: {halted_in_store}"
    )
    assert traceback_free(run), run.stdout[-600:]
    assert [r["result"] for r in records] == ["halted", "halted", "failed"]
    assert "Contoso Desktop" in run.summary


RETRY_AFTERS = [
    ("1e400", None),  # a float that overflows to infinity
    ("inf", None),
    ("1e308", None),
    ("99999999999999999999", None),
    ("Fri, 31 Dec 9999 23:59:59 GMT", None),  # year 9999
    ("Sat, 31 Dec 99999 23:59:59 GMT", None),  # beyond what datetime holds
    ("-1", 1),  # a wait in the past: try again at once
    ("nan", 1),  # not a number: as if none was sent
]


@pytest.mark.parametrize(("retry_after", "times"), RETRY_AFTERS, ids=[r for r, _ in RETRY_AFTERS])
def test_any_retry_after_from_the_store_is_not_a_crash(
    world: World, retry_after: str, times: int | None
) -> None:
    world.emulator.add_fault(
        Fault(method="GET", path=APP, status=429, times=times, headers={"Retry-After": retry_after})
    )
    run = world.run({"timeout-seconds": f"{DEADLINE:g}"})
    print(f"Retry-After {retry_after}: {describe(run, DEADLINE)}")
    assert traceback_free(run), run.errors
    assert run.seconds <= DEADLINE + STARTUP_SLACK
    if times is None:
        assert run.exit_code == 1
        assert len(run.errors) == 1
        assert "timeout-seconds" in run.errors[0]
    else:
        assert run.outputs["result"] == "halted", describe(run)


def test_endless_wait_in_the_gateways_message_is_not_a_crash(world: World) -> None:
    """No Retry-After, but 'Try again in <250 digits> seconds.' in the message (more
    digits would not survive the 300-character cap on messages)."""
    message = f"Rate limit is exceeded. Try again in {'9' * 250} seconds."
    answers_always(world.emulator, "GET", APP, 429, {"statusCode": 429, "message": message})
    run = world.run({"timeout-seconds": f"{DEADLINE:g}"})
    print(f"Try again in 9x250 seconds: {describe(run, DEADLINE)}")
    assert traceback_free(run), run.errors
    assert run.exit_code == 1
    assert len(run.errors) == 1


def test_any_retry_after_from_entra_is_not_a_crash(world: World) -> None:
    def entra(req: Incoming, wire: Wire) -> None:
        if req.path.endswith("/oauth2/v2.0/token"):
            body = {
                "error": "temporarily_unavailable",
                "error_description": "AADSTS90033: A transient error has occurred.",
            }
            wire.send(json_answer(429, body, extra=(("Retry-After", "1e400"),)))
        else:
            forward_everything(req, wire)

    server = world.hostile(entra)
    run = world.run({"timeout-seconds": f"{DEADLINE:g}"}, authority=server)
    print(f"Entra Retry-After 1e400: {describe(run, DEADLINE)}")
    assert traceback_free(run), run.errors
    assert run.exit_code == 1
    assert len(run.errors) == 1


@pytest.mark.parametrize("timeout", ["1e308", "1e20", "99999999999"])
def test_huge_timeout_seconds_is_not_a_crash(world: World, timeout: str) -> None:
    run = world.run({"timeout-seconds": timeout})
    print(f"timeout-seconds {timeout}: {describe(run)}")
    assert traceback_free(run), run.errors
    assert run.outputs.get("result") == "halted", describe(run)


@pytest.mark.parametrize("timeout", ["0.000001", "5e-324"])
def test_tiny_timeout_seconds_sends_nothing_after_the_deadline(world: World, timeout: str) -> None:
    run = world.run({"timeout-seconds": timeout})
    store = world.emulator.store_requests
    print(
        f"timeout-seconds {timeout}: {describe(run)}; {len(world.emulator.requests)} requests "
        f"({len(store)} to the Store, {len(world.emulator.halt_requests)} halts)"
    )
    assert traceback_free(run)
    assert store == [], [f"{r.method} {r.path}" for r in store]
    assert run.exit_code == 1
    assert run.outputs["result"] == "failed"


# 9. Rollout fields the Store controls ------------------------------------------------------


def _rollout_answer(world: World, body: str) -> None:
    """The rollout read and the halt both answer `body` (raw JSON text)."""
    for method, path in (("GET", ROLLOUT), ("POST", HALT)):
        world.emulator.add_fault(
            Fault(
                method=method,
                path=path,
                status=200,
                body=body.encode(),
                headers={"Content-Type": "application/json"},
            )
        )


def _rollout_json(status: str, percentage: str, fallback: str) -> str:
    return (
        f'{{"isPackageRollout": true, "packageRolloutPercentage": {percentage}, '
        f'"packageRolloutStatus": {json.dumps(status)}, "fallbackSubmissionId": '
        f"{json.dumps(fallback)}}}"
    )


@pytest.mark.parametrize(
    "percentage",
    ["1" + "0" * 400, "1e400", "NaN", "-Infinity"],
    ids=["integer of 401 digits", "1e400", "NaN", "-Infinity"],
)
def test_any_rollout_percentage_is_not_a_crash_and_results_stay_json(
    world: World, percentage: str
) -> None:
    _rollout_answer(world, _rollout_json("PackageRolloutStopped", percentage, demo.FALLBACK))
    run = world.run()

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    try:  # as JSON.parse (GitHub's fromJSON) reads it: no NaN, no Infinity
        json.loads(run.outputs.get("results") or "[]", parse_constant=refuse)
        results_json = "valid"
    except ValueError as error:
        results_json = f"invalid ({error})"
    print(
        f"percentage {percentage[:12]}: {describe(run)}; results output {results_json}; "
        f"rollout-percentage {run.outputs.get('rollout-percentage')!r}"
    )
    assert traceback_free(run), run.errors
    assert results_json == "valid"
    assert run.exit_code in (0, 1)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "PackageRolloutInProgress\n::error::pwned"),
        ("fallback", "1212922684621243058\n::warning::pwned"),
        ("fallback", "1` [click me](https://evil.example/x) `2"),
        ("fallback", "1 | forged | cells | 2"),
    ],
    ids=[
        "newline in status",
        "newline in fallback",
        "backtick link in fallback",
        "pipes in fallback",
    ],
)
def test_rollout_fields_stay_data(world: World, field: str, value: str) -> None:
    status = value if field == "status" else "PackageRolloutInProgress"
    fallback = value if field == "fallback" else demo.FALLBACK
    world.emulator.add_fault(
        Fault(
            method="GET",
            path=ROLLOUT,
            status=200,
            body=json.loads(_rollout_json(status, "25", fallback)),
        )
    )
    stopped = _rollout_json("PackageRolloutStopped", "0", fallback)
    world.emulator.add_fault(Fault(method="POST", path=HALT, status=200, body=json.loads(stopped)))
    run = world.run()
    injected = injected_commands(run.stdout)
    live = live_markdown(run.summary)
    rows = [line for line in run.summary.splitlines() if line.startswith("| ")]
    cells = {line.count(" | ") for line in rows if "---" not in line}
    print(f"{field} {value!r}: {describe(run)}; commands {injected}; live {live}; cells {cells}")
    assert injected == [], injected
    assert live == [], live
    assert len(cells) == 1, rows


# Headers the server controls -------------------------------------------------------------


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


def test_malformed_oidc_request_url_is_a_clear_error(emulator: Emulator, tmp_path: Path) -> None:
    """OIDC sign-in (no client-secret) with an ACTIONS_ID_TOKEN_REQUEST_URL that does not
    parse: checking its proxy raises ValueError outside any handler."""
    # Not the `action` fixture: it asserts no traceback itself, before we can say more.
    result = run_action(
        {k: v for k, v in base_inputs(emulator).items() if k != "client-secret"},
        workdir=tmp_path,
        extra_env={
            "REQUESTS_CA_BUNDLE": emulator.ca_path,
            "ACTIONS_ID_TOKEN_REQUEST_URL": "https://[broken/token",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runner-request-token-123",
        },
        timeout=60,
    )
    print(describe(result))
    assert "Traceback" not in result.stdout + result.stderr, result.stdout
    assert "crashed" not in result.stdout, result.stdout
    assert result.outputs["result"] == "failed"


# Answers broken below HTTP, each as urllib3 or http.client would describe it in Python's
# words (`invalid literal for int() with base 16: b'zz'`, `IncompleteRead(0 bytes read)`).
BROKEN_BELOW_HTTP = {
    "chunk size that is no number": (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"\r\nzz\r\n{}\r\n0\r\n\r\n"
    ),
    "chunked body cut short": (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"\r\n10\r\n{}"
    ),
    "gzip body that is not gzip": (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: 4\r\n\r\nabcd"
    ),
    "status line that is no HTTP": b"HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\n{}",
}
PYTHONS_WORDS = re.compile(r"invalid literal|base 16|\bb'|bytes read|[A-Z][a-z]+[A-Z]\w*\(")


@pytest.mark.parametrize("raw", list(BROKEN_BELOW_HTTP.values()), ids=list(BROKEN_BELOW_HTTP))
def test_an_answer_broken_below_http_is_told_in_words(world: World, raw: bytes) -> None:
    """Rule 9 (what a user sees): an answer broken below HTTP is said in a responder's
    words, never in Python's or urllib3's (their messages, classes and byte strings)."""

    def handler(req: Incoming, wire: Wire) -> None:
        if re.search(ROLLOUT, req.path) and req.method == "GET":
            wire.send(raw)
        else:
            forward_everything(req, wire)

    run = world.run({"timeout-seconds": "4"}, store=world.hostile(handler))
    print(describe(run))
    assert traceback_free(run), run.stdout[-800:]
    assert run.exit_code == 1
    [error] = run.errors
    assert "could not be reached" in error or "answer" in error, error
    assert not PYTHONS_WORDS.findall(run.stdout + run.summary), error


# Answers of Entra's token endpoint in its JSON but not its shape: MSAL and azure-identity
# would say them in Python's words, or stumble on them.
ODD_TOKEN_ANSWERS: dict[str, Any] = {
    "a token that is a number": {"access_token": 5, "token_type": "Bearer", "expires_in": 3599},
    "an expiry in words": {"access_token": "x" * 40, "token_type": "Bearer", "expires_in": "soon"},
    "no fields at all": {},
    "a description that is a list": {"error": {"x": 1}, "error_description": ["a"]},
    "JSON nested too deeply": "[" * 5000 + "]" * 5000,
}
PYTHON_SAYS = re.compile(
    r"\w+Error\b|invalid literal|recursion depth|has no attribute|\bNone\b|\['|crashed"
)


@pytest.mark.parametrize("status", [200, 400])
@pytest.mark.parametrize("body", list(ODD_TOKEN_ANSWERS.values()), ids=list(ODD_TOKEN_ANSWERS))
def test_an_odd_answer_from_entra_is_told_in_words(world: World, body: Any, status: int) -> None:
    """Rule 9: a token answer in JSON but not Entra's shape is an unusable or refused
    sign-in in a responder's words: never a crash, a class name or Python's own message."""
    world.emulator.add_fault(
        Fault(method="POST", path=r"/token$", status=status, body=body, times=None)
    )
    run = world.run({"timeout-seconds": "6"})
    print(describe(run))
    assert traceback_free(run), run.stdout[-800:]
    assert run.exit_code == 1
    [error] = run.errors
    assert "Entra" in error, error
    assert not PYTHON_SAYS.findall(run.stdout + run.summary), error
    assert world.emulator.store_requests == []
