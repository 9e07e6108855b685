"""The deadline is absolute (rule 7a): no request, slow answer, file read or wait outlives
timeout-seconds, whatever a server or a file does.

The harness (`World`, `HostileServer`) is in tests/world.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable

import pytest

from store_emulator import Fault
from store_emulator.actions_runner import (
    ActionRun,
)

from .conftest import (
    APP_ID,
)
from .world import (
    APP,
    DEADLINE,
    STARTUP_SLACK,
    Handler,
    Incoming,
    Wire,
    World,
    describe,
    forward_everything,
    json_answer,
    many_apps,
    raw_response,
    results_of,
    traceback_free,
)

# 1. The deadline is absolute (rule 7a) ----------------------------------------------------

# How long a hostile answer keeps the connection busy: long enough that an overrun is
# plain, short enough that the test ends.
HOSTILE_SECONDS = float(os.environ.get("HOSTILE_SECONDS", "20"))


def _on_app_read(attack: Callable[[Incoming, Wire], None]) -> Handler:
    """Forward everything but the read of the app, which `attack` answers."""

    def handler(req: Incoming, wire: Wire) -> None:
        if req.method == "GET" and re.search(APP, req.path):
            attack(req, wire)
        else:
            forward_everything(req, wire)

    return handler


def trickle_headers(req: Incoming, wire: Wire) -> None:
    answer = wire.forward(req)
    until = time.monotonic() + HOSTILE_SECONDS
    head = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 1000
    rest = wire.trickle(head, every=0.2, until=until)
    wire.send(rest + b"\r\n" + answer.raw().split(b"\r\n", 1)[1])


def trickle_body(req: Incoming, wire: Wire) -> None:
    answer = wire.forward(req)
    raw = answer.raw(body=answer.body + b" " * 1000)  # JSON allows trailing whitespace
    head, _, body = raw.partition(b"\r\n\r\n")
    wire.send(head + b"\r\n\r\n")
    rest = wire.trickle(body, every=0.2, until=time.monotonic() + HOSTILE_SECONDS)
    wire.send(rest)


def endless_body(req: Incoming, wire: Wire) -> None:
    """A chunked body that does not end (for HOSTILE_SECONDS), 1 MB a second."""
    wire.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    chunk = b" " * 100_000
    until = time.monotonic() + HOSTILE_SECONDS
    while time.monotonic() < until and not wire.stopping.is_set():
        wire.send(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        wire.stopping.wait(0.1)
    wire.send(b"0\r\n\r\n")


def huge_body(req: Incoming, wire: Wire) -> None:
    """The real answer, padded to 300 MB with whitespace (valid JSON still), at 25 MB/s."""
    answer = wire.forward(req)
    blocks = 300
    head = raw_response(200, answer.headers, b"").replace(
        b"Content-Length: 0", b"Content-Length: %d" % (len(answer.body) + blocks * 2**20)
    )
    wire.send(head + answer.body)
    block = b" " * 2**20
    for _ in range(blocks):
        if wire.stopping.wait(0.04):
            return
        wire.send(block)


def slow_answer(req: Incoming, wire: Wire) -> None:
    """The field's 16-second GET of an app, longer than the whole deadline."""
    wire.stopping.wait(16.0)
    forward_everything(req, wire)


@pytest.mark.parametrize(
    "attack",
    [trickle_headers, trickle_body, endless_body, huge_body, slow_answer],
    ids=[
        "headers trickled a byte at a time",
        "body trickled a byte at a time",
        "endless chunked body",
        "300 MB body at 25 MB/s",
        "16 s answer to the app read",
    ],
)
def test_store_answer_cannot_outlive_the_deadline(
    world: World, attack: Callable[[Incoming, Wire], None]
) -> None:
    server = world.hostile(_on_app_read(attack))
    run = world.run({"timeout-seconds": f"{DEADLINE:g}"}, store=server)
    late = world.sent_after_deadline(DEADLINE)
    print(f"{attack.__name__}: {describe(run, DEADLINE)}; late requests: {late}")
    assert run.seconds <= DEADLINE + STARTUP_SLACK, describe(run, DEADLINE)
    assert late == [], late
    # Outputs and the summary are written, whatever the outcome.
    assert run.outputs["result"] in ("halted", "failed")
    assert run.summary.startswith("## ")


# Current main runs a minute or more here, beyond the suite's 120 s on a loaded machine.
@pytest.mark.timeout(400)
def test_many_targets_against_a_slow_store_keep_the_deadline(world: World) -> None:
    """100 targets (the most a file may hold); every Store answer takes 0.9 s."""

    def slow(req: Incoming, wire: Wire) -> None:
        wire.stopping.wait(0.9)
        forward_everything(req, wire)

    server = world.hostile(slow)
    timeout = 5.0
    run = world.run(
        {"app-id": None, "targets": "targets.yml", "timeout-seconds": f"{timeout:g}"},
        store=server,
        files={"targets.yml": many_apps(world.emulator, 100)},
        timeout=300,
    )
    late = world.sent_after_deadline(timeout)
    halted = sum(r["result"] == "halted" for r in results_of(run))
    print(
        f"100 slow targets: {describe(run, timeout)}; {len(late)} requests after the "
        f"deadline, {halted} halted; first late: {late[:1]}"
    )
    assert run.seconds <= timeout + STARTUP_SLACK, describe(run, timeout)
    assert late == [], f"{len(late)} requests after the deadline, e.g. {late[:3]}"
    assert len(results_of(run)) == 100


def _targets_run(world: World, path: str, timeout: float, harness: float) -> ActionRun | str:
    """A targets run, or what was left of it when the harness had to kill it."""
    try:
        return world.run(
            {"app-id": None, "targets": path, "timeout-seconds": f"{timeout:g}"}, timeout=harness
        )
    except Exception as error:  # subprocess.TimeoutExpired: the run never ended
        workdir = world.workdir / f"run{world.runs - 1}"
        outputs = (workdir / "set_output").read_text()
        summary = (workdir / "step_summary").read_text()
        return (
            f"{type(error).__name__}: no exit after {harness:g} s (killed); "
            f"outputs written: {bool(outputs)}, summary written: {bool(summary)}"
        )


def test_named_pipe_as_the_targets_file_keeps_the_deadline(world: World) -> None:
    """A FIFO that no one writes to: open() blocks until a writer comes."""
    os.mkfifo(world.next_workspace() / "targets.yml")
    run = _targets_run(world, "targets.yml", DEADLINE, harness=DEADLINE + 12)
    print(f"fifo: {run if isinstance(run, str) else describe(run, DEADLINE)}")
    assert not isinstance(run, str), run
    assert run.seconds <= DEADLINE + STARTUP_SLACK, describe(run, DEADLINE)
    assert run.exit_code == 1
    assert run.outputs["result"] == "failed"
    assert run.summary


def test_named_pipe_trickled_by_a_writer_keeps_the_deadline(world: World) -> None:
    """A FIFO whose writer sends a valid targets file a byte every 0.2 s."""
    fifo = world.next_workspace() / "targets.yml"
    os.mkfifo(fifo)
    content = f"targets:\n  - app-id: {APP_ID}\n".encode() + b"#" * 100 + b"\n"
    stop = threading.Event()

    def writer() -> None:
        with fifo.open("wb", buffering=0) as pipe:
            for byte in content:
                if stop.wait(0.2):
                    return
                with contextlib.suppress(BrokenPipeError):
                    pipe.write(bytes([byte]))

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        run = _targets_run(world, "targets.yml", DEADLINE, harness=120)
    finally:
        stop.set()
    print(f"trickled fifo: {run if isinstance(run, str) else describe(run, DEADLINE)}")
    assert not isinstance(run, str), run
    assert run.seconds <= DEADLINE + STARTUP_SLACK, describe(run, DEADLINE)
    assert world.sent_after_deadline(DEADLINE) == []


@pytest.mark.parametrize("kind", ["symlink to /dev/zero", "2 GB sparse file"])
def test_endless_or_huge_targets_file_is_refused_in_time(world: World, kind: str) -> None:
    workspace = world.next_workspace()
    if kind.startswith("symlink"):
        (workspace / "targets.yml").symlink_to("/dev/zero")
    else:
        with (workspace / "targets.yml").open("wb") as big:
            big.truncate(2 * 1024**3)
    run = _targets_run(world, "targets.yml", DEADLINE, harness=60)
    print(f"{kind}: {run if isinstance(run, str) else describe(run, DEADLINE)}")
    assert not isinstance(run, str), run
    assert run.seconds <= DEADLINE + STARTUP_SLACK
    assert run.exit_code == 1
    assert len(run.errors) == 1
    assert world.emulator.requests == []
    assert traceback_free(run)


# Current main runs a minute or more here, beyond the suite's 120 s on a loaded machine.
@pytest.mark.timeout(400)
def test_pathological_html_error_page_cannot_outlive_the_deadline(world: World) -> None:
    """A 503 whose HTML page opens <title> 20,000 times and never closes it (140 kB):
    the <title> regular expression backtracks quadratically."""
    world.emulator.add_fault(
        Fault(method="GET", path=APP, status=503, times=None, body="<title>" * 20_000)
    )
    run = world.run({"timeout-seconds": f"{DEADLINE:g}"}, timeout=350)
    print(f"html title regex: {describe(run, DEADLINE)}")
    assert run.seconds <= DEADLINE + STARTUP_SLACK, describe(run, DEADLINE)
    assert run.exit_code == 1


# Current main runs a minute or more here, beyond the suite's 120 s on a loaded machine.
@pytest.mark.timeout(400)
def test_pathological_entra_message_cannot_outlive_the_deadline(world: World) -> None:
    """Entra refuses with an AADSTS message holding a 40,000-space run: the AADSTS
    regular expression's lookahead rescans it at every position."""

    def entra(req: Incoming, wire: Wire) -> None:
        if req.path.endswith("/oauth2/v2.0/token"):
            description = "AADSTS7000215: Invalid client secret." + " " * 40_000 + "x"
            wire.send(
                json_answer(400, {"error": "invalid_client", "error_description": description})
            )
        else:
            forward_everything(req, wire)

    server = world.hostile(entra)
    run = world.run({"timeout-seconds": f"{DEADLINE:g}"}, authority=server, timeout=350)
    print(f"aadsts regex: {describe(run, DEADLINE)}")
    assert run.seconds <= DEADLINE + STARTUP_SLACK, describe(run, DEADLINE)
    assert run.exit_code == 1
    assert traceback_free(run)


# 1b. The deadline during sign-in -------------------------------------------------------------

SIGN_IN_CALLS = {
    "Entra discovery trickled": r"/v2\.0/\.well-known/openid-configuration$",
    "Entra token endpoint trickled": r"/oauth2/v2\.0/token$",
    "Entra token endpoint silent": r"/oauth2/v2\.0/token$",
    "GitHub OIDC endpoint trickled": r"^/github-oidc/token$",
}


@pytest.mark.parametrize("attack", list(SIGN_IN_CALLS))
def test_sign_in_cannot_outlive_the_deadline(world: World, attack: str) -> None:
    pattern = SIGN_IN_CALLS[attack]

    def handler(req: Incoming, wire: Wire) -> None:
        if not re.search(pattern, req.path):
            forward_everything(req, wire)
        elif attack.endswith("silent"):
            wire.stopping.wait(HOSTILE_SECONDS)
        else:
            trickle_headers(req, wire)

    server = world.hostile(handler)
    inputs: dict[str, str | None] = {"timeout-seconds": f"{DEADLINE:g}"}
    env: dict[str, str | None] = {}
    if attack.startswith("GitHub"):
        inputs["client-secret"] = None
        env = {
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{server.url}/github-oidc/token?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": world.emulator.oidc_request_token,
        }
    run = world.run(inputs, authority=server, env=env)
    late = world.sent_after_deadline(DEADLINE)
    print(f"{attack}: {describe(run, DEADLINE)}; late {late}")
    assert run.seconds <= DEADLINE + STARTUP_SLACK, describe(run, DEADLINE)
    assert late == []
    assert run.exit_code == 1
    assert run.outputs["result"] == "failed"
    assert "Rollout halt failed" in run.summary
    assert traceback_free(run)
