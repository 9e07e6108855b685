"""The Microsoft Store submission API: the calls the halt needs.

Each call is one HTTP request, made through the run's deadline-keeping session.
Reads are retried here; the halt is not (the caller checks the rollout before
sending it again). Every failure says what the Store answered: the HTTP status,
its `code` and `message`, and the `MS-CorrelationId` that Microsoft support asks
for. Answers are taken as the live API sends them, not only as documented: keys
may be absent or differently cased, percentages integers.
"""

from __future__ import annotations

import copy
import html
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from . import __version__
from .deadline import AnswerTooLarge, DeadlinePassed, LostAnswer
from .errors import StoreError, one_line
from .network_words import ProxyRefused, tidy
from .policy import ACCOUNT_SERVICE_PATIENCE_SECONDS, RETRIED_STATUSES
from .retry import Pauser, TransientError, parse_retry_after, retry_hint_in_message
from .shapes import GUID, SUBMISSION_ID

API_PATH = "/v1.0/my/"
STOPPED = "PackageRolloutStopped"
PARTNER_CENTER_ROLE_HINT = (
    "Check that the Entra application (client-id) is added to the Partner Center account "
    "(Account settings → User management → Microsoft Entra applications) with the Manager "
    "role, and that tenant-id is that account's tenant."
)
FOREIGN_APP_HINT = "A 403 can also mean that the app ID is not one of this account's apps."
ACCOUNT_SERVICE_HINT = (
    "A 503 about the account service is the Store's answer when the Entra application was "
    "never added to the Partner Center account; waiting does not clear it. "
    + PARTNER_CENTER_ROLE_HINT
)
# listflights is paged; ask for big pages, and stop following @nextLink after this
# many (a Store that keeps sending links would otherwise page forever).
FLIGHTS_PAGE_SIZE = 100
MAX_FLIGHT_PAGES = 50
# A package version is four numbers of up to five digits; anything longer is not one.
MAX_VERSION_CHARS = 64
# An error `code` that may be shown even where the body may not: an identifier.
_ERROR_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,63}")
# Only the start of an error body is looked at: enough for any real message, and it
# keeps parsing time independent of what a server sends.
_ERROR_TEXT_CHARS = 8192
HALT_CONFLICT_HINT = (
    "The Store refuses a halt when the submission is not in a haltable state (it must be "
    "published with its rollout in progress), when the submission does not belong to this "
    "app, or when the app uses a Partner Center feature the API does not support (mandatory "
    "updates, Store-managed consumable add-ons). Check the submission in Partner Center; "
    "halt it there if the API cannot."
)


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
        flag = field(body, "isPackageRollout")
        percentage = field(body, "packageRolloutPercentage")
        status = field(body, "packageRolloutStatus")
        fallback = field(body, "fallbackSubmissionId")
        if not isinstance(flag, bool):
            raise ValueError("isPackageRollout is missing or not a boolean")
        if isinstance(percentage, bool) or not isinstance(percentage, int | float):
            raise ValueError("packageRolloutPercentage is missing or not a number")
        # A share of users: 0 to 100. Not infinite, NaN or 400 digits long (json reads
        # all of those, which would break the results' JSON or float() itself); NaN and
        # infinities fail this comparison too.
        if not 0 <= percentage <= 100:
            raise ValueError("packageRolloutPercentage is not between 0 and 100")
        if not isinstance(status, str) or not status:
            raise ValueError("packageRolloutStatus is missing")
        if fallback is None or fallback == "":
            fallback = "0"  # "0" is the Store's own word for "no fallback"
        if (
            isinstance(fallback, bool)
            or not isinstance(fallback, str | int)
            or not SUBMISSION_ID.fullmatch(str(fallback))
        ):
            raise ValueError("fallbackSubmissionId is not a submission ID")
        # Integers (25) and floats (25.0) both arrive; outputs always show a float.
        if len(status) > 100 or not status.isprintable():
            raise ValueError("packageRolloutStatus is not a status")
        return cls(flag, float(percentage), status, str(fallback))

    @property
    def stopped(self) -> bool:
        return self.status == STOPPED


def field(body: Mapping[str, Any], key: str) -> Any:
    """`body[key]`, or the same key in other casing (the live API is not uniform)."""
    if key in body:
        return body[key]
    folded = key.casefold()
    return next((v for k, v in body.items() if isinstance(k, str) and k.casefold() == folded), None)


@dataclass(frozen=True)
class Flight:
    """A package flight of an app, as listflights describes it."""

    flight_id: str
    friendly_name: str
    last_published_submission: str | None


@dataclass(frozen=True)
class UnreadableFlight:
    """An entry of listflights that names no flight: its place, its name if any, and why."""

    number: int  # from 1, in the order the Store listed it
    friendly_name: str | None
    why: str


@dataclass(frozen=True)
class SubmissionRef:
    """Where one submission lives: under the app, or under one of its flights."""

    app_id: str
    submission_id: str
    flight_id: str | None = None

    def path(self, leaf: str = "") -> str:
        """The submission resource's path, or the path of `leaf` under it."""
        flight = f"/flights/{self.flight_id}" if self.flight_id else ""
        resource = f"applications/{self.app_id}{flight}/submissions/{self.submission_id}"
        return f"{resource}/{leaf}" if leaf else resource

    def describe(self) -> str:
        flight = f" (flight {self.flight_id})" if self.flight_id else ""
        return f"submission {self.submission_id} of app {self.app_id}{flight}"


def _flight(item: Any, number: int) -> Flight | UnreadableFlight:
    """Entry `number` (from 1) of the listing: a flight, or why it names none."""
    if not isinstance(item, dict):
        return UnreadableFlight(number, None, "it is not a JSON object")
    name = field(item, "friendlyName")
    friendly_name = one_line(name, 200) if isinstance(name, str) and name.strip() else None
    flight_id = field(item, "flightId")
    if not isinstance(flight_id, str) or not GUID.fullmatch(flight_id):
        why = "it has no flightId" if flight_id is None else "its flightId is not a GUID"
        return UnreadableFlight(number, friendly_name, why)
    submission = field(item, "lastPublishedFlightSubmission")
    submission_id = field(submission, "id") if isinstance(submission, dict) else None
    if isinstance(submission_id, bool) or not SUBMISSION_ID.fullmatch(str(submission_id or "")):
        submission_id = None
    return Flight(
        flight_id,
        friendly_name or flight_id,
        str(submission_id) if submission_id is not None else None,
    )


def _is_flights_page(link: str, app_id: str) -> bool:
    """A relative link to another page of this app's listflights, with paging only."""
    path, _, query = link.lstrip("/").partition("?")
    # Microsoft's own page writes it both with and without a slash before the query.
    if path.rstrip("/").lower() != f"applications/{app_id}/listflights".lower():
        return False
    return all(
        name in ("top", "skip") and value.isdigit() and value.isascii()
        for name, _, value in (part.partition("=") for part in query.split("&"))
    )


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
        *,
        protect: Callable[[str], object] = lambda secret: None,
    ) -> None:
        """`protect` is told of every credential an answer carries (the signed upload URL
        of a submission), so the run's redaction hides it wherever it turns up later."""
        self._root = api_root(store_api_url)
        self._pauser = pauser
        self._protect = protect
        self._session = session or requests.Session()
        self._headers = {
            "Authorization": f"Bearer {access_token}",
            "Accept": "application/json",
            # As StoreBroker and Microsoft's samples send on every call: the Store refuses
            # a POST without it (400 InvalidParameterValue "Only JSON content is accepted").
            "Content-Type": "application/json",
            "User-Agent": f"halt-rollout/{__version__}",
        }

    def on(self, session: requests.Session) -> StoreClient:
        """The same client sending through another session (one per thread: a requests
        Session is not documented as safe to share between threads)."""
        twin = copy.copy(self)
        twin._session = session
        return twin

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
        submission = field(body, key)
        if submission is None:
            return None
        submission_id = field(submission, "id") if isinstance(submission, dict) else None
        if (
            isinstance(submission_id, bool)
            or not isinstance(submission_id, str | int)
            or not SUBMISSION_ID.fullmatch(str(submission_id))
        ):
            raise self._unusable(what, f"{key} has no usable id")
        return str(submission_id)

    def list_flights(self, app_id: str) -> Iterator[Flight | UnreadableFlight]:
        """Every package flight of the app, each as soon as its page is read.

        The next page is where `@nextLink` points; without one, while `totalCount` says
        more remain, the next `skip`. A 404 on the first page is an app without flights
        (as Microsoft's page documents); an unknown app then fails on its own read. An
        entry that names no usable flight is yielded as such, so the others still count;
        a page that cannot be had raises, after the flights of the pages before it.
        """
        what = f"list the package flights of app {app_id}"
        path = f"applications/{app_id}/listflights?top={FLIGHTS_PAGE_SIZE}"
        seen: set[str] = set()
        received = 0  # as the Store counts for `skip`: repeats and unreadable entries too
        for page in range(MAX_FLIGHT_PAGES):
            try:
                body = self._pauser.run(partial(self._call, "GET", path, what))
            except StoreError as error:
                if error.status == 404 and page == 0:
                    return
                raise
            entries = field(body, "value") if isinstance(body, dict) else None
            if not isinstance(entries, list):
                raise self._unusable(what, "the answer has no list of flights (value)")
            fresh = 0
            for item in entries:
                received += 1
                entry = _flight(item, received)
                if isinstance(entry, Flight):
                    if entry.flight_id.lower() in seen:
                        continue
                    seen.add(entry.flight_id.lower())
                fresh += 1
                yield entry
            if not fresh:
                return  # an empty page, or one of repeats: nothing more to follow
            next_link = field(body, "@nextLink")
            total = field(body, "totalCount")
            if next_link:
                if not isinstance(next_link, str) or not _is_flights_page(next_link, app_id):
                    raise self._unusable(what, "its @nextLink is not a further page of listflights")
                path = next_link.lstrip("/")
            elif isinstance(total, int) and not isinstance(total, bool) and total > received:
                path = f"applications/{app_id}/listflights?skip={received}&top={FLIGHTS_PAGE_SIZE}"
            else:
                return
        raise self._unusable(what, f"it kept sending further pages after {MAX_FLIGHT_PAGES}")

    def read_rollout(self, ref: SubmissionRef) -> Rollout:
        what = f"read the rollout of {ref.describe()}"
        body = self._pauser.run(lambda: self._call("GET", ref.path("packagerollout"), what))
        try:
            return Rollout.from_json(body)
        except ValueError as error:
            raise self._unusable(what, str(error)) from None

    def package_versions(self, ref: SubmissionRef) -> tuple[str, ...]:
        """The versions of the submission's packages (`applicationPackages`, or a flight's
        `flightPackages`), each once, in the Store's order; packages without one skipped.

        Nothing else of the resource is kept: it holds `fileUploadUrl`, a signed URL (a
        credential), so no error made here quotes the answer's body either.
        """
        what = f"read the packages of {ref.describe()}"
        key = "flightPackages" if ref.flight_id else "applicationPackages"
        body = self._pauser.run(lambda: self._call("GET", ref.path(), what, quote_body=False))
        if isinstance(body, dict):
            self._protect_upload_url(field(body, "fileUploadUrl"))
        packages = field(body, key) if isinstance(body, dict) else None
        if not isinstance(packages, list):
            raise self._unusable(what, f"the answer has no list of packages ({key})")
        versions: dict[str, None] = {}  # an ordered set: one architecture's package each
        for package in packages:
            version = field(package, "version") if isinstance(package, dict) else None
            text = version.strip() if isinstance(version, str) else ""
            if text and len(text) <= MAX_VERSION_CHARS and text.isprintable():
                versions.setdefault(text)
        return tuple(versions)

    def _protect_upload_url(self, url: Any) -> None:
        """The signed upload URL is a credential: it, its query and its signature are
        secrets from now on (a later error may echo any of them)."""
        if not isinstance(url, str) or not url.strip():
            return
        self._protect(url)
        query = url.partition("?")[2].partition("#")[0]  # no parsing that could refuse it
        if query:
            self._protect(query)
        for name, value in parse_qsl(query, keep_blank_values=False):
            if name.lower() == "sig" and value:
                self._protect(value)

    def check_rollout(self, ref: SubmissionRef) -> Rollout | None:
        """One read, no retry, in whatever time is left; None when it cannot be had."""
        try:
            body = self._call("GET", ref.path("packagerollout"), "check the rollout")
            return Rollout.from_json(body)
        except (StoreError, TransientError, ValueError):
            return None

    def send_halt(self, ref: SubmissionRef) -> Rollout:
        """One halt request; it counts only when the answer says PackageRolloutStopped.

        A TransientError means: check the rollout, then maybe send it again.
        """
        what = f"halt the rollout of {ref.describe()}"
        body = self._call("POST", ref.path("haltpackagerollout"), what)
        try:
            rollout = Rollout.from_json(body)
        except ValueError as error:
            # The halt may well have worked; only a fresh read can tell.
            raise TransientError(
                f"unusable answer to the halt ({error})", self._unusable(what, str(error))
            ) from None
        if not rollout.stopped:
            raise TransientError(
                f"the Store answered the halt with {rollout.status}, not {STOPPED}",
                StoreError(
                    f"Could not {what}: the Store answered 200 but said the rollout is "
                    f"{rollout.status} at {rollout.percentage:g}%, not {STOPPED}. Check the "
                    "submission in Partner Center.",
                    title="Halt not confirmed by the Store",
                ),
            )
        return rollout

    def _unusable(self, what: str, why: str) -> StoreError:
        return StoreError(
            f"Could not {what}: the Store's answer was not what its API documents ({why}).",
            title="Unexpected answer from the Store",
        )

    def _call(self, method: str, path: str, what: str, *, quote_body: bool = True) -> Any:
        """One request; its answer's JSON, or the failure. `quote_body=False`: no error
        quotes the Store's message (the answer may hold a credential)."""
        url = self._root + path
        try:
            response = self._session.request(
                method, url, headers=self._headers, allow_redirects=False
            )
        except DeadlinePassed as error:
            failure = StoreError(
                f"Could not {what}: the Store at {urlsplit(url).netloc} could not be reached in "
                f"time ({error}).",
                title="Deadline reached",
            )
            # Cut off, it may have reached the Store; never sent, it did not.
            raise TransientError(
                "timeout-seconds ran out", failure, maybe_applied=error.sent
            ) from None
        except AnswerTooLarge as error:
            # An answer, not a lost one: the same request would get it again. A halt so
            # answered may still have taken effect: the caller reads the rollout first.
            failure = self._unusable(what, f"{error}, which is no answer the API documents")
            if method == "POST":
                raise TransientError("an answer too large to read", failure) from None
            raise failure from None
        except ProxyRefused as error:  # an answer that waiting does not change
            raise StoreError(
                f"Could not {what}: {error}. Nothing reached the Store.",
                title=f"Proxy refused (HTTP {error.status})",
            ) from None
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
            # Failed while connecting (or through a proxy's tunnel), it did not reach the Store.
            sent = error.sent if isinstance(error, LostAnswer) else True
            raise TransientError(
                f"{kind} talking to the Store", failure, maybe_applied=sent
            ) from None
        return self._answer(response, what, quote_body=quote_body)

    def _answer(self, response: requests.Response, what: str, *, quote_body: bool) -> Any:
        status = response.status_code
        code, message = _error_fields(response)
        correlation_id = response.headers.get("MS-CorrelationId")
        if 200 <= status < 300:
            return _json(response.content)  # None when unusable: the callers say what was missing
        # Still read for the waits it asks for; only ever shown when it may be quoted.
        hint = message
        if not quote_body:
            code = code if code and _ERROR_CODE.fullmatch(code) else None
            message = None
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
            account_service = status == 503 and "account service" in (hint or "").lower()
            if account_service:
                text = f"the Store's account service kept failing. {ACCOUNT_SERVICE_HINT}"
            raise TransientError(
                f"{status} from the Store",
                failure(f"Store answered HTTP {status}", text.rstrip(".")),
                retry_after=_retry_after(response, hint),
                # A throttled request was never processed; a gateway error may have been.
                maybe_applied=status != 429,
                patience=ACCOUNT_SERVICE_PATIENCE_SECONDS if account_service else None,
            )
        if status in (401, 403):
            hint = PARTNER_CENTER_ROLE_HINT + (f" {FOREIGN_APP_HINT}" if status == 403 else "")
            raise failure(
                f"Not allowed by the Store (HTTP {status})",
                f"sign-in or permission problem. {hint}".rstrip("."),
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


def _json(content: bytes) -> Any:
    """The body as JSON, or None; however deep a hostile body nests, never a crash."""
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        return None


def _error_fields(response: requests.Response) -> tuple[str | None, str | None]:
    """The Store's `code` and `message`, from an ingestion, gateway or any other body."""
    if 200 <= response.status_code < 300:
        return None, None
    content = response.content
    text = content[:_ERROR_TEXT_CHARS].decode("utf-8", "replace").strip()
    if not text:
        return None, None
    body = _json(content) if len(content) <= _ERROR_TEXT_CHARS * 8 else None
    if isinstance(body, dict):
        code = field(body, "code") or field(body, "error")
        message = field(body, "message") or field(body, "error_description")
        if isinstance(message, dict):  # some gateways nest {"error": {"code", "message"}}
            message = field(message, "message")
        if isinstance(code, dict):
            code = field(code, "code")
        return (
            one_line(str(code)[:_ERROR_TEXT_CHARS], 100) if code else None,
            one_line(str(message)[:_ERROR_TEXT_CHARS]) if message else None,
        )
    if text.startswith("<"):
        return None, f"an HTML page{': ' + title if (title := _html_title(text)) else ''}"
    return None, one_line(text)


def _html_title(page: str) -> str:
    """The <title> of an HTML page, found in one pass (no regular expression to backtrack)."""
    lower = page.lower()
    start = lower.find("<title")
    opened = lower.find(">", start) if start >= 0 else -1
    end = lower.find("</title>", opened) if opened >= 0 else -1
    if end < 0:
        return ""
    return one_line(html.unescape(page[opened + 1 : end]), 200)


def _details(status: int, code: str | None, message: str | None, correlation: str | None) -> str:
    parts = [f"HTTP {status}"]
    if code or message:
        parts.append(": ".join(p for p in (code, message) if p))
    parts.append(f"MS-CorrelationId: {correlation or 'none sent'}")
    return ", ".join(parts)


def _first_line(error: Exception) -> str:
    return one_line(tidy(str(error)), limit=200)
