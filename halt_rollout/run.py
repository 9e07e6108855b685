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
from .retry import Log, Pauser
from .signin import get_access_token
from .store import StoreClient

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
    log(f"{count} target{'s' if count != 1 else ''} to work on{mode}")
    first_seen: dict[str, float] = {}  # shared: a tenant-wide answer is waited out once
    try:
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

    def work_on(target: Target) -> TargetResult:
        def target_log(line: str) -> None:
            log(f"{target.label}: {line}")

        pauser = Pauser(deadline, target_log, first_seen=first_seen)
        try:
            with deadline.session() as session:
                store = StoreClient(settings.store_api_url, token, pauser, session)
                return halt_target(target, store, pauser, dry_run=settings.dry_run, log=target_log)
        except Exception as error:  # a defect: this target's result says so, the others go on
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

    if count == 1:
        return [work_on(settings.targets[0])]
    # A single target, the common case, needs no thread pool: imported only here.
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_TARGETS, count)) as pool:
        return list(pool.map(work_on, settings.targets))
