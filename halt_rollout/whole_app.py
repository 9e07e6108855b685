"""all-flights: the whole app's rollouts, found from its ID alone.

During an incident a responder knows the app, not the GUIDs of its package
flights. An all-flights target becomes one target per rollout: the app's own
last published submission, and the last published submission of each flight
that listflights names (its pages followed to the end). Each is then halted
like any other target, except that one not in progress is left alone.
"""

from __future__ import annotations

from dataclasses import replace

from .inputs import Target
from .retry import Log
from .store import StoreClient

# The tenant's Store API rate limit, as StoreBroker's maintainers report it.
REQUESTS_PER_MINUTE = 20


def rollouts_of_app(target: Target, store: StoreClient, log: Log) -> list[Target]:
    """The app's own rollout, then one per package flight (named by friendlyName)."""
    flights = store.list_flights(target.app_id)
    log(
        f"{len(flights)} package flight{'s' if len(flights) != 1 else ''} found: "
        f"{len(flights) + 1} rollouts to look at"
    )
    own = replace(target, name=target.name or target.app_id, all_flights=False)
    found = [replace(own, found_by_all_flights=True)]
    for flight in flights:
        found.append(
            Target(
                app_id=target.app_id,
                flight_id=flight.flight_id,
                # From the listing, so the flight need not be read again. None: nothing
                # published, which halt_target confirms, reports and leaves alone.
                submission_id=flight.last_published_submission,
                name=flight.friendly_name,
                found_by_all_flights=True,
                expected_version=target.expected_version,
            )
        )
    return found


def requests_needed(rollouts: int, *, dry_run: bool, guarded: int = 0) -> int:
    """About how many Store requests halting this many rollouts takes; `guarded` of them
    have their packages read too (the version guard)."""
    per_rollout = 1 if dry_run else 2  # the read, then the halt
    return rollouts * per_rollout + guarded + 1  # and the app's own resolution


def minutes_at_rate_limit(requests: int) -> float:
    return requests / REQUESTS_PER_MINUTE
