"""Expected failures. Each carries what a person needs to act on it; none is a bug.

Anything raised that is not a `HaltRolloutError` is a defect in this action and
is reported as one (with a traceback); these never are.
"""

from __future__ import annotations

import copy
import re
from typing import Self

from .settings_secrets import without_password


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


# What a credential looks like when a person pastes it into the wrong setting, where
# nothing knows it is one: Entra's client secrets (`Xy7Q8Q~…`), JWTs, and any long run of
# letters, digits and token punctuation mixing cases and digits (Entra's older secrets,
# base64). A path or URL (with a `/`) is a token only when it reads as base64 (`+`, `=`).
_ENTRA_SECRET = re.compile(r"[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.")
_TOKEN_RUN = re.compile(r"[A-Za-z0-9+/=_~.:@?*\[\]-]{24,}")
SHAPED_LIKE_A_SECRET = "(a value shaped like a secret, not shown)"  # noqa: S105 (words)


def _looks_like_a_token(run: str) -> bool:
    if "/" in run and not any(c in run for c in "+="):
        return False
    return all(any(test(c) for c in run) for test in (str.isupper, str.islower, str.isdigit))


def shaped_like_a_secret(text: str) -> bool:
    """Whether a value could be a credential pasted into the wrong place."""
    if _ENTRA_SECRET.search(text) or _JWT.search(text):
        return True
    return any(_looks_like_a_token(run) for run in _TOKEN_RUN.findall(text))


def shown(text: str, limit: int = 60) -> str:
    """A value quoted for an error message, cut short: it may be huge or hostile, or a
    secret in the wrong place (a URL's password is masked; a token is not shown at all)."""
    if "@" in text and ("://" in text or ":" in text.rpartition("@")[0]):
        text = without_password(text)
    if shaped_like_a_secret(text):
        return SHAPED_LIKE_A_SECRET
    return repr(text if len(text) <= limit else text[: limit - 1] + TRUNCATED)
