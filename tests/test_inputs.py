"""Input validation: every kind of bad input is refused before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from halt_rollout.errors import InputError
from halt_rollout.inputs import Settings, Target, read_settings
from store_emulator import Emulator

from .conftest import APP_ID, FLIGHT_ID, GUID, RunAction
from .conftest import VALID_INPUTS as VALID


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
    ({"targets": "t.yml"}, "not both"),
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
