"""The command line (`docker run IMAGE --app-id …`) keeps the same promises.

The harness (`World`, `HostileServer`) is in tests/world.py.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from store_emulator import Fault
from store_emulator.action_files import ENTRYPOINT

from .conftest import (
    APP_ID,
)
from .world import (
    APP,
    World,
)

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
