"""A whole run: sign in once, then work on every target, a few at a time.

Every target is attempted even when another fails: an emergency stop halts
all it can, then reports. This is the core that both edges (the action and
the command line) call; it knows nothing of how results are shown.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import partial

from .deadline import Deadline
from .errors import HaltRolloutError
from .github_oidc import request_oidc_token
from .halt import Failure, Result, SameRollout, TargetResult, halt_target
from .inputs import Settings, Target
from .network_settings import check_network_settings
from .retry import Log, Pauser
from .signin import get_access_token
from .store import StoreClient
from .store_resources import SubmissionRef
from .whole_app import guard_found_nothing, halt_flights, listing, listing_failed, own_rollout

# Few enough to stay near the tenant's ~20 requests a minute; enough that one
# slow target does not hold the others back.
MAX_PARALLEL_TARGETS = 4
# all-flights listings, beside the halts: a page is one request, and a listing that hangs
# then holds back only other listings, never a halt.
MAX_PARALLEL_LISTINGS = 4


def trust_ssl_cert_file() -> None:
    """Let SSL_CERT_FILE choose the CAs, as REQUESTS_CA_BUNDLE does for `requests`.

    Both our Store calls and azure-identity's go through `requests`, which reads
    only REQUESTS_CA_BUNDLE (and CURL_CA_BUNDLE); the contract honours both.
    """
    if os.environ.get("SSL_CERT_FILE") and not os.environ.get("REQUESTS_CA_BUNDLE"):
        os.environ["REQUESTS_CA_BUNDLE"] = os.environ["SSL_CERT_FILE"]


def run(
    settings: Settings,
    *,
    log: Log,
    protect: Callable[[str], object],
    hide: Callable[[str], object] | None = None,
    started: float | None = None,
    deadline: Deadline | None = None,
) -> list[TargetResult]:
    """Halt every target of the settings; one result per target, in their order.

    `protect` masks a secret in the runner's log and redacts it from what is written;
    `hide` only redacts (by default `protect`): the signed upload URL a submission
    carries is never printed, not even in a mask command.

    `deadline` is the run's (the edges make it, so a cancel can reach it); without
    one, timeout-seconds counts from `started` on the monotonic clock (reading the
    inputs is part of the run), by default now.
    """
    trust_ssl_cert_file()
    if deadline is None:
        deadline = Deadline(settings.timeout_seconds, started=started)
    count = len(settings.targets)
    mode = " (dry run: nothing will be halted)" if settings.dry_run else ""
    for notice in settings.notices:
        log(notice)
    log(f"{count} target{'s' if count != 1 else ''} to work on{mode}")
    first_seen: dict[str, float] = {}  # shared: a tenant-wide answer is waited out once
    try:
        check_network_settings(_urls_of(settings))
        with deadline.session() as session:
            oidc = None if settings.client_secret else partial(request_oidc_token, protect, session)
            pauser = Pauser(deadline, log, first_seen=first_seen)
            token = get_access_token(settings, oidc, pauser, session)
    except HaltRolloutError as error:
        failure = Failure(error.title, error.message)
        return [
            TargetResult(target, Result.FAILED, target.submission_id, failure=failure)
            for target in settings.targets
        ]
    protect(token)
    log("signed in to Microsoft Entra ID")

    def logger(target: Target) -> Log:
        return lambda line: log(f"{target.label}: {line}")

    def crashed(target: Target, error: Exception) -> TargetResult:
        # A defect: this target's result says so, and the other targets go on.
        return TargetResult(
            target,
            Result.FAILED,
            target.submission_id,
            failure=Failure(
                "halt-rollout crashed on this target",
                f"Unexpected {type(error).__name__}: {error}. This is a bug in halt-rollout "
                "(please report it with this log). Check the rollout in Partner Center.",
            ),
        )

    claims = Claims()

    def work_on(target: Target) -> TargetResult | None:
        """The target's result; None when it is a rollout another target works on."""
        if deadline.expired():  # cheap, however many targets wait: no session, no log
            return not_started(target, deadline)
        target_log = logger(target)
        pauser = Pauser(deadline, target_log, first_seen=first_seen)
        try:
            with deadline.session() as session:
                store = StoreClient(
                    settings.store_api_url, token, pauser, session, protect=hide or protect
                )
                return halt_target(
                    target,
                    store,
                    pauser,
                    dry_run=settings.dry_run,
                    log=target_log,
                    claim=partial(claims.claim, target),
                )
        except SameRollout:
            return None
        except Exception as error:
            return crashed(target, error)

    if len(settings.targets) == 1 and not settings.targets[0].all_flights:
        # The common case, one rollout, needs no thread pool, nor to import one.
        return [result for result in [work_on(settings.targets[0])] if result is not None]

    from concurrent.futures import Future, ThreadPoolExecutor  # noqa: PLC0415

    Found = list[Future[TargetResult | None] | TargetResult]

    def list_app(target: Target) -> Found:
        """An all-flights target's listing: each flight's halt goes to the pool as soon
        as its page is read; this never waits for one, so it cannot block the pool."""
        target_log = logger(target)
        pauser = Pauser(deadline, target_log, first_seen=first_seen)
        found: Found = []
        try:
            with deadline.session() as session:
                store = StoreClient(
                    settings.store_api_url, token, pauser, session, protect=hide or protect
                )
                for item in halt_flights(
                    target,
                    store,
                    target_log,
                    start_flight,
                    dry_run=settings.dry_run,
                    timeout_seconds=settings.timeout_seconds,
                ):
                    found.append(item)  # one by one: a defect part-way keeps what was started
        except _TimeGone:
            # A page may name 50,000 flights: past the deadline the rest are not gone
            # through one by one (a cancel has two seconds to report everything).
            started = sum(isinstance(item, Future) for item in found)
            found.append(listing_failed(target, time_gone(deadline), started))
        except Exception as error:
            found.append(crashed(listing(target), error))
        return found

    # Every target is queued at once, in order: a plain one's halt, or an app's own halt
    # and its listing. Listings have their own few threads, so a listing that hangs
    # never holds a halt back; flights join the halts' queue as they are found. Results
    # keep the order given: per app, its own rollout, its flights as listed, then what
    # the listing could not read.
    queued: dict[Future[TargetResult | None], Target] = {}

    def start_flight(flight: Target) -> Future[TargetResult | None]:
        if deadline.expired():
            raise _TimeGone
        return submit(flight)

    def submit(target: Target) -> Future[TargetResult | None]:
        future = halts.submit(work_on, target)
        queued[future] = target
        return future

    def outcome(item: Future[TargetResult | None] | TargetResult) -> TargetResult | None:
        if isinstance(item, TargetResult):
            return item
        if deadline.expired() and item.cancel():
            # Still queued when the time ran out (a listing may queue thousands): its
            # result is known without waiting for a thread to start it.
            return not_started(queued[item], deadline)
        return item.result()

    apps = sum(target.all_flights for target in settings.targets)
    with (
        ThreadPoolExecutor(max_workers=MAX_PARALLEL_TARGETS) as halts,
        ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL_LISTINGS, apps))) as listings,
    ):
        started_work: list[tuple[Target, Future[TargetResult | None], Future[Found] | None]] = []
        for target in settings.targets:
            if target.all_flights:
                own = submit(own_rollout(target))
                started_work.append((target, own, listings.submit(list_app, target)))
            else:
                started_work.append((target, submit(target), None))
        groups: list[tuple[Target, list[TargetResult]]] = []
        for target, own, flights in started_work:
            worked = [outcome(own)]
            for item in flights.result() if flights else []:
                worked.append(outcome(item))
            groups.append((target, [result for result in worked if result is not None]))
    results = [result for _, found in groups for result in found]
    for target, found in groups:
        if target.all_flights and (nothing := guard_found_nothing(target, results)):
            found.append(nothing)
    return [result for _, found in groups for result in found]


class Claims:
    """Which target works on which rollout: targets that overlap (an app plainly and with
    all-flights, by app and by its submission, a flight by ID and found by listing) are one
    rollout, acted on and reported once. Shared by the worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[tuple[str, str | None, str], Target] = {}

    def claim(self, target: Target, ref: SubmissionRef) -> str | None:
        """None when `target` is the first to work on `ref`; else the first one's label."""
        key = (ref.app_id.upper(), ref.flight_id and ref.flight_id.lower(), ref.submission_id)
        with self._lock:
            first = self._owners.setdefault(key, target)
        return None if first is target else first.label


class _TimeGone(Exception):
    """The deadline passed (or the run was cancelled) before a flight could be started."""


def time_gone(deadline: Deadline) -> HaltRolloutError:
    title = "Run cancelled" if deadline.cancelled else "Deadline reached"
    return HaltRolloutError(
        f"The run ended ({deadline.why()}) before every flight the listing named could be "
        "started: nothing was sent for the rest.",
        title=title,
    )


def not_started(target: Target, deadline: Deadline) -> TargetResult:
    """The result of a target whose work never began: the time was gone first."""
    title = "Run cancelled" if deadline.cancelled else "Deadline reached"
    return TargetResult(
        target,
        Result.FAILED,
        target.submission_id,
        failure=Failure(
            title,
            f"The run ended ({deadline.why()}) before this rollout could be read: nothing "
            "was sent for it. Check it in Partner Center, or run again.",
        ),
    )


def _urls_of(settings: Settings) -> list[str]:
    """Every URL the run may call: their proxies and CAs are checked before the first."""
    urls = [settings.store_api_url, settings.authority_host]
    if not settings.client_secret and os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL"):
        urls.append(os.environ["ACTIONS_ID_TOKEN_REQUEST_URL"])
    return urls
