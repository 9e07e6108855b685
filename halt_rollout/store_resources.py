"""What the Store's answers describe (rollouts, flights, submissions), read as the live API
sends them: keys may be absent or differently cased, percentages integers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import one_line
from .shapes import GUID, SUBMISSION_ID

STOPPED = "PackageRolloutStopped"


@dataclass(frozen=True)
class Rollout:
    """A submission's package rollout, as the Store reports it."""

    is_package_rollout: bool
    percentage: float
    status: str
    fallback_submission_id: str

    @classmethod
    def from_json(cls, body: Any) -> Rollout:
        """Parse the Store's rollout object; ValueError when it is not one."""
        if not isinstance(body, dict):
            raise ValueError("the answer is not a JSON object")
        flag = field(body, "isPackageRollout")
        percentage = field(body, "packageRolloutPercentage")
        status = field(body, "packageRolloutStatus")
        fallback = field(body, "fallbackSubmissionId")
        if not isinstance(flag, bool):
            raise ValueError("isPackageRollout is missing or not a boolean")
        if isinstance(percentage, bool) or not isinstance(percentage, int | float):
            raise ValueError("packageRolloutPercentage is missing or not a number")
        # A share of users: 0 to 100. Not infinite, NaN or 400 digits long (json reads
        # all of those, which would break the results' JSON or float() itself); NaN and
        # infinities fail this comparison too.
        if not 0 <= percentage <= 100:
            raise ValueError("packageRolloutPercentage is not between 0 and 100")
        if not isinstance(status, str) or not status:
            raise ValueError("packageRolloutStatus is missing")
        if fallback is None or fallback == "":
            fallback = "0"  # "0" is the Store's own word for "no fallback"
        if (
            isinstance(fallback, bool)
            or not isinstance(fallback, str | int)
            or not SUBMISSION_ID.fullmatch(str(fallback))
        ):
            raise ValueError("fallbackSubmissionId is not a submission ID")
        # Integers (25) and floats (25.0) both arrive; outputs always show a float.
        if len(status) > 100 or not status.isprintable():
            raise ValueError("packageRolloutStatus is not a status")
        return cls(flag, float(percentage), status, str(fallback))

    @property
    def stopped(self) -> bool:
        return self.status == STOPPED


def field(body: Mapping[str, Any], key: str) -> Any:
    """`body[key]`, or the same key in other casing (the live API is not uniform)."""
    if key in body:
        return body[key]
    folded = key.casefold()
    return next((v for k, v in body.items() if isinstance(k, str) and k.casefold() == folded), None)


@dataclass(frozen=True)
class Flight:
    """A package flight of an app, as listflights describes it."""

    flight_id: str
    friendly_name: str
    last_published_submission: str | None


@dataclass(frozen=True)
class UnreadableFlight:
    """An entry of listflights that names no flight: its place, its name if any, and why."""

    number: int  # from 1, in the order the Store listed it
    friendly_name: str | None
    why: str


@dataclass(frozen=True)
class SubmissionRef:
    """Where one submission lives: under the app, or under one of its flights."""

    app_id: str
    submission_id: str
    flight_id: str | None = None

    def path(self, leaf: str = "") -> str:
        """The submission resource's path, or the path of `leaf` under it."""
        flight = f"/flights/{self.flight_id}" if self.flight_id else ""
        resource = f"applications/{self.app_id}{flight}/submissions/{self.submission_id}"
        return f"{resource}/{leaf}" if leaf else resource

    def describe(self) -> str:
        flight = f" (flight {self.flight_id})" if self.flight_id else ""
        return f"submission {self.submission_id} of app {self.app_id}{flight}"


def read_flight(item: Any, number: int) -> Flight | UnreadableFlight:
    """Entry `number` (from 1) of the listing: a flight, or why it names none."""
    if not isinstance(item, dict):
        return UnreadableFlight(number, None, "it is not a JSON object")
    name = field(item, "friendlyName")
    friendly_name = one_line(name, 200) if isinstance(name, str) and name.strip() else None
    flight_id = field(item, "flightId")
    if not isinstance(flight_id, str) or not GUID.fullmatch(flight_id):
        why = "it has no flightId" if flight_id is None else "its flightId is not a GUID"
        return UnreadableFlight(number, friendly_name, why)
    submission = field(item, "lastPublishedFlightSubmission")
    submission_id = field(submission, "id") if isinstance(submission, dict) else None
    if isinstance(submission_id, bool) or not SUBMISSION_ID.fullmatch(str(submission_id or "")):
        submission_id = None
    return Flight(
        flight_id,
        friendly_name or flight_id,
        str(submission_id) if submission_id is not None else None,
    )


def is_flights_page(link: str, app_id: str) -> bool:
    """A relative link to another page of this app's listflights, with paging only."""
    path, _, query = link.lstrip("/").partition("?")
    # Microsoft's own page writes it both with and without a slash before the query.
    if path.rstrip("/").lower() != f"applications/{app_id}/listflights".lower():
        return False
    return all(
        name in ("top", "skip") and value.isdigit() and value.isascii()
        for name, _, value in (part.partition("=") for part in query.split("&"))
    )
