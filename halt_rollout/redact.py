"""Keeping secrets out of everything the process writes."""

from __future__ import annotations

import threading

REDACTED = "***"


class Redactor:
    """The secrets seen so far, and text with each of them replaced by ***."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str) -> list[str]:
        """Remember a secret (and each of its lines); returns the parts that are new."""
        new = []
        with self._lock:
            for part in [secret, *secret.splitlines()]:
                if part.strip() and part not in self._secrets:
                    self._secrets.add(part)
                    new.append(part)
        return new

    def __call__(self, text: str) -> str:
        # Longest first, so a secret that contains another is hidden whole.
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text
