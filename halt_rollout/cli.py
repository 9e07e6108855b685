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
import re
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from . import STARTED, __version__, log_lines, step_outputs, streams
from .cancel import CANCELLATION, Cancellation
from .confirm import describe_rollout
from .deadline import Deadline
from .errors import InputError
from .evidence_report import sentence
from .github_oidc import oidc_available
from .guard_inputs import (
    DEFAULT_EVENT_TYPES,
    DEFAULT_FAILURE_RATIO,
    DEFAULT_MIN_FAILING_DEVICES,
    EVENT_TYPES,
)
from .halt import NOT_DONE, Result, TargetResult
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
from .settings_secrets import environment_secrets

SECRET_VARIABLE = "AZURE_CLIENT_SECRET"  # noqa: S105 (a variable name, not a secret)
# The missing secret, said to the person at a terminal first (the action says it for a job).
_NO_SECRET = (
    f"no client secret was found: set {SECRET_VARIABLE} to the Entra application's secret "
    f"without typing it into the command (`read -rs {SECRET_VARIABLE} && export "
    f"{SECRET_VARIABLE}`), or, in a GitHub workflow job, give the job `permissions: "
    "id-token: write` to sign in with OIDC (a federated credential on the Entra application)"
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error never prints an argument's value back: on a shared
    terminal or in a CI log, a mistyped secret would be shown to everyone."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(_unrecognized(extras))
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        # argparse quotes a value with %r ("ignored explicit argument 'VALUE'"): cut there.
        cut = min((message.find(q) for q in "'\"" if q in message), default=-1)
        if cut >= 0:
            message = message[:cut].rstrip(" :") + " (the value is not shown)"
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


# What is shown of an unrecognized option: a plain option name, never anything like a value.
_OPTION_NAME = re.compile(r"--?[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


def _unrecognized(extras: Sequence[str]) -> str:
    """What was not understood, by option name only; values are counted, never shown."""
    names = [extra.split("=", 1)[0] for extra in extras]
    options = [name for name in names if _OPTION_NAME.fullmatch(name)]
    others = len(extras) - len(options)
    parts = []
    if options:
        parts.append("unrecognized option " + ", ".join(dict.fromkeys(options)))
    if others:
        parts.append(
            f"{others} argument{'s' if others > 1 else ''} that {'are' if others > 1 else 'is'} "
            "not an option (not shown, in case it is a secret; every setting is a --flag, "
            "see --help)"
        )
    if any("secret" in option.lower() or "password" in option.lower() for option in options):
        parts.append(
            f"the client secret is never a flag (it would stay in shell history and process "
            f"lists): set {SECRET_VARIABLE}, or run inside a GitHub workflow with "
            "`id-token: write` to sign in with OIDC"
        )
    return "; ".join(parts)


# Every result the exit code counts as done, in the order of Result.
_OK = [r.value for r in Result if r not in NOT_DONE]
_SUCCESSES = ", ".join(_OK[:-1]) + " or " + _OK[-1]


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="halt-rollout",
        allow_abbrev=False,
        description="Halt the gradual package rollout of a Microsoft Store submission.",
        epilog=f"The client secret is read from {SECRET_VARIABLE}. Without it, inside a GitHub "
        "workflow with `id-token: write`, the job's OIDC token is used. Exit codes: 0 when "
        f"every target ended {_SUCCESSES}; 1 otherwise; 2 for a malformed command line.",
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
        help="halt only a submission whose newest package is this version (e.g. 1.4.2.0)",
    )
    guard = p.add_argument_group("halt on evidence")
    guard.add_argument(
        "--halt-when",
        default="now",
        metavar="now|failing",
        help="now: halt as asked (default); failing: halt only when the Store's failure data "
        "show the rolling-out version failing against the fallback version",
    )
    guard.add_argument(
        "--failure-ratio",
        default="",
        metavar="RATIO",
        help="with --halt-when failing: the margin, 1.1 to 100 "
        f"(default {DEFAULT_FAILURE_RATIO:g})",
    )
    guard.add_argument(
        "--min-failing-devices",
        default="",
        metavar="N",
        help="with --halt-when failing: never halt on fewer failing devices, 1 to 1000000 "
        f"(default {DEFAULT_MIN_FAILING_DEVICES})",
    )
    guard.add_argument(
        "--event-types",
        default="",
        metavar="KINDS",
        help="with --halt-when failing: the failure kinds that count, comma-separated: "
        f"{', '.join(EVENT_TYPES)} (default {','.join(DEFAULT_EVENT_TYPES)})",
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
    streams.prepare()  # a log or a result that cannot be written never stops the stop
    if cancellation is None:
        cancellation = CANCELLATION
        cancellation.install()
    cancellation.log_descriptor = 2  # standard output is for the results
    args = parser().parse_args(argv)
    secret = os.environ.get(SECRET_VARIABLE, "").strip()
    redact = Redactor()
    # Masked before anything is printed: the secret, and those the environment carries.
    for hidden in (secret, *environment_secrets()):
        redact.add(hidden)  # an empty one is ignored
    lock = threading.Lock()

    def log(line: str) -> None:
        shown = inert(visible(redact(line)))  # inside a workflow step, the runner's log too
        with lock:
            streams.guarded("stderr", lambda: print(shown, file=sys.stderr))

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
        "halt-when": args.halt_when.strip(),
        "failure-ratio": args.failure_ratio.strip(),
        "min-failing-devices": args.min_failing_devices.strip(),
        "event-types": args.event_types.strip(),
        "timeout-seconds": args.timeout.strip(),
        "store-api-url": args.store_api_url.strip(),
        "authority-host": args.authority_host.strip(),
    }
    # Why and who first: in a terminal, who is the person at it.
    who = dict(os.environ)
    if not who.get("GITHUB_ACTOR"):
        with contextlib.suppress(Exception):  # no such user: who stays unknown
            who["GITHUB_ACTOR"] = getpass.getuser()
    for line in incident_from(who, read_reason(raw["reason"], [])).log_lines("--reason"):
        log(line)
    oidc = oidc_available()
    try:
        settings = read_settings(raw, workspace=None, oidc_available=oidc)
    except InputError as error:
        hint = ""
        if any(name in error.message for name in ("tenant-id", "client-id", "client-secret")):
            hint = (
                " (Here tenant-id is --tenant-id or $AZURE_TENANT_ID, client-id is --client-id "
                f"or $AZURE_CLIENT_ID, and the client secret comes from ${SECRET_VARIABLE}.)"
            )
        problems = [_NO_SECRET if p.startswith("no client-secret") else p for p in error.problems]
        log(f"error: {error.title}: {'; '.join(problems)}. Nothing was sent to the Store.{hint}")
        if args.json:
            text = _json_text(json.dumps(_json_outputs([]), indent=2))
            streams.guarded("stdout", lambda: print(text))
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
    if args.json:
        # Escaped to ASCII where the stream cannot write every character: the same JSON.
        ascii_only = not streams.encodes_everything(sys.stdout)
        data = _json_outputs(results)
        text = _json_text(redact(json.dumps(data, indent=2, ensure_ascii=ascii_only)))
    else:
        text = "\n".join(inert(visible(redact(_line(result)))) for result in results)
    if text and not streams.guarded("stdout", lambda: print(text)):
        # Standard output closed (`| head`) or gone: the results go to the log instead.
        log("error: the results could not be printed; they were:")
        for line in log_lines.result_lines(results):
            log(f"  {line}")
    return 0 if all(result.ok for result in results) and not cancellation.cancelled else 1


def _json_outputs(results: Sequence[TargetResult]) -> dict[str, Any]:
    """The action's outputs as JSON, one type per key: a key that `results` has too is
    typed as there (`rollout-percentage` a number, an unknown value null), `results`
    and other JSON outputs (`evidence`) are arrays, `result` a string. Every record: a
    terminal has no environment variable's limit to keep to."""
    records = [step_outputs.result_record(result) for result in results]
    texts = step_outputs.outputs(results) if results else step_outputs.failed_outputs()
    data: dict[str, Any] = {}
    for name, text in texts.items():
        if name == "result":
            data[name] = text
        elif name == "results":
            data[name] = records
        elif name in _RECORD_KEYS:
            values = [record.get(name) for record in records]
            data[name] = values[0] if values and values.count(values[0]) == len(values) else None
        elif text.startswith(("[", "{")):
            data[name] = json.loads(text)
        else:
            data[name] = [] if name in _LIST_OUTPUTS else (text or None)
    return data


# Outputs that are also keys of each `results` record, and outputs that are JSON arrays.
_RECORD_KEYS = frozenset(
    {"status", "fallback-submission-id", "rollout-percentage", "submission-id"}
)
_LIST_OUTPUTS = frozenset({"results", "evidence"})


def _line(result: TargetResult) -> str:
    state = f" ({describe_rollout(result.rollout)})" if result.rollout else ""
    submission = f" submission {result.submission_id}" if result.submission_id else ""
    text = f"{result.target.label}{submission}: {result.result}{state}"
    if result.judgement is not None:
        text += f"\n  evidence: {sentence(result)}"
    if result.failure:
        text += f"\n  {result.failure.title}: {result.failure.message}"
    return text


def _json_text(text: str) -> str:
    """JSON that the runner's log will not take for a command: `##[` only occurs inside
    strings, where `\\u005b` is the same `[`; no line starts with `::`. Invisible
    characters are written as escapes: the same data, visibly."""
    return json_visible(text.replace("##[", "##\\u005b"))
