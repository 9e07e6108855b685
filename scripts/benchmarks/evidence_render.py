"""docs/benchmarks.md's part on halt on evidence: the false-halt and hours-to-halt tables."""

from __future__ import annotations

import math
from collections.abc import Iterator

from halt_rollout.evidence import FALSE_HALT_BUDGET, LOOK_LEVEL, LOOKS_PER_WATCH
from halt_rollout.incomplete_beta import lower_quantile
from halt_rollout.poisson_ratio import VERSION_NOISE

from .figures import Row
from .record import EvidenceRecord, FalseHalts, HoursToHalt


def _upper95(hits: int, trials: int) -> float:
    """The one-sided 95% Clopper-Pearson upper bound on a rate seen `hits` times."""
    return 1.0 if hits >= trials else 1.0 - lower_quantile(0.05, trials - hits, hits + 1)


def _rate(hits: int, trials: int) -> str:
    return f"{hits:,} of {trials:,} ({hits / trials:.2%})"


def false_halt_rows(record: EvidenceRecord) -> list[Row]:
    """One summary row per false-halt run; a run noisier than the test allows for shows
    the limit, against no target."""
    rows: list[Row] = []
    for f in record["false_halts"]:
        world = f["world"]
        within = world["version_noise"] <= VERSION_NOISE
        rows.append(
            (
                f"Halt on evidence: healthy 7-day hourly watches halted, {f['margin']:g}× "
                f"margin, {world['daily_devices']:,} devices, own noise "
                f"{world['version_noise']:g} (simulated)",
                f"{_rate(f['guard'], f['watches'])}; 95% upper bound "
                f"{_upper95(f['guard'], f['watches']):.2%}",
                f"≤ 1 in {1 / FALSE_HALT_BUDGET:,.0f}"
                if within
                else "— (more noise than the test allows for: the limit)",
                f["guard"] / f["watches"] <= FALSE_HALT_BUDGET if within else None,
                "the naive rule (halt when the observed ratio passes the margin) halted "
                f"{_rate(f['naive'], f['watches'])}; see *Halt on evidence* below",
            )
        )
    return rows


def _median_hours(cell: HoursToHalt) -> str:
    hours = sorted(math.inf if h is None else h for h in cell["hours"])
    middle = hours[len(hours) // 2]
    halted = sum(h is not None for h in cell["hours"])
    shown = "not within 7 days" if math.isinf(middle) else f"**{middle:.0f} h**"
    return f"{shown} ({halted}/{len(hours)} halted)"


def _false_halt_line(f: FalseHalts) -> str:
    w = f["world"]
    rollout = "–".join(f"{s:.0%}" for s in sorted({w["rollout"][0], w["rollout"][-1]}))
    return (
        f"| {f['margin']:g}× | {w['daily_devices']:,} | {rollout} | {w['version_noise']:g} "
        f"| {f['watches']:,} | {_rate(f['guard'], f['watches'])} "
        f"| {_upper95(f['guard'], f['watches']):.3%} | {_rate(f['naive'], f['watches'])} "
        f"| {_rate(f['naive_with_minimum'], f['watches'])} | {f['seconds']:.0f} s |"
    )


def evidence_section(record: EvidenceRecord) -> Iterator[str]:
    world = record["healthy"]
    rollout = ", ".join(f"{share:.0%}" for share in world["rollout"][:7])
    yield from [
        "",
        "## Halt on evidence (simulated)",
        "",
        "The guard's guarantee (contract, *Halt on evidence*; the argument is in "
        "[guard.md](guard.md)), shown by simulation through the real decision "
        "(`halt_rollout.evidence.judge`; `scripts/benchmarks/evidence_watch.py`). A *watch* "
        f"is the guard run every hour of a 7-day rollout: {LOOKS_PER_WATCH} looks, no memory "
        "between them, each handed the rows the Store's analytics would show at that hour "
        "(`scripts/benchmarks/evidence_world.py`): failing devices arrive hour by hour "
        "(Poisson), active devices grow through the day, an hour's failures show "
        f"{world['failure_lag']} h after it ends and its usage {world['usage_lag']} h after "
        "(so the newest day often has failures and no usage yet, and is left out). Each "
        "look tests at the one-sided level "
        f"{FALSE_HALT_BUDGET:g} / {LOOKS_PER_WATCH} = {LOOK_LEVEL:.2e}.",
        "",
        "### False halts",
        "",
        f"Healthy rollouts: by default {world['daily_devices']:,} daily active devices, the "
        f"rolling-out version's share growing day by day ({rollout}), both versions failing on "
        f"{world['base_share']:.0%} of their active devices a day, *exactly as often*; with "
        "noise: a factor shared by both versions each day (an OS update, a weekend; log-sd "
        f"{world['day_noise']:g}) and a factor of each version's own each day (log-sd "
        f"{world['version_noise']:g}, as much as the test allows for; the last two rows have "
        "twice that, on a large app). "
        "A watch counts as a false halt when ANY of its looks halts. The naive rule halts "
        "at the first look where the observed ratio of the two failing shares passes the "
        "margin; *with the minimum* it also waits for the guard's "
        f"{record['min_failing_devices']} failing devices.",
        "",
        "| margin | daily active devices | on the new version | own noise | watches "
        "| guard: watches halted | 95% upper bound | naive rule | naive rule with the minimum "
        "| time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(_false_halt_line(f) for f in record["false_halts"]),
        "",
        "Goal: at most 1 in 1,000. The upper bound is Clopper-Pearson's on the simulated "
        "rate. The naive rule's figure is why the guard does not use it: a healthy version "
        "passes any margin on some hour of a week by chance, most of all early, on few "
        "devices. Rows whose own noise is above the "
        f"{VERSION_NOISE:g} the test allows for go beyond its model on purpose: they show "
        "where the guarantee ends and what the margin does about it (guard.md, *Noise "
        "beyond Poisson*).",
        "",
        "### Hours of data to halt a failing version",
        "",
        f"Rollouts where the rolling-out version fails 2, 3 or 5 times as often as the "
        f"fallback; {', '.join(f'{s:.0%}' for s in record['power_rollout'])} of the daily "
        f"active devices on it all week, the fallback failing on {world['base_share']:.0%} "
        "of its devices a day, the same lags and noise as above; the minimum of failing "
        f"devices is the default {record['min_failing_devices']}. The figure is the median "
        "hour (since the rollout started) of the first look that halts, over "
        f"{len(record['hours_to_halt'][0]['hours'])} watches per cell; *not within 7 days* "
        "when fewer than half halt within the week. At a margin of 2, a version exactly 2 "
        "times worse is at the margin and, by design, not halted: hence the 1.5× rows.",
        "",
    ]
    margins = sorted({c["margin"] for c in record["hours_to_halt"]}, reverse=True)
    worse = sorted({c["worse"] for c in record["hours_to_halt"]})
    yield "| margin | daily active devices | " + " | ".join(f"{w:g}× worse" for w in worse) + " |"
    yield "| --- | --- | " + " | ".join("---" for _ in worse) + " |"
    for margin in margins:
        for devices in sorted({c["daily_devices"] for c in record["hours_to_halt"]}):
            cells = {
                c["worse"]: c
                for c in record["hours_to_halt"]
                if c["margin"] == margin and c["daily_devices"] == devices
            }
            shown = [
                _median_hours(cells[w]) if w in cells else "at or below the margin: never"
                for w in worse
            ]
            yield f"| {margin:g}× | {devices:,} | " + " | ".join(shown) + " |"
