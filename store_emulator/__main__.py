"""python -m store_emulator: run the emulator as a process until SIGTERM or SIGINT.

Once it serves, the facts a client needs are printed as one JSON line on stdout and, with
--env-file, written there as KEY=VALUE lines (EMULATOR_URL, EMULATOR_CA_PATH, ...), a
format both `docker run --env-file` and a POSIX shell's `.` read.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from .emulator import Emulator


class _Stop(Exception):
    pass


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _write_env_file(path: Path, facts: dict[str, str]) -> None:
    text = "".join(f"EMULATOR_{key.upper()}={value}\n" for key, value in facts.items())
    # Written whole, then renamed: a script polling for the file never reads half of it.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m store_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument(
        "--seed",
        action="append",
        default=[],
        choices=["demo", "whole-app", "guard"],
        help="load the documented examples (demo), the app with 23 flights (whole-app) or "
        "the guarded apps with their analytics (guard); repeatable",
    )
    parser.add_argument(
        "--extra-host",
        action="append",
        default=[],
        metavar="NAME_OR_IP",
        help="another name or IP address for the server certificate (repeatable)",
    )
    parser.add_argument(
        "--url-host",
        metavar="NAME_OR_IP",
        help="the name the printed URLs use, e.g. the address a container reaches this host "
        "at (default: --host, or 127.0.0.1 when listening on all interfaces)",
    )
    parser.add_argument("--env-file", type=Path, help="where to write the facts as KEY=VALUE")
    parser.add_argument("--verbose", action="store_true", help="log each request on stderr")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    emulator = Emulator(
        args.extra_host,
        host=args.host,
        port=args.port,
        verbose=args.verbose,
        url_host=args.url_host,
    )
    try:
        emulator.start()
        if "demo" in args.seed:
            emulator.seed_demo()
        if "whole-app" in args.seed:
            emulator.seed_whole_app()
        if "guard" in args.seed:
            emulator.seed_guard()
        facts = emulator.facts()
        if args.env_file is not None:
            _write_env_file(args.env_file, facts)
        print(json.dumps(facts), flush=True)
        while True:
            time.sleep(3600)
    except _Stop:
        return 0
    finally:
        # A second signal must not interrupt the clean-up.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        emulator.stop()


if __name__ == "__main__":
    sys.exit(main())
