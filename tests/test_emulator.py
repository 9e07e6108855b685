"""The Store emulator speaks to real clients (requests, azure-identity) as
docs/store-api.md says the services do: the world every promise is tested against."""

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
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientAssertionCredential, ClientSecretCredential

from store_emulator import Emulator, Fault, bodies, demo
from store_emulator.demo import APP_ID as APP
from store_emulator.demo import FLIGHT_ID as FLIGHT
from store_emulator.demo import FLIGHT_PENDING, OTHER_SUBMISSION, PENDING, PUBLISHED

SCOPE = "https://manage.devcenter.microsoft.com/.default"
JSON = {"Content-Type": "application/json"}  # what known-good clients send on every call
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

    def store(
        self, method: str, path: str, headers: Mapping[str, str | None] | None = None, **kwargs: Any
    ) -> requests.Response:
        """A Store call with the token and, unless `headers` say otherwise, JSON's type."""
        if not self.token:
            self.token = self.sign_in().json()["access_token"]
        sent = {"Authorization": f"Bearer {self.token}", **JSON, **(headers or {})}
        return self.call(method, "/v1.0/my/" + path, headers=sent, **kwargs)

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


def azure_identity_token(
    emu: Emulator,
    credential_class: type[ClientSecretCredential] | type[ClientAssertionCredential],
    proof: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """An access token azure-identity got from the emulator with `proof` (a secret, or a
    callable handing out client assertions)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_path)
    credential = credential_class(
        emu.tenant_id, emu.client_id, proof, authority=emu.url, disable_instance_discovery=True
    )
    token = credential.get_token(SCOPE).token
    assert token in emu.issued_access_tokens
    return token


def test_azure_identity_client_secret_credential(
    emu: Emulator, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = azure_identity_token(emu, ClientSecretCredential, emu.client_secret, monkeypatch)
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
    azure_identity_token(emu, ClientAssertionCredential, client.oidc, monkeypatch)
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
    assert flight["pendingFlightSubmission"]["id"] == FLIGHT_PENDING
    assert flight["groupIds"] == [demo.GROUP_ID]
    assert flight["rankHigherThan"] == "Non-flighted submission"


def test_submission_resources_list_their_packages(emu: Emulator, client: Client) -> None:
    app = client.store("GET", rollout_path()).json()
    assert app["id"] == PUBLISHED
    assert [p["version"] for p in app["applicationPackages"]] == [demo.VERSION] * 2
    package = app["applicationPackages"][0]
    assert package["fileStatus"] == "Uploaded"
    assert {"fileName", "id", "architecture", "targetDeviceFamilies"} <= set(package)
    assert app["packageDeliveryOptions"]["packageRollout"] == emu.rollout(APP, PUBLISHED)
    upload = app["fileUploadUrl"]
    assert upload.startswith("https://productingestionbin1.blob.core.windows.net/ingestion/")
    query = dict(part.split("=", 1) for part in upload.split("?", 1)[1].split("&"))
    assert query["sv"] == "2014-02-14"
    assert query["sr"] == "b"
    assert query["sp"] == "rwl"
    assert unquote(query["sig"]) == emu.upload_signature
    draft = client.store("GET", rollout_path(PENDING)).json()["applicationPackages"]
    assert [p.get("version") for p in draft] == [demo.PENDING_VERSION, None]
    assert draft[1]["fileStatus"] == "PendingUpload"
    flight = client.store("GET", rollout_path(PUBLISHED, FLIGHT)).json()
    assert flight["flightId"] == FLIGHT
    assert "applicationPackages" not in flight
    assert [p["version"] for p in flight["flightPackages"]] == [demo.FLIGHT_VERSION] * 2
    assert flight["fileUploadUrl"] != upload  # a blob of its own
    # A halt shows in the resource too; a submission that does not exist is a 404.
    client.store("POST", rollout_path() + "/haltpackagerollout")
    after = client.store("GET", rollout_path()).json()["packageDeliveryOptions"]["packageRollout"]
    assert after["packageRolloutStatus"] == "PackageRolloutStopped"
    assert client.store("GET", rollout_path("1152921504699999999")).status_code == 404
    assert client.store("POST", rollout_path()).status_code == 404


def test_packages_are_set_per_submission(emu: Emulator, client: Client) -> None:
    emu.set_packages(APP, PUBLISHED, ["9.0.0.0", None, "9.0.1.0"])
    packages = client.store("GET", rollout_path()).json()["applicationPackages"]
    assert [p.get("version") for p in packages] == ["9.0.0.0", None, "9.0.1.0"]
    flight = client.store("GET", rollout_path(PUBLISHED, FLIGHT)).json()["flightPackages"]
    assert [p["version"] for p in flight] == [demo.FLIGHT_VERSION] * 2  # untouched


def test_faults_apply_to_the_submission_resource(emu: Emulator, client: Client) -> None:
    emu.add_fault(Fault(method="GET", path=r"/submissions/\d+$", status=503, body="busy"))
    emu.add_fault(Fault(method="GET", path=r"/submissions/\d+$", kind="delay", seconds=0.5))
    response = client.store("GET", rollout_path())
    assert (response.status_code, response.text) == (503, "busy")
    started = time.monotonic()
    assert client.store("GET", rollout_path()).status_code == 200
    assert time.monotonic() - started >= 0.5
    # The rollout's own path is not the resource's.
    emu.add_fault(Fault(method="GET", path=r"/submissions/\d+$", status=500))
    assert client.store("GET", rollout_path() + "/packagerollout").status_code == 200
    assert [r.fault for r in emu.store_requests] == ["respond", "delay", None]


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
    response = client.store("POST", rollout_path(OTHER_SUBMISSION) + "/haltpackagerollout")
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


# -- seen in the field ------------------------------------------------------------------------

HALT = f"applications/{APP}/submissions/{PUBLISHED}/haltpackagerollout"
MEDIA_TYPE_REFUSAL = {
    "code": "InvalidParameterValue",
    "data": [],
    "details": [],
    "message": "Only JSON content is accepted.",
    "source": "Ingestion Api",
    "target": "mediaType",
}


@pytest.mark.parametrize(
    "content_type",
    [None, "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/json"],
)
def test_a_post_must_declare_json(emu: Emulator, client: Client, content_type: str | None) -> None:
    response = client.store("POST", HALT, headers={"Content-Type": content_type})
    assert response.request.headers.get("Content-Type") == content_type
    assert response.status_code == 400
    assert response.json() == MEDIA_TYPE_REFUSAL
    assert emu.rollout(APP, PUBLISHED)["packageRolloutStatus"] == "PackageRolloutInProgress"


@pytest.mark.parametrize("content_type", ["application/json; charset=UTF-8", "Application/JSON"])
def test_json_in_any_spelling_is_accepted(client: Client, content_type: str) -> None:
    response = client.store("POST", HALT, headers={"Content-Type": content_type})
    assert response.status_code == 200


def test_a_get_needs_no_content_type(client: Client) -> None:
    # StoreBroker declares JSON on POST and PUT only; its GETs work.
    response = client.store("GET", f"applications/{APP}", headers={"Content-Type": None})
    assert "Content-Type" not in response.request.headers
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("rule", "absent", "form"), [("strict", 400, 400), ("declared", 200, 400), ("off", 200, 200)]
)
def test_content_type_rule_knob(
    emu: Emulator, client: Client, rule: str, absent: int, form: int
) -> None:
    emu.knobs.content_type_rule = rule
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    assert client.store("POST", HALT, headers=form_type).status_code == form
    emu.set_rollout(APP, PUBLISHED)
    assert client.store("POST", HALT, headers={"Content-Type": None}).status_code == absent
    with pytest.raises(ValueError, match="content_type_rule"):
        emu.knobs.content_type_rule = "lenient"


def test_integer_percentages_emulator_wide(emu: Emulator, client: Client) -> None:
    emu.knobs.integer_percentages = True
    read = client.store("GET", rollout_path() + "/packagerollout")
    assert '"packageRolloutPercentage": 25,' in read.text
    assert type(read.json()["packageRolloutPercentage"]) is int
    halted = client.store("POST", HALT).json()
    assert halted["packageRolloutPercentage"] == 0
    assert type(halted["packageRolloutPercentage"]) is int
    emu.set_rollout(APP, PUBLISHED, percentage=12.5)
    assert client.store("GET", rollout_path() + "/packagerollout").json()[
        "packageRolloutPercentage"
    ] == pytest.approx(12.5)


@pytest.mark.parametrize("knob", [False, True])
def test_integer_percentage_per_rollout_wins(emu: Emulator, client: Client, knob: bool) -> None:
    emu.knobs.integer_percentages = knob
    emu.set_rollout(APP, PUBLISHED, percentage=25.0, integer_percentage=not knob)
    value = client.store("GET", rollout_path() + "/packagerollout").json()[
        "packageRolloutPercentage"
    ]
    assert type(value) is (float if knob else int)
    assert value == 25


def test_key_casing_is_not_uniform(client: Client) -> None:
    app = client.store("GET", f"applications/{APP}").json()
    assert app["PackageFamilyName"] == demo.PACKAGE_FAMILY_NAME
    assert app["id"] == APP
    assert app["primaryName"] == demo.APP_NAME
    assert app["lastPublishedApplicationSubmission"]["id"] == PUBLISHED
    assert "packageFamilyName" not in app


def test_extra_keys_may_replace_documented_ones(emu: Emulator, client: Client) -> None:
    hostile = {"lastPublishedFlightSubmission": {"id": 42}, "FlightId": "x"}
    emu.add_flight(APP, FLIGHT, last_published=PUBLISHED, extra=hostile)
    flight = client.store("GET", f"applications/{APP}/flights/{FLIGHT}").json()
    assert flight["lastPublishedFlightSubmission"] == {"id": 42}
    assert (flight["flightId"], flight["FlightId"]) == (FLIGHT, "x")


ACCOUNT_MESSAGE = "Account service is experiencing issue. Please try again later."


@pytest.mark.parametrize(
    ("shape", "body"),
    [
        ("gateway", {"statusCode": 503, "message": ACCOUNT_MESSAGE}),
        (
            "ingestion",
            {
                "code": "ServiceUnavailable",
                "data": [],
                "details": [],
                "message": ACCOUNT_MESSAGE,
                "source": "Ingestion Api",
                "target": "account",
            },
        ),
        ("text", ACCOUNT_MESSAGE),
    ],
)
def test_account_not_added_is_a_503_forever(
    emu: Emulator, client: Client, shape: str, body: Any
) -> None:
    emu.knobs.account_not_added = True
    emu.knobs.account_not_added_shape = shape
    calls = [
        ("GET", f"applications/{APP}"),
        ("GET", f"applications/{APP}/flights/{FLIGHT}"),
        ("GET", f"applications/{APP}/listflights"),
        ("GET", rollout_path() + "/packagerollout"),
        *[("POST", HALT)] * 5,
    ]
    for method, path in calls:
        response = client.store(method, path)
        assert response.status_code == 503
        assert (response.json() if shape != "text" else response.text) == body
        assert "Retry-After" not in response.headers
    assert emu.rollout(APP, PUBLISHED)["packageRolloutStatus"] == "PackageRolloutInProgress"
    # Sign-in still works, and the gateway still refuses a bad token first.
    assert client.sign_in().status_code == 200
    unsigned = client.call("GET", f"/v1.0/my/applications/{APP}")
    assert unsigned.status_code == 401
    emu.knobs.account_not_added = False
    assert client.store("POST", HALT).status_code == 200


def test_a_foreign_app_is_a_403_with_an_empty_body(emu: Emulator, client: Client) -> None:
    emu.add_foreign_app(demo.OTHER_APP)
    other = f"applications/{demo.OTHER_APP}"
    for method, path in [
        ("GET", other),
        ("GET", f"{other}/submissions/{OTHER_SUBMISSION}/packagerollout"),
        ("POST", f"{other}/submissions/{OTHER_SUBMISSION}/haltpackagerollout"),
        ("POST", f"{other}/submissions/{OTHER_SUBMISSION}/haltpackagerollout"),
    ]:
        response = client.store(method, path)
        assert (response.status_code, response.content) == (403, b"")
        assert response.headers["Content-Length"] == "0"
        assert "Content-Type" not in response.headers
        assert response.headers["MS-CorrelationId"]
    rollout = emu.rollout(demo.OTHER_APP, OTHER_SUBMISSION)
    assert rollout["packageRolloutStatus"] == "PackageRolloutInProgress"
    assert client.store("GET", f"applications/{APP}").status_code == 200


def _race(emu: Emulator, responders: int) -> list[requests.Response]:
    """`responders` clients, signed in beforehand, halt the app rollout at the same moment."""
    clients = [Client(emu) for _ in range(responders)]
    for c in clients:
        c.token = c.sign_in().json()["access_token"]
    start = threading.Barrier(responders)
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def halt(c: Client) -> None:
        start.wait(timeout=5)
        answer = c.store("POST", HALT)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=halt, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(answers) == responders
    return sorted(answers, key=lambda a: a.status_code)


def test_two_responders_at_once_one_halt_wins(emu: Emulator, client: Client) -> None:
    # While the Store applies a halt, the other responder's halt arrives.
    emu.knobs.halt_seconds = 0.3
    reading: list[str] = []
    reader = threading.Timer(
        0.15,
        lambda: reading.append(
            client.store("GET", rollout_path() + "/packagerollout").json()["packageRolloutStatus"]
        ),
    )
    client.sign_in()
    reader.start()
    first, second = _race(emu, 2)
    reader.join(5)
    assert first.status_code == 200
    assert first.json()["packageRolloutStatus"] == "PackageRolloutStopped"
    assert second.status_code == 409
    assert second.json()["code"] == "InvalidState"
    assert reading == ["PackageRolloutInProgress"]  # not stopped until the halt is applied
    assert emu.rollout(APP, PUBLISHED)["packageRolloutStatus"] == "PackageRolloutStopped"


def test_a_slow_halt_answered_at_once_takes_effect_later(emu: Emulator, client: Client) -> None:
    emu.knobs.halt_seconds = 0.4
    emu.knobs.halt_answered_at_once = True
    path = rollout_path()
    client.store("GET", path + "/packagerollout")  # signed in before the clock starts
    started = time.monotonic()
    answer = client.store("POST", path + "/haltpackagerollout")
    assert time.monotonic() - started < 0.3  # answered before it took effect
    assert answer.status_code == 200
    assert answer.json()["packageRolloutStatus"] == "PackageRolloutInProgress"
    again = client.store("POST", path + "/haltpackagerollout")
    assert again.status_code == 409
    assert "already under way" in again.json()["message"]
    read = client.store("GET", path + "/packagerollout").json()
    assert read["packageRolloutStatus"] == "PackageRolloutInProgress"
    deadline = time.monotonic() + 10
    while emu.rollout(APP, PUBLISHED)["packageRolloutStatus"] != "PackageRolloutStopped":
        assert time.monotonic() < deadline, "the halt never took effect"
        time.sleep(0.05)
    assert emu.state.stopped_by == {(APP, None, PUBLISHED): "client"}


def test_who_stopped_a_rollout_is_remembered(emu: Emulator, client: Client) -> None:
    emu.state.halt(APP, PUBLISHED, by="rival")
    refused = client.store("POST", rollout_path() + "/haltpackagerollout")
    assert refused.status_code == 409
    assert emu.state.stopped_by == {(APP, None, PUBLISHED): "rival"}


def test_many_responders_at_once_exactly_one_halt_wins(emu: Emulator) -> None:
    emu.knobs.halt_seconds = 0.05
    for _ in range(3):
        emu.set_rollout(APP, PUBLISHED)
        statuses = [a.status_code for a in _race(emu, 6)]
        assert statuses == [200, 409, 409, 409, 409, 409]


# -- listing an app's flights ------------------------------------------------------------------

WHOLE = demo.WHOLE_APP_ID
LIST = f"applications/{WHOLE}/listflights"


@pytest.fixture
def whole(emu: Emulator) -> Emulator:
    emu.seed_whole_app()
    return emu


def pages(client: Client, first: str) -> list[dict[str, Any]]:
    """Every page, following @nextLink as a path relative to the API root."""
    result = [client.store("GET", first).json()]
    while "@nextLink" in result[-1]:
        assert len(result) < 50, "the links never end"
        result.append(client.store("GET", result[-1]["@nextLink"]).json())
    return result


def test_listflights_as_documented(whole: Emulator, client: Client) -> None:
    response = client.store("GET", LIST, params={"top": 1})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["@nextLink", "value", "totalCount"]
    assert body["@nextLink"] == f"applications/{WHOLE}/listflights?skip=1&top=1"
    assert body["totalCount"] == 23
    (flight,) = body["value"]
    first = demo.WHOLE_FLIGHTS[0]
    assert list(flight) == [
        "flightId",
        "friendlyName",
        "lastPublishedFlightSubmission",
        "pendingFlightSubmission" if first.pending else "groupIds",
        *(["groupIds"] if first.pending else []),
        "rankHigherThan",
    ]
    assert flight == client.store("GET", f"applications/{WHOLE}/flights/{first.flight_id}").json()
    assert flight["lastPublishedFlightSubmission"] == {
        "id": first.published,
        "resourceLocation": f"flights/{first.flight_id}/submissions/{first.published}",
    }


def test_listflights_without_parameters_lists_all(whole: Emulator, client: Client) -> None:
    body = client.store("GET", LIST).json()
    assert "@nextLink" not in body
    assert [f["flightId"] for f in body["value"]] == [f.flight_id for f in demo.WHOLE_FLIGHTS]
    assert body["totalCount"] == 23


def test_listflights_pages_follow_next_links(whole: Emulator, client: Client) -> None:
    got = pages(client, f"{LIST}?top=10")
    assert [len(p["value"]) for p in got] == [10, 10, 3]
    assert got[0]["@nextLink"] == f"applications/{WHOLE}/listflights?skip=10&top=10"
    assert {p["totalCount"] for p in got} == {23}
    flights = [f for p in got for f in p["value"]]
    assert [f["flightId"] for f in flights] == [f.flight_id for f in demo.WHOLE_FLIGHTS]
    assert len({f["friendlyName"] for f in flights}) == 23
    # StoreBroker's form: a trailing slash, skip and top in the other order.
    slash = client.store("GET", f"{LIST}/?top=100&skip=0").json()
    assert slash["value"] == flights


def test_listflights_page_cap_below_top(whole: Emulator, client: Client) -> None:
    whole.knobs.listflights_page_cap = 7
    got = pages(client, f"{LIST}?top=10")
    assert [len(p["value"]) for p in got] == [7, 7, 7, 2]
    # The next page starts after what was sent, not after what was asked for.
    assert got[0]["@nextLink"] == f"applications/{WHOLE}/listflights?skip=7&top=10"
    flights = [f["flightId"] for p in got for f in p["value"]]
    assert flights == [f.flight_id for f in demo.WHOLE_FLIGHTS]
    unasked = client.store("GET", LIST).json()
    assert len(unasked["value"]) == 7
    assert unasked["@nextLink"] == f"applications/{WHOLE}/listflights?skip=7&top=7"
    with pytest.raises(ValueError, match="page_cap"):
        whole.knobs.listflights_page_cap = 0


def test_listflights_without_next_links(whole: Emulator, client: Client) -> None:
    whole.knobs.listflights_next_link = False
    body = client.store("GET", f"{LIST}?top=10").json()
    assert "@nextLink" not in body
    assert (len(body["value"]), body["totalCount"]) == (10, 23)
    rest = client.store("GET", f"{LIST}?top=10&skip=20").json()
    assert len(rest["value"]) == 3


def test_listflights_past_the_end(whole: Emulator, client: Client) -> None:
    body = client.store("GET", f"{LIST}?skip=23&top=10").json()
    assert body == {"value": [], "totalCount": 23}


@pytest.mark.parametrize(
    ("query", "target"),
    [
        ("top=0", "top"),
        ("top=-1", "top"),
        ("top=ten", "top"),
        ("skip=-1", "skip"),
        ("skip=", "skip"),
    ],
)
def test_listflights_refuses_bad_paging(
    whole: Emulator, client: Client, query: str, target: str
) -> None:
    response = client.store("GET", f"{LIST}?{query}")
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["target"]) == (
        "InvalidParameterValue",
        target,
    )


def test_listflights_of_an_unknown_app(client: Client) -> None:
    response = client.store("GET", "applications/9XXXXXXXXXXX/listflights")
    assert response.status_code == 404
    assert (response.json()["code"], response.json()["target"]) == (
        "ResourceNotFound",
        "application",
    )


def test_listflights_of_an_app_without_flights(emu: Emulator, client: Client) -> None:
    path = f"applications/{demo.OTHER_APP}/listflights"
    assert client.store("GET", path).json() == {"value": [], "totalCount": 0}
    emu.knobs.listflights_empty_404 = True
    response = client.store("GET", path)
    assert response.status_code == 404
    assert response.json()["message"] == "No package flights were found."


def test_the_whole_app_seed(whole: Emulator, client: Client) -> None:
    assert len(WHOLE) == 12
    assert WHOLE.isascii()
    assert WHOLE.isalnum()
    app = client.store("GET", f"applications/{WHOLE}").json()
    assert app["lastPublishedApplicationSubmission"]["id"] == demo.WHOLE_PUBLISHED
    assert app["pendingApplicationSubmission"]["id"] == demo.WHOLE_PENDING
    app_rollout = whole.rollout(WHOLE, demo.WHOLE_PUBLISHED)
    assert app_rollout["packageRolloutStatus"] == "PackageRolloutInProgress"
    flights = demo.WHOLE_FLIGHTS
    assert len(flights) == 23
    assert len({f.flight_id for f in flights}) == len({f.name for f in flights}) == 23
    assert sum(f.in_progress for f in flights) == 20
    assert sum(f.pending is not None for f in flights) >= 3
    assert [f.index for f in flights if f.published is None] == [demo.NO_PUBLISHED_INDEX]
    assert [f.index for f in flights if f.status == "PackageRolloutStopped"] == [demo.STOPPED_INDEX]
    assert [f.index for f in flights if not f.is_package_rollout] == [
        demo.NOT_PACKAGE_ROLLOUT_INDEX
    ]
    assert any(not f.percentage.is_integer() for f in flights)
    for flight in flights:
        path = f"applications/{WHOLE}/flights/{flight.flight_id}/submissions"
        if flight.published is None:
            assert (
                "lastPublishedFlightSubmission"
                not in client.store(
                    "GET", f"applications/{WHOLE}/flights/{flight.flight_id}"
                ).json()
            )
            continue
        rollout = client.store("GET", f"{path}/{flight.published}/packagerollout").json()
        assert rollout["packageRolloutStatus"] == flight.status
        assert rollout["isPackageRollout"] is flight.is_package_rollout
        halt = client.store("POST", f"{path}/{flight.published}/haltpackagerollout")
        assert halt.status_code == (200 if flight.in_progress else 409)
        if flight.pending is not None:
            draft = client.store("POST", f"{path}/{flight.pending}/haltpackagerollout")
            assert draft.status_code == 409


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


def stop_while_in_flight(emu: Emulator, call: Callable[[], None], settle: float = 0.0) -> None:
    """Stop the emulator once `call`, on a thread, has reached it (and `settle` s later):
    the stop takes under 2 s and ends the call."""
    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 5
    while not emu.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(settle)
    started = time.monotonic()
    emu.stop()
    thread.join(5)
    assert time.monotonic() - started < 2
    assert not thread.is_alive()


def test_stop_ends_a_hang_at_once() -> None:
    emu = Emulator().start()
    emu.add_fault(Fault(kind="hang"))  # an hour
    outcome: list[BaseException] = []

    def hang() -> None:
        try:
            requests.get(emu.url + "/x", verify=emu.ca_path, timeout=30)
        except requests.RequestException as error:
            outcome.append(error)

    stop_while_in_flight(emu, hang)
    assert isinstance(outcome[0], requests.ConnectionError)


def test_faults_match_method_and_are_validated(emu: Emulator, client: Client) -> None:
    emu.add_fault(Fault(method="POST", path=r"/packagerollout$", status=500))
    assert client.store("GET", rollout_path() + "/packagerollout").status_code == 200
    assert len(emu.faults) == 1
    with pytest.raises(ValueError, match="kind"):
        Fault(path="x", kind="explode")
    with pytest.raises(ValueError, match="times"):
        Fault(path="x", times=0)


def test_respond_after_hides_a_success(emu: Emulator, client: Client) -> None:
    gateway = {"statusCode": 504, "message": "Gateway Timeout"}
    emu.add_fault(
        Fault(path=r"/haltpackagerollout$", kind="respond_after", status=504, body=gateway)
    )
    response = client.store("POST", HALT)
    assert (response.status_code, response.json()) == (504, gateway)
    assert emu.rollout(APP, PUBLISHED)["packageRolloutStatus"] == "PackageRolloutStopped"
    assert emu.halt_requests[0].fault == "respond_after"
    assert client.store("POST", HALT).status_code == 409


def test_respond_after_on_the_token_endpoint(emu: Emulator, client: Client) -> None:
    emu.add_fault(Fault(path=r"/oauth2/v2\.0/token$", kind="respond_after", status=500))
    assert client.sign_in().status_code == 500
    assert len(emu.issued_access_tokens) == 1  # issued, but the answer was lost


ENDPOINTS = {
    "store": ("GET", r"/packagerollout$"),
    "discovery": ("GET", r"/openid-configuration$"),
    "token": ("POST", r"/token$"),
    "oidc": ("GET", r"^/github-oidc/token$"),
}


def call_endpoint(emu: Emulator, client: Client, which: str) -> requests.Response:
    if which == "store":
        return client.store("GET", rollout_path() + "/packagerollout")
    if which == "discovery":
        return client.call("GET", f"/{emu.tenant_id}/v2.0/.well-known/openid-configuration")
    if which == "token":
        return client.sign_in()
    return client.call(
        "GET",
        "/github-oidc/token?audience=api://AzureADTokenExchange",
        headers={"Authorization": f"Bearer {emu.oidc_request_token}"},
    )


@pytest.mark.parametrize("which", ENDPOINTS)
def test_delay_answers_normally_but_late(emu: Emulator, client: Client, which: str) -> None:
    client.sign_in()
    method, path = ENDPOINTS[which]
    emu.add_fault(Fault(method=method, path=path, kind="delay", seconds=0.4))
    started = time.monotonic()
    response = call_endpoint(emu, client, which)
    assert time.monotonic() - started >= 0.4
    assert response.status_code == 200
    assert response.json()
    assert emu.requests[-1].fault == "delay"


def test_delay_with_its_own_answer_leaves_the_state(emu: Emulator, client: Client) -> None:
    client.sign_in()
    emu.add_fault(
        Fault(path=r"/haltpackagerollout$", kind="delay", seconds=0.3, status=503, body="")
    )
    emu.add_fault(Fault(path=r"/haltpackagerollout$", kind="delay", seconds=0.3, body={"x": 1}))
    started = time.monotonic()
    assert client.store("POST", HALT).status_code == 503
    second = client.store("POST", HALT)
    assert time.monotonic() - started >= 0.6
    assert (second.status_code, second.json()) == (500, {"x": 1})
    assert emu.rollout(APP, PUBLISHED)["packageRolloutStatus"] == "PackageRolloutInProgress"


def test_delay_applies_the_request_after_waiting(emu: Emulator, client: Client) -> None:
    client.sign_in()
    emu.add_fault(Fault(path=r"/haltpackagerollout$", kind="delay", seconds=5))
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.store("POST", HALT, timeout=0.3)
    # A slow Store is still working on it: not stopped yet.
    assert emu.rollout(APP, PUBLISHED)["packageRolloutStatus"] == "PackageRolloutInProgress"


def tls_connection(emu: Emulator) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=emu.ca_path)
    host, port = emu.url.removeprefix("https://").split(":")
    raw = socket.create_connection((host, int(port)), timeout=5)
    return context.wrap_socket(raw, server_hostname=host)


def raw_request(tls: ssl.SSLSocket, method: str, path: str, token: str = "") -> None:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if method == "POST":
        lines.append("Content-Length: 0")
    tls.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())


def test_trickle_sends_one_byte_at_a_time(emu: Emulator, client: Client) -> None:
    token = client.sign_in().json()["access_token"]
    emu.add_fault(Fault(path=r"/packagerollout$", kind="trickle", interval=0.002))
    with tls_connection(emu) as tls:
        raw_request(tls, "GET", "/v1.0/my/" + rollout_path() + "/packagerollout", token)
        started = time.monotonic()
        pieces: list[bytes] = []
        data = b""
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < int(
            data.lower().partition(b"content-length: ")[2].split(b"\r\n")[0] or b"1"
        ):
            piece = tls.recv(4096)
            assert piece, "closed early"
            pieces.append(piece)
            data += piece
        elapsed = time.monotonic() - started
    assert {len(p) for p in pieces} == {1}
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"MS-CorrelationId: " in head
    assert json.loads(body)["packageRolloutStatus"] == "PackageRolloutInProgress"
    assert elapsed >= (len(data) - 1) * 0.002


@pytest.mark.parametrize(
    ("body", "status"), [(None, "Stopped"), ({"statusCode": 200}, "InProgress")]
)
def test_trickle_of_a_halt(
    emu: Emulator, client: Client, body: dict[str, int] | None, status: str
) -> None:
    emu.add_fault(
        Fault(path=r"/haltpackagerollout$", kind="trickle", interval=0, status=200, body=body)
    )
    response = client.store("POST", HALT)
    assert response.status_code == 200
    assert emu.rollout(APP, PUBLISHED)["packageRolloutStatus"] == f"PackageRollout{status}"
    assert emu.halt_requests[0].status == 200


@pytest.mark.parametrize("framing", ["close", "chunked"])
def test_trickle_without_end(emu: Emulator, client: Client, framing: str) -> None:
    token = client.sign_in().json()["access_token"]
    emu.add_fault(
        Fault(path=r"/packagerollout$", kind="trickle", interval=0, endless=True, framing=framing)
    )
    with tls_connection(emu) as tls:
        raw_request(tls, "GET", "/v1.0/my/" + rollout_path() + "/packagerollout", token)
        data = b""
        while len(data) < 3000:
            piece = tls.recv(4096)
            assert piece, "the endless answer ended"
            data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Content-Length" not in head
    if framing == "chunked":
        assert b"Transfer-Encoding: chunked" in head
        size, _, rest = body.partition(b"\r\n")
        answer, rest = rest[: int(size, 16)], rest[int(size, 16) :]
        assert rest.startswith(b"\r\n400\r\n" + b" " * 100)  # chunks of spaces follow
    else:
        assert b"Connection: close" in head
        answer = body.rstrip(b" ")
        assert body.endswith(b" " * 100)
    assert json.loads(answer)["packageRolloutStatus"] == "PackageRolloutInProgress"
    assert emu.requests[-1].status is None  # never a complete answer


APP_PATH = rf"/applications/{APP}$"


def test_huge_is_streamed_not_held(emu: Emulator, client: Client) -> None:
    size = 64 * 1024 * 1024
    emu.add_fault(Fault(path=r"/packagerollout$", kind="huge", status=200, size=size))
    client.sign_in()
    tracemalloc.start()
    try:
        response = client.store("GET", rollout_path() + "/packagerollout", stream=True)
        received = sum(len(chunk) for chunk in response.iter_content(256 * 1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == size
    assert response.headers["Content-Length"] == str(size)
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert peak < 16 * 1024 * 1024
    assert emu.requests[-1].status == 200


def test_huge_chunked_and_of_a_unit(emu: Emulator, client: Client) -> None:
    emu.add_fault(
        Fault(path=APP_PATH, kind="huge", status=502, size=10, body="abc", framing="chunked")
    )
    response = client.store("GET", f"applications/{APP}")
    assert (response.status_code, response.text) == (502, "abcabcabca")
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.headers
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("framing", ["close", "chunked"])
def test_huge_without_end(emu: Emulator, client: Client, framing: str) -> None:
    emu.add_fault(
        Fault(path=APP_PATH, kind="huge", status=200, size=10, endless=True, framing=framing)
    )
    response = client.store("GET", f"applications/{APP}", stream=True)
    received = 0
    for chunk in response.iter_content(1024 * 1024):
        received += len(chunk)
        if received > 8 * 1024 * 1024:
            break
    response.close()
    assert received > 8 * 1024 * 1024
    assert "Content-Length" not in response.headers


def test_deep_json(emu: Emulator, client: Client) -> None:
    emu.add_fault(Fault(path=r"/packagerollout$", status=200, body=bodies.deep_json()))
    response = client.store("GET", rollout_path() + "/packagerollout")
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.content == b'{"a":' * 100_000 + b"0" + b"}" * 100_000
    with pytest.raises(RecursionError):
        response.json()


def test_unclosed_titles(emu: Emulator, client: Client) -> None:
    stream = bodies.unclosed_titles(200_000)
    emu.add_fault(Fault(path=APP_PATH, kind="huge", status=502, body=stream))
    response = client.store("GET", f"applications/{APP}")
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.text.startswith("<!DOCTYPE html><html><head><title<title")
    assert response.text.count("<title") == 200_000
    assert "</title" not in response.text
    assert len(response.content) == len(stream)


def test_whitespace_message(emu: Emulator, client: Client) -> None:
    spaces = 4 * 1024 * 1024
    emu.add_fault(
        Fault(path=APP_PATH, status=503, body=bodies.whitespace_message(spaces, status=503))
    )
    response = client.store("GET", f"applications/{APP}")
    assert response.status_code == 503
    assert response.json() == {"statusCode": 503, "message": " " * spaces}


def test_an_endless_stream_grows_its_hostile_part(emu: Emulator, client: Client) -> None:
    emu.add_fault(
        Fault(
            path=APP_PATH,
            kind="huge",
            status=200,
            body=bodies.deep_json(3),
            endless=True,
            framing="close",
        )
    )
    response = client.store("GET", f"applications/{APP}", stream=True)
    start = next(response.iter_content(len(b'{"a":') * 1000))
    response.close()
    assert start == b'{"a":' * 1000


def test_streams_and_new_faults_are_validated() -> None:
    with pytest.raises(ValueError, match="grow"):
        bodies.Stream(((b"x", 1),), "text/plain", grow=1)
    with pytest.raises(ValueError, match="pattern"):
        bodies.make("zip_bomb", 1)
    with pytest.raises(ValueError, match="endless"):
        Fault(kind="huge", endless=True)
    with pytest.raises(ValueError, match="huge"):
        Fault(kind="huge", body={"a": 1})
    with pytest.raises(ValueError, match="stream"):
        Fault(kind="truncate", body=bodies.deep_json(2))
    with pytest.raises(ValueError, match="framing"):
        Fault(kind="huge", framing="gzip")
    with pytest.raises(ValueError, match="interval"):
        Fault(kind="trickle", interval=float("nan"))
    assert len(bodies.filler(10, b"abc")) == 10
    assert b"".join(bodies.filler(10, b"abc").chunks()) == b"abcabcabca"


@pytest.mark.parametrize("kind", ["delay", "trickle", "huge"])
def test_stop_ends_slow_answers_at_once(kind: str) -> None:
    emu = Emulator().start()
    emu.add_fault(
        Fault(kind=kind, seconds=3600, interval=3600, size=10, endless=True, framing="close")
    )
    outcome: list[BaseException | int] = []

    def call() -> None:
        try:
            with requests.get(emu.url + "/x", verify=emu.ca_path, timeout=30, stream=True) as r:
                for _ in r.iter_content(1024):
                    pass
                outcome.append(r.status_code)
        except requests.RequestException as error:
            outcome.append(error)

    stop_while_in_flight(emu, call, settle=0.1)
    assert outcome


# -- command line and control API -------------------------------------------------------------


def test_command_line(tmp_path: Path) -> None:
    env_file = tmp_path / "emulator.env"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "store_emulator", "--seed", "demo", "--seed", "whole-app"),
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
        packages = control("POST", "packages", {**rollout, "versions": ["7.0.0.0", None]})
        assert [p.get("version") for p in packages.json()["applicationPackages"]] == [
            "7.0.0.0",
            None,
        ]
        assert control("POST", "packages", {**rollout, "versions": [7]}).status_code == 400
        form = {"grant_type": "client_credentials", "scope": SCOPE}
        form |= {key: facts[key] for key in ("client_id", "client_secret")}
        token = requests.post(
            f"{facts['url']}/{facts['tenant_id']}/oauth2/v2.0/token",
            data=form,
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

        def store(method: str, path: str) -> requests.Response:
            return requests.request(
                method,
                f"{facts['url']}/v1.0/my/{path}",
                headers={"Authorization": f"Bearer {token}", **JSON},
                verify=facts["ca_path"],
                timeout=5,
            )

        # Knobs, seeds and the new fault kinds, as a separate process sets them.
        knobs = {"integer_percentages": True, "listflights_page_cap": 2}
        assert control("POST", "knobs", knobs).json()["listflights_page_cap"] == 2
        refusals: list[dict[str, Any]] = [
            {"content_type_rule": "lenient"},
            {"halt_seconds": -1, "integer_percentages": False},
            {"listflights_page_cap": True},
            {"nope": 1},
        ]
        for refused in refusals:
            assert control("POST", "knobs", refused).status_code == 400
        assert control("GET", "knobs").json()["integer_percentages"] is True  # all or none
        assert store("GET", rollout_path() + "/packagerollout").json() == {
            "isPackageRollout": True,
            "packageRolloutPercentage": 50,
            "packageRolloutStatus": "PackageRolloutInProgress",
            "fallbackSubmissionId": "1212922684621243058",
        }
        seeded = store("GET", f"applications/{demo.WHOLE_APP_ID}/listflights")
        assert seeded.json()["totalCount"] == 23
        assert control("POST", "seed", {"name": "whole-app"}).ok
        assert control("POST", "seed", {"name": "everything"}).status_code == 400
        page = store("GET", f"applications/{demo.WHOLE_APP_ID}/listflights?top=5").json()
        assert (len(page["value"]), page["totalCount"]) == (2, 23)
        assert page["@nextLink"].endswith("?skip=2&top=5")
        assert control("POST", "knobs", {"foreign_apps": [demo.OTHER_APP]}).ok
        assert store("GET", f"applications/{demo.OTHER_APP}").status_code == 403
        flight = {"app_id": APP, "flight_id": FLIGHT, "last_published": PUBLISHED}
        flight |= {"extra": {"FlightId": FLIGHT.upper()}, "group_ids": ["1", "2"]}
        assert control("POST", "flights", flight).json()["groupIds"] == ["1", "2"]
        float_rollout = {**rollout, "integer_percentage": False}
        assert control("POST", "rollout", float_rollout).json()["packageRolloutPercentage"] == 25.0
        halt_504 = {"path": "/haltpackagerollout$", "kind": "respond_after", "status": 504}
        assert control("POST", "faults", halt_504).ok
        assert store("POST", rollout_path() + "/haltpackagerollout").status_code == 504
        stopped = control("GET", "rollout?" + "&".join(f"{k}={v}" for k, v in query.items()))
        assert stopped.json()["packageRolloutStatus"] == "PackageRolloutStopped"
        deep = {"kind": "huge", "status": 200, "stream": {"pattern": "deep_json", "count": 1000}}
        assert control("POST", "faults", {"path": "/listflights$", **deep}).ok
        listed = store("GET", f"applications/{demo.WHOLE_APP_ID}/listflights")
        assert listed.content == b'{"a":' * 1000 + b"0" + b"}" * 1000
        slow = {"path": "/listflights$", "kind": "trickle", "interval": 0, "framing": "chunked"}
        assert control("POST", "faults", {**slow, "endless": False, "size": 0}).ok
        assert store("GET", f"applications/{demo.WHOLE_APP_ID}/listflights").json()["value"]
        refusals = [
            {"kind": "trickle", "endless": True},
            {"stream": {"pattern": "zip_bomb", "count": 1}},
            {"stream": {"pattern": "filler", "count": 1}, "body": "x"},
            {"kind": "delay", "seconds": -1},
            {"size": 1.5},
        ]
        for refused in refusals:
            assert control("POST", "faults", refused).status_code == 400
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
