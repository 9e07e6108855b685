"""The action does what the contract's Behaviour says (rules 1 to 6 and 9), end to end
as GitHub's runner runs it, against the Store emulator.

One test per decision and error path of the contract. Each asserts what a
user can see: the exit code, the outputs, the log, the job summary, and what
the Store was (or was not) sent.
"""

from __future__ import annotations

import json
import re
import time
from email.utils import formatdate

import pytest

from store_emulator import Emulator, Fault
from store_emulator.step_results import ActionRun

from .conftest import (
    APP_ID,
    CONTRACT_TARGETS,
    FALLBACK,
    FLIGHT_ID,
    OTHER_APP,
    OTHER_SUBMISSION,
    PENDING,
    PUBLISHED,
    RunAction,
)
from .world import answers_always

HALT = r"/haltpackagerollout$"
ROLLOUT = r"/packagerollout$"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def only_record(outputs: dict[str, str]) -> dict[str, object]:
    records = json.loads(outputs["results"])
    assert isinstance(records, list)
    assert len(records) == 1
    record = records[0]
    assert isinstance(record, dict)
    return record


# Halting --------------------------------------------------------------------------------


def the_failure(run: ActionRun) -> str:
    """The failed run's one error."""
    assert run.exit_code == 1
    assert run.outputs["result"] == "failed"
    [error] = run.errors
    return error


def halted_despite(emulator: Emulator, action: RunAction, kind: str) -> ActionRun:
    """A run whose halt POST meets the fault `kind`, and that still halted."""
    emulator.add_fault(Fault(method="POST", path=HALT, kind=kind))
    run = action()
    assert run.exit_code == 0, run.stdout
    assert run.outputs["result"] == "halted"
    return run


def failed_without_a_halt(run: ActionRun, emulator: Emulator, status: str) -> str:
    """The run failed on a rollout in `status` without sending a halt; its one error."""
    assert run.exit_code == 1
    assert run.outputs["result"] == "failed"
    assert run.outputs["status"] == status
    assert emulator.halt_requests == []
    [error] = run.errors
    return error


def test_halts_the_last_published_submission_never_the_pending_one(
    action: RunAction, emulator: Emulator
) -> None:
    run = action()
    assert run.exit_code == 0, run.stdout
    assert run.outputs["result"] == "halted"
    assert run.outputs["status"] == "PackageRolloutStopped"
    assert run.outputs["submission-id"] == PUBLISHED
    assert run.outputs["fallback-submission-id"] == FALLBACK
    assert float(run.outputs["rollout-percentage"]) == 0.0
    [halt] = emulator.halt_requests
    assert halt.path == f"/v1.0/my/applications/{APP_ID}/submissions/{PUBLISHED}/haltpackagerollout"
    assert PENDING not in " ".join(r.path for r in emulator.store_requests)
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == "PackageRolloutStopped"
    assert emulator.rollout(APP_ID, PENDING)["packageRolloutStatus"] == "PackageRolloutNotStarted"
    record = only_record(run.outputs)
    assert record == {
        "name": APP_ID,
        "app-id": APP_ID,
        "flight-id": None,
        "submission-id": PUBLISHED,
        "result": "halted",
        "status": "PackageRolloutStopped",
        "fallback-submission-id": FALLBACK,
        "rollout-percentage": 0.0,
        "versions": None,
    }
    assert "🛑 halted" in run.summary
    assert run.errors == []


def test_given_submission_is_halted_in_four_round_trips(
    action: RunAction, emulator: Emulator
) -> None:
    run = action({"app-id": OTHER_APP, "submission-id": OTHER_SUBMISSION})
    assert run.outputs["result"] == "halted"
    assert run.outputs["submission-id"] == OTHER_SUBMISSION
    # Discovery, token, rollout read, halt: nothing else (no app lookup).
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in emulator.requests] == [
        ("GET", "openid-configuration"),
        ("POST", "token"),
        ("GET", "packagerollout"),
        ("POST", "haltpackagerollout"),
    ]


def test_every_store_call_carries_the_access_token(action: RunAction, emulator: Emulator) -> None:
    action()
    [token] = emulator.issued_access_tokens
    for request in emulator.store_requests:
        assert request.headers["Authorization"] == f"Bearer {token}"
    token_request = next(r for r in emulator.requests if r.path.endswith("/token"))
    assert (
        "scope=https%3A%2F%2Fmanage.devcenter.microsoft.com%2F.default"
        in token_request.body.decode()
    )


def test_halts_a_flight_submission(action: RunAction, emulator: Emulator) -> None:
    run = action({"flight-id": FLIGHT_ID})
    assert run.exit_code == 0, run.stdout
    assert run.outputs["result"] == "halted"
    assert run.outputs["submission-id"] == PUBLISHED
    [halt] = emulator.halt_requests
    assert halt.path == (
        f"/v1.0/my/applications/{APP_ID}/flights/{FLIGHT_ID}/submissions/{PUBLISHED}"
        "/haltpackagerollout"
    )
    assert any(
        r.path == f"/v1.0/my/applications/{APP_ID}/flights/{FLIGHT_ID}"
        for r in emulator.store_requests
    )
    # The app's own rollout is untouched.
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == "PackageRolloutInProgress"
    assert only_record(run.outputs)["flight-id"] == FLIGHT_ID


def test_app_with_null_submissions_resolves_last_published(
    emulator: Emulator, action: RunAction
) -> None:
    emulator.add_app("9ABCDEF12345", last_published="42", pending=None, null_style=True)
    emulator.set_rollout("9ABCDEF12345", "42")
    run = action({"app-id": "9ABCDEF12345"})
    assert run.outputs["result"] == "halted"
    assert run.outputs["submission-id"] == "42"


@pytest.mark.parametrize("null_style", [False, True])
def test_app_never_published_fails_without_halting_the_draft(
    emulator: Emulator, action: RunAction, null_style: bool
) -> None:
    emulator.add_app("9DRAFT000000", last_published=None, pending="77", null_style=null_style)
    emulator.set_rollout("9DRAFT000000", "77")
    run = action({"app-id": "9DRAFT000000"})
    assert run.exit_code == 1
    assert run.outputs["result"] == "failed"
    assert emulator.halt_requests == []
    assert len(run.errors) == 1
    assert "No published submission" in run.errors[0]


# The decision before the halt -------------------------------------------------------------


def test_already_stopped_is_success_and_sends_nothing(
    emulator: Emulator, action: RunAction
) -> None:
    emulator.set_rollout(APP_ID, PUBLISHED, status="PackageRolloutStopped", percentage=0.0)
    run = action()
    assert run.exit_code == 0
    assert run.outputs["result"] == "already-halted"
    assert run.outputs["status"] == "PackageRolloutStopped"
    assert emulator.halt_requests == []
    assert run.errors == []


def test_running_twice_halts_once(emulator: Emulator, action: RunAction) -> None:
    first, second = action(), action()
    assert (first.outputs["result"], second.outputs["result"]) == ("halted", "already-halted")
    assert len(emulator.halt_requests) == 1


def test_no_gradual_rollout_fails_and_sends_nothing(emulator: Emulator, action: RunAction) -> None:
    emulator.set_rollout(
        APP_ID,
        PUBLISHED,
        is_package_rollout=False,
        percentage=0.0,
        status="PackageRolloutNotStarted",
        fallback="0",
    )
    run = action()
    error = failed_without_a_halt(run, emulator, "PackageRolloutNotStarted")
    assert "no gradual rollout" in error
    assert "no gradual rollout" in only_record(run.outputs)["error"]  # type: ignore[operator]


def test_finalized_rollout_fails_and_sends_nothing(emulator: Emulator, action: RunAction) -> None:
    emulator.set_rollout(APP_ID, PUBLISHED, status="PackageRolloutComplete", percentage=100.0)
    run = action()
    error = failed_without_a_halt(run, emulator, "PackageRolloutComplete")
    assert "finalized" in error
    assert "can no longer be halted" in error


def test_not_started_rollout_is_halted_and_the_stores_409_explained(
    emulator: Emulator, action: RunAction
) -> None:
    emulator.set_rollout(APP_ID, PUBLISHED, status="PackageRolloutNotStarted", percentage=0.0)
    run = action()
    assert len(emulator.halt_requests) == 1  # sent: the Store is the judge
    error = the_failure(run)
    assert error.startswith("::error title=Halt refused by the Store (HTTP 409)::")
    assert "HTTP 409" in error
    assert "InvalidState" in error
    assert re.search(f"MS-CorrelationId: {UUID}", error)
    assert emulator.halt_requests[0].correlation_id in error
    for cause in ("haltable state", "does not belong to this app", "mandatory updates"):
        assert cause in error
    assert "InvalidState" in run.summary


# Dry run ------------------------------------------------------------------------------------


def test_dry_run_reads_and_reports_but_never_halts(emulator: Emulator, action: RunAction) -> None:
    run = action({"dry-run": "true"})
    assert run.exit_code == 0
    assert run.outputs["result"] == "dry-run"
    assert run.outputs["status"] == "PackageRolloutInProgress"
    assert float(run.outputs["rollout-percentage"]) == 25.0
    assert run.outputs["submission-id"] == PUBLISHED
    assert emulator.halt_requests == []
    assert emulator.rollout(APP_ID, PUBLISHED)["packageRolloutStatus"] == "PackageRolloutInProgress"
    assert "Dry run" in run.summary


def test_dry_run_of_a_stopped_rollout_says_already_halted(
    emulator: Emulator, action: RunAction
) -> None:
    emulator.set_rollout(APP_ID, PUBLISHED, status="PackageRolloutStopped", percentage=0.0)
    run = action({"dry-run": "True"})
    assert run.exit_code == 0
    assert run.outputs["result"] == "already-halted"


# Errors the Store answers ---------------------------------------------------------------


def test_unknown_app_is_a_404_not_retried(emulator: Emulator, action: RunAction) -> None:
    run = action({"app-id": "9NOTEXISTING"})
    error = the_failure(run)
    assert "HTTP 404" in error
    assert "ResourceNotFound" in error
    assert "MS-CorrelationId" in error
    assert len(emulator.store_requests) == 1


def test_unknown_submission_is_a_404(emulator: Emulator, action: RunAction) -> None:
    run = action({"submission-id": "999"})
    assert run.exit_code == 1
    assert run.outputs["submission-id"] == "999"
    assert "HTTP 404" in run.errors[0]
    assert emulator.halt_requests == []


@pytest.mark.parametrize("status", [401, 403])
def test_store_refusing_the_token_explains_the_partner_center_role(
    emulator: Emulator, action: RunAction, status: int
) -> None:
    emulator.add_fault(
        Fault(
            path=ROLLOUT,
            status=status,
            times=None,
            body={"statusCode": status, "message": "APIM: Unauthorized."},
            headers={"MS-CorrelationId": "cafe0000-0000-0000-0000-00000000beef"},
        )
    )
    run = action()
    assert run.exit_code == 1
    [error] = run.errors
    assert f"HTTP {status}" in error
    assert "Manager" in error
    assert "Partner Center" in error
    assert "cafe0000-0000-0000-0000-00000000beef" in error
    assert len([r for r in emulator.store_requests if r.path.endswith("packagerollout")]) == 1


# Retries, waits and lost answers ----------------------------------------------------------


def test_429_waits_as_retry_after_asks_and_says_so(emulator: Emulator, action: RunAction) -> None:
    emulator.add_fault(
        Fault(
            method="POST",
            path=HALT,
            status=429,
            headers={"Retry-After": "1"},
            body={"statusCode": 429, "message": "Rate limit is exceeded. Try again in 1 seconds."},
        )
    )
    run = action()
    assert run.exit_code == 0, run.stdout
    assert run.outputs["result"] == "halted"
    assert "429 from the Store; waiting 1 s as Retry-After asks (attempt 2)" in run.stdout
    first, second = emulator.halt_requests
    assert second.started - first.started >= 1.0
    # A 429 was never processed: no read is needed before sending again.
    reads_between = [
        r
        for r in emulator.store_requests
        if first.started < r.started < second.started and r.method == "GET"
    ]
    assert reads_between == []


def test_retry_after_as_an_http_date(emulator: Emulator, action: RunAction) -> None:
    emulator.add_fault(
        Fault(
            method="GET",
            path=ROLLOUT,
            status=429,
            headers={"Retry-After": formatdate(time.time() + 8, usegmt=True)},
        )
    )
    run = action()
    assert run.outputs["result"] == "halted"
    assert re.search(
        r"429 from the Store; waiting \d s as Retry-After asks \(attempt 2\)", run.stdout
    )
    reads = [r for r in emulator.store_requests if r.path.endswith("/packagerollout")]
    # The date counts from before the run started, in whole seconds.
    assert reads[1].started - reads[0].started >= 1.0


def test_retry_after_beyond_the_deadline_fails_at_once(
    emulator: Emulator, action: RunAction
) -> None:
    emulator.add_fault(
        Fault(method="POST", path=HALT, status=429, headers={"Retry-After": "600"}, times=None)
    )
    run = action({"timeout-seconds": "30"})
    assert run.exit_code == 1
    assert run.seconds < 20
    [error] = run.errors
    assert "HTTP 429" in error
    assert "Retry-After" in error or "asks to wait" in error
    assert "timeout-seconds" in error
    assert len(emulator.halt_requests) == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, "<html><head><title>Service Unavailable</title></head><body>busy</body></html>"),
        (500, None),
        (502, {"code": "BadGateway", "message": "upstream failed"}),
        (504, ""),
    ],
)
def test_outages_on_reads_are_retried(
    emulator: Emulator, action: RunAction, status: int, body: object
) -> None:
    emulator.add_fault(Fault(method="GET", path=ROLLOUT, status=status, body=body, times=2))  # type: ignore[arg-type]
    run = action()
    assert run.exit_code == 0, run.stdout
    assert run.outputs["result"] == "halted"
    assert f"{status} from the Store; waiting" in run.stdout
    assert "(attempt 3)" in run.stdout


def test_outage_that_outlasts_the_deadline_fails_with_the_details(
    emulator: Emulator, action: RunAction
) -> None:
    answers_always(
        emulator,
        "GET",
        ROLLOUT,
        503,
        {"code": "ServiceUnavailable", "message": "Account service is experiencing issue"},
    )
    run = action({"timeout-seconds": "4"})
    error = the_failure(run)
    assert "HTTP 503" in error
    assert "Account service is experiencing issue" in error
    assert "Partner Center" in error  # the known cause of that 503
    assert re.search(f"MS-CorrelationId: {UUID}", error)
    assert emulator.halt_requests == []


def test_halt_whose_answer_was_lost_is_confirmed_by_reading_not_resent(
    emulator: Emulator, action: RunAction
) -> None:
    run = halted_despite(emulator, action, "reset_after")
    assert run.outputs["status"] == "PackageRolloutStopped"
    assert len(emulator.halt_requests) == 1
    assert "answer was lost" in run.stdout


def test_halt_dropped_before_it_arrived_is_sent_again_after_a_read(
    emulator: Emulator, action: RunAction
) -> None:
    halted_despite(emulator, action, "reset_before")
    first, second = emulator.halt_requests
    assert any(
        r.method == "GET" and first.started < r.started < second.started
        for r in emulator.store_requests
    )


def test_halt_answered_with_a_gateway_error_after_it_took_effect(
    emulator: Emulator, action: RunAction
) -> None:
    emulator.add_fault(Fault(method="POST", path=HALT, kind="hang_after", seconds=60))
    run = action({"timeout-seconds": "8"})
    assert run.exit_code == 0, run.stdout
    assert run.outputs["result"] == "halted"
    assert len(emulator.halt_requests) == 1


def test_hung_store_ends_at_the_deadline(emulator: Emulator, action: RunAction) -> None:
    emulator.add_fault(Fault(method="GET", path=ROLLOUT, kind="hang", seconds=120, times=None))
    run = action({"timeout-seconds": "3"})
    assert run.exit_code == 1
    assert run.outputs["result"] == "failed"
    assert run.seconds < 30
    [error] = run.errors
    assert "could not be reached" in error
    assert emulator.halt_requests == []


# Several targets -------------------------------------------------------------------------

TARGETS = (
    CONTRACT_TARGETS
    + """\
  - name: Gone
    app-id: 9NOTEXISTING
"""
)


def test_several_targets_are_all_attempted_and_reported(
    emulator: Emulator, action: RunAction
) -> None:
    run = action({"app-id": None, "targets": "stop.yml"}, files={"stop.yml": TARGETS})
    assert run.exit_code == 1
    assert run.outputs["result"] == "failed"
    records = json.loads(run.outputs["results"])
    assert [(r["name"], r["result"]) for r in records] == [
        ("Contoso Desktop", "halted"),
        ("Contoso Desktop (Insiders)", "halted"),
        (OTHER_APP, "halted"),
        ("Gone", "failed"),
    ]
    assert "HTTP 404" in records[3]["error"]
    assert "error" not in records[0]
    assert records[1]["flight-id"] == FLIGHT_ID
    assert len(emulator.halt_requests) == 3
    assert run.outputs["status"] == ""  # targets disagree: see results
    assert len(run.errors) == 1
    # The runner decodes %3A in properties back to ":".
    assert run.errors[0].startswith("::error title=Gone%3A Not found in the Store (HTTP 404)::")
    table_rows = [
        line for line in run.summary.splitlines() if line.startswith("| ") and "`" in line
    ]
    assert len(table_rows) == 4


def test_several_targets_all_halted_exit_zero(emulator: Emulator, action: RunAction) -> None:
    targets = f"- app-id: {APP_ID}\n- app-id: {OTHER_APP}\n"
    run = action({"app-id": None, "targets": "t.yaml"}, files={"t.yaml": targets})
    assert run.exit_code == 0, run.stdout
    assert run.outputs["result"] == "halted"
    assert run.outputs["status"] == "PackageRolloutStopped"


# Sign-in -----------------------------------------------------------------------------------


def test_signs_in_with_github_oidc_when_there_is_no_secret(
    emulator: Emulator, action: RunAction
) -> None:
    run = action(
        {"client-secret": None},
        env={
            "ACTIONS_ID_TOKEN_REQUEST_URL": emulator.oidc_request_url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": emulator.oidc_request_token,
        },
    )
    assert run.exit_code == 0, run.stdout
    assert run.outputs["result"] == "halted"
    oidc = next(r for r in emulator.requests if r.path == "/github-oidc/token")
    assert oidc.query["audience"] == "api://AzureADTokenExchange"
    token_request = next(r for r in emulator.requests if r.path.endswith("/oauth2/v2.0/token"))
    form = token_request.body.decode()
    assert "client_assertion=" in form
    assert "client_secret" not in form
    assert f"::add-mask::{emulator.issued_oidc_tokens[0]}" in run.stdout


def test_no_secret_and_no_oidc_permission_fails_before_any_request(
    emulator: Emulator, action: RunAction
) -> None:
    run = action({"client-secret": None})
    assert run.exit_code == 1
    assert emulator.requests == []
    [error] = run.errors
    assert "id-token: write" in error
    assert run.outputs["result"] == "failed"


def test_wrong_client_secret_is_explained(emulator: Emulator, action: RunAction) -> None:
    run = action({"client-secret": "not-the-secret~123"})
    assert run.exit_code == 1
    assert emulator.store_requests == []
    [error] = run.errors
    assert error.startswith("::error title=Sign-in failed::")
    assert "AADSTS7000215" in error
    assert "Certificates & secrets" in error
    record = only_record(run.outputs)
    assert record["result"] == "failed"
    assert "AADSTS7000215" in str(record["error"])


def test_tenant_given_as_a_domain(emulator: Emulator, action: RunAction) -> None:
    run = action({"tenant-id": emulator.tenant_domain})
    assert run.outputs["result"] == "halted"


def test_unknown_tenant_is_explained(action: RunAction) -> None:
    run = action({"tenant-id": "11111111-2222-3333-4444-555555555555"})
    assert run.exit_code == 1
    [error] = run.errors
    assert "Sign-in failed" in error
    assert "tenant" in error.lower()


# TLS and the environment ------------------------------------------------------------------


def test_ssl_cert_file_chooses_the_trusted_cas(emulator: Emulator, action: RunAction) -> None:
    run = action(env={"REQUESTS_CA_BUNDLE": None, "SSL_CERT_FILE": emulator.ca_path})
    assert run.outputs["result"] == "halted"


def test_untrusted_certificate_fails_clearly_and_is_not_retried(
    emulator: Emulator, action: RunAction
) -> None:
    run = action(env={"REQUESTS_CA_BUNDLE": None})
    assert run.exit_code == 1
    [error] = run.errors
    assert "TLS" in error
    assert "REQUESTS_CA_BUNDLE" in error
    assert run.seconds < 20


def test_inputs_with_underscores_work_from_a_shell(emulator: Emulator, action: RunAction) -> None:
    # A person running `python entrypoint.py` may export INPUT_APP_ID.
    run = action(
        {"app-id": None},
        env={
            "INPUT_APP-ID": None,
            "INPUT_APP_ID": OTHER_APP,
            "INPUT_SUBMISSION_ID": OTHER_SUBMISSION,
        },
    )
    assert run.outputs["result"] == "halted", run.stdout
    assert run.outputs["submission-id"] == OTHER_SUBMISSION
