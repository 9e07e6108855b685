"""Scripted rollouts for the guard (halt-when: failing): a submission rolling out with
its packages, the fallback submission users outside it get with its packages, and the
analytics of both versions, day by day, shaped as one of three stories:

* `healthy`: the new version fails about as often as the fallback;
* `failing`: it fails several times as often, on many devices;
* `too-early`: one day of data from few devices, too little to say either.

Figures are fractional, as the Store's are, and each day's failures are also listed
per failure name (names that add up to more devices than hit a failure at all).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from . import demo
from .analytics import Analytics, today
from .resources import COMPLETE

if TYPE_CHECKING:
    from .state import StoreState

SCENARIOS = ("healthy", "failing", "too-early")
PLAIN_NAMES = (
    "APPLICATION_FAULT_c0000005_contoso.exe!Render",
    "APPLICATION_HANG_cfffffff_contoso.exe!WaitForSync",
)
# Failure names that try to become Markdown, HTML, links or workflow commands.
HOSTILE_NAMES = (
    "::error title=injected::from a failure name",
    "[click](https://evil.example/x) ![img](https://evil.example/i.png)",
    "<script>alert(1)</script> `code` | pipe",
    "\u202eeman desrever",
)


@dataclass(frozen=True)
class Story:
    days: int
    rolling_devices: float  # active devices a day on the rolling-out version
    fallback_devices: float
    rolling_share: float  # share of them that hit a failure
    fallback_share: float


STORIES = {
    "healthy": Story(7, 4000.0, 16000.0, 0.008, 0.008),
    "failing": Story(7, 4000.0, 16000.0, 0.04, 0.006),
    "too-early": Story(1, 120.0, 16000.0, 0.02, 0.006),
}


def script_rollout(
    state: StoreState,
    analytics: Analytics,
    app_id: str,
    submission_id: str,
    *,
    scenario: str,
    fallback: str,
    version: str,
    fallback_version: str,
    flight_id: str | None = None,
    kept_versions: Sequence[str] = (),
    hostile_names: bool = False,
    end: date | None = None,
) -> None:
    """A rollout of `version` (its packages also carry `kept_versions`, kept from the
    fallback) over the fallback submission, with `scenario`'s analytics up to `end`
    (default today). The rollout, its submission and the fallback's are created."""
    if scenario not in STORIES:
        raise ValueError(f"scenario must be one of {SCENARIOS}")
    story = STORIES[scenario]
    state.set_rollout(app_id, submission_id, flight_id=flight_id, fallback=fallback)
    state.set_packages(app_id, submission_id, [version, *kept_versions], flight_id=flight_id)
    state.set_rollout(
        app_id,
        fallback,
        flight_id=flight_id,
        is_package_rollout=False,
        percentage=100.0,
        status=COMPLETE,
        fallback="0",
    )
    state.set_packages(app_id, fallback, [fallback_version, *kept_versions], flight_id=flight_id)
    last = end or today()
    for back in range(story.days):
        day = last - timedelta(days=back)
        wobble = 1.0 + 0.03 * ((back % 3) - 1)  # days differ a little, as real ones do
        _day(
            analytics,
            app_id,
            day,
            version,
            story.rolling_devices,
            story.rolling_share * wobble,
            hostile_names,
        )
        _day(
            analytics,
            app_id,
            day,
            fallback_version,
            story.fallback_devices,
            story.fallback_share / wobble,
            hostile_names,
        )
    # A version nobody compares with (an older one still in use): present, never counted.
    analytics.add_usage(app_id, last, "0.9.0.0", 300.0)
    analytics.add_failures(app_id, last, "0.9.0.0", "crash", 250.0)


def _day(  # noqa: PLR0917 (one day's figures of one version)
    analytics: Analytics,
    app_id: str,
    day: date,
    version: str,
    active: float,
    share: float,
    hostile: bool,
) -> None:
    analytics.add_usage(app_id, day, version, active)
    crashing = active * share * 0.75 + 1 / 7  # fractional, as the docs' sample is
    hanging = active * share * 0.25
    names = HOSTILE_NAMES if hostile else PLAIN_NAMES
    for kind, devices in (("crash", crashing), ("hang", hanging)):
        listed = [(name, f"app!{kind}_{i}", devices * 0.6) for i, name in enumerate(names)]
        analytics.add_failures(app_id, day, version, kind, devices, listed)
    # Memory failures are there too; the default event-types do not count them.
    analytics.add_failures(app_id, day, version, "memory", active * 0.05)


def seed_guard(state: StoreState, analytics: Analytics) -> None:
    """The demo's guarded apps (demo.GUARD_APPS): each rolling out demo.GUARD_VERSION over
    the fallback's demo.GUARD_FALLBACK_VERSION, its analytics telling its story."""
    for app_id, (name, scenario) in demo.GUARD_APPS.items():
        state.add_app(app_id, last_published=demo.GUARD_PUBLISHED, name=name)
        script_rollout(
            state,
            analytics,
            app_id,
            demo.GUARD_PUBLISHED,
            scenario=scenario,
            fallback=demo.GUARD_FALLBACK,
            version=demo.GUARD_VERSION,
            fallback_version=demo.GUARD_FALLBACK_VERSION,
        )
