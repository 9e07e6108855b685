"""Shared fixtures: a Store emulator per test, and the action run as the runner runs it."""

from __future__ import annotations

import compileall
import importlib
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

import pytest

from store_emulator import Emulator, launch
from store_emulator.actions_runner import run_action
from store_emulator.demo import (
    APP_ID,
    FALLBACK,
    FLIGHT_ID,
    FLIGHT_PENDING,
    OTHER_APP,
    OTHER_SUBMISSION,
    PENDING,
    PUBLISHED,
)
from store_emulator.step_environment import overlay
from store_emulator.step_results import ActionRun

from .zygote import Launcher, real_exec_everywhere

# The demo IDs are defined in store_emulator.demo; re-exported for `from .conftest import`.
__all__ = [
    "APP_ID",
    "FALLBACK",
    "FLIGHT_ID",
    "FLIGHT_PENDING",
    "OTHER_APP",
    "OTHER_SUBMISSION",
    "PENDING",
    "PUBLISHED",
    "start",
    "world",
]

GUID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
COMPILED_ONCE = (REPO / "halt_rollout", REPO / "store_emulator", TESTS)


def pytest_configure(config: pytest.Config) -> None:
    """Compile once, in the controller, before the workers start: the runs, the emulators
    and the workers all live where bytecode is never written (PYTHONDONTWRITEBYTECODE, as in
    the image and in CI), so without this every run compiles every module it imports, and
    every worker rewrites every test module's asserts, hundreds of times a suite."""
    config.addinivalue_line(
        "markers", "real_exec: start entrypoint.py as a new process, never forked (tests/zygote.py)"
    )
    config.addinivalue_line(
        "markers", "long: takes ten seconds or more (mostly waiting): started first, spread"
    )
    if not hasattr(config, "workerinput"):
        for folder in COMPILED_ONCE:
            compileall.compile_dir(folder, quiet=1)
        if config.getoption("dist", "no") != "no":  # workers will start (pytest-xdist)
            _cache_rewritten_test_modules()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, each worker starts with its share of the tests marked long.

    Its worksteal scheduler gives each worker one contiguous share of the collection at
    first, and later moves tests from the end of the longest queue, counted in tests, not
    seconds: long tests left in one share's middle ran last, in a tail a whole worker
    long (the suite's last 25 s). Every worker orders the collection the same way here,
    so each share begins with its long tests, run while the others run the short ones."""
    workers = int(getattr(config, "workerinput", {}).get("workercount", 0))
    if workers > 1:
        items[:] = long_first_in_each_share(items, workers)


def long_first_in_each_share(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    long = [item for item in items if item.get_closest_marker("long")]
    rest = [item for item in items if not item.get_closest_marker("long")]
    ordered: list[pytest.Item] = []
    left = len(items)
    for worker in range(workers):
        share = left // (workers - worker)  # as worksteal's first split counts them
        theirs = long[worker::workers]
        taken = max(0, share - len(theirs))
        ordered += theirs + rest[:taken]
        del rest[:taken]
        left -= share
    return ordered + rest


def _cache_rewritten_test_modules() -> None:
    """Import each test module once here, through pytest's assertion rewriter, with
    bytecode writing on: the rewriter then caches the rewritten module beside its source,
    and each worker loads that cache instead of rewriting the module again (about four
    CPU-seconds a worker on a fresh clone)."""
    writing = sys.dont_write_bytecode
    sys.dont_write_bytecode = False
    try:
        for module in sorted(TESTS.glob("test_*.py")):
            importlib.import_module(f"{__package__}.{module.stem}")
    finally:
        sys.dont_write_bytecode = writing


@pytest.fixture(scope="session")
def _launcher() -> Iterator[Launcher | None]:
    """The runs of this worker forked from its pre-imported fork server (tests/zygote.py),
    unless HALT_ROLLOUT_TEST_REAL_EXEC=1."""
    if real_exec_everywhere():
        yield None
        return
    launcher = Launcher()
    launch.use(launcher)
    try:
        yield launcher
    finally:
        launch.use(subprocess.Popen)
        launcher.close()


@pytest.fixture(autouse=True)
def _real_exec_when_marked(
    request: pytest.FixtureRequest, _launcher: Launcher | None
) -> Iterator[None]:
    """A test marked real_exec starts every run as a new process."""
    if _launcher is None or request.node.get_closest_marker("real_exec") is None:
        yield
        return
    _launcher.forking = False
    try:
        yield
    finally:
        _launcher.forking = True


# A run may end this much later than timeout-seconds on a loaded machine (the
# interpreter's own start, writing the outputs, exiting), never minutes later.
DEADLINE_ALLOWANCE = 6.0

# Inputs that pass validation, for tests that call read_settings directly.
VALID_INPUTS = {
    "app-id": APP_ID,
    "tenant-id": GUID,
    "client-id": GUID,
    "client-secret": "s3cr3t~value",
}

# The contract's example targets file.
CONTRACT_TARGETS = f"""\
targets:
  - name: Contoso Desktop
    app-id: {APP_ID}
  - name: Contoso Desktop (Insiders)
    app-id: {APP_ID}
    flight-id: {FLIGHT_ID}
  - app-id: {OTHER_APP}
    submission-id: "{OTHER_SUBMISSION}"
"""


class RunAction(Protocol):
    def __call__(
        self,
        inputs: Mapping[str, str | None] | None = None,
        *,
        env: Mapping[str, str | None] | None = None,
        files: Mapping[str, str] | None = None,
        timeout: float = 90,
    ) -> ActionRun: ...


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        emu.seed_demo()
        yield emu


def base_inputs(emu: Emulator) -> dict[str, str]:
    """Inputs of a plain single-target run with a client secret, against the emulator."""
    return {
        "app-id": APP_ID,
        "tenant-id": emu.tenant_id,
        "client-id": emu.client_id,
        "client-secret": emu.client_secret,
        "store-api-url": emu.url,
        "authority-host": emu.url,
    }


@pytest.fixture
def action(emulator: Emulator, tmp_path: Path) -> RunAction:
    """Run entrypoint.py as a subprocess; `None` removes an input or variable."""
    counter = iter(range(1000))

    def run(
        inputs: Mapping[str, str | None] | None = None,
        *,
        env: Mapping[str, str | None] | None = None,
        files: Mapping[str, str] | None = None,
        timeout: float = 90,
    ) -> ActionRun:
        merged = overlay(base_inputs(emulator), inputs)
        extra = {"REQUESTS_CA_BUNDLE": emulator.ca_path, **(env or {})}
        workdir = tmp_path / f"run{next(counter)}"
        workdir.mkdir()
        result = run_action(merged, extra_env=extra, workdir=workdir, files=files, timeout=timeout)
        # No expected outcome may ever show a Python traceback.
        assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
        return result

    return run


def secrets_of(emu: Emulator) -> list[str]:
    """Every secret a run could see: the client secret, OIDC and access tokens."""
    return [
        emu.client_secret,
        emu.oidc_request_token,
        *emu.issued_oidc_tokens,
        *emu.issued_access_tokens,
    ]


def visible_text(run: ActionRun) -> str:
    """Everything a person or a later step can read, but for the mask commands themselves."""
    log = "\n".join(line for line in run.stdout.splitlines() if not line.startswith("::add-mask::"))
    return "\n".join([log, run.stderr, run.summary, *run.outputs.values()])


@pytest.fixture(autouse=True)
def _no_workflow_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process code reads no workflow event: the CI run's own (a fork's pull request,
    say) is not the test's. Runs in a subprocess get only the event a test gives them."""
    monkeypatch.delenv("GITHUB_EVENT_NAME", raising=False)
    monkeypatch.delenv("GITHUB_EVENT_PATH", raising=False)


# The hostile world of the promise files (tests/world.py), for every test module. Last:
# tests/world.py takes the names above from this module.
from .world import start, world  # noqa: E402
