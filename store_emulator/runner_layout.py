"""The runner's folders for one job and one step (FileCommandManager.cs, ContainerInfo.cs): the
job's github context, the folders and their mounts, each step's file commands."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
