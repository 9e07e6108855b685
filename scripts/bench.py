"""`make bench`: measure the action on this machine against the Store emulator.

Measures (scripts/benchmarks/measure.py), keeps the measurements as plain data in
.bench/record.json, then writes docs/benchmarks.md from them and prints it
(scripts/benchmarks/render.py). What it measures:

* time-to-halt of entrypoint.py run as GitHub's runner runs it, side by side with a
  minimal script on the same stack (azure-identity's ClientSecretCredential, one
  `requests` halt POST, the output file) and with the floor of any Python
  implementation (a `requests` script that sends only the token POST and the halt
  POST), interleaved, each in a fresh emulator, and where the entrypoint's time goes
  (start-up, imports, HTTP, exit; what it imports that the same stack does not);
* HTTP round trips to a halt (given submission, resolved submission, flight);
* the wait after a 429 with Retry-After N on the halt, against N;
* wall time for 1, 5 and 20 targets in one run;
* installed size of the runtime dependencies (a fresh venv from requirements.txt);
* the image's size and build time, from the container test's record if there is one.

`--render` skips measuring and writes the page again from the record. Every
subprocess runs the same interpreter as this script (`sys.executable`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import record  # noqa: E402
from benchmarks.common import say  # noqa: E402
from benchmarks.measure import measure  # noqa: E402
from benchmarks.render import render  # noqa: E402

RECORD = REPO / ".bench" / "record.json"
OUTPUT = REPO / "docs" / "benchmarks.md"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--render", action="store_true", help=f"only write the page from {RECORD.name}"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.render:
        data = record.read(RECORD)
    else:
        data = measure()
        record.write(data, RECORD)
        say(f"wrote {RECORD.relative_to(REPO)}")
    text = render(data)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(text)
    say(f"wrote {OUTPUT.relative_to(REPO)} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
