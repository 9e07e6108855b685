"""Generated bad days: the real entrypoint against the emulator under fault schedules.

Each schedule is derived from one integer seed (`generate.schedule`): the Store's content
(apps, flights, packages, rollouts), its faults and knobs, another responder, a cancel,
a deadline, a version guard, overlapping targets, a log stream that breaks or cannot
encode. `play.play` runs entrypoint.py as the runner does against it; `invariants.check`
reads what the user can observe and what the Store ended as, and names every broken
promise. `make soak SEED=N` (`python -m tests.schedules --seed N`) replays one schedule
in full; `make soak N=1000` (`--soak N`) plays N, several at a time.
"""

from __future__ import annotations

# One command that replays a schedule, for every report of a broken one.
REPLAY = "make soak SEED={seed}"


def replay_command(seed: int) -> str:
    return REPLAY.format(seed=seed)
