"""The job's GitHub OIDC token, for Entra's token exchange (a federated credential).

Used by the action and by the command line when it runs inside a workflow. Not
actions-toolkit's get_id_token: it has no deadline and folds the HTTP status
into a message, so a hung or throttled endpoint could not be retried.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from urllib.parse import urlencode

import requests

from .errors import SignInError, one_line
from .lost_answer import AnswerTooLarge, DeadlinePassed
from .network_words import ProxyRefused, tidy
from .policy import RETRIED_STATUSES
from .retry import TransientError, parse_retry_after

OIDC_AUDIENCE = "api://AzureADTokenExchange"
TITLE = "GitHub OIDC token unavailable"
# GitHub's tokens are about a kilobyte; one this large is not theirs, and would be
# printed whole in its mask command.
MAX_TOKEN_CHARS = 16 * 1024
# A JWT in compact form: three base64url parts. Nothing else (a newline, a `::`) can then
# reach the mask command or Entra.
_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


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
    except AnswerTooLarge as error:
        raise _unusable(one_line(str(error))) from None
    except ProxyRefused as error:  # an answer that waiting does not change
        raise SignInError(f"No GitHub OIDC token: {error}.", title=TITLE) from None
    except requests.RequestException as error:
        failure = SignInError(
            f"GitHub's OIDC token endpoint could not be reached ({tidy(str(error))}).",
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
        body = json.loads(response.content)
    except (ValueError, RecursionError):  # however deep a hostile answer nests
        body = None
    token = body.get("value") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise _unusable("it is not a JSON object with a token in `value`")
    if len(token) > MAX_TOKEN_CHARS:
        raise _unusable(f"its token is {len(token)} characters long; GitHub's are about 1000")
    if not _JWT.fullmatch(token):
        raise _unusable("its token is not a JWT")
    protect(token)
    return token


def _unusable(why: str) -> SignInError:
    """Not a token GitHub issues: waiting would not change it, so it is not retried."""
    return SignInError(
        f"GitHub's OIDC token answer was unusable ({why}); nothing was sent to Microsoft "
        "Entra ID. Check that nothing (a proxy) answers in place of the runner's "
        "ACTIONS_ID_TOKEN_REQUEST_URL, or pass client-secret.",
        title=TITLE,
    )
