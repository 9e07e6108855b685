"""Expected failures. Each carries what a person needs to act on it; none is a bug.

Anything raised that is not a `HaltRolloutError` is a defect in this action and
is reported as one (with a traceback); these never are.
"""

from __future__ import annotations

import copy
from typing import Self


class HaltRolloutError(Exception):
    """An expected failure, reported as one error line: a short title and a message."""

    title = "halt-rollout failed"

    def __init__(self, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title

    def extended(self, more: str) -> Self:
        """A new failure like this one, its message followed by `more`."""
        failure = copy.copy(self)
        failure.message = f"{self.message} {more}"
        failure.args = (failure.message,)
        return failure


class InputError(HaltRolloutError):
    """One or more inputs are invalid; nothing was sent anywhere."""

    title = "Invalid input"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems) + ". Nothing was sent to the Store.")


class SignInError(HaltRolloutError):
    """No access token for the Store could be had from Microsoft Entra ID."""

    title = "Sign-in failed"


class StoreError(HaltRolloutError):
    """The Store refused a call, answered something unusable, or could not be reached."""

    title = "Store API call failed"

    def __init__(
        self,
        message: str,
        *,
        title: str | None = None,
        status: int | None = None,
        code: str | None = None,
        store_message: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message, title=title)
        self.status = status
        self.code = code
        self.store_message = store_message
        self.correlation_id = correlation_id


class NothingToHalt(StoreError):
    """No rollout to halt here: a failure for a named target, but not under all-flights."""


TRUNCATED = "…"


def one_line(text: str, limit: int = 300) -> str:
    """Text fit for a single log or annotation line: whitespace folded, length capped."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + TRUNCATED


def shown(text: str, limit: int = 60) -> str:
    """A value quoted for an error message, cut short: it may be huge or hostile."""
    return repr(text if len(text) <= limit else text[: limit - 1] + TRUNCATED)
