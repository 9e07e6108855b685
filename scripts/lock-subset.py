"""Print the entries of a hashed lock for some packages only, hashes and all.

    scripts/lock-subset.py requirements-dev.txt trustme cryptography ...

For jobs that need a few locked packages and not the whole lock (the emulator on a Windows
or macOS runner, whose lock entries carry every platform's wheel hashes): the output is a
requirements file for `pip install --no-deps --require-hashes -r`. Names are matched as
PyPI normalises them; a name missing from the lock is an error.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def subset(lock: str, names: list[str]) -> str:
    wanted = {normalise(name) for name in names}
    kept: list[str] = []
    found: set[str] = set()
    keep = False
    for line in lock.splitlines():
        if match := ENTRY.match(line):
            keep = normalise(match.group(1)) in wanted
            if keep:
                found.add(normalise(match.group(1)))
        elif not line.startswith((" ", "\t")):
            keep = False  # a comment or blank line between entries
        if keep and not line.lstrip().startswith("#"):
            kept.append(line)
    missing = sorted(wanted - found)
    if missing:
        raise SystemExit(f"lock-subset: not in the lock: {', '.join(missing)}")
    return "\n".join(kept) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: lock-subset.py LOCK NAME...", file=sys.stderr)
        return 2
    sys.stdout.write(subset(Path(argv[0]).read_text(encoding="utf-8"), argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
