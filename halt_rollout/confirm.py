"""After the halt is sent: the one place that decides a rollout's result (rules 6 and 7a).

A halt the Store may have received ends `halted` once a read shows the rollout
stopped, or `unknown` when the deadline (or a cancel) comes first: the Store may
still be carrying it out, so no later answer, a 409 included, makes it `failed`.
`failed` is only for a refusal (a 4xx) answering this run's first halt request,
confirmed by a read that does not show the rollout stopped. Until one of these
endings, the run keeps confirming: it reads the rollout again with backoff, and
sends the halt again only after a read shows it still rolling out and nothing shows
a halt under way. `next_step` is the table of docs/reliability.md ("How a result is
decided"), row by row; `confirm_halt` only gathers the facts it reads.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import HaltRolloutError, StoreError
from .incident import RERUN_IS_SAFE
from .policy import (
    CONFIRM_RESERVE_SECONDS,
    CONFIRM_RESERVE_SHARE,
    CONFIRM_WAITS_SECONDS,
    CONFLICT_WATCH_SECONDS,
)
from .retry import Log, Pauser, TransientError, format_seconds
from .store import StoreClient
from .store_resources import STOPPED, Rollout, SubmissionRef

COMPLETE = "PackageRolloutComplete"
NOT_STARTED = "PackageRolloutNotStarted"
IN_PROGRESS = "PackageRolloutInProgress"
CONFLICT = 409

# What to do about an unknown outcome, said wherever one is reported.
CHECK_AND_RERUN = f"Check the submission's rollout in Partner Center. {RERUN_IS_SAFE}"


class OutcomeUnknown(StoreError):
    """The halt was sent and may have taken effect, but no answer confirmed it in time."""

    title = "Halt outcome unknown"


class Read(enum.Enum):
    """What the latest read of the rollout said (since the latest halt request)."""

    NOTHING = enum.auto()  # not read since the halt was sent, or the read failed
    STOPPED = enum.auto()
    ROLLING_OUT = enum.auto()  # in progress (or not started): still to be halted
    BEYOND_HALTING = enum.auto()  # finalized, or no gradual rollout: no halt can stop it


class Step(enum.Enum):
    HALTED = "halted"
    ALREADY_HALTED = "already-halted"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SEND_AGAIN = "send the halt again"
    READ_AGAIN = "read the rollout again"


@dataclass
class Known:
    """What is known for certain about this rollout since this run first sent its halt."""

    # A halt request of this run may have reached the Store (no answer, a timeout, a dropped
    # connection, a 5xx, an answer that is not the rollout stopped).
    reached: bool = False
    # The refusal (a 4xx) that answered this run's first halt request, before any reached.
    refusal: StoreError | None = None
    # The Store refused a halt after one of ours may have reached it: one is under way.
    under_way: bool = False
    read: Read = Read.NOTHING
    rollout: Rollout | None = None  # the latest the Store said of it
    # The refusal was watched for CONFLICT_WATCH_SECONDS without the rollout stopping.
    watched_enough: bool = False


def next_step(known: Known, *, time_left: bool) -> Step:
    """The table of docs/reliability.md, "How a result is decided", in its order."""
    if known.read is Read.STOPPED:
        return Step.HALTED if known.reached else Step.ALREADY_HALTED  # rows 1, 2
    if known.read is Read.BEYOND_HALTING:
        return Step.FAILED  # row 3
    if known.refusal is not None and not known.reached:
        if known.read is Read.ROLLING_OUT:
            # A 409 while it reads in progress may be another responder's halt under way:
            # watch it while time is left.
            patient = (
                known.refusal is not None
                and known.refusal.status == CONFLICT
                and known.rollout is not None
                and known.rollout.status == IN_PROGRESS
                and not known.watched_enough
            )
            return Step.READ_AGAIN if patient and time_left else Step.FAILED  # rows 4, 5
        return Step.READ_AGAIN if time_left else Step.UNKNOWN  # rows 6, 7
    if not known.reached:
        return Step.SEND_AGAIN if time_left else Step.FAILED  # rows 8, 9
    if not time_left:
        return Step.UNKNOWN  # row 12
    if known.read is Read.ROLLING_OUT and not known.under_way:
        return Step.SEND_AGAIN  # row 10
    return Step.READ_AGAIN  # row 11


@dataclass(frozen=True)
class Ending:
    """How the halt ended: its result, the rollout as last read, and the failure if any."""

    step: Step
    rollout: Rollout | None
    error: HaltRolloutError | None = None


def read_kind(rollout: Rollout) -> Read:
    if rollout.stopped:
        return Read.STOPPED
    if rollout.is_package_rollout and rollout.status in (IN_PROGRESS, NOT_STARTED):
        return Read.ROLLING_OUT
    return Read.BEYOND_HALTING


def describe_rollout(rollout: Rollout) -> str:
    fallback = rollout.fallback_submission_id
    served = f"; users outside it get submission {fallback}" if fallback != "0" else ""
    return f"{rollout.status} at {rollout.percentage:g}%{served}"


class _Confirmation:
    """The facts of one rollout's halt, gathered by sending and reading."""

    def __init__(self, store: StoreClient, pauser: Pauser, ref: SubmissionRef, log: Log) -> None:
        self.store, self.pauser, self.ref, self.log = store, pauser, ref, log
        self.deadline = pauser.deadline
        # Kept back from the halt request and from every wait, so a last read fits in.
        self.room = min(CONFIRM_RESERVE_SECONDS, self.deadline.seconds * CONFIRM_RESERVE_SHARE)
        self.known = Known()
        self.last_look = False  # the read just before the deadline is made: then it ends
        self.sends = 0
        self.reads = 0  # made since the first halt request
        self.waits = 0
        self.tried = 0  # reads tried since the latest halt request
        self.retry_after: float | None = None  # asked by the Store's latest answer
        self.lost: TransientError | None = None  # the latest halt request without an answer
        self.unread: HaltRolloutError | None = None  # why the latest read failed
        self.refused_at: float | None = None

    def time_left(self) -> bool:
        return not self.last_look and self.deadline.remaining() > 0

    def send(self) -> None:
        """One halt request; what its answer proves goes into `known`."""
        if self.sends and not self.known.reached and self.lost is not None:
            # Never received (a 429, or not sent at all): the retry rule's wait, then again.
            with self.deadline.keeping(self.room):
                self.pauser.pause(self.lost, self.sends + 1)
        self.sends += 1
        self.tried, self.unread = 0, None
        self.known.read = Read.NOTHING  # what was read before it says nothing of it
        # With too little time left for both, sending the halt comes before confirming it.
        keep = self.room if self.deadline.remaining() > 2 * self.room else 0.0
        try:
            with self.deadline.keeping(keep):
                rollout = self.store.send_halt(self.ref)
        except TransientError as error:
            self.lost, self.retry_after = error, error.retry_after
            self.known.reached = self.known.reached or error.maybe_applied
            return
        except StoreError as error:
            if self.known.reached:
                self.known.under_way = True
                self.log(
                    f"the Store refused another halt ({status_of(error)}): one may be under "
                    "way, so it is not sent again"
                )
                return
            if error.status is None:
                raise  # refused before it reached the Store (its TLS certificate)
            self.known.refusal, self.refused_at = error, self.deadline.now()
            self.log(f"the Store refused the halt ({status_of(error)}); reading the rollout")
            return
        self.known.reached = True
        self.known.read, self.known.rollout = Read.STOPPED, rollout

    def read(self) -> None:
        """Wait with backoff (never into the last read's room), then read the rollout once.
        A read that fails leaves what an earlier one since the halt request showed."""
        if self.reads or self.known.reached:  # right after a refusal: at once (rule 6)
            self._wait()
        self.reads += 1
        self.tried += 1
        try:
            rollout = self.store.read_rollout_once(self.ref)
        except TransientError as error:
            self.unread, self.retry_after = error.failure, error.retry_after
            return
        except StoreError as error:
            self.unread, self.retry_after = error, None
            return
        self.retry_after = None
        self.known.read, self.known.rollout = read_kind(rollout), rollout

    def _wait(self) -> None:
        wait = CONFIRM_WAITS_SECONDS[min(self.waits, len(CONFIRM_WAITS_SECONDS) - 1)]
        self.waits += 1
        if self.retry_after is not None:
            wait = max(wait, self.retry_after)
        remaining = self.deadline.remaining()
        if wait > remaining - self.room:
            self.last_look = True
            wait = max(0.0, remaining - self.room)
        if self.refused_at is not None:  # a refusal is watched for a bounded time
            watch_left = self.refused_at + CONFLICT_WATCH_SECONDS - self.deadline.now()
            if wait >= watch_left:
                self.known.watched_enough = True
                wait = max(0.0, watch_left)
        left = f"{format_seconds(remaining)} of timeout-seconds left"
        if self.lost is not None and not self.tried and not self.known.under_way:
            self.log(
                f"the halt may have reached the Store, so the rollout is read before it is "
                f"sent again ({left})"
            )
        self.log(self._waiting(wait, left))
        self.deadline.sleep(wait)

    def _waiting(self, wait: float, left: str) -> str:
        """The wait as it starts: why, how long, what the run waits for, and the time left."""
        known, seconds = self.known, format_seconds(wait)
        if self.lost is not None and not self.tried and not known.under_way:
            # What comes first, then the retry rule's own words (rule 7).
            how = "as Retry-After asks" if self.retry_after is not None else "before trying again"
            return f"{self.lost.reason}; waiting {seconds} {how} (attempt {self.sends + 1})"
        if known.refusal is not None and not known.reached:
            if known.read is Read.ROLLING_OUT:
                what = f"the rollout still reads {IN_PROGRESS}: another halt may be under way"
            else:
                what = self.unread_words()
            return f"the Store refused the halt; {what}; reading it again in {seconds} ({left})"
        state = IN_PROGRESS if known.read is Read.ROLLING_OUT else "not yet read"
        if known.read is Read.NOTHING and self.unread is not None:
            state = self.unread_words()
        return (
            f"waiting for the rollout to read {STOPPED} ({state}); reading it again in "
            f"{seconds} ({left})"
        )

    def unread_words(self) -> str:
        why = f" ({self.unread.title})" if self.unread is not None else ""
        return f"the rollout could not be read{why}"


def confirm_halt(store: StoreClient, pauser: Pauser, ref: SubmissionRef, log: Log) -> Ending:
    """Send the halt and keep confirming it until `next_step` says how it ended."""
    facts = _Confirmation(store, pauser, ref, log)
    try:
        facts.send()
    except HaltRolloutError as error:
        return Ending(Step.FAILED, None, error)
    while True:
        step = next_step(facts.known, time_left=facts.time_left())
        if step is Step.SEND_AGAIN:
            if facts.known.reached:
                log(f"the rollout still reads {IN_PROGRESS}; sending the halt again")
            try:
                facts.send()
            except HaltRolloutError as error:
                return _ended(facts, Step.FAILED, error)
        elif step is Step.READ_AGAIN:
            facts.read()
        else:
            return _ended(facts, step, None)


def _ended(facts: _Confirmation, step: Step, error: HaltRolloutError | None) -> Ending:
    """The ending, said in the log and, for a failure, in words a person acts on."""
    known, rollout = facts.known, facts.known.rollout
    if step is Step.HALTED:
        if facts.tried:  # a read showed it, not the halt's own answer
            facts.log("the halt had taken effect although its answer was lost")
        return Ending(step, rollout)
    if step is Step.ALREADY_HALTED:
        refused = f"the Store refused the halt ({status_of(known.refusal)}), but " * bool(
            known.refusal
        )
        facts.log(
            f"{refused}the rollout is now {STOPPED}: someone else (another run, Partner "
            "Center) halted it meanwhile"
        )
        return Ending(step, rollout)
    if error is None:
        make = _unknown if step is Step.UNKNOWN else _failure
        error = make(facts, facts.deadline.why())
    return Ending(step, rollout, error)


def _unknown(facts: _Confirmation, why: str) -> HaltRolloutError:
    known, rollout = facts.known, facts.known.rollout
    if known.read is Read.ROLLING_OUT and rollout is not None:
        state = f"the rollout still read {describe_rollout(rollout)}"
    else:
        state = facts.unread_words() + (f": {facts.unread.message}" if facts.unread else "")
    if known.refusal is not None and not known.reached:
        return OutcomeUnknown(
            f"The halt of {facts.ref.describe()} was sent and refused "
            f"({status_of(known.refusal)}), and {state} when {why}: whether someone else "
            f"stopped it is not known. {CHECK_AND_RERUN}"
        )
    lost = facts.lost
    answer = f"no usable answer: {lost.reason}" if lost else "no answer"
    last = f" The last answer to the halt: {lost.failure.message}" if lost else ""
    return OutcomeUnknown(
        f"The halt of {facts.ref.describe()} was sent ({answer}), and {state} when {why}: "
        f"the Store may still be carrying it out. {CHECK_AND_RERUN}{last}"
    )


def _failure(facts: _Confirmation, why: str) -> HaltRolloutError:
    known, ref, rollout = facts.known, facts.ref, facts.known.rollout
    if known.read is Read.BEYOND_HALTING and rollout is not None:
        return StoreError(
            f"The halt of {ref.describe()} did not stop it: the rollout now reads "
            f"{describe_rollout(rollout)}, which no halt can stop (finalized, or no gradual "
            "rollout). Check it in Partner Center.",
            title="Rollout changed during the halt",
        )
    if known.refusal is not None:
        state = describe_rollout(rollout) if rollout is not None else IN_PROGRESS
        if known.watched_enough:
            watched = f" (watched for {CONFLICT_WATCH_SECONDS:g} s for another halt to land)"
        else:
            watched = f" (watched until {why})" if facts.reads > 1 else ""
        return known.refusal.extended(
            f"The rollout still reads {state}{watched}: the halt did not take effect."
        )
    never = f"The halt never reached the Store, so it was not carried out: {why}."
    if facts.lost is None:
        return StoreError(f"Could not halt the rollout of {ref.describe()}. {never}")
    return facts.lost.failure.extended(f"{never} Run it again, or raise timeout-seconds.")


def status_of(error: StoreError | None) -> str:
    """`HTTP 409 InvalidState: its message`: what the Store answered, in one line."""
    if error is None or error.status is None:
        return "no HTTP status"
    code = f" {error.code}" if error.code else ""
    message = f": {error.store_message}" if error.store_message else ""
    return f"HTTP {error.status}{code}{message}"
