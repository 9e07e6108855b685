"""Play a schedule: entrypoint.py in a runner's environment against its emulator.

The process is started as tests/world.py starts it (runner_environment, the workspace as
its working directory), its log read line by line with the time each line arrived. The
schedule's other responder and cancel act from threads while it runs. Afterwards the
Store settles (a slow halt that was accepted takes effect) and its final state, its
request record and what the user can read are kept in an `Observation`.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import quote

import yaml

from store_emulator import Recorded
from store_emulator.actions_runner import ENTRYPOINT, parse_file_command, runner_environment

from .model import STOPPED, Entry, Key, Schedule
from .stage import ScheduleEmulator, final_statuses, rival_halt, stage

WORK_ON = re.compile(rb"\d+ targets? to work on")
TARGETS_FILE = "halt-targets.yml"
# A run that has not ended this long after its deadline is killed (and reported).
HARD_LIMIT_SECONDS = 40.0


@dataclass
class Observation:
    """What the user could observe of one run, and what the Store ended as."""

    exit_code: int | None  # None: killed after HARD_LIMIT_SECONDS
    log: str  # stdout (and, for a broken log, stderr too), as far as it was read
    stderr: str
    outputs_text: str
    summary: str
    started: float  # time.monotonic() just before the process was started
    work_started: float | None  # when "N targets to work on" arrived
    ended: float
    summary_written_wall: float | None  # the summary file's mtime (time.time())
    requests: list[Recorded]
    told: Callable[[Recorded], str | None]
    final: dict[Key, str]
    stopped_by: dict[Key, str]
    secrets: list[str]
    sigint_at: float | None = None
    sigint_wall: float | None = None
    sigterm_at: float | None = None

    @property
    def outputs(self) -> dict[str, str]:
        return parse_file_command(self.outputs_text)


def inputs_of(plan: Schedule, emu: ScheduleEmulator) -> tuple[dict[str, str], dict[str, str]]:
    """The step's inputs and the workspace files they name."""
    inputs = {
        "tenant-id": emu.tenant_id,
        "client-id": emu.client_id,
        "store-api-url": emu.url,
        "authority-host": emu.url,
        "timeout-seconds": str(plan.timeout),
        "reason": "generated schedule",
    }
    if not plan.oidc:
        inputs["client-secret"] = emu.client_secret
    if plan.in_file:
        inputs["targets"] = TARGETS_FILE
        return inputs, {TARGETS_FILE: targets_yaml(plan.entries)}
    [entry] = plan.entries
    inputs["app-id"] = entry.app_id
    if entry.flight_id:
        inputs["flight-id"] = entry.flight_id
    if entry.submission_id:
        inputs["submission-id"] = entry.submission_id
    if entry.all_flights:
        inputs["all-flights"] = "true"
    if entry.expected_version:
        inputs["expected-version"] = entry.expected_version
    return inputs, {}


def targets_yaml(entries: tuple[Entry, ...]) -> str:
    items = []
    for entry in entries:
        item: dict[str, str | bool] = {}
        if entry.name:
            item["name"] = entry.name
        item["app-id"] = entry.app_id
        if entry.flight_id:
            item["flight-id"] = entry.flight_id
        if entry.submission_id:
            item["submission-id"] = entry.submission_id
        if entry.all_flights:
            item["all-flights"] = True
        if entry.expected_version:
            item["expected-version"] = entry.expected_version
        items.append(item)
    return yaml.safe_dump({"targets": items}, allow_unicode=True, sort_keys=False)


def environment_of(plan: Schedule, emu: ScheduleEmulator) -> dict[str, str | None]:
    env: dict[str, str | None] = {"REQUESTS_CA_BUNDLE": emu.ca_path}
    if plan.oidc:
        env["ACTIONS_ID_TOKEN_REQUEST_URL"] = emu.oidc_request_url
        env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = emu.oidc_request_token
    if plan.proxy is not None:
        variable, value = plan.proxy
        env[variable] = value
        env["NO_PROXY"] = "127.0.0.1,localhost"
    if plan.log in ("cp1252", "ascii"):
        env["PYTHONIOENCODING"] = plan.log
    elif plan.log == "C":  # a stdout that is ASCII, as under LC_ALL=C without coercion
        env |= {"LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    return env


class _Run:
    """The process and the threads that read its log and act on it."""

    def __init__(self, plan: Schedule, emu: ScheduleEmulator, env: dict[str, str]) -> None:
        self.plan, self.emu = plan, emu
        self.over = threading.Event()
        self.lines: list[bytes] = []
        self.errors: list[bytes] = []
        self.work_started: float | None = None
        self.sigint_at: float | None = None
        self.sigint_wall: float | None = None
        self.sigterm_at: float | None = None
        self.ended = 0.0
        broken = plan.log == "broken"
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, str(ENTRYPOINT)],
            env=env,
            cwd=env["GITHUB_WORKSPACE"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if broken else subprocess.PIPE,
        )
        assert self.process.stdout is not None
        limit = plan.broken_after if broken else None
        self.threads = [threading.Thread(target=self._read, args=(self.process.stdout, limit))]
        if self.process.stderr is not None:
            self.threads.append(
                threading.Thread(target=self._pump, args=(self.process.stderr, self.errors))
            )
        if plan.cancel is not None:
            self.threads.append(threading.Thread(target=self._cancel))
        if plan.rival is not None and not plan.rival.before_ours:
            self.threads.append(threading.Thread(target=self._rival))
        for thread in self.threads:
            thread.daemon = True
            thread.start()

    def _read(self, stream: IO[bytes], limit: int | None) -> None:
        while limit is None or len(self.lines) < limit:
            line = stream.readline()
            if not line:
                break
            if self.work_started is None and WORK_ON.search(line):
                self.work_started = time.monotonic()
            self.lines.append(line)
        if limit is not None:
            stream.close()  # the reader went away: `| head -n K`, or quitting `less`

    @staticmethod
    def _pump(stream: IO[bytes], into: list[bytes]) -> None:
        for line in stream:
            into.append(line)

    def _work_start(self) -> float | None:
        """When the run started working: its log line, else its first request."""
        while not self.over.is_set():
            if self.work_started is not None:
                return self.work_started
            requests = self.emu.requests
            if requests and self.plan.log == "broken":
                return requests[0].started
            self.over.wait(0.01)
        return None

    def _wait_until(self, moment: float) -> bool:
        return not self.over.wait(max(0.0, moment - time.monotonic()))

    def _cancel(self) -> None:
        cancel = self.plan.cancel
        assert cancel is not None
        if cancel.after == "start":
            base = self._work_start()
        else:
            base = None
            while base is None and not self.over.is_set():
                halts = self.emu.halt_requests
                base = halts[0].started if halts else None
                self.over.wait(0.01)
        if base is None or not self._wait_until(base + cancel.delay):
            return
        if self.process.poll() is not None or any(b"Results:" in line for line in self.lines):
            return  # the run had its results: a cancel now would only race its exit
        self.sigint_at, self.sigint_wall = time.monotonic(), time.time()
        self.process.send_signal(signal.SIGINT)
        if cancel.sigterm is None or not self._wait_until(self.sigint_at + cancel.sigterm):
            return
        if self.process.poll() is None:
            self.sigterm_at = time.monotonic()
            self.process.send_signal(signal.SIGTERM)

    def _rival(self) -> None:
        rival = self.plan.rival
        assert rival is not None
        base = self._work_start()
        if base is not None and self._wait_until(base + rival.delay):
            rival_halt(self.emu, rival.key)

    def wait(self) -> int | None:
        try:
            return self.process.wait(self.plan.timeout + HARD_LIMIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
        finally:
            self.ended = time.monotonic()
            self.over.set()
            for thread in self.threads:
                thread.join(5)


def _settle(emu: ScheduleEmulator, plan: Schedule) -> None:
    """Let every accepted (slow) halt take effect before the final state is read."""
    end = time.monotonic() + plan.halt_seconds + 2.0
    while time.monotonic() < end:
        final = final_statuses(emu, plan)
        if all(final[key] == STOPPED for key in emu.state.stopped_by if key in final):
            return
        time.sleep(0.05)


def play(plan: Schedule, workdir: Path) -> Observation:
    """Run the schedule once in `workdir`; everything the checks need."""
    emu = ScheduleEmulator()
    emu.start()
    try:
        stage(emu, plan)
        inputs, files = inputs_of(plan, emu)
        env = runner_environment(inputs, workdir, extra=environment_of(plan, emu))
        for name, content in files.items():
            (Path(env["GITHUB_WORKSPACE"]) / name).write_text(content, encoding="utf-8")
        run = _Run(plan, emu, env)
        exit_code = run.wait()
        _settle(emu, plan)
        summary_path = Path(env["GITHUB_STEP_SUMMARY"])
        signature = emu.upload_signature
        secrets = [
            emu.client_secret,
            emu.oidc_request_token,
            *emu.issued_oidc_tokens,
            *emu.issued_access_tokens,
            signature,
            quote(signature, safe=""),
            *([plan.proxy_password] if plan.proxy_password else []),
        ]
        return Observation(
            exit_code=exit_code,
            log=b"".join(run.lines).decode("utf-8", "replace"),
            stderr=b"".join(run.errors).decode("utf-8", "replace"),
            outputs_text=Path(env["GITHUB_OUTPUT"]).read_bytes().decode("utf-8", "replace"),
            summary=summary_path.read_bytes().decode("utf-8", "replace"),
            started=run.started,
            work_started=run.work_started,
            ended=run.ended,
            summary_written_wall=summary_path.stat().st_mtime
            if summary_path.stat().st_size
            else None,
            requests=emu.requests,
            told=emu.answered,
            final=final_statuses(emu, plan),
            stopped_by=dict(emu.state.stopped_by),
            secrets=[s for s in secrets if s],
            sigint_at=run.sigint_at,
            sigint_wall=run.sigint_wall,
            sigterm_at=run.sigterm_at,
        )
    finally:
        emu.stop()
