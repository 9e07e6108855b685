"""Waiting and retrying within one deadline for the whole run.

The Store's gateway throttles at about 20 requests a minute per tenant and
sometimes says for how long (`Retry-After`, in seconds or as an HTTP date, or
only in its message). When it says, we wait exactly that; when it does not,
exponential backoff with jitter. Every wait is logged as it starts, so a person
watching an incident's log knows why nothing seems to happen.
"""

from __future__ import annotations

import email.utils
import math
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from .deadline import Deadline
from .errors import HaltRolloutError
from .policy import BACKOFF_FIRST_SECONDS, BACKOFF_MAX_SECONDS, RETRY_AFTER_JITTER_SECONDS

T = TypeVar("T")
Log = Callable[[str], None]


# Two HTTP dates folded into one header: split at the comma before the second's day name.
_DAY_NAME = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),")
_BETWEEN_DATES = re.compile(r",\s*(?=(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),)")
# A Retry-After is a number or a date: anything longer is not one (and costs no time).
_RETRY_AFTER_CHARS = 200
_TRY_AGAIN_IN = re.compile(r"try again in (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)


class TransientError(Exception):
    """A failure worth trying again; `failure` is what to report if no time is left.

    `maybe_applied` is true when the request may have reached the Store and
    taken effect (a lost answer, a gateway error): a halt must then be checked,
    not blindly sent again. `patience` is for answers that waiting does not
    clear: retry them for at most that many seconds from the first one seen.
    """

    def __init__(
        self,
        reason: str,
        failure: HaltRolloutError,
        *,
        retry_after: float | None = None,
        maybe_applied: bool = True,
        patience: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.failure = failure
        self.retry_after = retry_after
        self.maybe_applied = maybe_applied
        self.patience = patience


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date.

    A header sent twice reaches us folded into one (`3, 3`, or two dates joined by
    `, `): each value counts, and the longest wait is the one honoured.
    """
    if not value:
        return None
    # Dates carry a comma of their own (`Wed, 21 Oct 2015 …`): each is kept whole.
    pieces = [
        piece
        for chunk in _BETWEEN_DATES.split(value[:_RETRY_AFTER_CHARS])
        for piece in ([chunk] if _DAY_NAME.match(chunk.strip()) else chunk.split(","))
    ]
    waits = [wait for piece in pieces if (wait := _one_retry_after(piece, now)) is not None]
    return max(waits) if waits else None


def _one_retry_after(value: str, now: datetime | None) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except (ValueError, OverflowError):
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        # A date is only precise to the second: round up, so the wait is never short.
        try:
            seconds = math.ceil((when - (now or datetime.now(UTC))).total_seconds())
        except (OverflowError, ValueError):
            return None
    if math.isnan(seconds):
        return None
    return max(0.0, float(seconds))


def retry_hint_in_message(message: str | None) -> float | None:
    """The gateway's 'Try again in 14 seconds.' when it sends no Retry-After header."""
    match = _TRY_AGAIN_IN.search((message or "")[:1000])
    return float(match.group(1)) if match else None


def backoff_seconds(retry_number: int, rng: random.Random) -> float:
    """Exponential backoff with jitter: about 1, 2, 4, 8 … seconds, up to 20."""
    doublings = min(max(retry_number - 1, 0), 16)  # the cap is reached long before
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2**doublings)
    return rng.uniform(ceiling / 2, ceiling)


def format_seconds(seconds: float) -> str:
    """`14 s`, `2 s`, `1.3 s`: whole seconds as such, short fractions to a tenth."""
    if not math.isfinite(seconds) or seconds >= 1e15:
        return "longer than any run may last"
    if seconds >= 10 or abs(seconds - round(seconds)) < 0.05:
        return f"{round(seconds)} s"
    return f"{seconds:.1f} s"


class Pauser:
    """Decides, logs and sleeps the wait before the next attempt, or gives up.

    One per target (its log names the target); `first_seen` is shared by the run,
    so an answer that waiting does not clear uses up its patience once for all.
    """

    def __init__(
        self,
        deadline: Deadline,
        log: Log,
        *,
        rng: random.Random | None = None,
        first_seen: dict[str, float] | None = None,
    ) -> None:
        self.deadline = deadline
        self._log = log
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)
        self._first_seen = first_seen if first_seen is not None else {}

    def pause(self, error: TransientError, next_attempt: int) -> None:
        """Wait before `next_attempt`, or raise a failure when the deadline forbids it."""
        if error.retry_after is not None:
            delay = error.retry_after + self._rng.uniform(0, RETRY_AFTER_JITTER_SECONDS)
            why = f"waiting {format_seconds(error.retry_after)} as Retry-After asks"
        else:
            delay = backoff_seconds(next_attempt - 1, self._rng)
            why = f"waiting {format_seconds(delay)} before trying again"
        if error.patience is not None:
            now = self.deadline.now()
            # Keyed apart from the same status without patience (an ordinary outage).
            first = self._first_seen.setdefault(f"{error.reason}, waited out once", now)
            left = first + error.patience - now
            if left <= 0 or delay > left:
                raise error.failure.extended(
                    f"Gave up after {next_attempt - 1} attempt(s) over "
                    f"{format_seconds(now - first)}: waiting does not clear this answer."
                )
        remaining = self.deadline.remaining()
        if self.deadline.cancelled:
            raise error.failure.extended(
                f"Stopped after {next_attempt - 1} attempt(s): {self.deadline.why()}."
            )
        if remaining <= 0:
            raise error.failure.extended(
                f"Gave up after {next_attempt - 1} attempt(s): no time is left of "
                f"timeout-seconds ({self.deadline.seconds:g}). Run it again, or raise "
                "timeout-seconds."
            )
        if delay >= remaining:
            asked = "the Store asks to wait" if error.retry_after is not None else "the next try is"
            raise error.failure.extended(
                f"Gave up after {next_attempt - 1} attempt(s): {asked} "
                f"{format_seconds(delay)}, but only {format_seconds(remaining)} of "
                f"timeout-seconds ({self.deadline.seconds:g}) remain. Run it again, or raise "
                "timeout-seconds."
            )
        self._log(f"{error.reason}; {why} (attempt {next_attempt})")
        self.deadline.sleep(delay)

    def run(self, call: Callable[[], T]) -> T:
        """`call()` until it succeeds, raises something final, or time runs out."""
        attempt = 1
        while True:
            try:
                return call()
            except TransientError as error:
                attempt += 1
                self.pause(error, attempt)
