"""Waiting is bounded and said (rules 7 and 7a): Retry-After, backoff, the deadline and the
wait log, as pure functions."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

import pytest

from halt_rollout.deadline import Deadline
from halt_rollout.errors import StoreError
from halt_rollout.retry import (
    Pauser,
    TransientError,
    backoff_seconds,
    parse_retry_after,
    retry_hint_in_message,
)

from .world import Incoming, Wire, World, json_answer

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("14", 14.0),
        (" 2 ", 2.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("Mon, 23 Nov 2026 12:00:30 GMT", 30.0),
        ("Mon, 23 Nov 2026 11:59:00 GMT", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("nan", None),
        # Sent twice, folded by requests into one header: the agreed value, or the longest.
        ("3, 3", 3.0),
        ("3,7", 7.0),
        ("7, soon", 7.0),
        ("Mon, 23 Nov 2026 12:00:30 GMT, Mon, 23 Nov 2026 12:00:30 GMT", 30.0),
        ("Mon, 23 Nov 2026 12:00:10 GMT, Mon, 23 Nov 2026 12:00:40 GMT", 40.0),
        ("5, Mon, 23 Nov 2026 12:00:20 GMT", 20.0),
        ("soon, later", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_gateway_message_hint() -> None:
    assert retry_hint_in_message("Rate limit is exceeded. Try again in 14 seconds.") == 14.0
    assert retry_hint_in_message("Try again in 1 second") == 1.0
    assert retry_hint_in_message("busy") is None
    assert retry_hint_in_message(None) is None


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    rng = random.Random(7)
    for retry in range(1, 12):
        ceiling = min(20.0, 2 ** (retry - 1))
        for _ in range(50):
            assert ceiling / 2 <= backoff_seconds(retry, rng) <= ceiling


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class RecordingStop(threading.Event):
    """A stop event whose wait() records the delay and advances a fake clock instead."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.waits.append(timeout)
        self.clock.now += timeout
        return False


def make_pauser(seconds: float) -> tuple[Pauser, RecordingStop, list[str]]:
    clock = FakeClock()
    stop = RecordingStop(clock)
    lines: list[str] = []
    deadline = Deadline(seconds, clock=clock, stop=stop)
    pauser = Pauser(deadline, lines.append, rng=random.Random(1))
    return pauser, stop, lines


def throttled(retry_after: float | None) -> TransientError:
    return TransientError(
        "429 from the Store", StoreError("Could not halt: rate limit."), retry_after=retry_after
    )


def test_pause_honours_retry_after_and_logs_it_first() -> None:
    pauser, stop, lines = make_pauser(60)
    pauser.pause(throttled(14), next_attempt=2)
    assert lines == ["429 from the Store; waiting 14 s as Retry-After asks (attempt 2)"]
    assert 14 <= stop.waits[0] <= 14.25


def test_pause_without_retry_after_backs_off() -> None:
    pauser, stop, lines = make_pauser(60)
    pauser.pause(throttled(None), next_attempt=3)
    assert 1.0 <= stop.waits[0] <= 2.0
    assert lines[0].startswith("429 from the Store; waiting ")
    assert lines[0].endswith("before trying again (attempt 3)")


def test_pause_gives_up_when_the_wait_would_pass_the_deadline() -> None:
    pauser, stop, lines = make_pauser(10)
    with pytest.raises(StoreError) as caught:
        pauser.pause(throttled(30), next_attempt=2)
    assert stop.waits == []
    assert lines == []
    message = caught.value.message
    assert "asks to wait 30 s" in message
    assert "timeout-seconds (10)" in message


def test_run_retries_until_success() -> None:
    pauser, stop, lines = make_pauser(60)
    answers: list[object] = [throttled(1), throttled(None), "done"]

    def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, TransientError):
            raise answer
        assert isinstance(answer, str)
        return answer

    assert pauser.run(call) == "done"
    assert len(stop.waits) == 2
    assert [line.rsplit("(", 1)[1] for line in lines] == ["attempt 2)", "attempt 3)"]


def test_remaining_follows_the_deadline_and_a_reserve() -> None:
    clock = FakeClock()
    deadline = Deadline(100, clock=clock)
    assert deadline.remaining() == 100
    clock.now += 95
    assert deadline.remaining() == 5
    with deadline.keeping(2):
        assert deadline.remaining() == 3
    assert deadline.remaining() == 5
    clock.now += 10
    assert deadline.remaining() == 0
    assert deadline.expired()


def test_a_doubled_retry_after_header_is_honoured(world: World) -> None:
    """Rule 7 honours Retry-After; a gateway that sends the header twice (requests folds
    them into `2, 2`) is honoured too, not ignored for a backoff of our own."""
    throttled: list[Incoming] = []

    def store(req: Incoming, wire: Wire) -> None:
        if req.path.endswith("/packagerollout") and not throttled:
            throttled.append(req)
            extra = (("Retry-After", "2"), ("Retry-After", "2"))
            wire.send(json_answer(429, {"statusCode": 429, "message": "Rate limit"}, extra))
        else:
            wire.send(wire.forward(req).raw())

    run = world.run(store=world.hostile(store))
    assert run.exit_code == 0, run.stdout
    assert "waiting 2 s as Retry-After asks" in run.stdout, run.stdout
