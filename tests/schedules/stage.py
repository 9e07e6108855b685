"""The Store a schedule describes: an emulator seeded, knobbed and faulted as it says."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from store_emulator import Emulator, Fault, Recorded, StoreError
from store_emulator.responses import Response

from .model import (
    APP,
    CALLS,
    COMPLETE,
    HOSTILE_NAMES,
    IN_PROGRESS,
    METHODS,
    NO_ROLLOUT,
    OTHER_APP,
    STOPPED,
    Key,
    Schedule,
)

RIVAL = "rival"  # the other responder's name in StoreState.stopped_by
_ROLLOUT_CALL = re.compile(r"/(?:halt)?packagerollout$")


class ScheduleEmulator(Emulator):
    """The emulator, noting what each rollout read or halt answered with (the
    packageRolloutStatus of its body), so the checks know what the run was told."""

    def __init__(self) -> None:
        super().__init__()
        self.told: dict[int, str] = {}  # id(Recorded) -> packageRolloutStatus answered

    def dispatch(self, req: Recorded, base_url: str) -> Response:
        response = super().dispatch(req, base_url)
        if response.status == 200 and _ROLLOUT_CALL.search(req.path):
            with contextlib.suppress(ValueError, AttributeError):
                self.told[id(req)] = str(json.loads(response.body).get("packageRolloutStatus"))
        return response

    def answered(self, req: Recorded) -> str | None:
        """The rollout status this request's complete answer said, if the run got it."""
        if req.status != 200 or req.fault not in (None, "delay"):
            return None
        return self.told.get(id(req))


class RivalFault(Fault):
    """Another responder's halt lands just before this run's: ours then gets a 409."""

    def __init__(self, emu: Emulator, key: Key, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._emu, self._key = emu, key

    def response(self) -> Response:
        rival_halt(self._emu, self._key)
        return super().response()


def rival_halt(emu: Emulator, key: Key) -> None:
    app, flight, submission = key
    with contextlib.suppress(StoreError):  # not haltable (any more): nothing to do
        emu.state.halt(app, submission, flight, by=RIVAL)


def _set_rollout(emu: Emulator, app: str, flight: str | None, submission: str, status: str) -> None:
    if status == NO_ROLLOUT:
        emu.set_rollout(
            app,
            submission,
            flight_id=flight,
            is_package_rollout=False,
            percentage=0.0,
            status="PackageRolloutNotStarted",
            fallback="0",
        )
        return
    percentage = {IN_PROGRESS: 25.0, STOPPED: 0.0, COMPLETE: 100.0}[status]
    emu.set_rollout(app, submission, flight_id=flight, percentage=percentage, status=status)


def _draft(emu: Emulator, app: str, flight: str | None, submission: str) -> None:
    emu.set_rollout(
        app, submission, flight_id=flight, percentage=0.0, status="PackageRolloutNotStarted"
    )


def stage(emu: ScheduleEmulator, plan: Schedule) -> None:
    """Seed the Store, set its knobs and add the faults of `plan`."""
    app_rollout, other_rollout = plan.rollouts[0], plan.rollouts[1]
    app_name = HOSTILE_NAMES[plan.seed % len(HOSTILE_NAMES)] if plan.hostile_names else "Soak App"
    emu.add_app(
        APP, last_published=app_rollout.submission_id, pending=plan.app_pending, name=app_name
    )
    emu.add_app(OTHER_APP, last_published=other_rollout.submission_id, name="Other App")
    if plan.app_pending:
        _draft(emu, APP, None, plan.app_pending)
    for flight in plan.flights:
        emu.add_flight(
            APP,
            flight.flight_id,
            last_published=flight.published,
            pending=flight.pending,
            name=flight.name,
        )
        if flight.pending:
            _draft(emu, APP, flight.flight_id, flight.pending)
    for rollout in plan.rollouts:
        _set_rollout(emu, rollout.app_id, rollout.flight_id, rollout.submission_id, rollout.status)
        emu.set_packages(
            rollout.app_id, rollout.submission_id, rollout.versions, flight_id=rollout.flight_id
        )
    knobs = emu.knobs
    knobs.halt_seconds = plan.halt_seconds
    knobs.halt_answered_at_once = plan.halt_at_once
    knobs.listflights_page_cap = plan.page_cap
    knobs.listflights_next_link = plan.next_link
    knobs.listflights_later_pages = plan.later_pages
    if plan.rival is not None and plan.rival.before_ours:
        # The first halt this run sends for that rollout meets the rival's, just landed.
        submission = re.escape(plan.rival.key[2])
        emu.add_fault(
            RivalFault(
                emu,
                plan.rival.key,
                method="POST",
                path=rf"/submissions/{submission}/haltpackagerollout$",
                status=409,
                body={
                    "code": "InvalidState",
                    "data": [],
                    "details": [],
                    "message": "The package rollout cannot be halted: its status is "
                    "PackageRolloutStopped.",
                    "source": "Ingestion Api",
                    "target": "submission",
                },
            )
        )
    for fault in plan.faults:
        emu.add_fault(
            Fault(
                method=METHODS.get(fault.call, "GET"),
                path=CALLS[fault.call],
                times=fault.times,
                kind=fault.kind,
                status=fault.status,
                body=fault.body,
                headers=dict(fault.headers),
                seconds=fault.seconds,
            )
        )


def final_statuses(emu: Emulator, plan: Schedule) -> dict[Key, str]:
    return {
        r.key: str(emu.rollout(r.app_id, r.submission_id, r.flight_id)["packageRolloutStatus"])
        for r in plan.rollouts
    }
