"""all-flights: the whole app's rollouts, found from its ID alone.

During an incident a responder knows the app, not the GUIDs of its package
flights. An all-flights target stands for the app's own last published
submission, halted at once, and the last published submission of each flight
that listflights names, each started as soon as its page is read. Each is halted
like any other target, except that one not in progress is left alone. An entry
that names no flight, and a listing that fails or stops short of its totalCount,
are failed results of their own: the rest of the app is still halted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TypeVar

from .errors import HaltRolloutError
from .halt import Failure, Result, TargetResult
from .inputs import Target
from .retry import Log
from .store import StoreClient
from .store_resources import Flight, UnreadableFlight
from .version_guard import TITLE as GUARD_TITLE
from .version_guard import matches

# The tenant's Store API rate limit, as StoreBroker's maintainers report it.
REQUESTS_PER_MINUTE = 20

Started = TypeVar("Started")


def own_rollout(target: Target) -> Target:
    """The app's own last published submission, named as the all-flights target was."""
    return replace(
        target, name=target.name or target.app_id, all_flights=False, found_by_all_flights=True
    )


def flight_rollout(target: Target, flight: Flight) -> Target:
    return Target(
        app_id=target.app_id,
        flight_id=flight.flight_id,
        # From the listing, so the flight need not be read again. None: nothing
        # published, which halt_target confirms, reports and leaves alone.
        submission_id=flight.last_published_submission,
        name=flight.friendly_name,
        found_by_all_flights=True,
        expected_version=target.expected_version,
        guard=target.guard,  # each flight judged on its own evidence, against its own fallback
    )


def listing(target: Target) -> Target:
    """What a failed listing's result is named: "flights of APP-ID"."""
    return Target(app_id=target.app_id, name=f"flights of {target.app_id}")


def listing_failed(target: Target, error: HaltRolloutError, found: int) -> TargetResult:
    so_far = f"the {found} it had named were worked on; " if found else ""
    return TargetResult(
        listing(target),
        Result.FAILED,
        failure=Failure(
            error.title,
            f"{error.message} The listing of app {target.app_id}'s package flights did not "
            f"finish: {so_far}flights it did not name were neither read nor halted. Check "
            "them in Partner Center, or run again.",
        ),
    )


def guard_found_nothing(target: Target, results: list[TargetResult]) -> TargetResult | None:
    """all-flights with expected-version: when no rollout of the app is at that version (in
    progress, or already stopped), the target fails; never "already halted" (contract, "The
    version guard"). `results` are the run's: an overlapping target may hold the match."""
    expected = target.expected_version
    if not expected:
        return None
    app = target.app_id.upper()
    mine = [r for r in results if r.target.app_id.upper() == app]
    if any(
        r.versions is not None
        and matches(r.versions, expected)
        and r.result is not Result.NOTHING_TO_HALT
        for r in mine
    ):
        return None
    unread = any(r.result is Result.FAILED for r in mine)
    of_those = (
        " of those that could be read (the others are reported on their own)" if unread else ""
    )
    return TargetResult(
        target,
        Result.FAILED,
        failure=Failure(
            GUARD_TITLE,
            f"No rollout of {target.app_id} is at version {expected}{of_those}: nothing was "
            "sent. Each rollout found is listed with its versions; another version than the "
            "one meant may be rolling out. Check them in Partner Center, and run again with "
            "the version to halt.",
        ),
    )


def unreadable(target: Target, entry: UnreadableFlight) -> TargetResult:
    """A failed result for a listing entry that names no flight."""
    where = f"flight entry {entry.number} of {target.app_id}"
    return TargetResult(
        Target(app_id=target.app_id, name=entry.friendly_name or where),
        Result.FAILED,
        failure=Failure(
            "Unreadable flight in the listing",
            f"The Store listed {where} without a usable flight ({entry.why}), so its rollout "
            "was neither read nor halted. Check the app's package flights in Partner Center.",
        ),
    )


def halt_flights(
    target: Target,
    store: StoreClient,
    log: Log,
    start: Callable[[Target], Started],
    *,
    dry_run: bool,
    timeout_seconds: float,
) -> Iterator[Started | TargetResult]:
    """List the app's flights and `start` each one's halt as soon as its page is read;
    yields what was started and what failed, in listing order, the listing's own failure
    last. The app's own rollout is not among them: it is started apart, at once."""
    flights = entries = 0
    try:
        for entry in store.list_flights(target.app_id):
            entries += 1
            if isinstance(entry, Flight):
                flights += 1
                yield start(flight_rollout(target, entry))
            else:
                yield unreadable(target, entry)
    except HaltRolloutError as error:
        log(f"listing the package flights stopped after {entries} entries: {error.title}")
        yield listing_failed(target, error, flights)
        return
    guarded = target.expected_version is not None
    log(
        estimate(
            flights,
            dry_run=dry_run,
            guarded=guarded,
            timeout_seconds=timeout_seconds,
            judged=target.guard is not None,
        )
    )


def estimate(
    flights: int, *, dry_run: bool, guarded: bool, timeout_seconds: float, judged: bool = False
) -> str:
    """The honest estimate: the tenant's rate limit, not our speed, sets the pace."""
    rollouts = flights + 1
    requests = requests_needed(rollouts, dry_run=dry_run, guarded=rollouts if guarded else 0)
    if judged:
        # halt-when: failing reads both submissions' packages of each rollout, and the
        # app's two analytics reports once (a page each at least).
        requests += rollouts * (1 if guarded else 2) + 2
    minutes = minutes_at_rate_limit(requests)
    line = (
        f"{flights} package flight{'s' if flights != 1 else ''} found: {rollouts} rollouts to "
        f"work on, about {requests} Store requests, which the tenant's rate limit (about "
        f"{REQUESTS_PER_MINUTE} a minute) may stretch to {minutes:.1f} minutes"
    )
    if minutes * 60 > timeout_seconds:
        line += (
            f"; timeout-seconds is {timeout_seconds:g}: if the Store throttles, raise it "
            f"to {60 * (int(minutes) + 2)}"
        )
    return line


def requests_needed(rollouts: int, *, dry_run: bool, guarded: int = 0) -> int:
    """About how many Store requests halting this many rollouts takes; `guarded` of them
    have their packages read too (the version guard)."""
    per_rollout = 1 if dry_run else 2  # the read, then the halt
    return rollouts * per_rollout + guarded + 1  # and the app's own resolution


def minutes_at_rate_limit(requests: int) -> float:
    return requests / REQUESTS_PER_MINUTE
