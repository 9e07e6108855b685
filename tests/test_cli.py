"""The command line keeps the action's promises outside a container (the contract's
"Running it outside a container"), end to end as a person or another CI system runs it.

`python -m halt_rollout` (and the image's entry point given arguments, as with
`docker run IMAGE --app-id …`) is run as a subprocess, with the secret in
AZURE_CLIENT_SECRET and no GitHub runner variables. Each test asserts what a
user can see: the exit code, stdout (the results, or JSON), stderr (the log and
errors), and what the Store was (or was not) sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
import yaml

from store_emulator import Emulator, Fault, demo
from store_emulator.action_files import ACTION_YML

from .conftest import (
    APP_ID,
    CONTRACT_TARGETS,
    FLIGHT_ID,
    PUBLISHED,
    secrets_of,
)
from .world import (
    APP,
    World,
    command_line,
    many_apps,
    run_command,
)

REPO = Path(__file__).resolve().parent.parent
MISSING_APP = "9XXXXXXXXXXX"
IN_PROGRESS = "PackageRolloutInProgress"
STOPPED = "PackageRolloutStopped"
# How the command is started: the module, or the image's entry point given arguments.
MODULE = ("-m", "halt_rollout")
ENTRYPOINT = (str(REPO / "entrypoint.py"),)


@dataclass(frozen=True)
class CliRun:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, object]:
        data = json.loads(self.stdout)
        assert isinstance(data, dict)
        return data


class RunCli(Protocol):
    def __call__(
        self,
        *args: str,
        env: Mapping[str, str | None] | None = None,
        sign_in_flags: bool = True,
        launcher: Sequence[str] = MODULE,
    ) -> CliRun: ...


def clean_environment() -> dict[str, str]:
    """This process's environment without anything of a runner, an Azure login or a CA choice."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("INPUT_", "GITHUB_", "ACTIONS_", "RUNNER_", "AZURE_"))
        and key not in ("CI", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")
    }


@pytest.fixture
def cli(emulator: Emulator, tmp_path: Path) -> RunCli:
    """Run the command line as a subprocess from a scratch directory outside the repository.

    `sign_in_flags` adds --tenant-id and --client-id; the Store and authority URLs are
    always the emulator's. In `env`, None removes a variable.
    """

    def run(
        *args: str,
        env: Mapping[str, str | None] | None = None,
        sign_in_flags: bool = True,
        launcher: Sequence[str] = MODULE,
    ) -> CliRun:
        environment = clean_environment() | {
            "PYTHONPATH": str(REPO),
            "AZURE_CLIENT_SECRET": emulator.client_secret,
            "REQUESTS_CA_BUNDLE": emulator.ca_path,
        }
        for key, value in (env or {}).items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = value
        flags = ["--store-api-url", emulator.url, "--authority-host", emulator.url]
        if sign_in_flags:
            flags += ["--tenant-id", emulator.tenant_id, "--client-id", emulator.client_id]
        completed = run_command(
            [sys.executable, *launcher, *flags, *args],
            env=environment,
            cwd=tmp_path,
        )
        result = CliRun(completed.returncode, completed.stdout, completed.stderr)
        seen = result.stdout + result.stderr
        # No expected outcome may show a traceback, a workflow command, or a secret.
        assert "Traceback" not in seen, seen
        assert "::" not in result.stdout, seen
        for secret in secrets_of(emulator):
            assert secret not in seen, "a secret reached the output"
        return result

    return run


def only_record(outputs: dict[str, object]) -> dict[str, object]:
    records = outputs["results"]
    assert isinstance(records, list)
    assert len(records) == 1
    record = records[0]
    assert isinstance(record, dict)
    return record


# Halting --------------------------------------------------------------------------------


@pytest.mark.parametrize("launcher", [MODULE, ENTRYPOINT], ids=["module", "entrypoint"])
def test_halts_and_says_so_on_one_line(
    cli: RunCli, emulator: Emulator, launcher: Sequence[str]
) -> None:
    run = cli("--app-id", APP_ID, launcher=launcher)
    assert run.exit_code == 0, run.stderr
    # stdout holds the result only; the progress log is on stderr.
    assert run.stdout.splitlines() == [
        f"{APP_ID} submission {PUBLISHED}: halted "
        f"(PackageRolloutStopped at 0%; users outside it get submission {demo.FALLBACK})"
    ]
    assert "signed in to Microsoft Entra ID" in run.stderr
    assert f"halting the rollout of submission {PUBLISHED}" in run.stderr
    [halt] = emulator.halt_requests
    assert halt.path == f"/v1.0/my/applications/{APP_ID}/submissions/{PUBLISHED}/haltpackagerollout"
    assert demo.PENDING not in " ".join(r.path for r in emulator.store_requests)
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == STOPPED


@pytest.mark.parametrize("launcher", [MODULE, ENTRYPOINT], ids=["module", "entrypoint"])
def test_json_prints_the_actions_outputs_with_results_as_a_list(
    cli: RunCli, launcher: Sequence[str]
) -> None:
    run = cli("--app-id", APP_ID, "--json", launcher=launcher)
    assert run.exit_code == 0, run.stderr
    outputs = run.json()
    assert set(outputs) == set(yaml.safe_load(ACTION_YML.read_text(encoding="utf-8"))["outputs"])
    assert isinstance(outputs["results"], list)
    assert outputs["result"] == "halted"
    assert outputs["status"] == STOPPED
    assert outputs["submission-id"] == PUBLISHED
    assert outputs["fallback-submission-id"] == demo.FALLBACK
    assert outputs["rollout-percentage"] == 0.0  # a number, as in `results`
    assert only_record(outputs) == {
        "name": APP_ID,
        "app-id": APP_ID,
        "flight-id": None,
        "submission-id": PUBLISHED,
        "result": "halted",
        "status": STOPPED,
        "fallback-submission-id": demo.FALLBACK,
        "rollout-percentage": 0.0,
        "versions": None,
    }


def test_running_twice_halts_once(cli: RunCli, emulator: Emulator) -> None:
    first = cli("--app-id", APP_ID, "--json")
    second = cli("--app-id", APP_ID, "--json")
    assert (first.json()["result"], second.json()["result"]) == ("halted", "already-halted")
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert len(emulator.halt_requests) == 1


def test_dry_run_reads_and_reports_but_never_halts(cli: RunCli, emulator: Emulator) -> None:
    run = cli("--app-id", APP_ID, "--dry-run", "--json")
    assert run.exit_code == 0, run.stderr
    outputs = run.json()
    assert outputs["result"] == "dry-run"
    assert outputs["status"] == IN_PROGRESS
    assert outputs["submission-id"] == PUBLISHED
    assert "dry run" in run.stderr
    assert emulator.halt_requests == []
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == IN_PROGRESS


def test_flight_id_halts_the_flight_submission(cli: RunCli, emulator: Emulator) -> None:
    run = cli("--app-id", APP_ID, "--flight-id", FLIGHT_ID, "--json")
    assert run.exit_code == 0, run.stderr
    assert only_record(run.json())["flight-id"] == FLIGHT_ID
    [halt] = emulator.halt_requests
    assert halt.path == (
        f"/v1.0/my/applications/{APP_ID}/flights/{FLIGHT_ID}/submissions/{PUBLISHED}"
        "/haltpackagerollout"
    )
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == IN_PROGRESS
    assert emulator.rollout(APP_ID, PUBLISHED, FLIGHT_ID)["packageRolloutStatus"] == STOPPED


TARGETS_YAML = CONTRACT_TARGETS


@pytest.mark.parametrize("how", ["absolute", "relative"])
def test_targets_file_is_a_plain_path_anywhere(
    cli: RunCli, emulator: Emulator, tmp_path: Path, how: str
) -> None:
    # Outside the repository and any workspace; relative paths are from the current directory.
    targets = tmp_path / "elsewhere" / "targets.yml"
    targets.parent.mkdir()
    targets.write_text(TARGETS_YAML, encoding="utf-8")
    path = str(targets) if how == "absolute" else "elsewhere/targets.yml"
    run = cli("--targets", path, "--json")
    assert run.exit_code == 0, run.stderr
    outputs = run.json()
    assert outputs["result"] == "halted"
    records = outputs["results"]
    assert isinstance(records, list)
    assert [(r["name"], r["result"], r["submission-id"]) for r in records] == [
        ("Contoso Desktop", "halted", PUBLISHED),
        ("Contoso Desktop (Insiders)", "halted", PUBLISHED),
        (demo.OTHER_APP, "halted", demo.OTHER_SUBMISSION),
    ]
    assert len(emulator.halt_requests) == 3
    assert (
        emulator.rollout(demo.OTHER_APP, demo.OTHER_SUBMISSION)["packageRolloutStatus"] == STOPPED
    )


def test_targets_human_output_has_one_line_per_target(cli: RunCli, tmp_path: Path) -> None:
    targets = tmp_path / "targets.yml"
    targets.write_text(TARGETS_YAML, encoding="utf-8")
    run = cli("--targets", str(targets))
    assert run.exit_code == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"Contoso Desktop submission {PUBLISHED}: halted")
    assert lines[1].startswith(f"Contoso Desktop (Insiders) submission {PUBLISHED}: halted")
    assert lines[2].startswith(f"{demo.OTHER_APP} submission {demo.OTHER_SUBMISSION}: halted")


def test_console_script_is_the_cli(cli: RunCli, emulator: Emulator) -> None:
    script = Path(sys.executable).parent / "halt-rollout"
    if not script.is_file():
        pytest.skip("the package is not installed in this environment (make venv installs it)")
    run = cli("--app-id", APP_ID, "--json", launcher=(str(script),))
    assert run.exit_code == 0, run.stderr
    assert run.json()["result"] == "halted"
    assert len(emulator.halt_requests) == 1


# Failures -------------------------------------------------------------------------------


def _not_found_correlation_id(emulator: Emulator) -> str:
    [lookup] = emulator.store_requests
    assert lookup.path == f"/v1.0/my/applications/{MISSING_APP}"
    assert lookup.status == 404
    assert lookup.correlation_id
    return lookup.correlation_id


def test_not_found_fails_with_the_status_and_correlation_id(
    cli: RunCli, emulator: Emulator
) -> None:
    run = cli("--app-id", MISSING_APP)
    assert run.exit_code == 1
    correlation_id = _not_found_correlation_id(emulator)
    seen = run.stdout + run.stderr
    assert "Not found in the Store (HTTP 404)" in seen
    assert f"MS-CorrelationId: {correlation_id}" in seen
    assert f"{MISSING_APP}: failed" in run.stdout
    assert emulator.halt_requests == []


def test_not_found_in_json_carries_the_error(cli: RunCli, emulator: Emulator) -> None:
    run = cli("--app-id", MISSING_APP, "--json")
    assert run.exit_code == 1
    outputs = run.json()
    assert outputs["result"] == "failed"
    error = only_record(outputs)["error"]
    assert isinstance(error, str)
    assert "HTTP 404" in error
    assert f"MS-CorrelationId: {_not_found_correlation_id(emulator)}" in error


def test_not_found_error_is_on_stderr(cli: RunCli, emulator: Emulator) -> None:
    run = cli("--app-id", MISSING_APP, "--json")
    assert run.exit_code == 1
    assert "HTTP 404" in run.stderr
    assert f"MS-CorrelationId: {_not_found_correlation_id(emulator)}" in run.stderr


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--app-id", "9NBL/../x"], "app-id '9NBL/../x' is not a Store ID"),
        (["--app-id", APP_ID, "--submission-id", "123?x=1"], "is not a number"),
        (["--app-id", APP_ID, "--flight-id", "../../x"], "is not a GUID"),
        (["--app-id", APP_ID, "--timeout", "0"], "timeout-seconds must be a positive number"),
        (["--app-id", APP_ID, "--store-api-url", "http://127.0.0.1:1"], "must be an https:// URL"),
        ([], "app-id is required unless targets is given"),
        (["--app-id", APP_ID, "--targets", "t.yml"], "give either targets or app-id"),
        (["--targets", "no-such-file.yml"], "cannot be read"),
    ],
    ids=["app-id", "submission-id", "flight-id", "timeout", "http", "no-app", "both", "no-file"],
)
def test_bad_input_fails_with_one_line_and_sends_nothing(
    cli: RunCli, emulator: Emulator, args: list[str], problem: str
) -> None:
    run = cli(*args)
    assert run.exit_code == 1
    assert run.stdout == ""
    why, who, line = run.stderr.splitlines()  # the incident's record, then the one error
    assert why == "Reason: none given (--reason records why)"
    assert who.startswith("Started by: ")
    assert line.startswith("error: Invalid input: ")
    assert problem in line
    assert line.endswith("Nothing was sent to the Store.")
    assert emulator.requests == []


def test_bad_input_with_json_prints_failed_outputs(cli: RunCli, emulator: Emulator) -> None:
    run = cli("--app-id", "9NBL/../x", "--json")
    assert run.exit_code == 1
    outputs = run.json()
    assert outputs["result"] == "failed"
    assert outputs["results"] == []
    assert "Invalid input" in run.stderr
    assert emulator.requests == []


def test_no_secret_and_no_oidc_fails_before_sending_anything(
    cli: RunCli, emulator: Emulator
) -> None:
    run = cli("--app-id", APP_ID, env={"AZURE_CLIENT_SECRET": None})
    assert run.exit_code == 1
    # The fix for the person at the terminal comes first; no action's wording.
    assert "no client secret was found: set AZURE_CLIENT_SECRET" in run.stderr
    assert "the reason input" not in run.stderr
    assert run.stderr.index("set AZURE_CLIENT_SECRET") < run.stderr.index("id-token: write")
    assert emulator.requests == []


SECRET_TYPED = "Qx7~typed.as-a-flag_0123456789abcdefSECRET"
# A token of lower-case letters and digits reads like an option name.
SECRET_LOWER_CASE = "glpat4x9k2m7q1w8e3r5t6y0u"


@pytest.mark.parametrize(
    "args",
    [
        ["--client-secret", SECRET_TYPED],
        [f"--client-secret={SECRET_TYPED}"],
        ["--app-id", APP_ID, SECRET_TYPED],
        [f"--dry-run={SECRET_TYPED}"],
        [f"--{SECRET_TYPED}"],
        ["--client-secret", f"-{SECRET_LOWER_CASE}"],
        [f"--{SECRET_LOWER_CASE}"],
    ],
    ids=[
        *("flag-then-value", "flag=value", "positional", "value-for-a-switch", "as-a-flag"),
        *("a value starting with a dash", "lower case as a flag"),
    ],
)
def test_a_usage_error_never_prints_a_value_back(
    cli: RunCli, emulator: Emulator, args: list[str]
) -> None:
    run = cli(*args)
    assert run.exit_code == 2
    assert SECRET_TYPED not in run.stdout + run.stderr
    assert SECRET_TYPED[:12] not in run.stderr
    assert SECRET_LOWER_CASE[:12] not in run.stdout + run.stderr
    assert emulator.requests == []


def test_a_secret_tried_as_a_flag_says_where_secrets_come_from(cli: RunCli) -> None:
    run = cli("--client-secret", SECRET_TYPED, "--app-id", APP_ID)
    assert run.exit_code == 2
    assert "unrecognized option --client-secret" in run.stderr
    assert "set AZURE_CLIENT_SECRET" in run.stderr
    assert "OIDC" in run.stderr


@pytest.mark.parametrize(
    "url",
    [
        "https://apps.microsoft.com/detail/9pk3zq7wmx2d?hl=en-US",
        "https://apps.microsoft.com/store/detail/contoso-desktop/9PK3ZQ7WMX2D",
        "https://www.microsoft.com/en-us/p/contoso-desktop/9pk3zq7wmx2d",
        "ms-windows-store://pdp/?productid=9PK3ZQ7WMX2D",
    ],
)
def test_a_store_page_address_as_app_id_names_the_id_in_it(
    cli: RunCli, emulator: Emulator, url: str
) -> None:
    run = cli("--app-id", url)
    assert run.exit_code == 1
    assert "is the address of a Store page, not a Store ID (did you mean 9PK3ZQ7WMX2D?)" in (
        run.stderr
    )
    assert emulator.requests == []


def test_a_lower_case_app_id_not_found_hints_at_case(cli: RunCli, emulator: Emulator) -> None:
    run = cli("--app-id", APP_ID.lower())
    assert run.exit_code == 1
    assert "Not found in the Store (HTTP 404)" in run.stderr
    assert f"Store IDs are upper case: did you mean {APP_ID}?" in run.stderr
    assert emulator.halt_requests == []
    # An upper-case ID that is not found gets no such hint.
    missing = cli("--app-id", MISSING_APP)
    assert "upper case" not in missing.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--app-id", APP_ID],
        ["--app-id", APP_ID, "--all-flights"],
        ["--app-id", MISSING_APP],
        ["--app-id", "not/valid"],
    ],
    ids=["halted", "several-rollouts", "not-found", "invalid-input"],
)
def test_json_gives_each_key_one_type(cli: RunCli, args: list[str]) -> None:
    """`rollout-percentage` is a number (or null) at the top level as in `results`; every
    key has one type whatever the run came to, so a script reads it without guessing."""
    outputs = cli(*args, "--json").json()
    assert isinstance(outputs["result"], str)
    assert isinstance(outputs["results"], list)
    kinds = {
        "status": (str, type(None)),
        "fallback-submission-id": (str, type(None)),
        "rollout-percentage": (int, float, type(None)),
        "submission-id": (str, type(None)),
    }
    for record in [outputs, *outputs["results"]]:
        assert isinstance(record, dict)
        for key, allowed in kinds.items():
            assert isinstance(record[key], allowed), (key, record[key])
    for key in set(outputs) - {"result", "results", *kinds}:
        assert isinstance(outputs[key], list), key  # evidence, and any JSON output


@pytest.mark.parametrize(
    "args",
    [["--bogus"], ["--app-id"], ["--app-id", APP_ID, "extra"]],
    ids=["unknown-flag", "missing-value", "positional"],
)
@pytest.mark.parametrize("launcher", [MODULE, ENTRYPOINT], ids=["module", "entrypoint"])
def test_malformed_command_line_exits_2_with_usage(
    cli: RunCli, emulator: Emulator, args: list[str], launcher: Sequence[str]
) -> None:
    run = cli(*args, launcher=launcher)
    assert run.exit_code == 2
    assert run.stdout == ""
    assert run.stderr.startswith("usage: halt-rollout")
    assert emulator.requests == []


# Sign-in and secrets --------------------------------------------------------------------


def test_tenant_and_client_default_to_the_azure_variables(cli: RunCli, emulator: Emulator) -> None:
    run = cli(
        "--app-id",
        APP_ID,
        sign_in_flags=False,
        env={"AZURE_TENANT_ID": emulator.tenant_id, "AZURE_CLIENT_ID": emulator.client_id},
    )
    assert run.exit_code == 0, run.stderr
    assert ": halted" in run.stdout
    token_request = next(r for r in emulator.requests if r.path.endswith("/token"))
    assert token_request.path == f"/{emulator.tenant_id}/oauth2/v2.0/token"
    assert f"client_id={emulator.client_id}" in token_request.body.decode()


def test_flags_win_over_the_azure_variables(cli: RunCli, emulator: Emulator) -> None:
    run = cli(
        "--app-id",
        APP_ID,
        env={
            "AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000000",
            "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000000",
        },
    )
    assert run.exit_code == 0, run.stderr
    assert len(emulator.halt_requests) == 1


def test_without_tenant_the_missing_variable_is_named(cli: RunCli, emulator: Emulator) -> None:
    run = cli("--app-id", APP_ID, sign_in_flags=False)
    assert run.exit_code == 1
    assert "tenant-id is required" in run.stderr
    assert "client-id is required" in run.stderr
    assert emulator.requests == []


def test_wrong_secret_is_refused_and_never_shown(cli: RunCli, emulator: Emulator) -> None:
    wrong = "Abc1Q~wrong.secret_value-ThatEntraRefuses0123"
    run = cli("--app-id", APP_ID, env={"AZURE_CLIENT_SECRET": wrong})
    assert run.exit_code == 1
    assert "AADSTS7000215" in run.stdout + run.stderr
    assert wrong not in run.stdout + run.stderr
    assert emulator.halt_requests == []


def test_secret_pasted_into_a_flag_is_masked_in_the_error(cli: RunCli, emulator: Emulator) -> None:
    # The fixture also checks, for every run, that no secret (client secret, access
    # token) reaches stdout or stderr; this is the case where the CLI echoes a value.
    run = cli("--app-id", emulator.client_secret)
    assert run.exit_code == 1
    assert "is not a Store ID" in run.stderr
    assert emulator.client_secret[:12] not in run.stderr
    assert emulator.requests == []


# A secret the command line was never told about (AZURE_CLIENT_SECRET unset), pasted into
# the wrong flag: Entra's secret format, an old-style secret, a JWT, and a URL's password.
PASTED_SECRETS = {
    "tenant-id": ("--tenant-id", "Xy7Q8Q~Pasted.Into-TheWrong_Flag0123456789ab"),
    "client-id": ("--client-id", "Xy7Q8Q~Pasted.Into-TheWrong_Flag0123456789ab"),
    "app-id": ("--app-id", "kWx3+Oldstyle/SecretValue0fEntra9Apps4u2c="),
    "flight-id": ("--flight-id", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvIn0.c2lnbmF0dXJl"),
    "expected-version": ("--expected-version", "Xy7Q8Q~Pasted.Into-TheWrong_Flag0123456789ab"),
    "store-api-url": ("--store-api-url", "https://alice:Url-Passw0rd-42@store.example"),
    "authority-host": ("--authority-host", "http://alice:Url-Passw0rd-42@login.example"),
}


@pytest.mark.parametrize("flag", sorted(PASTED_SECRETS))
def test_a_secret_pasted_into_the_wrong_flag_is_never_echoed(
    cli: RunCli, emulator: Emulator, flag: str
) -> None:
    """Contract rule 8: a value refused as input is named, never shown, when it is shaped
    like a credential; nobody told the command line it was one."""
    option, secret = PASTED_SECRETS[flag]
    args = [option, secret] if option == "--app-id" else ["--app-id", APP_ID, option, secret]
    run = cli(*args, env={"AZURE_CLIENT_SECRET": None})
    assert run.exit_code == 1
    assert flag in run.stderr, run.stderr
    for piece in (secret, secret[:24], secret[-24:], "Url-Passw0rd-42"):
        assert piece not in run.stderr + run.stdout, run.stderr
    assert emulator.requests == []


def test_all_flights_prints_one_line_per_rollout(cli: RunCli, emulator: Emulator) -> None:
    from store_emulator import demo

    emulator.seed_whole_app()
    run = cli("--app-id", demo.WHOLE_APP_ID, "--all-flights", "--json")
    assert run.exit_code == 0, run.stderr
    results = run.json()["results"]
    assert isinstance(results, list)
    assert len(results) == 1 + len(demo.WHOLE_FLIGHTS)
    assert {record["name"] for record in results} >= {f.name for f in demo.WHOLE_FLIGHTS}
    assert "rollouts to work on" in run.stderr


def test_expected_version_guards_the_halt(cli: RunCli, emulator: Emulator) -> None:
    refused = cli("--app-id", APP_ID, "--expected-version", "1.4.1.0", "--reason", "x", "--json")
    assert refused.exit_code == 1
    record = only_record(refused.json())
    assert (record["result"], record["versions"]) == ("failed", [demo.VERSION])
    assert "Version guard: not the expected version" in refused.stderr
    assert emulator.halt_requests == []
    halted = cli("--app-id", APP_ID, "--expected-version", demo.VERSION, "--reason", "crash rate")
    assert halted.exit_code == 0
    assert "version guard passed" in halted.stderr
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == STOPPED
    bad = cli("--app-id", APP_ID, "--expected-version", "1.4.2.0.0")
    assert bad.exit_code == 1
    assert "expected-version '1.4.2.0.0' is not a package version" in bad.stderr


def cli_run(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    emu = world.emulator
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("INPUT_", "GITHUB_", "ACTIONS_", "RUNNER_", "AZURE_"))
    } | {"AZURE_CLIENT_SECRET": emu.client_secret, "REQUESTS_CA_BUNDLE": world.bundle}
    flags = ["--store-api-url", emu.url, "--authority-host", emu.url]
    flags += ["--tenant-id", emu.tenant_id, "--client-id", emu.client_id, "--app-id", APP_ID]
    return run_command(
        [sys.executable, *ENTRYPOINT, *flags, *args],
        env=env,
        cwd=world.workdir,
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


def test_cli_json_into_a_closed_pipe_prints_no_traceback(emulator: Emulator) -> None:
    """`python -m halt_rollout --json | head -c 10`: standard output's reader is gone
    before the results are printed. The halts stand, stderr states them, no traceback."""
    workdir = Path(emulator.ca_path).parent
    targets = workdir / "targets.yml"
    targets.write_text(many_apps(emulator, 60), encoding="utf-8")
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {
        **os.environ,
        "REQUESTS_CA_BUNDLE": emulator.ca_path,
        "AZURE_CLIENT_SECRET": emulator.client_secret,
    }
    for name in [n for n in env if n.startswith(("GITHUB_", "INPUT_"))]:
        del env[name]
    command = command_line(emulator, "--targets", str(targets), "--json")
    try:
        done = subprocess.run(
            command,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    print(f"exit {done.returncode}; stderr tail: {done.stderr[-600:]}")

    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode in (0, 1)
    assert len(emulator.halt_requests) == 60
