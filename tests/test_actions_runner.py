"""The runner stand-in gives a container action step what actions/runner gives it (the
contract's Inputs and Outputs, as the step receives and writes them)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from store_emulator import Emulator
from store_emulator.action_files import ACTION_YML
from store_emulator.actions_runner import run_action
from store_emulator.runner_cancel import Cancel, cancel_run, emulator_saw
from store_emulator.runner_layout import FILE_COMMANDS, Job, Layout
from store_emulator.step_environment import IMAGE_ENV
from store_emulator.step_results import FileCommandError, parse_file_command
from tests.conftest import APP_ID, base_inputs

REPO = Path(__file__).resolve().parent.parent
# Prints the environment it was given, as JSON, and writes a step summary of N bytes.
PROBE = [
    sys.executable,
    "-c",
    "import json, os, sys\n"
    "size = int(os.environ.get('SUMMARY_BYTES', '0'))\n"
    "open(os.environ['GITHUB_STEP_SUMMARY'], 'a').write('x' * size)\n"
    "print(json.dumps({'env': dict(os.environ), 'cwd': os.getcwd()}))",
]
RUNNER_PREFIXES = ("INPUT_", "GITHUB_", "RUNNER_", "ACTIONS_")
GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def probe(tmp_path: Path, **kwargs: object) -> tuple[dict[str, str], str]:
    run = run_action({}, workdir=tmp_path, command=PROBE, **kwargs)  # type: ignore[arg-type]
    assert run.exit_code == 0, run.stderr
    seen = json.loads(run.stdout)
    return seen["env"], seen["cwd"]


def test_nothing_of_this_machines_environment_reaches_the_action(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "from-the-host")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/host/ca.pem")
    monkeypatch.setenv("HOST_ONLY_VARIABLE", "x")
    env, _ = probe(tmp_path, env={"STEP_VARIABLE": "from env:"})
    assert "AZURE_CLIENT_SECRET" not in env
    assert "REQUESTS_CA_BUNDLE" not in env
    assert "HOST_ONLY_VARIABLE" not in env
    assert env["STEP_VARIABLE"] == "from env:"
    allowed = {"HOME", "CI", "STEP_VARIABLE", *IMAGE_ENV}
    # Python itself may add LC_CTYPE when it coerces the C locale.
    strays = {k for k in env if not k.startswith(RUNNER_PREFIXES) and k not in allowed}
    assert strays <= {"LC_CTYPE"}, strays


def test_the_runners_variables_win_over_the_steps_env(tmp_path: Path) -> None:
    env, cwd = probe(tmp_path, env={"GITHUB_WORKSPACE": "/elsewhere", "CI": "false"})
    assert env["GITHUB_WORKSPACE"] == str(tmp_path / "workspace")
    assert cwd == str(tmp_path / "workspace")
    assert env["CI"] == "false"  # DockerRun adds CI=true only when the step did not set it
    assert env["GITHUB_ACTIONS"] == "true"
    assert env["HOME"] == str(tmp_path / "_temp" / "_github_home")


def test_every_declared_input_arrives_with_its_default(tmp_path: Path) -> None:
    env, _ = probe(tmp_path)
    declared = yaml.safe_load(ACTION_YML.read_text(encoding="utf-8"))["inputs"]
    for name, spec in declared.items():
        assert env[f"INPUT_{name.upper()}"] == str(spec.get("default", "")), name
    assert env["INPUT_DRY-RUN"] == "false"
    assert env["INPUT_TENANT-ID"] == ""  # required, no default: the runner passes ""


def test_a_docker_step_gets_only_its_with_keys(tmp_path: Path) -> None:
    run = run_action(
        {"app-id": APP_ID, "Two words": "x"}, workdir=tmp_path, command=PROBE, docker_step=True
    )
    env = json.loads(run.stdout)["env"]
    assert sorted(k for k in env if k.startswith("INPUT_")) == ["INPUT_APP-ID", "INPUT_TWO_WORDS"]


def test_a_with_key_the_action_does_not_declare_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="flight_id"):
        run_action({"flight_id": "x"}, workdir=tmp_path, command=PROBE)


def test_file_commands_share_one_new_guid_per_step(tmp_path: Path) -> None:
    first, _ = probe(tmp_path / "a")
    second, _ = probe(tmp_path / "b")
    folder = tmp_path / "a" / "_temp" / "_runner_file_commands"
    guids = set()
    for name, prefix in FILE_COMMANDS.items():
        path = Path(first[f"GITHUB_{name.upper()}"])
        assert path.parent == folder
        match = re.fullmatch(f"{prefix}({GUID})", path.name)
        assert match, path.name
        guids.add(match.group(1))
    assert len(guids) == 1
    assert guids.isdisjoint({Path(second["GITHUB_OUTPUT"]).name.removeprefix("set_output_")})


def test_the_event_payload_is_where_github_event_path_says(tmp_path: Path) -> None:
    event = {"pull_request": {"number": 7}}
    env, _ = probe(tmp_path, job=Job(event_name="pull_request", event=event))
    assert env["GITHUB_EVENT_NAME"] == "pull_request"
    path = Path(env["GITHUB_EVENT_PATH"])
    assert path == tmp_path / "_temp" / "_github_workflow" / "event.json"
    assert json.loads(path.read_text(encoding="utf-8")) == event


def test_container_paths_map_most_specific_first(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    commands = layout.file_commands / "set_output_1"
    assert layout.to_container(str(commands)) == "/github/file_commands/set_output_1"
    assert layout.to_container(str(layout.temp / "x")) == "/github/runner_temp/x"
    assert layout.to_container(str(layout.workspace)) == "/github/workspace"
    assert layout.to_container(f"{layout.workspace}-other") == f"{layout.workspace}-other"
    assert layout.to_host("/github/home/.cache") == str(layout.home / ".cache")


def test_an_oidc_job_gets_the_request_variables_and_its_token_is_the_runtime_token(
    tmp_path: Path,
) -> None:
    env, _ = probe(tmp_path, job=Job(id_token_request=("https://oidc.example/t", "tok")))
    assert env["ACTIONS_ID_TOKEN_REQUEST_URL"] == "https://oidc.example/t"
    assert env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] == env["ACTIONS_RUNTIME_TOKEN"] == "tok"
    without, _ = probe(tmp_path / "none")
    assert "ACTIONS_ID_TOKEN_REQUEST_URL" not in without


def test_a_summary_over_one_mebibyte_is_refused(tmp_path: Path) -> None:
    run = run_action(
        {}, workdir=tmp_path, command=PROBE, env={"SUMMARY_BYTES": str(1024 * 1024 + 1)}
    )
    [error] = run.file_command_errors
    assert "GITHUB_STEP_SUMMARY" in error
    small = run_action({}, workdir=tmp_path / "s", command=PROBE, env={"SUMMARY_BYTES": "10"})
    assert small.file_command_errors == ()


def test_the_action_halts_as_a_docker_step_with_only_the_keys_it_needs(
    emulator: Emulator, tmp_path: Path
) -> None:
    inputs = base_inputs(emulator)  # no dry-run, timeout-seconds or targets: not even ""
    run = run_action(
        inputs, workdir=tmp_path, docker_step=True, env={"REQUESTS_CA_BUNDLE": emulator.ca_path}
    )
    assert run.exit_code == 0, run.stdout
    assert run.outputs["result"] == "halted"
    assert len(emulator.halt_requests) == 1


# GITHUB_OUTPUT as EnvFileKeyValuePairs reads it -------------------------------------------


def test_file_command_lines_and_blocks() -> None:
    text = "a=1\nb<<EOF\nline 1\nline 2\nEOF\n\nc=x=y\n"
    assert parse_file_command(text) == {"a": "1", "b": "line 1\nline 2", "c": "x=y"}


def test_a_later_value_replaces_an_earlier_one() -> None:
    assert parse_file_command("a=1\na<<D\n2\nD\n") == {"a": "2"}


def test_a_carriage_return_is_part_of_the_value_on_linux() -> None:
    assert parse_file_command("a<<D\nx\r\nD\nb=y\r\n") == {"a": "x\r", "b": "y\r"}


def test_an_empty_block_is_an_empty_value() -> None:
    assert parse_file_command("a<<D\nD\n") == {"a": ""}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a<<D\nvalue\n", "Matching delimiter not found 'D'"),
        ("a<<D\nvalue", "EOF marker missing new line"),
        ("just text\n", "Invalid format 'just text'"),
        ("<<D\nD\n", "Name must not be empty"),
    ],
)
def test_what_the_runner_refuses(text: str, message: str) -> None:
    with pytest.raises(FileCommandError, match=message):
        parse_file_command(text)


def test_an_unreadable_output_file_fails_like_the_runner_says(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-c",
        "import os; open(os.environ['GITHUB_OUTPUT'], 'a').write('ok=1\\nbroken\\n')",
    ]
    run = run_action({}, workdir=tmp_path, command=command)
    assert run.outputs == {"ok": "1"}  # the pairs before the bad line were taken
    [error] = run.file_command_errors
    assert error.startswith("Unable to process file command 'output' successfully.")


def test_the_image_env_of_a_host_run_matches_the_dockerfile() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    declared = dict(re.findall(r"\b(PYTHON[A-Z_]+)=(\S+)", dockerfile))
    assert declared == {k: v for k, v in IMAGE_ENV.items() if k.startswith("PYTHON")}


# -- cancelling a run (the container test's case (c) uses these with `buildah run`) -----------

# The "action": handles SIGINT as halt-rollout does (exit 1), after saying it is ready.
ACTION = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGINT, lambda *_: sys.exit(1))\n"
    "open(sys.argv[1], 'w').close()\n"
    "time.sleep(60)\n"
)


def test_a_cancel_signals_the_action_not_what_runs_it(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    argv = [sys.executable, "-c", ACTION, str(ready)]
    # A runtime between the runner and the action, as buildah-chroot-exec is in a container.
    runtime = [
        sys.executable,
        "-c",
        "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))",
    ]
    started = time.monotonic()
    run = subprocess.Popen([*runtime, *argv], text=True)
    try:
        cancelled = cancel_run(run, argv, Cancel(ready.exists), started, timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1  # the action's own exit, passed on by the runtime
    assert cancelled.signal == "SIGINT"
    assert cancelled.pid != run.pid
    assert cancelled.parent == sys.executable  # the runtime's argv[0]: nothing between
    assert not cancelled.own_pid_namespace
    assert cancelled.pid_in_container == cancelled.pid
    assert cancelled.process_ended_seconds < 2
    assert cancelled.run_ended_seconds < 2


def test_a_run_that_ends_before_its_cancel_is_an_error(tmp_path: Path) -> None:
    run = subprocess.Popen([sys.executable, "-c", "pass"], text=True)
    with pytest.raises(RuntimeError, match="ended"):
        cancel_run(run, ["never"], Cancel(lambda: False), time.monotonic(), timeout=30)


def test_emulator_saw_counts_only_requests_after_it_was_made(emulator: Emulator) -> None:
    def halt() -> None:
        path = f"/v1.0/my/applications/{APP_ID}/submissions/1/haltpackagerollout"
        requests.post(emulator.url + path, verify=emulator.ca_path, timeout=10)

    halt()
    seen = emulator_saw(emulator.url, emulator.ca_path, "POST", r"/haltpackagerollout$")
    assert not seen()  # the earlier halt does not count
    halt()
    assert seen()
    assert not emulator_saw(emulator.url, emulator.ca_path, "GET", r"/haltpackagerollout$")()
