"""The job's GitHub OIDC token, for Entra's token exchange (a federated credential).

Used by the action and by the command line when it runs inside a workflow. Not
actions-toolkit's get_id_token: it has no deadline and folds the HTTP status
into a message, so a hung or throttled endpoint could not be retried.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from urllib.parse import urlencode

import requests

from .deadline import DeadlinePassed
from .errors import SignInError, one_line
from .policy import RETRIED_STATUSES
from .retry import TransientError, parse_retry_after

OIDC_AUDIENCE = "api://AzureADTokenExchange"
TITLE = "GitHub OIDC token unavailable"


def oidc_available() -> bool:
    """True when the job has `permissions: id-token: write`."""
    return bool(
        os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")
        and os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    )


def request_oidc_token(protect: Callable[[str], object], session: requests.Session) -> str:
    """A GitHub OIDC token, masked before it is returned; `session` keeps the deadline."""
    url = os.environ["ACTIONS_ID_TOKEN_REQUEST_URL"]
    request_token = os.environ["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
    protect(request_token)
    separator = "&" if "?" in url else "?"
    try:
        response = session.get(
            f"{url}{separator}{urlencode({'audience': OIDC_AUDIENCE})}",
            headers={"Authorization": f"Bearer {request_token}", "Accept": "application/json"},
        )
    except DeadlinePassed as error:
        failure = SignInError(f"No GitHub OIDC token: {error}.", title=TITLE)
        raise TransientError("timeout-seconds ran out", failure) from None
    except requests.RequestException as error:
        failure = SignInError(
            f"GitHub's OIDC token endpoint could not be reached ({one_line(str(error))}).",
            title=TITLE,
        )
        raise TransientError("network error talking to GitHub's OIDC endpoint", failure) from None
    if response.status_code != 200:
        failure = SignInError(
            f"GitHub's OIDC token endpoint answered HTTP {response.status_code}. The job "
            "needs `permissions: id-token: write`; otherwise pass client-secret.",
            title=TITLE,
        )
        if response.status_code in RETRIED_STATUSES:
            raise TransientError(
                f"{response.status_code} from GitHub's OIDC endpoint",
                failure,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        raise failure
    try:
        token = response.json()["value"]
    except (ValueError, KeyError, TypeError, RecursionError):
        token = None
    if not isinstance(token, str) or not token:
        raise SignInError("GitHub's OIDC token endpoint answered without a token.", title=TITLE)
    protect(token)
    return token
