"""Microsoft Entra ID's v2.0 endpoints, as MSAL uses them for client credentials."""

from __future__ import annotations

import re
import secrets
import string
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from .github_oidc import ISSUER as GITHUB_ISSUER
from .github_oidc import SUBJECT, GitHubOidc
from .records import Recorded
from .responses import Response, json_response

SCOPE = "https://manage.devcenter.microsoft.com/.default"
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

_DISCOVERY = re.compile(r"^/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration$")
_TOKEN = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token$")


class _Refused(Exception):
    """A sign-in error: HTTP status, OAuth error, AADSTS code and its text."""

    def __init__(self, status: int, error: str, code: int, text: str) -> None:
        super().__init__(text)
        self.status, self.error, self.code, self.text = status, error, code, text


def _new_secret() -> str:
    # Shaped like an Entra secret (3 chars, a digit, "Q~", 34 more) in Entra's alphabet,
    # whose punctuation (~ . _ -) is safe unquoted in env files and shells.
    alphabet = string.ascii_letters + string.digits + "~._-"
    body = "".join(secrets.choice(alphabet) for _ in range(31))
    head = "".join(secrets.choice(string.ascii_letters) for _ in range(3))
    return f"{head}{secrets.randbelow(10)}Q~{body[:10]}.{body[10:20]}_{body[20:]}-"


def _unknown_tenant(tenant: str) -> _Refused:
    return _Refused(
        400,
        "invalid_tenant",
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud. Check with your subscription administrator, this "
        "may happen if there are no active subscriptions for the tenant.",
    )


def _missing(parameter: str) -> _Refused:
    return _Refused(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{parameter}'.",
    )


class Entra:
    def __init__(self, github: GitHubOidc) -> None:
        self.tenant_id = str(uuid.uuid4())
        self.tenant_domain = "contoso.onmicrosoft.com"
        self.client_id = str(uuid.uuid4())
        self.client_secret = _new_secret()
        self.federated_subject = SUBJECT  # the subject of the app's federated credential
        self._github = github
        self._lock = threading.Lock()
        self._access_tokens: list[str] = []
        self._access_set: set[str] = set()

    @property
    def issued_access_tokens(self) -> list[str]:
        with self._lock:
            return list(self._access_tokens)

    def is_access_token(self, token: str) -> bool:
        with self._lock:
            return token in self._access_set

    def handle(self, req: Recorded, base_url: str) -> Response | None:
        """Answer an Entra request, or None when the path is not Entra's."""
        try:
            if (m := _DISCOVERY.match(req.path)) and req.method == "GET":
                return self._discovery(m["tenant"], base_url)
            if (m := _TOKEN.match(req.path)) and req.method == "POST":
                return self._token(req, m["tenant"])
        except _Refused as refused:
            return _error_response(req, base_url, refused)
        return None

    # -- endpoints -----------------------------------------------------------------------

    def _check_tenant(self, tenant: str) -> None:
        if tenant.lower() not in (self.tenant_id.lower(), self.tenant_domain.lower()):
            raise _unknown_tenant(tenant)

    def _discovery(self, tenant: str, base: str) -> Response:
        self._check_tenant(tenant)
        # Entra names the tenant by GUID in every endpoint, whichever name was asked for.
        root = f"{base}/{self.tenant_id}"
        return json_response(
            200,
            {
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{root}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{root}/v2.0",
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            },
        )

    def _token(self, req: Recorded, tenant: str) -> Response:
        form = dict(parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True))
        self._check_tenant(tenant)
        grant = form.get("grant_type", "")
        if grant != "client_credentials":
            raise _Refused(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        self._check_client(form.get("client_id", ""))
        if "client_assertion" in form:
            self._check_assertion(form)
        else:
            self._check_secret(form.get("client_secret"))
        self._check_scope(form.get("scope", ""))
        token = secrets.token_urlsafe(64)
        with self._lock:
            self._access_tokens.append(token)
            self._access_set.add(token)
        return json_response(
            200,
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": token,
            },
            {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
        )

    # -- checks, in the order Entra reports them -----------------------------------------

    def _check_client(self, client_id: str) -> None:
        if not client_id:
            raise _missing("client_id")
        if client_id.lower() != self.client_id.lower():
            raise _Refused(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                "'Contoso'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You may "
                "have sent your authentication request to the wrong tenant.",
            )

    def _check_secret(self, secret: str | None) -> None:
        if secret is None:
            raise _Refused(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
            )
        if not secrets.compare_digest(secret.encode(), self.client_secret.encode()):
            raise _Refused(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request "
                "is the client secret value, not the client secret ID, for a secret added to "
                f"app '{self.client_id}'.",
            )

    def _check_assertion(self, form: dict[str, str]) -> None:
        kind = form.get("client_assertion_type", "")
        if kind != ASSERTION_TYPE:
            raise _Refused(
                400,
                "invalid_request",
                50027,
                f"Invalid client_assertion_type '{kind}'; expected '{ASSERTION_TYPE}'.",
            )
        claims = self._github.claims(form["client_assertion"])
        if claims is None:  # not one this emulator issued: its signature cannot check out
            raise _Refused(
                400,
                "invalid_client",
                50013,
                "Assertion failed signature validation. [Reason - The key was not found.]",
            )
        for claim, expected, code in (
            ("iss", GITHUB_ISSUER, 700211),
            ("aud", FEDERATED_AUDIENCE, 700212),
            ("sub", self.federated_subject, 700213),
        ):
            if claims[claim] != expected:
                raise _Refused(
                    400,
                    "invalid_client",
                    code,
                    "No matching federated identity record found for presented assertion "
                    f"{_CLAIM_NAMES[claim]} '{claims[claim]}'. Please check your federated "
                    "identity credential Subject, Audience and Issuer against the presented "
                    "assertion.",
                )
        if not claims["nbf"] <= time.time() < claims["exp"]:
            raise _Refused(
                400,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            )

    @staticmethod
    def _check_scope(scope: str) -> None:
        if not scope:
            raise _missing("scope")
        if scope.split() == [SCOPE]:
            return
        if not all(s.endswith("/.default") for s in scope.split()):
            raise _Refused(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        raise _Refused(
            400,
            "invalid_resource",
            500011,
            f"The resource principal named {scope.removesuffix('/.default')} was "
            "not found in the tenant named Contoso. This can happen if the application has not "
            "been installed by the administrator of the tenant or consented to by any user in "
            "the tenant. You might have sent your authentication request to the wrong tenant.",
        )


_CLAIM_NAMES = {"iss": "issuer", "aud": "audience", "sub": "subject"}


def _error_response(req: Recorded, base: str, refused: _Refused) -> Response:
    trace_id = str(uuid.uuid4())
    # Entra echoes the client's client-request-id (MSAL sends one) as the correlation ID.
    correlation_id = req.headers.get("client-request-id") or str(uuid.uuid4())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    body: dict[str, Any] = {
        "error": refused.error,
        "error_description": f"AADSTS{refused.code}: {refused.text} Trace ID: {trace_id} "
        f"Correlation ID: {correlation_id} Timestamp: {stamp}",
        "error_codes": [refused.code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"{base}/error?code={refused.code}",
    }
    return json_response(refused.status, body, {"x-ms-request-id": trace_id})
