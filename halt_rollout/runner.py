"""The GitHub Actions runner's side: the one module that knows its wire format.

Inputs, outputs, masks and annotations go through `actions-toolkit`; what it
lacks (the job summary) is filled in here. Every text leaving the process passes through
`redact`, so a secret never reaches a log, the summary or an output, even
where the runner's own masking would not apply (files it does not scan).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from actions_toolkit import core
from actions_toolkit.command import issue_command

from .redact import Redactor, inert


class ActionsRunner:
    def __init__(self) -> None:
        self.redact = Redactor()
        self._lock = threading.Lock()

    # Inputs -----------------------------------------------------------------

    def read_inputs(self, names: Iterable[str]) -> dict[str, str]:
        """Inputs as the runner passes them (INPUT_APP-ID), or as a shell can (INPUT_APP_ID)."""
        values = {}
        for name in names:
            value = core.get_input(name)
            if not value:
                value = core.get_input(name.replace("-", "_"))
            values[name] = value
        return values

    @property
    def workspace(self) -> Path:
        return Path(os.environ.get("GITHUB_WORKSPACE") or os.getcwd())

    # Secrets ----------------------------------------------------------------

    def protect_runner_secrets(self) -> None:
        """The runner's own token for OIDC requests is a secret too."""
        request_token = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        if request_token:
            self.protect(request_token)

    def protect(self, secret: str) -> None:
        """Mask a secret in the runner's log and redact it from everything we write."""
        for part in self.redact.add(secret):
            with self._lock:
                core.set_secret(part)

    # Log --------------------------------------------------------------------

    def log(self, line: str) -> None:
        """A line of the log; never a workflow command, whatever data it carries."""
        with self._lock:
            core.info(inert(self.redact(line)))
            sys.stdout.flush()

    def error(self, title: str, message: str) -> None:
        """One `::error title=…::` annotation (escaped by the toolkit)."""
        with self._lock:
            issue_command("error", {"title": self.redact(title)}, self.redact(message))
            sys.stdout.flush()

    def group(self, title: str, lines: Iterable[str]) -> None:
        with self._lock:
            core.start_group(inert(self.redact(title)))
            for line in lines:
                core.info(inert(self.redact(line)))
            core.end_group()
            sys.stdout.flush()

    # Outputs and summary ------------------------------------------------------

    def set_outputs(self, outputs: dict[str, str]) -> None:
        for name, value in outputs.items():
            core.set_output(name, self.redact(value))

    def write_summary(self, markdown: str) -> None:
        path = os.environ.get("GITHUB_STEP_SUMMARY")
        if not path:
            return  # run from a shell: the log says it all
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(self.redact(markdown).rstrip("\n") + "\n")
