"""Targets of one run that reach the same rollout (contract, "Several targets").

An exact duplicate is refused. So are two entries that may reach the same rollout
but would treat it differently (one with an expected-version, one without, or two
versions; halt-when or its thresholds): which of them would decide is a race, so the
run refuses before anything is sent. Entries that may overlap and agree are allowed:
the run works on the rollout once, when their submissions are known (run.Claims).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Protocol

from .version_guard import same_version


class Target(Protocol):
    """What of a target (inputs.Target) decides which rollouts it reaches."""

    @property
    def app_id(self) -> str: ...
    @property
    def flight_id(self) -> str | None: ...
    @property
    def submission_id(self) -> str | None: ...
    @property
    def all_flights(self) -> bool: ...
    @property
    def expected_version(self) -> str | None: ...
    @property
    def guard(self) -> object: ...
    @property
    def name(self) -> str | None: ...
    @property
    def label(self) -> str: ...


def overlap_problems(targets: Sequence[Target], source: str) -> list[str]:
    """What to refuse in a targets file's list, each problem once."""
    problems: list[str] = []
    for (first_number, first), (number, other) in combinations(enumerate(targets, 1), 2):
        if _key(first) == _key(other):
            problems.append(f"targets file {source} lists {other.label} twice")
        elif _may_overlap(first, other) and not same_version(
            first.expected_version, other.expected_version
        ):
            problems.append(
                f"targets entries {first_number} and {number} may reach the same rollout "
                f"({_scope(first)}; {_scope(other)}) but guard it differently "
                f"(expected-version {_guard(first)} and {_guard(other)}): give them the same "
                "expected-version, or list the rollout once"
            )
        elif _may_overlap(first, other) and first.guard != other.guard:
            problems.append(
                f"targets entries {first_number} and {number} may reach the same rollout "
                f"({_scope(first)}; {_scope(other)}) but one would halt it on other terms "
                "(halt-when and its thresholds) than the other: give them the same, or list "
                "the rollout once"
            )
    return problems


def _key(target: Target) -> tuple[str, str | None, str | None, bool]:
    flight = target.flight_id.lower() if target.flight_id else None
    return (target.app_id.upper(), flight, target.submission_id, target.all_flights)


def _may_overlap(one: Target, other: Target) -> bool:
    """Whether both may stand for one rollout once their submissions are resolved."""
    if one.app_id.upper() != other.app_id.upper():
        return False
    if one.all_flights or other.all_flights:
        return True  # every rollout of the app, the one the other names among them
    if _key(one)[1] != _key(other)[1]:
        return False  # the app's own rollout and a flight's, or two flights
    given = {one.submission_id, other.submission_id} - {None}
    return len(given) < 2  # one resolves to the last published, or both name the same


def _scope(target: Target) -> str:
    what = target.name or target.app_id
    if target.all_flights:
        return f"{what}: every rollout of app {target.app_id}"
    if target.submission_id:
        return f"{what}: submission {target.submission_id}"
    flight = f"flight {target.flight_id}'s" if target.flight_id else "the app's"
    return f"{what}: {flight} last published submission"


def _guard(target: Target) -> str:
    return target.expected_version or "none"
