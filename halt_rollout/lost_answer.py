"""How a request through the deadline's transport fails: no answer, no time, or too much."""

from __future__ import annotations

import requests


class LostAnswer(requests.exceptions.ConnectionError):
    """No usable answer came; `sent` is true when the request may have reached the server."""

    def __init__(self, message: str, *, sent: bool, request: requests.PreparedRequest) -> None:
        super().__init__(message, request=request)
        self.sent = sent


class DeadlinePassed(LostAnswer):
    """The request was cut off (`sent`), or never started, because its time was up."""


class AnswerTooLarge(requests.exceptions.ConnectionError):
    """The answer's body was larger than any answer the API documents."""
