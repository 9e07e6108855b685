"""Secrets stay secret (rule 8): in every form a server may echo them, and never over
plain HTTP.

The harness (`World`, `HostileServer`) is in tests/world.py.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from urllib.parse import unquote

import pytest

from .conftest import (
    visible_text,
)
from .world import (
    Handler,
    Incoming,
    Wire,
    World,
    describe,
    forward_everything,
    json_answer,
    raw_response,
)

# 6. Secrets (rule 8) -------------------------------------------------------------------------


visible = visible_text


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


# 10. TLS is always verified: no request leaves without it (rule 8) -----------------------


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


# Redaction comes before any other change to the text (rule 8) ----------------------------

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
