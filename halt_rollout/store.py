"""The Microsoft Store submission API: the four calls the halt needs.

Each call is one HTTP request. Reads are retried here; the halt is not (the
caller checks the rollout before sending it again). Every failure says what
the Store answered: the HTTP status, its `code` and `message`, and the
`MS-CorrelationId` that Microsoft support asks for.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from . import __version__
from .errors import StoreError, one_line
from .inputs import SUBMISSION_ID
from .retry import Pauser, TransientError, parse_retry_after, retry_hint_in_message

API_PATH = "/v1.0/my/"
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
PARTNER_CENTER_ROLE_HINT = (
    "Check that the Entra application (client-id) is added to the Partner Center account "
    "(Account settings → User management → Microsoft Entra applications) with the Manager "
    "role, and that tenant-id is that account's tenant."
)
HALT_CONFLICT_HINT = (
    "The Store refuses a halt when the submission is not in a haltable state (it must be "
    "published with its rollout in progress), when the submission does not belong to this "
    "app, or when the app uses a Partner Center feature the API does not support (mandatory "
    "updates, Store-managed consumable add-ons). Check the submission in Partner Center; "
    "halt it there if the API cannot."
)
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Rollout:
    """A submission's package rollout, as the Store reports it."""

    is_package_rollout: bool
    percentage: float
    status: str
    fallback_submission_id: str

    @classmethod
    def from_json(cls, body: Any) -> Rollout:
        """Parse the Store's rollout object; ValueError when it is not one."""
        if not isinstance(body, dict):
            raise ValueError("the answer is not a JSON object")
        flag = body.get("isPackageRollout")
        percentage = body.get("packageRolloutPercentage")
        status = body.get("packageRolloutStatus")
        fallback = body.get("fallbackSubmissionId")
        if not isinstance(flag, bool):
            raise ValueError("isPackageRollout is missing or not a boolean")
        if isinstance(percentage, bool) or not isinstance(percentage, int | float):
            raise ValueError("packageRolloutPercentage is missing or not a number")
        if not isinstance(status, str) or not status:
            raise ValueError("packageRolloutStatus is missing")
        if fallback is None:
            fallback = "0"  # "0" is the Store's own word for "no fallback"
        return cls(flag, percentage, status, str(fallback))


@dataclass(frozen=True)
class SubmissionRef:
    """Where one submission lives: under the app, or under one of its flights."""

    app_id: str
    submission_id: str
    flight_id: str | None = None

    def path(self, leaf: str) -> str:
        flight = f"/flights/{self.flight_id}" if self.flight_id else ""
        return f"applications/{self.app_id}{flight}/submissions/{self.submission_id}/{leaf}"

    def describe(self) -> str:
        flight = f" (flight {self.flight_id})" if self.flight_id else ""
        return f"submission {self.submission_id} of app {self.app_id}{flight}"


def api_root(store_api_url: str) -> str:
    """`https://host` → `https://host/v1.0/my/`; a URL that already ends so is kept."""
    base = store_api_url.rstrip("/")
    if urlsplit(base).path.rstrip("/").endswith(API_PATH.rstrip("/")):
        return base + "/"
    return base + API_PATH


class StoreClient:
    def __init__(
        self,
        store_api_url: str,
        access_token: str,
        pauser: Pauser,
        session: requests.Session | None = None,
    ) -> None:
        self._root = api_root(store_api_url)
        self._pauser = pauser
        self._session = session or requests.Session()
        self._headers = {
            "Authorization": f"Bearer {access_token}",
            "Accept": "application/json",
            "User-Agent": f"halt-rollout/{__version__}",
        }

    def last_published_submission(self, app_id: str, flight_id: str | None) -> str | None:
        """The submission the rollout lives on; the pending one is a draft and never it."""
        if flight_id:
            path = f"applications/{app_id}/flights/{flight_id}"
            key = "lastPublishedFlightSubmission"
            what = f"read flight {flight_id} of app {app_id}"
        else:
            path, key = f"applications/{app_id}", "lastPublishedApplicationSubmission"
            what = f"read app {app_id}"
        body = self._pauser.run(lambda: self._call("GET", path, what))
        if not isinstance(body, dict):
            raise self._unusable(what, "the answer is not a JSON object")
        submission = body.get(key)
        if submission is None:
            return None
        submission_id = submission.get("id") if isinstance(submission, dict) else None
        if not isinstance(submission_id, str | int) or not SUBMISSION_ID.fullmatch(
            str(submission_id)
        ):
            raise self._unusable(what, f"{key} has no usable id")
        return str(submission_id)

    def read_rollout(self, ref: SubmissionRef) -> Rollout:
        what = f"read the rollout of {ref.describe()}"
        body = self._pauser.run(lambda: self._call("GET", ref.path("packagerollout"), what))
        try:
            return Rollout.from_json(body)
        except ValueError as error:
            raise self._unusable(what, str(error)) from None

    def check_rollout(self, ref: SubmissionRef) -> Rollout | None:
        """One quick read, even past the deadline; None when it cannot be had."""
        try:
            body = self._call("GET", ref.path("packagerollout"), "check the rollout", floor=5.0)
            return Rollout.from_json(body)
        except (StoreError, TransientError, ValueError):
            return None

    def send_halt(self, ref: SubmissionRef) -> Rollout:
        """One halt request. A TransientError means: check the rollout, then maybe again."""
        what = f"halt the rollout of {ref.describe()}"
        body = self._call("POST", ref.path("haltpackagerollout"), what)
        try:
            return Rollout.from_json(body)
        except ValueError as error:
            # The halt may well have worked; only a fresh read can tell.
            raise TransientError(
                f"unusable answer to the halt ({error})", self._unusable(what, str(error))
            ) from None

    def _unusable(self, what: str, why: str) -> StoreError:
        return StoreError(
            f"Could not {what}: the Store's answer was not what its API documents ({why}).",
            title="Unexpected answer from the Store",
        )

    def _call(self, method: str, path: str, what: str, *, floor: float = 1.0) -> Any:
        url = self._root + path
        try:
            response = self._session.request(
                method,
                url,
                headers=self._headers,
                timeout=self._pauser.deadline.request_timeout(floor),
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as error:
            raise StoreError(
                f"Could not {what}: the TLS certificate of {urlsplit(url).netloc} could not be "
                f"verified ({_first_line(error)}). Behind a TLS-inspecting proxy, point "
                "REQUESTS_CA_BUNDLE or SSL_CERT_FILE at its CA bundle.",
                title="TLS verification failed",
            ) from None
        except (
            requests.ConnectionError,
            requests.Timeout,
            # An answer cut short (less body than Content-Length): it may have taken effect.
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as error:
            kind = "timeout" if isinstance(error, requests.Timeout) else "connection failure"
            failure = StoreError(
                f"Could not {what}: the Store at {urlsplit(url).netloc} could not be reached "
                f"({kind}: {_first_line(error)}).",
                title="Store unreachable",
            )
            raise TransientError(f"{kind} talking to the Store", failure) from None
        return self._answer(response, what)

    def _answer(self, response: requests.Response, what: str) -> Any:
        status = response.status_code
        code, message = _error_fields(response)
        correlation_id = response.headers.get("MS-CorrelationId")
        if 200 <= status < 300:
            try:
                return response.json()
            except ValueError:
                return None  # the callers say what was missing
        details = _details(status, code, message, correlation_id)

        def failure(title: str, text: str) -> StoreError:
            return StoreError(
                f"Could not {what}: {text} ({details}).",
                title=title,
                status=status,
                code=code,
                store_message=message,
                correlation_id=correlation_id,
            )

        if status in RETRIED_STATUSES:
            if status == 429:
                text = "the Store's rate limit was hit and did not clear in time"
            else:
                text = f"the Store kept failing with HTTP {status}"
                if status == 503 and "account" in (message or "").lower():
                    text += (
                        ". A 503 about the account service is seen when the Entra application "
                        f"was not added to the Partner Center account. {PARTNER_CENTER_ROLE_HINT}"
                    )
            retry_after = _retry_after(response, message)
            raise TransientError(
                f"{status} from the Store",
                failure(f"Store answered HTTP {status}", text),
                retry_after=retry_after,
                # A throttled request was never processed; a gateway error may have been.
                maybe_applied=status != 429,
            )
        if status in (401, 403):
            raise failure(
                f"Not allowed by the Store (HTTP {status})",
                f"sign-in or permission problem. {PARTNER_CENTER_ROLE_HINT}",
            )
        if status == 404:
            raise failure(
                "Not found in the Store (HTTP 404)",
                "the app, flight or submission was not found. Check the IDs in Partner Center "
                "(the app's Store ID is under Product identity)",
            )
        if status == 409:
            raise failure("Halt refused by the Store (HTTP 409)", HALT_CONFLICT_HINT.rstrip("."))
        raise failure(f"Store answered HTTP {status}", "the Store refused the request")


def _retry_after(response: requests.Response, message: str | None) -> float | None:
    seconds = parse_retry_after(response.headers.get("Retry-After"))
    return seconds if seconds is not None else retry_hint_in_message(message)


def _error_fields(response: requests.Response) -> tuple[str | None, str | None]:
    """The Store's `code` and `message`, from an ingestion, gateway or any other body."""
    if 200 <= response.status_code < 300:
        return None, None
    text = response.text.strip()
    if not text:
        return None, None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = body.get("code") or body.get("error")
        message = body.get("message") or body.get("error_description")
        if isinstance(message, dict):  # some gateways nest {"error": {"code", "message"}}
            message = message.get("message")
        return (str(code) if code else None), (one_line(str(message)) if message else None)
    if text.startswith("<"):
        title = _HTML_TITLE.search(text)
        page = one_line(html.unescape(title.group(1))) if title else ""
        return None, f"an HTML page{': ' + page if page else ''}"
    return None, one_line(text)


def _details(status: int, code: str | None, message: str | None, correlation: str | None) -> str:
    parts = [f"HTTP {status}"]
    if code or message:
        parts.append(": ".join(p for p in (code, message) if p))
    parts.append(f"MS-CorrelationId: {correlation or 'none sent'}")
    return ", ".join(parts)


def _first_line(error: Exception) -> str:
    return one_line(str(error), limit=200)
