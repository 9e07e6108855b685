"""The Store emulator speaks to real clients (requests, azure-identity) as the services do."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientAssertionCredential, ClientSecretCredential

from store_emulator import Emulator, Fault

SCOPE = "https://manage.devcenter.microsoft.com/.default"
APP = "9NBLGGH4R315"
FLIGHT = "43e448df-97c9-4a43-a0bc-2a445e736bcd"
PUBLISHED = "1152921504621086517"
PENDING = "1152921504621243487"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        emulator.seed_demo()
        yield emulator


class Client:
    """requests with the emulator's CA passed per call (a REQUESTS_CA_BUNDLE in the
    environment would win over Session.verify)."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.session = requests.Session()
        self.token = ""

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 5)
        return self.session.request(method, self.emu.url + path, verify=self.emu.ca_path, **kwargs)

    def sign_in(self, **overrides: str) -> requests.Response:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.emu.client_id,
            "client_secret": self.emu.client_secret,
            "scope": SCOPE,
            **overrides,
        }
        tenant = form.pop("tenant", self.emu.tenant_id)
        return self.call("POST", f"/{tenant}/oauth2/v2.0/token", data=form)

    def store(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        if not self.token:
            self.token = self.sign_in().json()["access_token"]
        headers = {"Authorization": f"Bearer {self.token}"}
        return self.call(method, "/v1.0/my/" + path, headers=headers, **kwargs)

    def oidc(self, audience: str = "api://AzureADTokenExchange") -> str:
        response = self.session.get(
            f"{self.emu.oidc_request_url}&audience={audience}",
            headers={"Authorization": f"Bearer {self.emu.oidc_request_token}"},
            verify=self.emu.ca_path,
            timeout=5,
        )
        response.raise_for_status()
        value: str = response.json()["value"]
        return value


@pytest.fixture
def client(emu: Emulator) -> Client:
    return Client(emu)


def rollout_path(submission: str = PUBLISHED, flight: str | None = None) -> str:
    middle = f"/flights/{flight}" if flight else ""
    return f"applications/{APP}{middle}/submissions/{submission}"


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


# -- Entra ID -------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["tenant_id", "tenant_domain"])
def test_discovery_names_the_token_endpoint(emu: Emulator, client: Client, which: str) -> None:
    tenant = getattr(emu, which)
    response = client.call("GET", f"/{tenant}/v2.0/.well-known/openid-configuration")
    assert response.status_code == 200
    document = response.json()
    assert document["token_endpoint"] == f"{emu.url}/{emu.tenant_id}/oauth2/v2.0/token"
    assert document["issuer"] == f"{emu.url}/{emu.tenant_id}/v2.0"
    assert document["authorization_endpoint"].startswith(emu.url)


def test_discovery_of_an_unknown_tenant(client: Client) -> None:
    response = client.call("GET", "/nope.onmicrosoft.com/v2.0/.well-known/openid-configuration")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_tenant"
    assert response.json()["error_codes"] == [90002]


def test_secret_sign_in(emu: Emulator, client: Client) -> None:
    response = client.sign_in(tenant=emu.tenant_domain)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == body["ext_expires_in"] == 3599
    assert emu.issued_access_tokens == [body["access_token"]]
    assert any(c in emu.client_secret for c in "~._-")


REFUSALS = {
    "bad secret": ({"client_secret": "wrong"}, 401, "invalid_client", 7000215),
    "unknown client": (
        {"client_id": "00000000-0000-0000-0000-000000000000"},
        400,
        "unauthorized_client",
        700016,
    ),
    "unknown tenant": (
        {"tenant": "11111111-1111-1111-1111-111111111111"},
        400,
        "invalid_tenant",
        90002,
    ),
    "scope without .default": (
        {"scope": "https://manage.devcenter.microsoft.com"},
        400,
        "invalid_scope",
        1002012,
    ),
    "other resource": (
        {"scope": "https://graph.microsoft.com/.default"},
        400,
        "invalid_resource",
        500011,
    ),
    "other grant": ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_sign_in_refusals_look_like_entra(emu: Emulator, client: Client, case: str) -> None:
    overrides, status, error, code = REFUSALS[case]
    response = client.sign_in(**overrides)
    assert response.status_code == status
    body = response.json()
    assert (body["error"], body["error_codes"]) == (error, [code])
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert body["trace_id"]
    assert body["correlation_id"]
    assert emu.issued_access_tokens == []


@pytest.mark.parametrize(
    ("assertion", "code"),
    [
        ("forged", 50013),
        ("audience", 700212),
        ("subject", 700213),
        ("expired", 700024),
    ],
)
def test_bad_client_assertions(emu: Emulator, client: Client, assertion: str, code: int) -> None:
    if assertion == "forged":
        token = client.oidc()[:-4] + "AAAA"
    elif assertion == "audience":
        token = client.oidc(audience="https://github.com/octo-org")
    elif assertion == "subject":
        emu.github.subject = "repo:octo-org/octo-repo:ref:refs/heads/main"
        token = client.oidc()
    else:
        emu.github.lifetime = -10
        token = client.oidc()
    response = client.sign_in(
        client_secret="",
        client_assertion=token,
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"
    assert response.json()["error_codes"] == [code]


def test_azure_identity_client_secret_credential(
    emu: Emulator, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_path)
    credential = ClientSecretCredential(
        emu.tenant_id,
        emu.client_id,
        emu.client_secret,
        authority=emu.url,
        disable_instance_discovery=True,
    )
    token = credential.get_token(SCOPE).token
    assert token in emu.issued_access_tokens
    client.token = token
    assert client.store("GET", f"applications/{APP}").status_code == 200
    paths = [r.path for r in emu.requests]
    assert paths[:2] == [
        f"/{emu.tenant_id}/v2.0/.well-known/openid-configuration",
        f"/{emu.tenant_id}/oauth2/v2.0/token",
    ]


def test_azure_identity_reports_a_wrong_secret(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_path)
    credential = ClientSecretCredential(
        emu.tenant_id, emu.client_id, "wrong", authority=emu.url, disable_instance_discovery=True
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        credential.get_token(SCOPE)


def test_azure_identity_client_assertion_from_github_oidc(
    emu: Emulator, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_path)
    credential = ClientAssertionCredential(
        emu.tenant_id,
        emu.client_id,
        client.oidc,
        authority=emu.url,
        disable_instance_discovery=True,
    )
    token = credential.get_token(SCOPE).token
    assert token in emu.issued_access_tokens
    assert len(emu.issued_oidc_tokens) == 1
    token_request = emu.requests[-1]
    assert token_request.path.endswith("/oauth2/v2.0/token")
    assert b"client_assertion=" in token_request.body


# -- GitHub OIDC ------------------------------------------------------------------------------


def test_github_oidc_token(emu: Emulator, client: Client) -> None:
    token = client.oidc()
    assert token.count(".") == 2
    claims = jwt_claims(token)
    assert claims["iss"] == "https://token.actions.githubusercontent.com"
    assert claims["aud"] == "api://AzureADTokenExchange"
    assert claims["sub"] == "repo:octo-org/octo-repo:environment:store-production"
    assert emu.issued_oidc_tokens == [token]


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic x"])
def test_github_oidc_wants_the_request_token(
    emu: Emulator, client: Client, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.call("GET", "/github-oidc/token?api-version=2.0", headers=headers)
    assert response.status_code == 401
    assert emu.issued_oidc_tokens == []


# -- Store API --------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "not-issued"])
def test_store_wants_an_issued_token(client: Client, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.call("GET", f"/v1.0/my/applications/{APP}", headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "statusCode": 401,
        "message": "APIM: Unauthorized. Access token is missing or invalid.",
    }


def test_app_and_flight_resources(emu: Emulator, client: Client) -> None:
    app = client.store("GET", f"applications/{APP}").json()
    assert app["lastPublishedApplicationSubmission"] == {
        "id": PUBLISHED,
        "resourceLocation": f"applications/{APP}/submissions/{PUBLISHED}",
    }
    assert app["pendingApplicationSubmission"]["id"] == PENDING
    flight = client.store("GET", f"applications/{APP}/flights/{FLIGHT}").json()
    assert flight["flightId"] == FLIGHT
    assert flight["friendlyName"] == "myflight"
    assert flight["lastPublishedFlightSubmission"]["id"] == PUBLISHED
    assert flight["pendingFlightSubmission"]["id"] == "1152921504621243647"


@pytest.mark.parametrize("null_style", [False, True])
def test_missing_submissions_absent_or_null(
    emu: Emulator, client: Client, null_style: bool
) -> None:
    emu.add_app("9ABCDEFGHJKL", last_published="42", null_style=null_style)
    emu.add_flight("9ABCDEFGHJKL", FLIGHT, null_style=null_style)
    app = client.store("GET", "applications/9ABCDEFGHJKL").json()
    flight = client.store("GET", f"applications/9ABCDEFGHJKL/flights/{FLIGHT}").json()
    if null_style:
        assert app["pendingApplicationSubmission"] is None
        assert flight["lastPublishedFlightSubmission"] is None
    else:
        assert "pendingApplicationSubmission" not in app
        assert "lastPublishedFlightSubmission" not in flight


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("applications/9XXXXXXXXXXX", "application"),
        (f"applications/{APP}/flights/00000000-0000-0000-0000-000000000000", "flight"),
        (f"applications/{APP}/submissions/1/packagerollout", "submission"),
        (f"applications/{APP}/flights/{FLIGHT}/submissions/1/packagerollout", "submission"),
    ],
)
def test_not_found(client: Client, path: str, target: str) -> None:
    response = client.store("GET", path)
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "ResourceNotFound"
    assert (body["source"], body["target"], body["data"], body["details"]) == (
        "Ingestion Api",
        target,
        [],
        [],
    )


def test_halt_stops_an_app_rollout_once(emu: Emulator, client: Client) -> None:
    before = client.store("GET", rollout_path() + "/packagerollout").json()
    assert before["packageRolloutStatus"] == "PackageRolloutInProgress"
    response = client.store("POST", rollout_path() + "/haltpackagerollout")
    assert response.status_code == 200
    assert response.json() == {
        "isPackageRollout": True,
        "packageRolloutPercentage": 0.0,
        "packageRolloutStatus": "PackageRolloutStopped",
        "fallbackSubmissionId": "1212922684621243058",
    }
    assert emu.rollout(APP, PUBLISHED) == response.json()
    again = client.store("POST", rollout_path() + "/haltpackagerollout")
    assert again.status_code == 409
    assert again.json()["code"] == "InvalidState"
    # The flight's rollout of the same submission is a rollout of its own.
    assert emu.rollout(APP, PUBLISHED, FLIGHT)["packageRolloutStatus"] == "PackageRolloutInProgress"


def test_halt_a_flight_rollout(emu: Emulator, client: Client) -> None:
    response = client.store("POST", rollout_path(flight=FLIGHT) + "/haltpackagerollout")
    assert response.status_code == 200
    assert response.json()["packageRolloutStatus"] == "PackageRolloutStopped"
    assert emu.rollout(APP, PUBLISHED)["packageRolloutStatus"] == "PackageRolloutInProgress"


@pytest.mark.parametrize(
    "setting",
    [
        {"status": "PackageRolloutNotStarted"},
        {"status": "PackageRolloutComplete", "percentage": 100.0},
        {"status": "PackageRolloutStopped", "percentage": 0.0},
        {"is_package_rollout": False, "percentage": 0.0},
    ],
)
def test_halt_refuses_other_states(emu: Emulator, client: Client, setting: dict[str, Any]) -> None:
    emu.set_rollout(APP, PUBLISHED, **setting)
    before = emu.rollout(APP, PUBLISHED)
    response = client.store("POST", rollout_path() + "/haltpackagerollout")
    assert response.status_code == 409
    body = response.json()
    assert (body["code"], body["source"], body["target"]) == (
        "InvalidState",
        "Ingestion Api",
        "submission",
    )
    assert emu.rollout(APP, PUBLISHED) == before


def test_halt_refuses_a_pending_submission_even_in_progress(emu: Emulator, client: Client) -> None:
    emu.set_rollout(APP, PENDING)  # in progress, as the emulator is told; still a draft
    response = client.store("POST", rollout_path(PENDING) + "/haltpackagerollout")
    assert response.status_code == 409
    assert response.json()["code"] == "InvalidState"


def test_halt_refuses_another_apps_submission(client: Client) -> None:
    response = client.store("POST", rollout_path("1152921504621243680") + "/haltpackagerollout")
    assert response.status_code == 409


def test_every_response_has_a_fresh_correlation_id(client: Client) -> None:
    responses = [
        client.sign_in(),
        client.call("GET", "/github-oidc/token"),
        client.store("GET", f"applications/{APP}"),
        client.store("GET", "applications/9XXXXXXXXXXX"),
    ]
    ids = [r.headers["MS-CorrelationId"] for r in responses]
    assert len(set(ids)) == len(ids)


def test_requests_are_recorded(emu: Emulator, client: Client) -> None:
    client.store("GET", rollout_path() + "/packagerollout", params={"x": "1"})
    client.store("POST", rollout_path() + "/haltpackagerollout")
    assert emu.requests[0].path.endswith("/oauth2/v2.0/token")
    store = emu.store_requests
    assert [r.method for r in store] == ["GET", "POST"]
    assert store[0].query == {"x": "1"}
    halt = emu.halt_requests
    assert len(halt) == 1
    assert halt[0].headers["authorization"] == f"Bearer {client.token}"
    assert halt[0].headers.get("AUTHORIZATION") == f"Bearer {client.token}"
    assert halt[0].body == b""
    assert halt[0].status == 200
    assert store[0].started <= halt[0].started <= time.monotonic()
    emu.reset_requests()
    assert emu.requests == []


def test_keep_alive(emu: Emulator) -> None:
    context = ssl.create_default_context(cafile=emu.ca_path)
    host, port = emu.url.removeprefix("https://").split(":")
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=5)
    sockets = []
    for _ in range(2):
        connection.request("GET", "/v1.0/my/applications/x")
        response = connection.getresponse()
        assert response.status == 401
        assert response.getheader("Content-Length") == str(len(response.read()))
        sockets.append(connection.sock)
    assert sockets[0] is sockets[1] is not None  # one connection served both
    connection.close()


def test_extra_hosts_are_in_the_certificate() -> None:
    with Emulator(extra_hosts=["store.test", "10.9.8.7"]) as emu:
        context = ssl.create_default_context(cafile=emu.ca_path)
        port = int(emu.url.rsplit(":", 1)[1])
        for name in ("store.test", "localhost", "127.0.0.1"):
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname=name) as tls,
            ):
                assert tls.version()
        ca_path = emu.ca_path
        assert os.path.exists(ca_path)
    assert not os.path.exists(ca_path)


# -- faults -----------------------------------------------------------------------------------


def test_respond_fault(emu: Emulator, client: Client) -> None:
    emu.add_fault(
        Fault(
            method="POST",
            path=r"/haltpackagerollout$",
            times=2,
            status=429,
            body={"statusCode": 429, "message": "Rate limit is exceeded. Try again in 1 seconds."},
            headers={"Retry-After": "1"},
        )
    )
    emu.add_fault(Fault(path=r"/haltpackagerollout$", status=503, body="<html>busy</html>"))
    halt = rollout_path() + "/haltpackagerollout"
    assert client.store("GET", rollout_path() + "/packagerollout").status_code == 200
    for _ in range(2):
        response = client.store("POST", halt)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "1"
        assert response.json()["statusCode"] == 429
        assert response.headers["MS-CorrelationId"]
    response = client.store("POST", halt)
    assert (response.status_code, response.text) == (503, "<html>busy</html>")
    assert emu.rollout(APP, PUBLISHED)["packageRolloutStatus"] == "PackageRolloutInProgress"
    assert client.store("POST", halt).status_code == 200
    assert [r.fault for r in emu.halt_requests] == ["respond", "respond", "respond", None]


def test_fault_forever_and_empty_body(emu: Emulator, client: Client) -> None:
    emu.add_fault(Fault(path=r"/oauth2/v2\.0/token$", times=None, status=500))
    for _ in range(3):
        response = client.sign_in()
        assert (response.status_code, response.content) == (500, b"")
    emu.clear_faults()
    assert client.sign_in().status_code == 200


def test_reset_before_leaves_the_state(emu: Emulator, client: Client) -> None:
    client.sign_in()
    emu.add_fault(Fault(method="POST", path=r"/haltpackagerollout$", kind="reset_before"))
    with pytest.raises(requests.ConnectionError):
        client.store("POST", rollout_path() + "/haltpackagerollout")
    assert emu.rollout(APP, PUBLISHED)["packageRolloutStatus"] == "PackageRolloutInProgress"
    assert emu.halt_requests[0].status is None
    assert client.store("POST", rollout_path() + "/haltpackagerollout").status_code == 200


def test_reset_after_applies_the_halt(emu: Emulator, client: Client) -> None:
    emu.add_fault(Fault(path=r"/haltpackagerollout$", kind="reset_after"))
    with pytest.raises(requests.ConnectionError):
        client.store("POST", rollout_path() + "/haltpackagerollout")
    assert emu.rollout(APP, PUBLISHED)["packageRolloutStatus"] == "PackageRolloutStopped"


@pytest.mark.parametrize(
    ("kind", "status"), [("truncate", "Stopped"), ("truncate-own", "InProgress")]
)
def test_truncate(emu: Emulator, client: Client, kind: str, status: str) -> None:
    body = {"statusCode": 500, "message": "x" * 40} if kind == "truncate-own" else None
    emu.add_fault(Fault(path=r"/haltpackagerollout$", kind="truncate", status=200, body=body))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        client.store("POST", rollout_path() + "/haltpackagerollout")
    assert emu.rollout(APP, PUBLISHED)["packageRolloutStatus"] == f"PackageRollout{status}"


@pytest.mark.parametrize(("kind", "status"), [("hang", "InProgress"), ("hang_after", "Stopped")])
def test_hang_blocks_only_its_connection(
    emu: Emulator, client: Client, kind: str, status: str
) -> None:
    client.sign_in()
    emu.add_fault(Fault(path=r"/haltpackagerollout$", kind=kind, seconds=5))
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.store("POST", rollout_path() + "/haltpackagerollout", timeout=0.5)
    assert time.monotonic() - started < 2
    other = Client(emu)  # a fresh connection is served meanwhile
    assert other.store("GET", rollout_path() + "/packagerollout").status_code == 200
    assert emu.rollout(APP, PUBLISHED)["packageRolloutStatus"] == f"PackageRollout{status}"


def test_stop_ends_a_hang_at_once() -> None:
    emu = Emulator().start()
    emu.add_fault(Fault(kind="hang"))  # an hour
    outcome: list[BaseException] = []

    def hang() -> None:
        try:
            requests.get(emu.url + "/x", verify=emu.ca_path, timeout=30)
        except requests.RequestException as error:
            outcome.append(error)

    thread = threading.Thread(target=hang)
    thread.start()
    deadline = time.monotonic() + 5
    while not emu.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    emu.stop()
    thread.join(5)
    assert time.monotonic() - started < 2
    assert not thread.is_alive()
    assert isinstance(outcome[0], requests.ConnectionError)


def test_faults_match_method_and_are_validated(emu: Emulator, client: Client) -> None:
    emu.add_fault(Fault(method="POST", path=r"/packagerollout$", status=500))
    assert client.store("GET", rollout_path() + "/packagerollout").status_code == 200
    assert len(emu.faults) == 1
    with pytest.raises(ValueError, match="kind"):
        Fault(path="x", kind="explode")
    with pytest.raises(ValueError, match="times"):
        Fault(path="x", times=0)


# -- command line and control API -------------------------------------------------------------


def test_command_line(tmp_path: Path) -> None:
    env_file = tmp_path / "emulator.env"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "store_emulator", "--seed", "demo"),
            *("--url-host", "localhost", "--env-file", str(env_file)),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        facts = json.loads(process.stdout.readline())
        assert facts["url"].startswith("https://localhost:")
        lines = env_file.read_text().splitlines()
        assert f"EMULATOR_URL={facts['url']}" in lines
        assert f"EMULATOR_CLIENT_SECRET={facts['client_secret']}" in lines
        assert len(lines) == 7

        def control(method: str, path: str, body: Any = None) -> requests.Response:
            return requests.request(
                method,
                f"{facts['url']}/_emulator/{path}",
                json=body,
                verify=facts["ca_path"],
                timeout=5,
            )

        rollout = {"app_id": APP, "submission_id": PUBLISHED}
        assert control("POST", "faults", {"path": "/packagerollout$", "status": 502}).ok
        assert control("POST", "faults", {"kind": "explode"}).status_code == 400
        assert control("POST", "rollout", {**rollout, "percentage": 50.0}).ok
        assert control("POST", "apps", {"app_id": "9ZZZ", "pending": "7"}).ok
        flight = {"app_id": "9ZZZ", "flight_id": FLIGHT, "last_published": "8", "null_style": True}
        assert control("POST", "flights", flight).json()["pendingFlightSubmission"] is None
        assert control("POST", "rollout", {**rollout, "percentage": "x"}).status_code == 400
        token = requests.post(
            f"{facts['url']}/{facts['tenant_id']}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": facts["client_id"],
                "client_secret": facts["client_secret"],
                "scope": SCOPE,
            },
            verify=facts["ca_path"],
            timeout=5,
        ).json()["access_token"]
        url = f"{facts['url']}/v1.0/my/{rollout_path()}/packagerollout"
        statuses = [
            requests.get(
                url,
                headers={"Authorization": f"Bearer {token}"},
                verify=facts["ca_path"],
                timeout=5,
            ).status_code
            for _ in range(2)
        ]
        assert statuses == [502, 200]
        query = {**rollout}
        current = control("GET", "rollout?" + "&".join(f"{k}={v}" for k, v in query.items()))
        assert current.json()["packageRolloutPercentage"] == 50.0
        recorded = control("GET", "requests").json()
        assert [r["status"] for r in recorded] == [200, 502, 200]
        assert control("POST", "reset-requests").ok
        assert control("GET", "requests").json() == []
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
