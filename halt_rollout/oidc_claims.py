"""The claims of the job's GitHub OIDC token that a federated credential must match.

When Entra finds no federated credential for the token (AADSTS70021, 700211, 700212,
700213, 700223), the fix is to copy the token's issuer, subject and audience into one. Those
three claims are not secret (the token's signature is what makes it one), so they are shown.
The payload is decoded without checking the signature: it is only read back to a person.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable

from .errors import SignInError

# Entra's "no matching federated identity record" family.
FEDERATION_CODES = frozenset(
    {"AADSTS70021", "AADSTS700211", "AADSTS700212", "AADSTS700213", "AADSTS700223"}
)
CLAIMS = ("iss", "sub", "aud")
# What tells the route apart: a job of a reusable workflow has a job_workflow_ref outside the
# repository it runs for, and its subject is the caller's (GitHub's OIDC reference).
ROUTE_CLAIMS = ("repository", "job_workflow_ref")
_CODE = re.compile(r"\bAADSTS\d+\b")
# A claim longer than this is not one a person should copy from a log line.
MAX_CLAIM_LENGTH = 400
# GitHub's payloads are well under this; a larger one is not decoded at all.
MAX_PAYLOAD_CHARS = 16 * 1024


def claims(token: str | None, names: tuple[str, ...] = CLAIMS) -> dict[str, str] | None:
    """iss, sub and aud (or `names`) of a JWT's payload, or None when it is not a readable JWT."""
    if not token:
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    if len(payload) > MAX_PAYLOAD_CHARS:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError, RecursionError):  # however deep a hostile one nests
        return None
    if not isinstance(data, dict):
        return None
    found: dict[str, str] = {}
    for name in names:
        value = data.get(name)
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            value = " ".join(value)
        if isinstance(value, str) and value.isprintable() and len(value) <= MAX_CLAIM_LENGTH:
            found[name] = value
    return found or None


def describe(token: str | None) -> str:
    """A sentence giving the token's claims for the federated credential, or ""."""
    found = claims(token)
    if not found:
        return ""
    shown = ", ".join(
        f"{label} {found[name]!r}"
        for name, label in (("iss", "issuer"), ("sub", "subject"), ("aud", "audience"))
        if name in found
    )
    sentence = (
        f"This job's GitHub OIDC token has {shown}: a federated credential needs exactly "
        "these values."
    )
    return " ".join([sentence, *route(found.get("sub", ""), claims(token, ROUTE_CLAIMS) or {})])


def route(subject: str, found: dict[str, str]) -> list[str]:
    """What the subject means for the route in use, where a responder could be misled."""
    said: list[str] = []
    workflow, repository = found.get("job_workflow_ref", ""), found.get("repository", "")
    if repository and workflow and not workflow.startswith(f"{repository}/"):
        said.append(
            f"This job runs the reusable workflow {workflow} for {repository}: the subject "
            f"is the caller's, so the credential's subject is {subject!r}."
        )
    if ":environment:" not in subject and subject.startswith("repo:"):
        said.append(
            "This subject changes with the branch, tag or event; a job with an environment "
            "(`environment:`, or the reusable workflow's `environment` input) has the stable "
            "subject repo:OWNER/REPO:environment:NAME."
        )
    return said


class RememberedToken:
    """An OIDC token source that keeps the last token it gave, to explain a refusal."""

    def __init__(self, source: Callable[[], str]) -> None:
        self._source = source
        self.last: str | None = None

    def __call__(self) -> str:
        token = self._source()
        self.last = token
        return token


def explain_refusal(error: SignInError, token: RememberedToken | None) -> SignInError:
    """The error, with the token's claims added when Entra found no federated credential."""
    codes = set(_CODE.findall(error.message))
    if token is None or token.last is None or not codes & FEDERATION_CODES:
        return error
    sentence = describe(token.last) or (
        "The claims of this job's GitHub OIDC token could not be read (it is not a JWT of "
        "the usual size and shape), so its issuer, subject and audience cannot be shown."
    )
    return SignInError(f"{error.message} {sentence}", title=error.title)
