"""`make try`: the command line against the local Store emulator, without Azure.

Starts the emulator (Entra ID and the Store API on loopback, over HTTPS with a CA of its
own), seeded with the documented examples and the demo's guarded apps, and prints the exact
environment and the `halt-rollout` commands to run against it from another terminal. The
client secret it prints is the emulator's own, made up for this run; nothing here reaches
Microsoft.
Ctrl-C stops it.
"""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from store_emulator import Emulator  # noqa: E402 (after the path is set)
from store_emulator.demo import (  # noqa: E402
    APP_ID,
    FLIGHT_ID,
    GUARD_FAILING_APP,
    GUARD_HEALTHY_APP,
    WHOLE_APP_ID,
)

ENV_FILE = REPO / ".try" / "env"


def instructions(emulator: Emulator, command: str) -> str:
    """What to paste into another terminal: the environment, then commands to try."""
    settings = {
        "REQUESTS_CA_BUNDLE": emulator.ca_path,
        "AZURE_TENANT_ID": emulator.tenant_id,
        "AZURE_CLIENT_ID": emulator.client_id,
        "AZURE_CLIENT_SECRET": emulator.client_secret,
    }
    urls = f"--store-api-url {emulator.url} --authority-host {emulator.url}"
    exports = "\n".join(f"export {k}={shlex.quote(v)}" for k, v in settings.items())
    tries = [
        ("a dry run: reads the rollout, sends nothing", f"--app-id {APP_ID} --dry-run"),
        ("the halt", f"--app-id {APP_ID} --reason 'trying it out'"),
        ("again: already halted, nothing sent", f"--app-id {APP_ID}"),
        ("a package flight", f"--app-id {APP_ID} --flight-id {FLIGHT_ID} --json"),
        ("every rollout of an app with 23 flights", f"--app-id {WHOLE_APP_ID} --all-flights"),
        (
            "the guard, on a rollout failing no more than the old version: healthy, nothing sent",
            f"--app-id {GUARD_HEALTHY_APP} --halt-when failing",
        ),
        (
            "the guard, on a rollout that fails far more: halted on the Store's failure data",
            f"--app-id {GUARD_FAILING_APP} --halt-when failing --reason 'the hourly guard'",
        ),
    ]
    lines = [
        f"The Store emulator serves at {emulator.url} (Ctrl-C stops it).",
        "In another terminal, in this directory, set the environment (also in "
        f"{ENV_FILE.relative_to(REPO)}):",
        "",
        exports,
        "",
        "then try:",
    ]
    for why, args in tries:
        lines += ["", f"# {why}", f"{command} {urls} {args}"]
    return "\n".join(lines)


def main() -> int:
    stop = threading.Event()

    def stopping(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, stopping)
    signal.signal(signal.SIGTERM, stopping)
    binary = Path(sys.executable).parent / "halt-rollout"
    command = shlex.quote(str(binary.relative_to(REPO) if binary.is_relative_to(REPO) else binary))
    with Emulator() as emulator:
        emulator.seed_demo()
        emulator.seed_whole_app()
        emulator.seed_guard()
        text = instructions(emulator, command)
        ENV_FILE.parent.mkdir(exist_ok=True)
        ENV_FILE.write_text(
            "\n".join(line for line in text.splitlines() if line.startswith("export ")) + "\n",
            encoding="utf-8",
        )
        print(text, flush=True)
        stop.wait()
    ENV_FILE.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
