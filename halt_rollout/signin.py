"""Sign-in to Microsoft Entra ID with azure-identity, for the Store's scope.

With a client secret: ClientSecretCredential. Without one: ClientAssertionCredential
fed by the job's GitHub OIDC token (a federated credential on the Entra app).
azure-identity's own retries are off so that ours, which log every wait and keep
to the run's deadline, are the only ones. Each attempt gets a fresh credential:
MSAL remembers a throttled or failed answer for a while and would otherwise
replay it instead of asking again.

azure-identity's errors carry neither the HTTP status nor Retry-After, so a
response hook records the last answer Entra gave; the error text adds the
AADSTS code and correlation ID. azure-identity's requests go through the run's
deadline-keeping session, so sign-in ends by the deadline like every other call.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.transport import RequestsTransport
from azure.identity import ClientAssertionCredential, ClientSecretCredential

from .errors import HaltRolloutError, SignInError, one_line
from .inputs import Settings
from .network_words import ProxyRefused, tidy
from .oidc_claims import RememberedToken, explain_refusal
from .policy import RETRIED_STATUSES
from .retry import Pauser, TransientError, parse_retry_after

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
# Only the start of an error is parsed: enough for any real one, and it keeps the
# regular expressions' time independent of what a server sends.
_ERROR_TEXT_CHARS = 8192


class LastAnswer:
    """Entra's last answer: its HTTP status, Retry-After, and whether it was JSON (and
    where a redirect pointed); status None: no answer yet."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.retry_after: float | None = None
        self.json, self.html = True, False
        self.redirect_host: str | None = None

    def request_sent(self, request: PipelineRequest[Any]) -> None:
        self.status, self.retry_after, self.redirect_host = None, None, None
        self.json, self.html = True, False

    def answered(self, response: PipelineResponse[Any, Any]) -> None:
        headers = response.http_response.headers
        self.status = response.http_response.status_code
        self.retry_after = parse_retry_after(headers.get("Retry-After"))
        self.json, self.html = _json_or_html(response)
        # Only the host: a redirect's path and query may carry anything.
        location = headers.get("Location") or ""
        self.redirect_host = (urlsplit(location).hostname if "//" in location else None) or None

    @property
    def unusable(self) -> str | None:
        """What makes the answer one no sign-in can use (a redirect, a page that is not
        JSON), or None. Entra answers JSON, and never redirects this flow: such an answer
        comes from something in its place, and waiting does not change it."""
        if self.status is None:
            return None
        if 300 <= self.status < 400:
            where = f" to {self.redirect_host}" if self.redirect_host else ""
            return f"a redirect (HTTP {self.status}){where}"
        if not self.json and self.status not in RETRIED_STATUSES:
            page = "an HTML page" if self.html else "a body that is not JSON"
            return f"HTTP {self.status} with {page}"
        return None


def _json_or_html(response: PipelineResponse[Any, Any]) -> tuple[bool, bool]:
    """(whether the answer's body is JSON, whether it is an HTML page)."""
    answer = response.http_response
    if "json" in (answer.headers.get("Content-Type") or "").lower():
        return True, False
    try:
        body = answer.body()[: _ERROR_TEXT_CHARS * 8]
    except Exception:
        return False, False
    start = body.lstrip()[:1]
    if start in (b"{", b"["):
        return True, False
    return False, start == b"<"


def build_credential(
    settings: Settings,
    oidc_token: Callable[[], str] | None,
    answer: LastAnswer,
    session: requests.Session,
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
        "transport": RequestsTransport(session=session, session_owner=False),
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
    settings: Settings,
    oidc_token: Callable[[], str] | None,
    pauser: Pauser,
    session: requests.Session,
) -> str:
    """An access token for the Store, retried on throttling and outages within the deadline."""
    via_oidc = not settings.client_secret

    def attempt() -> str:
        answer = LastAnswer()
        token = RememberedToken(oidc_token) if oidc_token is not None else None
        credential = build_credential(settings, token, answer, session)
        try:
            access_token: object = credential.get_token(STORE_SCOPE).token
        except Exception as error:  # classified: expected failures become ours
            if pauser.deadline.expired():
                raise _out_of_time(pauser, via_oidc=via_oidc) from None
            failure = _classify(error, answer)
            if isinstance(failure, SignInError):  # no federated credential matched: the claims
                raise explain_refusal(failure, token) from None
            raise failure from None
        # azure-identity hands on whatever `access_token` held: a number is no token.
        if not isinstance(access_token, str) or not access_token.strip():
            raise _unusable_answer(answer.unusable or _NOT_ENTRAS_SHAPE)
        return access_token

    return pauser.run(attempt)


def _out_of_time(pauser: Pauser, *, via_oidc: bool) -> SignInError:
    who = "GitHub's OIDC endpoint or Microsoft Entra ID" if via_oidc else "Microsoft Entra ID"
    if pauser.deadline.cancelled:  # a cancel is said as one, never as the deadline (rule 10)
        return SignInError(
            f"Sign-in did not finish: {pauser.deadline.why()} while {who} had not yet answered.",
            title="Run cancelled",
        )
    return SignInError(
        f"Sign-in did not finish before the deadline: {who} did not answer within "
        f"timeout-seconds ({pauser.deadline.seconds:g}). Run it again, or raise "
        "timeout-seconds.",
        title="Sign-in timed out",
    )


def _classify(error: Exception, answer: LastAnswer) -> Exception:
    """Turn what azure-identity raised into a final SignInError or a TransientError."""
    if isinstance(error, (HaltRolloutError, TransientError)):
        return error  # from our OIDC token source
    if refused := _proxy_refusal(error):
        return SignInError(str(refused), title=f"Proxy refused (HTTP {refused.status})")
    if isinstance(error, (ValueError, KeyError, TypeError, AttributeError, RecursionError)):
        # MSAL parsing an answer that is not what Entra sends (a proxy, a captive portal).
        return _unusable_answer(answer.unusable or _NOT_ENTRAS_SHAPE)
    if not isinstance(
        error, (ServiceRequestError, ServiceResponseError, ClientAuthenticationError)
    ):
        return error  # not an expected failure: let it surface as a defect
    if answer.unusable:
        return _unusable_answer(answer.unusable)
    raw = str(getattr(error, "message", None) or error)[:_ERROR_TEXT_CHARS]
    text = one_line(tidy(raw.removeprefix("Authentication failed: ")))
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
    if not match and answer.status is not None and _not_entras_words(text):
        reason = _NOT_ENTRAS_SHAPE  # MSAL's or Python's words about an odd answer
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
        return _unusable_answer(f"HTTP {answer.status} without a token ({details})")
    if "Unable to get authority configuration" in raw:
        return SignInError(
            "Microsoft Entra ID does not know this tenant at this authority (its OpenID "
            f"configuration could not be read: {details}). Check tenant-id and authority-host."
        )
    code = match.group(1) if match else ""
    hint = next((h for codes, h in _HINTS.items() if code in codes), DEFAULT_HINT)
    return SignInError(f"Microsoft Entra ID refused the sign-in ({details}). {hint}")


# An answer in JSON but not in Entra's shape (a token that is a number, an expiry in words,
# no error description): what MSAL and azure-identity make of it is Python's wording
# (`invalid literal for int()`, `None`, a list's repr), which tells a responder nothing.
_NOT_ENTRAS_SHAPE = "an answer whose fields are not what Entra sends"
_PYTHONS_WORDS = re.compile(
    r"invalid literal|recursion depth|has no attribute|object is not|codec can't|\bNone\b"
    r"|\w+Error\b|Expecting value"
)


def _not_entras_words(text: str) -> bool:
    return not text or text.startswith(("[", "{", "(")) or bool(_PYTHONS_WORDS.search(text))


def _unusable_answer(what: str) -> SignInError:
    """An answer no sign-in can use: not an outage, so never waited on."""
    return SignInError(
        f"Microsoft Entra ID's answer could not be used: {what}, where Entra answers JSON. "
        "Something answers in its place: check authority-host, and whether a proxy or a "
        "captive portal intercepts the runner's requests (HTTPS_PROXY, NO_PROXY). Waiting "
        "does not change such an answer: it was not retried.",
        title="Unusable answer from Microsoft Entra ID",
    )


def _proxy_refusal(error: BaseException) -> ProxyRefused | None:
    """The proxy's refusal (407) that azure-core wrapped in its own error, if it was one."""
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None or isinstance(seen, ProxyRefused):
            return seen
        inner = getattr(seen, "inner_exception", None)
        seen = inner if isinstance(inner, BaseException) else seen.__cause__ or seen.__context__
    return None
