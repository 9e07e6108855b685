"""What went wrong on the network, in words a person acts on: the edge where errors are told.

urllib3's and requests' errors name their own classes and objects
(`_WatchedHTTPSPool(host='…', port=443): Max retries exceeded … (Caused by
ProxyError('Unable to connect to proxy', NewConnectionError(…)))`): none of that
means anything to a responder. Here the chain of causes is walked to what happened
(refused, reset, timed out, a name that does not resolve, a proxy in the way), and
said with the host, and the proxy when one was used, named without its password.

A proxy that answers the tunnel with 407 wants credentials: that is an answer, not an
outage, and waiting never clears it: `ProxyRefused` says so, naming the proxy and its
variable as what to check.
"""

from __future__ import annotations

import errno
import http.client
import os
import re
import socket

import requests
import urllib3

from .errors import one_line
from .settings_secrets import is_proxy_variable, without_password

# http.client's words when a proxy refuses the CONNECT: "Tunnel connection failed: 407 …".
_TUNNEL_REFUSED = re.compile(r"Tunnel connection failed: (\d{3})\s*([^'\"\)]*)")
# urllib3 and http.client quote their objects: `SomeClass(host='h', port=1)` or `<… object at 0x…>`.
_OBJECT = re.compile(r"_?\w*(?:Pool|Connection)\w*\(host='([^']*)', port=(\d+)\)")
_ADDRESS = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>")
_ERRNO_WORDS = {
    errno.ECONNREFUSED: "the connection was refused",
    errno.ECONNRESET: "the connection was reset",
    errno.ECONNABORTED: "the connection was aborted",
    errno.EPIPE: "the connection was closed while sending",
    errno.ENETUNREACH: "the network is unreachable",
    errno.EHOSTUNREACH: "the host is unreachable",
    errno.ETIMEDOUT: "the connection timed out",
}


class ProxyRefused(requests.exceptions.ProxyError):
    """The proxy answered the tunnel with a refusal (407: it wants credentials): an
    answer that waiting does not change. Nothing reached the server behind it."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


def proxy_named(proxy: str | None) -> str:
    """`the proxy proxy.corp:3128 (HTTPS_PROXY)`: where it is set, without its password."""
    if not proxy:
        return "the proxy"
    names = sorted(
        name for name, value in os.environ.items() if is_proxy_variable(name) and value == proxy
    )
    where = f" ({', '.join(names)})" if names else ""
    return f"the proxy {one_line(without_password(proxy), 120)}{where}"


def causes(error: BaseException) -> list[BaseException]:
    """The error and what caused it, outermost first (urllib3 keeps them in `reason`)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < 20:
        chain.append(current)
        reason = getattr(current, "reason", None)
        nested = next((arg for arg in current.args if isinstance(arg, BaseException)), None)
        current = (
            reason
            if isinstance(reason, BaseException)
            else nested or current.__cause__ or current.__context__
        )
    return chain


def proxy_refusal(error: BaseException, proxy: str | None) -> ProxyRefused | None:
    """A ProxyRefused when the proxy refused the tunnel with an HTTP status, else None."""
    for cause in causes(error):
        if match := _TUNNEL_REFUSED.search(str(cause)):
            status, reason = int(match.group(1)), match.group(2).strip()
            what = (
                "asks for credentials it was not given or did not accept"
                if status == 407
                else "refused to open a tunnel"
            )
            check = (
                "check the user name and password in the proxy's URL (percent-encode `@`, "
                "`:` and `/` in them), or ask its owners whether this runner may use it"
                if status == 407
                else "check the proxy setting, or add the host to NO_PROXY"
            )
            return ProxyRefused(
                f"{proxy_named(proxy)} {what} (HTTP {status} {reason}".rstrip() + f"): {check}",
                status=status,
            )
    return None


def describe(error: BaseException, proxy: str | None = None) -> str:
    """One line saying what failed below requests, free of internal names."""
    chain = causes(error)
    through_proxy = proxy is not None and any(
        isinstance(cause, (urllib3.exceptions.ProxyError, requests.exceptions.ProxyError))
        for cause in chain
    )
    what = _root_words(chain)
    if through_proxy:
        return f"{proxy_named(proxy)} could not be reached: {what}"
    return what


def _root_words(chain: list[BaseException]) -> str:
    for cause in reversed(chain):  # innermost first: the operating system's own words
        if isinstance(cause, (socket.gaierror, urllib3.exceptions.NameResolutionError)):
            return "the host name could not be resolved"
        if isinstance(cause, OSError) and cause.errno in _ERRNO_WORDS:
            return _ERRNO_WORDS[cause.errno]
        if isinstance(cause, (TimeoutError, urllib3.exceptions.TimeoutError)):
            return "it timed out"
    for cause in reversed(chain):
        for kinds, words in _MALFORMED:
            if isinstance(cause, kinds):
                return words
    return tidy(str(chain[-1]) or type(chain[-1]).__name__)


# Answers broken below HTTP, which urllib3 and http.client tell in Python's words
# (`invalid literal for int() with base 16: b'zz'`, `IncompleteRead(2 bytes read)`).
# Most specific first: an unreadable chunk size is also an IncompleteRead.
_MALFORMED: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    (urllib3.exceptions.InvalidChunkLength, "the answer's chunked body was malformed"),
    (
        (http.client.IncompleteRead, urllib3.exceptions.IncompleteRead),
        "the answer was cut off before its end",
    ),
    (urllib3.exceptions.DecodeError, "the answer's compressed body could not be decoded"),
    (http.client.RemoteDisconnected, "the server closed the connection without answering"),
    (http.client.LineTooLong, "the answer's head had a line too long to be HTTP"),
    (http.client.HTTPException, "the answer was not well-formed HTTP"),
)


def tidy(text: str) -> str:
    """Text from urllib3 or http.client without their internal names: objects become
    the host they stand for, and the line is capped."""
    text = _OBJECT.sub(lambda match: f"{match.group(1)}:{match.group(2)}", text)
    text = _ADDRESS.sub("the connection", text)
    return one_line(text, 300)
