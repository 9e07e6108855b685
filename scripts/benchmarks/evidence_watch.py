"""The guard's guarantee, by simulation through the real decision (halt_rollout.evidence.judge).

A watch is the guard run every hour of a 7-day rollout (168 looks), with no memory between
looks, as the README's scheduled workflow does. Each look hands the Store's rows of that
hour (scripts/benchmarks/evidence_world.py) to `judge`, as the action does.

- False halts: healthy rollouts (the rolling-out version fails exactly as often as the
  fallback, with noise); how many watches halt at any look, against the naive rule (halt at
  the first look whose observed ratio of failing shares passes the margin; with and without
  the guard's minimum of failing devices).
- Hours to halt: versions 2, 3 and 5 times worse at 1,000, 10,000 and 100,000 daily active
  devices; the median hour of the first halting look, or "not within 7 days" when fewer
  than half the watches halt in the week.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import Any

from halt_rollout.evidence import LOOKS_PER_WATCH, Judgement, Outcome, Thresholds, judge

from .common import say
from .evidence_world import NEW, OLD, Rollout, World
from .record import EvidenceRecord, FalseHalts, HoursToHalt

WATCHES = 10_000
POWER_WATCHES = 101  # per cell; odd, so the median is one watch's figure
PROCESSES = 2
SEED = 20261207
EVENT_TYPES = ("crash", "hang")
MIN_FAILING = 25  # the contract's default

# The healthy rollouts: a rollout that grows from 10% to 50% of devices in the week, a
# 1% daily failing share, an OS update or a weekend moving both versions by about 30% a
# day, and each version its own 10% a day on top.
HEALTHY = World(
    daily_devices=10_000,
    rollout=(0.1, 0.1, 0.2, 0.2, 0.3, 0.4, 0.5, 0.5),
    base_share=0.01,
    worse=1.0,
    day_noise=0.3,
    version_noise=0.1,
    usage_lag=12,
    failure_lag=6,
)
# The contract's default margin over the whole 10,000 watches; a tight one over fewer; and
# a large app with half its devices on the new version, each version swinging by twice
# the noise the test allows for (poisson_ratio.VERSION_NOISE), at the tight margin and at
# the 1.5 that docs/guard.md advises for large apps.
NOISIER = replace(HEALTHY, daily_devices=100_000, rollout=(0.5,), version_noise=0.2)
FALSE_HALT_RUNS = (
    (HEALTHY, 2.0, WATCHES),
    (HEALTHY, 1.2, 2_000),
    (NOISIER, 1.2, 1_000),
    (NOISIER, 1.5, 1_000),
)
POWER_DEVICES = (1_000, 10_000, 100_000)
POWER_WORSE = (2.0, 3.0, 5.0)
POWER_MARGINS = (2.0, 1.5)
POWER_ROLLOUT = (0.1,)  # 10% of devices on the rolling-out version all week


def _thresholds(margin: float) -> Thresholds:
    return Thresholds(
        failure_ratio=margin, min_failing_devices=MIN_FAILING, event_types=EVENT_TYPES
    )


def _healthy_chunk(job: tuple[int, int, World, float]) -> tuple[int, int, int, int]:
    """(watches, guard halted, naive halted, naive with the minimum halted) for one chunk."""
    seed, count, world, margin = job
    rng = random.Random(seed)
    thresholds = _thresholds(margin)
    ours = naive = naive_min = 0
    for _ in range(count):
        rollout = Rollout(world, rng)
        halted = naive_hit = naive_min_hit = False
        for hour in range(1, LOOKS_PER_WATCH + 1):
            j = _look(rollout, hour, thresholds)
            halted = halted or j.outcome is Outcome.FAILING
            new, old = j.rolling_out.failing_share, j.fallback.failing_share
            passed = new is not None and old is not None and new > margin * old
            naive_hit = naive_hit or passed
            naive_min_hit = naive_min_hit or (
                passed and j.rolling_out.failing_devices >= MIN_FAILING
            )
        ours += halted
        naive += naive_hit
        naive_min += naive_min_hit
    return count, ours, naive, naive_min


def _look(rollout: Rollout, hour: int, thresholds: Thresholds) -> Judgement:
    """One hourly run of the guard over the data the Store shows at that hour."""
    return judge(
        rollout.readings(hour),
        rolling_out_versions=(NEW,),
        fallback_versions=(OLD,),
        thresholds=thresholds,
    )


def _power_chunk(job: tuple[int, int, World, float]) -> list[int | None]:
    """The hour of the first halting look of each watch (None: not within the week)."""
    seed, count, world, margin = job
    rng = random.Random(seed)
    thresholds = _thresholds(margin)
    hours: list[int | None] = []
    for _ in range(count):
        rollout = Rollout(world, rng)
        first = None
        for hour in range(1, LOOKS_PER_WATCH + 1):
            j = _look(rollout, hour, thresholds)
            if j.outcome is Outcome.FAILING:
                first = hour
                break
        hours.append(first)
    return hours


def false_halts(
    pool: ProcessPoolExecutor, n: int, world: World, margin: float, watches: int
) -> FalseHalts:
    started = time.monotonic()
    chunks = 40
    jobs = [(SEED + 1000 * i + 100 * n, watches // chunks, world, margin) for i in range(chunks)]
    total = ours = naive = naive_min = 0
    for count, a, b, c in pool.map(_healthy_chunk, jobs):
        total, ours, naive, naive_min = total + count, ours + a, naive + b, naive_min + c
    return FalseHalts(
        world=_plain(world),
        margin=margin,
        watches=total,
        guard=ours,
        naive=naive,
        naive_with_minimum=naive_min,
        seconds=time.monotonic() - started,
    )


def hours_to_halt(pool: ProcessPoolExecutor) -> list[HoursToHalt]:
    cells = [
        (devices, worse, margin)
        for margin in POWER_MARGINS
        for devices in POWER_DEVICES
        for worse in POWER_WORSE
        if worse > margin
    ]
    jobs = []
    for n, (devices, worse, margin) in enumerate(cells):
        world = replace(HEALTHY, daily_devices=devices, worse=worse, rollout=POWER_ROLLOUT)
        half = POWER_WATCHES // 2
        jobs.append((SEED + 7919 * (n + 1), half, world, margin))
        jobs.append((SEED + 7919 * (n + 1) + 1, POWER_WATCHES - half, world, margin))
    results = list(pool.map(_power_chunk, jobs))
    return [
        HoursToHalt(
            daily_devices=devices,
            worse=worse,
            margin=margin,
            hours=results[2 * n] + results[2 * n + 1],
        )
        for n, (devices, worse, margin) in enumerate(cells)
    ]


def evidence_record() -> EvidenceRecord:
    with ProcessPoolExecutor(max_workers=PROCESSES) as pool:
        halts = []
        for n, (world, margin, watches) in enumerate(FALSE_HALT_RUNS):
            say(f"halt on evidence: {watches} healthy 7-day watches at a {margin:g}× margin")
            halts.append(false_halts(pool, n, world, margin, watches))
        say("halt on evidence: hours to halt a failing version")
        power = hours_to_halt(pool)
    return EvidenceRecord(
        healthy=_plain(HEALTHY),
        power_rollout=list(POWER_ROLLOUT),
        min_failing_devices=MIN_FAILING,
        false_halts=halts,
        hours_to_halt=power,
    )


def _plain(world: World) -> dict[str, Any]:
    return {**world.__dict__, "rollout": list(world.rollout)}
