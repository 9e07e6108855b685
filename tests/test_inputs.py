"""Every bad input is refused before anything is sent (rule 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from halt_rollout.errors import InputError
from halt_rollout.inputs import Settings, Target, read_settings
from store_emulator import Emulator

from .conftest import APP_ID, FLIGHT_ID, GUID, RunAction
from .conftest import VALID_INPUTS as VALID
from .world import (
    traceback_free,
)


def settings(raw: dict[str, str], tmp_path: Path, *, oidc: bool = False) -> Settings:
    return read_settings(raw, workspace=tmp_path, oidc_available=oidc)


def problems(raw: dict[str, str], tmp_path: Path, *, oidc: bool = False) -> str:
    with pytest.raises(InputError) as caught:
        settings(raw, tmp_path, oidc=oidc)
    return caught.value.message


def test_defaults(tmp_path: Path) -> None:
    got = settings(VALID, tmp_path)
    assert got.targets == (Target(APP_ID),)
    assert got.dry_run is False
    assert got.timeout_seconds == 180
    assert got.store_api_url == "https://manage.devcenter.microsoft.com"
    assert got.authority_host == "https://login.microsoftonline.com"
    assert got.client_secret == "s3cr3t~value"


def test_valid_variants(tmp_path: Path) -> None:
    got = settings(
        VALID
        | {
            "tenant-id": "contoso.onmicrosoft.com",
            "client-id": GUID.upper(),
            "flight-id": FLIGHT_ID,
            "submission-id": "1152921504621243680",
            "dry-run": "TRUE",
            "timeout-seconds": "42.5",
            "store-api-url": "https://store.example:8443/",
            "authority-host": "https://login.microsoftonline.us",
        },
        tmp_path,
    )
    assert got.targets == (Target(APP_ID, FLIGHT_ID, "1152921504621243680"),)
    assert got.dry_run is True
    assert got.timeout_seconds == 42.5
    assert got.store_api_url == "https://store.example:8443"


def test_oidc_replaces_the_secret(tmp_path: Path) -> None:
    assert settings(VALID | {"client-secret": ""}, tmp_path, oidc=True).client_secret is None
    assert "id-token: write" in problems(VALID | {"client-secret": ""}, tmp_path)


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    message = problems({"app-id": "a/b", "dry-run": "maybe", "tenant-id": ""}, tmp_path)
    for part in ("app-id", "dry-run", "tenant-id is required", "client-id is required"):
        assert part in message
    assert message.endswith("Nothing was sent to the Store.")


def test_a_secret_with_a_newline_is_refused_without_being_shown(tmp_path: Path) -> None:
    message = problems(VALID | {"client-secret": "abc\ndef"}, tmp_path)
    assert "client-secret contains a newline" in message
    assert "abc" not in message


def test_targets_file(tmp_path: Path) -> None:
    (tmp_path / "t.yml").write_text(
        f"targets:\n  - name: Desk\n    app-id: {APP_ID}\n"
        f"  - app-id: {APP_ID}\n    flight-id: {FLIGHT_ID}\n"
        "  - app-id: 9WZDNCRFJ3PS\n    submission-id: 1152921504621243680\n",
        encoding="utf-8",
    )
    got = settings({**VALID, "app-id": "", "targets": "t.yml"}, tmp_path)
    assert got.targets == (
        Target(APP_ID, name="Desk"),
        Target(APP_ID, flight_id=FLIGHT_ID),
        Target("9WZDNCRFJ3PS", submission_id="1152921504621243680"),
    )
    assert got.targets[1].label == f"{APP_ID} flight {FLIGHT_ID}"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("targets: []\n", "non-empty list"),
        ("targets:\n  - app-id: 9NBLGGH4R315\n    flight_id: x\n", "unknown keys flight_id"),
        ("targets:\n  - app-id: 9NBL/GGH4R315\n", "targets entry 1: app-id"),
        ("targets:\n  - app-id: 9NBLGGH4R315\n  - app-id: 9NBLGGH4R315\n", "twice"),
        ("targets:\n  - app-id: [1, 2]\n", "must be a string"),
        ("targets:\n  - app-id: true\n", "must be a string"),
        ("targets: [\n", "not valid YAML at line"),
        ("target:\n  - app-id: 9NBLGGH4R315\n", "unknown top-level keys: target"),
        ("- 9NBLGGH4R315\n", "must be a mapping"),
    ],
)
def test_bad_targets_files(tmp_path: Path, content: str, expected: str) -> None:
    (tmp_path / "t.yml").write_text(content, encoding="utf-8")
    assert expected in problems({**VALID, "app-id": "", "targets": "t.yml"}, tmp_path)


def test_targets_outside_the_workspace_or_missing(tmp_path: Path) -> None:
    (tmp_path.parent / "outside.yml").write_text("- app-id: A1\n", encoding="utf-8")
    raw = {**VALID, "app-id": ""}
    assert "outside the workspace" in problems(raw | {"targets": "../outside.yml"}, tmp_path)
    assert "cannot be read" in problems(raw | {"targets": "missing.yml"}, tmp_path)


@pytest.mark.parametrize(
    "version", ["0", "1", "1.4", "1.4.2", "1.4.2.0", "65535.65535.65535.65535", "10.0.19041.0"]
)
def test_expected_version_accepts_package_versions(tmp_path: Path, version: str) -> None:
    got = settings(VALID | {"expected-version": version}, tmp_path)
    assert got.targets == (Target(APP_ID, expected_version=version),)


@pytest.mark.parametrize(
    "version",
    [
        "1.4.2.0.1",  # five parts
        "65536",  # above a part's range
        "1.70000",
        "01.4",  # a leading zero: not how the Store writes a version
        "1.4.02",
        "1..4",
        ".1",
        "1.",
        "v1.4",
        "1.4-beta",
        "1,4",
        "1.4.2 ",
        "１.4",  # a full-width digit
        "-1",
        "1e3",
    ],
)
def test_expected_version_refuses_anything_else(tmp_path: Path, version: str) -> None:
    message = problems(VALID | {"expected-version": version}, tmp_path)
    assert f"expected-version {version!r} is not a package version" in message
    assert "1 to 4 numbers from 0 to 65535 separated by dots, without leading zeros" in message


def test_no_expected_version_means_no_guard(tmp_path: Path) -> None:
    assert settings(VALID | {"expected-version": ""}, tmp_path).targets[0].expected_version is None


def test_reason_is_one_line_of_data(tmp_path: Path) -> None:
    assert settings(VALID, tmp_path).reason == ""
    got = settings(VALID | {"reason": "crash rate\r\n  of 1.4.2 \t> 3%"}, tmp_path)
    assert got.reason == "crash rate of 1.4.2 > 3%"
    # Data, not commands or escapes: a terminal escape or NUL is shown, not obeyed.
    hostile = settings(VALID | {"reason": "::error::x\x1b[2J\x00 <b>hi</b>"}, tmp_path)
    assert hostile.reason == "::error::x\ufffd[2J\ufffd <b>hi</b>"
    assert hostile.notices == ()


def test_a_long_reason_is_cut_with_a_notice(tmp_path: Path) -> None:
    got = settings(VALID | {"reason": "why " * 600}, tmp_path)
    assert len(got.reason) == 1000
    assert got.reason.endswith("…")
    assert got.notices == ("reason is 2399 characters long; its first 1000 are kept",)


def test_targets_file_expected_versions(tmp_path: Path) -> None:
    (tmp_path / "t.yml").write_text(
        f"targets:\n  - app-id: {APP_ID}\n    expected-version: '1.4.2.0'\n"
        f"  - app-id: {APP_ID}\n    flight-id: {FLIGHT_ID}\n    expected-version: 1.5.0.0\n"
        "  - app-id: 9WZDNCRFJ3PS\n    expected-version: 2\n"
        "  - app-id: 9ZZZZZZZZZZZ\n",
        encoding="utf-8",
    )
    raw = {**VALID, "app-id": "", "targets": "t.yml"}
    assert [t.expected_version for t in settings(raw, tmp_path).targets] == [
        "1.4.2.0",
        "1.5.0.0",
        "2",
        None,
    ]
    # The run's expected-version guards every entry that does not carry its own.
    guarded = settings(raw | {"expected-version": "9.0"}, tmp_path).targets
    assert [t.expected_version for t in guarded] == ["1.4.2.0", "1.5.0.0", "2", "9.0"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("expected-version: 1.4", "YAML reads '1.4' as a float"),
        ("expected-version: 1.40", 'quote it (expected-version: "1.40")'),
        ("expected-version: 010", "quote it"),
        ("expected-version: '1.4.x'", "targets entry 1: expected-version '1.4.x' is not a package"),
        ("expected-version: ''", "expected-version is empty"),
        ("expected-version:", "expected-version is empty"),
        ("expected-version: ~", "expected-version is empty"),
        ('flight-id: ""', "flight-id is empty: give the flight's GUID"),
        ("flight-id: null", "flight-id is empty"),
        ("flight-id:", "flight-id is empty"),
        ("flight-id: ' '", "flight-id is empty"),
    ],
)
def test_targets_file_refuses_what_would_change_meaning(
    tmp_path: Path, line: str, expected: str
) -> None:
    (tmp_path / "t.yml").write_text(
        f"targets:\n  - app-id: {APP_ID}\n    {line}\n", encoding="utf-8"
    )
    assert expected in problems({**VALID, "app-id": "", "targets": "t.yml"}, tmp_path)


# End to end: each bad input fails with one error line, and nothing reaches the network.

BAD_INPUTS: list[tuple[dict[str, str | None], str]] = [
    ({"app-id": "9NBL/../../x"}, "app-id"),
    ({"app-id": "9NBLGGH4R315/submissions"}, "app-id"),
    ({"app-id": "9NBL%2FGGH4R315"}, "app-id"),
    ({"app-id": "9NBLGGH4R315?x=1"}, "app-id"),
    ({"app-id": "9NBLGGH4R315#x"}, "app-id"),
    ({"app-id": "9NBLGGH4R315\nINPUT_X=1"}, "newline"),
    ({"app-id": "9NBLGGH4R31５"}, "app-id"),  # a full-width digit
    ({"app-id": None}, "app-id is required"),
    ({"submission-id": "12a4"}, "submission-id"),
    ({"submission-id": "../1"}, "submission-id"),
    ({"flight-id": "not-a-guid"}, "flight-id"),
    ({"flight-id": "43e448df-97c9-4a43-a0bc-2a445e736bcd/../x"}, "flight-id"),
    ({"tenant-id": None}, "tenant-id is required"),
    ({"tenant-id": "contoso/../common"}, "tenant-id"),
    ({"client-id": "app"}, "client-id"),
    ({"client-secret": "line1\nline2"}, "newline"),
    ({"store-api-url": "http://manage.devcenter.microsoft.com"}, "https://"),
    ({"store-api-url": "https://user:pw@evil.example"}, "store-api-url"),
    ({"store-api-url": "https://host/?q=1"}, "store-api-url"),
    ({"authority-host": "http://login.microsoftonline.com"}, "https://"),
    ({"authority-host": "login.microsoftonline.com"}, "https://"),
    ({"dry-run": "yes"}, "dry-run"),
    ({"dry-run": "1"}, "dry-run"),
    ({"timeout-seconds": "abc"}, "timeout-seconds"),
    ({"timeout-seconds": "0"}, "timeout-seconds"),
    ({"timeout-seconds": "-5"}, "timeout-seconds"),
    ({"timeout-seconds": "nan"}, "timeout-seconds"),
    ({"timeout-seconds": "1_000"}, "timeout-seconds"),
    ({"timeout-seconds": "\u0661\u0662\u0660"}, "timeout-seconds"),  # 120 in Arabic-Indic digits
    ({"targets": "t.yml"}, "not both"),
    ({"expected-version": "1.4.2-beta"}, "expected-version"),
    ({"expected-version": "1.4\n2"}, "newline"),
]


@pytest.mark.parametrize(("inputs", "expected"), BAD_INPUTS)
def test_bad_input_fails_cleanly_and_sends_nothing(
    action: RunAction, emulator: Emulator, inputs: dict[str, str | None], expected: str
) -> None:
    run = action(inputs)
    assert emulator.requests == [], [r.path for r in emulator.requests]
    assert run.exit_code == 1
    [error] = run.errors
    assert error.startswith("::error title=Invalid input::")
    assert expected in error
    assert run.outputs["result"] == "failed"
    assert run.outputs["results"] == "[]"
    assert "Invalid input" in run.summary


def test_huge_numbers_and_surrogate_escapes_in_inputs(action: RunAction) -> None:
    run = action({"timeout-seconds": "9" * 5000})
    assert run.outputs["result"] == "failed"
    run = action(
        {"app-id": "", "targets": "t.yml"},
        files={"t.yml": 'targets:\n  - name: "bad \\ud800 half"\n    app-id: ' + APP_ID + "\n"},
    )
    # Refused as an input (the product's choice), or shown visibly: never a crash.
    assert traceback_free(run), run.stdout
    assert run.exit_code == 1 or "[U+D800]" in run.summary


@pytest.mark.parametrize(
    "where",
    [
        "https://apps.microsoft.com/detail/9pk3zq7wmx2d?hl=en-US",
        "https://apps.microsoft.com/store/detail/contoso-desktop/9PK3ZQ7WMX2D",
        "https://www.microsoft.com/en-us/p/contoso-desktop/9pk3zq7wmx2d?activetab=pivot:overviewtab",
        "ms-windows-store://pdp/?productid=9PK3ZQ7WMX2D",
    ],
)
def test_a_store_page_address_names_the_store_id_in_it(tmp_path: Path, where: str) -> None:
    """A tired person pastes the Store page's address: the action's input and a targets
    file's entry are refused with the ID the address holds, in the Store's upper case."""
    said = "is the address of a Store page, not a Store ID (did you mean 9PK3ZQ7WMX2D?)"
    assert said in problems(VALID | {"app-id": where}, tmp_path)
    (tmp_path / "t.yml").write_text(f"targets:\n  - app-id: '{where}'\n", encoding="utf-8")
    assert said in problems(VALID | {"app-id": "", "targets": "t.yml"}, tmp_path)


@pytest.mark.parametrize(
    "where", ["https://example.com/detail/9PK3ZQ7WMX2D", "https://apps.microsoft.com/detail/short"]
)
def test_an_address_that_holds_no_store_id_is_only_refused(tmp_path: Path, where: str) -> None:
    said = problems(VALID | {"app-id": where}, tmp_path)
    assert "is not a Store ID" in said
    assert "did you mean" not in said
