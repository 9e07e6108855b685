"""The hostile world the promise tests run in: an emulator and servers in front of it.

Where the emulator cannot misbehave enough, `HostileServer` stands in front of it:
a loopback TLS server with its own trustme CA that forwards requests to the
emulator (so the Store's state and its request records stay real) and, for the
requests an attack picks, writes whatever bytes the attack wants, as slowly as it
wants. The run then trusts both CAs through REQUESTS_CA_BUNDLE. The action always
runs as GitHub's runner runs it (`entrypoint.py` in a subprocess,
`store_emulator.actions_runner`). In `make test` that subprocess is forked from a
pre-imported fork server (tests/zygote.py; `World.run`, `run_entrypoint` and run_action go
through `store_emulator.launch`), which a test sees as the real process; `spawn` and
`start`, which watch a process from its first milliseconds, always start a new one, as
does every run under HALT_ROLLOUT_TEST_REAL_EXEC=1 or in a test marked `real_exec`.

Deadline figures: a run's overrun is its seconds minus timeout-seconds, where its
seconds are its wall time less what the kernel counted as its threads' wait for a CPU
(a loaded machine's share, never a hang's: QueueWatch, /proc's schedstat). The run's
deadline starts inside the subprocess when the package begins to load, before it logs
how many targets it works on; the test notes when that line arrives, so a request any
server saw more than timeout-seconds after it, and later than this process's own lateness
to wake could explain (QueueWatch.lag), was certainly sent after the deadline.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import trustme

from store_emulator import Emulator, Fault, launch
from store_emulator.action_files import ENTRYPOINT
from store_emulator.actions_runner import runner_environment
from store_emulator.responses import Response
from store_emulator.step_environment import overlay
from store_emulator.step_results import ActionRun, parse_file_command

from .conftest import (
    APP_ID,
    FALLBACK,
    PUBLISHED,
    base_inputs,
)
from .loopback import LoopbackServer, read_head

HALT = r"/haltpackagerollout$"
ROLLOUT = r"/packagerollout$"
SUBMISSION = r"/submissions/\d+$"
APP = rf"^/v1\.0/my/applications/{APP_ID}$"
# What a subprocess run costs besides its deadline: interpreter start, imports,
# writing the outputs. A whole run takes 0.3-0.9 s of CPU here; a run whose seconds
# (its wall time less its wait for a CPU, see QueueWatch) exceed timeout-seconds by more
# overran. A run that hangs to twice a 3 s deadline is still caught.
STARTUP_SLACK = 2.0
IN_PROGRESS = {
    "isPackageRollout": True,
    "packageRolloutPercentage": 25.0,
    "packageRolloutStatus": "PackageRolloutInProgress",
    "fallbackSubmissionId": FALLBACK,
}
STOPPED = {
    **IN_PROGRESS,
    "packageRolloutPercentage": 0.0,
    "packageRolloutStatus": "PackageRolloutStopped",
}


# A hostile server in front of the emulator ----------------------------------------------


@dataclass
class Incoming:
    """One request as the hostile server read it."""

    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]  # names in lower case
    body: bytes
    started: float  # time.monotonic() when its head had been read

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


@dataclass
class Upstream:
    """The emulator's answer to a forwarded request."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def raw(self, *, body: bytes | None = None, extra: tuple[tuple[str, str], ...] = ()) -> bytes:
        return raw_response(self.status, self.headers, self.body if body is None else body, extra)


def raw_response(
    status: int,
    headers: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    extra: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection after it."""
    dropped = {"content-length", "transfer-encoding", "connection"}
    lines = [f"HTTP/1.1 {status} {http.client.responses.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in [*headers, *extra] if k.lower() not in dropped]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def json_answer(status: int, payload: Any, extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return raw_response(status, [("Content-Type", "application/json")], body, extra)


class Wire:
    """What a handler can do with one connection."""

    def __init__(self, connection: ssl.SSLSocket, server: HostileServer) -> None:
        self._connection = connection
        self._server = server

    @property
    def stopping(self) -> threading.Event:
        return self._server.stopping

    def send(self, data: bytes) -> None:
        self._connection.sendall(data)

    def trickle(self, data: bytes, *, every: float, until: float) -> bytes:
        """Send `data` a byte at a time, one per `every` seconds, until monotonic `until`;
        returns what was not sent yet."""
        while data and time.monotonic() < until and not self.stopping.is_set():
            self.send(data[:1])
            data = data[1:]
            self.stopping.wait(every)
        return data

    def forward(self, req: Incoming) -> Upstream:
        return self._server.forward(req)


Handler = Callable[[Incoming, Wire], None]


def forward_everything(req: Incoming, wire: Wire) -> None:
    wire.send(wire.forward(req).raw())


def trickling_from_the_halt_on() -> Handler:
    """A Store whose every answer, from the halt's on, trickles in a byte each 0.2 s."""
    halted = threading.Event()

    def store(req: Incoming, wire: Wire) -> None:
        if halted.is_set() or (req.method == "POST" and req.path.endswith("haltpackagerollout")):
            halted.set()
            answer = wire.forward(req).raw()
            wire.trickle(answer, every=0.2, until=time.monotonic() + 20)
        else:
            forward_everything(req, wire)

    return store


class HostileServer(LoopbackServer):
    """A loopback HTTPS server whose handler decides, per request, what goes on the wire."""

    def __init__(self, ca: trustme.CA, upstream: Emulator, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.upstream = upstream
        self.requests: list[Incoming] = []
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(self._context)
        self._upstream_context = ssl.create_default_context(cafile=upstream.ca_path)
        self.url = f"https://127.0.0.1:{self.port}"
        self.listen("hostile-accept")

    def forward(self, req: Incoming) -> Upstream:
        host, port = self.upstream.url.removeprefix("https://").rsplit(":", 1)
        connection = http.client.HTTPSConnection(
            host, int(port), context=self._upstream_context, timeout=30
        )
        try:
            # The Host header is kept: the emulator's discovery document then names us.
            connection.request(req.method, req.target, body=req.body or None, headers=req.headers)
            answer = connection.getresponse()
            return Upstream(answer.status, answer.reason, answer.getheaders(), answer.read())
        finally:
            connection.close()

    def _serve(self, raw: socket.socket) -> None:
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._context.wrap_socket(raw, server_side=True) as connection:
                req = self._read(connection)
                if req is None:
                    return
                with self._lock:
                    self.requests.append(req)
                self.handler(req, Wire(connection, self))
                with contextlib.suppress(OSError):
                    connection.unwrap()
        except (OSError, ValueError):
            pass  # the client gave up or the test ended: both are expected here
        finally:
            self.forget(raw)
            with contextlib.suppress(OSError):
                raw.close()

    @staticmethod
    def _read(connection: ssl.SSLSocket) -> Incoming | None:
        data = read_head(connection, 65536)
        if data is None:
            return None
        head, _, body = data.partition(b"\r\n\r\n")
        started = time.monotonic()
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        while len(body) < length:
            chunk = connection.recv(65536)
            if not chunk:
                break
            body += chunk
        return Incoming(method, target, headers, body, started)


_WORK_ON = re.compile(r"\d+ targets? to work on")


@dataclass
class World:
    """An emulator, the hostile servers in front of it, and the CA bundle that trusts all."""

    emulator: Emulator
    workdir: Path
    ca: trustme.CA
    servers: list[HostileServer] = field(default_factory=list)
    runs: int = 0
    deadline_started: float | None = None
    wall_seconds: float = 0.0  # the last run's, from its start to its end
    timeout_given: float = 0.0  # the last run's timeout-seconds (0: none or not a number)
    queue: QueueWatch | None = None  # the last run's wait for a CPU

    def hostile(self, handler: Handler) -> HostileServer:
        server = HostileServer(self.ca, self.emulator, handler)
        self.servers.append(server)
        return server

    @property
    def bundle(self) -> str:
        path = self.workdir / "bundle.pem"
        if not path.exists():
            path.write_bytes(Path(self.emulator.ca_path).read_bytes() + self.ca.cert_pem.bytes())
        return str(path)

    def next_workspace(self) -> Path:
        """The workspace the next run will have, created now so a test can put files in."""
        workspace = self.workdir / f"run{self.runs}" / "workspace"
        workspace.mkdir(parents=True, exist_ok=True)
        return workspace

    def inputs(self) -> dict[str, str]:
        return base_inputs(self.emulator)

    def run(
        self,
        inputs: Mapping[str, str | None] | None = None,
        *,
        store: HostileServer | None = None,
        authority: HostileServer | None = None,
        env: Mapping[str, str | None] | None = None,
        files: Mapping[str, str] | None = None,
        timeout: float = 120,
    ) -> ActionRun:
        merged: dict[str, str] = self.inputs()
        if store is not None:
            merged["store-api-url"] = store.url
        if authority is not None:
            merged["authority-host"] = authority.url
        merged = overlay(merged, inputs)
        try:
            self.timeout_given = float(merged.get("timeout-seconds", ""))
        except ValueError:
            self.timeout_given = 0.0
        workdir = self.workdir / f"run{self.runs}"
        self.runs += 1
        workdir.mkdir(exist_ok=True)
        extra = {"REQUESTS_CA_BUNDLE": self.bundle, **(env or {})}
        env = runner_environment(merged, workdir, extra=extra)
        for relative, content in (files or {}).items():
            (Path(env["GITHUB_WORKSPACE"]) / relative).write_text(content, encoding="utf-8")
        return self._run_timed(env, timeout)

    def _run_timed(self, env: dict[str, str], timeout: float) -> ActionRun:
        """run_action's run, with the time each log line arrived, to know when the run's
        deadline started: right after it logs how many targets it works on."""
        self.deadline_started = None
        asked = time.monotonic()
        process = launch.popen(
            [sys.executable, str(ENTRYPOINT)],
            env=env,
            cwd=env["GITHUB_WORKSPACE"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # The run's time starts when its process was created (launch.created_at): what a
        # fork server took to start up (tests/zygote.py) is the harness's, not the run's,
        # and what this process took to see Popen return is the run's.
        started = launch.created_at(process, asked)
        lines: list[str] = []
        errors: list[str] = []

        def read_stdout() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                if self.deadline_started is None and _WORK_ON.match(line):
                    self.deadline_started = time.monotonic()
                lines.append(line)

        def read_stderr() -> None:
            assert process.stderr is not None
            errors.extend(process.stderr)

        queued = QueueWatch(process.pid)
        readers = [threading.Thread(target=f, daemon=True) for f in (read_stdout, read_stderr)]
        for reader in [*readers, queued]:
            reader.start()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        finally:
            for reader in readers:
                reader.join(5)
            queued.join(5)
        self.wall_seconds = time.monotonic() - started
        # Its seconds with a CPU of its own: what the deadline promises are about.
        seconds = max(0.0, self.wall_seconds - queued.seconds)
        _QUEUED.append(queued.seconds)
        self.queue = queued
        outputs = Path(env["GITHUB_OUTPUT"]).read_bytes().decode("utf-8")
        return ActionRun(
            exit_code=process.returncode,
            stdout="".join(lines),
            stderr="".join(errors),
            outputs=parse_file_command(outputs),
            summary=Path(env["GITHUB_STEP_SUMMARY"]).read_bytes().decode("utf-8"),
            seconds=seconds,
        )

    def request_times(self) -> list[tuple[float, str]]:
        """(started, "METHOD path") of every request any server of this world saw."""
        ours = {server.url.removeprefix("https://") for server in self.servers}
        # A request a hostile server forwarded is the same request: count it once.
        seen = [
            (r.started, f"{r.method} {r.path}")
            for r in self.emulator.requests
            if r.headers.get("host") not in ours
        ]
        for server in self.servers:
            seen += [(r.started, f"{r.method} {r.path}") for r in server.requests]
        return sorted(seen)

    def sent_after_deadline(self, timeout: float) -> list[str]:
        """Requests that started after the last run's deadline (see the module doc)."""
        times = self.request_times()
        if not times:
            return []
        # The log line arrives a little after the deadline started: the bound is late,
        # never early. Without the line, the first request is a later bound still.
        start = self.deadline_started if self.deadline_started is not None else times[0][0]
        # A server notes a request's arrival late by as much as this process is late to
        # wake (QueueWatch.lag, twice over, for a busy machine), plus reading its head.
        noted_late = 2 * (self.queue.lag if self.queue is not None else 0.0) + 0.02
        bound = start + timeout + noted_late
        return [
            f"{what} at deadline+{started - bound:.2f}s"
            for started, what in times
            if started > bound
        ]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with Emulator() as emu:
        emu.seed_demo()
        ca = trustme.CA(organization_name="hostile world")
        w = World(emu, tmp_path, ca)
        try:
            yield w
        finally:
            for server in w.servers:
                server.close()


# What a run shows ------------------------------------------------------------------------

# The commands this action means to print; anything else that the runner would take
# for a command is data that escaped.
_OURS = ("::add-mask::", "::error title=", "::group::", "::endgroup::")


def injected_commands(stdout: str) -> list[str]:
    """Log lines GitHub's runner would process as workflow commands that we did not mean.

    The runner (actions/runner ActionCommand.cs) takes a line as a command when it starts
    with `::` after its leading whitespace is trimmed (TryParseV2), or when it contains
    the legacy `##[command]` form anywhere (TryParse, tried when V2 fails).
    """
    found = []
    for line in stdout.splitlines():
        if line.startswith(_OURS):
            continue
        if line.lstrip().startswith("::") or "##[" in line:
            found.append(line)
    return found


def outside_code(markdown: str) -> str:
    """The Markdown with fenced code blocks and code spans (`…`) removed: what is in them is
    shown as typed. A fence closes on a line of at least as many backticks (CommonMark)."""
    kept: list[str] = []
    fence = ""
    for line in markdown.split("\n"):
        opening = re.match(r" {0,3}(`{3,})", line)
        if fence:
            if opening and line.strip() == opening.group(1) and len(opening.group(1)) >= len(fence):
                fence = ""
        elif opening and "`" not in line.strip()[len(opening.group(1)) :]:
            fence = opening.group(1)
        else:
            kept.append(line)
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", "\n".join(kept))


_LIVE = (
    (r"(?<!\\)\]\(", "an inline link or image `](`"),
    (r"(?<!\\)!\[", "an image `![`"),
    (r"<[A-Za-z/!?]", "raw HTML or an autolink `<`"),
    (r"(?i)\b(?:https?|ftp)://", "a bare URL (GFM autolink)"),
    (r"(?i)\bwww\.[a-z0-9-]", "a bare www. link (GFM autolink)"),
)


# The links the summary makes itself, from checked IDs: to Partner Center and to the run.
OUR_LINKS = re.compile(
    r"\[[^\]`\n]*\]\(https://partner\.microsoft\.com/dashboard/products/[A-Za-z0-9]+/"
    r"(?:overview|submissions/[0-9]+)\)"
    r"|\[(https://github\.com/[A-Za-z0-9-]+/[A-Za-z0-9._-]+/actions/runs/[0-9]+(?:/attempts/[0-9]+)?)\]\(\1\)"
)


def live_markdown(summary: str) -> list[str]:
    """What in the summary GitHub would render live: links, images, HTML, autolinks (but
    the summary's own links, outside code, where data never is)."""
    text = OUR_LINKS.sub("", outside_code(summary))
    return [what for pattern, what in _LIVE if re.search(pattern, text)]


def results_of(run: ActionRun) -> list[dict[str, Any]]:
    records = json.loads(run.outputs.get("results") or "[]")
    assert isinstance(records, list)
    return records


def traceback_free(run: ActionRun) -> bool:
    return "Traceback" not in run.stdout + run.stderr and "crashed" not in run.stdout


def describe(run: ActionRun, timeout: float | None = None) -> str:
    overrun = f", overrun {run.seconds - timeout:.1f} s" if timeout is not None else ""
    shown = " | ".join(e[:200] for e in run.errors[:2]) or "none"
    errors = f"{shown} (+{len(run.errors) - 2} more)" if len(run.errors) > 2 else shown
    return (
        f"exit {run.exit_code}, {run.seconds:.1f} s{overrun}, result "
        f"{run.outputs.get('result')!r}, errors: {errors}"
    )


# Shared by the promise files -----------------------------------------------------------

# What the latest runs in this test process waited for a CPU (QueueWatch): how much of a
# run's deadline a loaded machine eats now, mostly while it imports and signs in.
_QUEUED: deque[float] = deque(maxlen=6)
# Beyond this, a machine is too loaded for any deadline test to mean anything.
_MOST_QUEUED = 20.0


def _calibrate() -> None:
    """The first figure: what importing the action's code waits for a CPU here now."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import halt_rollout.main, azure.identity, requests"]
    )
    watch = QueueWatch(process.pid)
    watch.start()
    process.wait(120)
    watch.join(5)
    _QUEUED.append(watch.seconds)


def loaded(seconds: float) -> float:
    """A deadline of `seconds` of work, plus what a loaded machine ate of this process's
    latest runs: a test whose promise needs the run to get through sign-in before its
    deadline (a halt sent, a proxy passed) asks for this. On a machine with CPUs to
    spare it is `seconds` itself; every deadline check still counts from the deadline
    the run was given."""
    if not _QUEUED:
        _calibrate()
    return round(seconds + min(_MOST_QUEUED, max(_QUEUED)), 1)


# The timeout-seconds most attacks run with.
DEADLINE = 3.0


def many_apps(emu: Emulator, count: int) -> str:
    """`count` apps, each with a rollout in progress; returns the targets file naming them."""
    lines = ["targets:"]
    for number in range(count):
        app, submission = f"9NAPP{number:07d}", f"11529215046{number:08d}"
        emu.add_app(app, last_published=submission)
        emu.set_rollout(app, submission)
        lines.append(f"  - app-id: {app}")
    return "\n".join(lines) + "\n"


class AppliedFault(Fault):
    """Answers with its own status and body after the request took effect: the gateway
    error that hid a success, or a rival's halt that landed just before ours."""

    def __init__(self, emu: Emulator, app_id: str, submission_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._emu, self._app, self._submission = emu, app_id, submission_id

    def response(self) -> Response:
        with contextlib.suppress(Exception):  # a rollout already stopped stays stopped
            self._emu.state.halt(self._app, self._submission)
        return super().response()


def applied_halt(emu: Emulator, status: int, **kwargs: Any) -> AppliedFault:
    """The demo app's halt takes effect, and the Store answers it with `status`."""
    return AppliedFault(emu, APP_ID, PUBLISHED, method="POST", path=HALT, status=status, **kwargs)


@contextlib.contextmanager
def pipe_no_one_reads(tmp_path: Path, *, full: bool) -> Iterator[Path]:
    """A named pipe with no reader (`full=False`), or with one that never reads and a
    buffer already full (`full=True`)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    if not full:
        yield pipe
        return
    reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
    writer = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(writer, b"x" * 4096)
    try:
        yield pipe
    finally:
        os.close(writer)
        os.close(reader)


def run_entrypoint(
    env: Mapping[str, str], *, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """entrypoint.py as the runner starts it: in `env`, from its workspace, to its end."""
    return launch.run(
        [sys.executable, str(ENTRYPOINT)],
        env=dict(env),
        cwd=env["GITHUB_WORKSPACE"],
        timeout=timeout,
    )


def run_command(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Another command (the command line, a README snippet) as a new process, to its end
    (launch.run starts any command but entrypoint.py's for real)."""
    return launch.run(argv, env=dict(env), cwd=cwd, timeout=timeout)


def outputs_utf16_size(outputs: Mapping[str, str]) -> int:
    """The outputs' size as GitHub counts it for its 1 MB limit: names and values in UTF-16."""
    return sum(len((name + value).encode("utf-16-le")) for name, value in outputs.items())


def command_line(emulator: Emulator, *args: str) -> list[str]:
    """`python -m halt_rollout` against the emulator (its tenant, client, Store and
    authority), then `args`; the secret comes from AZURE_CLIENT_SECRET."""
    return [
        sys.executable,
        "-m",
        "halt_rollout",
        *("--tenant-id", emulator.tenant_id, "--client-id", emulator.client_id),
        *("--store-api-url", emulator.url, "--authority-host", emulator.url),
        *args,
    ]


# The Store's refusal of a halt (409), as its ingestion service words it.
CONFLICT = {
    "code": "InvalidState",
    "message": "The submission is not in a state where its rollout can be halted",
}


# Proxies and sizes ----------------------------------------------------------------------

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy")
MIB = 1024 * 1024


def proxied(proxy: str, variable: str = "HTTPS_PROXY", **more: str | None) -> dict[str, str | None]:
    """The run's environment for one proxy setting, every other proxy variable unset."""
    env: dict[str, str | None] = dict.fromkeys(PROXY_VARIABLES)
    env[variable] = proxy
    env.update(more)
    return env


# Signalled runs (rule 10) --------------------------------------------------------------

# Rule 10's bound, from the signal to the process's end.
CANCEL_SECONDS = 2.0


@dataclass
class Running:
    """The entrypoint (or another command) running in a runner's environment."""

    process: subprocess.Popen[str]
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    readers: list[threading.Thread] = field(default_factory=list)

    def read(self) -> None:
        def pump(stream: object, into: list[str]) -> None:
            for line in stream:  # type: ignore[attr-defined]
                into.append(line)

        for stream, into in ((self.process.stdout, self.lines), (self.process.stderr, self.errors)):
            reader = threading.Thread(target=pump, args=(stream, into), daemon=True)
            reader.start()
            self.readers.append(reader)

    def wait_for(self, condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
        end = time.monotonic() + seconds
        while not condition():
            assert self.process.poll() is None, f"ended before {what}: {self.stdout}"
            assert time.monotonic() < end, f"no {what} within {seconds} s: {self.stdout}"
            time.sleep(0.02)

    def signal_and_time(self, number: int, pid: int | None = None) -> float:
        """Send `number`; the seconds until the process ended, less the time a loaded
        machine kept it from a CPU (see `seconds_to_end`)."""
        sent, queued = time.monotonic(), self.queued()
        os.kill(pid or self.process.pid, number)
        return self.seconds_to_end(sent, queued)

    def queued(self) -> tuple[float, float]:
        """This process's and the calling thread's run delay now (see `seconds_to_end`)."""
        return run_delay(self.process.pid), run_delay(os.getpid(), threading.get_native_id())

    def ends_within(self, seconds: float) -> bool:
        """Whether the process ends within `seconds` of wall time; not reaped, so that
        `seconds_to_end` can still read what it waited for a CPU."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                return True
            time.sleep(0.01)
        return False

    def seconds_to_end(self, since: float, queued: tuple[float, float] | None = None) -> float:
        """Wait for the process to end (killed after 30 s); the seconds from `since`, less
        what the kernel counted, from `queued` (this process's and the caller's run delay
        at `since`) on, as their time runnable but waiting for a CPU.

        Rule 10's 2 s is wall time on a runner with its CPUs free. Here CPU hogs may hold
        both the run and the test off the CPU for seconds; /proc's schedstat counts that
        wait (runnable, not running) apart from sleeping and blocking. So a run that hangs
        or sleeps past the bound still fails, and one that only waited its turn does not.
        The process's main thread is counted (the cancel ends there): a worker thread's
        wait is not subtracted, which errs towards failing."""
        timer = threading.Timer(30, self.process.kill)
        timer.start()
        try:
            # Not reaped yet (WNOWAIT): its schedstat is still there to read.
            os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOWAIT)
            took = time.monotonic() - since
            if queued is not None:
                theirs = run_delay(self.process.pid) - queued[0]
                ours = run_delay(os.getpid(), threading.get_native_id()) - queued[1]
                took = max(0.0, took - theirs - ours)
        finally:
            timer.cancel()
            self.process.wait()
        for reader in self.readers:
            reader.join(5)
        return took

    @property
    def stdout(self) -> str:
        return "".join(self.lines)

    @property
    def outputs(self) -> dict[str, str]:
        return parse_file_command(Path(self.env["GITHUB_OUTPUT"]).read_text(encoding="utf-8"))

    @property
    def summary(self) -> str:
        return Path(self.env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith("::error")]


def run_delay(pid: int, tid: int | None = None) -> float:
    """Seconds thread `tid` of `pid` (its main thread by default) has spent runnable but
    waiting for a CPU, by the kernel's count (/proc/<pid>/task/<tid>/schedstat: time on a
    CPU, time waiting on a run queue, in ns). 0 where the kernel does not count it."""
    try:
        fields = Path(f"/proc/{pid}/task/{tid or pid}/schedstat").read_text().split()
    except OSError:
        return 0.0
    return int(fields[1]) / 1e9


class QueueWatch(threading.Thread):
    """Samples how long a running process's threads have waited for a CPU, by the
    kernel's count, until the process ends: `seconds`, what a loaded machine added to its
    wall time. Sleeping, blocking and hanging are not counted, only waiting one's turn.
    It is the thread that waited longest's figure, never a sum (threads wait side by
    side), and the last few ms before the end may be missed: both err towards a longer
    run, never a shorter one.

    It also measures this test process's own lateness (`lag`): how much later than asked
    its 20 ms sleeps end, at most. A server thread of this process is as late to note when
    a request arrived, so a request it saw up to `lag` after a run's deadline may have
    been sent before it."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True, name=f"queue-watch-{pid}")
        self.pid = pid
        self.lag = 0.0
        self._seen: dict[str, float] = {}
        self._samples: list[tuple[float, float]] = []  # (monotonic, seconds by then)

    @property
    def seconds(self) -> float:
        return max(self._seen.values(), default=0.0)

    def seconds_after(self, moment: float) -> float:
        """What it waited for a CPU from `moment` (monotonic) on, to the last sample."""
        before = [total for when, total in self._samples if when <= moment]
        return self.seconds - (before[-1] if before else 0.0)

    def run(self) -> None:
        # os-level reads: a run of a thousand flights has a hundred threads, read 50 times
        # a second, in every worker at once (pathlib's cost here was seconds of CPU a run).
        tasks = f"/proc/{self.pid}/task"
        while True:
            try:
                tids = os.listdir(tasks)
                state = _read_proc(f"/proc/{self.pid}/stat").rsplit(b") ", 1)[1][:1]
            except OSError:
                return  # ended and reaped
            for tid in tids:
                try:
                    delay = int(_read_proc(f"{tasks}/{tid}/schedstat").split()[1]) / 1e9
                except (OSError, IndexError, ValueError):
                    continue  # the thread ended meanwhile
                if delay > self._seen.get(tid, 0.0):
                    self._seen[tid] = delay
            self._samples.append((time.monotonic(), self.seconds))
            if state == b"Z":
                return  # ended: nothing more to count
            asleep = time.monotonic()
            time.sleep(0.02)
            self.lag = max(self.lag, time.monotonic() - asleep - 0.02)


def _read_proc(path: str) -> bytes:
    """A /proc file's content, in one read (they are small and made on each read)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def spawn(env: dict[str, str], command: list[str] | None = None) -> Running:
    """The entrypoint (or `command`) started in `env` from its workspace, its output read."""
    process = subprocess.Popen(
        command or [sys.executable, str(ENTRYPOINT)],
        env=env,
        cwd=env["GITHUB_WORKSPACE"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = Running(process, env)
    running.read()
    return running


@pytest.fixture
def start(emulator: Emulator, tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def run(
        inputs: dict[str, str] | None = None,
        *,
        command: list[str] | None = None,
        files: dict[str, str] | None = None,
        extra: dict[str, str] | None = None,
    ) -> Running:
        workdir = tmp_path / f"run{len(started)}"
        env = runner_environment(
            {**base_inputs(emulator), **(inputs or {})},
            workdir,
            extra={"REQUESTS_CA_BUNDLE": emulator.ca_path, **(extra or {})},
        )
        for relative, content in (files or {}).items():
            (Path(env["GITHUB_WORKSPACE"]) / relative).write_text(content, encoding="utf-8")
        running = spawn(env, command)
        started.append(running)
        return running

    yield run
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()


def halt_held_back(emulator: Emulator) -> None:
    """The Store takes the halt and holds its answer back (the halt took effect)."""
    emulator.add_fault(Fault(method="POST", path=HALT, kind="hang_after", seconds=60, times=None))


def requests_after(emulator: Emulator, moment: float) -> list[str]:
    return [f"{r.method} {r.path}" for r in emulator.requests if r.started > moment]


def running_traceback_free(running: Running) -> bool:
    text = running.stdout + "".join(running.errors)
    return "Traceback" not in text and "crashed" not in text


def cancel_errors(running: Running) -> list[str]:
    return [e for e in running.error_lines if e.startswith("::error title=Run cancelled::")]


def records(run: ActionRun | Running) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = json.loads(run.outputs["results"])
    return result


def assert_no_upload_url(emu: Emulator, text: str) -> None:
    for form in (emu.upload_signature, quote(emu.upload_signature, safe=""), "sig="):
        assert form not in text
    assert "blob.core.windows.net" not in text.lower()


def log_lines(run: ActionRun) -> list[str]:
    return [line for line in run.stdout.splitlines() if not line.startswith("::add-mask::")]


def halt_in_flight(
    emulator: Emulator, start: Callable[..., Running], *args: Any, **kwargs: Any
) -> Running:
    """A run started, its halt sent and its answer held back: the moment to cancel it."""
    halt_held_back(emulator)
    running = start(*args, **kwargs)
    running.wait_for(lambda: bool(emulator.halt_requests), "halt request")
    return running


def answers_always(emu: Emulator, method: str, path: str, status: int, body: Any) -> None:
    """From now on, every `method` request to `path` gets `status` with `body`."""
    emu.add_fault(Fault(method=method, path=path, status=status, times=None, body=body))


def rollout_not_started(emu: Emulator) -> None:
    """The published rollout reads not started, one of the states the Store's 409 to a
    halt names. A refusal then stands at the first read (docs/reliability.md, row 5),
    where an in-progress rollout's is watched for 20 s in case another responder's halt
    is under way (row 4, proved in test_result_truth.py): for the tests of what a
    refusal shows, not of when it is believed."""
    emu.set_rollout(APP_ID, PUBLISHED, status="PackageRolloutNotStarted", percentage=0.0)


def refuses_every_halt(
    emu: Emulator, body: Any, *, headers: Mapping[str, str] | None = None
) -> None:
    """The Store answers every halt with a 409 carrying `body` (and `headers`), and the
    refusal stands at the first read (rollout_not_started)."""
    rollout_not_started(emu)
    fault = Fault(method="POST", path=HALT, status=409, times=None, body=body)
    fault.headers.update(headers or {})
    emu.add_fault(fault)
