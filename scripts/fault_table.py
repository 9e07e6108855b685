"""`make fault-table`: run tests/test_faults.py, then write its table into docs/reliability.md.

Each row of the test module writes what it saw as a JSON line when
HALT_ROLLOUT_FAULT_RESULTS names a folder; this script runs the module so (pytest,
in parallel as pyproject.toml says), reads the lines, and replaces what lies between
the fault-table markers of docs/reliability.md with the table of that run. The test
module itself never writes the docs.

The exit code is pytest's: a row that fails still gets its line in the table (its
verdict says why), and the run still fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "reliability.md"
TESTS = "tests/test_faults.py"
RESULTS_ENV = "HALT_ROLLOUT_FAULT_RESULTS"
BEGIN = "<!-- fault-table: begin (written by `make fault-table`; edits here are overwritten) -->"
END = "<!-- fault-table: end -->"
HEADER = "| call | fault | expected | halts expected | observed | halts seen | s | verdict |"


def run_rows(results: Path) -> tuple[int, float]:
    """Run the fault rows with results written to `results`: (pytest's exit code, seconds)."""
    env = {**os.environ, RESULTS_ENV: str(results)}
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", TESTS, "-q", "-p", "no:cacheprovider"],
        cwd=REPO,
        env=env,
        check=False,
    )
    return completed.returncode, time.monotonic() - started


def read_rows(results: Path) -> list[dict[str, Any]]:
    rows = [
        json.loads(line)
        for path in sorted(results.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return sorted(rows, key=lambda row: int(row["order"]))


def observed(row: dict[str, Any]) -> str:
    """What the run did, in a few words: its result, and its error or its first wait."""
    if not row["ran"]:
        return "(the run did not finish)"
    words = f"{row['result'] or '(no outputs)'}, exit {row['exit_code']}"
    if row["traceback"]:
        crash = row["crash"] or ""
        return f"{words}; **crashed**: {crash.split('::', 2)[-1][:90]}"
    if row["error"]:
        return f"{words}; {error_words(row['error'])}"
    return f"{words}; logged “{row['wait']}”" if row["wait"] else words


def error_words(line: str) -> str:
    title, _, message = line.removeprefix("::error title=").partition("::")
    title = title.replace("%3A", ":").replace("%2C", ",")
    short = message if len(message) <= 110 else message[:109] + "…"
    return f"error “{title}”: {short}"


def verdict(text: str) -> str:
    if text == "pass":
        return text
    return "**FAILS**: " + text.removeprefix("fails: ")[:120]


def cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def table(rows: list[dict[str, Any]], seconds: float) -> str:
    lines = [HEADER, "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        least, most = row["halts_expected"]
        expected = str(least) if least == most else f"{least}–{most}"
        halts = "—" if row["halts"] is None else str(row["halts"])
        run_seconds = "—" if row["seconds"] is None else f"{row['seconds']:.1f}"
        lines.append(
            f"| {row['call']} | {cell(row['fault'])} | {row['expect']} | {expected} "
            f"| {cell(observed(row))} | {halts} | {run_seconds} | {cell(verdict(row['verdict']))} |"
        )
    passed = sum(row["verdict"] == "pass" for row in rows)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines += [
        "",
        f"{len(rows)} row{'s' if len(rows) != 1 else ''}: {passed} pass, "
        f"{len(rows) - passed} fail. From a run of commit `{commit or 'unknown'}` on {date}, "
        f'{os.cpu_count()} cores, {seconds:.0f} s for the module; "s" is each run\'s wall '
        "time, with the rows running in parallel (pytest-xdist, as pyproject.toml sets it).",
    ]
    return "\n".join(lines)


def write_table(text: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    if doc.count(BEGIN) != 1 or doc.count(END) != 1 or doc.index(BEGIN) > doc.index(END):
        raise SystemExit(f"{DOC.relative_to(REPO)}: expected one {BEGIN} … {END} section")
    head, rest = doc.split(BEGIN)
    _, tail = rest.split(END)
    DOC.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--print", action="store_true", help="print the table instead of writing the doc"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="halt-rollout-fault-rows-") as scratch:
        code, seconds = run_rows(Path(scratch))
        rows = read_rows(Path(scratch))
    if code not in (0, 1) or not rows:
        print(f"fault-table: pytest ended with exit code {code}; the table is unchanged")
        return code or 1
    text = table(rows, seconds)
    if args.print:
        print(text)
    else:
        write_table(text)
        failed = sum(row["verdict"] != "pass" for row in rows)
        print(f"fault-table: wrote {len(rows)} rows ({failed} failing) to {DOC.relative_to(REPO)}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
