"""The halt of one target: resolve the submission, read its rollout, decide, halt.

The rollout is always read before anything is sent, so that a run is
idempotent (a stopped rollout is reported, not halted twice) and a halt whose
answer was lost is confirmed by reading, never reported as failed when it
took effect.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import HaltRolloutError, StoreError
from .inputs import Target
from .retry import Log, Pauser, TransientError
from .store import Rollout, StoreClient, SubmissionRef

STOPPED = "PackageRolloutStopped"
COMPLETE = "PackageRolloutComplete"


class Result(enum.StrEnum):
    HALTED = "halted"
    ALREADY_HALTED = "already-halted"
    DRY_RUN = "dry-run"
    FAILED = "failed"


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

    @property
    def ok(self) -> bool:
        return self.result is not Result.FAILED


def decide(rollout: Rollout) -> Decision:
    """What to do with a rollout, in the contract's order."""
    if rollout.status == STOPPED:
        return Decision.ALREADY_HALTED
    if not rollout.is_package_rollout:
        return Decision.NO_ROLLOUT
    if rollout.status == COMPLETE:
        return Decision.FINALIZED
    return Decision.HALT


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
    try:
        if not submission_id:
            submission_id = store.last_published_submission(target.app_id, target.flight_id)
            if submission_id is None:
                owner = (
                    f"Flight {target.flight_id} of app {target.app_id}"
                    if target.flight_id
                    else f"App {target.app_id}"
                )
                raise StoreError(
                    f"{owner} has no published submission, so there "
                    "is no rollout to halt (a pending submission is a draft and is never "
                    "halted). Give submission-id if you know which one is rolling out.",
                    title="No published submission",
                )
            log(f"submission {submission_id} is the last published one")
        ref = SubmissionRef(target.app_id, submission_id, target.flight_id)
        rollout = store.read_rollout(ref)
        log(f"rollout of submission {submission_id}: {describe_rollout(rollout)}")
        decision = decide(rollout)
        if decision is Decision.ALREADY_HALTED:
            log("already halted before this run; nothing sent")
            return TargetResult(target, Result.ALREADY_HALTED, submission_id, rollout)
        if decision is Decision.NO_ROLLOUT:
            raise StoreError(
                f"Nothing to halt: {ref.describe()} has no gradual rollout (isPackageRollout is "
                "false); nothing was sent. To replace it, publish a new submission.",
                title="This submission has no gradual rollout",
            )
        if decision is Decision.FINALIZED:
            raise StoreError(
                f"Too late to halt: the rollout of {ref.describe()} was finalized "
                "(PackageRolloutComplete); it can no longer be halted. Nothing was sent. "
                "Publish a new submission to replace it.",
                title="The rollout was finalized",
            )
        if dry_run:
            log("dry run: a real run would halt this rollout; nothing sent")
            return TargetResult(target, Result.DRY_RUN, submission_id, rollout)
        log(f"halting the rollout of submission {submission_id}")
        rollout = _halt_confirmed(store, pauser, ref, log)
        log(f"halted: {describe_rollout(rollout)}")
        return TargetResult(target, Result.HALTED, submission_id, rollout)
    except HaltRolloutError as error:
        failure = Failure(error.title, error.message)
        return TargetResult(target, Result.FAILED, submission_id, rollout, failure)


def _halt_confirmed(store: StoreClient, pauser: Pauser, ref: SubmissionRef, log: Log) -> Rollout:
    """Send the halt until it is answered, reading the rollout before any second send."""
    attempt = 1
    while True:
        try:
            return store.send_halt(ref)
        except TransientError as error:
            attempt += 1
            try:
                pauser.pause(error, attempt)
            except HaltRolloutError:
                if error.maybe_applied:
                    # Out of time: one last look, so a halt that took effect is not a failure.
                    rollout = store.check_rollout(ref)
                    if rollout is not None and rollout.status == STOPPED:
                        log("the halt had taken effect although its answer was lost")
                        return rollout
                raise
            if not error.maybe_applied:
                continue
            try:
                rollout = store.read_rollout(ref)
            except HaltRolloutError as read_error:
                raise StoreError(
                    f"The halt of {ref.describe()} was sent but its answer was lost "
                    f"({error.reason}), and the rollout could not be read again: "
                    f"{read_error.message} Check the submission in Partner Center.",
                    title="Halt outcome unknown",
                ) from None
            if rollout.status == STOPPED:
                log("the halt had taken effect although its answer was lost")
                return rollout
            if decide(rollout) is not Decision.HALT:
                raise StoreError(
                    f"The halt of {ref.describe()} got no usable answer ({error.reason}) and "
                    f"the rollout is now {describe_rollout(rollout)}; check it in Partner Center.",
                    title="Rollout changed during the halt",
                ) from None
            log(f"the rollout is still {rollout.status}; sending the halt again")
