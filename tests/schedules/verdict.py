"""One seed, played and judged: the schedule, what was seen, and each broken promise."""

from __future__ import annotations

import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from . import replay_command
from .generate import schedule
from .invariants import Breach
from .model import Schedule
from .play import Observation, play
from .target_invariants import check


@dataclass
class Verdict:
    seed: int
    plan: Schedule
    seen: Observation | None
    breaches: list[Breach] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return not self.breaches

    def report(self, *, details: bool = False) -> str:
        """The broken promises, each with the one command that replays the schedule."""
        lines = [f"seed {self.seed}: {b}" for b in self.breaches]
        lines.append(f"  replay: {replay_command(self.seed)}")
        if details:
            lines.append(self.plan.describe())
            if self.seen is not None:
                seen = self.seen
                try:
                    outputs = seen.outputs
                except ValueError:  # unreadable: the breach says so
                    outputs = {}
                lines.append(
                    f"  exit {seen.exit_code}, {seen.ended - seen.started:.1f} s, "
                    f"result {outputs.get('result')!r}, final {seen.final}, "
                    f"stopped by {seen.stopped_by}"
                )
                lines.append(f"  results: {outputs.get('results')}")
                lines.append("  --- log ---")
                lines += [f"  | {line}" for line in seen.log.splitlines()]
                if seen.stderr.strip():
                    lines.append("  --- stderr ---")
                    lines += [f"  | {line}" for line in seen.stderr.splitlines()[-30:]]
        return "\n".join(lines)


def judge(seed: int, workdir: Path | None = None) -> Verdict:
    """Play the schedule of `seed` and check every invariant; a checker that fails says so
    as a breach of its own, never silently."""
    plan = schedule(seed)
    try:
        with tempfile.TemporaryDirectory(prefix=f"schedule-{seed}-") as scratch:
            seen = play(plan, workdir or Path(scratch))
            return Verdict(seed, plan, seen, check(plan, seen))
    except Exception as error:  # a checker defect is reported, never hidden
        detail = "".join(traceback.format_exception_only(error)).strip()
        return Verdict(seed, plan, None, [Breach("checker-error", detail)])
