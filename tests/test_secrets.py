"""No secret leaks, on any path: success, and every failure that can be provoked.

For a run with a client secret and a run signed in with GitHub's OIDC token, the client
secret, the runner's OIDC request token, the OIDC token and the access token never appear
(whole, or a recognisable piece of them) in the log, the annotations, the job summary or
the outputs. Only `::add-mask::` lines may carry them, and the masks of the secrets known
at the start come before any other line.

Several paths make a service repeat the secrets in its error (a gateway that echoes the
bearer token, Entra quoting the secret it refused, a correlation header carrying a token):
those faults are built as the request arrives, so they can repeat tokens issued during the
run itself.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from store_emulator import Emulator, Fault
from store_emulator.responses import Response
from store_emulator.step_results import ActionRun

from .conftest import APP_ID, RunAction, secrets_of, visible_text
from .world import command_line

WRONG_SECRET = "Xyz7Q~wrongSecretValue.ThatEntra_RefusesItAll-"
FOREIGN_SUBJECT = "repo:someone-else/fork:pull_request"
# Any piece this long of a secret counts as a leak: random text does not repeat 16 characters.
PIECE = 16
MARK = "{secrets}"  # replaced, as the fault answers, by every secret seen so far
SHORT_DEADLINE = "4"  # room for the imports and sign-in on a loaded machine


@dataclass
class EchoFault(Fault):
    """A fault whose body and headers repeat the secrets known when it answers."""

    secrets: Callable[[], list[str]] = list

    def response(self) -> Response:
        answer = super().response()
        known = " ".join(self.secrets())
        answer.body = answer.body.replace(MARK.encode(), known.encode())
        answer.headers = {
            name: value.replace(MARK, known) for name, value in answer.headers.items()
        }
        return answer


@dataclass(frozen=True)
class Provoke:
    """One path through the action, and how to provoke it."""

    name: str
    exit_code: int = 1
    modes: tuple[str, ...] = ("client-secret", "oidc")
    inputs: dict[str, str] = field(default_factory=dict)
    # (method, path, fault fields) of faults that repeat the secrets, or plain faults.
    faults: tuple[dict[str, Any], ...] = ()
    echoes: bool = False  # the action shows what the answer said, secrets replaced
    setup: Callable[[Emulator], None] | None = None


def _foreign_subject(emu: Emulator) -> None:
    emu.github.subject = FOREIGN_SUBJECT  # Entra's federated credential will not match


ROLLOUT = {"method": "GET", "path": r"/packagerollout$"}
HALT = {"method": "POST", "path": r"/haltpackagerollout$"}
TOKEN = {"method": "POST", "path": r"/oauth2/v2\.0/token$"}
OIDC = {"method": "GET", "path": r"^/github-oidc/token$"}
ENTRA_REFUSAL = {
    "error": "invalid_client",
    "error_description": f"AADSTS7000215: Invalid client secret provided: {MARK}. "
    "Trace ID: 0a1b Correlation ID: 6f9c2d4e-0000-4000-8000-000000000001 "
    "Timestamp: 2026-11-23 12:00:00Z",
}

PATHS = [
    Provoke("success", exit_code=0),
    Provoke("bad input alongside the secret", inputs={"app-id": "9NB/../LGGH4R315"}),
    Provoke(
        "wrong client secret", modes=("client-secret",), inputs={"client-secret": WRONG_SECRET}
    ),
    Provoke("federated credential that does not match", modes=("oidc",), setup=_foreign_subject),
    Provoke(
        "Entra refusal quoting the secrets",
        faults=({**TOKEN, "status": 401, "body": ENTRA_REFUSAL, "times": None},),
        echoes=True,
    ),
    Provoke(
        "Entra refusal whose long description is cut inside a secret",
        faults=(
            {
                **TOKEN,
                "status": 401,
                "body": ENTRA_REFUSAL
                | {"error_description": "AADSTS7000215: " + "x" * 270 + " " + MARK},
            },
        ),
        echoes=True,
    ),
    Provoke(
        "Entra 503 on every attempt",
        inputs={"timeout-seconds": SHORT_DEADLINE},
        faults=({**TOKEN, "status": 503, "times": None},),
    ),
    Provoke(
        "GitHub's OIDC endpoint refusing, quoting its request token",
        modes=("oidc",),
        faults=({**OIDC, "status": 401, "body": {"message": f"Bad credentials: {MARK}"}},),
    ),
    Provoke(
        "Store 401 quoting the bearer token, also in MS-CorrelationId",
        faults=(
            {
                **ROLLOUT,
                "status": 401,
                "body": {"statusCode": 401, "message": f"APIM: Unauthorized. Token {MARK}"},
                "headers": {"MS-CorrelationId": MARK},
            },
        ),
        echoes=True,
    ),
    Provoke(
        "Store 403 as an HTML page titled with the token",
        faults=({**ROLLOUT, "status": 403, "body": f"<html><title>{MARK}</title></html>"},),
        echoes=True,
    ),
    Provoke(
        "Store 404 quoting the token",
        faults=(
            {
                "method": "GET",
                "path": rf"/applications/{APP_ID}$",
                "status": 404,
                "body": {"code": "ResourceNotFound", "message": f"No app for {MARK}"},
            },
        ),
        echoes=True,
    ),
    Provoke(
        "Store 409 quoting the token",
        faults=(
            {**HALT, "status": 409, "body": {"code": "InvalidState", "message": f"No: {MARK}"}},
        ),
        echoes=True,
    ),
    Provoke(
        "Store 409 whose long message is cut inside a secret",
        faults=(
            {
                **HALT,
                "status": 409,
                "body": {"code": "InvalidState", "message": "x" * 270 + " " + MARK},
            },
        ),
        echoes=True,
    ),
    Provoke(
        "Store 429 quoting the token, Retry-After past the deadline",
        faults=(
            {
                **ROLLOUT,
                "status": 429,
                "headers": {"Retry-After": "600"},
                "body": {"statusCode": 429, "message": f"Rate limit for {MARK}"},
                "times": None,
            },
        ),
        echoes=True,
    ),
    Provoke(
        "Store 503 quoting the token on every attempt",
        inputs={"timeout-seconds": SHORT_DEADLINE},
        faults=(
            {
                **ROLLOUT,
                "status": 503,
                "body": {"code": "ServiceUnavailable", "message": f"Down for {MARK}"},
                "times": None,
            },
        ),
        echoes=True,
    ),
    Provoke(
        "connection reset on every attempt",
        inputs={"timeout-seconds": SHORT_DEADLINE},
        faults=({**ROLLOUT, "kind": "reset_before", "times": None},),
    ),
    Provoke(
        "hang past the deadline",
        inputs={"timeout-seconds": SHORT_DEADLINE},
        faults=({**ROLLOUT, "kind": "hang", "times": None},),
    ),
]


def cases() -> Iterator[Any]:
    for provoke, mode in itertools.product(PATHS, ("client-secret", "oidc")):
        if mode in provoke.modes:
            yield pytest.param(provoke, mode, id=f"{mode}: {provoke.name}")


def pieces(secret: str) -> set[str]:
    """Every PIECE-long piece of a secret's random part (a JWT's header and claims are not)."""
    jwt = secret.startswith("eyJ") and secret.count(".") == 2
    random_part = secret.rsplit(".", 1)[-1] if jwt else secret
    return {random_part[i : i + PIECE] for i in range(len(random_part) - PIECE + 1)}


def leaks(text: str, secret: str) -> list[str]:
    if secret in text:
        return [secret]
    return sorted(piece for piece in pieces(secret) if piece in text)


def mask_lines(run: ActionRun) -> tuple[list[str], list[str]]:
    """The masks before any other line of stdout, and all masks."""
    lines = run.stdout.splitlines()
    masks = [line.removeprefix("::add-mask::") for line in lines if line.startswith("::add-mask::")]
    leading = [
        line.removeprefix("::add-mask::")
        for line in itertools.takewhile(lambda line: line.startswith("::add-mask::"), lines)
    ]
    return leading, masks


@pytest.mark.parametrize(("provoke", "mode"), list(cases()))
def test_no_secret_leaks(
    provoke: Provoke, mode: str, action: RunAction, emulator: Emulator
) -> None:
    inputs: dict[str, str | None] = dict(provoke.inputs)
    env: dict[str, str | None] = {}
    if mode == "oidc":
        inputs["client-secret"] = None
        env = {
            "ACTIONS_ID_TOKEN_REQUEST_URL": emulator.oidc_request_url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": emulator.oidc_request_token,
        }
    given_secret = inputs.get("client-secret") or emulator.client_secret

    def known() -> list[str]:
        """The secrets the action holds so far: what an answer could repeat back to it."""
        issued = [*emulator.issued_oidc_tokens, *emulator.issued_access_tokens]
        if mode == "oidc":
            return [emulator.oidc_request_token, *issued]
        return [given_secret, *issued]

    for spec in provoke.faults:
        emulator.add_fault(EchoFault(secrets=known, **spec))
    if provoke.setup is not None:
        provoke.setup(emulator)

    run = action(inputs, env=env)

    assert run.exit_code == provoke.exit_code, run.stdout
    secrets = [given_secret, *secrets_of(emulator)]
    seen = visible_text(run)
    for secret in secrets:
        leaked = leaks(seen, secret)
        assert not leaked, f"{len(leaked)} piece(s) of a secret reached the output:\n{seen}"

    leading, masks = mask_lines(run)
    if mode == "client-secret":
        # The secret given is masked before anything else is printed.
        assert given_secret in leading, run.stdout
        assert masks.count(given_secret) == 1
    else:
        assert emulator.oidc_request_token in leading, run.stdout
    for token in (*emulator.issued_oidc_tokens, *emulator.issued_access_tokens):
        assert token in masks, "a token was issued but never masked"

    if provoke.faults:
        assert any(r.fault for r in emulator.requests), "the fault never answered"
    if provoke.echoes:
        # The action showed what the answer said, with the secrets in it replaced.
        assert "***" in seen or "…" in seen, seen
    if provoke.name.startswith("bad input"):
        assert emulator.requests == []


# Proxy credentials, however malformed the variable that carries them ---------------------

CLOSED = "127.0.0.1:{port}"  # a proxy that refuses every connection: the run keeps failing
MALFORMED_PROXIES = [
    # (variable, URL, the password in every form it may take)
    ("HTTPS_PROXY", "alice:N0Scheme-Passw0rd@" + CLOSED, ("N0Scheme-Passw0rd",)),
    ("https_proxy", "http://alice:Sl/ash-Passw0rd-77@" + CLOSED, ("Sl/ash-Passw0rd-77",)),
    ("ALL_PROXY", "http://alice:At@Sign-Passw0rd-88@" + CLOSED, ("At@Sign-Passw0rd-88",)),
    ("HTTPS_PROXY", "http://alice:Col:on-Passw0rd-99@" + CLOSED, ("Col:on-Passw0rd-99",)),
    (
        "HTTPS_PROXY",
        "http://alice:Pct%2FEnc%40Passw0rd@" + CLOSED,
        ("Pct%2FEnc%40Passw0rd", "Pct/Enc@Passw0rd"),
    ),
    ("all_proxy", "alice:Raw/And@Passw0rd@" + CLOSED, ("Raw/And@Passw0rd",)),
]
ALL_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("variable", "url", "forms"), MALFORMED_PROXIES)
def test_a_proxy_password_is_masked_however_malformed_its_url(
    variable: str, url: str, forms: tuple[str, ...], action: RunAction, emulator: Emulator
) -> None:
    """Contract rule 8: a proxy's credentials are secrets, masked before anything else is
    printed and never shown, whether the URL has no scheme or a raw `/`, `@` or `:` in
    its password, percent-encoded or not. The run fails (the proxy refuses), and every
    error, summary and output about it names the proxy without its password."""
    env: dict[str, str | None] = dict.fromkeys(ALL_PROXY_VARIABLES)
    env[variable] = url.format(port=closed_port())
    # HTTP_PROXY is not used for https://, but it is a secret all the same.
    env["HTTP_PROXY"] = "http://bob:Unused/Http-Passw0rd@proxy.example:3128"
    run = action({"timeout-seconds": SHORT_DEADLINE}, env=env, timeout=60)

    assert run.exit_code == 1, run.stdout
    assert "alice" in visible_text(run), "the failure never named the proxy"
    # The runner reads a mask's value with `%25` for `%` (the toolkit escapes it).
    leading = [mask.replace("%25", "%") for mask in mask_lines(run)[0]]
    for secret in (*forms, "Unused/Http-Passw0rd"):
        assert secret in leading, f"{secret!r} was not masked first:\n{run.stdout}"
        leaked = leaks(visible_text(run), secret)
        assert not leaked, f"{leaked} reached the output:\n{visible_text(run)}"


def test_the_command_line_hides_a_malformed_proxy_password_too(emulator: Emulator) -> None:
    """Contract rule 8, on the command line: the same credentials never reach its output."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in ("https_proxy", "all_proxy", "no_proxy")
    }
    env |= {
        "AZURE_CLIENT_SECRET": emulator.client_secret,
        "REQUESTS_CA_BUNDLE": emulator.ca_path,
        "HTTPS_PROXY": f"alice:Cli/Raw@Passw0rd-42@127.0.0.1:{closed_port()}",
    }
    run = subprocess.run(
        [*command_line(emulator, "--app-id", APP_ID, "--timeout", SHORT_DEADLINE, "--json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1, run.stderr
    assert "alice" in run.stdout + run.stderr, "the failure never named the proxy"
    assert not leaks(run.stdout + run.stderr, "Cli/Raw@Passw0rd-42"), run.stdout + run.stderr
    assert "Passw0rd-42" not in run.stdout + run.stderr, run.stdout + run.stderr


@pytest.mark.parametrize(
    "password", ["Pr€ssure-Passw0rd", "Pr%E2%82%ACssure-Passw0rd"], ids=["raw", "percent-encoded"]
)
def test_a_proxy_password_requests_cannot_send_is_refused_up_front_unshown(
    password: str, action: RunAction, emulator: Emulator
) -> None:
    """Contract rules 1 and 8: a proxy password the transport cannot put into its
    Proxy-Authorization header (outside Latin-1) is refused before anything is sent, naming
    the variable; neither the password nor a character of it (as a codec's error would
    quote it) is shown."""
    env: dict[str, str | None] = dict.fromkeys(ALL_PROXY_VARIABLES)
    env["HTTPS_PROXY"] = f"http://alice:{password}@127.0.0.1:{closed_port()}"
    run = action({"timeout-seconds": SHORT_DEADLINE}, env=env, timeout=60)

    assert run.exit_code == 1, run.stdout
    [error] = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert "HTTPS_PROXY" in error and "Nothing was sent" in error, error
    assert emulator.requests == []
    for piece in ("€", "\\u20ac", "%E2", "codec", "ssure-Passw0rd"):
        assert piece not in visible_text(run), visible_text(run)
