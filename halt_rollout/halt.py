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

from .confirm import (
    COMPLETE,
    CONFLICT,
    NOT_STARTED,
    OutcomeUnknown,
    Step,
    confirm_halt,
    describe_rollout,
)
from .errors import HaltRolloutError, NothingToHalt, StoreError
from .inputs import Target
from .retry import Log, Pauser
from .store import StoreClient
from .store_resources import STOPPED, Rollout, SubmissionRef
from .version_guard import check_version_guard

if TYPE_CHECKING:
    from .evidence import Judgement

T = TypeVar("T")
# Whoever already works on a rollout: its label, or None when this target is the first.
Claim = Callable[[SubmissionRef], str | None]


class SameRollout(Exception):
    """This target resolved to a rollout another target of the run already works on: it
    is acted on and reported once, there."""


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


def halt_target(
    target: Target,
    store: StoreClient,
    pauser: Pauser,
    *,
    dry_run: bool,
    log: Log,
    claim: Claim = lambda ref: None,
) -> TargetResult:
    """Work on one target to its end; every expected failure becomes a failed result.

    `claim` is asked once the submission is known: a rollout another target already
    works on raises SameRollout, before anything is read or sent for this one."""
    submission_id = target.submission_id
    rollout: Rollout | None = None
    versions: tuple[str, ...] | None = None
    packages: Future[tuple[str, ...]] | None = None
    judgement: Judgement | None = None
    sent = False
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
        if (first := claim(ref)) is not None:
            log(
                f"the same rollout as {first}'s ({ref.describe()}): worked on and "
                f"reported once, as {first}"
            )
            raise SameRollout(first)
        expected = target.expected_version
        if expected:
            # The guard's read runs next to the rollout's, so it adds no round trip.
            log(f"version guard: halting only if the newest package is version {expected}")
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
        sent = True
        ending = confirm_halt(store, pauser, ref, log)
        rollout = ending.rollout or rollout
        if ending.error is not None:
            raise ending.error
        if ending.step is Step.HALTED:
            log(f"halted: {describe_rollout(rollout)}")
            return TargetResult(
                target, Result.HALTED, submission_id, rollout, None, versions, judgement
            )
        return TargetResult(
            target, Result.ALREADY_HALTED, submission_id, rollout, None, versions, judgement
        )
    except HaltRolloutError as error:
        if target.found_by_all_flights and _left_alone(error, rollout):
            log(f"left alone: {error.message}")
            return TargetResult(
                target, Result.NOTHING_TO_HALT, submission_id, rollout, None, versions
            )
        outcome = Result.UNKNOWN if isinstance(error, OutcomeUnknown) else Result.FAILED
        failure = _said(error, cancelled=pauser.deadline.cancelled, sent=sent)
        return TargetResult(target, outcome, submission_id, rollout, failure, versions, judgement)
    finally:
        if packages is not None:
            # The guard's read ends (by the deadline at the latest) before anything is
            # reported: the upload URL it may bring is a secret to hide from that report.
            packages.exception()


def _said(error: HaltRolloutError, *, cancelled: bool, sent: bool) -> Failure:
    """The failure as a person reads it: a cut by the cancel says so (not "deadline"), and
    a target whose halt was never sent says so in words (rule 7a)."""
    title, message = error.title, error.message
    store_answered = isinstance(error, StoreError) and error.status is not None
    if cancelled and not store_answered and not isinstance(error, OutcomeUnknown):
        title = "Run cancelled"
    if not sent and "nothing was sent" not in message.lower():
        message += " Nothing was sent for it."
    return Failure(title, message)


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
        and error.status == CONFLICT
        and rollout is not None
        and rollout.status == NOT_STARTED
    )
