"""Sign-in to Microsoft Entra ID with azure-identity, for the Store's scope.

With a client secret: ClientSecretCredential. Without one: ClientAssertionCredential
fed by the job's GitHub OIDC token (a federated credential on the Entra app).
azure-identity's own retries are off so that ours, which log every wait and keep
to the run's deadline, are the only ones.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import ClientAssertionCredential, ClientSecretCredential

from .errors import HaltRolloutError, SignInError, one_line
from .inputs import Settings
from .retry import Pauser, TransientError
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
_HTTP_ERROR = re.compile(r"HTTP Error: (\d{3})")
_NETWORK_TROUBLE = re.compile(
    r"Connection aborted|Connection refused|Connection reset|Failed to establish|timed out"
    r"|RemoteDisconnected|Max retries|IncompleteRead|Connection broken|temporarily_unavailable"
    r"|Expecting value",  # a body that is not JSON: a proxy or gateway page
    re.IGNORECASE,
)
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


def build_credential(settings: Settings, oidc_token: Callable[[], str] | None) -> TokenCredential:
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


def get_access_token(credential: TokenCredential, pauser: Pauser) -> str:
    """An access token for the Store, retried on throttling and outages within the deadline."""
    return pauser.run(lambda: _token_once(credential, pauser))


def _token_once(credential: TokenCredential, pauser: Pauser) -> str:
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
        raise SignInError(
            "Microsoft Entra ID did not answer before the deadline "
            f"(timeout-seconds {pauser.deadline.seconds:g}). Run it again, or raise "
            "timeout-seconds.",
            title="Sign-in timed out",
        )
    result = outcome[0]
    if isinstance(result, str):
        return result
    raise _classify(result)


def _classify(error: BaseException) -> BaseException:
    """Turn what azure-identity raised into a final SignInError or a TransientError.

    azure-identity wraps every failure (HTTP errors, refused connections, bodies
    that are not JSON) in ClientAuthenticationError without the response, so
    the text is all there is to go on.
    """
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
    http_error = _HTTP_ERROR.search(raw)
    correlation = _CORRELATION.search(raw)
    reason = f"{match.group(1)}: {one_line(match.group(2))}" if match else text
    details = reason + (f", Correlation ID: {correlation.group(1)}" if correlation else "")
    if http_error and int(http_error.group(1)) in RETRIED_STATUSES:
        failure = SignInError(f"Microsoft Entra ID kept failing ({details}).")
        return TransientError(f"HTTP {http_error.group(1)} from Microsoft Entra ID", failure)
    if not match and _NETWORK_TROUBLE.search(raw):
        failure = SignInError(f"Microsoft Entra ID could not be reached ({details}).")
        return TransientError("network error talking to Microsoft Entra ID", failure)
    if "Unable to get authority configuration" in raw:
        return SignInError(
            "Microsoft Entra ID does not know this tenant at this authority (its OpenID "
            f"configuration could not be read: {details}). Check tenant-id and authority-host."
        )
    code = match.group(1) if match else ""
    hint = next((h for codes, h in _HINTS.items() if code in codes), DEFAULT_HINT)
    return SignInError(f"Microsoft Entra ID refused the sign-in ({details}). {hint}")
