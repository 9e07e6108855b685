"""The event that started the workflow run: is it a pull request from a fork?

GitHub gives a run for a pull request from a fork neither an OIDC token nor the repository's
secrets, whatever the workflow's `permissions:` say, so sign-in cannot work there. That
deserves its own message rather than advice to add `id-token: write`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

# Events whose runs for a fork's pull request get the fork's restrictions.
PULL_REQUEST_EVENTS = frozenset(
    {"pull_request", "pull_request_review", "pull_request_review_comment"}
)
MAX_EVENT_BYTES = 25_000_000


def fork_pull_request(environ: Mapping[str, str] | None = None) -> str | None:
    """'HEAD_REPO → BASE_REPO' when this run is for a pull request from a fork, else None."""
    env = os.environ if environ is None else environ
    if env.get("GITHUB_EVENT_NAME") not in PULL_REQUEST_EVENTS:
        return None
    event = _read_event(env.get("GITHUB_EVENT_PATH", ""))
    pull = event.get("pull_request") if event else None
    if not isinstance(pull, dict):
        return None
    head, base_name = pull.get("head"), _get(pull, "base", "repo", "full_name")
    if isinstance(head, dict) and "repo" in head and head["repo"] is None:
        # GitHub sends a null head repository once the fork has been deleted.
        return f"a deleted fork → {base_name or 'this repository'}"
    head_name = _get(head, "repo", "full_name")
    if isinstance(head_name, str) and isinstance(base_name, str):
        return f"{head_name} → {base_name}" if head_name != base_name else None
    # Without both names, GitHub's own flag for a head repository that is a fork. (With
    # them, names decide: a pull request between two branches of a fork is no fork's.)
    return "a fork → this repository" if _get(head, "repo", "fork") is True else None


def fork_problem(environ: Mapping[str, str] | None = None) -> str | None:
    """The input problem to report instead of the missing-OIDC one, for a fork's pull request."""
    fork = fork_pull_request(environ)
    if fork is None:
        return None
    return (
        f"this run is for a pull request from a fork ({fork}), and GitHub gives such runs "
        "no OIDC token and no secrets, so there is no way to sign in: halt from a "
        "workflow_dispatch run or a branch of this repository instead"
    )


def _read_event(path: str) -> dict[str, Any] | None:
    if not path:
        return None
    try:
        with open(path, "rb") as stream:
            data = json.loads(stream.read(MAX_EVENT_BYTES))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data
