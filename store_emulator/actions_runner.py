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

This module runs the step; the parts live in runner_layout (Job, Layout, Step: the folders
and file commands), step_environment (the container's variables), step_results (what the
runner reads back), runner_cancel (the cancelling) and action_files (the action's files).

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
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from . import launch
from .action_files import ACTION_YML, ENTRYPOINT
from .runner_cancel import Cancel, cancel_run, emulator_saw
from .runner_layout import Job, Layout, prepare
from .step_environment import container_environment, host_environment, step_inputs
from .step_results import ActionRun, collect, parse_file_command

# Used by many tests and scripts as the runner's own words; their homes are above.
__all__ = [
    "ACTION_YML",
    "ENTRYPOINT",
    "ActionRun",
    "Cancel",
    "Job",
    "Layout",
    "buildah_run",
    "main",
    "parse_file_command",
    "run_action",
    "runner_environment",
]


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
        completed, seconds = launch.run_timed(
            command or [sys.executable, str(ENTRYPOINT)],
            env=environment,
            cwd=layout.workspace,
            timeout=timeout,
        )
        return collect(step, completed, seconds)


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
    With `cancel`, the run is cancelled as the runner cancels it (see runner_cancel.cancel_run).
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
                    cancelled = cancel_run(process, argv, cancel, started, timeout)
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
