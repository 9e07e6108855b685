"""halt-when: failing: the step between "this rollout could be halted" and the halt.

For a rollout in progress, read what is rolling out (the submission's packages) and
what users outside the rollout get (the fallback submission's), read the Store's
failure and usage data, and let the decision (`evidence.judge`) say whether the data
show the rolling-out version failing. Only `failing` goes on to the halt; `healthy`
and `inconclusive` send nothing. Data that cannot be read fail the target: the guard
is blind and its owners must hear of it.

Only a guard's run imports this module (and the analytics reader and the decision with
it): an emergency stop never pays for them.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from datetime import UTC, datetime

from .analytics import read_readings, unreadable
from .errors import StoreError
from .evidence import Judgement, Outcome, Readings, SideFigures, Thresholds, judge
from .evidence_report import explanation_lines
from .guard_inputs import Guard
from .inputs import Target
from .retry import Log, Pauser
from .store import StoreClient
from .store_resources import Rollout, SubmissionRef

NO_FALLBACK = "0"  # the Store's word for "no fallback submission"

# One read of an app's analytics per run: under all-flights every flight of the app is
# judged on the same reports (the Store keeps them per app, not per flight).
_readings: dict[tuple[str, str], Future[Readings]] = {}
_readings_lock = threading.Lock()


def thresholds(guard: Guard) -> Thresholds:
    return Thresholds(
        failure_ratio=guard.failure_ratio,
        min_failing_devices=guard.min_failing_devices,
        event_types=guard.event_types,
    )


def judge_rollout(  # noqa: PLR0917 (halt_target's own context, passed through)
    target: Target,
    ref: SubmissionRef,
    rollout: Rollout,
    store: StoreClient,
    pauser: Pauser,
    log: Log,
    versions: tuple[str, ...] | None,
) -> Judgement:
    """The evidence about this rollout, judged; StoreError when it cannot be read."""
    guard = target.guard or Guard()
    limits = thresholds(guard)
    log(guard.describe())
    if versions is None:
        versions = store.package_versions(ref)
    log(f"rolling out: submission {ref.submission_id}, packages {', '.join(versions) or 'none'}")
    fallback_id = rollout.fallback_submission_id
    if fallback_id == NO_FALLBACK:
        judgement = without_fallback(versions, limits)
    else:
        fallback = _fallback_versions(store, ref, fallback_id)
        shown = ", ".join(fallback) or "no versions"
        log(f"users outside the rollout get submission {fallback_id}: {shown}")
        readings = _read_once(store, pauser, ref.app_id, log)
        judgement = judge(
            readings, rolling_out_versions=versions, fallback_versions=fallback, thresholds=limits
        )
    for line in explanation_lines(judgement):
        log(line)
    return judgement


def without_fallback(versions: tuple[str, ...], limits: Thresholds) -> Judgement:
    """No fallback submission (fallbackSubmissionId 0): nothing to compare the version with."""
    why = (
        "the rollout has no fallback submission (fallbackSubmissionId 0), so there is no "
        "version to compare its failures with: inconclusive"
    )
    return Judgement(
        outcome=Outcome.INCONCLUSIVE,
        rolling_out=SideFigures(versions, 0.0, 0.0, None),
        fallback=SideFigures((), 0.0, 0.0, None),
        period_from=None,
        period_to=None,
        ratio=None,
        ratio_bound=None,
        thresholds=limits,
        why=why,
        days=(),
    )


def _fallback_versions(store: StoreClient, ref: SubmissionRef, fallback_id: str) -> tuple[str, ...]:
    """The fallback submission's package versions: a flight's fallback is read as a flight
    submission, and as the app's when the flight has no such submission."""
    twin = SubmissionRef(ref.app_id, fallback_id, ref.flight_id)
    try:
        return store.package_versions(twin)
    except StoreError as error:
        if error.status != 404 or not ref.flight_id:
            raise
    return store.package_versions(SubmissionRef(ref.app_id, fallback_id))


def _read_once(store: StoreClient, pauser: Pauser, app_id: str, log: Log) -> Readings:
    """The app's readings, read by the first rollout of the app that asks, waited for by
    the others (each wait ends with that read, which ends by the deadline)."""
    today = datetime.now(UTC).date()
    key = (store.root, app_id.upper())
    with _readings_lock:
        future = _readings.get(key)
        reader = future is None
        if future is None:
            future = _readings[key] = Future()
    if reader:
        try:
            future.set_result(read_readings(store, app_id, today, log))
        except BaseException as error:  # the waiting rollouts fail the same way
            future.set_exception(error)
    else:
        log(f"the analytics of app {app_id} are being read for another of its rollouts")
    try:
        return future.result(timeout=max(0.0, pauser.deadline.remaining()) + 1.0)
    except TimeoutError:  # that read outlived the deadline it keeps: never wait past it
        raise unreadable("They were still being read when timeout-seconds ran out.") from None
