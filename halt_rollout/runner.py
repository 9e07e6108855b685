"""The GitHub Actions runner's side: the one module that knows its wire format.

Inputs, outputs, masks and annotations go through `actions-toolkit`; what it
lacks (the job summary, a GitHub OIDC request with a timeout and the status
code kept) is filled in here. Every text leaving the process passes through
`redact`, so a secret never reaches a log, the summary or an output, even
where the runner's own masking would not apply (files it does not scan).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlencode

import requests
from actions_toolkit import core
from actions_toolkit.command import issue_command

from .errors import SignInError, one_line
from .redact import Redactor
from .retry import TransientError, parse_retry_after
from .store import RETRIED_STATUSES

OIDC_AUDIENCE = "api://AzureADTokenExchange"


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
        with self._lock:
            core.info(self.redact(line))
            sys.stdout.flush()

    def error(self, title: str, message: str) -> None:
        """One `::error title=…::` annotation (escaped by the toolkit)."""
        with self._lock:
            issue_command("error", {"title": self.redact(title)}, self.redact(message))
            sys.stdout.flush()

    def group(self, title: str, lines: Iterable[str]) -> None:
        with self._lock:
            core.start_group(self.redact(title))
            for line in lines:
                core.info(self.redact(line))
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


# GitHub OIDC: also used by the command line when it runs inside a workflow.


def oidc_available() -> bool:
    """True when the job has `permissions: id-token: write`."""
    return bool(
        os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")
        and os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    )


def request_oidc_token(protect: Callable[[str], object]) -> str:
    """A GitHub OIDC token for Entra's token exchange, masked before it is returned.

    Not actions-toolkit's get_id_token: it has no timeout and folds the HTTP
    status into a message, so a hung or throttled endpoint could not be retried.
    """
    url = os.environ["ACTIONS_ID_TOKEN_REQUEST_URL"]
    request_token = os.environ["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
    protect(request_token)
    separator = "&" if "?" in url else "?"
    try:
        response = requests.get(
            f"{url}{separator}{urlencode({'audience': OIDC_AUDIENCE})}",
            headers={"Authorization": f"Bearer {request_token}", "Accept": "application/json"},
            timeout=(10, 30),
        )
    except requests.RequestException as error:
        failure = SignInError(
            f"GitHub's OIDC token endpoint could not be reached ({one_line(str(error))}).",
            title="GitHub OIDC token unavailable",
        )
        raise TransientError("network error talking to GitHub's OIDC endpoint", failure) from None
    if response.status_code != 200:
        failure = SignInError(
            f"GitHub's OIDC token endpoint answered HTTP {response.status_code}. The job "
            "needs `permissions: id-token: write`; otherwise pass client-secret.",
            title="GitHub OIDC token unavailable",
        )
        if response.status_code in RETRIED_STATUSES:
            raise TransientError(
                f"{response.status_code} from GitHub's OIDC endpoint",
                failure,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        raise failure
    try:
        token = response.json()["value"]
    except (ValueError, KeyError, TypeError):
        token = None
    if not isinstance(token, str) or not token:
        raise SignInError(
            "GitHub's OIDC token endpoint answered without a token.",
            title="GitHub OIDC token unavailable",
        )
    protect(token)
    return token
