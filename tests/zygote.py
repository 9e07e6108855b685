"""The tests' launcher of entrypoint.py: a run forked from a pre-imported fork server.

A run of `python entrypoint.py` spends nine tenths of its CPU importing azure-identity,
requests and the rest, the same modules every time, and the suite starts about a thousand.
tests/fork_server.py imports them once per pytest worker, with the modules entrypoint.py
imports itself, and forks each run from there with the run's argv, variables, folder and
standard streams; the run then executes entrypoint.py as `python entrypoint.py` does.
What a test sees is the real process's: its pid (for signals), its exit status (a
signal's as negative), its output, its files, its deadline (counted from the run's
start, as halt_rollout's import counts it in a fresh interpreter).

Only `python entrypoint.py [ARGS]` and `python -m halt_rollout [ARGS]` (the command line)
with an environment, a folder and the standard streams are forked; any other command or
option, or a PYTHON* variable that runs code at the start (PYTHONSTARTUP, a PYTHONPATH
other than the repository, ...), is a real process start; a run whose other
interpreter-start variables (STARTUP_VARIABLES: locale, encoding, TZ) differ from every
server's gets a fork server of its own. Tests where the process start is itself the
subject (a signal in the first milliseconds, handlers installed before the imports) start
their processes with subprocess.Popen (tests/world.py's `spawn` and `start`), or carry
`@pytest.mark.real_exec`. HALT_ROLLOUT_TEST_REAL_EXEC=1 makes every run a real process
start; `make soak` (tests/schedules) always starts real processes.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from store_emulator.action_files import ENTRYPOINT

SERVER = Path(__file__).resolve().parent / "fork_server.py"
REPO = SERVER.parent.parent
REAL_EXEC_VARIABLE = "HALT_ROLLOUT_TEST_REAL_EXEC"
# Variables read when the interpreter starts or a pre-imported module loads: a run whose
# values differ from every server's gets a server of its own, started with them.
STARTUP_VARIABLES = re.compile(r"PYTHON.*|LANG|LANGUAGE|LC_.*|TZ|CRYPTOGRAPHY_.*|OPENSSL_.*")
# The interpreter's own variables a server can share with its runs. Any other (PYTHONPATH
# with a sitecustomize that reads the run's variables, PYTHONSTARTUP, PYTHONHOME, import
# profiling, ...) runs code or loads modules at the start: such a run is started for real.
SHAREABLE_PYTHON_VARIABLES = frozenset(
    {
        "PYTHONCOERCECLOCALE",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONHASHSEED",
        "PYTHONIOENCODING",
        "PYTHONUNBUFFERED",
        "PYTHONUTF8",
        "PYTHONWARNINGS",
    }
)
# Popen's options a forked run honours; any other sends the run to a real process start.
FORKABLE_OPTIONS = frozenset({"env", "cwd", "stdin", "stdout", "stderr", "text"})
# One SOCK_SEQPACKET message carries the request; larger ones are started for real.
MESSAGE_LIMIT = 100_000


def forkable_command(args: Sequence[str]) -> bool:
    """`python entrypoint.py [ARGS]` (the action, or the image given arguments) or `python
    -m halt_rollout [ARGS]` (the command line): what the fork server has loaded."""
    argv = [str(arg) for arg in args]
    return argv[:2] == [sys.executable, str(ENTRYPOINT)] or argv[:3] == [
        sys.executable,
        "-m",
        "halt_rollout",
    ]


def shareable(name: str, value: str) -> bool:
    """Whether a run with this PYTHON* variable can be forked: one of the interpreter's own
    settings, or a PYTHONPATH that names only the repository, which the server's path
    holds already (the command line's tests give it: they run from elsewhere)."""
    return name in SHAREABLE_PYTHON_VARIABLES or (name == "PYTHONPATH" and value == str(REPO))


def real_exec_everywhere() -> bool:
    return os.environ.get(REAL_EXEC_VARIABLE) == "1"


class ForkServer:
    """One tests/fork_server.py process, for runs with these interpreter-start variables."""

    def __init__(self, startup: Mapping[str, str], path: Path) -> None:
        self.path = str(path)
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), self.path],
            env=dict(startup),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline() != "ready\n":
            raise RuntimeError(f"the fork server did not start (exit {self.process.wait()})")

    def start(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: str, fds: Sequence[int]
    ) -> tuple[socket.socket, int, float]:
        """Fork a run; its connection (its end is reported there), its pid, and when the
        server forked it (time.monotonic(): one clock for every process)."""
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            connection.connect(self.path)
            request = json.dumps({"argv": list(argv), "env": dict(env), "cwd": cwd})
            socket.send_fds(connection, [request.encode()], list(fds))
            reply = connection.recv(4096)
            if not reply:
                raise RuntimeError("the fork server ended without starting the run")
            started = json.loads(reply)
            return connection, int(started["pid"]), float(started["forked_at"])
        except BaseException:
            connection.close()
            raise

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


class TimedPopen(subprocess.Popen[str]):
    """subprocess.Popen that notes when it was asked to create its process (`created_at`,
    on time.monotonic()): a run's time counts from there (store_emulator.launch.created_at),
    never from when Popen returned, which a busy machine may delay past the run's start."""

    def __init__(self, args: Sequence[str], **options: Any) -> None:
        self.created_at = time.monotonic()
        super().__init__(list(args), **options)


class ForkedPopen(TimedPopen):
    """subprocess.Popen whose child is forked by a ForkServer: Popen's own pipes,
        communicate, timeouts and signals; the exit status comes over the server's connection
        instead of waitpid (the child is the server's, not this process's); `created_at` is when
    the server forked it, not when a fork server was first started for it."""

    def __init__(self, server: ForkServer, args: Sequence[str], **options: Any) -> None:
        self._fork_server = server
        self._connection: socket.socket | None = None
        super().__init__(list(args), **options)

    def _execute_child(self, args: Sequence[str], *popen: Any) -> None:
        """Popen's private POSIX hook (3.11's arguments): fork the run from the server."""
        cwd, env = popen[4], popen[5]
        p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite = popen[9:15]
        fds = [
            p2cread if p2cread != -1 else 0,
            c2pwrite if c2pwrite != -1 else 1,
            errwrite if errwrite != -1 else 2,
        ]
        try:
            self._connection, self.pid, self.created_at = self._fork_server.start(
                args, env if env is not None else os.environ, os.fspath(cwd or os.getcwd()), fds
            )
            self._child_created = True
        finally:
            self._close_pipe_fds(p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite)  # type: ignore[attr-defined]

    def _try_wait(self, wait_flags: int) -> tuple[int, int]:
        """(pid, wait status) once the server reported the end; (0, 0) before, with WNOHANG."""
        connection = self._connection
        assert connection is not None
        if wait_flags & os.WNOHANG and not select.select([connection], [], [], 0)[0]:
            return 0, 0
        reply = connection.recv(4096)
        connection.close()
        if not reply:
            raise RuntimeError(f"the fork server ended before run {self.pid} did")
        return self.pid, int(json.loads(reply)["status"])

    def _internal_poll(self, _deadstate: int | None = None, **unused: object) -> int | None:
        if self.returncode is None:
            if not self._waitpid_lock.acquire(False):  # type: ignore[attr-defined]
                return None  # another thread is waiting; nothing known yet
            try:
                if self.returncode is None:
                    pid, status = self._try_wait(os.WNOHANG)
                    if pid == self.pid:
                        self._handle_exitstatus(status)  # type: ignore[attr-defined]
            finally:
                self._waitpid_lock.release()  # type: ignore[attr-defined]
        return self.returncode


class Launcher:
    """store_emulator.launch's launcher for the tests: forks what it can, starts the rest."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="halt-rollout-fork-"))
        self.servers: dict[frozenset[tuple[str, str]], ForkServer] = {}
        # Two runs of one test may start at once (two responders), each in its thread:
        # the first to need a server starts it, the other waits for it.
        self.starting = threading.Lock()
        self.forking = True  # False for a test marked real_exec

    def __call__(self, args: Sequence[str], **options: Any) -> subprocess.Popen[str]:
        env = options.get("env")
        if (
            not self.forking
            or not forkable_command(args)
            or env is None
            or not FORKABLE_OPTIONS.issuperset(options)
            or len(json.dumps(env)) > MESSAGE_LIMIT
            or not all(shareable(k, v) for k, v in env.items() if k.startswith("PYTHON"))
        ):
            return TimedPopen(args, **options)
        startup = frozenset((k, v) for k, v in env.items() if STARTUP_VARIABLES.fullmatch(k))
        with self.starting:
            if startup not in self.servers:
                socket_path = self.folder / f"fork{len(self.servers)}.sock"
                self.servers[startup] = ForkServer(dict(startup), socket_path)
            server = self.servers[startup]
        return ForkedPopen(server, args, **options)

    def close(self) -> None:
        for server in self.servers.values():
            server.close()
        shutil.rmtree(self.folder, ignore_errors=True)
