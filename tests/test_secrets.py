"""Secrets never leak (rule 8), on any path: success, every failure that can be provoked,
every form a server may echo them in, and never over plain HTTP.

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

import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from store_emulator import Emulator, Fault, demo
from store_emulator.action_files import ENTRYPOINT
from store_emulator.actions_runner import runner_environment
from store_emulator.responses import Response
from store_emulator.step_results import ActionRun, parse_file_command

from .conftest import APP_ID, PUBLISHED, RunAction, base_inputs, secrets_of, visible_text
from .conftest import visible_text as visible
from .world import (
    SUBMISSION,
    Handler,
    Incoming,
    Wire,
    World,
    assert_no_upload_url,
    command_line,
    describe,
    forward_everything,
    json_answer,
    proxied,
    raw_response,
    rollout_not_started,
)

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
    # Words of the answer that must be seen, secrets replaced: the answer was shown at all.
    shows: str = ""
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
        shows="InvalidState: No: ***",
        setup=rollout_not_started,
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
        shows="InvalidState: " + "x" * 200,
        setup=rollout_not_started,
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
    assert provoke.shows in seen, seen
    if provoke.name.startswith("bad input"):
        assert emulator.requests == []


def _echoing_entra(echo: Callable[[Incoming], str]) -> Handler:
    """An Entra (or a proxy in front of it) whose refusal quotes the request."""

    def handler(req: Incoming, wire: Wire) -> None:
        if req.path.endswith("/oauth2/v2.0/token"):
            description = f"AADSTS7000215: Invalid client secret provided: {echo(req)}."
            wire.send(
                json_answer(401, {"error": "invalid_client", "error_description": description})
            )
        else:
            forward_everything(req, wire)

    return handler


def _form_value(req: Incoming, name: str) -> str:
    """The raw (still URL-encoded) value of a form field, as a proxy would quote it."""
    for pair in req.body.decode().split("&"):
        key, _, value = pair.partition("=")
        if key == name:
            return value
    return ""


URL_ENCODED_SECRET = "Ab1Q~x+y/z=w%v&u?t#s"


def test_url_encoded_secret_echoed_by_entra_is_redacted(world: World) -> None:
    server = world.hostile(_echoing_entra(lambda req: _form_value(req, "client_secret")))
    run = world.run({"client-secret": URL_ENCODED_SECRET}, authority=server)
    encoded = next(_form_value(r, "client_secret") for r in server.requests if r.body)
    assert unquote(encoded.replace("+", " ")) == URL_ENCODED_SECRET  # what went on the wire
    shown = visible(run)
    print(f"URL-encoded secret {encoded!r}: {describe(run)}; visible: {encoded in shown}")
    assert run.exit_code == 1
    assert URL_ENCODED_SECRET not in shown
    assert encoded not in shown, [line for line in shown.splitlines() if encoded in line][:2]


WHITESPACE_SECRET = "correct  horse   battery    staple"


def test_secret_with_whitespace_runs_is_redacted_after_folding(world: World) -> None:
    server = world.hostile(_echoing_entra(lambda req: f"'{WHITESPACE_SECRET}'"))
    run = world.run({"client-secret": WHITESPACE_SECRET}, authority=server)
    folded = " ".join(WHITESPACE_SECRET.split())
    shown = visible(run)
    print(f"whitespace secret: {describe(run)}; folded form visible: {folded in shown}")
    assert run.exit_code == 1
    assert WHITESPACE_SECRET not in shown
    assert folded not in shown, [line for line in shown.splitlines() if folded in line][:2]


@pytest.mark.parametrize(
    "secret",
    ['quo"te\\back~Q1', "plain~Secret.Value_123-", "ünïcødé~Q1sécret"],
    ids=["quotes and backslashes", "plain", "non-ASCII"],
)
def test_secret_quoted_as_is_by_entra_is_redacted(world: World, secret: str) -> None:
    server = world.hostile(_echoing_entra(lambda req: secret))
    run = world.run({"client-secret": secret}, authority=server)
    shown = visible(run)
    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    leaked = [form for form in forms if form in shown]
    print(f"secret {secret!r} quoted by Entra: {describe(run)}; leaked forms: {leaked}")
    assert run.exit_code == 1
    assert leaked == []


class PlainCatcher:
    """A plain-HTTP listener that records whatever is sent to it."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.received: list[bytes] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(1)
                data = b""
                with contextlib.suppress(OSError):  # read until the client goes quiet
                    while chunk := connection.recv(65536):
                        data += chunk
                self.received.append(data)
                with contextlib.suppress(OSError):
                    connection.sendall(json_answer(500, {"error": "x"}))

    def close(self) -> None:
        self._listener.close()


@pytest.mark.parametrize(
    "how", ["token POST redirected (307)", "discovery names an http token endpoint"]
)
def test_secret_never_travels_without_tls(world: World, how: str) -> None:
    catcher = PlainCatcher()

    def handler(req: Incoming, wire: Wire) -> None:
        if how.startswith("token") and req.path.endswith("/oauth2/v2.0/token"):
            wire.send(raw_response(307, [("Location", f"{catcher.url}/steal")]))
        elif how.startswith("discovery") and req.path.endswith("/openid-configuration"):
            answer = wire.forward(req)
            document = json.loads(answer.body)
            document["token_endpoint"] = f"{catcher.url}/steal"
            wire.send(json_answer(200, document))
        else:
            forward_everything(req, wire)

    try:
        run = world.run({"timeout-seconds": "5"}, authority=world.hostile(handler))
    finally:
        catcher.close()
    secret = world.emulator.client_secret
    leaked = [data for data in catcher.received if secret.encode() in data]
    print(
        f"{how}: {describe(run)}; plain-HTTP requests {len(catcher.received)}, "
        f"with the client secret: {len(leaked)}"
    )
    assert leaked == [], leaked[0][:300]


# Every character that the summary's own defusing changes (a zero-width space after `<`, in
# `](`, `![`, `://` and `www.`), and one the log shows visibly (U+200B).
MARKDOWN_SECRET = "Q1<x](y://www.z![s~\u200b3cr3t"


def test_a_secret_that_markdown_would_change_is_redacted_first(world: World) -> None:
    server = world.hostile(_echoing_entra(lambda req: MARKDOWN_SECRET))
    run = world.run({"client-secret": MARKDOWN_SECRET}, authority=server)
    shown = visible(run)
    # What the defusing or the visible form would have left of it, were it done first.
    bare = shown.replace("\u200b", "").replace("[U+200B]", "\u200b")
    print(f"Markdown secret: {describe(run)}")
    assert run.exit_code == 1
    assert "Invalid client secret provided: ***" in run.summary
    assert MARKDOWN_SECRET not in bare
    assert MARKDOWN_SECRET.replace("\u200b", "") not in bare


def _bytes_env(env: dict[str, str], **raw: bytes) -> dict[bytes, bytes]:
    out = {k.encode(): v.encode() for k, v in env.items()}
    for key, value in raw.items():
        out[key.replace("_dash_", "-").encode()] = value
    return out


def test_client_secret_with_invalid_utf8_is_refused_without_a_traceback(
    emulator: Emulator, tmp_path: Path
) -> None:
    """A client secret whose bytes are not UTF-8 (a secret store handing over Latin-1):
    Python reads it as a lone surrogate, and masking it must not crash the run."""
    inputs = base_inputs(emulator)
    env = runner_environment(inputs, tmp_path, extra={"REQUESTS_CA_BUNDLE": emulator.ca_path})
    env.pop("INPUT_CLIENT-SECRET", None)
    benv = _bytes_env(env, INPUT_CLIENT_dash_SECRET=b"s3cr3t\xe9value")
    done = subprocess.run(
        [sys.executable, str(ENTRYPOINT)],
        env=benv,
        cwd=env["GITHUB_WORKSPACE"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    stdout = done.stdout.decode("utf-8", "replace")
    stderr = done.stderr.decode("utf-8", "replace")
    print(f"exit {done.returncode}; stderr tail: {stderr[-300:]!r}")
    assert "Traceback" not in stdout + stderr, stderr[-2000:]
    outputs = parse_file_command(Path(env["GITHUB_OUTPUT"]).read_text(encoding="utf-8"))
    assert outputs.get("result") in ("failed", "halted"), outputs
    shown = "\n".join(line for line in stdout.splitlines() if not line.startswith("::add-mask::"))
    assert "s3cr3t" not in shown + stderr


def test_proxy_password_is_never_shown(action: RunAction) -> None:
    """A release engineer's proxy credentials are a secret too (where the contract is silent)."""
    run = action(env=proxied("socks5://build:hunter2-proxy-pass@127.0.0.1:1080"))
    assert run.outputs["result"] == "failed"
    print(run.errors)
    assert "::add-mask::hunter2-proxy-pass" in run.stdout  # masked first, as secrets are
    assert "hunter2-proxy-pass" not in visible_text(run)


@pytest.mark.parametrize(
    ("where", "method", "status"),
    [("halt", "POST", 409), ("halt", "POST", 404), ("rollout", "GET", 404)],
)
def test_the_upload_url_echoed_by_a_later_error_is_hidden(
    action: RunAction, emulator: Emulator, where: str, method: str, status: int
) -> None:
    """fileUploadUrl is never printed, on any path. With expected-version the action has
    read it (it holds the resource), but does not redact it: when the Store's error on
    another request of the same run echoes it in `message`, that message is quoted.
    Observed: the signed URL in the error annotation, the summary and `results`."""
    url = emulator.state.submission(APP_ID, PUBLISHED)["fileUploadUrl"]
    message = {"code": "InvalidState", "message": f"Submission upload {url} is locked"}
    path = (HALT if where == "halt" else ROLLOUT)["path"]
    emulator.add_fault(Fault(method=method, path=path, times=None, status=status, body=message))
    run = action({"expected-version": demo.VERSION, "timeout-seconds": "8"})
    assert run.outputs["result"] == "failed"
    assert_no_upload_url(emulator, visible(run))


@pytest.mark.parametrize(
    "answer",
    [
        (429, {"statusCode": 429, "message": "{url} Try again in 1 seconds."}),
        (503, {"code": "x", "message": "Account service is experiencing issue {url}"}),
        (404, {"code": "ResourceNotFound", "message": "no blob {url}"}),
        (401, {"error": {"code": "Unauthorized", "message": "{url}"}}),
        (302, "moved"),
    ],
    ids=["429", "503-account", "404", "401-nested", "302-location"],
)
def test_the_guard_read_never_shows_the_upload_url_whatever_the_error(
    action: RunAction, emulator: Emulator, answer: tuple[int, Any]
) -> None:
    status, body = answer
    url = emulator.state.submission(APP_ID, PUBLISHED)["fileUploadUrl"]
    if isinstance(body, dict):
        body = json.loads(json.dumps(body).replace("{url}", url))
    emulator.add_fault(
        Fault(
            method="GET",
            path=SUBMISSION,
            times=None,
            status=status,
            body=body,
            headers={"Location": url},
        )
    )
    run = action({"expected-version": demo.VERSION, "timeout-seconds": "4"})
    assert run.outputs["result"] == "failed"
    assert emulator.halt_requests == []
    assert_no_upload_url(emulator, visible(run))


@pytest.mark.parametrize("casing", ["FileUploadUrl", "FILEUPLOADURL", "fileuploadurl"])
def test_the_upload_url_under_other_casings_and_fields_is_not_printed(
    action: RunAction, emulator: Emulator, casing: str
) -> None:
    resource = emulator.state.submission(APP_ID, PUBLISHED)
    url = resource.pop("fileUploadUrl")
    resource[casing] = url
    resource["applicationPackages"][0]["fileName"] = url
    resource["applicationPackages"][0]["id"] = url
    resource["applicationPackages"].append({"version": url})  # long: never a version
    emulator.add_fault(Fault(method="GET", path=SUBMISSION, times=None, status=200, body=resource))
    run = action({"expected-version": "9.9.9.9"})
    assert run.outputs["result"] == "failed"
    assert emulator.halt_requests == []
    assert_no_upload_url(emulator, visible(run))


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
    assert "HTTPS_PROXY" in error, error
    assert "Nothing was sent" in error, error
    assert emulator.requests == []
    for piece in ("€", "\\u20ac", "%E2", "codec", "ssure-Passw0rd"):
        assert piece not in visible_text(run), visible_text(run)
