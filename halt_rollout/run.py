"""A whole run: sign in once, then work on every target, a few at a time.

Every target is attempted even when another fails: an emergency stop halts
all it can, then reports. This is the core that both edges (the action and
the command line) call; it knows nothing of how results are shown.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests

from .errors import HaltRolloutError
from .halt import Failure, Result, TargetResult, halt_target
from .inputs import Settings, Target
from .retry import Deadline, Log, Pauser
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
    oidc_token: Callable[[], str] | None,
    log: Log,
    protect: Callable[[str], object],
) -> list[TargetResult]:
    """Halt every target of the settings; one result per target, in their order."""
    trust_ssl_cert_file()
    deadline = Deadline(settings.timeout_seconds)
    count = len(settings.targets)
    mode = " (dry run: nothing will be halted)" if settings.dry_run else ""
    log(f"{count} target{'s' if count != 1 else ''} to work on{mode}")
    try:
        token = get_access_token(settings, oidc_token, Pauser(deadline, log))
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

        pauser = Pauser(deadline, target_log)
        with requests.Session() as session:
            store = StoreClient(settings.store_api_url, token, pauser, session)
            return halt_target(target, store, pauser, dry_run=settings.dry_run, log=target_log)

    if count == 1:
        return [work_on(settings.targets[0])]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_TARGETS, count)) as pool:
        return list(pool.map(work_on, settings.targets))
