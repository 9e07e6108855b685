"""The secrets a run's environment carries, collected where they enter, whatever their shape.

A proxy variable may hold credentials (`http://alice:pw@proxy:3128`), and it is
written by hand on self-hosted runners: without a scheme (`alice:pw@proxy:3128`),
with a raw `/`, `@` or `:` in the password, percent-encoded or not. URL parsers
disagree about such text (a raw `/` ends the authority for one, not for another), so
the userinfo is taken the widest way: everything between the scheme and the LAST `@`.
That way every piece any parser could call a password is a secret: masked before
anything is printed, and redacted from every output, summary and annotation.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote

# A shorter piece of a password is too short to tell from ordinary text.
MIN_PIECE_CHARS = 4
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# The runner's bearer token for OIDC requests.
REQUEST_TOKEN_VARIABLE = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"  # noqa: S105 (a name, not a secret)


def is_proxy_variable(name: str) -> bool:
    """HTTPS_PROXY, https_proxy, ALL_PROXY, HTTP_PROXY, … (requests reads any of them)."""
    return name.lower().endswith("_proxy")


def _split(url: str) -> tuple[str, str | None, str]:
    """(scheme and `//`, the userinfo or None, the rest) of a proxy URL, malformed or not."""
    url = url.strip()
    scheme = _SCHEME.match(url)
    head = scheme.group() if scheme else ""
    rest = url[len(head) :]
    if "@" not in rest:
        return head, None, rest
    userinfo, _, host = rest.rpartition("@")
    return head, userinfo, host


def userinfo_secrets(url: str) -> list[str]:
    """Every form the credentials of a proxy URL can take on their way out.

    The whole userinfo and its password (after the first `:`; the whole userinfo when
    there is none, as a token used as the user name), each as written and
    percent-decoded, and the Basic credential requests puts in Proxy-Authorization.
    A user name alone is not a secret: masking it would hide ordinary words.
    """
    _, userinfo, _ = _split(url)
    if not userinfo:
        return []
    user, colon, password = userinfo.partition(":")
    found = [userinfo, password] if colon else [userinfo]
    decoded_user, decoded_password = unquote(user), unquote(password)
    found += [unquote(part) for part in found]
    # A parser that ends the authority at a raw `/`, `?` or `#` shows the password's pieces
    # (as a port that is not a number, say): long enough ones are secrets too.
    found += [
        piece
        for piece in re.split(r"[/?#@]", password)
        if len(piece) >= MIN_PIECE_CHARS and piece != password
    ]
    basic = f"{decoded_user}:{decoded_password}".encode("utf-8", "surrogateescape")
    found.append(base64.b64encode(basic).decode("ascii"))
    unique: list[str] = []
    for part in found:
        if part.strip() and part not in unique:
            unique.append(part)
    return unique


def without_password(proxy: str) -> str:
    """A proxy URL fit to show: its userinfo replaced by `user:***` (or `***`)."""
    head, userinfo, host = _split(proxy)
    if userinfo is None:
        return proxy
    user, colon, _ = userinfo.partition(":")
    shown_user = f"{user}:***" if colon else "***"
    return f"{head}{shown_user}@{host}"


def proxy_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """The credentials of every proxy variable in the environment."""
    found: list[str] = []
    for name, value in (os.environ if environ is None else environ).items():
        if is_proxy_variable(name):
            found += userinfo_secrets(value)
    return found


def environment_secrets(environ: Mapping[str, str] | None = None) -> Iterable[str]:
    """Every secret the run's environment carries, beside its inputs: the runner's OIDC
    request token and the proxies' credentials. Both the action and the command line
    mask these before they print anything."""
    environ = os.environ if environ is None else environ
    request_token = environ.get(REQUEST_TOKEN_VARIABLE, "")
    return [*([request_token] if request_token else []), *proxy_secrets(environ)]
