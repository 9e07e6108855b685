"""One schedule per seed: the Store's content, its faults, the run's settings.

Everything is drawn from `random.Random(seed)` in a fixed order, so a seed replays the
same schedule on any machine. The draws lean to short deadlines (most runs end in a few
seconds) and to the faults the contract names: delays, drops before and after a halt
applies, a slow-applying halt, 409, 429 with and without Retry-After, 5xx (a 504 whose
halt went through among them), short, empty and repeated listing pages, another
responder, a cancel, the version guard, overlapping targets, broken log streams.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Callable
from typing import Any

from .model import (
    APP,
    CALLS,
    COMPLETE,
    HOSTILE_NAMES,
    IN_PROGRESS,
    NO_ROLLOUT,
    OTHER_APP,
    STOPPED,
    Cancel,
    Entry,
    FaultPlan,
    Flight,
    Key,
    Rival,
    Rollout,
    Schedule,
    covers,
    version_number,
)


def _submission(rng: random.Random) -> str:
    return f"1152921504{rng.randrange(10**9):09d}"


def _versions(rng: random.Random) -> tuple[str, ...]:
    minor, patch = rng.randint(2, 9), rng.randint(0, 9)
    newest = f"1.{minor}.{patch}.0"
    if rng.random() < 0.35:  # a newer submission keeps an older package beside its new one
        older = f"1.{minor - 1}.{rng.randint(0, 9)}.0"
        return tuple(rng.sample([newest, older], 2))
    return (newest,) * rng.randint(1, 2)


def _status(rng: random.Random, in_progress: float) -> str:
    if rng.random() < in_progress:
        return IN_PROGRESS
    return rng.choice([STOPPED, STOPPED, COMPLETE, NO_ROLLOUT])


def _expected(rng: random.Random, versions: tuple[str, ...]) -> str:
    """The newest version (sometimes written short), an older one, or one not there."""
    newest = max(versions, key=version_number)
    roll = rng.random()
    if roll < 0.45:
        return newest.removesuffix(".0") if rng.random() < 0.3 else newest
    if roll < 0.75:
        older = [v for v in versions if version_number(v) < version_number(newest)]
        return older[0] if older else "1.0.9.0"
    return rng.choice(["2.0.0.0", "0.9.0.0", "1.1.0"])


def _fault(rng: random.Random) -> FaultPlan:
    call = rng.choices(list(CALLS), weights=[10, 5, 10, 8, 25, 35, 7])[0]
    kinds = ["delay", "reset_before", "429", "5xx", "hang", "truncate"]
    weights = [15, 15, 15, 20, 4, 5]
    if call == "halt":
        kinds += ["reset_after", "504_after", "409", "hang_after"]
        weights += [15, 12, 10, 4]
    kind = rng.choices(kinds, weights=weights)[0]
    times = rng.choices([1, 2, 3, None], weights=[55, 20, 15, 10])[0]
    if kind == "delay":
        return FaultPlan(call, "delay", times=times, seconds=round(rng.uniform(0.2, 4.0), 2))
    if kind in ("reset_before", "reset_after"):
        return FaultPlan(call, kind, times=times)
    if kind in ("hang", "hang_after"):
        return FaultPlan(call, kind, times=1, seconds=round(rng.uniform(1.0, 8.0), 1))
    if kind == "truncate":
        return FaultPlan(call, "truncate", status=200, times=1)
    if kind == "429":
        after = rng.choice([None, None, "1", "2", "3", "2, 2"])
        body = {"statusCode": 429, "message": "Rate limit is exceeded."}
        headers = (("Retry-After", after),) if after else ()
        return FaultPlan(call, "respond", 429, times, headers=headers, body=body)
    if kind == "409":
        body = {
            "code": "InvalidState",
            "data": [],
            "details": [],
            "message": "The package rollout cannot be halted: it is not in a haltable state.",
            "source": "Ingestion Api",
            "target": "submission",
        }
        return FaultPlan(call, "respond", 409, 1, body=body)
    status = 504 if kind == "504_after" else rng.choice([500, 502, 503, 504])
    unavailable: dict[str, Any] = {"code": "ServiceUnavailable", "message": "Try again later."}
    outage: dict[str, Any] | None = unavailable if rng.random() < 0.5 else None
    return FaultPlan(
        call, "respond_after" if kind == "504_after" else "respond", status, times, body=outage
    )


def _flights(rng: random.Random, count: int, hostile: bool) -> list[Flight]:
    flights = []
    for number in range(count):
        flight_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        name = rng.choice(HOSTILE_NAMES) if hostile and rng.random() < 0.5 else f"Ring {number}"
        published = _submission(rng) if rng.random() < 0.95 else None
        pending = _submission(rng) if rng.random() < 0.3 else None
        flights.append(Flight(flight_id, name, published, pending))
    return flights


def schedule(seed: int) -> Schedule:
    """The schedule of `seed`: the same on every call and every machine."""
    rng = random.Random(seed)
    timeout = rng.choices(
        [rng.randint(3, 6), rng.randint(7, 12), rng.randint(13, 20)], [55, 30, 15]
    )[0]
    mode = rng.choices(["app", "flight", "all-flights", "file"], weights=[20, 15, 30, 35])[0]
    log = rng.choices(["pipe", "broken", "cp1252", "ascii", "C"], weights=[80, 8, 6, 2, 4])[0]
    hostile = log in ("cp1252", "ascii", "C") or rng.random() < 0.3
    many = mode in ("all-flights", "file") and rng.random() < 0.6
    count = rng.choice([0, 1, 2, 3, 4, 6, 9, 12, 18, 25]) if many else rng.randint(1, 3)
    flights = _flights(rng, count, hostile)

    app_submission, other_submission = _submission(rng), _submission(rng)
    rollouts = [
        Rollout(APP, None, app_submission, _status(rng, 0.85), _versions(rng)),
        Rollout(OTHER_APP, None, other_submission, IN_PROGRESS, _versions(rng)),
    ]
    for flight in flights:
        if flight.published is not None:
            versions = _versions(rng)
            rollouts.append(
                Rollout(APP, flight.flight_id, flight.published, _status(rng, 0.7), versions)
            )
    app_pending = _submission(rng) if rng.random() < 0.3 else None
    by_key = {r.key: r for r in rollouts}

    def guard(key: Key, chance: float) -> str | None:
        if rng.random() >= chance:
            return None
        return _expected(rng, by_key[key].versions)

    def flight_entry() -> Entry:
        flight = rng.choice(flights) if flights else None
        if flight is None or flight.published is None:
            return Entry(APP, expected_version=guard(rollouts[0].key, 0.3))
        key = (APP, flight.flight_id, flight.published)
        return Entry(APP, flight_id=flight.flight_id, expected_version=guard(key, 0.3))

    def all_flights_entry(chance: float) -> Entry:
        expected = None
        if rng.random() < chance:
            in_progress = [r for r in rollouts if r.app_id == APP and r.status == IN_PROGRESS]
            pick = rng.choice(in_progress or rollouts[:1])
            expected = _expected(rng, pick.versions)
        return Entry(APP, all_flights=True, expected_version=expected)

    entries: list[Entry] = []
    if mode == "app":
        entries.append(Entry(APP, expected_version=guard(rollouts[0].key, 0.35)))
    elif mode == "flight":
        entries.append(flight_entry())
    elif mode == "all-flights":
        entries.append(all_flights_entry(0.3))
    else:
        makers: list[Callable[[], Entry]] = [
            lambda: Entry(APP, expected_version=guard(rollouts[0].key, 0.2)),
            lambda: all_flights_entry(0.2),
            lambda: Entry(APP, submission_id=app_submission),
            flight_entry,
            lambda: Entry(OTHER_APP, expected_version=guard(rollouts[1].key, 0.2)),
            lambda: Entry(OTHER_APP, submission_id=other_submission),
        ]
        for _ in range(rng.randint(2, 4)):
            entry = rng.choice(makers)()
            if not any(_same_target(entry, e) for e in entries):
                entries.append(entry)
    if hostile and mode == "file":
        entries = [
            dataclasses.replace(e, name=rng.choice(HOSTILE_NAMES)) if rng.random() < 0.5 else e
            for e in entries
        ]

    faults = [_fault(rng) for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4, 5]))]
    halt_seconds = 0.0 if rng.random() < 0.5 else round(rng.uniform(0.5, 12.0), 1)
    halt_at_once = halt_seconds > 0 and rng.random() < 0.5
    page_cap = None if rng.random() < 0.4 else rng.randint(1, 10)
    next_link = rng.random() < 0.85
    later_pages = "real"
    if count >= 2 and rng.random() < 0.25:
        later_pages = rng.choice(["empty", "repeat", "recount"])

    targetable = [r for r in rollouts if r.status == IN_PROGRESS and _covered(r, entries)]
    rival = None
    if targetable and rng.random() < 0.3:
        rival = Rival(
            rng.choice(targetable).key, round(rng.uniform(0, timeout), 2), rng.random() < 0.3
        )
    cancel = None
    if rng.random() < 0.2:
        after = "start" if rng.random() < 0.6 else "halt"
        delay = (
            rng.uniform(0.1, max(0.2, timeout - 0.5)) if after == "start" else rng.uniform(0, 1.5)
        )
        sigterm = round(rng.uniform(0.05, 1.5), 2) if rng.random() < 0.3 else None
        cancel = Cancel(after, round(delay, 2), sigterm)
    oidc = rng.random() < 0.15
    proxy = password = None
    if rng.random() < 0.1:
        password = f"pw{rng.getrandbits(48):012x}"
        variable = rng.choice(["HTTPS_PROXY", "https_proxy", "ALL_PROXY"])
        shape = rng.choice(
            [
                f"http://alice:{password}@proxy.invalid:3128",
                f"alice:{password}@proxy.invalid:3128",
                f"http://alice:{password[:6]}/{password[6:]}@x@proxy.invalid:3128",
            ]
        )
        proxy = (variable, shape)
    return Schedule(
        seed=seed,
        timeout=timeout,
        rollouts=tuple(rollouts),
        flights=tuple(flights),
        app_pending=app_pending,
        entries=tuple(entries),
        in_file=mode == "file",
        faults=tuple(faults),
        halt_seconds=halt_seconds,
        halt_at_once=halt_at_once,
        page_cap=page_cap,
        next_link=next_link,
        later_pages=later_pages,
        rival=rival,
        cancel=cancel,
        log=log,
        broken_after=rng.randint(0, 12),
        oidc=oidc,
        proxy=proxy,
        proxy_password=password,
        hostile_names=hostile,
    )


def _same_target(a: Entry, b: Entry) -> bool:
    """Exact duplicates (refused as such, a case of its own): kept out of the draws."""
    return (a.app_id, a.flight_id, a.submission_id, a.all_flights) == (
        b.app_id,
        b.flight_id,
        b.submission_id,
        b.all_flights,
    )


def _covered(rollout: Rollout, entries: list[Entry]) -> bool:
    return any(covers(e, rollout) for e in entries)
