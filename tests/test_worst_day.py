"""The worst day: contract v1.2's rules 7a, 8, 9, 10 and 11 and the all-flights section,
under several hostile conditions at once (an attacker's second round).

Six of these broke a promise when written (a secret that is not UTF-8, a malformed OIDC
URL, a signal while Python starts, a proxy's password, and who/why/what-next missing);
they hold now, and all stay as regression tests. Each prints the figure it measured (overrun: wall
time minus timeout-seconds; or the time from a signal to the process's end).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from store_emulator import Emulator, Fault
from store_emulator.action_files import ENTRYPOINT, container_command
from store_emulator.actions_runner import run_action, runner_environment
from store_emulator.step_results import parse_file_command

from . import test_cancellation
from .conftest import APP_ID, PUBLISHED, RunAction, base_inputs, visible_text
from .connect_proxy import ConnectProxy
from .test_cancellation import CANCEL_SECONDS, Running, halt_held_back
from .world import (
    STARTUP_SLACK,
    Incoming,
    Wire,
    World,
    describe,
    injected_commands,
    live_markdown,
    many_apps,
    outputs_utf16_size,
    pipe_no_one_reads,
    results_of,
    run_entrypoint,
    traceback_free,
)

# Rule 10's fixture: the entrypoint started in a runner's environment, to be signalled.
start = test_cancellation.start

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy")
MIB = 1024 * 1024


def proxied(proxy: str, variable: str = "HTTPS_PROXY") -> dict[str, str | None]:
    env: dict[str, str | None] = dict.fromkeys(PROXY_VARIABLES)
    env[variable] = proxy
    return env


def no_traceback(running: Running) -> None:
    assert "Traceback" not in running.stdout + "".join(running.errors), running.stdout + "".join(
        running.errors
    )


# Who, why, and what happens next --------------------------------------------------------


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


# Rule 9: no traceback for any input --------------------------------------------------------


def _bytes_env(env: dict[str, str], **raw: bytes) -> dict[bytes, bytes]:
    out = {k.encode(): v.encode() for k, v in env.items()}
    for key, value in raw.items():
        out[key.replace("_dash_", "-").encode()] = value
    return out


def test_client_secret_with_invalid_utf8_is_refused_without_a_traceback(
    emulator: Emulator, tmp_path: Path
) -> None:
    """A client secret whose bytes are not UTF-8 (a secret store handing over Latin-1):
    Python reads it as a lone surrogate, and masking it must not crash the run."""
    inputs = base_inputs(emulator)
    env = runner_environment(inputs, tmp_path, extra={"REQUESTS_CA_BUNDLE": emulator.ca_path})
    env.pop("INPUT_CLIENT-SECRET", None)
    benv = _bytes_env(env, INPUT_CLIENT_dash_SECRET=b"s3cr3t\xe9value")
    done = subprocess.run(
        [sys.executable, str(ENTRYPOINT)],
        env=benv,
        cwd=env["GITHUB_WORKSPACE"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    stdout = done.stdout.decode("utf-8", "replace")
    stderr = done.stderr.decode("utf-8", "replace")
    print(f"exit {done.returncode}; stderr tail: {stderr[-300:]!r}")
    assert "Traceback" not in stdout + stderr, stderr[-2000:]
    outputs = parse_file_command(Path(env["GITHUB_OUTPUT"]).read_text(encoding="utf-8"))
    assert outputs.get("result") in ("failed", "halted"), outputs
    shown = "\n".join(line for line in stdout.splitlines() if not line.startswith("::add-mask::"))
    assert "s3cr3t" not in shown + stderr


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


def test_pathological_targets_file_aliases_and_nesting(action: RunAction) -> None:
    deep = "targets:\n  - app-id: " + "[" * 5000 + "]" * 5000 + "\n"
    run = action({"app-id": "", "targets": "t.yml"}, files={"t.yml": deep})
    assert run.exit_code == 1
    assert run.outputs["result"] == "failed"
    aliases = "a: &a [" + ",".join(["x"] * 50) + "]\n"
    for level in "bcdefghij":
        previous = chr(ord(level) - 1)
        aliases += f"{level}: &{level} [" + ",".join([f"*{previous}"] * 50) + "]\n"
    aliases += "targets: *j\n"
    run = action({"app-id": "", "targets": "t2.yml"}, files={"t2.yml": aliases})
    assert run.exit_code == 1
    assert run.outputs["result"] == "failed"


def test_huge_numbers_and_surrogate_escapes_in_inputs(action: RunAction) -> None:
    run = action({"timeout-seconds": "9" * 5000})
    assert run.outputs["result"] == "failed"
    run = action(
        {"app-id": "", "targets": "t.yml"},
        files={"t.yml": 'targets:\n  - name: "bad \\ud800 half"\n    app-id: ' + APP_ID + "\n"},
    )
    # Refused as an input (the product's choice), or shown visibly: never a crash.
    assert traceback_free(run), run.stdout
    assert run.exit_code == 1 or "[U+D800]" in run.summary


# Rule 8: data stays data on the refused-input, sign-in and Store paths ------------------------

HOSTILE = "\n::error::pwned\n![x](https://evil.example/x.png) <img src=x> \u202eexe.txt \u200b"


def test_hostile_entra_message_on_a_sign_in_failure_stays_data(
    emulator: Emulator, action: RunAction
) -> None:
    emulator.add_fault(
        Fault(
            method="POST",
            path=r"/token$",
            status=400,
            body={"error": "invalid_client", "error_description": "AADSTS7000215: " + HOSTILE},
            times=None,
        )
    )
    run = action()
    assert run.outputs["result"] == "failed"
    assert injected_commands(run.stdout) == []
    assert live_markdown(run.summary) == []
    for text in (run.stdout, run.summary, run.outputs["results"]):
        assert "\u202e" not in text
    # The data's own zero-width space is shown visibly (the summary's defusing ones are ours).
    assert "[U+200B]" in run.summary
    assert "[U+200B]" in run.stdout


def test_hostile_refused_input_stays_data(action: RunAction) -> None:
    run = action(
        {"app-id": "", "targets": "t.yml"},
        files={
            "t.yml": "targets:\n  - name: "
            + json.dumps(HOSTILE)
            + "\n    app-id: '[x](https://evil.example)'\n"
        },
    )
    assert run.exit_code == 1
    assert injected_commands(run.stdout) == []
    assert live_markdown(run.summary) == []
    assert "\u202e" not in run.stdout + run.summary


def test_proxy_password_is_never_shown(action: RunAction) -> None:
    """A release engineer's proxy credentials are a secret too (where the contract is silent)."""
    run = action(env=proxied("socks5://build:hunter2-proxy-pass@127.0.0.1:1080"))
    assert run.outputs["result"] == "failed"
    print(run.errors)
    assert "::add-mask::hunter2-proxy-pass" in run.stdout  # masked first, as secrets are
    assert "hunter2-proxy-pass" not in visible_text(run)


# Rule 10: cancellation under combined hostile conditions -------------------------------------


def test_cancel_while_both_runner_files_are_full_pipes_ends_within_two_seconds(
    emulator: Emulator, start: Callable[..., Running], tmp_path: Path
) -> None:
    halt_held_back(emulator)
    with (
        pipe_no_one_reads(tmp_path / "out", full=True) as output,
        pipe_no_one_reads(tmp_path / "summary", full=True) as summary,
    ):
        running = start(extra={"GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)})
        running.wait_for(lambda: bool(emulator.halt_requests), "halt request")
        took = running.signal_and_time(signal.SIGINT)
    print(f"signal to exit with both runner files full pipes: {took:.2f} s")
    no_traceback(running)
    assert took <= CANCEL_SECONDS, running.stdout
    assert running.process.returncode == 1
    assert f"{APP_ID}: unknown" in running.stdout
    cancelled = [e for e in running.error_lines if e.startswith("::error title=Run cancelled")]
    assert len(cancelled) == 1, running.error_lines


def test_two_signals_ten_ms_apart_end_at_once(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    halt_held_back(emulator)
    running = start()
    running.wait_for(lambda: bool(emulator.halt_requests), "halt request")
    sent = time.monotonic()
    os.kill(running.process.pid, signal.SIGINT)
    time.sleep(0.01)
    os.kill(running.process.pid, signal.SIGTERM)
    running.process.wait(30)
    took = time.monotonic() - sent
    for reader in running.readers:
        reader.join(5)
    print(f"two signals 10 ms apart: ended {took:.3f} s after the first")
    no_traceback(running)
    assert took <= 0.5
    assert running.process.returncode == 1


def guarded(pid: int) -> bool:
    """Whether the process blocks or handles SIGTERM yet (/proc's SigBlk and SigCgt)."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    mask = int(fields["SigBlk"], 16) | int(fields["SigCgt"], 16)
    return bool(mask >> (signal.SIGTERM - 1) & 1)


def test_signal_in_the_first_milliseconds_still_writes_the_outputs(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """A cancel may come at any moment, the interpreter's first milliseconds included:
    whenever it lands, the run must end with exit 1, the outputs and one error."""
    seen = []
    for number in (signal.SIGINT, signal.SIGTERM):
        for delay in (0.0, 0.005, 0.02, 0.05, 0.1, 0.3):
            running = start(command=container_command())  # as the image starts it
            # From the moment the image's first process is itself: `env` blocking the
            # signals (a signal in the microseconds before that ends any process).
            running.wait_for(partial(guarded, running.process.pid), "signals blocked", 10)
            time.sleep(delay)
            if running.process.poll() is not None:
                continue  # the whole run ended before the signal: nothing to cancel
            sent = time.monotonic()
            os.kill(running.process.pid, number)
            try:
                running.process.wait(15)
            except subprocess.TimeoutExpired:
                running.process.kill()
                running.process.wait()
            took = time.monotonic() - sent
            for reader in running.readers:
                reader.join(5)
            if "received" not in running.stdout and running.process.returncode == 0:
                continue  # it ended between the check above and the signal: nothing to cancel
            stderr = "".join(running.errors)
            written = Path(running.env["GITHUB_OUTPUT"]).read_text(encoding="utf-8")
            if "Traceback" in running.stdout + stderr:
                print(f"traceback after {delay * 1000:.0f} ms:", (running.stdout + stderr)[-600:])
            seen.append(
                (
                    signal.Signals(number).name,
                    int(delay * 1000),
                    running.process.returncode,
                    round(took, 2),
                    "result" in written,
                    "Traceback" in running.stdout + stderr,
                )
            )
    print("(signal, ms after start, exit, seconds to end, outputs written, traceback):")
    for row in seen:
        print(f"  {row}")
    assert all(row[5] is False for row in seen), seen
    assert all(row[2] == 1 and row[4] for row in seen), seen
    assert all(row[3] <= CANCEL_SECONDS for row in seen), seen


def test_sigterm_during_sign_in_through_a_stalling_proxy(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    with ConnectProxy("stall") as proxy:
        running = start({"timeout-seconds": "60"}, extra=proxied(proxy.url))
        running.wait_for(lambda: bool(proxy.targets), "CONNECT to the proxy")
        took = running.signal_and_time(signal.SIGTERM)
    print(f"SIGTERM during sign-in via a stalled proxy: ended {took:.2f} s after")
    no_traceback(running)
    assert took <= CANCEL_SECONDS
    assert running.process.returncode == 1
    assert running.outputs["result"] == "failed"
    assert emulator.store_requests == []
    [error] = running.error_lines
    assert error.startswith("::error title=Run cancelled::")


def test_cancel_a_trickling_store_through_a_trickling_proxy(world: World, tmp_path: Path) -> None:
    def trickle_halt(req: Incoming, wire: Wire) -> None:
        upstream = wire.forward(req)  # the halt takes effect
        if req.path.endswith("/haltpackagerollout"):
            wire.trickle(upstream.raw(), every=0.5, until=time.monotonic() + 60)
        else:
            wire.send(upstream.raw())

    server = world.hostile(trickle_halt)
    with ConnectProxy("trickle-tunnel", every=0.002) as proxy:
        inputs = {**world.inputs(), "store-api-url": server.url, "timeout-seconds": "60"}
        env = runner_environment(
            inputs, tmp_path / "w", extra={"REQUESTS_CA_BUNDLE": world.bundle, **proxied(proxy.url)}
        )
        process = subprocess.Popen(
            [sys.executable, str(ENTRYPOINT)],
            env=env,
            cwd=env["GITHUB_WORKSPACE"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        running = Running(process, env)
        running.read()
        try:
            running.wait_for(
                lambda: any(r.path.endswith("/haltpackagerollout") for r in server.requests),
                "halt at the hostile Store",
                40,
            )
            time.sleep(1.0)
            took = running.signal_and_time(signal.SIGINT)
        finally:
            if process.poll() is None:
                process.kill()
    print(f"SIGINT with a trickling Store behind a trickling proxy: ended {took:.2f} s after")
    no_traceback(running)
    assert took <= CANCEL_SECONDS
    assert running.outputs["result"] == "unknown", running.stdout
    assert len(running.error_lines) == 1


# Rule 7a: deadline through a proxy with trickles, and the all-flights listing -----------------


def test_trickling_store_through_a_trickling_proxy_keeps_the_deadline(world: World) -> None:
    def trickle_everything(req: Incoming, wire: Wire) -> None:
        upstream = wire.forward(req)
        wire.trickle(upstream.raw(), every=0.3, until=time.monotonic() + 60)

    server = world.hostile(trickle_everything)
    timeout = 4.0
    with ConnectProxy("trickle-accept", every=0.05) as proxy:
        run = world.run(
            {"timeout-seconds": f"{timeout:g}"},
            store=server,
            authority=server,
            env=proxied(proxy.url, "ALL_PROXY"),
            timeout=60,
        )
    late = world.sent_after_deadline(timeout)
    print(f"{describe(run, timeout)}; late: {late}")
    assert run.seconds <= timeout + STARTUP_SLACK
    assert late == []
    assert traceback_free(run)
    assert run.outputs["result"] == "failed"


def test_hundred_all_flights_apps_with_hanging_listings(world: World) -> None:
    emu = world.emulator
    targets = many_apps(emu, 100).replace("\n  - app-id:", "\n  - all-flights: true\n    app-id:")
    emu.add_fault(Fault(method="GET", path=r"/listflights$", kind="hang", seconds=120, times=None))
    timeout = 12.0
    run = world.run(
        {"app-id": "", "targets": "t.yml", "timeout-seconds": f"{timeout:g}"},
        files={"t.yml": targets},
        timeout=120,
    )
    late = world.sent_after_deadline(timeout)
    print(f"{describe(run, timeout)}; late: {late}")
    records = results_of(run)
    own = [r for r in records if not r["name"].startswith("flights of ")]
    listings = [r for r in records if r["name"].startswith("flights of ")]
    print(f"own rollouts: {[r['result'] for r in own].count('halted')} halted of {len(own)}")
    assert run.seconds <= timeout + STARTUP_SLACK
    assert late == []
    assert traceback_free(run)
    assert len(own) == 100
    assert all(r["result"] == "halted" for r in own)
    assert len(listings) == 100
    assert all(r["result"] == "failed" for r in listings)
    assert len(run.summary.encode()) < MIB
    assert run.outputs["result"] == "failed"


def test_thousand_flights_with_invisible_names_fit_githubs_limits(world: World) -> None:
    emu = world.emulator
    app = "9NBIGAPP0001"
    emu.add_app(app, last_published="1152921504600000001")
    emu.set_rollout(app, "1152921504600000001")
    name = "\u200b" * 120 + "[x](https://evil.example)" + "\u202e" * 60
    for number in range(1000):
        emu.add_flight(app, f"00000000-0000-0000-0000-{number:012d}", name=f"{number}{name}")
    run = world.run({"app-id": app, "all-flights": "true", "timeout-seconds": "170"}, timeout=240)
    records = results_of(run)
    summary_bytes = len(run.summary.encode())
    outputs_utf16 = outputs_utf16_size(run.outputs)
    print(
        f"{describe(run)}; {len(records)} records kept; summary {summary_bytes} bytes; "
        f"outputs {outputs_utf16} UTF-16 bytes"
    )
    assert traceback_free(run)
    assert summary_bytes < MIB
    assert outputs_utf16 < 1_000_000
    assert "left out" in run.summary
    assert live_markdown(run.summary) == []
    assert "\u202e" not in run.summary + run.stdout


# Rule 11: broken runner files combined -------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["dev-full", "directory", "symlink-loop", "no-reader-fifo", "readonly-dir"]
)
def test_broken_runner_files_never_change_the_result(
    emulator: Emulator, tmp_path: Path, kind: str
) -> None:
    out = tmp_path / "out"
    if kind == "dev-full":
        target = "/dev/full"
    elif kind == "directory":
        out.mkdir()
        target = str(out)
    elif kind == "symlink-loop":
        os.symlink(tmp_path / "b", tmp_path / "a")
        os.symlink(tmp_path / "a", tmp_path / "b")
        target = str(tmp_path / "a")
    elif kind == "no-reader-fifo":
        os.mkfifo(out)
        target = str(out)
    else:
        (tmp_path / "ro").mkdir()
        target = str(tmp_path / "ro" / "missing" / "file")
    env = runner_environment(
        base_inputs(emulator),
        tmp_path / "w",
        extra={
            "REQUESTS_CA_BUNDLE": emulator.ca_path,
            "GITHUB_OUTPUT": target,
            "GITHUB_STEP_SUMMARY": target,
        },
    )
    started = time.monotonic()
    done = run_entrypoint(env)
    took = time.monotonic() - started
    print(f"{kind}: exit {done.returncode} in {took:.2f} s")
    assert "Traceback" not in done.stdout + done.stderr
    assert f"{APP_ID}: halted" in done.stdout
    assert "The halts themselves stand" in done.stdout
    assert done.returncode == 1
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == ("PackageRolloutStopped")


def test_cancel_a_hundred_all_flights_apps_with_hanging_listings_and_full_pipes(
    emulator: Emulator, start: Callable[..., Running], tmp_path: Path
) -> None:
    """Everything at once: 100 all-flights apps whose listings hang, halts held back, both
    runner files full pipes; SIGINT once halts are in flight."""
    targets = many_apps(emulator, 100).replace(
        "\n  - app-id:", "\n  - all-flights: true\n    app-id:"
    )
    emulator.add_fault(
        Fault(method="GET", path=r"/listflights$", kind="hang", seconds=120, times=None)
    )
    emulator.add_fault(
        Fault(
            method="POST", path=r"/haltpackagerollout$", kind="hang_after", seconds=120, times=None
        )
    )
    with (
        pipe_no_one_reads(tmp_path / "out", full=True) as output,
        pipe_no_one_reads(tmp_path / "summary", full=True) as summary,
    ):
        running = start(
            {"app-id": "", "targets": "t.yml", "timeout-seconds": "120"},
            files={"t.yml": targets},
            extra={"GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)},
        )
        running.wait_for(lambda: len(emulator.halt_requests) >= 4, "four halts in flight")
        took = running.signal_and_time(signal.SIGINT)
    print(f"SIGINT, 100 all-flights apps, full pipes: ended {took:.2f} s after the signal")
    no_traceback(running)
    assert took <= CANCEL_SECONDS, running.stdout[-3000:]
    assert running.process.returncode == 1
    assert running.stdout.count(": unknown") >= 4
    assert running.stdout.count("flights of 9NAPP") >= 100
    cancelled = [e for e in running.error_lines if e.startswith("::error title=Run cancelled")]
    assert len(cancelled) == 1
