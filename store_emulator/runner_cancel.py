"""Cancelling a run in a container as actions/runner cancels it: a signal to the action's
process once a condition holds, found through /proc, timed to its end."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .step_results import Cancelled


@dataclass(frozen=True)
class Cancel:
    """Cancel the run as actions/runner does: `signal` to the action's process once `when()`
    is true (polled every 20 ms while the process runs)."""

    when: Callable[[], bool]
    signal: int = signal.SIGINT


def cancel_run(
    run: subprocess.Popen[str], argv: Sequence[str], cancel: Cancel, started: float, timeout: float
) -> Cancelled:
    """Signal the action's process once `cancel.when()` holds; time its end and the run's.

    actions/runner sends SIGINT to `docker run`, which forwards it to the container's first
    process. `buildah run` does not forward it: on SIGINT it kills its child outright
    ("subprocess exited on killed"). So the signal goes to the action's process itself, found
    through /proc as the descendant of `buildah run` whose command line is the image's
    ENTRYPOINT and CMD. With --isolation chroot there is no PID namespace of its own (the
    process has a pid of this machine, its parent is buildah-chroot-exec): `Cancelled` says
    what it found, and PID 1 itself is tested under `unshare` in tests/test_cancellation.py.
    """
    end = started + timeout
    pid = None
    while pid is None or not cancel.when():
        if run.poll() is not None:
            raise RuntimeError(f"the run ended (exit {run.returncode}) before it was cancelled")
        if time.monotonic() > end:
            raise RuntimeError(f"not cancelled within {timeout} s")
        pid = pid or _find_process(run.pid, exec_target(argv))
        time.sleep(0.02)
    status = _proc_status(pid)
    namespaces = status.get("NSpid", str(pid)).split()
    parent = _command_line(int(status["PPid"]))[:1] or ["?"]
    own_namespace = os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    sent = time.monotonic()
    os.kill(pid, cancel.signal)
    # Ended is gone or a zombie: its parent may reap it a little later.
    while _proc_status(pid).get("State", "Z").startswith(("R", "S", "D", "T", "t")):
        if time.monotonic() > end:
            break
        time.sleep(0.005)
    process_ended = time.monotonic() - sent
    run.wait(max(0.0, end - time.monotonic()))
    return Cancelled(
        signal=signal.Signals(cancel.signal).name,
        pid=pid,
        pid_in_container=int(namespaces[-1]),
        own_pid_namespace=own_namespace,
        parent=parent[0],
        signal_after_seconds=round(sent - started, 3),
        process_ended_seconds=round(process_ended, 3),
        run_ended_seconds=round(time.monotonic() - sent, 3),
    )


def _proc_status(pid: int) -> dict[str, str]:
    """/proc/PID/status as a mapping; empty once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return {}
    return {
        key: value.strip() for key, _, value in (line.partition(":") for line in text.splitlines())
    }


def _command_line(pid: int) -> list[str]:
    """/proc/PID/cmdline as arguments; empty once the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def exec_target(argv: Sequence[str]) -> list[str]:
    """The command line the action's process ends up with: an ENTRYPOINT that starts with
    `env` and its options (`--block-signal=INT`) execs the rest, which replaces it."""
    if argv and Path(argv[0]).name == "env":
        rest = list(argv[1:])
        while rest and rest[0].startswith("-"):
            rest.pop(0)
        return rest
    return list(argv)


def _find_process(ancestor: int, argv: list[str]) -> int | None:
    """The descendant of `ancestor` whose command line is exactly `argv`, if it runs yet."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _proc_status(int(entry.name)).get("PPid")
            if parent:
                children.setdefault(int(parent), []).append(int(entry.name))
    todo = list(children.get(ancestor, []))
    while todo:
        pid = todo.pop()
        if _command_line(pid) == argv:
            return pid
        todo += children.get(pid, [])
    return None


def emulator_saw(emulator_url: str, ca: str, method: str, path: str) -> Callable[[], bool]:
    """A `Cancel.when`: true once the emulator (its control API) recorded a request with
    `method` and a path that `path`, a regular expression, matches, after this call: the
    requests of earlier runs do not count."""
    url = emulator_url.rstrip("/") + "/_emulator/requests"
    context = ssl.create_default_context(cafile=ca)
    pattern = re.compile(path)

    def requests() -> list[dict[str, Any]]:
        with urllib.request.urlopen(url, context=context, timeout=10) as answer:  # noqa: S310
            seen: list[dict[str, Any]] = json.load(answer)
        return seen

    earlier = len(requests())

    def seen() -> bool:
        new = requests()[earlier:]
        return any(q["method"] == method and pattern.search(q["path"]) for q in new)

    return seen
