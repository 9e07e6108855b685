"""`python -m tests.schedules --seed N` replays one schedule and shows it in full;
`python -m tests.schedules --soak N` plays N schedules, several at a time, and prints
`K/N schedules hold` and every broken invariant with the command that replays it.
Exits 1 when any schedule breaks a promise."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from .verdict import Verdict, judge

# The runs mostly wait (backoff, deadlines, slow halts): more at a time than cores pay,
# but not so many that the interpreters' start-up starves a 2-core machine.
DEFAULT_JOBS = 8


def soak(count: int, first: int, jobs: int, keep: Path) -> int:
    started = time.monotonic()
    keep.mkdir(parents=True, exist_ok=True)
    seeds = range(first, first + count)
    broken: list[Verdict] = []
    done = 0
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(judge, seed) for seed in seeds]
        for future in as_completed(futures):
            verdict = future.result()
            done += 1
            if not verdict.holds:
                broken.append(verdict)
                print(verdict.report(), flush=True)
                # Timing varies from run to run: what this run saw is kept in full.
                saved = keep / f"seed-{verdict.seed}.txt"
                saved.write_text(verdict.report(details=True) + "\n", encoding="utf-8")
            if done % 50 == 0:
                print(
                    f"... {done}/{count} played, {len(broken)} broken, "
                    f"{time.monotonic() - started:.0f} s",
                    flush=True,
                )
    # Schedules that broke each invariant (a schedule counts once per invariant).
    counts = Counter(name for v in broken for name in {b.invariant for b in v.breaches})
    print(f"\n{count - len(broken)}/{count} schedules hold ({time.monotonic() - started:.0f} s)")
    if broken:
        print(f"(each broken schedule's run, in full: {keep}/seed-N.txt)")
    for invariant, number in counts.most_common():
        seeds_of = sorted(
            v.seed for v in broken if any(b.invariant == invariant for b in v.breaches)
        )
        more = " …" if len(seeds_of) > 8 else ""
        print(f"  {invariant}: {number} (seeds {', '.join(map(str, seeds_of[:8]))}{more})")
    return 1 if broken else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.schedules", description=__doc__)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--seed", type=int, help="replay the schedule of this seed, in full")
    what.add_argument("--soak", type=int, metavar="N", help="play N schedules")
    parser.add_argument("--first", type=int, default=1, help="the soak's first seed (default 1)")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="schedules at a time")
    parser.add_argument(
        "--keep", type=Path, default=Path(".soak"), help="where broken runs are kept in full"
    )
    args = parser.parse_args(argv)
    if args.seed is not None:
        verdict = judge(args.seed)
        print(verdict.report(details=True))
        print("holds" if verdict.holds else f"{len(verdict.breaches)} promise(s) broken")
        return 0 if verdict.holds else 1
    return soak(args.soak, args.first, args.jobs, args.keep)


if __name__ == "__main__":
    sys.exit(main())
