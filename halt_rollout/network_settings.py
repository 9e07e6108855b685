"""The network settings a run takes from its environment, checked before any request.

A CA bundle that is a named pipe would hang the first TLS handshake (opening a
FIFO waits for a writer), and a proxy the transport cannot speak (`socks5://`,
a URL that does not parse) would fail every request until the deadline. Both
are refused up front, naming the variable, and nothing is sent. Which proxy a
URL goes through is requests' own decision (`HTTPS_PROXY`, `ALL_PROXY`,
`NO_PROXY`, ...), asked here the way each request asks it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from urllib.parse import urlsplit

import requests.utils
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from .deadline_adapter import PROXY_SCHEMES
from .errors import HaltRolloutError, shown
from .settings_secrets import is_proxy_variable, without_password

# Where requests (and the contract) take the trusted CAs from.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


class NetworkSettingsError(HaltRolloutError):
    """A CA bundle or proxy setting of the environment cannot be used; nothing was sent."""

    title = "Unusable network settings"


def check_network_settings(urls: Iterable[str]) -> None:
    """Raise NetworkSettingsError when the CA bundle, or the proxy any of `urls` would
    go through, cannot be used."""
    problems = _ca_bundle_problems()
    for url in urls:
        problem = _proxy_problem(url)
        if problem and problem not in problems:
            problems.append(problem)
    if problems:
        raise NetworkSettingsError("; ".join(problems) + ". Nothing was sent.")


def _ca_bundle_problems() -> list[str]:
    problems = []
    for name in CA_BUNDLE_VARIABLES:
        path = os.environ.get(name)
        if not path:
            continue
        try:
            mode = os.stat(path).st_mode
        except (OSError, ValueError) as error:
            why = getattr(error, "strerror", None) or "not a path"
            problems.append(f"{name} names {shown(path)}, which cannot be read ({why})")
            continue
        if stat.S_ISDIR(mode):
            continue  # a directory of CA certificates: requests takes that too
        if not stat.S_ISREG(mode):
            problems.append(
                f"{name} names {shown(path)}, which is not a regular file (a pipe or a device "
                "would hang the TLS set-up); point it at a PEM file of CA certificates"
            )
        elif not os.access(path, os.R_OK):
            problems.append(f"{name} names {shown(path)}, which cannot be read")
    return problems


def _proxy_problem(url: str) -> str | None:
    try:
        proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
        host = urlsplit(url).hostname or url
    except ValueError:  # a URL that does not parse (the runner's OIDC URL, say)
        return f"{shown(url)} is not a URL that can be reached"
    if not proxy:
        return None
    where = _variable_holding(proxy)
    named = shown(without_password(proxy))
    try:
        parsed = parse_url(requests.utils.prepend_scheme_if_needed(proxy, "http"))  # type: ignore[no-untyped-call]
    except (LocationParseError, ValueError):
        return f"the proxy for {host}, {named} ({where}), is not a URL"
    if (parsed.scheme or "").lower() not in PROXY_SCHEMES:
        return (
            f"the proxy for {host}, {named} ({where}), is a {parsed.scheme}:// proxy, "
            "which halt-rollout cannot use: use an http:// or https:// proxy, or add the host "
            "to NO_PROXY"
        )
    if not parsed.host:
        return f"the proxy for {host}, {named} ({where}), names no host"
    if not _sendable_credentials(proxy):
        return (
            f"the proxy for {host}, {named} ({where}), has a user name or password with "
            "characters outside Latin-1, which the Proxy-Authorization header cannot carry "
            "(percent-encoding does not help: they are decoded first)"
        )
    return None


def _sendable_credentials(proxy: str) -> bool:
    """Whether requests can encode the proxy's credentials, as it does for each request
    (Latin-1); it would otherwise fail every request with a codec's error quoting them."""
    url = requests.utils.prepend_scheme_if_needed(proxy, "http")  # type: ignore[no-untyped-call]
    try:
        user, password = requests.utils.get_auth_from_url(url)
        user.encode("latin-1")
        password.encode("latin-1")
    except (UnicodeEncodeError, ValueError):
        return False
    return True


def _variable_holding(proxy: str) -> str:
    names = sorted(
        name for name, value in os.environ.items() if is_proxy_variable(name) and value == proxy
    )
    return ", ".join(names) or "from the environment"
