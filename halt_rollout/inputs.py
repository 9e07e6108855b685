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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .errors import InputError, shown
from .github_event import fork_problem
from .guard_inputs import GUARD_INPUTS, Guard, read_guard
from .overlap import overlap_problems
from .shapes import APP_ID, DOMAIN, GUID, HOST, SUBMISSION_ID, VERSION, store_id_in_page_url

if TYPE_CHECKING:
    from .targets_file import Entry

INPUT_NAMES = (
    "app-id",
    "submission-id",
    "flight-id",
    "all-flights",
    "tenant-id",
    "client-id",
    "client-secret",
    "targets",
    "dry-run",
    "expected-version",
    "reason",
    "halt-when",
    "failure-ratio",
    "min-failing-devices",
    "event-types",
    "timeout-seconds",
    "store-api-url",
    "authority-host",
)

DEFAULT_TIMEOUT_SECONDS = 180.0
DEFAULT_STORE_API_URL = "https://manage.devcenter.microsoft.com"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
# GitHub ends a job on its hosted runners after 6 hours; no wait needs longer.
MAX_TIMEOUT_SECONDS = 6 * 3600.0
# timeout-seconds: a decimal number of seconds in ASCII digits, as in 180, 42.5 or 1e9.
_SECONDS = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

# A person's words: enough for a sentence or two with a ticket link, not a log file.
MAX_REASON_CHARS = 1000

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
    all_flights: bool = False  # the app's own rollout and every package flight's
    # Found by an all-flights target: a rollout not in progress is left alone, not a failure.
    found_by_all_flights: bool = False
    # The version guard: halt only a submission with a package of this version.
    expected_version: str | None = None
    # halt-when: failing, with its thresholds; None: halt now (the emergency stop).
    guard: Guard | None = None

    @property
    def label(self) -> str:
        """How logs and the summary name this target."""
        if self.name:
            return self.name
        if self.all_flights:
            return f"{self.app_id} (all flights)"
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
    # Why the stop was pressed, in a person's words: one line, capped; '' when not given.
    reason: str = ""
    # Said at the start of the run: what was read differently from how it was written.
    notices: tuple[str, ...] = ()


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
        if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
            # Bytes that are not UTF-8 reach Python as surrogate escapes; no request can carry them.
            problems.append(f"{name} contains bytes that are not UTF-8 text")
            return ""
        return text

    tenant_id = value("tenant-id")
    client_id = value("client-id")
    client_secret = value("client-secret")
    app_id = value("app-id")
    submission_id = value("submission-id")
    flight_id = value("flight-id")
    all_flights = _read_bool("all-flights", value("all-flights"), default=False, problems=problems)
    targets_path = value("targets")
    expected_version = value("expected-version")
    if expected_version and not VERSION.fullmatch(expected_version):
        problems.append(version_problem("expected-version", expected_version))
        expected_version = ""
    notices: list[str] = []
    reason = read_reason(raw.get("reason", ""), notices)
    guard_values = {name: value(name) for name in GUARD_INPUTS}
    before_guard = len(problems)
    guard = read_guard(guard_values, where="", problems=problems)
    if len(problems) > before_guard:
        guard_values = {}  # said once here, not again for every targets entry

    if not tenant_id:
        problems.append("tenant-id is required (the Microsoft Entra tenant: a GUID or a domain)")
    elif not (GUID.fullmatch(tenant_id) or DOMAIN.fullmatch(tenant_id)):
        problems.append(
            f"tenant-id {shown(tenant_id)} is neither a GUID nor a domain "
            "(such as contoso.onmicrosoft.com)"
        )
    if not client_id:
        problems.append("client-id is required (the Entra application's client ID, a GUID)")
    elif not GUID.fullmatch(client_id):
        problems.append(f"client-id {shown(client_id)} is not a GUID")
    if not client_secret and not oidc_available:
        problems.append(
            fork_problem()  # a fork's pull request can have neither: say so instead
            or "no client-secret was given and this job cannot request a GitHub OIDC token: "
            "add `permissions: id-token: write` to the job (with a federated credential on "
            "the Entra application), or pass client-secret from a repository secret"
        )

    targets: tuple[Target, ...] = ()
    if targets_path:
        if app_id or submission_id or flight_id or all_flights:
            problems.append(
                "give either targets or app-id (with submission-id, flight-id or all-flights), "
                "not both"
            )
        else:
            # Only a targets file needs YAML: the common run does not import it.
            from .targets_file import read_targets_file  # noqa: PLC0415

            entries = read_targets_file(targets_path, workspace, problems)
            targets = _check_targets(
                entries,
                source=shown(targets_path),
                run_values={"expected-version": expected_version, **guard_values},
                problems=problems,
            )
    elif not app_id:
        problems.append("app-id is required unless targets is given (the app's Store ID)")
    else:
        target = _check_target(
            {
                "app-id": app_id,
                "flight-id": flight_id,
                "submission-id": submission_id,
                "all-flights": all_flights,
                "expected-version": expected_version,
            },
            where="",
            problems=problems,
        )
        targets = (replace(target, guard=guard),) if target else ()

    dry_run = _read_bool("dry-run", value("dry-run"), default=False, problems=problems)
    timeout = _read_timeout(value("timeout-seconds"), problems, notices)
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
        reason=reason,
        notices=tuple(notices),
    )


def version_problem(where: str, text: str) -> str:
    """What a package version must look like, said the same way for the input and the file."""
    return (
        f"{where} {shown(text)} is not a package version: 1 to 4 numbers from 0 to 65535 "
        "separated by dots, without leading zeros or spaces (like 1.4.2.0)"
    )


def read_reason(text: str, notices: list[str]) -> str:
    """A person's words, kept as data: one line (newlines and tabs become spaces), other
    control characters shown as U+FFFD, at most MAX_REASON_CHARS characters. Never refused:
    a stop must not fail over how its reason was typed."""
    line = " ".join(text.split())
    line = "".join("\ufffd" if _is_control(c) else c for c in line)
    if len(line) > MAX_REASON_CHARS:
        notices.append(
            f"reason is {len(line)} characters long; its first {MAX_REASON_CHARS} are kept"
        )
        line = line[: MAX_REASON_CHARS - 1].rstrip() + "…"
    return line


def _is_control(c: str) -> bool:
    return ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F


def _has_control_character(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def _check_target(
    entry: Mapping[str, str | bool], *, where: str, problems: list[str]
) -> Target | None:
    """Check one target's IDs; `where` says which entry of a targets file it is."""
    count = len(problems)
    app_id = str(entry.get("app-id") or "")
    flight_id = str(entry.get("flight-id") or "")
    submission_id = str(entry.get("submission-id") or "")
    all_flights = entry.get("all-flights") is True
    expected_version = str(entry.get("expected-version") or "")
    if not app_id:
        problems.append(f"{where}app-id is required")
    elif not APP_ID.fullmatch(app_id):
        in_page = store_id_in_page_url(app_id)
        problems.append(
            f"{where}app-id {shown(app_id)} is the address of a Store page, not a Store ID "
            f"(did you mean {in_page}?)"
            if in_page
            else f"{where}app-id {shown(app_id)} is not a Store ID (ASCII letters and digits, "
            "like 9NBLGGH4R315)"
        )
    if flight_id and not GUID.fullmatch(flight_id):
        problems.append(f"{where}flight-id {shown(flight_id)} is not a GUID")
    if submission_id and not SUBMISSION_ID.fullmatch(submission_id):
        problems.append(
            f"{where}submission-id {shown(submission_id)} is not a number (digits only)"
        )
    if all_flights and (flight_id or submission_id):
        problems.append(
            f"{where}all-flights halts every rollout of the app: give it without flight-id "
            "and submission-id"
        )
    if expected_version and not VERSION.fullmatch(expected_version):
        problems.append(version_problem(f"{where}expected-version", expected_version))
    guard = read_guard(entry, where=where, problems=problems) if where else None
    if len(problems) > count:
        return None
    return Target(
        app_id=app_id,
        flight_id=flight_id or None,
        submission_id=submission_id or None,
        name=str(entry.get("name") or "") or None,
        all_flights=all_flights,
        expected_version=expected_version or None,
        guard=guard,
    )


def _check_targets(
    entries: list[Entry], *, source: str, run_values: Mapping[str, str], problems: list[str]
) -> tuple[Target, ...]:
    """The file's targets; the run's expected-version, halt-when and thresholds hold for
    every entry that does not give its own."""
    targets: list[Target] = []
    given = {name: text for name, text in run_values.items() if text}
    for number, entry in enumerate(entries, start=1):
        target = _check_target(given | entry, where=f"targets entry {number}: ", problems=problems)
        if target is not None:
            targets.append(target)
    problems += overlap_problems(targets, source)
    return tuple(targets)


def _read_bool(name: str, text: str, *, default: bool, problems: list[str]) -> bool:
    if not text:
        return default
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    problems.append(f"{name} must be true or false, not {shown(text)}")
    return default


def _read_timeout(text: str, problems: list[str], notices: list[str]) -> float:
    if not text:
        return DEFAULT_TIMEOUT_SECONDS
    # ASCII digits: float() would also read "1_0", "+5", "inf" and digits of other
    # scripts ("١٢٠" as 120), which the guard's inputs never take either.
    seconds = float(text) if _SECONDS.fullmatch(text.strip()) else math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        problems.append(f"timeout-seconds must be a positive number of seconds, not {shown(text)}")
        return DEFAULT_TIMEOUT_SECONDS
    if seconds > MAX_TIMEOUT_SECONDS:
        # "Don't give up" is a fair wish in an incident: honour it as far as a job can run.
        notices.append(
            f"timeout-seconds {shown(text)} is longer than a job on GitHub's hosted runners "
            f"may run; using {MAX_TIMEOUT_SECONDS:g} (6 hours)"
        )
        return MAX_TIMEOUT_SECONDS
    return seconds


def _read_https_url(name: str, text: str, problems: list[str]) -> str:
    """An https:// base URL with a host and nothing that could redirect the request."""
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a malformed port
    except ValueError:
        problems.append(f"{name} {shown(text)} is not a valid URL")
        return text
    if parts.scheme != "https":
        problems.append(f"{name} must be an https:// URL, not {shown(text)}")
    elif (
        not parts.hostname
        or not HOST.fullmatch(parts.netloc.rsplit(":", 1)[0] if port else parts.netloc)
        # Even a bare "?" or "#" would turn the API path into a query or a fragment.
        or any(c in text for c in "?#\\ ")
    ):
        problems.append(f"{name} {shown(text)} must be a plain https://host[:port][/path] URL")
    return text.rstrip("/")
