"""Issue 7, the attack: the contract's promises against a hostile world.

Each test is one attack from the adversarial review (docs/reliability.md, "Hostile
world") and asserts the promise of docs/contract.md it is about; each failed on
the main of 5563a03 where that promise was broken, or holds one it kept. The action
always runs as GitHub's runner runs it (`entrypoint.py` in a subprocess,
`store_emulator.actions_runner`).

Where the emulator cannot misbehave enough, `HostileServer` stands in front of it:
a loopback TLS server with its own trustme CA that forwards requests to the
emulator (so the Store's state and its request records stay real) and, for the
requests an attack picks, writes whatever bytes the attack wants, as slowly as it
wants. The run then trusts both CAs through REQUESTS_CA_BUNDLE.

Deadline figures: a run's overrun is its wall time minus timeout-seconds. The run's
deadline starts inside the subprocess when the package begins to load, before it logs
how many targets it works on; the test notes when that line arrives, so a request any
server saw more than timeout-seconds after it was certainly sent after the deadline.
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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import trustme

from store_emulator import Emulator, Fault
from store_emulator.actions_runner import (
    ENTRYPOINT,
    ActionRun,
    parse_file_command,
    run_action,
    runner_environment,
)
from store_emulator.responses import Response

from .conftest import (
    APP_ID,
    CONTRACT_TARGETS,
    FALLBACK,
    FLIGHT_ID,
    OTHER_APP,
    OTHER_SUBMISSION,
    PUBLISHED,
    base_inputs,
    visible_text,
)

HALT = r"/haltpackagerollout$"
ROLLOUT = r"/packagerollout$"
APP = rf"^/v1\.0/my/applications/{APP_ID}$"
# What a subprocess run costs besides its deadline: interpreter start, imports,
# writing the outputs. A whole run takes 0.3-0.9 s here; a run that ends later overran.
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


class HostileServer:
    """A loopback HTTPS server whose handler decides, per request, what goes on the wire."""

    def __init__(self, ca: trustme.CA, upstream: Emulator, handler: Handler) -> None:
        self.handler = handler
        self.upstream = upstream
        self.stopping = threading.Event()
        self.requests: list[Incoming] = []
        self._lock = threading.Lock()
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(self._context)
        self._upstream_context = ssl.create_default_context(cafile=upstream.ca_path)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._connections: set[socket.socket] = set()
        self.url = f"https://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True, name="hostile-accept").start()

    def close(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(connection, socket.SHUT_RDWR)

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

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        with self._lock:
            self._connections.add(raw)
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
            with self._lock:
                self._connections.discard(raw)
            with contextlib.suppress(OSError):
                raw.close()

    @staticmethod
    def _read(connection: ssl.SSLSocket) -> Incoming | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                return None
            data += chunk
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
        for key, value in (inputs or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
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
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, str(ENTRYPOINT)],
            env=env,
            cwd=env["GITHUB_WORKSPACE"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
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

        readers = [threading.Thread(target=f, daemon=True) for f in (read_stdout, read_stderr)]
        for reader in readers:
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
        seconds = time.monotonic() - started
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
        bound = start + timeout
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
    """The Markdown with code spans (`…`) removed: what is in them is shown as typed."""
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", markdown)


_LIVE = (
    (r"(?<!\\)\]\(", "an inline link or image `](`"),
    (r"(?<!\\)!\[", "an image `![`"),
    (r"<[A-Za-z/!?]", "raw HTML or an autolink `<`"),
    (r"(?i)\b(?:https?|ftp)://", "a bare URL (GFM autolink)"),
    (r"(?i)\bwww\.[a-z0-9-]", "a bare www. link (GFM autolink)"),
)


def live_markdown(summary: str) -> list[str]:
    """What in the summary GitHub would render live: links, images, HTML, autolinks."""
    text = outside_code(summary)
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


# 0. The harness itself --------------------------------------------------------------------


def test_control_run_through_the_hostile_server_halts(world: World) -> None:
    """Forwarding alone changes nothing: sign-in and the Store through the hostile server."""
    server = world.hostile(forward_everything)
    run = world.run(store=server, authority=server)
    assert run.exit_code == 0, describe(run)
    assert run.outputs["result"] == "halted"
    assert any(r.path.endswith("/haltpackagerollout") for r in server.requests)
    print(f"control run: {run.seconds:.2f} s")


# 1. The deadline is absolute (rule 7a) ----------------------------------------------------

DEADLINE = 3.0
# How long a hostile answer keeps the connection busy: long enough that an overrun is
# plain, short enough that the test ends.
HOSTILE_SECONDS = float(os.environ.get("HOSTILE_SECONDS", "20"))


def _on_app_read(attack: Callable[[Incoming, Wire], None]) -> Handler:
    """Forward everything but the read of the app, which `attack` answers."""

    def handler(req: Incoming, wire: Wire) -> None:
        if req.method == "GET" and re.search(APP, req.path):
            attack(req, wire)
        else:
            forward_everything(req, wire)

    return handler


def trickle_headers(req: Incoming, wire: Wire) -> None:
    answer = wire.forward(req)
    until = time.monotonic() + HOSTILE_SECONDS
    head = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 1000
    rest = wire.trickle(head, every=0.2, until=until)
    wire.send(rest + b"\r\n" + answer.raw().split(b"\r\n", 1)[1])


def trickle_body(req: Incoming, wire: Wire) -> None:
    answer = wire.forward(req)
    raw = answer.raw(body=answer.body + b" " * 1000)  # JSON allows trailing whitespace
    head, _, body = raw.partition(b"\r\n\r\n")
    wire.send(head + b"\r\n\r\n")
    rest = wire.trickle(body, every=0.2, until=time.monotonic() + HOSTILE_SECONDS)
    wire.send(rest)


def endless_body(req: Incoming, wire: Wire) -> None:
    """A chunked body that does not end (for HOSTILE_SECONDS), 1 MB a second."""
    wire.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    chunk = b" " * 100_000
    until = time.monotonic() + HOSTILE_SECONDS
    while time.monotonic() < until and not wire.stopping.is_set():
        wire.send(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        wire.stopping.wait(0.1)
    wire.send(b"0\r\n\r\n")


def huge_body(req: Incoming, wire: Wire) -> None:
    """The real answer, padded to 300 MB with whitespace (valid JSON still), at 25 MB/s."""
    answer = wire.forward(req)
    blocks = 300
    head = raw_response(200, answer.headers, b"").replace(
        b"Content-Length: 0", b"Content-Length: %d" % (len(answer.body) + blocks * 2**20)
    )
    wire.send(head + answer.body)
    block = b" " * 2**20
    for _ in range(blocks):
        if wire.stopping.wait(0.04):
            return
        wire.send(block)


def slow_answer(req: Incoming, wire: Wire) -> None:
    """The field's 16-second GET of an app, longer than the whole deadline."""
    wire.stopping.wait(16.0)
    forward_everything(req, wire)


@pytest.mark.parametrize(
    "attack",
    [trickle_headers, trickle_body, endless_body, huge_body, slow_answer],
    ids=[
        "headers trickled a byte at a time",
        "body trickled a byte at a time",
        "endless chunked body",
        "300 MB body at 25 MB/s",
        "16 s answer to the app read",
    ],
)
def test_store_answer_cannot_outlive_the_deadline(
    world: World, attack: Callable[[Incoming, Wire], None]
) -> None:
    server = world.hostile(_on_app_read(attack))
    run = world.run({"timeout-seconds": f"{DEADLINE:g}"}, store=server)
    late = world.sent_after_deadline(DEADLINE)
    print(f"{attack.__name__}: {describe(run, DEADLINE)}; late requests: {late}")
    assert run.seconds <= DEADLINE + STARTUP_SLACK, describe(run, DEADLINE)
    assert late == [], late
    # Outputs and the summary are written, whatever the outcome.
    assert run.outputs["result"] in ("halted", "failed")
    assert run.summary.startswith("## ")


def many_apps(emu: Emulator, count: int) -> str:
    """`count` apps, each with a rollout in progress; returns the targets file naming them."""
    lines = ["targets:"]
    for number in range(count):
        app, submission = f"9NAPP{number:07d}", f"11529215046{number:08d}"
        emu.add_app(app, last_published=submission)
        emu.set_rollout(app, submission)
        lines.append(f"  - app-id: {app}")
    return "\n".join(lines) + "\n"


# Current main runs a minute or more here, beyond the suite's 120 s on a loaded machine.
@pytest.mark.timeout(400)
def test_many_targets_against_a_slow_store_keep_the_deadline(world: World) -> None:
    """100 targets (the most a file may hold); every Store answer takes 0.9 s."""

    def slow(req: Incoming, wire: Wire) -> None:
        wire.stopping.wait(0.9)
        forward_everything(req, wire)

    server = world.hostile(slow)
    timeout = 5.0
    run = world.run(
        {"app-id": None, "targets": "targets.yml", "timeout-seconds": f"{timeout:g}"},
        store=server,
        files={"targets.yml": many_apps(world.emulator, 100)},
        timeout=300,
    )
    late = world.sent_after_deadline(timeout)
    halted = sum(r["result"] == "halted" for r in results_of(run))
    print(
        f"100 slow targets: {describe(run, timeout)}; {len(late)} requests after the "
        f"deadline, {halted} halted; first late: {late[:1]}"
    )
    assert run.seconds <= timeout + STARTUP_SLACK, describe(run, timeout)
    assert late == [], f"{len(late)} requests after the deadline, e.g. {late[:3]}"
    assert len(results_of(run)) == 100


def _targets_run(world: World, path: str, timeout: float, harness: float) -> ActionRun | str:
    """A targets run, or what was left of it when the harness had to kill it."""
    try:
        return world.run(
            {"app-id": None, "targets": path, "timeout-seconds": f"{timeout:g}"}, timeout=harness
        )
    except Exception as error:  # subprocess.TimeoutExpired: the run never ended
        workdir = world.workdir / f"run{world.runs - 1}"
        outputs = (workdir / "set_output").read_text()
        summary = (workdir / "step_summary").read_text()
        return (
            f"{type(error).__name__}: no exit after {harness:g} s (killed); "
            f"outputs written: {bool(outputs)}, summary written: {bool(summary)}"
        )


def test_named_pipe_as_the_targets_file_keeps_the_deadline(world: World) -> None:
    """A FIFO that no one writes to: open() blocks until a writer comes."""
    os.mkfifo(world.next_workspace() / "targets.yml")
    run = _targets_run(world, "targets.yml", DEADLINE, harness=DEADLINE + 12)
    print(f"fifo: {run if isinstance(run, str) else describe(run, DEADLINE)}")
    assert not isinstance(run, str), run
    assert run.seconds <= DEADLINE + STARTUP_SLACK, describe(run, DEADLINE)
    assert run.exit_code == 1
    assert run.outputs["result"] == "failed"
    assert run.summary


def test_named_pipe_trickled_by_a_writer_keeps_the_deadline(world: World) -> None:
    """A FIFO whose writer sends a valid targets file a byte every 0.2 s."""
    fifo = world.next_workspace() / "targets.yml"
    os.mkfifo(fifo)
    content = f"targets:\n  - app-id: {APP_ID}\n".encode() + b"#" * 100 + b"\n"
    stop = threading.Event()

    def writer() -> None:
        with fifo.open("wb", buffering=0) as pipe:
            for byte in content:
                if stop.wait(0.2):
                    return
                with contextlib.suppress(BrokenPipeError):
                    pipe.write(bytes([byte]))

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        run = _targets_run(world, "targets.yml", DEADLINE, harness=120)
    finally:
        stop.set()
    print(f"trickled fifo: {run if isinstance(run, str) else describe(run, DEADLINE)}")
    assert not isinstance(run, str), run
    assert run.seconds <= DEADLINE + STARTUP_SLACK, describe(run, DEADLINE)
    assert world.sent_after_deadline(DEADLINE) == []


@pytest.mark.parametrize("kind", ["symlink to /dev/zero", "2 GB sparse file"])
def test_endless_or_huge_targets_file_is_refused_in_time(world: World, kind: str) -> None:
    workspace = world.next_workspace()
    if kind.startswith("symlink"):
        (workspace / "targets.yml").symlink_to("/dev/zero")
    else:
        with (workspace / "targets.yml").open("wb") as big:
            big.truncate(2 * 1024**3)
    run = _targets_run(world, "targets.yml", DEADLINE, harness=60)
    print(f"{kind}: {run if isinstance(run, str) else describe(run, DEADLINE)}")
    assert not isinstance(run, str), run
    assert run.seconds <= DEADLINE + STARTUP_SLACK
    assert run.exit_code == 1
    assert len(run.errors) == 1
    assert world.emulator.requests == []
    assert traceback_free(run)


# Current main runs a minute or more here, beyond the suite's 120 s on a loaded machine.
@pytest.mark.timeout(400)
def test_pathological_html_error_page_cannot_outlive_the_deadline(world: World) -> None:
    """A 503 whose HTML page opens <title> 20,000 times and never closes it (140 kB):
    the <title> regular expression backtracks quadratically."""
    world.emulator.add_fault(
        Fault(method="GET", path=APP, status=503, times=None, body="<title>" * 20_000)
    )
    run = world.run({"timeout-seconds": f"{DEADLINE:g}"}, timeout=350)
    print(f"html title regex: {describe(run, DEADLINE)}")
    assert run.seconds <= DEADLINE + STARTUP_SLACK, describe(run, DEADLINE)
    assert run.exit_code == 1


# Current main runs a minute or more here, beyond the suite's 120 s on a loaded machine.
@pytest.mark.timeout(400)
def test_pathological_entra_message_cannot_outlive_the_deadline(world: World) -> None:
    """Entra refuses with an AADSTS message holding a 40,000-space run: the AADSTS
    regular expression's lookahead rescans it at every position."""

    def entra(req: Incoming, wire: Wire) -> None:
        if req.path.endswith("/oauth2/v2.0/token"):
            description = "AADSTS7000215: Invalid client secret." + " " * 40_000 + "x"
            wire.send(
                json_answer(400, {"error": "invalid_client", "error_description": description})
            )
        else:
            forward_everything(req, wire)

    server = world.hostile(entra)
    run = world.run({"timeout-seconds": f"{DEADLINE:g}"}, authority=server, timeout=350)
    print(f"aadsts regex: {describe(run, DEADLINE)}")
    assert run.seconds <= DEADLINE + STARTUP_SLACK, describe(run, DEADLINE)
    assert run.exit_code == 1
    assert traceback_free(run)


# 2. No crash, and one target's defect never costs the others (rule 9) --------------------

DEEP_JSON = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("status", "where"),
    [(200, "rollout read"), (503, "rollout read error body"), (200, "halt answer")],
)
def test_deeply_nested_json_from_the_store_is_not_a_crash(
    world: World, status: int, where: str
) -> None:
    method, path = ("POST", HALT) if where == "halt answer" else ("GET", ROLLOUT)
    world.emulator.add_fault(Fault(method=method, path=path, status=status, body=DEEP_JSON))
    run = world.run({"timeout-seconds": "5"})
    print(f"deep JSON, {status} {where}: {describe(run)}")
    assert traceback_free(run), run.stdout[-800:]
    assert results_of(run) != []


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


def test_deeply_nested_json_answer_to_a_halt_that_took_effect(world: World) -> None:
    world.emulator.add_fault(
        AppliedFault(
            world.emulator, APP_ID, PUBLISHED, method="POST", path=HALT, status=200, body=DEEP_JSON
        )
    )
    run = world.run({"timeout-seconds": "5"})
    stopped = world.emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"]
    print(f"deep JSON after the halt took effect: {describe(run)}; Store: {stopped}")
    assert traceback_free(run), run.stdout[-600:]
    assert stopped == "PackageRolloutStopped"
    assert run.outputs["result"] == "halted"


CONTRACT_TARGETS_FILE = CONTRACT_TARGETS


@pytest.mark.parametrize(
    "defect",
    ["deeply nested JSON", "Retry-After: 1e400"],
)
def test_one_targets_defect_never_costs_the_others_their_results(world: World, defect: str) -> None:
    path = rf"/applications/{OTHER_APP}/submissions/{OTHER_SUBMISSION}/packagerollout$"
    if defect == "deeply nested JSON":
        fault = Fault(method="GET", path=path, status=200, body=DEEP_JSON)
    else:
        fault = Fault(method="GET", path=path, status=429, headers={"Retry-After": "1e400"})
    world.emulator.add_fault(fault)
    run = world.run(
        {"app-id": None, "targets": "targets.yml", "timeout-seconds": "10"},
        files={"targets.yml": CONTRACT_TARGETS_FILE},
    )
    records = results_of(run)
    halted_in_store = [
        world.emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"],
        world.emulator.rollout(APP_ID, PUBLISHED, FLIGHT_ID)["packageRolloutStatus"],
    ]
    print(
        f"one target's {defect}: {describe(run)}; results: {len(records)}; the two others "
        f"in the Store: {halted_in_store}"
    )
    assert traceback_free(run), run.stdout[-600:]
    assert [r["result"] for r in records] == ["halted", "halted", "failed"]
    assert "Contoso Desktop" in run.summary


RETRY_AFTERS = [
    ("1e400", None),  # a float that overflows to infinity
    ("inf", None),
    ("1e308", None),
    ("99999999999999999999", None),
    ("Fri, 31 Dec 9999 23:59:59 GMT", None),  # year 9999
    ("Sat, 31 Dec 99999 23:59:59 GMT", None),  # beyond what datetime holds
    ("-1", 1),  # a wait in the past: try again at once
    ("nan", 1),  # not a number: as if none was sent
]


@pytest.mark.parametrize(("retry_after", "times"), RETRY_AFTERS, ids=[r for r, _ in RETRY_AFTERS])
def test_any_retry_after_from_the_store_is_not_a_crash(
    world: World, retry_after: str, times: int | None
) -> None:
    world.emulator.add_fault(
        Fault(method="GET", path=APP, status=429, times=times, headers={"Retry-After": retry_after})
    )
    run = world.run({"timeout-seconds": f"{DEADLINE:g}"})
    print(f"Retry-After {retry_after}: {describe(run, DEADLINE)}")
    assert traceback_free(run), run.errors
    assert run.seconds <= DEADLINE + STARTUP_SLACK
    if times is None:
        assert run.exit_code == 1
        assert len(run.errors) == 1
        assert "timeout-seconds" in run.errors[0]
    else:
        assert run.outputs["result"] == "halted", describe(run)


def test_endless_wait_in_the_gateways_message_is_not_a_crash(world: World) -> None:
    """No Retry-After, but 'Try again in <250 digits> seconds.' in the message (more
    digits would not survive the 300-character cap on messages)."""
    message = f"Rate limit is exceeded. Try again in {'9' * 250} seconds."
    world.emulator.add_fault(
        Fault(
            method="GET",
            path=APP,
            status=429,
            times=None,
            body={"statusCode": 429, "message": message},
        )
    )
    run = world.run({"timeout-seconds": f"{DEADLINE:g}"})
    print(f"Try again in 9x250 seconds: {describe(run, DEADLINE)}")
    assert traceback_free(run), run.errors
    assert run.exit_code == 1
    assert len(run.errors) == 1


def test_any_retry_after_from_entra_is_not_a_crash(world: World) -> None:
    def entra(req: Incoming, wire: Wire) -> None:
        if req.path.endswith("/oauth2/v2.0/token"):
            body = {
                "error": "temporarily_unavailable",
                "error_description": "AADSTS90033: A transient error has occurred.",
            }
            wire.send(json_answer(429, body, extra=(("Retry-After", "1e400"),)))
        else:
            forward_everything(req, wire)

    server = world.hostile(entra)
    run = world.run({"timeout-seconds": f"{DEADLINE:g}"}, authority=server)
    print(f"Entra Retry-After 1e400: {describe(run, DEADLINE)}")
    assert traceback_free(run), run.errors
    assert run.exit_code == 1
    assert len(run.errors) == 1


@pytest.mark.parametrize("timeout", ["1e308", "1e20", "99999999999"])
def test_huge_timeout_seconds_is_not_a_crash(world: World, timeout: str) -> None:
    run = world.run({"timeout-seconds": timeout})
    print(f"timeout-seconds {timeout}: {describe(run)}")
    assert traceback_free(run), run.errors
    assert run.outputs.get("result") == "halted", describe(run)


@pytest.mark.parametrize("timeout", ["0.000001", "5e-324"])
def test_tiny_timeout_seconds_sends_nothing_after_the_deadline(world: World, timeout: str) -> None:
    run = world.run({"timeout-seconds": timeout})
    store = world.emulator.store_requests
    print(
        f"timeout-seconds {timeout}: {describe(run)}; {len(world.emulator.requests)} requests "
        f"({len(store)} to the Store, {len(world.emulator.halt_requests)} halts)"
    )
    assert traceback_free(run)
    assert store == [], [f"{r.method} {r.path}" for r in store]
    assert run.exit_code == 1
    assert run.outputs["result"] == "failed"


# 3. The truth of the result (rules 5 and 6) ------------------------------------------------


class SlowReadFault(Fault):
    """Answers the rollout read as the Store would (in progress), but only after a pause:
    enough for two halts in flight to both read the rollout before either lands."""

    def response(self) -> Response:
        time.sleep(0.7)
        return super().response()


def slow_reads(times: int) -> SlowReadFault:
    return SlowReadFault(method="GET", path=ROLLOUT, status=200, body=IN_PROGRESS, times=times)


def test_halt_answered_200_still_in_progress_is_not_reported_halted(world: World) -> None:
    world.emulator.add_fault(Fault(method="POST", path=HALT, status=200, body=IN_PROGRESS))
    run = world.run({"timeout-seconds": "10"})
    halts = len(world.emulator.halt_requests)
    stopped = world.emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"]
    print(
        f"200 InProgress to the halt: {describe(run)}; status output {run.outputs.get('status')!r}"
        f"; halts sent: {halts}; Store: {stopped}"
    )
    if run.outputs["result"] == "halted":
        assert run.outputs["status"] == "PackageRolloutStopped", describe(run)
        assert stopped == "PackageRolloutStopped"


def _conflict(submission: str) -> dict[str, Any]:
    return {
        "code": "InvalidState",
        "data": [],
        "details": [],
        "message": f"The package rollout of submission {submission} cannot be halted: its status "
        "is PackageRolloutStopped.",
        "source": "Ingestion Api",
        "target": "submission",
    }


def test_409_because_a_rival_halted_first_is_already_halted(world: World) -> None:
    """Between our read and our halt, another responder halted it: the Store says 409."""
    world.emulator.add_fault(
        AppliedFault(
            world.emulator,
            APP_ID,
            PUBLISHED,
            method="POST",
            path=HALT,
            status=409,
            body=_conflict(PUBLISHED),
        )
    )
    run = world.run()
    reads = [r for r in world.emulator.store_requests if r.path.endswith("/packagerollout")]
    print(f"409 after a rival's halt: {describe(run)}; rollout reads: {len(reads)}")
    assert run.exit_code == 0, describe(run)
    assert run.outputs["result"] == "already-halted"
    assert len(reads) == 2  # before the halt, and after its 409
    assert "meanwhile" in run.stdout or "someone" in run.stdout or "another" in run.stdout


def test_two_runs_at_once_both_end_well(world: World) -> None:
    """Two responders press the button at once, against one Store."""
    world.emulator.add_fault(slow_reads(times=2))
    inputs = world.inputs()
    extra = {"REQUESTS_CA_BUNDLE": world.bundle}
    workdirs = [world.workdir / "rival-a", world.workdir / "rival-b"]
    for workdir in workdirs:
        workdir.mkdir()
    outcome: list[ActionRun] = []
    threads = [
        threading.Thread(
            target=lambda w=w: outcome.append(run_action(inputs, extra_env=extra, workdir=w))
        )
        for w in workdirs
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    halts = len(world.emulator.halt_requests)
    print(
        "two runs at once: "
        + "; ".join(describe(run) for run in outcome)
        + f"; halts sent: {halts}"
    )
    assert sorted(run.outputs["result"] for run in outcome) == ["already-halted", "halted"]
    assert [run.exit_code for run in outcome] == [0, 0]


def test_same_submission_twice_in_one_targets_run(world: World) -> None:
    """The app (resolved to its last published submission) and that submission by ID."""
    world.emulator.add_fault(slow_reads(times=2))
    targets = f"""\
targets:
  - name: by app
    app-id: {APP_ID}
  - name: by submission
    app-id: {APP_ID}
    submission-id: "{PUBLISHED}"
"""
    run = world.run({"app-id": None, "targets": "targets.yml"}, files={"targets.yml": targets})
    results = [r["result"] for r in results_of(run)]
    print(f"same submission twice: {describe(run)}; results {results}")
    assert world.emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == (
        "PackageRolloutStopped"
    )
    assert "failed" not in results, describe(run)
    assert run.exit_code == 0


def test_gateway_504_that_hid_a_halt_is_reported_halted(world: World) -> None:
    world.emulator.add_fault(
        AppliedFault(
            world.emulator,
            APP_ID,
            PUBLISHED,
            method="POST",
            path=HALT,
            status=504,
            body={"statusCode": 504, "message": "Gateway Timeout"},
        )
    )
    run = world.run({"timeout-seconds": "10"})
    print(
        f"504 after the halt took effect: {describe(run)}; halts: "
        f"{len(world.emulator.halt_requests)}"
    )
    assert run.exit_code == 0, describe(run)
    assert run.outputs["result"] == "halted"
    assert len(world.emulator.halt_requests) == 1


class ReadUntilFault(Fault):
    """Answers the rollout read (in progress) only when `until()` (monotonic) has come."""

    def __init__(self, until: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._until = until

    def response(self) -> Response:
        time.sleep(max(0.0, self._until() - time.monotonic()))
        return super().response()


def test_final_check_of_a_lost_halt_is_not_sent_after_the_deadline(world: World) -> None:
    """The read before the halt is answered late, with under two seconds of the deadline
    left; the halt then takes effect and its answer never comes. The contract wants the
    halt confirmed (rule 7) and nothing sent after the deadline (rule 7a): both fit only
    if the halt's wait leaves time for the check. (With less time left than twice that
    reserve, the halt is sent without one: sending it comes first.)"""

    def shortly_before_the_deadline() -> float:
        assert world.deadline_started is not None
        return world.deadline_started + DEADLINE - 1.8

    world.emulator.add_fault(
        ReadUntilFault(
            shortly_before_the_deadline, method="GET", path=ROLLOUT, status=200, body=IN_PROGRESS
        )
    )
    world.emulator.add_fault(Fault(method="POST", path=HALT, kind="hang_after", seconds=30))
    run = world.run({"timeout-seconds": f"{DEADLINE:g}"})
    late = world.sent_after_deadline(DEADLINE)
    print(f"lost halt, final check: {describe(run, DEADLINE)}; late: {late}")
    assert late == [], late
    assert run.seconds <= DEADLINE + STARTUP_SLACK
    assert run.outputs["result"] == "halted"
    assert world.emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == (
        "PackageRolloutStopped"
    )


def test_all_flights_halts_the_flights_too(world: World) -> None:
    """CONTRACT v1.1 "The whole app": `all-flights: true` halts the app's rollout and each
    flight's. The runner passes the input as INPUT_ALL-FLIGHTS whatever action.yml says."""
    run = world.run(env={"INPUT_ALL-FLIGHTS": "true"})
    flight = world.emulator.rollout(APP_ID, PUBLISHED, FLIGHT_ID)["packageRolloutStatus"]
    print(f"all-flights: {describe(run)}; results {len(results_of(run))}; flight: {flight}")
    assert flight == "PackageRolloutStopped", describe(run)
    assert len(results_of(run)) == 2


# 4. Hostile targets files (the targets-file rules, rule 9) --------------------------------


def _refused_before_any_request(run: ActionRun, world: World) -> None:
    assert traceback_free(run), run.stdout[-600:]
    assert run.exit_code == 1, describe(run)
    assert len(run.errors) == 1, run.errors
    assert world.emulator.requests == [], [r.path for r in world.emulator.requests]
    assert run.outputs["result"] == "failed"


def _targets(world: World, content: str | bytes, **inputs: str) -> ActionRun:
    path = world.next_workspace() / "targets.yml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return world.run({"app-id": None, "targets": "targets.yml", **inputs}, timeout=120)


def test_deeply_nested_targets_file_is_refused_not_a_crash(world: World) -> None:
    run = _targets(world, "targets: " + "[" * 20_000 + "]" * 20_000 + "\n")
    print(f"deep YAML: {describe(run)}")
    _refused_before_any_request(run, world)


def test_targets_file_with_more_than_100_targets_is_refused(world: World) -> None:
    entries = "".join(
        f'  - app-id: {APP_ID}\n    submission-id: "{number}"\n' for number in range(101)
    )
    run = _targets(world, "targets:\n" + entries, **{"timeout-seconds": "5"})
    print(f"101 targets: {describe(run, 5)}; {len(world.emulator.store_requests)} Store requests")
    _refused_before_any_request(run, world)
    assert "100" in run.errors[0]


def test_summary_stays_under_1_mib_with_aliased_long_names(world: World) -> None:
    """Billion laughs, the kind that works on strings: one 100 kB name, 100 aliases to it."""
    big = "N" * 100_000
    entries = "".join(
        f'  - name: *big\n    app-id: {APP_ID}\n    submission-id: "{number}"\n'
        for number in range(1, 100)
    )
    # The anchor sits on the first entry: a top-level key would be refused as unknown.
    content = (
        f'targets:\n  - name: &big {big}\n    app-id: {APP_ID}\n    submission-id: "0"\n' + entries
    )
    run = _targets(world, content, **{"timeout-seconds": "10"})
    size = len(run.summary.encode())
    print(
        f"aliased names: file {len(content.encode())} bytes; {describe(run)}; summary "
        f"{size} bytes, stdout {len(run.stdout)} bytes"
    )
    assert traceback_free(run)
    assert size < 1024 * 1024, f"summary is {size} bytes"


YAML_11_IDS = [
    ("submission-id", "0123", "83"),
    ("submission-id", "0x1F", "31"),
    ("submission-id", "1:20", "80"),
    ("submission-id", "1_000", "1000"),
    ("submission-id", "+12", "12"),
    ("submission-id", "0b11", "3"),
    ("app-id", "0x1F", "31"),
]


@pytest.mark.parametrize(
    ("key", "written", "read"), YAML_11_IDS, ids=[f"{k}: {w}" for k, w, _ in YAML_11_IDS]
)
def test_yaml_11_reading_of_an_id_is_refused_with_quote_it(
    world: World, key: str, written: str, read: str
) -> None:
    entry = {"app-id": APP_ID, key: written}
    content = "targets:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in entry.items()) + "\n"
    run = _targets(world, content)
    sent = [f"{r.method} {r.path}" for r in world.emulator.store_requests]
    print(f"{key}: {written} (YAML 1.1: {read}): {describe(run)}; sent {sent}")
    _refused_before_any_request(run, world)
    assert "quote" in run.errors[0].lower()


@pytest.mark.parametrize(
    "written", ["0o17", ".inf", "12.0", "1e3", "yes", "~"], ids=lambda w: f"submission-id: {w}"
)
def test_other_odd_submission_ids_are_refused(world: World, written: str) -> None:
    run = _targets(world, f"targets:\n  - app-id: {APP_ID}\n    submission-id: {written}\n")
    print(f"submission-id: {written}: {describe(run)}")
    if written == "~":  # null: as if the key were absent, the last published one is used
        assert run.outputs["result"] == "halted", describe(run)
        return
    _refused_before_any_request(run, world)


DUPLICATES = {
    "duplicate app-id in an entry": (f"targets:\n  - app-id: {OTHER_APP}\n    app-id: {APP_ID}\n"),
    "duplicate targets key": (
        f"targets:\n  - app-id: {OTHER_APP}\ntargets:\n  - app-id: {APP_ID}\n"
    ),
    "duplicate submission-id": (
        f'targets:\n  - app-id: {APP_ID}\n    submission-id: "{OTHER_SUBMISSION}"\n'
        f'    submission-id: "{PUBLISHED}"\n'
    ),
}


@pytest.mark.parametrize("content", list(DUPLICATES.values()), ids=list(DUPLICATES))
def test_duplicate_keys_are_refused(world: World, content: str) -> None:
    run = _targets(world, content)
    sent = [f"{r.method} {r.path}" for r in world.emulator.halt_requests]
    print(f"duplicate keys: {describe(run)}; halts sent: {sent}")
    _refused_before_any_request(run, world)
    assert "duplicate" in run.errors[0].lower()


REFUSED_FILES: dict[str, bytes] = {
    "two YAML documents": f"targets:\n  - app-id: {APP_ID}\n---\ntargets: []\n".encode(),
    "tab indentation": f"targets:\n\t- app-id: {APP_ID}\n".encode(),
    "not UTF-8 (Latin-1 name)": f"targets:\n  - name: Caf\xe9\n    app-id: {APP_ID}\n".encode(
        "latin-1"
    ),
    "NUL byte": f"targets:\n  - app-id: {APP_ID}\x00\n".encode(),
    "aliases of lists (billion laughs)": (
        b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        b"targets: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
    ),
}


@pytest.mark.parametrize("content", list(REFUSED_FILES.values()), ids=list(REFUSED_FILES))
def test_malformed_targets_file_is_refused_cleanly(world: World, content: bytes) -> None:
    run = _targets(world, content)
    print(f"malformed file: {describe(run)}")
    _refused_before_any_request(run, world)


ACCEPTED_FILES: dict[str, bytes] = {
    "UTF-8 BOM": b"\xef\xbb\xbf" + f"targets:\n  - app-id: {APP_ID}\n".encode(),
    "CRLF line ends": f"targets:\r\n  - app-id: {APP_ID}\r\n".encode(),
    "UTF-16 with BOM": f"targets:\n  - app-id: {APP_ID}\n".encode("utf-16"),
}


@pytest.mark.parametrize("content", list(ACCEPTED_FILES.values()), ids=list(ACCEPTED_FILES))
def test_targets_file_in_other_encodings_and_line_ends_works(world: World, content: bytes) -> None:
    run = _targets(world, content)
    print(f"accepted file: {describe(run)}")
    assert run.outputs["result"] == "halted", describe(run)


# 5. Data stays data (rule 8) ---------------------------------------------------------------

HOSTILE_NAMES = [
    "::error::pwned",
    "##[error]pwned",
    "Desktop ##[warning]pwned",
    "\u00a0::warning::pwned",  # a no-break space survives str.strip(); C#'s TrimStart drops it
    "[click me](https://evil.example/x)",
    "![pixel](https://evil.example/pixel.png)",
    "<img src=https://evil.example/x.png>",
    "https://evil.example/bare",
    "<https://evil.example/autolink>",
    "www.evil.example",
    "`code` | pipe | [x]",
]


def _named_targets(name: str) -> str:
    return f"targets:\n  - name: {json.dumps(name)}\n    app-id: {APP_ID}\n"


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_target_name_stays_data_in_the_log_and_the_summary(world: World, name: str) -> None:
    run = world.run(
        {"app-id": None, "targets": "targets.yml"}, files={"targets.yml": _named_targets(name)}
    )
    injected = injected_commands(run.stdout)
    live = live_markdown(run.summary)
    print(f"name {name!r}: {describe(run)}; commands {injected[:2]}; live Markdown {live}")
    assert run.outputs["result"] == "halted", describe(run)
    assert injected == [], injected
    assert live == [], [line for line in run.summary.splitlines() if name[:6] in line]


PAYLOAD = (
    "Rejected. [click me](https://evil.example/x) ![pixel](https://evil.example/p.png) "
    "<img src=x> https://evil.example/bare www.evil.example\n::error::pwned\n"
    "  ::warning::pwned ##[error]pwned"
)


@pytest.mark.parametrize("field", ["message", "code", "MS-CorrelationId"])
def test_store_message_stays_data_in_the_log_and_the_summary(world: World, field: str) -> None:
    body: dict[str, Any] = {"code": "InvalidState", "message": "Not haltable."}
    headers = {}
    if field == "MS-CorrelationId":  # a header holds no newline
        headers[field] = PAYLOAD.replace("\n", " ")
    else:
        body[field] = PAYLOAD
    world.emulator.add_fault(
        Fault(method="POST", path=HALT, status=409, body=body, headers=headers, times=None)
    )
    assert_stays_data(world.run(), f"Store {field}")


def assert_stays_data(run: ActionRun, what: str) -> None:
    """The run failed, and what it was fed made neither a command nor live Markdown."""
    injected = injected_commands(run.stdout)
    live = live_markdown(run.summary)
    print(f"{what} with payload: {describe(run)}; commands {injected}; live {live}")
    assert run.exit_code == 1
    assert injected == [], injected
    assert live == [], live


def test_entra_message_stays_data_in_the_log_and_the_summary(world: World) -> None:
    def entra(req: Incoming, wire: Wire) -> None:
        if req.path.endswith("/oauth2/v2.0/token"):
            body = {"error": "invalid_client", "error_description": f"AADSTS7000215: {PAYLOAD}"}
            wire.send(json_answer(401, body))
        else:
            forward_everything(req, wire)

    assert_stays_data(world.run(authority=world.hostile(entra)), "Entra message")


# 6. Secrets (rule 8) -------------------------------------------------------------------------


visible = visible_text


def _echoing_entra(echo: Callable[[Incoming], str]) -> Handler:
    """An Entra (or a proxy in front of it) whose refusal quotes the request."""

    def handler(req: Incoming, wire: Wire) -> None:
        if req.path.endswith("/oauth2/v2.0/token"):
            description = f"AADSTS7000215: Invalid client secret provided: {echo(req)}."
            wire.send(
                json_answer(401, {"error": "invalid_client", "error_description": description})
            )
        else:
            forward_everything(req, wire)

    return handler


def _form_value(req: Incoming, name: str) -> str:
    """The raw (still URL-encoded) value of a form field, as a proxy would quote it."""
    for pair in req.body.decode().split("&"):
        key, _, value = pair.partition("=")
        if key == name:
            return value
    return ""


URL_ENCODED_SECRET = "Ab1Q~x+y/z=w%v&u?t#s"


def test_url_encoded_secret_echoed_by_entra_is_redacted(world: World) -> None:
    server = world.hostile(_echoing_entra(lambda req: _form_value(req, "client_secret")))
    run = world.run({"client-secret": URL_ENCODED_SECRET}, authority=server)
    encoded = next(_form_value(r, "client_secret") for r in server.requests if r.body)
    assert unquote(encoded.replace("+", " ")) == URL_ENCODED_SECRET  # what went on the wire
    shown = visible(run)
    print(f"URL-encoded secret {encoded!r}: {describe(run)}; visible: {encoded in shown}")
    assert run.exit_code == 1
    assert URL_ENCODED_SECRET not in shown
    assert encoded not in shown, [line for line in shown.splitlines() if encoded in line][:2]


WHITESPACE_SECRET = "correct  horse   battery    staple"


def test_secret_with_whitespace_runs_is_redacted_after_folding(world: World) -> None:
    server = world.hostile(_echoing_entra(lambda req: f"'{WHITESPACE_SECRET}'"))
    run = world.run({"client-secret": WHITESPACE_SECRET}, authority=server)
    folded = " ".join(WHITESPACE_SECRET.split())
    shown = visible(run)
    print(f"whitespace secret: {describe(run)}; folded form visible: {folded in shown}")
    assert run.exit_code == 1
    assert WHITESPACE_SECRET not in shown
    assert folded not in shown, [line for line in shown.splitlines() if folded in line][:2]


@pytest.mark.parametrize(
    "secret",
    ['quo"te\\back~Q1', "plain~Secret.Value_123-", "ünïcødé~Q1sécret"],
    ids=["quotes and backslashes", "plain", "non-ASCII"],
)
def test_secret_quoted_as_is_by_entra_is_redacted(world: World, secret: str) -> None:
    server = world.hostile(_echoing_entra(lambda req: secret))
    run = world.run({"client-secret": secret}, authority=server)
    shown = visible(run)
    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    leaked = [form for form in forms if form in shown]
    print(f"secret {secret!r} quoted by Entra: {describe(run)}; leaked forms: {leaked}")
    assert run.exit_code == 1
    assert leaked == []


# 7. Field behaviour (store-api.md, "Seen in the field") -----------------------------------


def test_integer_percentages_are_read(world: World) -> None:
    world.emulator.add_fault(
        Fault(
            method="GET",
            path=ROLLOUT,
            status=200,
            body={**IN_PROGRESS, "packageRolloutPercentage": 25},
        )
    )
    world.emulator.add_fault(
        Fault(method="POST", path=HALT, status=200, body={**STOPPED, "packageRolloutPercentage": 0})
    )
    run = world.run()
    print(
        f"integer percentages: {describe(run)}; rollout-percentage "
        f"{run.outputs.get('rollout-percentage')!r}"
    )
    assert run.outputs["result"] == "halted", describe(run)
    assert float(run.outputs["rollout-percentage"]) == 0


def test_absent_keys_are_read_as_none(world: World) -> None:
    world.emulator.add_fault(
        Fault(
            method="GET",
            path=APP,
            status=200,
            body={
                "id": APP_ID,
                "primaryName": "x",
                "lastPublishedApplicationSubmission": {"id": PUBLISHED},
            },
        )
    )
    world.emulator.add_fault(
        Fault(
            method="POST",
            path=HALT,
            status=200,
            body={k: v for k, v in STOPPED.items() if k != "fallbackSubmissionId"},
        )
    )
    run = world.run()
    print(f"absent keys: {describe(run)}")
    assert run.outputs["result"] == "halted", describe(run)


def test_key_casing_differences_are_tolerated(world: World) -> None:
    """Captures show PascalCase keys next to camelCase ones (`PackageFamilyName`)."""
    pascal = {key[0].upper() + key[1:]: value for key, value in IN_PROGRESS.items()}
    world.emulator.add_fault(Fault(method="GET", path=ROLLOUT, status=200, body=pascal))
    run = world.run()
    print(f"PascalCase rollout keys: {describe(run)}")
    assert run.outputs["result"] == "halted", describe(run)


def test_403_with_an_empty_body_says_the_app_may_not_be_this_accounts(world: World) -> None:
    world.emulator.add_fault(Fault(method="GET", path=APP, status=403, body=None))
    run = world.run()
    print(f"403 empty body: {describe(run)}")
    assert run.exit_code == 1
    assert len(run.errors) == 1
    error = run.errors[0]
    assert "403" in error
    assert re.search(r"app(?:-id| ID)?\b.*\b(?:not|another|other)\b.*account", error, re.I), error


def test_account_service_503_fails_within_about_30_seconds(world: World) -> None:
    message = "Account service is experiencing issue. Please try again later."
    world.emulator.add_fault(
        Fault(
            method="GET",
            path=APP,
            status=503,
            times=None,
            body={"statusCode": 503, "message": message},
        )
    )
    # Backoff waits are at most 20 s: a run that only stops at its deadline ends after
    # 40 s at the earliest, one that keeps the 30 s cap by 35 s.
    timeout = 60.0
    run = world.run({"timeout-seconds": f"{timeout:g}"})
    attempts = len([r for r in world.emulator.store_requests if re.search(APP, r.path)])
    print(f"account-service 503: {describe(run, timeout)}; {attempts} attempts")
    assert run.exit_code == 1
    assert "Partner Center" in run.errors[0]
    assert run.seconds <= 30 + 5, f"failed after {run.seconds:.1f} s, not within ~30 s"


def test_every_store_call_sends_content_type_json(world: World) -> None:
    run = world.run()
    missing = [
        f"{r.method} {r.path}"
        for r in world.emulator.store_requests
        if not r.headers.get("content-type", "").startswith("application/json")
    ]
    print(f"Content-Type: {describe(run)}; calls without application/json: {missing}")
    assert run.outputs["result"] == "halted"
    assert missing == []


def test_slow_answer_within_the_deadline_is_waited_for(world: World) -> None:
    def slow(req: Incoming, wire: Wire) -> None:
        if req.method == "GET" and re.search(APP, req.path):
            wire.stopping.wait(6.0)
        forward_everything(req, wire)

    run = world.run({"timeout-seconds": "20"}, store=world.hostile(slow))
    print(f"6 s answer, 20 s deadline: {describe(run, 20)}")
    assert run.outputs["result"] == "halted", describe(run)


# 1b. The deadline during sign-in -------------------------------------------------------------

SIGN_IN_CALLS = {
    "Entra discovery trickled": r"/v2\.0/\.well-known/openid-configuration$",
    "Entra token endpoint trickled": r"/oauth2/v2\.0/token$",
    "Entra token endpoint silent": r"/oauth2/v2\.0/token$",
    "GitHub OIDC endpoint trickled": r"^/github-oidc/token$",
}


@pytest.mark.parametrize("attack", list(SIGN_IN_CALLS))
def test_sign_in_cannot_outlive_the_deadline(world: World, attack: str) -> None:
    pattern = SIGN_IN_CALLS[attack]

    def handler(req: Incoming, wire: Wire) -> None:
        if not re.search(pattern, req.path):
            forward_everything(req, wire)
        elif attack.endswith("silent"):
            wire.stopping.wait(HOSTILE_SECONDS)
        else:
            trickle_headers(req, wire)

    server = world.hostile(handler)
    inputs: dict[str, str | None] = {"timeout-seconds": f"{DEADLINE:g}"}
    env: dict[str, str | None] = {}
    if attack.startswith("GitHub"):
        inputs["client-secret"] = None
        env = {
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{server.url}/github-oidc/token?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": world.emulator.oidc_request_token,
        }
    run = world.run(inputs, authority=server, env=env)
    late = world.sent_after_deadline(DEADLINE)
    print(f"{attack}: {describe(run, DEADLINE)}; late {late}")
    assert run.seconds <= DEADLINE + STARTUP_SLACK, describe(run, DEADLINE)
    assert late == []
    assert run.exit_code == 1
    assert run.outputs["result"] == "failed"
    assert "Rollout halt failed" in run.summary
    assert traceback_free(run)


# 4b. Sizes the server controls -----------------------------------------------------------------


def test_summary_stays_under_1_mib_when_the_store_sends_long_codes(world: World) -> None:
    """100 targets (the most a file may hold), each refused with a 20 kB error `code`."""
    world.emulator.add_fault(
        Fault(
            method="POST",
            path=HALT,
            status=409,
            times=None,
            body={"code": "InvalidState" + "X" * 20_000, "message": "Not haltable."},
        )
    )
    run = world.run(
        {"app-id": None, "targets": "targets.yml", "timeout-seconds": "60"},
        files={"targets.yml": many_apps(world.emulator, 100)},
    )
    size = len(run.summary.encode())
    print(f"100 targets, 20 kB codes: {describe(run)}; summary {size} bytes")
    assert traceback_free(run)
    assert size < 1024 * 1024, f"summary is {size} bytes"


HEADER_ATTACKS = {
    "a 70 kB header line": [("X-Pad", "a" * 70_000)],
    "150 headers": [(f"X-Pad-{n}", "a") for n in range(150)],
    "a 60 kB MS-CorrelationId": [("MS-CorrelationId", "c" * 60_000)],
}


@pytest.mark.parametrize("headers", list(HEADER_ATTACKS.values()), ids=list(HEADER_ATTACKS))
def test_huge_headers_from_the_store_are_not_a_crash(
    world: World, headers: list[tuple[str, str]]
) -> None:
    def handler(req: Incoming, wire: Wire) -> None:
        if req.method == "GET" and re.search(APP, req.path):
            wire.send(json_answer(500, {"code": "InternalError", "message": "x"}, tuple(headers)))
        else:
            forward_everything(req, wire)

    run = world.run({"timeout-seconds": f"{DEADLINE:g}"}, store=world.hostile(handler))
    longest = max((len(e) for e in run.errors), default=0)
    print(f"headers: {describe(run, DEADLINE)}; longest error line {longest} chars")
    assert traceback_free(run)
    assert run.exit_code == 1
    assert run.seconds <= DEADLINE + STARTUP_SLACK


# 8. The command line (`docker run IMAGE --app-id …`): the same promises ------------------


def cli_run(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    emu = world.emulator
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("INPUT_", "GITHUB_", "ACTIONS_", "RUNNER_", "AZURE_"))
    } | {"AZURE_CLIENT_SECRET": emu.client_secret, "REQUESTS_CA_BUNDLE": world.bundle}
    flags = ["--store-api-url", emu.url, "--authority-host", emu.url]
    flags += ["--tenant-id", emu.tenant_id, "--client-id", emu.client_id, "--app-id", APP_ID]
    return subprocess.run(
        [sys.executable, str(ENTRYPOINT), *flags, *args],
        env=env,
        cwd=world.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("case", ["--timeout 1e20", "Retry-After: inf"])
def test_command_line_prints_no_traceback(world: World, case: str) -> None:
    args = ["--timeout", "1e20"] if case.startswith("--timeout") else ["--timeout", "5"]
    if case.startswith("Retry-After"):
        world.emulator.add_fault(
            Fault(method="GET", path=APP, status=429, headers={"Retry-After": "inf"})
        )
    completed = cli_run(world, *args)
    last = (completed.stderr.strip().splitlines() or [""])[-1]
    print(f"CLI {case}: exit {completed.returncode}; last stderr line: {last[:200]}")
    assert "Traceback" not in completed.stdout + completed.stderr, last
    assert completed.returncode in (0, 1)


# 9. Rollout fields the Store controls ------------------------------------------------------


def _rollout_answer(world: World, body: str) -> None:
    """The rollout read and the halt both answer `body` (raw JSON text)."""
    for method, path in (("GET", ROLLOUT), ("POST", HALT)):
        world.emulator.add_fault(
            Fault(
                method=method,
                path=path,
                status=200,
                body=body.encode(),
                headers={"Content-Type": "application/json"},
            )
        )


def _rollout_json(status: str, percentage: str, fallback: str) -> str:
    return (
        f'{{"isPackageRollout": true, "packageRolloutPercentage": {percentage}, '
        f'"packageRolloutStatus": {json.dumps(status)}, "fallbackSubmissionId": '
        f"{json.dumps(fallback)}}}"
    )


@pytest.mark.parametrize(
    "percentage",
    ["1" + "0" * 400, "1e400", "NaN", "-Infinity"],
    ids=["integer of 401 digits", "1e400", "NaN", "-Infinity"],
)
def test_any_rollout_percentage_is_not_a_crash_and_results_stay_json(
    world: World, percentage: str
) -> None:
    _rollout_answer(world, _rollout_json("PackageRolloutStopped", percentage, FALLBACK))
    run = world.run()

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    try:  # as JSON.parse (GitHub's fromJSON) reads it: no NaN, no Infinity
        json.loads(run.outputs.get("results") or "[]", parse_constant=refuse)
        results_json = "valid"
    except ValueError as error:
        results_json = f"invalid ({error})"
    print(
        f"percentage {percentage[:12]}: {describe(run)}; results output {results_json}; "
        f"rollout-percentage {run.outputs.get('rollout-percentage')!r}"
    )
    assert traceback_free(run), run.errors
    assert results_json == "valid"
    assert run.exit_code in (0, 1)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "PackageRolloutInProgress\n::error::pwned"),
        ("fallback", "1212922684621243058\n::warning::pwned"),
        ("fallback", "1` [click me](https://evil.example/x) `2"),
        ("fallback", "1 | forged | cells | 2"),
    ],
    ids=[
        "newline in status",
        "newline in fallback",
        "backtick link in fallback",
        "pipes in fallback",
    ],
)
def test_rollout_fields_stay_data(world: World, field: str, value: str) -> None:
    status = value if field == "status" else "PackageRolloutInProgress"
    fallback = value if field == "fallback" else FALLBACK
    world.emulator.add_fault(
        Fault(
            method="GET",
            path=ROLLOUT,
            status=200,
            body=json.loads(_rollout_json(status, "25", fallback)),
        )
    )
    stopped = _rollout_json("PackageRolloutStopped", "0", fallback)
    world.emulator.add_fault(Fault(method="POST", path=HALT, status=200, body=json.loads(stopped)))
    run = world.run()
    injected = injected_commands(run.stdout)
    live = live_markdown(run.summary)
    rows = [line for line in run.summary.splitlines() if line.startswith("| ")]
    cells = {line.count(" | ") for line in rows if "---" not in line}
    print(f"{field} {value!r}: {describe(run)}; commands {injected}; live {live}; cells {cells}")
    assert injected == [], injected
    assert live == [], live
    assert len(cells) == 1, rows


# 10. TLS is always verified: no request leaves without it (rule 8) -----------------------


class PlainCatcher:
    """A plain-HTTP listener that records whatever is sent to it."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.received: list[bytes] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(1)
                data = b""
                with contextlib.suppress(OSError):  # read until the client goes quiet
                    while chunk := connection.recv(65536):
                        data += chunk
                self.received.append(data)
                with contextlib.suppress(OSError):
                    connection.sendall(json_answer(500, {"error": "x"}))

    def close(self) -> None:
        self._listener.close()


@pytest.mark.parametrize(
    "how", ["token POST redirected (307)", "discovery names an http token endpoint"]
)
def test_secret_never_travels_without_tls(world: World, how: str) -> None:
    catcher = PlainCatcher()

    def handler(req: Incoming, wire: Wire) -> None:
        if how.startswith("token") and req.path.endswith("/oauth2/v2.0/token"):
            wire.send(raw_response(307, [("Location", f"{catcher.url}/steal")]))
        elif how.startswith("discovery") and req.path.endswith("/openid-configuration"):
            answer = wire.forward(req)
            document = json.loads(answer.body)
            document["token_endpoint"] = f"{catcher.url}/steal"
            wire.send(json_answer(200, document))
        else:
            forward_everything(req, wire)

    try:
        run = world.run({"timeout-seconds": "5"}, authority=world.hostile(handler))
    finally:
        catcher.close()
    secret = world.emulator.client_secret
    leaked = [data for data in catcher.received if secret.encode() in data]
    print(
        f"{how}: {describe(run)}; plain-HTTP requests {len(catcher.received)}, "
        f"with the client secret: {len(leaked)}"
    )
    assert leaked == [], leaked[0][:300]
