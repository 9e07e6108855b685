"""Sign-in to Microsoft Entra ID with azure-identity, for the Store's scope.

With a client secret: ClientSecretCredential. Without one: ClientAssertionCredential
fed by the job's GitHub OIDC token (a federated credential on the Entra app).
azure-identity's own retries are off so that ours, which log every wait and keep
to the run's deadline, are the only ones. Each attempt gets a fresh credential:
MSAL remembers a throttled or failed answer for a while and would otherwise
replay it instead of asking again.

azure-identity's errors carry neither the HTTP status nor Retry-After, so a
response hook records the last answer Entra gave; the error text adds the
AADSTS code and correlation ID.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.identity import ClientAssertionCredential, ClientSecretCredential

from .errors import HaltRolloutError, SignInError, one_line
from .inputs import Settings
from .oidc_claims import RememberedToken, explain_refusal
from .retry import Pauser, TransientError, parse_retry_after
from .store import RETRIED_STATUSES

STORE_SCOPE = "https://manage.devcenter.microsoft.com/.default"
# Hosts of Microsoft's own clouds; any other authority skips MSAL's instance
# discovery, which would otherwise ask login.microsoftonline.com about it.
MICROSOFT_AUTHORITIES = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
    }
)
_AADSTS = re.compile(
    r"(AADSTS\d+):?\s*(.*?)(?=\s*(?:Trace ID:|Correlation ID:|Timestamp:|$))", re.S
)
_CORRELATION = re.compile(r"Correlation ID:\s*([0-9A-Fa-f-]+)")
_HINTS = {
    ("AADSTS7000215", "AADSTS7000222"): (
        "The client secret is wrong or expired: create a new one under Certificates & secrets "
        "of the Entra application and update the secret the workflow passes."
    ),
    ("AADSTS700016",): "No application with this client-id exists in the tenant: check "
    "client-id and tenant-id.",
    ("AADSTS90002", "AADSTS900023"): "The tenant was not found: check tenant-id.",
    ("AADSTS70021", "AADSTS700211", "AADSTS700212", "AADSTS700213", "AADSTS700223"): (
        "No federated credential of the Entra application matches this job's GitHub OIDC "
        "token: add one with issuer https://token.actions.githubusercontent.com and this "
        "job's subject (for example repo:ORG/REPO:environment:NAME)."
    ),
}
DEFAULT_HINT = "Check tenant-id, client-id and the client secret or federated credential."


class LastAnswer:
    """The HTTP status and Retry-After of Entra's last answer (None: no answer yet)."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.retry_after: float | None = None

    def request_sent(self, request: PipelineRequest[Any]) -> None:
        self.status, self.retry_after = None, None

    def answered(self, response: PipelineResponse[Any, Any]) -> None:
        self.status = response.http_response.status_code
        self.retry_after = parse_retry_after(response.http_response.headers.get("Retry-After"))


def build_credential(
    settings: Settings, oidc_token: Callable[[], str] | None, answer: LastAnswer
) -> TokenCredential:
    """The credential the settings ask for; oidc_token is used when there is no secret."""
    # azure-identity and MSAL log failures, tracebacks included, through `logging`;
    # we report each failure ourselves, once, in a form a person can act on.
    for name in ("azure", "msal"):
        logging.getLogger(name).addHandler(logging.NullHandler())
        logging.getLogger(name).propagate = False
    options = {
        "authority": settings.authority_host,
        "disable_instance_discovery": urlsplit(settings.authority_host).hostname
        not in MICROSOFT_AUTHORITIES,
        "retry_total": 0,
        "connection_timeout": 10,
        "read_timeout": 30,
        "raw_request_hook": answer.request_sent,
        "raw_response_hook": answer.answered,
    }
    if settings.client_secret:
        return ClientSecretCredential(
            settings.tenant_id, settings.client_id, settings.client_secret, **options
        )
    if oidc_token is None:
        raise SignInError(
            "No client-secret was given and no GitHub OIDC token can be requested: add "
            "`permissions: id-token: write` to the job, or pass client-secret."
        )
    return ClientAssertionCredential(settings.tenant_id, settings.client_id, oidc_token, **options)


def get_access_token(
    settings: Settings, oidc_token: Callable[[], str] | None, pauser: Pauser
) -> str:
    """An access token for the Store, retried on throttling and outages within the deadline."""

    def attempt() -> str:
        answer = LastAnswer()
        token = RememberedToken(oidc_token) if oidc_token is not None else None
        credential = build_credential(settings, token, answer)
        try:
            return _token_once(credential, answer, pauser, via_oidc=not settings.client_secret)
        except SignInError as error:  # no federated credential matched: show the claims
            raise explain_refusal(error, token) from None

    return pauser.run(attempt)


def _token_once(
    credential: TokenCredential, answer: LastAnswer, pauser: Pauser, *, via_oidc: bool
) -> str:
    # get_token blocks on the network; a thread lets the deadline win over a hung server.
    outcome: list[str | BaseException] = []

    def work() -> None:
        try:
            outcome.append(credential.get_token(STORE_SCOPE).token)
        except BaseException as error:  # handed to the caller's thread below
            outcome.append(error)

    worker = threading.Thread(target=work, name="sign-in", daemon=True)
    worker.start()
    worker.join(max(1.0, pauser.deadline.remaining()))
    if not outcome:
        who = "GitHub's OIDC endpoint or Microsoft Entra ID" if via_oidc else "Microsoft Entra ID"
        raise SignInError(
            f"Sign-in did not finish before the deadline: {who} did not answer within "
            f"timeout-seconds ({pauser.deadline.seconds:g}). Run it again, or raise "
            "timeout-seconds.",
            title="Sign-in timed out",
        )
    result = outcome[0]
    if isinstance(result, str):
        return result
    raise _classify(result, answer)


def _classify(error: BaseException, answer: LastAnswer) -> BaseException:
    """Turn what azure-identity raised into a final SignInError or a TransientError."""
    if isinstance(error, (HaltRolloutError, TransientError)):
        return error  # from our OIDC token source
    if not isinstance(
        error, (ServiceRequestError, ServiceResponseError, ClientAuthenticationError)
    ):
        return error  # not an expected failure: let it surface as a defect
    raw = str(getattr(error, "message", None) or error)
    text = one_line(raw.removeprefix("Authentication failed: "))
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return SignInError(
            f"The TLS certificate of the Entra authority could not be verified ({text}). "
            "Behind a TLS-inspecting proxy, point REQUESTS_CA_BUNDLE or SSL_CERT_FILE at "
            "its CA bundle.",
            title="TLS verification failed",
        )
    match = _AADSTS.search(raw)
    correlation = _CORRELATION.search(raw)
    reason = f"{match.group(1)}: {one_line(match.group(2))}" if match else text
    details = ", ".join(
        part
        for part in (
            f"HTTP {answer.status}" if answer.status else "",
            reason,
            f"Correlation ID: {correlation.group(1)}" if correlation else "",
        )
        if part
    )
    if answer.status is None:
        failure = SignInError(f"Microsoft Entra ID could not be reached ({details}).")
        return TransientError("network error talking to Microsoft Entra ID", failure)
    if answer.status in RETRIED_STATUSES:
        failure = SignInError(f"Microsoft Entra ID kept failing ({details}).")
        return TransientError(
            f"{answer.status} from Microsoft Entra ID", failure, retry_after=answer.retry_after
        )
    if answer.status < 400:
        failure = SignInError(
            f"Microsoft Entra ID's answer could not be used ({details}); a proxy may be "
            "answering in its place."
        )
        return TransientError("unusable answer from Microsoft Entra ID", failure)
    if "Unable to get authority configuration" in raw:
        return SignInError(
            "Microsoft Entra ID does not know this tenant at this authority (its OpenID "
            f"configuration could not be read: {details}). Check tenant-id and authority-host."
        )
    code = match.group(1) if match else ""
    hint = next((h for codes, h in _HINTS.items() if code in codes), DEFAULT_HINT)
    return SignInError(f"Microsoft Entra ID refused the sign-in ({details}). {hint}")
