"""Reading and validating inputs, before anything touches the network.

Every ID ends up in a request path, so each is checked against the exact shape
the Store uses: nothing that could add a path segment, a query or a header
ever gets through. All problems are collected and reported together, so a
person fixing a workflow during an incident sees everything at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .errors import InputError
from .github_event import fork_problem

INPUT_NAMES = (
    "app-id",
    "submission-id",
    "flight-id",
    "tenant-id",
    "client-id",
    "client-secret",
    "targets",
    "dry-run",
    "timeout-seconds",
    "store-api-url",
    "authority-host",
)

DEFAULT_TIMEOUT_SECONDS = 180.0
DEFAULT_STORE_API_URL = "https://manage.devcenter.microsoft.com"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
# A targets file is a short hand-written list; anything bigger is a mistake.
MAX_TARGETS_FILE_BYTES = 1_000_000
TARGET_KEYS = ("name", "app-id", "flight-id", "submission-id")

_APP_ID = re.compile(r"[A-Za-z0-9]+")
SUBMISSION_ID = re.compile(r"[0-9]+")
_GUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_DOMAIN = re.compile(
    r"(?=.{1,253}\Z)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)
_HOST = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")
# YAML 1.2 core schema booleans, as GitHub's own toolkit accepts them.
_TRUE = ("true", "True", "TRUE")
_FALSE = ("false", "False", "FALSE")


@dataclass(frozen=True)
class Target:
    """One rollout to halt: an app submission, or a flight submission."""

    app_id: str
    flight_id: str | None = None
    submission_id: str | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        """How logs and the summary name this target."""
        if self.name:
            return self.name
        return f"{self.app_id} flight {self.flight_id}" if self.flight_id else self.app_id


@dataclass(frozen=True)
class Settings:
    targets: tuple[Target, ...]
    tenant_id: str
    client_id: str
    client_secret: str | None
    dry_run: bool
    timeout_seconds: float
    store_api_url: str
    authority_host: str


def secrets_in(raw: Mapping[str, str]) -> list[str]:
    """The raw input values that must never be shown, whatever else is wrong."""
    secret = raw.get("client-secret", "")
    return [secret] if secret else []


def read_settings(
    raw: Mapping[str, str], *, workspace: Path | None, oidc_available: bool
) -> Settings:
    """Validate the raw inputs (already trimmed strings) into settings, or raise InputError.

    A targets path is read relative to `workspace` and must stay inside it (the
    action); with no workspace (the command line) it is a plain path.
    """
    problems: list[str] = []

    def value(name: str) -> str:
        text = raw.get(name, "")
        if _has_control_character(text):
            # Never echo the value: it may be a secret, and it breaks log lines.
            problems.append(f"{name} contains a newline or another control character")
            return ""
        return text

    tenant_id = value("tenant-id")
    client_id = value("client-id")
    client_secret = value("client-secret")
    app_id = value("app-id")
    submission_id = value("submission-id")
    flight_id = value("flight-id")
    targets_path = value("targets")

    if not tenant_id:
        problems.append("tenant-id is required (the Microsoft Entra tenant: a GUID or a domain)")
    elif not (_GUID.fullmatch(tenant_id) or _DOMAIN.fullmatch(tenant_id)):
        problems.append(
            f"tenant-id {tenant_id!r} is neither a GUID nor a domain "
            "(such as contoso.onmicrosoft.com)"
        )
    if not client_id:
        problems.append("client-id is required (the Entra application's client ID, a GUID)")
    elif not _GUID.fullmatch(client_id):
        problems.append(f"client-id {client_id!r} is not a GUID")
    if not client_secret and not oidc_available:
        problems.append(
            fork_problem()  # a fork's pull request can have neither: say so instead
            or "no client-secret was given and this job cannot request a GitHub OIDC token: "
            "add `permissions: id-token: write` to the job (with a federated credential on "
            "the Entra application), or pass client-secret from a repository secret"
        )

    targets: tuple[Target, ...] = ()
    if targets_path:
        if app_id or submission_id or flight_id:
            problems.append(
                "give either targets or app-id (with submission-id and flight-id), not both"
            )
        else:
            targets = _read_targets_file(targets_path, workspace, problems)
    elif not app_id:
        problems.append("app-id is required unless targets is given (the app's Store ID)")
    else:
        target = _check_target(
            {"app-id": app_id, "flight-id": flight_id, "submission-id": submission_id},
            where="",
            problems=problems,
        )
        targets = (target,) if target else ()

    dry_run = _read_bool("dry-run", value("dry-run"), default=False, problems=problems)
    timeout = _read_timeout(value("timeout-seconds"), problems)
    store_api_url = _read_https_url(
        "store-api-url", value("store-api-url") or DEFAULT_STORE_API_URL, problems
    )
    authority_host = _read_https_url(
        "authority-host", value("authority-host") or DEFAULT_AUTHORITY_HOST, problems
    )

    if problems:
        raise InputError(problems)
    return Settings(
        targets=targets,
        tenant_id=tenant_id,
        client_id=client_id,
        client_secret=client_secret or None,
        dry_run=dry_run,
        timeout_seconds=timeout,
        store_api_url=store_api_url,
        authority_host=authority_host,
    )


def _has_control_character(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def _check_target(entry: Mapping[str, str], *, where: str, problems: list[str]) -> Target | None:
    """Check one target's IDs; `where` says which entry of a targets file it is."""
    count = len(problems)
    app_id = entry.get("app-id", "")
    flight_id = entry.get("flight-id", "")
    submission_id = entry.get("submission-id", "")
    if not app_id:
        problems.append(f"{where}app-id is required")
    elif not _APP_ID.fullmatch(app_id):
        problems.append(
            f"{where}app-id {app_id!r} is not a Store ID (ASCII letters and digits, "
            "like 9NBLGGH4R315)"
        )
    if flight_id and not _GUID.fullmatch(flight_id):
        problems.append(f"{where}flight-id {flight_id!r} is not a GUID")
    if submission_id and not SUBMISSION_ID.fullmatch(submission_id):
        problems.append(f"{where}submission-id {submission_id!r} is not a number (digits only)")
    if len(problems) > count:
        return None
    return Target(
        app_id=app_id,
        flight_id=flight_id or None,
        submission_id=submission_id or None,
        name=entry.get("name") or None,
    )


def _read_targets_file(
    path_text: str, workspace: Path | None, problems: list[str]
) -> tuple[Target, ...]:
    path = Path(path_text)
    if workspace is not None:
        path = (workspace / path_text).resolve()
        if not path.is_relative_to(workspace.resolve()):
            problems.append(f"targets {path_text!r} points outside the workspace ({workspace})")
            return ()
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_TARGETS_FILE_BYTES + 1)
    except OSError as error:
        problems.append(f"targets file {path_text!r} cannot be read: {error.strerror}")
        return ()
    if len(data) > MAX_TARGETS_FILE_BYTES:
        problems.append(f"targets file {path_text!r} is larger than {MAX_TARGETS_FILE_BYTES} bytes")
        return ()
    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problems.append(f"targets file {path_text!r} is not valid YAML{at}")
        return ()
    return parse_targets(document, source=path_text, problems=problems)


def parse_targets(document: Any, *, source: str, problems: list[str]) -> tuple[Target, ...]:
    """The targets of a parsed targets file: `targets:` with a list, or the list itself."""
    entries = document.get("targets") if isinstance(document, dict) else document
    if isinstance(document, dict) and set(document) - {"targets"}:
        unknown = ", ".join(sorted(map(str, set(document) - {"targets"})))
        problems.append(f"targets file {source!r} has unknown top-level keys: {unknown}")
    if not isinstance(entries, list) or not entries:
        problems.append(f"targets file {source!r} must hold a non-empty list under `targets:`")
        return ()
    targets: list[Target] = []
    for number, entry in enumerate(entries, start=1):
        where = f"targets entry {number}: "
        if not isinstance(entry, dict):
            problems.append(f"{where}must be a mapping with app-id (and flight-id, submission-id)")
            continue
        unknown_keys = sorted(str(key) for key in entry if key not in TARGET_KEYS)
        if unknown_keys:
            # A typo such as flight_id would otherwise halt the app instead of the flight.
            problems.append(
                f"{where}unknown keys {', '.join(unknown_keys)} (allowed: {', '.join(TARGET_KEYS)})"
            )
            continue
        fields: dict[str, str] = {}
        for key, item in entry.items():
            if item is None:
                continue
            if isinstance(item, bool) or not isinstance(item, str | int):
                problems.append(f"{where}{key} must be a string")
                continue
            text = str(item).strip()
            if _has_control_character(text):
                problems.append(f"{where}{key} contains a newline or another control character")
                continue
            fields[key] = text
        target = _check_target(fields, where=where, problems=problems)
        if target is not None:
            targets.append(target)
    seen: set[tuple[str, str | None, str | None]] = set()
    for target in targets:
        key = (
            target.app_id.upper(),
            target.flight_id and target.flight_id.lower(),
            target.submission_id,
        )
        if key in seen:
            problems.append(f"targets file {source!r} lists {target.label} twice")
        seen.add(key)
    return tuple(targets)


def _read_bool(name: str, text: str, *, default: bool, problems: list[str]) -> bool:
    if not text:
        return default
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    problems.append(f"{name} must be true or false, not {text!r}")
    return default


def _read_timeout(text: str, problems: list[str]) -> float:
    if not text:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        problems.append(f"timeout-seconds must be a positive number of seconds, not {text!r}")
        return DEFAULT_TIMEOUT_SECONDS
    return seconds


def _read_https_url(name: str, text: str, problems: list[str]) -> str:
    """An https:// base URL with a host and nothing that could redirect the request."""
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a malformed port
    except ValueError:
        problems.append(f"{name} {text!r} is not a valid URL")
        return text
    if parts.scheme != "https":
        problems.append(f"{name} must be an https:// URL, not {text!r}")
    elif (
        not parts.hostname
        or not _HOST.fullmatch(parts.netloc.rsplit(":", 1)[0] if port else parts.netloc)
        # Even a bare "?" or "#" would turn the API path into a query or a fragment.
        or any(c in text for c in "?#\\ ")
    ):
        problems.append(f"{name} {text!r} must be a plain https://host[:port][/path] URL")
    return text.rstrip("/")
