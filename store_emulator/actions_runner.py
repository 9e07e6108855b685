"""Plays GitHub's runner for a container action: its environment in, its files out.

Used by the tests, the demo and the benchmarks to run `entrypoint.py` exactly
as the runner does: every input declared in action.yml is present as
`INPUT_<NAME>` (upper case, hyphens kept), unset ones get action.yml's
default, and the outputs and job summary come back through files.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
ACTION_YML = REPO / "action.yml"
ENTRYPOINT = REPO / "entrypoint.py"
# The runner on Linux splits file commands on "\n" only: a "\r" is part of a value.
_HEREDOC = re.compile(r"^([^\n=<]+)<<(\S+)\n(.*?)\n\2$", re.M | re.S)
_SIMPLE = re.compile(r"^([^\n=<]+)=(.*)$", re.M)


def declared_inputs() -> dict[str, Any]:
    action = yaml.safe_load(ACTION_YML.read_text(encoding="utf-8"))
    inputs: dict[str, Any] = action["inputs"]
    return inputs


def parse_file_command(text: str) -> dict[str, str]:
    """Parse GITHUB_OUTPUT as the runner does: `name<<DELIMITER` blocks and `name=value` lines."""
    values: dict[str, str] = {}
    rest = text
    for match in _HEREDOC.finditer(text):
        values[match.group(1)] = match.group(3)
    rest = _HEREDOC.sub("", text)
    for match in _SIMPLE.finditer(rest):
        values.setdefault(match.group(1), match.group(2))
    return values


@dataclass(frozen=True)
class ActionRun:
    exit_code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    seconds: float

    @property
    def errors(self) -> list[str]:
        """The `::error …::` lines of the log."""
        return [line for line in self.stdout.splitlines() if line.startswith("::error")]


def runner_environment(
    inputs: Mapping[str, str], workdir: Path, *, extra: Mapping[str, str | None] | None = None
) -> dict[str, str]:
    """The environment the runner gives the action's container, files created in workdir.

    `extra` adds variables last; a None value removes one.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("INPUT_", "GITHUB_", "ACTIONS_", "RUNNER_"))
        and key not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "AZURE_CLIENT_SECRET")
    }
    workspace = workdir / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    output, summary = workdir / "set_output", workdir / "step_summary"
    output.touch()
    summary.touch()
    env |= {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_REPOSITORY": "octo-org/octo-repo",
        "GITHUB_RUN_ID": "1",
        "RUNNER_OS": "Linux",
        "RUNNER_TEMP": str(workdir),
        "HOME": str(workdir),
    }
    for name, spec in declared_inputs().items():
        default = str((spec or {}).get("default", ""))
        env[f"INPUT_{name.upper()}"] = inputs.get(name, default)
    unknown = set(inputs) - set(declared_inputs())
    if unknown:
        raise ValueError(f"not inputs of action.yml: {sorted(unknown)}")
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_action(
    inputs: Mapping[str, str],
    *,
    extra_env: Mapping[str, str | None] | None = None,
    workdir: Path | None = None,
    timeout: float = 120,
    files: Mapping[str, str] | None = None,
) -> ActionRun:
    """Run entrypoint.py as a subprocess under the runner's environment."""
    with tempfile.TemporaryDirectory(prefix="halt-rollout-run-") as scratch:
        where = workdir or Path(scratch)
        env = runner_environment(inputs, where, extra=extra_env)
        for relative, content in (files or {}).items():
            (Path(env["GITHUB_WORKSPACE"]) / relative).write_text(content, encoding="utf-8")
        started = time.monotonic()
        completed = subprocess.run(
            [sys.executable, str(ENTRYPOINT)],
            env=env,
            cwd=env["GITHUB_WORKSPACE"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        seconds = time.monotonic() - started
        return ActionRun(
            exit_code=completed.returncode,
            stdout=completed.stdout,
            stderr=completed.stderr,
            outputs=parse_file_command(_read_exactly(Path(env["GITHUB_OUTPUT"]))),
            summary=_read_exactly(Path(env["GITHUB_STEP_SUMMARY"])),
            seconds=seconds,
        )


def _read_exactly(path: Path) -> str:
    """The file's text with its line ends as written (no universal-newline translation)."""
    with path.open(encoding="utf-8", newline="") as stream:
        return stream.read()
