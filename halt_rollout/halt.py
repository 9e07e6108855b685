"""The halt of one target: resolve the submission, read its rollout, decide, halt.

The rollout is always read before anything is sent, so that a run is
idempotent (a stopped rollout is reported, not halted twice) and a halt whose
answer was lost is confirmed by reading, never reported as failed when it
took effect. A halt counts only when the Store says PackageRolloutStopped; a
part of the deadline is kept back for the read that confirms it.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from .errors import HaltRolloutError, StoreError
from .incident import RERUN_IS_SAFE
from .inputs import Target
from .policy import CONFIRM_RESERVE_SECONDS, CONFIRM_RESERVE_SHARE, CONFLICT_REREAD_SECONDS
from .retry import Log, Pauser, TransientError
from .shapes import version_key
from .store import StoreClient
from .store_resources import STOPPED, Rollout, SubmissionRef

if TYPE_CHECKING:
    from .evidence import Judgement

T = TypeVar("T")

COMPLETE = "PackageRolloutComplete"
NOT_STARTED = "PackageRolloutNotStarted"
IN_PROGRESS = "PackageRolloutInProgress"


class Result(enum.StrEnum):
    HALTED = "halted"
    ALREADY_HALTED = "already-halted"
    DRY_RUN = "dry-run"
    # The halt was sent, but the run was cancelled or ran out of time before the Store's
    # answer could be confirmed: it may have taken effect. Never reported as failed.
    UNKNOWN = "unknown"
    FAILED = "failed"
    # all-flights only: a rollout found that is not in progress, reported and left alone.
    NOTHING_TO_HALT = "nothing-to-halt"
    # halt-when: failing only; nothing sent. The evidence shows the rollout not failing,
    HEALTHY = "healthy"
    # or shows neither yet.
    INCONCLUSIVE = "inconclusive"


# The results that fail a run (exit code 1); every other one is done as asked.
NOT_DONE = (Result.FAILED, Result.UNKNOWN)


class NothingToHalt(StoreError):
    """No rollout to halt here: a failure for a named target, but not under all-flights."""


class OutcomeUnknown(StoreError):
    """The halt was sent and may have taken effect, but no answer confirmed it in time."""

    title = "Halt outcome unknown"


# What to do about an unknown outcome, said wherever one is reported.
CHECK_AND_RERUN = f"Check the submission's rollout in Partner Center. {RERUN_IS_SAFE}"


class NotTheExpectedVersion(NothingToHalt):
    """The version guard: no package of the submission carries expected-version."""

    title = "Version guard: not the expected version"


class Decision(enum.Enum):
    ALREADY_HALTED = enum.auto()
    NO_ROLLOUT = enum.auto()
    FINALIZED = enum.auto()
    HALT = enum.auto()


@dataclass(frozen=True)
class Failure:
    """What went wrong, as a person reads it: a short title and what to do."""

    title: str
    message: str


@dataclass(frozen=True)
class TargetResult:
    target: Target
    result: Result
    submission_id: str | None = None
    rollout: Rollout | None = None
    failure: Failure | None = None
    # The packages' versions, when the version guard read them.
    versions: tuple[str, ...] | None = None
    # halt-when: failing: the decision on the Store's failure data, when it was reached.
    judgement: Judgement | None = None

    @property
    def ok(self) -> bool:
        return self.result not in NOT_DONE


def decide(rollout: Rollout) -> Decision:
    """What to do with a rollout, in the contract's order."""
    if rollout.status == STOPPED:
        return Decision.ALREADY_HALTED
    if not rollout.is_package_rollout:
        return Decision.NO_ROLLOUT
    if rollout.status == COMPLETE:
        return Decision.FINALIZED
    return Decision.HALT


def carries(versions: tuple[str, ...], expected: str) -> bool:
    """Whether a package has the expected version: `1.4.2` is `1.4.2.0`, as the Store
    writes it; a version the Store writes otherwise must match as text."""
    wanted = version_key(expected)
    return any(
        version == expected or (wanted is not None and version_key(version) == wanted)
        for version in versions
    )


def check_version_guard(
    ref: SubmissionRef, versions: tuple[str, ...], expected: str, log: Log
) -> None:
    """Pass, or raise NotTheExpectedVersion naming the versions found."""
    found = ", ".join(versions)
    if carries(versions, expected):
        log(f"version guard passed: its packages carry {found}")
        return
    carried = f"its packages carry {found}" if versions else "it has no package with a version"
    raise NotTheExpectedVersion(
        f"Nothing was sent: no package of {ref.describe()} has version {expected} "
        f"(expected-version); {carried}. Another submission than the one meant may be "
        "rolling out: check it in Partner Center, and run again with its version if it is "
        "the one to halt."
    )


def in_background(work: Callable[[], T], name: str) -> Future[T]:
    """`work()` on a thread of its own, to run next to the caller's; its future's result()
    waits for it. A daemon: a run that ends early (an error, a cancellation) is not held
    back by it, and every request it makes ends by the deadline anyway."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as error:  # the caller's result() raises it
            future.set_exception(error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def describe_rollout(rollout: Rollout) -> str:
    fallback = rollout.fallback_submission_id
    served = f"; users outside it get submission {fallback}" if fallback != "0" else ""
    return f"{rollout.status} at {rollout.percentage:g}%{served}"


def halt_target(
    target: Target, store: StoreClient, pauser: Pauser, *, dry_run: bool, log: Log
) -> TargetResult:
    """Work on one target to its end; every expected failure becomes a failed result."""
    submission_id = target.submission_id
    rollout: Rollout | None = None
    versions: tuple[str, ...] | None = None
    packages: Future[tuple[str, ...]] | None = None
    judgement: Judgement | None = None
    try:
        if not submission_id:
            submission_id = store.last_published_submission(target.app_id, target.flight_id)
            if submission_id is None:
                owner = (
                    f"Flight {target.flight_id} of app {target.app_id}"
                    if target.flight_id
                    else f"App {target.app_id}"
                )
                raise NothingToHalt(
                    f"{owner} has no published submission, so there "
                    "is no rollout to halt (a pending submission is a draft and is never "
                    "halted). Give submission-id if you know which one is rolling out.",
                    title="No published submission",
                )
            log(f"submission {submission_id} is the last published one")
        ref = SubmissionRef(target.app_id, submission_id, target.flight_id)
        expected = target.expected_version
        if expected:
            # The guard's read runs next to the rollout's, so it adds no round trip.
            log(f"version guard: halting only if a package has version {expected}")
            packages = in_background(lambda: _read_versions(store, pauser, ref), "versions")
        rollout = store.read_rollout(ref)
        log(f"rollout of submission {submission_id}: {describe_rollout(rollout)}")
        if packages is not None and expected:
            versions = packages.result()
            check_version_guard(ref, versions, expected, log)
        decision = decide(rollout)
        if decision is Decision.ALREADY_HALTED:
            log("already halted before this run; nothing sent")
            return TargetResult(
                target, Result.ALREADY_HALTED, submission_id, rollout, None, versions
            )
        if decision is Decision.NO_ROLLOUT:
            raise NothingToHalt(
                f"Nothing to halt: {ref.describe()} has no gradual rollout (isPackageRollout is "
                "false); nothing was sent. To replace it, publish a new submission.",
                title="This submission has no gradual rollout",
            )
        if decision is Decision.FINALIZED:
            raise NothingToHalt(
                f"Too late to halt: the rollout of {ref.describe()} was finalized "
                "(PackageRolloutComplete); it can no longer be halted. Nothing was sent. "
                "Publish a new submission to replace it.",
                title="The rollout was finalized",
            )
        if target.guard is not None:
            # Only a guard loads it: an emergency stop never pays for the analytics.
            from .guard import judge_rollout  # noqa: PLC0415

            judgement = judge_rollout(target, ref, rollout, store, pauser, log, versions)
            if judgement.outcome != "failing":
                outcome = Result(str(judgement.outcome))  # healthy or inconclusive
                log(f"{outcome}: nothing sent")
                return TargetResult(
                    target, outcome, submission_id, rollout, None, versions, judgement
                )
        if dry_run:
            log("dry run: a real run would halt this rollout; nothing sent")
            return TargetResult(
                target, Result.DRY_RUN, submission_id, rollout, None, versions, judgement
            )
        log(f"halting the rollout of submission {submission_id}")
        result, rollout = _halt_confirmed(store, pauser, ref, log)
        if result is Result.HALTED:
            log(f"halted: {describe_rollout(rollout)}")
        return TargetResult(target, result, submission_id, rollout, None, versions, judgement)
    except HaltRolloutError as error:
        if target.found_by_all_flights and _left_alone(error, rollout):
            log(f"left alone: {error.message}")
            return TargetResult(
                target, Result.NOTHING_TO_HALT, submission_id, rollout, None, versions
            )
        failure = Failure(error.title, error.message)
        outcome = Result.UNKNOWN if isinstance(error, OutcomeUnknown) else Result.FAILED
        return TargetResult(target, outcome, submission_id, rollout, failure, versions, judgement)
    finally:
        if packages is not None:
            # The guard's read ends (by the deadline at the latest) before anything is
            # reported: the upload URL it may bring is a secret to hide from that report.
            packages.exception()


def _read_versions(store: StoreClient, pauser: Pauser, ref: SubmissionRef) -> tuple[str, ...]:
    """The guard's read, through a session of its own: this runs on a second thread."""
    with pauser.deadline.session() as session:
        return store.on(session).package_versions(ref)


def _left_alone(error: HaltRolloutError, rollout: Rollout | None) -> bool:
    """Under all-flights, only a rollout in progress that could not be halted fails."""
    if isinstance(error, NothingToHalt):
        return True
    # The Store refusing to halt a rollout that had not started: nothing was rolling out.
    return (
        isinstance(error, StoreError)
        and error.status == 409
        and rollout is not None
        and rollout.status == NOT_STARTED
    )


def _halt_confirmed(
    store: StoreClient, pauser: Pauser, ref: SubmissionRef, log: Log
) -> tuple[Result, Rollout]:
    """Send the halt until the Store says the rollout is stopped, reading the rollout
    before any second send. Every step but the last look keeps a reserve of the deadline,
    so that look always fits in: a halt that took effect is never reported as failed."""
    deadline = pauser.deadline
    reserve = min(CONFIRM_RESERVE_SECONDS, deadline.seconds * CONFIRM_RESERVE_SHARE)
    sent_maybe_applied = False  # a stopped rollout is then this run's doing
    attempt = 1

    def last_look(why: str, *, patient: bool = False) -> tuple[Result, Rollout] | Rollout | None:
        """Stopped after all? The result if so; the rollout as read if it is not (the halt
        did not take effect); None when it cannot be read (nobody knows). `patient`: after
        a 409, a rollout that still reads in progress may be another responder's halt under
        way; look a few more times."""
        waits = list(CONFLICT_REREAD_SECONDS) if patient else []
        rollout = store.check_rollout(ref)
        while rollout is not None and not rollout.stopped:
            if rollout.status != IN_PROGRESS or not waits or waits[0] >= deadline.remaining():
                return rollout
            wait = waits.pop(0)
            log(
                f"{why} while the rollout still reads {IN_PROGRESS}: another halt may be under "
                f"way; reading it again in {wait:g} s"
            )
            deadline.sleep(wait)
            rollout = store.check_rollout(ref)
        if rollout is None:
            return None
        if sent_maybe_applied:
            log(f"the halt had taken effect although {why}")
            return Result.HALTED, rollout
        log(
            f"{why}, but the rollout is now {STOPPED}: someone else (another run, Partner "
            "Center) halted it meanwhile"
        )
        return Result.ALREADY_HALTED, rollout

    while True:
        # With too little time left for both, sending the halt comes before confirming it.
        keep = reserve if deadline.remaining() > 2 * reserve else 0.0
        try:
            with deadline.keeping(keep):
                return Result.HALTED, store.send_halt(ref)
        except StoreError as error:
            refused = "the Store refused the halt (409)"
            if error.status == 409 and isinstance(found := last_look(refused, patient=True), tuple):
                return found
            raise
        except TransientError as error:
            sent_maybe_applied = sent_maybe_applied or error.maybe_applied
            attempt += 1
            try:
                with deadline.keeping(reserve):
                    pauser.pause(error, attempt)
            except HaltRolloutError as gave_up:
                if not sent_maybe_applied:
                    raise
                found = last_look("its answer was lost")
                if isinstance(found, tuple):
                    return found
                if found is not None:  # read, and still rolling out: not halted
                    raise gave_up.extended(
                        f"The rollout still reads {describe_rollout(found)}: it was not halted."
                    ) from None
                raise OutcomeUnknown(
                    f"The halt of {ref.describe()} was sent, but no answer came in time and the "
                    f"rollout could not be read again: it may have taken effect. "
                    f"{CHECK_AND_RERUN} ({gave_up.message})"
                ) from None
            if not error.maybe_applied:
                continue
            try:
                with deadline.keeping(reserve):
                    rollout = store.read_rollout(ref)
            except HaltRolloutError as read_error:
                found = last_look("its answer was lost")
                if isinstance(found, tuple):
                    return found
                if found is not None:
                    rollout = found
                else:
                    raise OutcomeUnknown(
                        f"The halt of {ref.describe()} was sent but its answer was lost "
                        f"({error.reason}), and the rollout could not be read again: "
                        f"{read_error.message} {CHECK_AND_RERUN}"
                    ) from None
            if rollout.stopped:
                log("the halt had taken effect although its answer was lost")
                return Result.HALTED, rollout
            if decide(rollout) is not Decision.HALT:
                raise StoreError(
                    f"The halt of {ref.describe()} got no usable answer ({error.reason}) and "
                    f"the rollout is now {describe_rollout(rollout)}; check it in Partner Center.",
                    title="Rollout changed during the halt",
                ) from None
            log(f"the rollout is still {rollout.status}; sending the halt again")
