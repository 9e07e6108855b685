"""`make try` prints commands that work as printed (README, "Try it without Azure").

scripts/try.py is started as `make try` starts it; the environment and the commands it
prints are run, as pasted into another terminal, against the emulator it serves.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from .world import run_command

REPO = Path(__file__).resolve().parent.parent


def test_the_printed_commands_run_against_the_emulator_it_starts() -> None:
    started = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "try.py")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert started.stdout is not None
        lines: list[str] = []
        for line in started.stdout:
            lines.append(line.rstrip("\n"))
            if "--reason 'the hourly guard'" in line:  # the last command it prints
                break
        exports = dict(
            line.removeprefix("export ").split("=", 1)
            for line in lines
            if line.startswith("export ")
        )
        environment = {key: shlex.split(value)[0] for key, value in exports.items()} | {
            "PATH": os.environ["PATH"]
        }
        assert set(exports) == {
            "REQUESTS_CA_BUNDLE",
            "AZURE_TENANT_ID",
            "AZURE_CLIENT_ID",
            "AZURE_CLIENT_SECRET",
        }
        commands = [line for line in lines if line.startswith((".venv/", "/"))]
        assert len(commands) == 7, lines
        results = []
        # The dry run, the halt, the same halt again; the guard on a healthy rollout and on a
        # failing one.
        for command in commands[:3] + commands[5:]:
            done = run_command(shlex.split(command), env=environment, cwd=REPO)
            assert done.returncode == 0, done.stderr
            results.append(done.stdout)
        assert ": dry-run" in results[0]
        assert ": halted" in results[1]
        assert ": already-halted" in results[2]
        assert "below the 2× margin: healthy" in results[3]
        assert "above the 2× margin: halted" in results[4]
        assert (REPO / ".try" / "env").read_text(encoding="utf-8").count("export ") == 4
    finally:
        started.send_signal(signal.SIGINT)
        started.wait(timeout=30)
    assert started.returncode == 0
    assert not (REPO / ".try" / "env").exists()
