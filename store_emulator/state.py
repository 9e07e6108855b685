"""The Store's apps, flights and package rollouts, and the halt state machine."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

NOT_STARTED = "PackageRolloutNotStarted"
IN_PROGRESS = "PackageRolloutInProgress"
COMPLETE = "PackageRolloutComplete"
STOPPED = "PackageRolloutStopped"


class StoreError(Exception):
    """An ingestion-service error: HTTP status plus the body fields it sends."""

    def __init__(self, status: int, code: str, message: str, target: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.target = status, code, message, target

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "data": [],
            "details": [],
            "message": self.message,
            "source": "Ingestion Api",
            "target": self.target,
        }


@dataclass
class Rollout:
    is_package_rollout: bool = False
    percentage: float = 0.0
    status: str = NOT_STARTED
    fallback: str = "0"

    def to_json(self) -> dict[str, Any]:
        return {
            "isPackageRollout": self.is_package_rollout,
            "packageRolloutPercentage": self.percentage,
            "packageRolloutStatus": self.status,
            "fallbackSubmissionId": self.fallback,
        }


@dataclass
class _Listing:
    """An app or a flight: a name and its two submission pointers."""

    name: str
    last_published: str | None
    pending: str | None
    null_style: bool  # True: a missing submission is `null`; False: the key is absent


# A rollout lives on (app, flight or None, submission).
_Key = tuple[str, str | None, str]


class StoreState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._apps: dict[str, _Listing] = {}
        self._flights: dict[tuple[str, str], _Listing] = {}
        self._rollouts: dict[_Key, Rollout] = {}

    # -- set-up --------------------------------------------------------------------------

    def add_app(
        self,
        app_id: str,
        *,
        last_published: str | None = None,
        pending: str | None = None,
        null_style: bool = False,
        name: str = "ApiTestApp",
    ) -> None:
        with self._lock:
            self._apps[app_id] = _Listing(name, last_published, pending, null_style)
            for submission in (last_published, pending):
                if submission is not None:
                    self._rollouts.setdefault((app_id, None, submission), Rollout())

    def add_flight(
        self,
        app_id: str,
        flight_id: str,
        *,
        last_published: str | None = None,
        pending: str | None = None,
        null_style: bool = False,
        name: str = "myflight",
    ) -> None:
        flight = flight_id.lower()  # flight IDs are GUIDs: compare them case-insensitively
        with self._lock:
            self._apps.setdefault(app_id, _Listing("ApiTestApp", None, None, False))
            self._flights[(app_id, flight)] = _Listing(name, last_published, pending, null_style)
            for submission in (last_published, pending):
                if submission is not None:
                    self._rollouts.setdefault((app_id, flight, submission), Rollout())

    def set_rollout(
        self,
        app_id: str,
        submission_id: str,
        *,
        flight_id: str | None = None,
        is_package_rollout: bool = True,
        percentage: float = 25.0,
        status: str = IN_PROGRESS,
        fallback: str = "1212922684621243058",
    ) -> dict[str, Any]:
        """Create or replace a rollout; a missing app or flight is created, empty."""
        flight = flight_id.lower() if flight_id else None
        with self._lock:
            self._apps.setdefault(app_id, _Listing("ApiTestApp", None, None, False))
            if flight is not None:
                self._flights.setdefault((app_id, flight), _Listing("myflight", None, None, False))
            rollout = Rollout(is_package_rollout, float(percentage), status, fallback)
            self._rollouts[(app_id, flight, submission_id)] = rollout
            return rollout.to_json()

    # -- Store API -----------------------------------------------------------------------

    def app_resource(self, app_id: str) -> dict[str, Any]:
        with self._lock:
            app = self._app(app_id)
            resource: dict[str, Any] = {"id": app_id, "primaryName": app.name}
            base = f"applications/{app_id}/submissions"
            self._pointer(
                resource, "lastPublishedApplicationSubmission", app, app.last_published, base
            )
            self._pointer(resource, "pendingApplicationSubmission", app, app.pending, base)
            return resource

    def flight_resource(self, app_id: str, flight_id: str) -> dict[str, Any]:
        with self._lock:
            flight = self._flight(app_id, flight_id)
            resource: dict[str, Any] = {"flightId": flight_id.lower(), "friendlyName": flight.name}
            base = f"flights/{flight_id.lower()}/submissions"
            self._pointer(
                resource, "lastPublishedFlightSubmission", flight, flight.last_published, base
            )
            self._pointer(resource, "pendingFlightSubmission", flight, flight.pending, base)
            return resource

    def rollout(
        self, app_id: str, submission_id: str, flight_id: str | None = None
    ) -> dict[str, Any]:
        with self._lock:
            return self._rollout(app_id, flight_id, submission_id).to_json()

    def halt(self, app_id: str, submission_id: str, flight_id: str | None = None) -> dict[str, Any]:
        with self._lock:
            listing = self._flight(app_id, flight_id) if flight_id else self._app(app_id)
            if not self._exists(app_id, flight_id, submission_id) and self._elsewhere(
                app_id, submission_id
            ):
                # One of the documented causes of a 409 from halt.
                raise StoreError(
                    409,
                    "InvalidOperation",
                    f"Submission {submission_id} does not belong to application {app_id}.",
                    "submission",
                )
            rollout = self._rollout(app_id, flight_id, submission_id)
            if submission_id == listing.pending:
                raise self._invalid_state(submission_id, "the submission is not published")
            if not rollout.is_package_rollout:
                raise self._invalid_state(submission_id, "gradual package rollout is not enabled")
            if rollout.status != IN_PROGRESS:
                raise self._invalid_state(submission_id, f"its status is {rollout.status}")
            rollout.status, rollout.percentage = STOPPED, 0.0
            return rollout.to_json()

    # -- helpers (callers hold the lock) ---------------------------------------------------

    @staticmethod
    def _invalid_state(submission_id: str, why: str) -> StoreError:
        return StoreError(
            409,
            "InvalidState",
            f"The package rollout of submission {submission_id} cannot be halted: {why}. "
            f"Only a published submission whose rollout is {IN_PROGRESS} can be halted.",
            "submission",
        )

    @staticmethod
    def _pointer(
        resource: dict[str, Any], key: str, listing: _Listing, submission: str | None, base: str
    ) -> None:
        if submission is not None:
            resource[key] = {"id": submission, "resourceLocation": f"{base}/{submission}"}
        elif listing.null_style:
            resource[key] = None

    def _app(self, app_id: str) -> _Listing:
        app = self._apps.get(app_id)
        if app is None:
            raise StoreError(
                404, "ResourceNotFound", f"Application {app_id} was not found.", "application"
            )
        return app

    def _flight(self, app_id: str, flight_id: str) -> _Listing:
        self._app(app_id)
        flight = self._flights.get((app_id, flight_id.lower()))
        if flight is None:
            raise StoreError(
                404,
                "ResourceNotFound",
                f"Flight {flight_id} of application {app_id} was not found.",
                "flight",
            )
        return flight

    def _exists(self, app_id: str, flight_id: str | None, submission_id: str) -> bool:
        return (app_id, flight_id.lower() if flight_id else None, submission_id) in self._rollouts

    def _elsewhere(self, app_id: str, submission_id: str) -> bool:
        return any(a != app_id and s == submission_id for a, _, s in self._rollouts)

    def _rollout(self, app_id: str, flight_id: str | None, submission_id: str) -> Rollout:
        if flight_id:
            self._flight(app_id, flight_id)
        else:
            self._app(app_id)
        rollout = self._rollouts.get(
            (app_id, flight_id.lower() if flight_id else None, submission_id)
        )
        if rollout is None:
            raise StoreError(
                404, "ResourceNotFound", f"Submission {submission_id} was not found.", "submission"
            )
        return rollout
