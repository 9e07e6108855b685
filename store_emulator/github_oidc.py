"""GitHub Actions' OIDC token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL)."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from typing import Any

from .records import Recorded
from .responses import Response, json_response

PATH = "/github-oidc/token"
ISSUER = "https://token.actions.githubusercontent.com"
SUBJECT = "repo:octo-org/octo-repo:environment:store-production"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class GitHubOidc:
    """Issues JWT-shaped tokens and remembers their claims, so Entra can check them.

    The signature is random bytes: only this emulator's Entra verifies the tokens, by
    looking them up, which is all the action under test relies on.
    """

    def __init__(self) -> None:
        self.request_token = secrets.token_urlsafe(32)
        self.subject = SUBJECT  # change it to mint tokens Entra's federated credential rejects
        self.lifetime = 300  # seconds; GitHub's tokens are short-lived too
        # Above 0: each token's payload also carries a claim nested this deep (a broken or
        # hostile issuer); Entra still checks the token's ordinary claims.
        self.nested_claim_depth = 0
        self._lock = threading.Lock()
        self._issued: dict[str, dict[str, Any]] = {}

    @property
    def issued_tokens(self) -> list[str]:
        with self._lock:
            return list(self._issued)

    def claims(self, token: str) -> dict[str, Any] | None:
        with self._lock:
            return self._issued.get(token)

    def handle(self, req: Recorded) -> Response:
        auth = req.headers.get("authorization", "")
        scheme, _, presented = auth.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            presented.strip().encode(), self.request_token.encode()
        ):
            return json_response(401, {"message": "Bad credentials"})
        if req.method != "GET":
            return json_response(405, {"message": "Method not allowed"}, {"Allow": "GET"})
        audience = req.query.get("audience") or "https://github.com/octo-org"
        return json_response(200, {"value": self._issue(audience)})

    def _issue(self, audience: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "sub": self.subject,
            "environment": "store-production",
            "aud": audience,
            "ref": "refs/heads/main",
            "sha": secrets.token_hex(20),
            "repository": "octo-org/octo-repo",
            "repository_owner": "octo-org",
            "run_id": str(secrets.randbelow(10**10)),
            "event_name": "workflow_dispatch",
            "workflow": "Halt Store rollout",
            "iss": ISSUER,
            "nbf": now - 5,
            "iat": now,
            "exp": now + self.lifetime,
        }
        header = {"typ": "JWT", "alg": "RS256", "kid": secrets.token_hex(20).upper()}
        payload = json.dumps(claims, separators=(",", ":"))
        if self.nested_claim_depth:
            depth = self.nested_claim_depth
            payload = f'{payload[:-1]},"nested":{"[" * depth}{"]" * depth}}}'
        token = ".".join(
            (
                _b64url(json.dumps(header, separators=(",", ":")).encode()),
                _b64url(payload.encode()),
                _b64url(secrets.token_bytes(256)),
            )
        )
        with self._lock:
            self._issued[token] = claims
        return token
