"""The exact shapes of the IDs the Store uses, shared by the input checks and the client.

Every ID ends up in a request path, so nothing that could add a path segment, a
query or a header may match.
"""

from __future__ import annotations

import re

APP_ID = re.compile(r"[A-Za-z0-9]+")
SUBMISSION_ID = re.compile(r"[0-9]+")
GUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
DOMAIN = re.compile(
    r"(?=.{1,253}\Z)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)
HOST = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")
# A package version as the Store shows it (1.4.2.0): up to four numbers of 0 to 65535.
_PART = (
    r"(?:0|[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
)
VERSION = re.compile(rf"{_PART}(?:\.{_PART}){{0,3}}")


def version_key(text: str) -> tuple[int, ...] | None:
    """A package version as four numbers (missing parts are 0); None when it is not one."""
    if not VERSION.fullmatch(text):
        return None
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (4 - len(parts)))
