"""The Store's apps, flights and package rollouts, and the halt state machine; what each
record holds and how it renders is in resources.py."""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from .knobs import Knobs
from .resources import (
    DEFAULT_FALLBACK,
    DEFAULT_GROUP_IDS,
    DEFAULT_RANK,
    IN_PROGRESS,
    STOPPED,
    UPLOAD_BLOB,
    Key,
    Listing,
    Rollout,
    StoreError,
    invalid_state,
    package_json,
    pointer,
    uuid_of,
)


class StoreState:
    def __init__(self, knobs: Knobs | None = None) -> None:
        self._lock = threading.Lock()
        self._knobs = knobs if knobs is not None else Knobs()
        self._apps: dict[str, Listing] = {}
        self._flights: dict[tuple[str, str], Listing] = {}  # in the order added
        self._rollouts: dict[Key, Rollout] = {}
        self._packages: dict[Key, tuple[str | None, ...]] = {}
        # Who stopped each rollout that a halt stopped: the `by` of the one halt that
        # took it (the Store's own clients are "client"; a test's other responder names
        # itself), set when the halt is accepted, before a slow one has taken effect.
        self.stopped_by: dict[Key, str] = {}
        # The upload URLs' signature: a credential, which no client may ever print.
        self.upload_signature = base64.b64encode(secrets.token_bytes(32)).decode()

    # -- set-up --------------------------------------------------------------------------

    def add_app(
        self,
        app_id: str,
        *,
        last_published: str | None = None,
        pending: str | None = None,
        null_style: bool = False,
        name: str = "ApiTestApp",
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """`extra`: more keys for the resource (e.g. a PascalCase `PackageFamilyName`); a
        documented key named there is replaced, for hostile shapes."""
        with self._lock:
            self._apps[app_id] = Listing(
                name, last_published, pending, null_style, dict(extra or {})
            )
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
        extra: Mapping[str, Any] | None = None,
        group_ids: Iterable[str] = DEFAULT_GROUP_IDS,
        rank_higher_than: str = DEFAULT_RANK,
    ) -> None:
        flight = flight_id.lower()  # flight IDs are GUIDs: compare them case-insensitively
        listing = Listing(
            name,
            last_published,
            pending,
            null_style,
            dict(extra or {}),
            tuple(group_ids),
            rank_higher_than,
        )
        with self._lock:
            self._apps.setdefault(app_id, Listing("ApiTestApp", None, None, False))
            self._flights[(app_id, flight)] = listing
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
        fallback: str = DEFAULT_FALLBACK,
        integer_percentage: bool | None = None,
    ) -> dict[str, Any]:
        """Create or replace a rollout; a missing app or flight is created, empty.
        `integer_percentage`: render a whole percentage as an int (None: the knob decides)."""
        flight = flight_id.lower() if flight_id else None
        with self._lock:
            self._apps.setdefault(app_id, Listing("ApiTestApp", None, None, False))
            if flight is not None:
                self._flights.setdefault((app_id, flight), Listing("myflight", None, None, False))
            rollout = Rollout(
                is_package_rollout, float(percentage), status, fallback, integer_percentage
            )
            self._rollouts[(app_id, flight, submission_id)] = rollout
            return self._render(rollout)

    def set_packages(
        self,
        app_id: str,
        submission_id: str,
        versions: Iterable[str | None],
        *,
        flight_id: str | None = None,
    ) -> None:
        """The submission's packages, one per version (None: a package not uploaded yet,
        which has no version). The submission must exist (a listing or a rollout made it)."""
        key = (app_id, flight_id.lower() if flight_id else None, submission_id)
        with self._lock:
            self._rollout(app_id, flight_id, submission_id)  # 404 when there is no such one
            self._packages[key] = tuple(versions)

    # -- Store API -----------------------------------------------------------------------

    def submission(
        self, app_id: str, submission_id: str, flight_id: str | None = None
    ) -> dict[str, Any]:
        """The app submission resource (or the flight submission's) as Microsoft documents
        it: its packages, its rollout under packageDeliveryOptions, and fileUploadUrl."""
        with self._lock:
            rollout = self._rollout(app_id, flight_id, submission_id)
            key = (app_id, flight_id.lower() if flight_id else None, submission_id)
            packages = [
                package_json(submission_id, index, version)
                for index, version in enumerate(self._packages.get(key, ()))
            ]
            delivery = {
                "packageRollout": self._render(rollout),
                "isMandatoryUpdate": False,
                "mandatoryUpdateEffectiveDate": "1601-01-01T00:00:00.0000000Z",
            }
            common: dict[str, Any] = {
                "id": submission_id,
                "status": "Published",
                "statusDetails": {"errors": [], "warnings": [], "certificationReports": []},
                "fileUploadUrl": self._upload_url(key),
                "packageDeliveryOptions": delivery,
                "targetPublishMode": "Immediate",
                "targetPublishDate": "1601-01-01T00:00:00Z",
                "notesForCertification": "",
            }
            if flight_id:
                return {"flightId": flight_id.lower(), **common, "flightPackages": packages}
            return {
                **common,
                "applicationCategory": "Productivity",
                "visibility": "Public",
                "listings": {},
                "hardwarePreferences": [],
                "automaticBackupEnabled": False,
                "canInstallOnRemovableMedia": True,
                "isGameDvrEnabled": False,
                "gamingOptions": [],
                "hasExternalInAppProducts": False,
                "meetAccessibilityGuidelines": True,
                "applicationPackages": packages,
                "enterpriseLicensing": "Online",
                "allowMicrosoftDecideAppAvailabilityToFutureDeviceFamilies": True,
                "friendlyName": f"Submission {submission_id[-2:]}",
                "trailers": [],
            }

    def app_resource(self, app_id: str) -> dict[str, Any]:
        with self._lock:
            app = self._app(app_id)
            resource: dict[str, Any] = {"id": app_id, "primaryName": app.name}
            resource.update(app.extra)
            base = f"applications/{app_id}/submissions"
            pointer(resource, "lastPublishedApplicationSubmission", app, app.last_published, base)
            pointer(resource, "pendingApplicationSubmission", app, app.pending, base)
            resource.update(app.extra)  # again: an extra may replace a pointer
            return resource

    def flight_resource(self, app_id: str, flight_id: str) -> dict[str, Any]:
        with self._lock:
            return self._flight_json(flight_id.lower(), self._flight(app_id, flight_id))

    def list_flights(self, app_id: str, skip: int, top: int | None) -> dict[str, Any]:
        """A page of the app's flights: `top` of them (all when None, at most the page cap)
        after the first `skip`, in the order they were added."""
        with self._lock:
            self._app(app_id)
            flights = [(f, listing) for (a, f), listing in self._flights.items() if a == app_id]
            if not flights and self._knobs.listflights_empty_404:
                raise StoreError(
                    404, "ResourceNotFound", "No package flights were found.", "flight"
                )
            size = len(flights) if top is None else top
            cap = self._knobs.listflights_page_cap
            if cap is not None:
                size = min(size, cap)
            page = flights[skip : skip + size]
            result: dict[str, Any] = {}
            after = skip + len(page)
            if page and after < len(flights) and self._knobs.listflights_next_link:
                asked = size if top is None else top
                result["@nextLink"] = f"applications/{app_id}/listflights?skip={after}&top={asked}"
            later, total = self._knobs.listflights_later_pages, len(flights)
            if skip and later == "empty":
                page = []
            elif skip and later == "repeat":
                page = flights[:size]
            elif skip and later == "recount":
                total += -(-skip // max(size, 1))  # one more for every page before this one
            result["value"] = [self._flight_json(f, listing) for f, listing in page]
            result["totalCount"] = total
            return result

    def rollout(
        self, app_id: str, submission_id: str, flight_id: str | None = None
    ) -> dict[str, Any]:
        with self._lock:
            return self._render(self._rollout(app_id, flight_id, submission_id))

    def halt_under_way(self, app_id: str, submission_id: str, flight_id: str | None = None) -> bool:
        """Whether a halt of this rollout was accepted and is still being applied
        (Knobs.halt_seconds): the Store will read it stopped, not yet."""
        with self._lock:
            return self._rollout(app_id, flight_id, submission_id).halting

    def halt(
        self, app_id: str, submission_id: str, flight_id: str | None = None, *, by: str = "client"
    ) -> dict[str, Any]:
        """Halt the rollout as the Store does (StoreError when it refuses); `by` names who
        asked, for `stopped_by`."""
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
                raise invalid_state(submission_id, "the submission is not published")
            if not rollout.is_package_rollout:
                raise invalid_state(submission_id, "gradual package rollout is not enabled")
            if rollout.halting:
                raise invalid_state(submission_id, "a halt of it is already under way")
            if rollout.status != IN_PROGRESS:
                raise invalid_state(submission_id, f"its status is {rollout.status}")
            self.stopped_by[(app_id, flight_id.lower() if flight_id else None, submission_id)] = by
            seconds = self._knobs.halt_seconds
            if seconds <= 0:
                rollout.status, rollout.percentage = STOPPED, 0.0
                return self._render(rollout)
            # Checked and claimed under the lock: a second halt meanwhile sees `halting`.
            rollout.halting = True
            if self._knobs.halt_answered_at_once:
                timer = threading.Timer(seconds, self._apply_halt, args=(rollout,))
                timer.daemon = True
                timer.start()
                return self._render(rollout)
        time.sleep(seconds)
        return self._apply_halt(rollout)

    def _apply_halt(self, rollout: Rollout) -> dict[str, Any]:
        with self._lock:
            rollout.halting = False
            rollout.status, rollout.percentage = STOPPED, 0.0
            return self._render(rollout)

    # -- helpers (callers hold the lock) ---------------------------------------------------

    def _upload_url(self, key: Key) -> str:
        blob = uuid_of(repr(key))
        signature = quote(self.upload_signature, safe="")
        return (
            f"{UPLOAD_BLOB}{blob}?sv=2014-02-14&sr=b&sig={signature}&se=2016-06-17T21:29:44Z&sp=rwl"
        )

    def _render(self, rollout: Rollout) -> dict[str, Any]:
        return rollout.to_json(self._knobs.integer_percentages)

    def _flight_json(self, flight_id: str, flight: Listing) -> dict[str, Any]:
        resource: dict[str, Any] = {"flightId": flight_id, "friendlyName": flight.name}
        base = f"flights/{flight_id}/submissions"
        pointer(resource, "lastPublishedFlightSubmission", flight, flight.last_published, base)
        pointer(resource, "pendingFlightSubmission", flight, flight.pending, base)
        resource["groupIds"] = list(flight.group_ids)
        resource["rankHigherThan"] = flight.rank_higher_than
        resource.update(flight.extra)
        return resource

    def _app(self, app_id: str) -> Listing:
        app = self._apps.get(app_id)
        if app is None:
            raise StoreError(
                404, "ResourceNotFound", f"Application {app_id} was not found.", "application"
            )
        return app

    def _flight(self, app_id: str, flight_id: str) -> Listing:
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
