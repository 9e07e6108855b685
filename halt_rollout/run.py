"""A whole run: sign in once, then work on every target, a few at a time.

Every target is attempted even when another fails: an emergency stop halts
all it can, then reports. This is the core that both edges (the action and
the command line) call; it knows nothing of how results are shown.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial

from .deadline import Deadline
from .errors import HaltRolloutError
from .github_oidc import request_oidc_token
from .halt import Failure, Result, TargetResult, halt_target
from .inputs import Settings, Target
from .network_settings import check_network_settings
from .retry import Log, Pauser
from .signin import get_access_token
from .store import StoreClient
from .whole_app import REQUESTS_PER_MINUTE, minutes_at_rate_limit, requests_needed, rollouts_of_app

# Few enough to stay near the tenant's ~20 requests a minute; enough that one
# slow target does not hold the others back.
MAX_PARALLEL_TARGETS = 4


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
    started: float | None = None,
) -> list[TargetResult]:
    """Halt every target of the settings; one result per target, in their order.

    `started` is when the run began on the monotonic clock (the deadline counts
    from it: reading the inputs is part of the run); by default, now.
    """
    trust_ssl_cert_file()
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

    def expand(target: Target) -> list[Target] | TargetResult:
        """The rollouts an all-flights target stands for; a failed result if unknown."""
        if not target.all_flights:
            return [target]
        target_log = logger(target)
        pauser = Pauser(deadline, target_log, first_seen=first_seen)
        try:
            with deadline.session() as session:
                store = StoreClient(settings.store_api_url, token, pauser, session)
                return rollouts_of_app(target, store, target_log)
        except HaltRolloutError as error:
            return TargetResult(target, Result.FAILED, failure=Failure(error.title, error.message))
        except Exception as error:
            return crashed(target, error)

    def work_on(target: Target) -> TargetResult:
        target_log = logger(target)
        pauser = Pauser(deadline, target_log, first_seen=first_seen)
        try:
            with deadline.session() as session:
                store = StoreClient(settings.store_api_url, token, pauser, session)
                return halt_target(target, store, pauser, dry_run=settings.dry_run, log=target_log)
        except Exception as error:
            return crashed(target, error)

    # Each slot holds either a target still to work on or a result already known.
    slots: list[Target | TargetResult] = []
    for target in settings.targets:
        found = expand(target)
        slots.extend(found if isinstance(found, list) else [found])
    work = [slot for slot in slots if isinstance(slot, Target)]
    if any(target.all_flights for target in settings.targets):
        _say_how_long(work, settings, log)
    if len(work) <= 1:
        done = [work_on(target) for target in work]
    else:
        # Several targets need a thread pool; the common case, one, does not import it.
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_TARGETS, len(work))) as pool:
            done = list(pool.map(work_on, work))
    finished = iter(done)
    return [slot if isinstance(slot, TargetResult) else next(finished) for slot in slots]


def _urls_of(settings: Settings) -> list[str]:
    """Every URL the run may call: their proxies and CAs are checked before the first."""
    urls = [settings.store_api_url, settings.authority_host]
    if not settings.client_secret and os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL"):
        urls.append(os.environ["ACTIONS_ID_TOKEN_REQUEST_URL"])
    return urls


def _say_how_long(work: list[Target], settings: Settings, log: Log) -> None:
    """The honest estimate: the tenant's rate limit, not our speed, sets the pace."""
    requests = requests_needed(len(work), dry_run=settings.dry_run)
    minutes = minutes_at_rate_limit(requests)
    line = (
        f"{len(work)} rollouts to work on: about {requests} Store requests, which the tenant's "
        f"rate limit (about {REQUESTS_PER_MINUTE} a minute) may stretch to {minutes:.1f} minutes"
    )
    if minutes * 60 > settings.timeout_seconds:
        line += (
            f"; timeout-seconds is {settings.timeout_seconds:g}: if the Store throttles, raise it "
            f"to {60 * (int(minutes) + 2)}"
        )
    log(line)
