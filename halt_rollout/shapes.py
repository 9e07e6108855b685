"""The exact shapes of the IDs the Store uses, shared by the input checks and the client.

Every ID ends up in a request path, so nothing that could add a path segment, a
query or a header may match.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

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

# A Store ID as the Store's pages carry it: 12 letters and digits (9PK3ZQ7WMX2D), in any case.
_STORE_PAGE_ID = re.compile(r"[A-Za-z0-9]{12}")


def store_id_in_page_url(text: str) -> str | None:
    """The Store ID in the address of an app's Store page, upper-cased, or None.

    The pages people copy from: apps.microsoft.com/detail/ID, apps.microsoft.com/store/
    detail/NAME/ID, www.microsoft.com/LOCALE/p/NAME/ID, and ms-windows-store://pdp/?
    productid=ID."""
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme == "ms-windows-store":
        found = [v for k, v in parse_qsl(parts.query) if k.lower() == "productid"]
    elif host == "microsoft.com" or host.endswith(".microsoft.com"):
        found = [segment for segment in parts.path.split("/") if segment][-1:]
    else:
        return None
    if found and _STORE_PAGE_ID.fullmatch(found[0]):
        return found[0].upper()
    return None


def case_hint(app_id: str) -> str:
    """What to say after a 404 for an app ID typed in lower case: Store IDs are upper case."""
    if app_id == app_id.upper():
        return ""
    return f"; Store IDs are upper case: did you mean {app_id.upper()}?"


def version_key(text: str) -> tuple[int, ...] | None:
    """A package version as four numbers (missing parts are 0); None when it is not one."""
    if not VERSION.fullmatch(text):
        return None
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (4 - len(parts)))
