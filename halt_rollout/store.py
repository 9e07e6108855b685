"""The Microsoft Store submission API: the calls the halt needs.

Each call is one HTTP request, made through the run's deadline-keeping session.
Reads are retried here; the halt is not (the caller checks the rollout before
sending it again). Every failure says what the Store answered: the HTTP status,
its `code` and `message`, and the `MS-CorrelationId` that Microsoft support asks
for (store_answers reads answers and failures; store_resources, what they describe).
Answers are taken as the live API sends them, not only as documented: keys may be
absent or differently cased, percentages integers.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from . import __version__
from .errors import StoreError
from .lost_answer import AnswerTooLarge, DeadlinePassed, LostAnswer
from .network_words import ProxyRefused
from .retry import Pauser, TransientError
from .shapes import SUBMISSION_ID
from .store_answers import first_line, read_answer
from .store_resources import (
    STOPPED,
    Flight,
    Rollout,
    SubmissionRef,
    UnreadableFlight,
    field,
    is_flights_page,
    read_flight,
)

API_PATH = "/v1.0/my/"
# listflights is paged; ask for big pages. How many pages is bounded by the deadline.
FLIGHTS_PAGE_SIZE = 100
# A package version is four numbers of up to five digits; anything longer is not one.
MAX_VERSION_CHARS = 64


def _total_count(value: Any) -> int | bool | None:
    """listflights' totalCount: a whole number, None when absent, False when unusable."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, float) and not (value.is_integer() and value >= 0):
        return False
    return int(value) if value >= 0 else False


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

    @property
    def root(self) -> str:
        """The API root every path is relative to: `https://host/v1.0/my/`."""
        return self._root

    def read(self, path: str, what: str) -> Any:
        """GET `path` (under the root, query encoded), retried as every read is; its JSON."""
        return self._pauser.run(lambda: self._call("GET", path, what))

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
        more remain, the next `skip`. The listing is complete only when the distinct
        entries seen account for `totalCount` and the last page names no next one: a page
        that brings nothing new before then (empty, or a repeat), a link to a page already
        read, or a count that changes or is exceeded raises, after the flights of the
        pages before it (contract, "The whole app"). No cap on pages: the deadline bounds
        it. A 404 on the first page is an app without flights (as Microsoft's page
        documents); an unknown app then fails on its own read. An entry that names no
        usable flight is yielded as such, so the others still count.
        """
        what = f"list the package flights of app {app_id}"
        path = f"applications/{app_id}/listflights?top={FLIGHTS_PAGE_SIZE}"
        asked = {path.lower()}
        seen: set[str] = set()
        unreadable = 0  # entries without a flight ID: each counts once toward totalCount
        received = 0  # as the Store counts for `skip`: repeats and unreadable entries too
        total: int | None = None
        while True:
            try:
                body = self._pauser.run(partial(self._call, "GET", path, what))
            except StoreError as error:
                if error.status == 404 and received == 0:
                    return
                raise
            entries = field(body, "value") if isinstance(body, dict) else None
            if not isinstance(entries, list):
                raise self._unusable(what, "the answer has no list of flights (value)")
            count = _total_count(field(body, "totalCount"))
            if count is False:
                raise self._unusable(what, "its totalCount is not a whole number")
            if total is not None and count is not None and count != total:
                raise self._short(what, f"its totalCount changed from {total} to {count}")
            total = count if count is not None else total
            fresh = 0
            for item in entries:
                received += 1
                entry = read_flight(item, received)
                if isinstance(entry, Flight):
                    if entry.flight_id.lower() in seen:
                        continue
                    seen.add(entry.flight_id.lower())
                else:
                    unreadable += 1
                fresh += 1
                yield entry
            distinct = len(seen) + unreadable
            if total is not None and distinct > total:
                raise self._short(
                    what, f"it named {distinct} different flights, more than its totalCount {total}"
                )
            next_link = field(body, "@nextLink")
            if next_link:
                if not isinstance(next_link, str) or not is_flights_page(next_link, app_id):
                    raise self._unusable(what, "its @nextLink is not a further page of listflights")
                path = next_link.lstrip("/")
            elif total is not None and distinct < total and received < total:
                path = f"applications/{app_id}/listflights?skip={received}&top={FLIGHTS_PAGE_SIZE}"
            elif total is not None and distinct < total:
                raise self._short(
                    what, f"its pages ended with {distinct} of the {total} flights it counts"
                )
            else:
                return
            if not fresh:
                page = "an empty page" if not entries else "a page of flights already listed"
                raise self._short(what, f"it answered {page} before all were listed")
            if path.lower() in asked:
                raise self._short(what, "its @nextLink points back to a page already read")
            asked.add(path.lower())

    def read_rollout(self, ref: SubmissionRef) -> Rollout:
        return self._pauser.run(lambda: self.read_rollout_once(ref))

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

    def read_rollout_once(self, ref: SubmissionRef) -> Rollout:
        """One read, not retried (the caller decides when to look again): the rollout, or
        the StoreError or TransientError of this one attempt."""
        what = f"read the rollout of {ref.describe()}"
        body = self._call("GET", ref.path("packagerollout"), what)
        try:
            return Rollout.from_json(body)
        except ValueError as error:
            raise self._unusable(what, str(error)) from None

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
            # A halt that may be under way: it ends `halted` or `unknown` (confirm.py), whose
            # error quotes these words; they are never a title of their own.
            raise TransientError(
                f"the Store answered the halt with {rollout.status}, not {STOPPED}",
                StoreError(
                    f"Could not {what}: the Store answered 200 but said the rollout is "
                    f"{rollout.status} at {rollout.percentage:g}%, not {STOPPED}. Check the "
                    "submission in Partner Center."
                ),
            )
        return rollout

    def _short(self, what: str, why: str) -> StoreError:
        """A listing that contradicts itself or stops early: failed, never a shorter app."""
        return StoreError(
            f"Could not {what} completely: {why}. A listing is complete only when its pages "
            "account for its totalCount.",
            title="Flight listing incomplete",
        )

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
            if self._pauser.deadline.cancelled:  # a cancel is said as one, not as the deadline
                failure = StoreError(
                    f"Could not {what}: the run was {error}.", title="Run cancelled"
                )
            else:
                failure = StoreError(
                    f"Could not {what}: the Store at {urlsplit(url).netloc} could not be reached "
                    f"in time ({error}).",
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
                f"verified ({first_line(error)}). Behind a TLS-inspecting proxy, point "
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
                f"({kind}: {first_line(error)}).",
                title="Store unreachable",
            )
            # Failed while connecting (or through a proxy's tunnel), it did not reach the Store.
            sent = error.sent if isinstance(error, LostAnswer) else True
            raise TransientError(
                f"{kind} talking to the Store", failure, maybe_applied=sent
            ) from None
        return read_answer(response, what, quote_body=quote_body)
