"""The guard's four inputs (halt-when, failure-ratio, min-failing-devices, event-types),
checked before anything touches the network.

Pure and small on purpose: an emergency stop (`halt-when: now`) reads these inputs too,
and must not load the analytics reader or the decision to do it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import shown

HALT_NOW = "now"
HALT_WHEN_FAILING = "failing"
HALT_WHEN = (HALT_NOW, HALT_WHEN_FAILING)
# The Store's failure kinds (failurehits `eventType`).
EVENT_TYPES = ("crash", "hang", "memory", "jse")
DEFAULT_FAILURE_RATIO = 2.0
DEFAULT_MIN_FAILING_DEVICES = 25
DEFAULT_EVENT_TYPES = ("crash", "hang")
MIN_FAILURE_RATIO, MAX_FAILURE_RATIO = 1.1, 100.0
MIN_FAILING_DEVICES, MAX_FAILING_DEVICES = 1, 1_000_000
# The title of a guard that could not read the failure data (analytics.AnalyticsUnreadable),
# here so that the summary can tell a blind guard from a failed halt without loading it.
BLIND_TITLE = "Failure data could not be read"
GUARD_INPUTS = ("halt-when", "failure-ratio", "min-failing-devices", "event-types")
# Longer than any valid value: nothing longer is parsed (a megabyte of digits is no ratio).
_MAX_VALUE_CHARS = 100
# A plain decimal number: not "1e1", "0x10", "1_0", "inf" or "nan", which float() reads.
_DECIMAL = re.compile(r"[0-9]{1,8}(?:\.[0-9]{0,8})?|\.[0-9]{1,8}")


@dataclass(frozen=True)
class Guard:
    """`halt-when: failing` and its thresholds: halt only on the Store's failure data."""

    failure_ratio: float = DEFAULT_FAILURE_RATIO
    min_failing_devices: int = DEFAULT_MIN_FAILING_DEVICES
    event_types: tuple[str, ...] = DEFAULT_EVENT_TYPES

    def describe(self) -> str:
        return (
            f"halting only on evidence: more than {self.failure_ratio:g}× the fallback's failing "
            f"share, from at least {self.min_failing_devices} failing devices "
            f"({', '.join(self.event_types)})"
        )


def read_guard(
    values: Mapping[str, str | bool], *, where: str, problems: list[str]
) -> Guard | None:
    """The guard the values ask for (None: halt now), or problems appended. `values` holds
    the four inputs as text ('' or absent: not given, so the default holds)."""
    given = {name: str(values.get(name) or "").strip() for name in GUARD_INPUTS}
    when = given["halt-when"] or HALT_NOW
    if when not in HALT_WHEN:
        problems.append(f"{where}halt-when must be now or failing, not {shown(when)}")
    guard = Guard(
        _ratio(given["failure-ratio"], where, problems),
        _minimum(given["min-failing-devices"], where, problems),
        _event_types(given["event-types"], where, problems),
    )
    return guard if when == HALT_WHEN_FAILING else None


def _ratio(text: str, where: str, problems: list[str]) -> float:
    if not text:
        return DEFAULT_FAILURE_RATIO
    ratio = float(text) if _DECIMAL.fullmatch(text) else 0.0
    if not MIN_FAILURE_RATIO <= ratio <= MAX_FAILURE_RATIO:
        problems.append(
            f"{where}failure-ratio must be a number from {MIN_FAILURE_RATIO:g} to "
            f"{MAX_FAILURE_RATIO:g} (how many times the fallback's failing share to halt "
            f"above), not {shown(text)}"
        )
        return DEFAULT_FAILURE_RATIO
    return ratio


def _minimum(text: str, where: str, problems: list[str]) -> int:
    if not text:
        return DEFAULT_MIN_FAILING_DEVICES
    whole = text.isascii() and text.isdigit() and len(text) <= _MAX_VALUE_CHARS
    if not whole or not MIN_FAILING_DEVICES <= int(text) <= MAX_FAILING_DEVICES:
        problems.append(
            f"{where}min-failing-devices must be a whole number from {MIN_FAILING_DEVICES} "
            f"to {MAX_FAILING_DEVICES}, not {shown(text)}"
        )
        return DEFAULT_MIN_FAILING_DEVICES
    return int(text)


def _event_types(text: str, where: str, problems: list[str]) -> tuple[str, ...]:
    if not text:
        return DEFAULT_EVENT_TYPES
    parts = [part.strip().lower() for part in text.split(",")]
    unknown = [part for part in parts if part not in EVENT_TYPES]
    if unknown or len(text) > _MAX_VALUE_CHARS:
        problems.append(
            f"{where}event-types must be a comma-separated list of {', '.join(EVENT_TYPES)}, "
            f"not {shown(text)}"
        )
        return DEFAULT_EVENT_TYPES
    return tuple(kind for kind in EVENT_TYPES if kind in parts)  # each once, in one order
