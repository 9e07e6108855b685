"""How docs/benchmarks.md shows a figure: milliseconds, medians, spreads, verdicts, labels,
and the medians of the time-to-halt arms."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Literal

from .record import Sample

MB = 1_000_000


SAME_STACK_TARGET = 1.1  # the entrypoint's time over the same-stack script's, at most


UNSHARED_SHOWN = 15


LABELS = {
    "floor": "floor (`requests`, 2 POSTs)",
    "same-stack": "same stack (azure-identity + `requests` halt + GITHUB_OUTPUT)",
    "given": "entrypoint, submission given",
    "resolved": "entrypoint, submission resolved",
}


IMPORT_LABELS = {
    "sys": "the interpreter alone",
    "requests": "the floor's imports",
    "requests, azure.identity": "the same stack's",
    "halt_rollout.main": "the entrypoint's",
}


Row = tuple[str, str, str, bool | None, str]


Phase = Literal["seconds", "startup", "http", "tail", "cpu"]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def ms1(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    return f"{ms(min(values))}–{ms(max(values))}"


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


class Arms:
    """Medians of the time-to-halt arms, and their differences."""

    def __init__(self, arms: dict[str, list[Sample]]) -> None:
        self.arms = arms

    def of(self, arm: str, phase: Phase = "seconds") -> float:
        return median([s[phase] for s in self.arms[arm]])

    def cpu(self, arm: str) -> float:
        return self.of(arm, "cpu")

    def gap(self, arm: str, base: str, phase: Phase) -> float:
        return self.of(arm, phase) - self.of(base, phase)

    def requests(self, arm: str) -> int:
        return self.arms[arm][0]["requests"]

    def where(self, arm: str, base: str) -> str:
        """Where an arm's extra time goes, phase by phase, against another arm."""
        extra = self.requests(arm) - self.requests(base)
        trips = f"{extra} more round trip{'s' if extra != 1 else ''}"
        total = self.gap(arm, base, "seconds")
        return (
            f"{ms(abs(total))} {'more' if total >= 0 else 'less'} than the "
            f"{base.replace('-', ' ')} (each phase's difference, a minus for less): "
            f"{ms(self.gap(arm, base, 'startup'))} before the first request, "
            f"{ms(self.gap(arm, base, 'http'))} in {trips}, "
            f"{ms(self.gap(arm, base, 'tail'))} after the halt"
        )
