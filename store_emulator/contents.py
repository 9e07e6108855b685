"""What the emulator holds and serves: the Store's apps, flights, rollouts and packages,
the fake Entra ID and GitHub OIDC, the faults waiting to be served and the requests seen.

`Emulator` (emulator.py) puts this on an HTTPS server; the control API (control.py) edits it.
"""

from __future__ import annotations

import threading
from functools import partial

from . import demo
from .analytics import Analytics
from .entra import Entra
from .faults import Fault, FaultQueue
from .github_oidc import GitHubOidc
from .guard_script import script_rollout, seed_guard
from .knobs import Knobs
from .records import Recorded
from .resources import (
    NOT_STARTED,
)
from .state import StoreState
from .store import PREFIX as STORE_PREFIX


class Contents:
    """The emulator's state, without its server: see `Emulator`."""

    def __init__(self) -> None:
        self.github = GitHubOidc()
        self.entra = Entra(self.github)
        self.knobs = Knobs()  # field behaviours; see knobs.Knobs
        self.state = StoreState(self.knobs)
        self.analytics = Analytics()  # failurehits and usagedaily; see analytics.Analytics
        self._faults = FaultQueue()
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        # The Store's content is set and read through StoreState itself, one signature each:
        # add_app (a missing submission is an absent key, `null` with `null_style`; `extra`
        # adds keys to the resource, e.g. a PascalCase `PackageFamilyName` as captures show);
        # add_flight (listed by listflights in the order added); set_rollout
        # (`integer_percentage`: a whole percentage rendered as an int for this rollout, None:
        # as knobs.integer_percentages says); set_packages (one package per version, None:
        # not uploaded; the submission must exist); rollout (the current rollout object;
        # resources.StoreError when there is none).
        self.add_app = self.state.add_app
        self.add_flight = self.state.add_flight
        self.set_rollout = self.state.set_rollout
        self.set_packages = self.state.set_packages
        self.rollout = self.state.rollout
        self.halt_under_way = self.state.halt_under_way
        # A rollout for halt-when: failing, its analytics scripted: see guard_script
        # (scenario healthy, failing or too-early).
        self.script_guard = partial(script_rollout, self.state, self.analytics)

    # -- Store content -------------------------------------------------------------------

    @property
    def upload_signature(self) -> str:
        """The `sig=` of every submission's fileUploadUrl (decoded): a credential that must
        never appear in anything a client shows. In the URL it is percent-encoded."""
        return self.state.upload_signature

    def seed_guard(self) -> None:
        """The guarded apps of the demo (demo.GUARD_APPS): healthy, failing, and one whose
        analytics the demo refuses (analytics.knobs.status = 403)."""
        seed_guard(self.state, self.analytics)

    def add_foreign_app(self, app_id: str) -> None:
        """An app ID of another Partner Center account: every call about it gets 403, empty."""
        self.knobs.foreign_apps.add(app_id)

    def seed_demo(self) -> None:
        """The examples of docs/store-api.md and docs/contract.md (IDs in store_emulator.demo)."""
        self.add_app(
            demo.APP_ID,
            last_published=demo.PUBLISHED,
            pending=demo.PENDING,
            name=demo.APP_NAME,
            extra={"PackageFamilyName": demo.PACKAGE_FAMILY_NAME},
        )
        self.set_rollout(demo.APP_ID, demo.PUBLISHED, percentage=25.0, fallback=demo.FALLBACK)
        self.set_rollout(
            demo.APP_ID, demo.PENDING, percentage=0.0, status=NOT_STARTED, fallback=demo.PUBLISHED
        )
        self.add_flight(
            demo.APP_ID,
            demo.FLIGHT_ID,
            last_published=demo.PUBLISHED,
            pending=demo.FLIGHT_PENDING,
            name=demo.FLIGHT_NAME,
        )
        self.set_rollout(
            demo.APP_ID,
            demo.PUBLISHED,
            flight_id=demo.FLIGHT_ID,
            percentage=25.0,
            fallback=demo.FALLBACK,
        )
        self.set_rollout(
            demo.APP_ID,
            demo.FLIGHT_PENDING,
            flight_id=demo.FLIGHT_ID,
            percentage=0.0,
            status=NOT_STARTED,
            fallback=demo.PUBLISHED,
        )
        self.add_app(demo.OTHER_APP, last_published=demo.OTHER_SUBMISSION, name=demo.OTHER_APP_NAME)
        self.set_rollout(
            demo.OTHER_APP, demo.OTHER_SUBMISSION, percentage=10.0, fallback=demo.OTHER_FALLBACK
        )
        # Packages: two architectures of one version each; the drafts have one not uploaded.
        self.set_packages(demo.APP_ID, demo.PUBLISHED, [demo.VERSION, demo.VERSION])
        self.set_packages(demo.APP_ID, demo.PENDING, [demo.PENDING_VERSION, None])
        self.set_packages(
            demo.APP_ID,
            demo.PUBLISHED,
            [demo.FLIGHT_VERSION, demo.FLIGHT_VERSION],
            flight_id=demo.FLIGHT_ID,
        )
        self.set_packages(
            demo.APP_ID,
            demo.FLIGHT_PENDING,
            [demo.FLIGHT_PENDING_VERSION],
            flight_id=demo.FLIGHT_ID,
        )
        self.set_packages(demo.OTHER_APP, demo.OTHER_SUBMISSION, [demo.OTHER_VERSION])

    def seed_whole_app(self) -> None:
        """The whole-app case (demo.WHOLE_APP_ID): the app's published submission rolling out,
        a pending draft, and the 23 flights of demo.WHOLE_FLIGHTS with their rollouts."""
        self.add_app(
            demo.WHOLE_APP_ID,
            last_published=demo.WHOLE_PUBLISHED,
            pending=demo.WHOLE_PENDING,
            name=demo.WHOLE_APP_NAME,
            extra={"PackageFamilyName": demo.WHOLE_PACKAGE_FAMILY_NAME},
        )
        self.set_rollout(
            demo.WHOLE_APP_ID, demo.WHOLE_PUBLISHED, percentage=20.0, fallback=demo.WHOLE_FALLBACK
        )
        self.set_rollout(
            demo.WHOLE_APP_ID,
            demo.WHOLE_PENDING,
            percentage=0.0,
            status=NOT_STARTED,
            fallback=demo.WHOLE_PUBLISHED,
        )
        self.set_packages(demo.WHOLE_APP_ID, demo.WHOLE_PUBLISHED, [demo.WHOLE_VERSION] * 2)
        self.set_packages(demo.WHOLE_APP_ID, demo.WHOLE_PENDING, [None])
        for flight in demo.WHOLE_FLIGHTS:
            self.add_flight(
                demo.WHOLE_APP_ID,
                flight.flight_id,
                last_published=flight.published,
                pending=flight.pending,
                name=flight.name,
            )
            if flight.published is not None:
                self.set_rollout(
                    demo.WHOLE_APP_ID,
                    flight.published,
                    flight_id=flight.flight_id,
                    is_package_rollout=flight.is_package_rollout,
                    percentage=flight.percentage,
                    status=flight.status,
                    fallback=flight.fallback,
                )
                self.set_packages(
                    demo.WHOLE_APP_ID,
                    flight.published,
                    [flight.version],
                    flight_id=flight.flight_id,
                )
            if flight.pending is not None:
                self.set_rollout(
                    demo.WHOLE_APP_ID,
                    flight.pending,
                    flight_id=flight.flight_id,
                    percentage=0.0,
                    status=NOT_STARTED,
                    fallback=flight.published or "0",
                )

    # -- faults and records --------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        self._faults.add(fault)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        """Faults not used up yet."""
        return self._faults.pending()

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    @property
    def store_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith(STORE_PREFIX)]

    @property
    def halt_requests(self) -> list[Recorded]:
        return [
            r
            for r in self.store_requests
            if r.method == "POST" and r.path.endswith("/haltpackagerollout")
        ]

    def reset_requests(self) -> None:
        with self._lock:
            self._requests.clear()
