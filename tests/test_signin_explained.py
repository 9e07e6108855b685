"""A refused sign-in explains itself (rule 2): the OIDC token's claims on a federation
refusal, and a message of its own for a pull request from a fork."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from halt_rollout.errors import SignInError
from halt_rollout.github_event import fork_pull_request
from halt_rollout.oidc_claims import RememberedToken, claims, describe, explain_refusal
from store_emulator import Emulator
from store_emulator.actions_runner import run_action
from store_emulator.github_oidc import ISSUER
from store_emulator.runner_layout import Job

from .conftest import RunAction, base_inputs, visible_text
from .world import Incoming, Wire, World, raw_response, run_command

REPO = Path(__file__).resolve().parent.parent
FOREIGN_SUBJECT = "repo:octo-org/octo-repo:ref:refs/heads/main"


def jwt(payload: Any) -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return ".".join((part(b'{"alg":"RS256"}'), part(json.dumps(payload).encode()), "c2ln"))


def oidc_env(emu: Emulator) -> dict[str, str | None]:
    return {
        "ACTIONS_ID_TOKEN_REQUEST_URL": emu.oidc_request_url,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": emu.oidc_request_token,
    }


# The claims of a federation refusal ------------------------------------------------------


def test_no_matching_federated_credential_shows_the_tokens_claims(
    emulator: Emulator, action: RunAction
) -> None:
    emulator.github.subject = FOREIGN_SUBJECT
    run = action({"client-secret": None}, env=oidc_env(emulator))
    assert run.exit_code == 1
    [error] = run.errors
    assert "AADSTS700213" in error
    assert f"subject '{FOREIGN_SUBJECT}'" in error
    assert f"issuer '{ISSUER}'" in error
    assert "audience 'api://AzureADTokenExchange'" in error
    assert emulator.store_requests == []
    # The claims are shown; the token they came from never is.
    [token] = emulator.issued_oidc_tokens
    assert token not in visible_text(run)
    assert FOREIGN_SUBJECT in run.summary


def test_a_wrong_client_secret_shows_no_claims(emulator: Emulator, action: RunAction) -> None:
    run = action({"client-secret": "not-the-secret~123"})
    [error] = run.errors
    assert "AADSTS7000215" in error
    assert "OIDC token has" not in error


def test_claims_of_a_token() -> None:
    token = jwt({"iss": ISSUER, "sub": "repo:o/r:environment:prod", "aud": ["a", "b"], "x": 1})
    assert claims(token) == {"iss": ISSUER, "sub": "repo:o/r:environment:prod", "aud": "a b"}
    assert describe(token) == (
        f"This job's GitHub OIDC token has issuer '{ISSUER}', subject "
        "'repo:o/r:environment:prod', audience 'a b': a federated credential needs exactly "
        "these values."
    )


@pytest.mark.parametrize(
    "token",
    [None, "", "not-a-jwt", "a.b", "a.!!!.c", jwt([1, 2]), jwt({"sub": 5}), jwt({"sub": "a\nb"})],
)
def test_what_is_not_a_readable_token_gives_no_claims(token: str | None) -> None:
    assert claims(token) is None
    assert describe(token) == ""


def test_only_federation_codes_get_the_claims() -> None:
    token = RememberedToken(lambda: jwt({"sub": "repo:o/r:ref:refs/heads/x"}))
    token()
    refused = SignInError("Entra refused (AADSTS700213: no match).")
    other = SignInError("Entra refused (AADSTS7000215: bad secret).")
    assert "subject 'repo:o/r:ref:refs/heads/x'" in explain_refusal(refused, token).message
    assert explain_refusal(other, token) is other
    assert explain_refusal(refused, None) is refused


# A pull request from a fork ------------------------------------------------------------------


def pull_request(head: str | None, base: str = "octo-org/octo-repo") -> dict[str, Any]:
    head_repo = None if head is None else {"full_name": head, "fork": head != base}
    return {
        "pull_request": {
            "number": 7,
            "head": {"ref": "patch-1", "repo": head_repo},
            "base": {"ref": "main", "repo": {"full_name": base, "fork": False}},
        }
    }


def test_a_forks_pull_request_gets_its_own_message(emulator: Emulator, tmp_path: Path) -> None:
    inputs = base_inputs(emulator) | {"client-secret": ""}
    job = Job(event_name="pull_request", event=pull_request("someone/octo-repo"))
    run = run_action(
        inputs, workdir=tmp_path, job=job, extra_env={"REQUESTS_CA_BUNDLE": emulator.ca_path}
    )
    assert run.exit_code == 1
    [error] = run.errors
    assert "pull request from a fork (someone/octo-repo → octo-org/octo-repo)" in error
    assert "no OIDC token and no secrets" in error
    assert "id-token: write" not in error
    assert emulator.requests == []
    assert run.outputs["result"] == "failed"


@pytest.mark.parametrize(
    ("event_name", "event", "fork"),
    [
        (
            "pull_request",
            pull_request("someone/octo-repo"),
            "someone/octo-repo → octo-org/octo-repo",
        ),
        ("pull_request_review", pull_request("a/b"), "a/b → octo-org/octo-repo"),
        ("pull_request", pull_request(None), "a deleted fork → octo-org/octo-repo"),
        ("pull_request", pull_request("octo-org/octo-repo"), None),
        # A fork's own pull request between two of its branches is not from a fork.
        ("pull_request", pull_request("me/fork", base="me/fork"), None),
        # pull_request_target runs in the base repository, with its OIDC token.
        ("pull_request_target", pull_request("someone/octo-repo"), None),
        ("workflow_dispatch", {"inputs": {}}, None),
        (
            "pull_request",
            {"pull_request": {"head": {"repo": {"fork": True}}}},
            "a fork → this repository",
        ),
        ("pull_request", {"action": "opened"}, None),
    ],
)
def test_which_runs_are_a_forks_pull_request(
    tmp_path: Path, event_name: str, event: dict[str, Any], fork: str | None
) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    environ = {"GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(path)}
    assert fork_pull_request(environ) == fork


def test_an_unreadable_event_is_no_fork(tmp_path: Path) -> None:
    (tmp_path / "event.json").write_text("{not json", encoding="utf-8")
    for path in (tmp_path / "event.json", tmp_path / "missing.json"):
        environ = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(path)}
        assert fork_pull_request(environ) is None


def test_a_same_repository_pull_request_keeps_the_id_token_advice(
    emulator: Emulator, tmp_path: Path
) -> None:
    inputs = base_inputs(emulator) | {"client-secret": ""}
    job = Job(event_name="pull_request", event=pull_request("octo-org/octo-repo"))
    run = run_action(inputs, workdir=tmp_path, job=job)
    [error] = run.errors
    assert "id-token: write" in error


def test_the_command_line_in_a_forks_pull_request_says_so(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps(pull_request("someone/octo-repo")), encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event),
    }
    done = run_command(
        [
            sys.executable,
            "-m",
            "halt_rollout",
            "--app-id",
            "9NBLGGH4R315",
            "--tenant-id",
            "contoso.onmicrosoft.com",
            "--client-id",
            "00000000-0000-0000-0000-000000000000",
        ],
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "pull request from a fork (someone/octo-repo → octo-org/octo-repo)" in done.stderr


def test_a_reusable_workflows_refusal_names_the_callers_subject() -> None:
    caller = "repo:contoso/app:environment:store-production"
    token = jwt(
        {
            "sub": caller,
            "repository": "contoso/app",
            "job_workflow_ref": (
                "halt-rollout/halt-rollout/.github/workflows/halt-rollout.yml@refs/tags/v1"
            ),
        }
    )
    said = describe(token)
    assert "reusable workflow halt-rollout/halt-rollout/.github/workflows/halt-rollout.yml" in said
    assert f"the credential's subject is '{caller}'" in said
    assert "changes with the branch" not in said


def test_a_subject_without_an_environment_points_to_one() -> None:
    token = jwt(
        {
            "sub": "repo:contoso/app:ref:refs/tags/v1.4.2",
            "repository": "contoso/app",
            "job_workflow_ref": "contoso/app/.github/workflows/release.yml@refs/tags/v1.4.2",
        }
    )
    said = describe(token)
    assert "changes with the branch, tag or event" in said
    assert "repo:OWNER/REPO:environment:NAME" in said
    assert "runs the reusable workflow" not in said


# An answer in Entra's place: named as such, never waited on ------------------------------

NOT_ENTRA = {
    "a redirect to a captive portal": raw_response(
        302, [("Location", "https://captive.example/login?token=abc")]
    ),
    "an HTML page": raw_response(
        200, [("Content-Type", "text/html")], b"<html><title>Sign in to Wi-Fi</title></html>"
    ),
    "a proxy's HTML refusal": raw_response(
        403, [("Content-Type", "text/html")], b"<html><body>Blocked by policy</body></html>"
    ),
    "plain text": raw_response(200, [("Content-Type", "text/plain")], b"hello"),
}


@pytest.mark.parametrize("answer", list(NOT_ENTRA))
@pytest.mark.parametrize("where", ["/v2.0/.well-known/openid-configuration", "/oauth2/v2.0/token"])
def test_an_answer_that_is_not_entras_is_named_unusable_and_not_retried(
    world: World, answer: str, where: str
) -> None:
    """Contract rule 7 retries outages only: Entra never redirects this sign-in and always
    answers JSON, so a redirect or a page (a captive portal, a proxy, a wrong
    authority-host) is an unusable answer, said at once with what to check, never
    waited on until the deadline, never 'raise timeout-seconds'."""

    def entra(req: Incoming, wire: Wire) -> None:
        if req.path.endswith(where):
            wire.send(NOT_ENTRA[answer])
        else:
            wire.send(wire.forward(req).raw())

    authority = world.hostile(entra)
    run = world.run({"timeout-seconds": "30"}, authority=authority)

    assert run.exit_code == 1
    [error] = run.errors
    assert "title=Unusable answer from Microsoft Entra ID::" in error, error
    assert "authority-host" in error, error
    assert "proxy" in error, error
    assert "timeout-seconds" not in error, error
    assert "token=abc" not in error  # a redirect's target is named by its host alone
    asked = [req for req in authority.requests if req.path.endswith(where)]
    assert len(asked) == 1, "an unusable answer was asked for again"
    assert world.emulator.store_requests == []
