"""`make bench`: measure the action on this machine against the Store emulator.

Writes a Markdown report to docs/benchmarks.md and prints it. What it measures:

* time-to-halt of entrypoint.py run as GitHub's runner runs it, side by side with
  the floor of any Python implementation (a `requests` script that sends only the
  token POST and the halt POST), interleaved, each in a fresh emulator, and where
  the entrypoint's time goes (start-up, imports, HTTP, exit);
* HTTP round trips to a halt (given submission, resolved submission, flight);
* the wait after a 429 with Retry-After N on the halt, against N;
* wall time for 1, 5 and 20 targets in one run;
* installed size of the runtime dependencies (a fresh venv from requirements.txt);
* the image's size and build time, from the container test's record if there is one.

Every subprocess runs the same interpreter as this script (`sys.executable`).
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from store_emulator import Emulator, Fault, Recorded  # noqa: E402
from store_emulator.actions_runner import ActionRun, run_action  # noqa: E402

OUTPUT = REPO / "docs" / "benchmarks.md"
APP_ID = "9NBLGGH4R315"
PUBLISHED = "1152921504621086517"
FLIGHT_ID = "43e448df-97c9-4a43-a0bc-2a445e736bcd"
STOPPED = "PackageRolloutStopped"
ROUNDS = 15  # interleaved runs of each arm for time-to-halt
IMPORT_RUNS = 7
TARGET_COUNTS = (1, 5, 20)
TARGET_ROUNDS = 5
RETRY_AFTERS = (1, 2, 5)
MB = 1_000_000
SIZE_EXCLUDED = ("pip", "setuptools", "_distutils_hack", "pkg_resources")

# The floor: what any Python implementation must do at the least, in one process.
FLOOR_SCRIPT = """\
import os, sys
import requests

env = os.environ
with requests.Session() as session:
    token = session.post(
        f"{env['BENCH_URL']}/{env['BENCH_TENANT']}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": env["BENCH_CLIENT_ID"],
            "client_secret": env["BENCH_SECRET"],
            "scope": "https://manage.devcenter.microsoft.com/.default",
        },
        timeout=30,
    )
    token.raise_for_status()
    halt = session.post(
        env["BENCH_URL"] + env["BENCH_HALT_PATH"],
        headers={"Authorization": "Bearer " + token.json()["access_token"]},
        timeout=30,
    )
    halt.raise_for_status()
sys.exit(0 if halt.json()["packageRolloutStatus"] == "PackageRolloutStopped" else 1)
"""


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def children_cpu() -> float:
    """CPU seconds (user + system) used so far by this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def clean_environment() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("INPUT_", "GITHUB_", "ACTIONS_", "RUNNER_", "AZURE_"))
        and key not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "PYTHONPATH")
    }


@contextmanager
def fresh_emulator() -> Iterator[Emulator]:
    with Emulator() as emulator:
        emulator.seed_demo()
        yield emulator


def inputs_for(emulator: Emulator, **extra: str) -> dict[str, str]:
    return {
        "tenant-id": emulator.tenant_id,
        "client-id": emulator.client_id,
        "client-secret": emulator.client_secret,
        "store-api-url": emulator.url,
        "authority-host": emulator.url,
        **extra,
    }


def action(
    emulator: Emulator, inputs: dict[str, str], files: dict[str, str] | None = None
) -> tuple[ActionRun, float]:
    """Run the entrypoint as the runner does; also returns when (monotonic) it started."""
    run = run_action(inputs, extra_env={"REQUESTS_CA_BUNDLE": emulator.ca_path}, files=files)
    started = time.monotonic() - run.seconds
    if "Traceback" in run.stdout + run.stderr:
        raise RuntimeError(f"the action crashed:\n{run.stdout}\n{run.stderr}")
    return run, started


def expect_halted(run: ActionRun, what: str) -> None:
    if run.exit_code != 0 or run.outputs.get("result") != "halted":
        raise RuntimeError(
            f"{what}: expected a halt, got exit {run.exit_code}, "
            f"result {run.outputs.get('result')!r}\n{run.stdout}\n{run.stderr}"
        )


def short(request: Recorded) -> str:
    return f"{request.method} {request.path.rsplit('/', 1)[-1]}"


# Time-to-halt ---------------------------------------------------------------------------


@dataclass
class Sample:
    """One run: its wall time, and the three phases seen from the emulator's clock."""

    seconds: float
    startup: float  # process start → first request received
    http: float  # first request received → halt request received
    tail: float  # halt request received → process exited
    requests: int
    cpu: float = 0.0  # CPU time of the process: far less disturbed by other load than wall


def phases(started: float, seconds: float, requests: Sequence[Recorded]) -> Sample:
    first, last = requests[0].started, requests[-1].started
    return Sample(seconds, first - started, last - first, started + seconds - last, len(requests))


def floor_once(emulator: Emulator, script: Path) -> Sample:
    env = clean_environment() | {
        "REQUESTS_CA_BUNDLE": emulator.ca_path,
        "BENCH_URL": emulator.url,
        "BENCH_TENANT": emulator.tenant_id,
        "BENCH_CLIENT_ID": emulator.client_id,
        "BENCH_SECRET": emulator.client_secret,
        "BENCH_HALT_PATH": f"/v1.0/my/applications/{APP_ID}/submissions/{PUBLISHED}"
        "/haltpackagerollout",
    }
    cpu = children_cpu()
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    seconds = time.monotonic() - started
    if completed.returncode != 0 or emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] != (
        STOPPED
    ):
        raise RuntimeError(f"the floor script did not halt:\n{completed.stderr}")
    return replace(phases(started, seconds, emulator.requests), cpu=children_cpu() - cpu)


def entrypoint_once(emulator: Emulator, **extra: str) -> Sample:
    cpu = children_cpu()
    run, started = action(emulator, inputs_for(emulator, **extra))
    cpu = children_cpu() - cpu
    expect_halted(run, "time-to-halt")
    return replace(phases(started, run.seconds, emulator.requests), cpu=cpu)


@dataclass
class TimeToHalt:
    arms: dict[str, list[Sample]] = field(default_factory=dict)
    # Wall time of `python -c "import X"` for X in IMPORTS, and the modules it loads.
    imports: dict[str, list[float]] = field(default_factory=dict)
    import_cpu: dict[str, list[float]] = field(default_factory=dict)
    modules: dict[str, int] = field(default_factory=dict)


ARMS: dict[str, Callable[[Emulator, Path], Sample]] = {
    "floor": floor_once,
    "given": lambda emu, _: entrypoint_once(emu, **{"app-id": APP_ID, "submission-id": PUBLISHED}),
    "resolved": lambda emu, _: entrypoint_once(emu, **{"app-id": APP_ID}),
}
# What the start-up of each arm costs: nothing but the interpreter, the floor's imports,
# the entrypoint's imports. Run in the same rotation, so under the same load.
IMPORTS = ("sys", "requests", "halt_rollout.main")


def time_to_halt() -> TimeToHalt:
    result = TimeToHalt(
        {name: [] for name in ARMS},
        {name: [] for name in IMPORTS},
        {name: [] for name in IMPORTS},
    )
    names = [*ARMS, *IMPORTS]
    with tempfile.TemporaryDirectory(prefix="halt-rollout-bench-") as scratch:
        script = Path(scratch) / "floor.py"
        script.write_text(FLOOR_SCRIPT, encoding="utf-8")
        for round_number in range(ROUNDS + 1):  # round 0 warms caches and is discarded
            # Rotate the order so that no arm always runs first (or right after another).
            order = names[round_number % len(names) :] + names[: round_number % len(names)]
            for name in order:
                if name in IMPORTS:
                    seconds, cpu, out = timed_python(f"import sys, {name}; print(len(sys.modules))")
                    if round_number:
                        result.imports[name].append(seconds)
                        result.import_cpu[name].append(cpu)
                        result.modules[name] = int(out)
                    continue
                with fresh_emulator() as emulator:
                    sample = ARMS[name](emulator, script)
                if round_number:
                    result.arms[name].append(sample)
            if round_number:
                say(f"time-to-halt round {round_number}/{ROUNDS}")
    return result


# Where the start-up goes --------------------------------------------------------------------

_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)$")


@dataclass
class ImportProfile:
    bare_start: float  # `python -c "import sys"` (already imported): the interpreter alone
    requests_wall: float  # `python -c "import requests"`, wall
    main_wall: float  # `python -c "import halt_rollout.main"`, wall
    bare_cpu: float  # the same three, CPU time
    requests_cpu: float
    main_cpu: float
    requests_modules: int  # modules loaded after `import requests`
    main_modules: int  # modules loaded after `import halt_rollout.main`
    groups: list[tuple[str, float]]  # -X importtime self time by top-level package, median run


def run_python(*args: str) -> subprocess.CompletedProcess[str]:
    """`python *args` in a new process, with this repository importable."""
    return subprocess.run(
        [sys.executable, *args],
        env=clean_environment() | {"PYTHONPATH": str(REPO)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def timed_python(statement: str) -> tuple[float, float, str]:
    """Wall and CPU time of `python -c statement` (a new process), and its stdout."""
    cpu = children_cpu()
    started = time.monotonic()
    completed = run_python("-c", statement)
    seconds = time.monotonic() - started
    return seconds, children_cpu() - cpu, completed.stdout


def import_times(statement: str, module: str) -> tuple[float, dict[str, float]]:
    """(cumulative seconds of `module`, self seconds by top-level package) for one run."""
    completed = run_python("-X", "importtime", "-c", statement)
    # A line is printed when its import finishes: a module's subtree comes just before
    # its own top-level line, after the previous top-level line (the interpreter's own).
    cumulative = 0.0
    subtree: list[tuple[str, int]] = []
    groups: dict[str, float] = {}
    for line in completed.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if not match:
            continue
        self_us, cumulative_us, indent, name = match.groups()
        subtree.append((name, int(self_us)))
        if indent:
            continue
        if name == module:
            cumulative = int(cumulative_us) / 1e6
            for child, self_time in subtree:
                top = child.split(".")[0]
                key = "standard library" if top in sys.stdlib_module_names else top
                groups[key] = groups.get(key, 0.0) + self_time / 1e6
            break
        subtree = []
    return cumulative, groups


def import_profile(tth: TimeToHalt) -> ImportProfile:
    profiles = [
        import_times("import halt_rollout.main", "halt_rollout.main") for _ in range(IMPORT_RUNS)
    ]
    profiles.sort(key=lambda run: run[0])
    groups = sorted(profiles[len(profiles) // 2][1].items(), key=lambda g: g[1], reverse=True)
    return ImportProfile(
        median(tth.imports["sys"]),
        median(tth.imports["requests"]),
        median(tth.imports["halt_rollout.main"]),
        median(tth.import_cpu["sys"]),
        median(tth.import_cpu["requests"]),
        median(tth.import_cpu["halt_rollout.main"]),
        tth.modules["requests"],
        tth.modules["halt_rollout.main"],
        groups,
    )


# Round trips ----------------------------------------------------------------------------


def round_trips() -> dict[str, list[str]]:
    cases = {
        "given submission": {"app-id": APP_ID, "submission-id": PUBLISHED},
        "resolved submission": {"app-id": APP_ID},
        "flight (resolved)": {"app-id": APP_ID, "flight-id": FLIGHT_ID},
    }
    trips = {}
    for name, extra in cases.items():
        with fresh_emulator() as emulator:
            run, _ = action(emulator, inputs_for(emulator, **extra))
            expect_halted(run, name)
            trips[name] = [short(r) for r in emulator.requests]
    return trips


# Retry-After ----------------------------------------------------------------------------


@dataclass
class Throttled:
    retry_after: int
    waited: float  # the 429 answered → the halt that landed
    run_seconds: float
    logged: bool


def retry_after() -> list[Throttled]:
    results = []
    for seconds in RETRY_AFTERS:
        with fresh_emulator() as emulator:
            emulator.add_fault(
                Fault(
                    method="POST",
                    path=r"/haltpackagerollout$",
                    status=429,
                    headers={"Retry-After": str(seconds)},
                    body={
                        "statusCode": 429,
                        "message": f"Rate limit is exceeded. Try again in {seconds} seconds.",
                    },
                )
            )
            run, _ = action(emulator, inputs_for(emulator, **{"app-id": APP_ID}))
            expect_halted(run, f"Retry-After {seconds}")
            first, second = emulator.halt_requests
            if (first.status, second.status) != (429, 200):
                raise RuntimeError(f"unexpected halt statuses {first.status}, {second.status}")
            logged = bool(
                re.search(
                    rf"429 from the Store; waiting {seconds}(\.0)? s as Retry-After", run.stdout
                )
            )
            results.append(Throttled(seconds, second.started - first.started, run.seconds, logged))
        say(f"Retry-After {seconds}: halt landed after {results[-1].waited:.2f} s")
    return results


# Several targets --------------------------------------------------------------------------


@dataclass
class Targets:
    count: int
    seconds: list[float]
    http: list[float]
    requests: int
    store_requests: int = 0  # those the Store's rate limit counts (not Entra's)


def several_targets() -> list[Targets]:
    results = {count: Targets(count, [], [], 0) for count in TARGET_COUNTS}
    for round_number in range(TARGET_ROUNDS):
        for count in TARGET_COUNTS if round_number % 2 == 0 else reversed(TARGET_COUNTS):
            with Emulator() as emulator:
                lines = ["targets:"]
                for number in range(count):
                    app, submission = f"9BENCH{number:06d}", str(1152921504621300000 + number)
                    emulator.add_app(app, last_published=submission, name=f"Bench {number}")
                    emulator.set_rollout(app, submission, percentage=20.0)
                    lines += [f"  - name: Bench app {number}", f"    app-id: {app}"]
                run, started = action(
                    emulator,
                    inputs_for(emulator, targets="targets.yml"),
                    files={"targets.yml": "\n".join(lines) + "\n"},
                )
                expect_halted(run, f"{count} targets")
                if len(emulator.halt_requests) != count:
                    raise RuntimeError(f"{count} targets: {len(emulator.halt_requests)} halts")
                sample = phases(started, run.seconds, emulator.requests)
                results[count].seconds.append(run.seconds)
                results[count].http.append(sample.http)
                results[count].requests = sample.requests
                results[count].store_requests = len(emulator.store_requests)
        say(f"several targets round {round_number + 1}/{TARGET_ROUNDS}")
    return list(results.values())


# Installed size -----------------------------------------------------------------------------


@dataclass
class Size:
    total: int
    by_distribution: list[tuple[str, int]]
    seconds: float
    error: str = ""


def installed_size() -> Size:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="halt-rollout-size-") as scratch:
        venv = Path(scratch) / "venv"
        python = venv / "bin" / "python"
        try:
            subprocess.run(
                [sys.executable, "-m", "venv", str(venv)],
                check=True,
                capture_output=True,
                text=True,
            )
            subprocess.run(
                [
                    *(
                        str(python),
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                    ),
                    *("--no-deps", "--require-hashes", "-r", str(REPO / "requirements.txt")),
                ],
                env=clean_environment(),
                check=True,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            detail = getattr(error, "stderr", "") or ""
            return Size(0, [], time.monotonic() - started, f"{error}: {detail[-500:]}")
        [site] = list((venv / "lib").glob("python*/site-packages"))
        total = 0
        for entry in site.iterdir():
            if _excluded(entry.name):
                continue
            total += _tree_size(entry)
        by_distribution = []
        for record in site.glob("*.dist-info/RECORD"):
            name = record.parent.name.split("-")[0]
            if _excluded(record.parent.name):
                continue
            size = 0
            for line in record.read_text(encoding="utf-8").splitlines():
                path = site / line.split(",")[0]
                if path.is_file():
                    size += path.stat().st_size
            by_distribution.append((name, size))
        by_distribution.sort(key=lambda item: item[1], reverse=True)
    return Size(total, by_distribution, time.monotonic() - started)


def _excluded(name: str) -> bool:
    stem = re.split(r"[-.]", name, maxsplit=1)[0]
    return stem in SIZE_EXCLUDED or name == "distutils-precedence.pth"


def _tree_size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


# The image ----------------------------------------------------------------------------------


def container_record() -> tuple[dict[str, Any], Path] | None:
    """The container test's record (a JSON file under .container/ naming size and build)."""
    folder = REPO / ".container"
    if not folder.is_dir():
        return None
    for path in sorted(folder.rglob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (
            isinstance(data, dict)
            and any("size" in k for k in data)
            and any("build" in k for k in data)
        ):
            return data, path
    return None


def record_value(data: dict[str, Any], preferred: Sequence[str], part: str) -> str:
    """The first of the preferred keys present, else the first key containing `part`."""
    for key in preferred:
        if key in data:
            return str(data[key])
    return next((str(v) for k, v in data.items() if part in k and "base" not in k), "?")


# The report ---------------------------------------------------------------------------------


def machine() -> list[str]:
    cpu = platform.processor() or platform.machine()
    python = Path(sys.executable)
    shown = python.relative_to(REPO) if python.is_relative_to(REPO) else python
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "halt_rollout", "entrypoint.py", "requirements.txt"],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores ({platform.system()} {platform.release()})",
        f"- Python: {platform.python_version()} (`{shown}`)",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Commit: `{commit or 'unknown'}`"
        + (" with uncommitted changes to the measured code" if dirty else ""),
    ]


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


def spread(values: Sequence[float]) -> str:
    return f"{ms(min(values))}–{ms(max(values))}"


@dataclass
class Results:
    tth: TimeToHalt
    imports: ImportProfile
    trips: dict[str, list[str]]
    throttled: list[Throttled]
    targets: list[Targets]
    size: Size
    image: tuple[dict[str, Any], Path] | None
    bench_seconds: float
    load_at_start: float  # 1-minute load average


def report(results: Results) -> str:
    tth, imports, trips = results.tth, results.imports, results.trips
    throttled, targets, size, image = (
        results.throttled,
        results.targets,
        results.size,
        results.image,
    )
    floor = [s.seconds for s in tth.arms["floor"]]
    given = [s.seconds for s in tth.arms["given"]]
    resolved = [s.seconds for s in tth.arms["resolved"]]
    ratio = median(given) / median(floor)
    cpu_ratio = median([s.cpu for s in tth.arms["given"]]) / median(
        [s.cpu for s in tth.arms["floor"]]
    )

    def phase_gap(phase: Callable[[Sample], float]) -> float:
        return median([phase(s) for s in tth.arms["given"]]) - median(
            [phase(s) for s in tth.arms["floor"]]
        )

    gap = median(given) - median(floor)
    cpu_gap = median([s.cpu for s in tth.arms["given"]]) - median(
        [s.cpu for s in tth.arms["floor"]]
    )
    given_trips = len(trips["given submission"])
    one = median(next(t for t in targets if t.count == 1).seconds)
    most = next(t for t in targets if t.count == max(TARGET_COUNTS))

    rows: list[tuple[str, str, str, bool | None, str]] = [
        (
            "Time-to-halt, entrypoint as the runner runs it (submission given)",
            f"{ms(median(given))} median vs floor {ms(median(floor))}: **×{ratio:.1f}** "
            f"(CPU time ×{cpu_ratio:.1f})",
            "— (compared with the floor)",
            None,
            f"{ms(gap)} more than the floor: {ms(phase_gap(lambda s: s.startup))} before the "
            f"first request, {ms(phase_gap(lambda s: s.http))} in "
            f"{tth.arms['given'][0].requests - tth.arms['floor'][0].requests} more round trips, "
            f"{ms(phase_gap(lambda s: s.tail))} after the halt. The cause is what it loads: "
            f"{imports.main_modules} modules against the floor's {imports.requests_modules} "
            "(azure-identity, MSAL, cryptography, PyYAML). A process that only imports "
            f"`halt_rollout.main` and exits costs {ms(imports.main_cpu - imports.requests_cpu)} "
            "more CPU than one that imports `requests`; the arms' CPU gap is "
            f"{ms(cpu_gap)}. The HTTP itself is not where the time goes",
        ),
        (
            "Time-to-halt, submission resolved (app-id only)",
            f"{ms(median(resolved))} median",
            "—",
            None,
            "one more request (GET the app) than with the submission given",
        ),
        (
            "HTTP round trips, submission given",
            str(given_trips),
            "≤ 4",
            given_trips <= 4,
            ", ".join(trips["given submission"]),
        ),
        (
            "HTTP round trips, submission resolved",
            str(len(trips["resolved submission"])),
            "—",
            None,
            ", ".join(trips["resolved submission"]),
        ),
        (
            "HTTP round trips, flight (resolved)",
            str(len(trips["flight (resolved)"])),
            "—",
            None,
            ", ".join(trips["flight (resolved)"]),
        ),
    ]
    for th in throttled:
        rows.append(
            (
                f"429 with Retry-After: {th.retry_after} on the halt: 429 → halt landed",
                f"{th.waited:.2f} s",
                f"≤ {th.retry_after + 1} s",
                th.waited <= th.retry_after + 1,
                "waits Retry-After plus up to 0.25 s of jitter"
                + ("; the wait was logged as it started" if th.logged else "; **wait not logged**"),
            )
        )
    for t in targets:
        if t.count == 1:
            continue
        r = median(t.seconds) / one
        target_text, ok = (
            ("≤ 3× one target's", r <= 3)
            if t.count == max(TARGET_COUNTS)
            else (
                "—",
                None,
            )
        )
        rows.append(
            (
                f"{t.count} targets in one run (targets file)",
                f"{median(t.seconds):.2f} s vs {one:.2f} s for one: ×{r:.2f}",
                target_text,
                ok,
                f"{t.requests} requests, 4 targets at a time",
            )
        )
    if size.error:
        rows.append(
            ("Installed size of the runtime dependencies", "not measured", "≤ 32 MB", None, "")
        )
    else:
        top = ", ".join(f"{name} {n / MB:.1f}" for name, n in size.by_distribution[:4])
        rows.append(
            (
                "Installed size of the runtime dependencies",
                f"{size.total / MB:.1f} MB",
                "≤ 32 MB",
                size.total <= 32 * MB,
                f"site-packages of a fresh venv minus {', '.join(SIZE_EXCLUDED)}; .pyc "
                f"included (as in the image); largest: {top} MB",
            )
        )
    if image is None:
        rows.append(
            (
                "Image size and build time",
                "not measured in this run: run `make container-test`",
                "—",
                None,
                "no container-test record found under .container/",
            )
        )
    else:
        data, path = image
        size_text = record_value(data, ("image_size", "size", "image_size_bytes"), "size")
        build_text = record_value(data, ("build_seconds", "build_time", "build"), "build")
        rows.append(
            (
                "Image size and build time",
                f"{size_text}; built in {build_text} s",
                "—",
                None,
                f"from {path.relative_to(REPO)}",
            )
        )

    out = [
        "# Benchmarks",
        "",
        "Measured by `make bench` (`scripts/bench.py`) against the local Store emulator "
        "(loopback HTTPS; no network latency, no throttling unless a fault asks for it). "
        "Absolute times are this machine's; the ratios are what carry over.",
        "",
        *machine(),
        f"- `make bench` took {results.bench_seconds:.0f} s; 1-minute load average "
        f"{results.load_at_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end "
        f"({os.cpu_count()} cores: above 1 or so, other work on the machine adds noise to "
        "wall times; CPU times are far less disturbed)",
        "",
        "| what | measured | target | met | note |",
        "| --- | --- | --- | --- | --- |",
        *(f"| {w} | {m} | {t} | {verdict(ok)} | {n} |" for w, m, t, ok, n in rows),
        "",
        "## Time-to-halt",
        "",
        f"{ROUNDS} runs of each, interleaved (the order rotates every round, after one "
        "discarded warm-up round), each in a fresh emulator. Every run is a new process, so "
        "interpreter start-up counts for all. The *floor* is a `requests` script that sends "
        "only the token POST and the halt POST over one connection: what any Python "
        "implementation must at least do. The entrypoint runs under the runner's environment "
        "(`store_emulator.actions_runner.run_action`) and also writes outputs and a job summary.",
        "",
        "Phases come from the emulator's clock (same process as the benchmark): start-up is "
        "process start → first request received; HTTP is first request → halt request "
        "received; the rest is the halt's answer, writing outputs, and exit. CPU time is the "
        "process's user + system time.",
        "",
        "| arm | requests | median | range | start-up | HTTP | halt → exit | CPU time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    labels = {
        "floor": "floor (`requests`, 2 POSTs)",
        "given": "entrypoint, submission given",
        "resolved": "entrypoint, submission resolved",
    }
    for name, samples in tth.arms.items():
        out.append(
            f"| {labels[name]} | {samples[0].requests} | {ms(median([s.seconds for s in samples]))}"
            f" | {spread([s.seconds for s in samples])}"
            f" | {ms(median([s.startup for s in samples]))}"
            f" | {ms(median([s.http for s in samples]))}"
            f" | {ms(median([s.tail for s in samples]))}"
            f" | {ms(median([s.cpu for s in samples]))} |"
        )
    group_rows = [
        f"| {name} | {ms(seconds)} |" for name, seconds in imports.groups[:8] if seconds >= 0.001
    ]
    out += [
        "",
        "Where the time goes: a new process that only imports (then exits, tearing its "
        f"modules down), run in the same rotation as the arms above (medians of {ROUNDS}):",
        "",
        "| process | wall | CPU time | modules loaded |",
        "| --- | --- | --- | --- |",
        f"| `python -c 'import sys'` (the interpreter alone) | {ms(imports.bare_start)} "
        f"| {ms(imports.bare_cpu)} | |",
        f"| `python -c 'import requests'` (the floor's imports) | {ms(imports.requests_wall)} "
        f"| {ms(imports.requests_cpu)} | {imports.requests_modules} |",
        f"| `python -c 'import halt_rollout.main'` (the entrypoint's) | {ms(imports.main_wall)} "
        f"| {ms(imports.main_cpu)} | {imports.main_modules} |",
        "",
        "Import time of `halt_rollout.main` by top-level package (`-X importtime` self time, "
        "median run; the tool adds overhead of its own, so the sum exceeds the wall time above):",
        "",
        "| package | self time |",
        "| --- | --- |",
        *group_rows,
        "",
        "## Retry-After on the halt",
        "",
        "One 429 (`Retry-After: N`, gateway body) on the first halt POST; the time is between "
        "the two halt requests as the emulator received them.",
        "",
        "| Retry-After | 429 → halt landed | whole run |",
        "| --- | --- | --- |",
        *(
            f"| {th.retry_after} s | {th.waited:.2f} s | {th.run_seconds:.2f} s |"
            for th in throttled
        ),
        "",
        "## Several targets",
        "",
        f"Medians of {TARGET_ROUNDS} runs; each target is an app whose last published "
        "submission is resolved, read and halted (3 requests), after one sign-in. The emulator "
        "does not throttle. Against the real Store's reported ~20 requests a minute per "
        f"tenant, the {most.store_requests} Store requests of {most.count} targets would take "
        f"about {most.store_requests / 20 * 60:.0f} s of throttled waits and retries, against "
        "a default timeout-seconds of 180: a long targets list may need a larger "
        "timeout-seconds.",
        "",
        "| targets | requests | wall (median) | HTTP phase (median) | × one target |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {t.count} | {t.requests} | {median(t.seconds):.2f} s | {ms(median(t.http))} "
            f"| ×{median(t.seconds) / one:.2f} |"
            for t in targets
        ),
    ]
    if size.error:
        out += ["", "## Installed size", "", f"Not measured: {size.error}"]
    else:
        out += [
            "",
            "## Installed size",
            "",
            "`pip install --no-deps --require-hashes -r requirements.txt` into a fresh venv "
            f"({size.seconds:.0f} s); site-packages without {', '.join(SIZE_EXCLUDED)} (the "
            "venv's own tools). Per distribution, from each RECORD:",
            "",
            "| distribution | MB |",
            "| --- | --- |",
            *(f"| {name} | {n / MB:.2f} |" for name, n in size.by_distribution),
            f"| **total** | **{size.total / MB:.2f}** |",
        ]
    if image is not None:
        data, path = image
        out += ["", "## Image", "", f"From `{path.relative_to(REPO)}`:", "", "```json"]
        out += [json.dumps(data, indent=2), "```"]
    return "\n".join(out) + "\n"


def main() -> int:
    started = time.monotonic()
    load = os.getloadavg()[0]
    say("time-to-halt: entrypoint vs floor, interleaved")
    tth = time_to_halt()
    say("import profile")
    imports = import_profile(tth)
    say("round trips")
    trips = round_trips()
    say("Retry-After")
    throttled = retry_after()
    say("several targets")
    targets = several_targets()
    say("installed size (fresh venv)")
    size = installed_size()
    image = container_record()
    elapsed = time.monotonic() - started
    text = report(Results(tth, imports, trips, throttled, targets, size, image, elapsed, load))
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(text)
    say(f"wrote {OUTPUT.relative_to(REPO)} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
