"""The demo's Store content, defined once: the IDs of store-api.md's and CONTRACT.md's examples,
and an app with 23 package flights for the whole-app stop (issue 9)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from .resources import (
    DEFAULT_FALLBACK,
    DEFAULT_GROUP_IDS,
    DEFAULT_RANK,
    IN_PROGRESS,
    NOT_STARTED,
    STOPPED,
)

# The documented examples (seed_demo).
APP_ID = "9NBLGGH4R315"
APP_NAME = "ApiTestApp"
PUBLISHED = "1152921504621086517"
PENDING = "1152921504621243487"
FALLBACK = DEFAULT_FALLBACK  # the emulator's defaults are the documented examples
FLIGHT_ID = "43e448df-97c9-4a43-a0bc-2a445e736bcd"
FLIGHT_NAME = "myflight"
FLIGHT_PENDING = "1152921504621243647"
OTHER_APP = "9WZDNCRFJ3PS"
OTHER_APP_NAME = "ContosoTools"
OTHER_SUBMISSION = "1152921504621243680"
OTHER_FALLBACK = "1152921504621243001"
# The documented flight resource's group and rank.
(GROUP_ID,) = DEFAULT_GROUP_IDS
RANK_HIGHER_THAN = DEFAULT_RANK
# The packages' versions (the version guard): the published submission's, the draft's.
VERSION = "1.4.2.0"
PENDING_VERSION = "1.4.3.0"
FLIGHT_VERSION = "1.5.0.0"
FLIGHT_PENDING_VERSION = "1.5.1.0"
OTHER_VERSION = "2.0.1.0"
# Seen in captures beside the documented camelCase keys of an app resource.
PACKAGE_FAMILY_NAME = "30481DevCenterAPITester.ApiTestAppForDevbox_ng6try80pwt52"

# The whole app (seed_whole_app): an app rollout plus 23 package flights.
WHOLE_APP_ID = "9PK3ZQ7WMX2D"
WHOLE_APP_NAME = "Contoso Fleet"
WHOLE_PUBLISHED = "1152921504621500001"
WHOLE_PENDING = "1152921504621500002"
WHOLE_FALLBACK = "1152921504621500000"
WHOLE_PACKAGE_FAMILY_NAME = "5224ContosoDeveloper.ContosoFleet_ng6try80pwt52"
# The app's own version; every third flight ships it too, the others a newer beta.
WHOLE_VERSION = "3.2.0.0"
WHOLE_BETA_VERSION = "3.3.0.0"

_FLIGHT_NAMES = (
    "Insiders Fast",
    "Insiders Slow",
    "Beta",
    "Canary",
    "Dogfood",
    "Contoso Employees",
    "Partners",
    "Press Preview",
    "Release Preview",
    "Ring 0",
    "Ring 1",
    "Ring 2",
    "Ring 3",
    "QA Lab",
    "Accessibility Panel",
    "Enterprise Pilot",
    "Education Pilot",
    "Testeurs Québec",
    "ARM64 Testers",
    "Localization Reviewers",
    "Support Engineers",
    "Game Bar Preview",
    "Holdouts",
)
# Flights that differ from "published, rolling out": what a whole-app report must tell apart.
_WITH_DRAFT = (2, 9, 15)
NO_PUBLISHED_INDEX = 20  # only a pending draft: nothing to halt
STOPPED_INDEX = 12  # halted before: reported, left alone
NOT_PACKAGE_ROLLOUT_INDEX = 17  # published without gradual rollout
_NAMESPACE = uuid.UUID("0b6c7a52-9b1f-4f0e-8a59-3c7d2f1e9a40")


@dataclass(frozen=True)
class DemoFlight:
    """One package flight of the whole app and the rollout its last published submission has."""

    index: int
    flight_id: str
    name: str
    published: str | None
    pending: str | None
    fallback: str
    is_package_rollout: bool
    percentage: float
    status: str
    version: str  # of the published submission's package

    @property
    def in_progress(self) -> bool:
        """A halt of this flight's published submission is expected to succeed."""
        return self.published is not None and self.is_package_rollout and self.status == IN_PROGRESS


def _flight(index: int) -> DemoFlight:
    base = 1152921504621600000 + index * 10
    published = None if index == NO_PUBLISHED_INDEX else str(base + 1)
    pending = str(base + 2) if index in _WITH_DRAFT or index == NO_PUBLISHED_INDEX else None
    is_package_rollout = index != NOT_PACKAGE_ROLLOUT_INDEX
    if index == STOPPED_INDEX:
        percentage, status = 0.0, STOPPED
    elif not is_package_rollout:
        percentage, status = 0.0, NOT_STARTED
    else:
        # Whole and fractional shares, as the field shows both.
        percentage, status = (5.0, 10.0, 25.0, 50.0, 12.5, 33.3)[index % 6], IN_PROGRESS
    return DemoFlight(
        index=index,
        flight_id=str(uuid.uuid5(_NAMESPACE, f"flight-{index}")),
        name=_FLIGHT_NAMES[index],
        published=published,
        pending=pending,
        fallback=str(base) if is_package_rollout else "0",
        is_package_rollout=is_package_rollout,
        percentage=percentage,
        status=status,
        version=WHOLE_VERSION if index % 3 == 0 else WHOLE_BETA_VERSION,
    )


WHOLE_FLIGHTS: tuple[DemoFlight, ...] = tuple(_flight(i) for i in range(len(_FLIGHT_NAMES)))

# Halt on evidence (seed_guard): three apps rolling out a new version over the fallback's,
# with the Store's analytics telling a healthy, a failing and a (for the blind guard's
# run, refused) failing story.
GUARD_HEALTHY_APP = "9NGRD0HEALTH"
GUARD_FAILING_APP = "9NGRD0FA1LNG"
GUARD_BLIND_APP = "9NGRD0BL1ND0"
GUARD_PUBLISHED = "1152921504621700001"
GUARD_FALLBACK = "1152921504621700000"
GUARD_VERSION = "2.1.0.0"
GUARD_FALLBACK_VERSION = "2.0.3.0"
GUARD_APPS = {
    GUARD_HEALTHY_APP: ("Contoso Notes", "healthy"),
    GUARD_FAILING_APP: ("Contoso Paint", "failing"),
    GUARD_BLIND_APP: ("Contoso Maps", "failing"),
}
