"""The worst day at the edges, an attacker's fourth round: cancellation at phase
boundaries, late signals, signal storms, the command line into a closed pipe, proxies
chosen by conflicting variables, tiny deadlines, astral names against GitHub's limits,
and the runner's files sharing one path.

Each test asserts a promise of the contract (v1.2). Three broke one when written (a
signal while the summary was written exited 1 with no error; `--json` into a closed pipe
printed a traceback; an answer too large was retried as an unreachable Store until the
deadline); they hold now.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from store_emulator import Emulator, Fault
from store_emulator.actions_runner import runner_environment
from store_emulator.step_results import parse_file_command

from . import test_cancellation
from .conftest import APP_ID, PUBLISHED, base_inputs
from .connect_proxy import ConnectProxy
from .test_cancellation import (
    CANCEL_SECONDS,
    HALT,
    Running,
    halt_held_back,
    requests_after,
)
from .test_deadline import proxied
from .world import (
    STARTUP_SLACK,
    AppliedFault,
    Incoming,
    Wire,
    World,
    command_line,
    describe,
    forward_everything,
    many_apps,
    outputs_utf16_size,
    pipe_no_one_reads,
    results_of,
    run_entrypoint,
    traceback_free,
)

MIB = 1024 * 1024
# Rule 10's fixture: the entrypoint started in a runner's environment, to be signalled.
start = test_cancellation.start
CONFLICT = {
    "code": "InvalidState",
    "message": "The submission is not in a state where its rollout can be halted",
}


def no_traceback(running: Running) -> bool:
    text = running.stdout + "".join(running.errors)
    return "Traceback" not in text and "crashed" not in text


def cancel_errors(running: Running) -> list[str]:
    return [e for e in running.error_lines if e.startswith("::error title=Run cancelled::")]


# Rule 10 at each phase boundary --------------------------------------------------------------


def test_cancel_during_the_409_reread_wait_ends_in_time_and_says_failed(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """The Store refused the halt (409); the rollout still reads in progress, so the action
    waits 1, 2, 3 s for a rival's halt. SIGTERM during that wait: nothing more is sent,
    and the truth is `failed` (the Store refused; nothing took effect)."""
    emulator.add_fault(Fault(method="POST", path=HALT, status=409, body=CONFLICT, times=None))
    running = start()
    running.wait_for(lambda: "reading it again in" in running.stdout, "the re-read wait")
    signalled = time.monotonic()
    took = running.signal_and_time(signal.SIGTERM)
    print(f"409 re-read wait: ended {took:.2f} s after SIGTERM")

    assert took <= CANCEL_SECONDS, running.stdout
    assert running.process.returncode == 1
    assert no_traceback(running)
    assert requests_after(emulator, signalled) == []
    assert running.outputs["result"] == "failed"
    assert len(cancel_errors(running)) == 1, running.error_lines
    assert "Run cancelled" in running.summary
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] != "PackageRolloutStopped"


def test_rival_halt_landing_during_the_409_reread_is_already_halted(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """409, the first re-read still in progress, then another responder's halt lands: a
    rollout that ends up stopped is never reported failed."""
    emulator.add_fault(Fault(method="POST", path=HALT, status=409, body=CONFLICT, times=None))
    running = start()
    running.wait_for(lambda: "reading it again in 1 s" in running.stdout, "the first wait")
    emulator.state.halt(APP_ID, PUBLISHED)  # the rival's halt, from Partner Center
    running.process.wait(30)
    for reader in running.readers:
        reader.join(5)

    assert running.process.returncode == 0, running.stdout
    assert running.outputs["result"] == "already-halted"
    assert running.error_lines == []
    assert "someone else" in running.stdout


def test_cancel_during_the_flight_listing_keeps_the_apps_halt(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """all-flights: the app's own rollout is halted while the flight listing hangs; SIGINT
    then. The app's halt stands, the listing is a `failed` result, one error."""
    for number in range(3):
        emulator.add_flight(APP_ID, f"00000000-0000-0000-0000-{number:012d}", name=f"f{number}")
    emulator.add_fault(
        Fault(method="GET", path=r"/listflights", kind="hang", seconds=60, times=None)
    )
    running = start({"all-flights": "true"})
    running.wait_for(
        lambda: (
            any("listflights" in r.path for r in emulator.requests) and bool(emulator.halt_requests)
        ),
        "the listing and the app's halt",
    )
    running.wait_for(lambda: ": halted" in running.stdout, "the app's halt confirmed")
    took = running.signal_and_time(signal.SIGINT)
    print(f"listing paging: ended {took:.2f} s after SIGINT")

    assert took <= CANCEL_SECONDS, running.stdout
    assert running.process.returncode == 1
    assert no_traceback(running)
    records = json.loads(running.outputs["results"])
    by_name = {r["name"]: r["result"] for r in records}
    print(by_name)
    assert f"flights of {APP_ID}" in by_name
    assert by_name[f"flights of {APP_ID}"] == "failed"
    assert "halted" in by_name.values()
    assert len(cancel_errors(running)) == 1, running.error_lines
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == "PackageRolloutStopped"


def test_cancel_during_the_version_guards_read_sends_nothing(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    emulator.add_fault(
        Fault(method="GET", path=rf"/submissions/{PUBLISHED}$", kind="hang", seconds=60)
    )
    running = start({"expected-version": "1.0.0.0"})
    running.wait_for(
        lambda: any(r.path.endswith(f"/submissions/{PUBLISHED}") for r in emulator.requests),
        "the guard's read",
    )
    took = running.signal_and_time(signal.SIGTERM)
    print(f"version guard read: ended {took:.2f} s after SIGTERM")

    assert took <= CANCEL_SECONDS
    assert running.process.returncode == 1
    assert no_traceback(running)
    assert emulator.halt_requests == []
    assert running.outputs["result"] == "failed"
    assert len(cancel_errors(running)) == 1, running.error_lines


def test_cancel_while_resolving_with_a_store_that_holds_every_request_like_the_runner(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """The runner's sequence: SIGINT; SIGTERM 7.5 s later; SIGKILL 2.5 s after that. The
    Store holds every request. The run must be over well before the SIGTERM."""
    emulator.add_fault(Fault(path=r"^/v1\.0/my/", kind="hang", seconds=60, times=None))
    running = start()
    running.wait_for(lambda: bool(emulator.store_requests), "a held Store request")
    sent = time.monotonic()
    os.kill(running.process.pid, signal.SIGINT)
    try:
        running.process.wait(7.5)
        how = "after SIGINT"
    except subprocess.TimeoutExpired:
        os.kill(running.process.pid, signal.SIGTERM)
        try:
            running.process.wait(2.5)
            how = "after SIGTERM"
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait()
            how = "killed"
    took = time.monotonic() - sent
    for reader in running.readers:
        reader.join(5)
    print(f"held Store: ended {how}, {took:.2f} s after SIGINT")

    assert how == "after SIGINT"
    assert took <= CANCEL_SECONDS
    assert running.process.returncode == 1
    assert running.outputs["result"] == "failed"
    assert emulator.halt_requests == []
    assert len(cancel_errors(running)) == 1


def test_signal_storm_ends_at_once_without_a_traceback(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """Ten signals, SIGINT and SIGTERM alternating, within 50 ms, while a halt is in flight."""
    halt_held_back(emulator)
    running = start()
    running.wait_for(lambda: bool(emulator.halt_requests), "halt request")
    sent = time.monotonic()
    for number in range(10):
        try:
            os.kill(running.process.pid, signal.SIGINT if number % 2 == 0 else signal.SIGTERM)
        except ProcessLookupError:
            break
        time.sleep(0.005)
    try:
        running.process.wait(30)
    finally:
        if running.process.poll() is None:
            running.process.kill()
    took = time.monotonic() - sent
    for reader in running.readers:
        reader.join(5)
    print(f"storm: ended {took:.2f} s after the first signal, exit {running.process.returncode}")

    assert took <= CANCEL_SECONDS
    assert running.process.returncode == 1  # not killed by a signal's default action
    assert no_traceback(running)
    # Either the second signal ended it at once, or the first had already written all.
    ended_at_once = "received again: ending now" in running.stdout
    assert ended_at_once or len(cancel_errors(running)) == 1, running.stdout


def test_a_signal_after_the_results_still_says_the_run_was_cancelled(
    emulator: Emulator, start: Callable[..., Running], tmp_path: Path
) -> None:
    """The halt is confirmed, the results and annotations logged, the outputs written;
    the summary is a named pipe nobody reads, so writing it takes its half second. A
    SIGINT then: the run exits 1, so the step fails, but no `::error` says why (rule 10:
    one `::error` saying the run was cancelled; rule 9: exit 0 when every target ended
    halted). Whichever way it goes, the exit code and the log must agree."""
    with pipe_no_one_reads(tmp_path, full=True) as pipe:
        running = start(extra={"GITHUB_STEP_SUMMARY": str(pipe)})
        output = Path(running.env["GITHUB_OUTPUT"])
        running.wait_for(
            lambda: output.exists() and "halted" in output.read_text(encoding="utf-8"),
            "the outputs written",
        )
        took = running.signal_and_time(signal.SIGINT)
    print(
        f"late SIGINT: exit {running.process.returncode} after {took:.2f} s; "
        f"errors {running.error_lines}; result {running.outputs['result']!r}"
    )

    assert took <= CANCEL_SECONDS
    assert no_traceback(running)
    assert running.outputs["result"] == "halted"
    if running.process.returncode == 1:
        # A failed step must say why: the one error about the cancellation.
        assert len(cancel_errors(running)) == 1, running.stdout
    else:
        assert running.process.returncode == 0


# The command line ------------------------------------------------------------------------------


def test_cli_json_into_a_closed_pipe_prints_no_traceback(emulator: Emulator) -> None:
    """`python -m halt_rollout --json | head -c 10`: standard output's reader is gone
    before the results are printed. The halts stand, stderr states them, no traceback."""
    workdir = Path(emulator.ca_path).parent
    targets = workdir / "targets.yml"
    targets.write_text(many_apps(emulator, 60), encoding="utf-8")
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {
        **os.environ,
        "REQUESTS_CA_BUNDLE": emulator.ca_path,
        "AZURE_CLIENT_SECRET": emulator.client_secret,
    }
    for name in [n for n in env if n.startswith(("GITHUB_", "INPUT_"))]:
        del env[name]
    command = command_line(emulator, "--targets", str(targets), "--json")
    try:
        done = subprocess.run(
            command,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    print(f"exit {done.returncode}; stderr tail: {done.stderr[-600:]}")

    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode in (0, 1)
    assert len(emulator.halt_requests) == 60


# GitHub's limits with astral characters --------------------------------------------------------


@pytest.mark.timeout(400)
def test_astral_flight_names_keep_githubs_limits(world: World) -> None:
    """Flight names of astral characters (two UTF-16 units, four UTF-8 bytes each): the
    outputs stay under 1 MB counted in UTF-16 and the summary under 1 MiB, rows left out
    whole with a line that says how many."""
    emu = world.emulator
    app = "9NASTRAL0001"
    emu.add_app(app, last_published="1152921504600000001")
    emu.set_rollout(app, "1152921504600000001")
    # 600 of them: a page of 100 flights (JSON-escaped, 12 bytes each) stays under the
    # 1 MiB the action takes of an answer; 1200 flights overflow both of GitHub's limits.
    name = "\U0001f6d1" * 600
    for number in range(1200):
        emu.add_flight(app, f"00000000-0000-0000-0000-{number:012d}", name=f"{number}{name}")
    run = world.run({"app-id": app, "all-flights": "true", "timeout-seconds": "170"}, timeout=240)
    records = results_of(run)
    summary_bytes = len(run.summary.encode())
    summary_utf16 = len(run.summary.encode("utf-16-le"))
    outputs_utf16 = outputs_utf16_size(run.outputs)
    print(
        f"{describe(run)}; {len(records)} records kept; summary {summary_bytes} bytes "
        f"({summary_utf16} UTF-16 bytes); outputs {outputs_utf16} UTF-16 bytes"
    )
    assert traceback_free(run)
    assert run.exit_code == 0
    assert summary_bytes < MIB
    assert outputs_utf16 < 1_000_000
    assert "left out" in run.summary
    assert any("Results output shortened" in e for e in run.stdout.splitlines())
    # The log states every target's result.
    stated = run.stdout.split("\nResults:\n", 1)[1].splitlines()
    assert sum(line.startswith("  ") for line in stated) == 1201


def test_an_answer_too_large_is_said_once_not_retried_until_the_deadline(world: World) -> None:
    """A listing page larger than any answer the action takes (16 MiB) is no network error:
    the Store answered, and asking again gets the same answer. It once was retried as a
    "connection failure" until timeout-seconds ran out, then reported as "could not be
    reached". Now it is an unusable answer, said at once; the app's own halt stands."""
    emu = world.emulator
    app = "9NASTRAL0002"
    emu.add_app(app, last_published="1152921504600000002")
    emu.set_rollout(app, "1152921504600000002")
    emu.add_fault(
        Fault(method="GET", path="listflights", kind="huge", status=200, size=20 * MIB, times=None)
    )
    run = world.run({"app-id": app, "all-flights": "true", "timeout-seconds": "25"}, timeout=60)
    listings = [r for r in world.emulator.requests if "listflights" in r.path]
    print(f"{describe(run, 25)}; {len(listings)} listing requests")
    assert traceback_free(run)
    results = {r["name"]: r["result"] for r in results_of(run)}
    assert results[f"flights of {app}"] == "failed"
    assert results[app] == "halted"
    assert not any("could not be reached" in error for error in run.errors), run.errors
    assert len(listings) == 1
    assert run.seconds < 15, describe(run, 25)


# Proxies ---------------------------------------------------------------------------------------


def test_lowercase_https_proxy_that_stalls_wins_over_uppercase_and_keeps_the_deadline(
    world: World,
) -> None:
    """https_proxy (lower case, a proxy that never answers CONNECT) and HTTPS_PROXY (upper
    case, one that passes) disagree. Whichever is taken, the deadline holds."""
    with ConnectProxy("stall") as stalled, ConnectProxy("pass") as passing:
        env = proxied(stalled.url, "https_proxy", HTTPS_PROXY=passing.url)
        run = world.run({"timeout-seconds": "3"}, env=env, timeout=40)
        late = world.sent_after_deadline(3)
        print(
            f"{describe(run, 3)}; stalled saw {len(stalled.connects)}, "
            f"passing saw {len(passing.connects)}; late {late}"
        )
    assert run.seconds <= 3 + STARTUP_SLACK, describe(run, 3)
    assert late == []
    assert traceback_free(run)
    assert run.outputs["result"] in ("halted", "failed")
    if run.outputs["result"] == "failed":
        assert world.emulator.halt_requests == []


@pytest.mark.parametrize("no_proxy", ["127.0.0.0/8", "*", "127.0.0.1:{port}"])
def test_no_proxy_forms_bypass_a_stalled_proxy_or_keep_the_deadline(
    world: World, no_proxy: str
) -> None:
    port = world.emulator.url.rsplit(":", 1)[1]
    with ConnectProxy("stall") as proxy:
        env = proxied(proxy.url, NO_PROXY=no_proxy.format(port=port))
        run = world.run({"timeout-seconds": "3"}, env=env, timeout=40)
        print(f"NO_PROXY={no_proxy}: {describe(run, 3)}; proxy saw {proxy.targets}")
    assert run.seconds <= 3 + STARTUP_SLACK
    assert traceback_free(run)
    if proxy.targets:
        assert run.outputs["result"] == "failed"
    else:
        assert run.outputs["result"] == "halted"


@pytest.mark.parametrize("timeout", ["0.5", "1"])
def test_tiny_timeout_through_a_trickling_proxy(world: World, timeout: str) -> None:
    with ConnectProxy("trickle-accept", every=0.2) as proxy:
        run = world.run({"timeout-seconds": timeout}, env=proxied(proxy.url), timeout=40)
        late = world.sent_after_deadline(float(timeout))
        print(f"timeout {timeout}: {describe(run, float(timeout))}; late {late}")
    assert run.seconds <= float(timeout) + STARTUP_SLACK
    assert late == []
    assert traceback_free(run)
    assert run.outputs["result"] == "failed"
    assert run.summary.startswith("## ")


def test_a_halt_sent_through_a_proxy_to_a_store_that_then_trickles_is_unknown_not_failed(
    world: World,
) -> None:
    """Rule 7a: the halt went through the tunnel and reached the Store (it took effect);
    from then on every answer trickles in past the deadline, the confirming read too. A
    halt sent but not confirmed is `unknown`, never `failed`."""
    halted = threading.Event()

    def store(req: Incoming, wire: Wire) -> None:
        if halted.is_set() or (req.method == "POST" and req.path.endswith("haltpackagerollout")):
            halted.set()
            answer = wire.forward(req).raw()
            wire.trickle(answer, every=0.2, until=time.monotonic() + 20)
        else:
            forward_everything(req, wire)

    server = world.hostile(store)
    with ConnectProxy("pass") as proxy:
        run = world.run(
            {"timeout-seconds": "4", "store-api-url": server.url}, env=proxied(proxy.url)
        )
    stopped = world.emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"]
    print(f"{describe(run, 4)}; the Store's rollout is {stopped}")
    assert traceback_free(run)
    assert run.seconds <= 4 + STARTUP_SLACK
    assert stopped == "PackageRolloutStopped"
    assert run.outputs["result"] == "unknown", describe(run)
    assert world.sent_after_deadline(4) == []


# The runner's files sharing one path ---------------------------------------------------------


def _env_for(emulator: Emulator, tmp_path: Path) -> dict[str, str]:
    return runner_environment(
        base_inputs(emulator), tmp_path / "w", extra={"REQUESTS_CA_BUNDLE": emulator.ca_path}
    )


def test_outputs_and_summary_at_one_path_keep_the_result(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = _env_for(emulator, tmp_path)
    env["GITHUB_STEP_SUMMARY"] = env["GITHUB_OUTPUT"]
    done = run_entrypoint(env)
    text = Path(env["GITHUB_OUTPUT"]).read_text(encoding="utf-8")
    print(f"exit {done.returncode}; file {len(text)} chars")
    assert "Traceback" not in done.stdout + done.stderr
    assert f"{APP_ID}: halted" in done.stdout
    assert done.returncode == 0
    # The outputs come first, whole: a reader of the outputs finds them.
    head = text.split("## ", 1)[0]
    assert parse_file_command(head)["result"] == "halted"


def test_summary_symlinked_to_the_outputs_keeps_the_result(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = _env_for(emulator, tmp_path)
    link = tmp_path / "summary-link"
    link.symlink_to(env["GITHUB_OUTPUT"])
    env["GITHUB_STEP_SUMMARY"] = str(link)
    done = run_entrypoint(env)
    assert "Traceback" not in done.stdout + done.stderr
    assert f"{APP_ID}: halted" in done.stdout
    assert done.returncode == 0


def test_outputs_file_replaced_by_a_directory_mid_run(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """While the halt is under way, GITHUB_OUTPUT becomes a directory: the halt stands,
    the step fails with an error that says so, and the log states the result."""
    emulator.add_fault(Fault(method="POST", path=HALT, kind="delay", seconds=1.5))
    running = start()
    running.wait_for(lambda: bool(emulator.halt_requests), "halt request")
    output = Path(running.env["GITHUB_OUTPUT"])
    output.unlink()
    output.mkdir()
    running.process.wait(30)
    for reader in running.readers:
        reader.join(5)
    print(running.error_lines)

    assert running.process.returncode == 1
    assert no_traceback(running)
    assert f"{APP_ID}: halted" in running.stdout
    [error] = running.error_lines
    assert error.startswith("::error title=Outputs not written::")
    assert "halts themselves stand" in error
    assert "Rollout halted" in running.summary


def test_a_storm_of_targets_outputs_written_while_cancelled(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """100 targets, each halt held back: SIGINT once they are all in flight. Every one is
    `unknown`, all within two seconds."""
    targets = many_apps(emulator, 100)
    halt_held_back(emulator)
    running = start({"app-id": "", "targets": "targets.yml"}, files={"targets.yml": targets})
    running.wait_for(lambda: len(emulator.halt_requests) >= 4, "halts in flight", 60)
    took = running.signal_and_time(signal.SIGINT)
    records = json.loads(running.outputs["results"])
    counts: dict[str, int] = {}
    for record in records:
        counts[record["result"]] = counts.get(record["result"], 0) + 1
    print(f"100 targets: ended {took:.2f} s after SIGINT; {counts}")

    assert took <= CANCEL_SECONDS
    assert len(records) == 100
    assert counts.get("unknown", 0) == len(emulator.halt_requests)
    assert len(cancel_errors(running)) == 1
    assert threading.active_count() >= 1


# Retry-After that straddles the deadline ---------------------------------------------------------


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_gateway_error_hiding_a_halt_with_retry_after_past_the_deadline_is_never_failed(
    world: World, status: int
) -> None:
    """The halt took effect behind a gateway that answered 5xx with a Retry-After longer
    than what is left of timeout-seconds. The action cannot wait that long; the rollout is
    stopped all the same. A rollout that ends up stopped is never reported failed, and no
    request goes out after the deadline."""
    world.emulator.add_fault(
        AppliedFault(
            world.emulator,
            APP_ID,
            PUBLISHED,
            method="POST",
            path=HALT,
            status=status,
            headers={"Retry-After": "30"},
        )
    )
    run = world.run({"timeout-seconds": "6"}, timeout=40)
    late = world.sent_after_deadline(6)
    stopped = world.emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"]
    print(f"{status}: {describe(run, 6)}; late {late}; the Store's rollout is {stopped}")
    assert traceback_free(run)
    assert late == []
    assert run.seconds <= 6 + STARTUP_SLACK
    assert stopped == "PackageRolloutStopped"
    assert run.outputs["result"] != "failed", describe(run)


@pytest.mark.parametrize("retry_after", ["3", "4", "5"])
def test_retry_after_eating_the_confirm_reserve_then_a_lost_answer_is_never_failed(
    world: World, retry_after: str
) -> None:
    """429 with a Retry-After that leaves less than the confirm reserve of a 6 s deadline;
    the second halt takes effect and its answer never comes. Sent but not confirmed is
    `unknown`, confirmed by a read is `halted`: never `failed`; nothing after the deadline."""
    emu = world.emulator
    emu.add_fault(Fault(method="POST", path=HALT, status=429, headers={"Retry-After": retry_after}))
    emu.add_fault(Fault(method="POST", path=HALT, kind="hang_after", seconds=60))
    run = world.run({"timeout-seconds": "6"}, timeout=40)
    late = world.sent_after_deadline(6)
    halts = len(emu.halt_requests)
    stopped = emu.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"]
    print(f"Retry-After {retry_after}: {describe(run, 6)}; {halts} halts; {stopped}; late {late}")
    assert traceback_free(run)
    assert late == []
    assert run.seconds <= 6 + STARTUP_SLACK
    if stopped == "PackageRolloutStopped":
        assert run.outputs["result"] in ("halted", "unknown"), describe(run)
    else:
        assert halts == 1


def test_cancel_between_reading_the_rollout_and_sending_the_halt_sends_nothing(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """The rollout read is slow (the Store answers it after 3 s, in progress); SIGINT while
    it is on its way. The answer arriving later must not lead to a halt."""
    emulator.add_fault(Fault(method="GET", path=r"/packagerollout$", kind="delay", seconds=3))
    running = start()
    running.wait_for(
        lambda: any(r.path.endswith("/packagerollout") for r in emulator.requests),
        "the rollout read",
    )
    took = running.signal_and_time(signal.SIGINT)
    time.sleep(3.5)  # the Store's answer has come by now: nothing may follow it
    print(f"rollout read: ended {took:.2f} s after SIGINT")

    assert took <= CANCEL_SECONDS
    assert running.process.returncode == 1
    assert no_traceback(running)
    assert emulator.halt_requests == []
    assert running.outputs["result"] == "failed"
    assert len(cancel_errors(running)) == 1
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] != "PackageRolloutStopped"
