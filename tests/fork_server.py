"""The fork server the tests start entrypoint.py from: imports once, forks a run each.

Run as `python tests/fork_server.py SOCKET` by tests/zygote.py, one per pytest worker (and
per interpreter-start setting, see zygote.STARTUP_VARIABLES). It imports what
halt_rollout imports from outside itself (azure-identity, requests, ...: nine tenths of a
run's CPU), and the modules entrypoint.py itself imports before it runs (its eager
closure: about 30 ms of CPU a run). A run then starts as from a warm cache:

- halt_rollout.STARTED, where timeout-seconds counts from, is set anew in each forked
  run, as the package's own import sets it in a fresh interpreter;
- the cancellation handlers are installed by the run itself (entrypoint.py's first
  statement); the server installs no signal handler and starts no thread, so a forked
  child's signal dispositions and mask are those of a fresh interpreter;
- every lazy import (the guard's modules, the command line's) still happens in the run,
  as it would in a fresh interpreter: only the eager closure is loaded here, and no
  halt_rollout module reads the environment or the streams when it is imported.

Protocol, one SOCK_SEQPACKET connection per run: the client sends one JSON message {"argv",
"env", "cwd"} with the run's stdin, stdout and stderr as three file descriptors
(SCM_RIGHTS); the server forks and answers {"pid", "forked_at"} (its monotonic clock, the
system's, just before the fork); when the child ends, {"status":
...} (the raw wait status, as waitpid gives it) follows and the connection closes.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import importlib
import importlib.util
import json
import os
import select
import socket
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MESSAGE_LIMIT = 1 << 20


def imported_by(sources: list[Path]) -> set[str]:
    """The absolute module names these files import (relative imports left out)."""
    names: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source.read_bytes())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
    return names


def import_what_the_package_imports() -> None:
    """Every module halt_rollout's files import that is not halt_rollout's own."""
    for name in sorted(imported_by(sorted((REPO / "halt_rollout").glob("*.py")))):
        if name.split(".")[0] not in {"halt_rollout", "__future__"}:
            with contextlib.suppress(ImportError):
                __import__(name)


def import_what_the_entrypoint_imports() -> None:
    """What entrypoint.py imports before it runs (halt_rollout, .cancel, .main,
    .process_exit), read from it as above: each closure is loaded once here."""
    for name in sorted(imported_by([REPO / "entrypoint.py"])):
        importlib.import_module(name)


def serve(listener: socket.socket) -> None:
    """Fork a run for each connection; report each child's end on its connection."""
    watched: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (pid, connection)
    parent = os.getppid()
    while os.getppid() == parent:  # a pytest worker that died leaves no server behind
        readable, _, _ = select.select([listener.fileno(), *watched], [], [], 1.0)
        for ready in readable:
            if ready == listener.fileno():
                connection, _ = listener.accept()
                message, fds, _, _ = socket.recv_fds(connection, MESSAGE_LIMIT, 3)
                forked_at = time.monotonic()  # the run's time starts no later (its STARTED)
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    connection.close()
                    for pidfd, (_, other) in watched.items():
                        os.close(pidfd)
                        other.close()
                    become(json.loads(message), fds)  # never returns
                for fd in fds:
                    os.close(fd)
                watched[os.pidfd_open(pid)] = (pid, connection)
                with contextlib.suppress(OSError):
                    connection.sendall(json.dumps({"pid": pid, "forked_at": forked_at}).encode())
            else:
                pid, connection = watched.pop(ready)
                os.close(ready)
                _, status = os.waitpid(pid, 0)
                with contextlib.suppress(OSError):
                    connection.sendall(json.dumps({"status": status}).encode())
                connection.close()


def become(request: dict[str, object], fds: list[int]) -> None:
    """In the forked child: take the run's streams, folder, variables and argv, then run
    the script (or the package's __main__) as `python script` (or `python -m package`)
    would; ends the process, never returns."""
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # close_fds, as Popen does
        argv = [str(arg) for arg in request["argv"]]  # type: ignore[attr-defined]
        os.chdir(str(request["cwd"]))
        os.environ.clear()
        os.environ.update(request["env"])  # type: ignore[call-overload]
        main = types.ModuleType("__main__")
        if argv[1] == "-m":  # `python -m package ARGS`: its __main__.py, run from the folder
            spec = importlib.util.find_spec(f"{argv[2]}.__main__")
            if spec is None or spec.origin is None:
                raise ModuleNotFoundError(argv[2])
            script = Path(spec.origin)
            sys.argv = [str(script), *argv[3:]]
            sys.path[0] = os.getcwd()
            main.__package__ = argv[2]
            main.__spec__ = spec
        else:  # `python script ARGS`
            script = Path(argv[1])
            sys.argv = argv[1:]
            sys.path[0] = str(script.parent)
        code = compile(script.read_bytes(), str(script), "exec")
        main.__file__ = str(script)
        main.__builtins__ = builtins  # type: ignore[attr-defined]
        main.__cached__ = None  # type: ignore[attr-defined]
        sys.modules["__main__"] = main
        # Where the run's timeout-seconds counts from: its start, as in a fresh interpreter.
        setattr(sys.modules["halt_rollout"], "STARTED", time.monotonic())  # noqa: B010
    except BaseException:  # a set-up that failed is the server's fault: say so and end
        os.write(2, b"fork_server: the run could not be set up\n")
        os._exit(127)
    try:
        exec(code, vars(main))  # noqa: S102 - the script, as `python script` runs it
    except SystemExit:
        raise  # the interpreter's own exit: its status, atexit, stream flush
    except BaseException as error:  # shown as a fresh interpreter shows it: from the script
        traceback = error.__traceback__
        sys.excepthook(type(error), error, traceback.tb_next if traceback else None)
        raise SystemExit(1) from None
    raise SystemExit(0)


def main(path: str) -> None:
    sys.path[0] = str(REPO)  # as for `python entrypoint.py`
    import_what_the_package_imports()
    import_what_the_entrypoint_imports()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(64)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    serve(listener)


if __name__ == "__main__":
    main(sys.argv[1])
