"""Plays GitHub's runner for one Docker container action step: its environment in, its files out.

Used by the tests, the demo, the benchmarks and the container test to run the action exactly
as actions/runner's ContainerActionHandler does. What it copies, and from where in
actions/runner (src/Runner.Worker/):

* ActionRunner.cs: a step's inputs are its `with:` keys plus, for an action with an
  action.yml, every declared input that `with:` left out, at its default ("" without one).
  A `uses: docker://` step has no action.yml, so only its `with:` keys arrive.
* Handler.cs (AddInputsToEnvironment): `INPUT_<NAME>`, upper-cased, spaces to `_`, hyphens kept.
* Handlers/ContainerActionHandler.cs: the container's environment is built from scratch: the
  step's env context, the inputs, HOME, the github context's allow-list (GitHubContext.cs) as
  GITHUB_*, the runner context (RunnerContext.cs) as RUNNER_*, and the ACTIONS_* runtime
  variables; nothing of the runner machine's own environment. Host paths in values become
  /github/workspace, /github/file_commands, /github/workflow, /github/home and
  /github/runner_temp (ContainerInfo.TranslateToContainerPath, most specific mapping first).
* Container/DockerCommandManager.cs (DockerRun): `--workdir /github/workspace`, and
  GITHUB_ACTIONS=true and CI=true (unless the step set CI) added on the command line. (The
  runner also mounts /var/run/docker.sock; the action never uses Docker, so that is left out.)
* FileCommandManager.cs: one new GUID per step names every file command (set_output_<guid>,
  step_summary_<guid>, ...), each created empty; after the step GITHUB_OUTPUT is read by
  EnvFileKeyValuePairs, and a job summary over 1 MiB is refused.
* ExecutionContext.cs (WriteWebhookPayload): the event payload is _github_workflow/event.json.

The entrypoint runs either on this machine (`run_action`, paths kept on the host side of the
mapping) or in a container with `buildah run` (`python -m store_emulator.actions_runner`),
where the same environment arrives with the /github/* paths, bind-mounted.

A run in a container can be cancelled as the runner cancels it (`Cancel`): a signal to the
action's process once a condition holds (in the container test, once the emulator saw the
halt POST).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
ACTION_YML = REPO / "action.yml"
ENTRYPOINT = REPO / "entrypoint.py"
DOCKERFILE = REPO / "Dockerfile"


def dockerfile_entrypoint(dockerfile: Path = DOCKERFILE) -> list[str]:
    """The Dockerfile's ENTRYPOINT (exec form), as the image's config holds it."""
    text = dockerfile.read_text(encoding="utf-8").replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith("ENTRYPOINT "))
    command: list[str] = json.loads(line.removeprefix("ENTRYPOINT "))
    return command


def container_command(dockerfile: Path = DOCKERFILE) -> list[str]:
    """The image's ENTRYPOINT, as this machine runs it: its Python is this one and its
    /action/ is the repository (so a test starts the process exactly as the image does)."""
    places = {"/usr/local/bin/python": sys.executable, "/action/entrypoint.py": str(ENTRYPOINT)}
    return [places.get(part, part) for part in dockerfile_entrypoint(dockerfile)]


# FileCommandManager.cs and its extensions: the github context name of each file command
# (GITHUB_<NAME> in the environment) and the prefix of its per-step file.
FILE_COMMANDS = {
    "path": "add_path_",
    "env": "set_env_",
    "step_summary": "step_summary_",
    "state": "save_state_",
    "output": "set_output_",
    "artifacts": "artifacts_",
    "artifacts_list": "artifacts_list_",
}
SUMMARY_LIMIT = 1024 * 1024  # CreateStepSummaryCommand.AttachmentSizeLimit

# What the image's own ENV gives the process (the Dockerfile's and its Python base's), for
# runs on this machine; in a container the image supplies it. The runner's variables win.
IMAGE_ENV = {
    "PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
}


class FileCommandError(ValueError):
    """A file command the runner could not process: it fails the step with this message."""


@dataclass(frozen=True)
class Job:
    """What the github context says about the run: a hand-dispatched workflow by default."""

    event_name: str = "workflow_dispatch"
    event: Mapping[str, Any] | None = None  # the webhook payload; a minimal one when None
    repository: str = "octo-org/octo-repo"
    ref: str = "refs/heads/main"
    sha: str = "ffac537e6cbbf934b08745a378932722df287a53"
    workflow: str = "Emergency stop"
    workflow_file: str = ".github/workflows/emergency-stop.yml"
    job: str = "halt"
    actor: str = "octocat"
    # Who started this attempt (a re-run by someone else); the actor when None.
    triggering_actor: str | None = None
    run_attempt: int = 1
    # (ACTIONS_ID_TOKEN_REQUEST_URL, the job's access token) when it has `id-token: write`.
    id_token_request: tuple[str, str] | None = None

    def payload(self) -> Mapping[str, Any]:
        if self.event is not None:
            return self.event
        return {
            "inputs": {},
            "ref": self.ref,
            "repository": {"full_name": self.repository, "fork": False},
            "sender": {"login": self.actor},
            "workflow": self.workflow_file,
        }

    def github_context(self) -> dict[str, str]:
        """The allow-listed github context values that become GITHUB_* (but paths)."""
        owner = self.repository.split("/", 1)[0]
        ref_type = "tag" if self.ref.startswith("refs/tags/") else "branch"
        return {
            "actor": self.actor,
            "actor_id": "583231",
            "api_url": "https://api.github.com",
            "base_ref": "",
            "event_name": self.event_name,
            "graphql_url": "https://api.github.com/graphql",
            "head_ref": "",
            "job": self.job,
            "ref": self.ref,
            "ref_name": self.ref.rsplit("/", 1)[-1],
            "ref_protected": "false",
            "ref_type": ref_type,
            "repository": self.repository,
            "repository_id": "123456789",
            "repository_owner": owner,
            "repository_owner_id": "9919",
            "retention_days": "90",
            "run_attempt": str(self.run_attempt),
            "run_id": "1",
            "run_number": "1",
            "server_url": "https://github.com",
            "sha": self.sha,
            "triggering_actor": self.triggering_actor or self.actor,
            "workflow": self.workflow,
            "workflow_ref": f"{self.repository}/{self.workflow_file}@{self.ref}",
            "workflow_sha": self.sha,
        }


@dataclass(frozen=True)
class Layout:
    """The runner's folders for one job, on this machine, and where a container sees them."""

    root: Path

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    @property
    def temp(self) -> Path:
        return self.root / "_temp"

    @property
    def home(self) -> Path:
        return self.temp / "_github_home"

    @property
    def workflow(self) -> Path:
        return self.temp / "_github_workflow"

    @property
    def file_commands(self) -> Path:
        return self.temp / "_runner_file_commands"

    def mounts(self) -> list[tuple[Path, str]]:
        """(host, container) pairs, most specific first, as the runner's path mappings are."""
        return [
            (self.workspace, "/github/workspace"),
            (self.file_commands, "/github/file_commands"),
            (self.workflow, "/github/workflow"),
            (self.home, "/github/home"),
            (self.temp, "/github/runner_temp"),
        ]

    def create(self) -> None:
        for host, _ in self.mounts():
            host.mkdir(parents=True, exist_ok=True)

    def to_container(self, value: str) -> str:
        """ContainerInfo.TranslateToContainerPath: the first mapping the value is under."""
        for host, container in self.mounts():
            if value == str(host):
                return container
            if value.startswith(f"{host}{os.sep}"):
                return container + value[len(str(host)) :]
        return value

    def to_host(self, value: str) -> str:
        """The reverse, for a run on this machine that must see the same files."""
        for host, container in self.mounts():
            if value == container:
                return str(host)
            if value.startswith(f"{container}/"):
                return str(host) + value[len(container) :]
        return value


@dataclass(frozen=True)
class Step:
    """One step's file commands: every file named with the same new GUID, created empty."""

    layout: Layout
    guid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def path(self, command: str) -> Path:
        return self.layout.file_commands / f"{FILE_COMMANDS[command]}{self.guid}"

    def create(self) -> None:
        for command in FILE_COMMANDS:
            self.path(command).write_bytes(b"")


@dataclass(frozen=True)
class Cancel:
    """Cancel the run as actions/runner does: `signal` to the action's process once `when()`
    is true (polled every 20 ms while the process runs)."""

    when: Callable[[], bool]
    signal: int = signal.SIGINT


@dataclass(frozen=True)
class Cancelled:
    """The cancelling as it happened: which process got the signal, and how soon it all ended."""

    signal: str
    pid: int  # on this machine
    pid_in_container: int  # in the innermost PID namespace it belongs to (NSpid)
    own_pid_namespace: bool  # a PID namespace other than this machine's
    parent: str  # the parent's argv[0]: the container runtime, when nothing is between
    signal_after_seconds: float  # from the start of the run
    process_ended_seconds: float  # from the signal to the action's process ending
    run_ended_seconds: float  # from the signal to `buildah run` returning


@dataclass(frozen=True)
class ActionRun:
    exit_code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    seconds: float
    # What the runner would report after the step, e.g. an unreadable GITHUB_OUTPUT.
    file_command_errors: tuple[str, ...] = ()
    cancelled: Cancelled | None = None  # the signal a `Cancel` sent, and what followed

    @property
    def errors(self) -> list[str]:
        """The `::error …::` lines of the log."""
        return [line for line in self.stdout.splitlines() if line.startswith("::error")]


def declared_inputs(action_yml: Path = ACTION_YML) -> dict[str, Any]:
    action = yaml.safe_load(action_yml.read_text(encoding="utf-8"))
    inputs: dict[str, Any] = action.get("inputs") or {}
    return inputs


def step_inputs(with_: Mapping[str, str], action_yml: Path | None = ACTION_YML) -> dict[str, str]:
    """The inputs the runner hands the step: `with:`, then action.yml's defaults.

    `action_yml=None` is a `uses: docker://` step: `with:` alone. A `with:` key that the
    action does not declare is refused here (the runner only warns): in a test it is a typo.
    """
    inputs = dict(with_)
    if action_yml is None:
        return inputs
    declared = declared_inputs(action_yml)
    unknown = sorted(set(inputs) - set(declared))
    if unknown:
        raise ValueError(f"not inputs of {action_yml.name}: {unknown}")
    for name, spec in declared.items():
        if name in inputs:
            continue
        default = (spec or {}).get("default")
        text = "" if default is None else str(default)
        if "${{" in text:
            raise ValueError(f"input {name}: expressions in defaults are not emulated")
        inputs[name] = text
    return inputs


def input_variable(name: str) -> str:
    return f"INPUT_{name.replace(' ', '_').upper()}"


def container_environment(
    inputs: Mapping[str, str],
    layout: Layout,
    step: Step,
    *,
    env: Mapping[str, str] | None = None,
    job: Job = Job(),
    step_id: str = "halt",
) -> dict[str, str]:
    """The variables the container gets, as ContainerActionHandler builds them, in order.

    `env` is the step's env context (workflow, job and step `env:`); the inputs, HOME and
    the runner's own variables are laid over it in that order, so `env:` cannot change them.
    """
    environment = dict(env or {})
    for name, value in inputs.items():
        environment[input_variable(name)] = value
    environment["HOME"] = str(layout.home)
    github = job.github_context() | {
        "action": step_id,
        "workspace": str(layout.workspace),
        "event_path": str(layout.workflow / "event.json"),
    }
    github |= {command: str(step.path(command)) for command in FILE_COMMANDS}
    for key, value in github.items():
        environment[f"GITHUB_{key.upper()}"] = value
    runner = {
        "os": "Linux",
        "arch": "X64",
        "name": "GitHub Actions 1",
        "environment": "github-hosted",
        "tool_cache": "/opt/hostedtoolcache",
        "temp": str(layout.temp),
        "workspace": str(layout.workspace.parent),
    }
    for key, value in runner.items():
        environment[f"RUNNER_{key.upper()}"] = value
    environment["ACTIONS_RUNTIME_URL"] = "https://pipelines.actions.githubusercontent.com/x/"
    environment["ACTIONS_RUNTIME_TOKEN"] = "runtime-access-token"
    environment["ACTIONS_CACHE_URL"] = "https://artifactcache.actions.githubusercontent.com/x/"
    environment["ACTIONS_RESULTS_URL"] = "https://results-receiver.actions.githubusercontent.com/"
    if job.id_token_request is not None:
        # The request token is the job's access token itself, as the runner hands it over.
        url, token = job.id_token_request
        environment["ACTIONS_ID_TOKEN_REQUEST_URL"] = url
        environment["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = token
        environment["ACTIONS_RUNTIME_TOKEN"] = token
    translated = {key: layout.to_container(value) for key, value in environment.items()}
    translated["GITHUB_ACTIONS"] = "true"
    translated.setdefault("CI", "true")
    return translated


def prepare(
    layout: Layout, *, job: Job = Job(), files: Mapping[str, str | bytes] | None = None
) -> Step:
    """Lay out the job's folders, the event payload and any workspace files; a new step."""
    layout.create()
    (layout.workflow / "event.json").write_text(json.dumps(job.payload()), encoding="utf-8")
    for relative, content in (files or {}).items():
        target = layout.workspace / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    step = Step(layout)
    step.create()
    return step


def file_command_pairs(text: str) -> Iterator[tuple[str, str]]:
    """EnvFileKeyValuePairs on Linux: `NAME=VALUE` lines and `NAME<<DELIMITER` blocks.

    Lines end at "\\n" only (a "\\r" is part of a value). Raises FileCommandError with the
    runner's message where it would stop; the pairs before that have been yielded.
    """
    index = 0

    def read_line() -> tuple[str | None, bool]:
        nonlocal index
        if index >= len(text):
            return None, False
        end = text.find("\n", index)
        if end < 0:
            line, index = text[index:], len(text)
            return line, False
        line, index = text[index:end], end + 1
        return line, True

    line, _ = read_line()
    while line is not None:
        if line:
            equals, heredoc = line.find("="), line.find("<<")
            if equals >= 0 and (heredoc < 0 or equals < heredoc):
                key, value = line.split("=", 1)
            elif heredoc >= 0 and (equals < 0 or heredoc < equals):
                key, delimiter = line.split("<<", 1)
                if not key or not delimiter:
                    raise FileCommandError(
                        f"Invalid format '{line}'. Name must not be empty and delimiter must "
                        "not be empty"
                    )
                start = end = index
                value_line, newline = read_line()
                while value_line != delimiter:
                    if value_line is None:
                        raise FileCommandError(
                            f"Invalid value. Matching delimiter not found '{delimiter}'"
                        )
                    if not newline:
                        raise FileCommandError("Invalid value. EOF marker missing new line.")
                    end = index - 1
                    value_line, newline = read_line()
                value = text[start:end] if end > start else ""
            else:
                raise FileCommandError(f"Invalid format '{line}'")
            yield key, value
        line, _ = read_line()


def parse_file_command(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT as the runner reads it; a later value for a name replaces an earlier one."""
    return dict(file_command_pairs(text))


def collect(
    step: Step,
    completed: subprocess.CompletedProcess[str],
    seconds: float,
    cancelled: Cancelled | None = None,
) -> ActionRun:
    """What the runner takes from the step once it ended: exit code, log, outputs, summary."""
    errors: list[str] = []
    outputs: dict[str, str] = {}
    try:
        for key, value in file_command_pairs(_read_exactly(step.path("output"))):
            outputs[key] = value
    except FileCommandError as error:
        errors.append(f"Unable to process file command 'output' successfully. {error}")
    summary_path = step.path("step_summary")
    if summary_path.stat().st_size > SUMMARY_LIMIT:
        errors.append(
            f"$GITHUB_STEP_SUMMARY upload aborted, supports content up to a size of "
            f"{SUMMARY_LIMIT // 1024}k, got {summary_path.stat().st_size // 1024}k."
        )
    return ActionRun(
        exit_code=completed.returncode,
        stdout=completed.stdout,
        stderr=completed.stderr,
        outputs=outputs,
        summary=_read_exactly(summary_path),
        seconds=seconds,
        file_command_errors=tuple(errors),
        cancelled=cancelled,
    )


def host_environment(
    container_env: Mapping[str, str],
    layout: Layout,
    *,
    extra: Mapping[str, str | None] | None = None,
) -> dict[str, str]:
    """The container's variables with paths on this machine's side, over the image's ENV.

    `extra` is a test's own hand on the result, applied last; a None value removes one.
    """
    environment = IMAGE_ENV | {key: layout.to_host(v) for key, v in container_env.items()}
    for key, value in (extra or {}).items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    return environment


def runner_environment(
    inputs: Mapping[str, str],
    workdir: Path,
    *,
    extra: Mapping[str, str | None] | None = None,
    job: Job = Job(),
) -> dict[str, str]:
    """The environment run_action gives entrypoint.py, laid out under `workdir`, for a
    caller that starts the process itself (to watch its output as it comes, say)."""
    layout = Layout(workdir)
    step = prepare(layout, job=job)
    container_env = container_environment(step_inputs(inputs, ACTION_YML), layout, step, job=job)
    return host_environment(container_env, layout, extra=extra)


def run_action(
    inputs: Mapping[str, str],
    *,
    extra_env: Mapping[str, str | None] | None = None,
    workdir: Path | None = None,
    timeout: float = 120,
    files: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    job: Job = Job(),
    docker_step: bool = False,
    command: Sequence[str] | None = None,
) -> ActionRun:
    """Run entrypoint.py on this machine as a subprocess, as the runner runs the container.

    `inputs` are the step's `with:` keys; `env` its env context; `docker_step` makes it a
    `uses: docker://` step (no action.yml defaults). `extra_env` overrides the result.
    `command` runs something else in entrypoint.py's place (a probe, in tests).
    """
    with tempfile.TemporaryDirectory(prefix="halt-rollout-run-") as scratch:
        layout = Layout(workdir or Path(scratch))
        step = prepare(layout, job=job, files=files)
        with_inputs = step_inputs(inputs, None if docker_step else ACTION_YML)
        container_env = container_environment(with_inputs, layout, step, env=env, job=job)
        environment = host_environment(container_env, layout, extra=extra_env)
        started = time.monotonic()
        completed = subprocess.run(
            list(command or [sys.executable, str(ENTRYPOINT)]),
            env=environment,
            cwd=layout.workspace,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return collect(step, completed, time.monotonic() - started)


def buildah_run(
    image: str,
    with_inputs: Mapping[str, str],
    layout: Layout,
    *,
    env: Mapping[str, str] | None = None,
    docker_step: bool = False,
    action_yml: Path = ACTION_YML,
    files: Mapping[str, str | bytes] | None = None,
    job: Job = Job(),
    timeout: float = 300,
    cancel: Cancel | None = None,
) -> ActionRun:
    """Run the image as the runner's `docker run` would, with `buildah run --isolation chroot`.

    The entry point is the image's ENTRYPOINT and CMD (the action declares no args), the
    environment is exactly container_environment's, and the /github/* folders are bind mounts.
    With `cancel`, the run is cancelled as the runner cancels it (see _cancel).
    """
    step = prepare(layout, job=job, files=files)
    inputs = step_inputs(with_inputs, None if docker_step else action_yml)
    environment = container_environment(inputs, layout, step, env=env, job=job)
    config = json.loads(_buildah("inspect", "--type", "image", image, capture=True) or "{}")[
        "OCIv1"
    ]["config"]
    argv = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
    if not argv:
        raise ValueError(f"{image} has neither ENTRYPOINT nor CMD")
    container = _buildah("from", "--pull=false", "--quiet", image, capture=True).strip()
    cancelled = None
    try:
        command = ["buildah", "run", "--isolation", "chroot", "--workingdir", "/github/workspace"]
        for host, inside in layout.mounts():
            command += ["--volume", f"{host}:{inside}"]
        for key, value in environment.items():
            command += ["--env", f"{key}={value}"]
        command += [container, "--", *argv]
        # The log goes to files, not pipes: nothing has to read them while the run is watched.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            started = time.monotonic()
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, text=True
            )
            try:
                if cancel is not None:
                    cancelled = _cancel(process, argv, cancel, started, timeout)
                returncode = process.wait(max(0.0, started + timeout - time.monotonic()))
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            seconds = time.monotonic() - started
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
    finally:
        _buildah("rm", container, capture=True)
    # buildah's own closing lines on stderr are not the action's.
    stderr = "".join(
        line
        for line in stderr.splitlines(keepends=True)
        if not line.startswith(("subprocess exited with status", "Error: exit status"))
    )
    completed = subprocess.CompletedProcess(command, returncode, stdout, stderr)
    return collect(step, completed, seconds, cancelled)


def _cancel(
    run: subprocess.Popen[str], argv: Sequence[str], cancel: Cancel, started: float, timeout: float
) -> Cancelled:
    """Signal the action's process once `cancel.when()` holds; time its end and the run's.

    actions/runner sends SIGINT to `docker run`, which forwards it to the container's first
    process. `buildah run` does not forward it: on SIGINT it kills its child outright
    ("subprocess exited on killed"). So the signal goes to the action's process itself, found
    through /proc as the descendant of `buildah run` whose command line is the image's
    ENTRYPOINT and CMD. With --isolation chroot there is no PID namespace of its own (the
    process has a pid of this machine, its parent is buildah-chroot-exec): `Cancelled` says
    what it found, and PID 1 itself is tested under `unshare` in tests/test_cancellation.py.
    """
    end = started + timeout
    pid = None
    while pid is None or not cancel.when():
        if run.poll() is not None:
            raise RuntimeError(f"the run ended (exit {run.returncode}) before it was cancelled")
        if time.monotonic() > end:
            raise RuntimeError(f"not cancelled within {timeout} s")
        pid = pid or _find_process(run.pid, exec_target(argv))
        time.sleep(0.02)
    status = _proc_status(pid)
    namespaces = status.get("NSpid", str(pid)).split()
    parent = _command_line(int(status["PPid"]))[:1] or ["?"]
    own_namespace = os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    sent = time.monotonic()
    os.kill(pid, cancel.signal)
    # Ended is gone or a zombie: its parent may reap it a little later.
    while _proc_status(pid).get("State", "Z").startswith(("R", "S", "D", "T", "t")):
        if time.monotonic() > end:
            break
        time.sleep(0.005)
    process_ended = time.monotonic() - sent
    run.wait(max(0.0, end - time.monotonic()))
    return Cancelled(
        signal=signal.Signals(cancel.signal).name,
        pid=pid,
        pid_in_container=int(namespaces[-1]),
        own_pid_namespace=own_namespace,
        parent=parent[0],
        signal_after_seconds=round(sent - started, 3),
        process_ended_seconds=round(process_ended, 3),
        run_ended_seconds=round(time.monotonic() - sent, 3),
    )


def _proc_status(pid: int) -> dict[str, str]:
    """/proc/PID/status as a mapping; empty once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return {}
    return {
        key: value.strip() for key, _, value in (line.partition(":") for line in text.splitlines())
    }


def _command_line(pid: int) -> list[str]:
    """/proc/PID/cmdline as arguments; empty once the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def exec_target(argv: Sequence[str]) -> list[str]:
    """The command line the action's process ends up with: an ENTRYPOINT that starts with
    `env` and its options (`--block-signal=INT`) execs the rest, which replaces it."""
    if argv and Path(argv[0]).name == "env":
        rest = list(argv[1:])
        while rest and rest[0].startswith("-"):
            rest.pop(0)
        return rest
    return list(argv)


def _find_process(ancestor: int, argv: list[str]) -> int | None:
    """The descendant of `ancestor` whose command line is exactly `argv`, if it runs yet."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _proc_status(int(entry.name)).get("PPid")
            if parent:
                children.setdefault(int(parent), []).append(int(entry.name))
    todo = list(children.get(ancestor, []))
    while todo:
        pid = todo.pop()
        if _command_line(pid) == argv:
            return pid
        todo += children.get(pid, [])
    return None


def emulator_saw(emulator_url: str, ca: str, method: str, path: str) -> Callable[[], bool]:
    """A `Cancel.when`: true once the emulator (its control API) recorded a request with
    `method` and a path that `path`, a regular expression, matches, after this call: the
    requests of earlier runs do not count."""
    url = emulator_url.rstrip("/") + "/_emulator/requests"
    context = ssl.create_default_context(cafile=ca)
    pattern = re.compile(path)

    def requests() -> list[dict[str, Any]]:
        with urllib.request.urlopen(url, context=context, timeout=10) as answer:  # noqa: S310
            seen: list[dict[str, Any]] = json.load(answer)
        return seen

    earlier = len(requests())

    def seen() -> bool:
        new = requests()[earlier:]
        return any(q["method"] == method and pattern.search(q["path"]) for q in new)

    return seen


def _buildah(*args: str, capture: bool) -> str:
    # buildah from PATH, where the container test installs it.
    done = subprocess.run(
        ["buildah", *args],  # noqa: S607
        capture_output=capture,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout or ""


def _read_exactly(path: Path) -> str:
    """The file's text with its line ends as written (no universal-newline translation)."""
    with path.open(encoding="utf-8", newline="") as stream:
        return stream.read()


def _pairs(values: Sequence[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in values:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise SystemExit(f"{what} {item!r}: expected NAME=VALUE")
        pairs[key] = value
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    """Run an image as one action step; write what the runner would show into --out."""
    parser = argparse.ArgumentParser(
        prog="python -m store_emulator.actions_runner",
        description="Run a container action's image as GitHub's runner does, with buildah.",
    )
    parser.add_argument("--image", required=True, help="buildah image to run")
    parser.add_argument("--out", type=Path, required=True, help="folder for the run's files")
    parser.add_argument("--with", dest="with_", action="append", default=[], metavar="K=V")
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="step env:")
    parser.add_argument(
        "--file", action="append", default=[], metavar="REL=PATH", help="copy into workspace"
    )
    parser.add_argument(
        "--docker-step", action="store_true", help="a `uses: docker://` step: `with:` only"
    )
    parser.add_argument("--action-yml", type=Path, default=ACTION_YML)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument(
        "--cancel-on",
        metavar="METHOD:PATH_REGEX",
        help="cancel the run once the emulator saw this request (needs --emulator, --emulator-ca)",
    )
    parser.add_argument("--cancel-signal", choices=("INT", "TERM"), default="INT")
    parser.add_argument("--emulator", metavar="URL", help="the Store emulator, for --cancel-on")
    parser.add_argument("--emulator-ca", metavar="PATH", help="the emulator's CA certificate")
    args = parser.parse_args(argv)
    cancel = None
    if args.cancel_on:
        method, colon, path = args.cancel_on.partition(":")
        if not colon or not args.emulator or not args.emulator_ca:
            parser.error("--cancel-on METHOD:PATH_REGEX needs --emulator and --emulator-ca")
        seen = emulator_saw(args.emulator, args.emulator_ca, method, path)
        cancel = Cancel(seen, signal.Signals[f"SIG{args.cancel_signal}"])
    files: dict[str, str | bytes] = {
        relative: Path(source).read_bytes()
        for relative, source in _pairs(args.file, "--file").items()
    }
    args.out.mkdir(parents=True, exist_ok=True)
    run = buildah_run(
        args.image,
        _pairs(args.with_, "--with"),
        Layout(args.out / "runner"),
        env=_pairs(args.env, "--env"),
        docker_step=args.docker_step,
        action_yml=args.action_yml,
        files=files,
        timeout=args.timeout,
        cancel=cancel,
    )
    (args.out / "stdout").write_text(run.stdout, encoding="utf-8")
    (args.out / "stderr").write_text(run.stderr, encoding="utf-8")
    (args.out / "summary.md").write_text(run.summary, encoding="utf-8")
    (args.out / "outputs.json").write_text(json.dumps(run.outputs), encoding="utf-8")
    (args.out / "run.json").write_text(json.dumps(asdict(run), indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
