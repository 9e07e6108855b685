"""Keeping secrets out of everything the process writes."""

from __future__ import annotations

import json
import threading

from .errors import TRUNCATED  # what one_line puts where it cuts a long text

REDACTED = "***"
# A shorter stub of a secret is too short to tell from ordinary text (and too short to use).
MIN_CUT_LENGTH = 4


class Redactor:
    """The secrets seen so far, and text with each of them replaced by ***."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str) -> list[str]:
        """Remember a secret, each of its lines, and how JSON writes them (the `results`
        output and `--json` escape quotes, backslashes and non-ASCII); returns the new ones."""
        parts = [secret, *secret.splitlines()]
        parts += [
            json.dumps(part, ensure_ascii=escaped)[1:-1]
            for part in parts
            for escaped in (True, False)
        ]
        new = []
        with self._lock:
            for part in parts:
                if part.strip() and part not in self._secrets:
                    self._secrets.add(part)
                    new.append(part)
        return new

    def __call__(self, text: str) -> str:
        with self._lock:  # a snapshot: other threads may add secrets meanwhile
            # Longest first, so a secret that contains another is hidden whole.
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, REDACTED)
            if TRUNCATED in text:
                text = _redact_cut_secret(text, secret)
        return text


def _redact_cut_secret(text: str, secret: str) -> str:
    """Hide the start of a secret that a length cap cut off (`…abc` + `…`)."""
    for length in range(len(secret) - 1, MIN_CUT_LENGTH - 1, -1):
        cut = secret[:length] + TRUNCATED
        if cut in text:
            return text.replace(cut, REDACTED + TRUNCATED)
    return text
