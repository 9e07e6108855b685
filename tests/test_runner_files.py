"""The runner's files and GitHub's size limits (rule 11)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from halt_rollout.halt import Failure, Result, TargetResult
from halt_rollout.inputs import Target
from halt_rollout.job_summary import MAX_SUMMARY_BYTES, summary
from halt_rollout.step_outputs import MAX_OUTPUTS_UTF16_BYTES, outputs, results_left_out
from halt_rollout.store_resources import Rollout
from store_emulator import Emulator, Fault
from store_emulator.actions_runner import runner_environment
from store_emulator.step_results import parse_file_command

from .conftest import APP_ID, PUBLISHED, base_inputs
from .world import (
    HALT,
    MIB,
    ROLLOUT,
    Incoming,
    Running,
    Wire,
    World,
    answers_always,
    describe,
    live_markdown,
    many_apps,
    outputs_utf16_size,
    pipe_no_one_reads,
    results_of,
    run_entrypoint,
    running_traceback_free,
    traceback_free,
)

# 4b. Sizes the server controls -----------------------------------------------------------------


def test_summary_stays_under_1_mib_when_the_store_sends_long_codes(world: World) -> None:
    """100 targets (the most a file may hold), each refused with a 20 kB error `code`. After
    the 409 each rollout reads as completed meanwhile, so every target fails on its own long
    code at once; rollouts that kept reading in progress would have each target wait out the
    re-reads of a 409 and the last ones run into the deadline before their code arrived."""
    answers_always(
        world.emulator,
        "POST",
        HALT,
        409,
        {"code": "InvalidState" + "X" * 20_000, "message": "Not haltable."},
    )
    reads: Counter[str] = Counter()
    lock = threading.Lock()

    def completed_once_refused(req: Incoming, wire: Wire) -> None:
        answer = wire.forward(req)
        with lock:
            reads[req.path] += req.method == "GET" and bool(re.search(ROLLOUT, req.path))
            reread = reads[req.path] > 1
        if reread:
            rollout = {**json.loads(answer.body), "packageRolloutStatus": "PackageRolloutComplete"}
            wire.send(answer.raw(body=json.dumps(rollout).encode()))
        else:
            wire.send(answer.raw())

    store = world.hostile(completed_once_refused)
    run = world.run(
        {"app-id": None, "targets": "targets.yml", "timeout-seconds": "60"},
        store=store,
        files={"targets.yml": many_apps(world.emulator, 100)},
    )
    size = len(run.summary.encode())
    print(f"100 targets, 20 kB codes: {describe(run)}; summary {size} bytes")
    assert traceback_free(run)
    assert len(world.emulator.halt_requests) == 100  # every target got its long code
    assert run.outputs["result"] == "failed"
    assert size < 1024 * 1024, f"summary is {size} bytes"


# The files themselves: unwritable, a directory, a full disk, a pipe no one reads -----------

# Writing one runner file gives up after 0.75 s; a run against the emulator takes about one.
RUN_SECONDS_BOUND = 10.0


@dataclass
class FileRun:
    exit_code: int
    stdout: str
    stderr: str
    seconds: float
    env: dict[str, str]

    def lines_starting(self, prefix: str) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith(prefix)]


def run_with(emulator: Emulator, tmp_path: Path, **files: str) -> FileRun:
    """A plain halt whose GITHUB_OUTPUT or GITHUB_STEP_SUMMARY is the given path."""
    env = runner_environment(
        base_inputs(emulator),
        tmp_path / "run",
        extra={"REQUESTS_CA_BUNDLE": emulator.ca_path, **files},
    )
    started = time.monotonic()
    completed = run_entrypoint(env)
    seconds = time.monotonic() - started
    return FileRun(completed.returncode, completed.stdout, completed.stderr, seconds, env)


def assert_the_halt_stands(run: FileRun, emulator: Emulator) -> None:
    """Whatever the files did: halted, said in the log, in time, without a traceback."""
    assert "Traceback" not in run.stdout + run.stderr
    assert run.seconds < RUN_SECONDS_BOUND
    assert f"  {APP_ID}: halted, submission {PUBLISHED}" in run.stdout
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == "PackageRolloutStopped"
    assert len(emulator.halt_requests) == 1


@contextlib.contextmanager
def read_only_directory(tmp_path: Path) -> Iterator[Path]:
    """A directory no one may write in, root included (root ignores file modes)."""
    directory = tmp_path / "read-only"
    directory.mkdir()
    (directory / "file").write_text("")
    if os.geteuid() != 0:
        directory.chmod(0o555)
        (directory / "file").chmod(0o444)
        yield directory
        directory.chmod(0o755)
        return
    subprocess.run(["mount", "--bind", "-o", "ro", directory, directory], check=True)
    try:
        yield directory
    finally:
        subprocess.run(["umount", directory], check=True)


@contextlib.contextmanager
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A small file system, filled: its file can be opened but not written to."""
    if os.geteuid() != 0:
        pytest.skip("mounting a file system needs root")
    directory = tmp_path / "full"
    directory.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", directory], check=True)
    try:
        (directory / "file").write_text("")
        with contextlib.suppress(OSError), (directory / "filler").open("wb") as filler:
            while True:
                filler.write(b"x" * 1024)
                filler.flush()
        yield directory
    finally:
        subprocess.run(["umount", directory], check=True)


@contextlib.contextmanager
def a_directory(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    yield directory


@contextlib.contextmanager
def unwritable_file(tmp_path: Path) -> Iterator[Path]:
    with read_only_directory(tmp_path) as directory:
        yield directory / "file"


@contextlib.contextmanager
def file_on_a_full_disk(tmp_path: Path) -> Iterator[Path]:
    with full_disk(tmp_path) as directory:
        yield directory / "file"


BadFile = Callable[[Path], contextlib.AbstractContextManager[Path]]
BAD_FILES: dict[str, BadFile] = {
    "unwritable": unwritable_file,
    "a directory": a_directory,
    "on a full disk": file_on_a_full_disk,
    "a named pipe no one reads": lambda tmp: pipe_no_one_reads(tmp, full=False),
    "a pipe whose reader stopped": lambda tmp: pipe_no_one_reads(tmp, full=True),
    "missing": lambda tmp: contextlib.nullcontext(tmp / "no" / "such" / "file"),
}


@pytest.fixture(params=list(BAD_FILES.values()), ids=list(BAD_FILES))
def bad(request: pytest.FixtureRequest) -> BadFile:
    """Each kind of runner file that cannot be written."""
    bad_file: BadFile = request.param
    return bad_file


def run_with_bad(
    emulator: Emulator, tmp_path: Path, bad: BadFile, variable: str
) -> tuple[FileRun, Path]:
    """A plain halt whose `variable` file is `bad`; the halt itself must stand."""
    with bad(tmp_path) as path:
        run = run_with(emulator, tmp_path, **{variable: str(path)})
    print(f"{variable}: exit {run.exit_code} in {run.seconds:.2f} s")
    assert_the_halt_stands(run, emulator)
    return run, path


def test_outputs_that_cannot_be_written_fail_the_step_but_the_halt_stands(
    emulator: Emulator, tmp_path: Path, bad: BadFile
) -> None:
    run, path = run_with_bad(emulator, tmp_path, bad, "GITHUB_OUTPUT")
    assert run.exit_code == 1
    [error] = run.lines_starting("::error")
    assert error.startswith("::error title=Outputs not written::GITHUB_OUTPUT")
    assert "The halts themselves stand: 1 halted" in error
    # The summary was still written, and still says what happened.
    assert "Rollout halted" in Path(run.env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    if path.is_file():  # nothing half-written for the runner to trip over
        assert path.read_bytes() == b""


def test_a_summary_that_cannot_be_written_is_a_warning(
    emulator: Emulator, tmp_path: Path, bad: BadFile
) -> None:
    run, _ = run_with_bad(emulator, tmp_path, bad, "GITHUB_STEP_SUMMARY")
    assert run.exit_code == 0
    assert run.lines_starting("::error") == []
    [warning] = run.lines_starting("::warning")
    assert warning.startswith("::warning title=Job summary not written::GITHUB_STEP_SUMMARY")
    outputs = parse_file_command(Path(run.env["GITHUB_OUTPUT"]).read_text(encoding="utf-8"))
    assert outputs["result"] == "halted"


def test_both_files_broken_still_ends_in_time_with_every_result_in_the_log(
    emulator: Emulator, tmp_path: Path
) -> None:
    with (
        pipe_no_one_reads(tmp_path / "output", full=True) as output,
        pipe_no_one_reads(tmp_path / "summary", full=True) as summary,
    ):
        run = run_with(
            emulator, tmp_path, GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary)
        )
    assert_the_halt_stands(run, emulator)
    assert run.exit_code == 1
    assert len(run.lines_starting("::error title=Outputs not written")) == 1
    assert len(run.lines_starting("::warning title=Job summary not written")) == 1


# GitHub's size limits: 1 MiB of summary, 1 MB of outputs (in UTF-16) ----------------------

# The longest a name gets (targets files and listflights cap names at 200 characters), in
# characters that take 4 bytes in UTF-8 and UTF-16 alike, with Markdown's own characters.
LONGEST_NAME = ("𝕏|`*<" * 40)[:200]
LONGEST_MESSAGE = ("Ω<b>](x) " * 40)[:300]


def synthetic_results(count: int) -> list[TargetResult]:
    """`count` rollouts with the longest names, most failed with the longest messages."""
    rollout = Rollout(True, 25.0, "PackageRolloutInProgress", "1212922684621243058")
    results = []
    for number in range(count):
        target = Target(
            app_id=f"9NAPP{number % 100:07d}",
            flight_id=f"{number:08x}-97c9-4a43-a0bc-2a445e736bcd",
            submission_id=f"11529215046{number:08d}",
            name=f"{number} {LONGEST_NAME}"[:200],
            found_by_all_flights=True,
        )
        outcome = (Result.FAILED, Result.HALTED, Result.NOTHING_TO_HALT, Result.UNKNOWN)[number % 4]
        failure = (
            Failure("Store answered HTTP 409 " + "T" * 100, LONGEST_MESSAGE * 4)
            if outcome in (Result.FAILED, Result.UNKNOWN)
            else None
        )
        results.append(TargetResult(target, outcome, target.submission_id, rollout, failure))
    return results


@pytest.mark.parametrize("count", [1, 100, 1000, 5000])
def test_summary_and_outputs_stay_inside_githubs_limits(count: int) -> None:
    results = synthetic_results(count)
    text = summary(results, dry_run=False)
    values = outputs(results)
    size = outputs_utf16_size(values)
    print(f"{count} rows: summary {len(text.encode())} bytes, outputs {size} UTF-16")
    assert len(text.encode()) <= MAX_SUMMARY_BYTES
    assert outputs_utf16_size(values) <= MAX_OUTPUTS_UTF16_BYTES
    # Small enough for a later step to take through an environment variable (Linux: 128 KiB).
    assert len(values["results"].encode()) <= 128 * 1024 - len("RESULTS=") - 1
    kept = json.loads(values["results"])
    note = results_left_out(results)
    if len(kept) == count:
        assert note is None
        assert "left out" not in text
        return
    # Whole rows were left out, the least urgent first, and both say how many.
    assert note is not None
    assert f"leaves out {count - len(kept)} (" in note
    assert "nothing-to-halt" in note
    assert all(set(record) >= {"name", "result", "submission-id"} for record in kept)
    # The most urgent rows stay: when any of a kind was left out, nothing less urgent is kept.
    urgency = ["nothing-to-halt", "already-halted", "dry-run", "halted", "unknown", "failed"]
    kept_counts = Counter(r["result"] for r in kept)
    all_counts = Counter(str(r.result) for r in results)
    for rank, kind in enumerate(urgency):
        if kept_counts[kind] < all_counts[kind]:
            assert not any(kept_counts[less] for less in urgency[:rank]), kept_counts
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    if len(rows) < count:
        left = re.search(r"(\d+) \(\d+ nothing-to-halt.*\) more row\(s\) left out", text)
        assert left is not None
        assert int(left.group(1)) == count - len(rows)


def test_100_whole_apps_with_the_longest_names_and_messages_fit(world: World) -> None:
    """The largest run a targets file allows, end to end: 100 apps with all-flights, each with
    four flights, names of 200 four-byte characters, every halt refused with a long message."""
    emulator = world.emulator
    lines = ["targets:"]
    for app in range(100):
        app_id, submission = f"9NAPP{app:07d}", f"11529215046{app:08d}"
        emulator.add_app(app_id, last_published=submission)
        emulator.set_rollout(app_id, submission)
        for flight in range(4):
            flight_id = f"{app:04d}{flight:04d}-97c9-4a43-a0bc-2a445e736bcd"
            flight_submission = f"1152921504{app:04d}{flight:04d}1"
            emulator.add_flight(
                app_id, flight_id, last_published=flight_submission, name=LONGEST_NAME
            )
            emulator.set_rollout(app_id, flight_submission, flight_id=flight_id)
        name = json.dumps(f"{app} {LONGEST_NAME}"[:200], ensure_ascii=False)
        lines += [f"  - app-id: {app_id}", f"    name: {name}", "    all-flights: true"]
    answers_always(
        emulator,
        "POST",
        HALT,
        404,
        {"code": "ResourceNotFound" + "X" * 100, "message": LONGEST_MESSAGE},
    )
    run = world.run(
        {"app-id": None, "targets": "targets.yml", "timeout-seconds": "170"},
        files={"targets.yml": "\n".join(lines) + "\n"},
        timeout=200,
    )
    size = len(run.summary.encode())
    outputs_size = outputs_utf16_size(run.outputs)
    print(f"500 rollouts: {describe(run)}; summary {size} bytes, outputs {outputs_size}")
    assert traceback_free(run)
    assert run.exit_code == 1
    assert size <= MAX_SUMMARY_BYTES
    assert outputs_utf16_size(run.outputs) <= MAX_OUTPUTS_UTF16_BYTES
    assert len(run.outputs["results"].encode()) < 128 * 1024
    assert run.stdout.count(": failed, submission ") == 500  # the log lists every one
    kept = json.loads(run.outputs["results"])
    if len(kept) < 500:
        assert "::warning title=Results output shortened::" in run.stdout


@pytest.mark.long
def test_thousand_flights_with_invisible_names_fit_githubs_limits(world: World) -> None:
    emu = world.emulator
    app = "9NBIGAPP0001"
    emu.add_app(app, last_published="1152921504600000001")
    emu.set_rollout(app, "1152921504600000001")
    name = "\u200b" * 120 + "[x](https://evil.example)" + "\u202e" * 60
    for number in range(1000):
        emu.add_flight(app, f"00000000-0000-0000-0000-{number:012d}", name=f"{number}{name}")
    run = world.run({"app-id": app, "all-flights": "true", "timeout-seconds": "170"}, timeout=240)
    records = results_of(run)
    summary_bytes = len(run.summary.encode())
    outputs_utf16 = outputs_utf16_size(run.outputs)
    print(
        f"{describe(run)}; {len(records)} records kept; summary {summary_bytes} bytes; "
        f"outputs {outputs_utf16} UTF-16 bytes"
    )
    assert traceback_free(run)
    assert summary_bytes < MIB
    assert outputs_utf16 < 1_000_000
    assert "left out" in run.summary
    assert live_markdown(run.summary) == []
    assert "\u202e" not in run.summary + run.stdout


@pytest.mark.parametrize(
    "kind", ["dev-full", "directory", "symlink-loop", "no-reader-fifo", "readonly-dir"]
)
def test_broken_runner_files_never_change_the_result(
    emulator: Emulator, tmp_path: Path, kind: str
) -> None:
    out = tmp_path / "out"
    if kind == "dev-full":
        target = "/dev/full"
    elif kind == "directory":
        out.mkdir()
        target = str(out)
    elif kind == "symlink-loop":
        os.symlink(tmp_path / "b", tmp_path / "a")
        os.symlink(tmp_path / "a", tmp_path / "b")
        target = str(tmp_path / "a")
    elif kind == "no-reader-fifo":
        os.mkfifo(out)
        target = str(out)
    else:
        (tmp_path / "ro").mkdir()
        target = str(tmp_path / "ro" / "missing" / "file")
    env = runner_environment(
        base_inputs(emulator),
        tmp_path / "w",
        extra={
            "REQUESTS_CA_BUNDLE": emulator.ca_path,
            "GITHUB_OUTPUT": target,
            "GITHUB_STEP_SUMMARY": target,
        },
    )
    started = time.monotonic()
    done = run_entrypoint(env)
    took = time.monotonic() - started
    print(f"{kind}: exit {done.returncode} in {took:.2f} s")
    assert "Traceback" not in done.stdout + done.stderr
    assert f"{APP_ID}: halted" in done.stdout
    assert "The halts themselves stand" in done.stdout
    assert done.returncode == 1
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == ("PackageRolloutStopped")


@pytest.mark.long
@pytest.mark.timeout(400)
def test_astral_flight_names_keep_githubs_limits(world: World) -> None:
    """Flight names of astral characters (two UTF-16 units, four UTF-8 bytes each): the
    outputs stay under 1 MB counted in UTF-16 and the summary under 1 MiB, rows left out
    whole with a line that says how many."""
    emu = world.emulator
    app = "9NASTRAL0001"
    emu.add_app(app, last_published="1152921504600000001")
    emu.set_rollout(app, "1152921504600000001")
    # 600 of them: a page of 100 flights (JSON-escaped, 12 bytes each) stays under the
    # 1 MiB the action takes of an answer; 1200 flights overflow both of GitHub's limits.
    name = "\U0001f6d1" * 600
    for number in range(1200):
        emu.add_flight(app, f"00000000-0000-0000-0000-{number:012d}", name=f"{number}{name}")
    run = world.run({"app-id": app, "all-flights": "true", "timeout-seconds": "170"}, timeout=240)
    records = results_of(run)
    summary_bytes = len(run.summary.encode())
    summary_utf16 = len(run.summary.encode("utf-16-le"))
    outputs_utf16 = outputs_utf16_size(run.outputs)
    print(
        f"{describe(run)}; {len(records)} records kept; summary {summary_bytes} bytes "
        f"({summary_utf16} UTF-16 bytes); outputs {outputs_utf16} UTF-16 bytes"
    )
    assert traceback_free(run)
    assert run.exit_code == 0
    assert summary_bytes < MIB
    assert outputs_utf16 < 1_000_000
    assert "left out" in run.summary
    assert any("Results output shortened" in e for e in run.stdout.splitlines())
    # The log states every target's result.
    stated = run.stdout.split("\nResults:\n", 1)[1].splitlines()
    assert sum(line.startswith("  ") for line in stated) == 1201


def _env_for(emulator: Emulator, tmp_path: Path) -> dict[str, str]:
    return runner_environment(
        base_inputs(emulator), tmp_path / "w", extra={"REQUESTS_CA_BUNDLE": emulator.ca_path}
    )


def test_outputs_and_summary_at_one_path_keep_the_result(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = _env_for(emulator, tmp_path)
    env["GITHUB_STEP_SUMMARY"] = env["GITHUB_OUTPUT"]
    done = run_entrypoint(env)
    text = Path(env["GITHUB_OUTPUT"]).read_text(encoding="utf-8")
    print(f"exit {done.returncode}; file {len(text)} chars")
    assert "Traceback" not in done.stdout + done.stderr
    assert f"{APP_ID}: halted" in done.stdout
    assert done.returncode == 0
    # The outputs come first, whole: a reader of the outputs finds them.
    head = text.split("## ", 1)[0]
    assert parse_file_command(head)["result"] == "halted"


def test_summary_symlinked_to_the_outputs_keeps_the_result(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = _env_for(emulator, tmp_path)
    link = tmp_path / "summary-link"
    link.symlink_to(env["GITHUB_OUTPUT"])
    env["GITHUB_STEP_SUMMARY"] = str(link)
    done = run_entrypoint(env)
    assert "Traceback" not in done.stdout + done.stderr
    assert f"{APP_ID}: halted" in done.stdout
    assert done.returncode == 0


def test_outputs_file_replaced_by_a_directory_mid_run(
    emulator: Emulator, start: Callable[..., Running]
) -> None:
    """While the halt is under way, GITHUB_OUTPUT becomes a directory: the halt stands,
    the step fails with an error that says so, and the log states the result."""
    emulator.add_fault(Fault(method="POST", path=HALT, kind="delay", seconds=1.5))
    running = start()
    running.wait_for(lambda: bool(emulator.halt_requests), "halt request")
    output = Path(running.env["GITHUB_OUTPUT"])
    output.unlink()
    output.mkdir()
    running.process.wait(30)
    for reader in running.readers:
        reader.join(5)
    print(running.error_lines)

    assert running.process.returncode == 1
    assert running_traceback_free(running)
    assert f"{APP_ID}: halted" in running.stdout
    [error] = running.error_lines
    assert error.startswith("::error title=Outputs not written::")
    assert "halts themselves stand" in error
    assert "Rollout halted" in running.summary
