"""The command line: the same halt, for a laptop, Azure DevOps, any CI or `docker run`.

Only the edges differ from the action: flags and environment variables in,
plain text (or JSON) out. The secret is read from AZURE_CLIENT_SECRET, never a
flag, so it stays out of shell history and process lists.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import NoReturn

from . import STARTED, __version__, log_lines, step_outputs
from .cancel import CANCELLATION, Cancellation
from .deadline import Deadline
from .errors import InputError
from .github_oidc import oidc_available
from .halt import TargetResult, describe_rollout
from .incident import incident_from
from .inputs import (
    DEFAULT_AUTHORITY_HOST,
    DEFAULT_STORE_API_URL,
    DEFAULT_TIMEOUT_SECONDS,
    read_reason,
    read_settings,
)
from .process_exit import exit_now
from .redact import Redactor, inert, json_visible, visible
from .run import run

SECRET_VARIABLE = "AZURE_CLIENT_SECRET"  # noqa: S105 (a variable name, not a secret)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="halt-rollout",
        description="Halt the gradual package rollout of a Microsoft Store submission.",
        epilog=f"The client secret is read from {SECRET_VARIABLE}. Without it, inside a GitHub "
        "workflow with `id-token: write`, the job's OIDC token is used. Exit codes: 0 when "
        "every target ended halted, already-halted or dry-run; 1 otherwise; 2 for a "
        "malformed command line.",
    )
    which = p.add_argument_group("what to halt")
    which.add_argument("--app-id", default="", help="Store ID of the app, e.g. 9NBLGGH4R315")
    which.add_argument(
        "--submission-id", default="", help="submission to halt (default: last published)"
    )
    which.add_argument("--flight-id", default="", help="package flight (GUID) to halt instead")
    which.add_argument(
        "--all-flights",
        action="store_true",
        help="halt every rollout of the app: its own and each package flight's",
    )
    which.add_argument("--targets", default="", metavar="FILE", help="YAML file of targets")
    which.add_argument(
        "--expected-version",
        default="",
        metavar="VERSION",
        help="halt only a submission whose packages carry this version (e.g. 1.4.2.0)",
    )
    sign_in = p.add_argument_group("sign-in")
    sign_in.add_argument(
        "--tenant-id", default=os.environ.get("AZURE_TENANT_ID", ""), help="$AZURE_TENANT_ID"
    )
    sign_in.add_argument(
        "--client-id", default=os.environ.get("AZURE_CLIENT_ID", ""), help="$AZURE_CLIENT_ID"
    )
    run_options = p.add_argument_group("run")
    run_options.add_argument("--dry-run", action="store_true", help="read and report; never halt")
    run_options.add_argument(
        "--reason", default="", help="why the stop was pressed, shown in the log and summary"
    )
    run_options.add_argument(
        "--timeout",
        default=f"{DEFAULT_TIMEOUT_SECONDS:g}",
        metavar="SECONDS",
        help="deadline for the whole run (default %(default)s)",
    )
    run_options.add_argument("--store-api-url", default=DEFAULT_STORE_API_URL)
    run_options.add_argument("--authority-host", default=DEFAULT_AUTHORITY_HOST)
    run_options.add_argument("--json", action="store_true", help="print the outputs as JSON")
    p.add_argument("--version", action="version", version=f"halt-rollout {__version__}")
    return p


def console() -> NoReturn:
    """The `halt-rollout` command and `python -m halt_rollout`: the deadline counts from
    when the package began to load, and the process ends as soon as the work is done."""
    exit_now(main(started=STARTED))


def main(
    argv: Sequence[str] | None = None,
    *,
    started: float | None = None,
    cancellation: Cancellation | None = None,
) -> int:
    """The command line; `started` is when the run began (default: now). Ctrl-C (or
    SIGTERM) cancels as in the action: what is known is printed, then exit 1."""
    started = time.monotonic() if started is None else started
    if cancellation is None:
        cancellation = CANCELLATION
        cancellation.install()
    cancellation.log_descriptor = 2  # standard output is for the results
    args = parser().parse_args(argv)
    secret = os.environ.get(SECRET_VARIABLE, "").strip()
    redact = Redactor()
    if secret:
        redact.add(secret)
    lock = threading.Lock()

    def log(line: str) -> None:
        with lock:
            # Inside a workflow step this is the runner's log too: data stays data.
            print(inert(visible(redact(line))), file=sys.stderr, flush=True)

    raw = {
        "app-id": args.app_id.strip(),
        "submission-id": args.submission_id.strip(),
        "flight-id": args.flight_id.strip(),
        "all-flights": "true" if args.all_flights else "false",
        "targets": args.targets.strip(),
        "tenant-id": args.tenant_id.strip(),
        "client-id": args.client_id.strip(),
        "client-secret": secret,
        "dry-run": "true" if args.dry_run else "false",
        "expected-version": args.expected_version.strip(),
        "reason": args.reason,
        "timeout-seconds": args.timeout.strip(),
        "store-api-url": args.store_api_url.strip(),
        "authority-host": args.authority_host.strip(),
    }
    # Why and who first: in a terminal, who is the person at it.
    who = dict(os.environ)
    if not who.get("GITHUB_ACTOR"):
        with contextlib.suppress(Exception):  # no such user: who stays unknown
            who["GITHUB_ACTOR"] = getpass.getuser()
    for line in incident_from(who, read_reason(raw["reason"], [])).log_lines():
        log(line)
    try:
        settings = read_settings(raw, workspace=None, oidc_available=oidc_available())
    except InputError as error:
        hint = ""
        if any(name in error.message for name in ("tenant-id", "client-id", "client-secret")):
            hint = (
                " (Here tenant-id is --tenant-id or $AZURE_TENANT_ID, client-id is --client-id "
                f"or $AZURE_CLIENT_ID, and the client secret comes from ${SECRET_VARIABLE}.)"
            )
        log(f"error: {error.title}: {error.message}{hint}")
        if args.json:
            print(
                _json_text(json.dumps({**step_outputs.failed_outputs(), "results": []}, indent=2))
            )
        return 1
    deadline = Deadline(settings.timeout_seconds, started=started)
    cancellation.watch(deadline)
    results = run(settings, log=log, protect=redact.add, deadline=deadline)
    if cancellation.why:
        title, message = log_lines.cancelled_annotation(results, cancellation.why)
        log(f"error: {title}: {message}")
    for result in results:
        if result.failure:
            log(f"error: {result.target.label}: {result.failure.title}: {result.failure.message}")
    try:
        if args.json:
            data = {
                **step_outputs.outputs(results),
                # Every record: a terminal has no environment variable's limit to keep to.
                "results": [step_outputs.result_record(result) for result in results],
            }
            print(_json_text(redact(json.dumps(data, indent=2, ensure_ascii=False))))
        else:
            for result in results:
                print(inert(visible(redact(_line(result)))))
        sys.stdout.flush()
    except OSError as error:  # standard output closed (`| head`) or gone: say it on stderr
        _let_go_of_stdout()
        log(f"error: the results could not be printed ({error.strerror or error}); they were:")
        for line in log_lines.result_lines(results):
            log(f"  {line}")
        return 1
    return 0 if all(result.ok for result in results) and not cancellation.cancelled else 1


def _let_go_of_stdout() -> None:
    """Point standard output at the null device, so the exit's own flush cannot fail."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _line(result: TargetResult) -> str:
    state = f" ({describe_rollout(result.rollout)})" if result.rollout else ""
    submission = f" submission {result.submission_id}" if result.submission_id else ""
    text = f"{result.target.label}{submission}: {result.result}{state}"
    if result.failure:
        text += f"\n  {result.failure.title}: {result.failure.message}"
    return text


def _json_text(text: str) -> str:
    """JSON that the runner's log will not take for a command: `##[` only occurs inside
    strings, where `\\u005b` is the same `[`; no line starts with `::`. Invisible
    characters are written as escapes: the same data, visibly."""
    return json_visible(text.replace("##[", "##\\u005b"))
