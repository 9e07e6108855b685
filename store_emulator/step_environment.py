"""The environment a step's container gets, as ContainerActionHandler builds it from the
step's inputs (ActionRunner.cs, Handler.cs), the github and runner contexts, and the
image's own ENV for a run on this machine."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .action_files import ACTION_YML
from .runner_layout import FILE_COMMANDS, Job, Layout, Step

# What the image's own ENV gives the process (the Dockerfile's and its Python base's), for
# runs on this machine; in a container the image supplies it. The runner's variables win.
IMAGE_ENV = {
    "PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
}


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


def host_environment(
    container_env: Mapping[str, str],
    layout: Layout,
    *,
    extra: Mapping[str, str | None] | None = None,
) -> dict[str, str]:
    """The container's variables with paths on this machine's side, over the image's ENV.

    `extra` is a test's own hand on the result, applied last; a None value removes one.
    """
    return overlay(IMAGE_ENV | {key: layout.to_host(v) for key, v in container_env.items()}, extra)


def overlay(base: Mapping[str, str], changes: Mapping[str, str | None] | None) -> dict[str, str]:
    """`base` with `changes` applied: a value set, or removed where it is None."""
    result = dict(base)
    for key, value in (changes or {}).items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result
