"""The Store analytics API: the failures and the usage that the guard compares.

Two reports, both grouped by the service itself (store-api.md, "Store analytics"):
`usagedaily` by packageVersion and date (without groupby it answers one row for
everything), and `failurehits` by packageVersion and eventType at day level (a row's
deviceCount is the unique devices of its group, so finer groups would count a device
once per failure). Every page is read, through the Store client's own request and
retry machinery: the run's deadline, its retries and Retry-After, its cancellation,
its error messages. A page that cannot be read, or that is not the documented shape,
makes the evidence unreadable, never smaller: what was read of the other pages is
thrown away, and the guard is blind rather than wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlencode, urljoin, urlsplit

from .errors import HaltRolloutError, StoreError
from .evidence import FailureRow, Readings, UsageRow
from .guard_inputs import BLIND_TITLE
from .store import StoreClient
from .store_resources import field

ANALYTICS = "analytics/"
USAGE = "usagedaily"
FAILURES = "failurehits"
# failurehits keeps the last 30 days: both reports are asked for the same 30.
DAYS = 30
PAGE_SIZE = 10_000  # the documented maximum of `top`
# A sanity bound besides the deadline: 100 pages of 10,000 rows is more than 30 days of
# versions and kinds can make; a Store that keeps sending links is not paging.
MAX_PAGES = 100
# What may stay as written when a link is sent again: the query's own syntax and `%`, so
# an escape the Store did write is not escaped twice; raw spaces and quotes get encoded.
_QUERY_SAFE = "!$&'()*+,/:;=?@[]~%"
# A row's day, with or without the time the hour level adds (`yyyy-mm-dd hh:mm:ss`), in
# ISO 8601's other spellings too (`T`, fractions, `Z` or an offset): the day is as written.
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ][0-9:.]+(?:Z|[+-][0-9:]+)?)?")
# More devices than exist (Windows runs on a few billion): a count above it is not a count
# of devices, and sums of such counts would overflow into infinities.
MOST_DEVICES = 1e10
ACCESS_HINT = (
    "The guard reads the Store's analytics (failurehits, usagedaily) as the same Entra "
    "application: it must have access to the account's analytics data (the Manager role "
    "in Partner Center, Account settings → User management → Microsoft Entra applications)."
)
NOTHING_HALTED = "the failure data could not be read; nothing was halted"


class AnalyticsUnreadable(StoreError):
    """The failure data could not be read, whole: the guard is blind."""

    title = BLIND_TITLE


class _Unusable(Exception):
    """A page that is not the documented shape; the message says how."""


def read_readings(
    store: StoreClient, app_id: str, today: date, log: Callable[[str], None]
) -> Readings:
    """The app's usage and failures over the last DAYS days (to `today`, the Store's day),
    every page of both; AnalyticsUnreadable when any of it cannot be had."""
    first = today - timedelta(days=DAYS - 1)
    dates = {"startDate": _us_date(first), "endDate": _us_date(today)}
    usage_query = {"applicationId": app_id, **dates, "groupby": "packageVersion,date"}
    failure_query = {
        "applicationId": app_id,
        **dates,
        "aggregationLevel": "day",
        "groupby": "packageVersion,eventType",
    }
    usage_rows = list(_rows(store, USAGE, usage_query, app_id))
    failure_rows = list(_rows(store, FAILURES, failure_query, app_id))
    # Rows of no version (Xbox's usage has none, as documented) belong to neither side.
    usage = tuple(_usage_row(row) for row in usage_rows if _has_version(row))
    failures = tuple(_failure_row(row) for row in failure_rows if _has_version(row))
    unattributed = len(usage_rows) + len(failure_rows) - len(usage) - len(failures)
    log(
        f"read the Store's analytics for {first.isoformat()} to {today.isoformat()}: "
        f"{len(usage)} usage row(s), {len(failures)} failure row(s)"
        + (f"; {unattributed} row(s) without a packageVersion left out" if unattributed else "")
    )
    return Readings(usage=usage, failures=failures, asked_from=first, asked_to=today)


def _rows(
    store: StoreClient, report: str, query: Mapping[str, str], app_id: str
) -> Iterator[Mapping[str, Any]]:
    """Every row of every page of `report`; AnalyticsUnreadable on any failure."""
    what = f"read the {report} report of app {app_id}"
    path = f"{ANALYTICS}{report}?{urlencode({**query, 'top': PAGE_SIZE}, safe='/,')}"
    seen = {path}
    received = 0
    try:
        for page in range(1, MAX_PAGES + 1):
            body = store.read(path, what)
            if not isinstance(body, dict):
                raise _Unusable(f"page {page} is not a JSON object")
            rows = field(body, "Value")
            if not isinstance(rows, list):
                raise _Unusable(f"page {page} has no list of rows (Value)")
            for row in rows:
                if not isinstance(row, dict):
                    raise _Unusable(f"a row of page {page} is not a JSON object")
                yield row
            received += len(rows)
            link = field(body, "@nextLink")
            if isinstance(link, str):  # a blank link, like null or none, names no page
                link = link.strip()
            total = field(body, "TotalCount")
            if link:
                path = _next_page(store.root, report, link, query)
            elif _counted(total) and total > received and rows:
                # No link, yet the count says more remain: the next rows, as `skip` pages.
                more = {**query, "top": PAGE_SIZE, "skip": received}
                path = f"{ANALYTICS}{report}?{urlencode(more, safe='/,')}"
            elif _counted(total) and total > received:
                raise _Unusable(f"it counts {total} rows (TotalCount) but sent {received}")
            else:
                return
            if path in seen:
                raise _Unusable(f"page {page}'s @nextLink points to a page already read")
            seen.add(path)
        raise _Unusable(f"it kept sending further pages after {MAX_PAGES}")
    except _Unusable as error:
        raise unreadable(
            f"Could not {what}: the Store's answer was not what its API documents ({error})."
        ) from None
    except StoreError as error:
        if error.status not in (401, 403):
            raise unreadable(error.message, status=error.status) from None
        said = ": ".join(part for part in (error.code, error.store_message) if part)
        details = ", ".join(
            part
            for part in (
                f"HTTP {error.status}",
                said,
                f"MS-CorrelationId: {error.correlation_id or 'none sent'}",
            )
            if part
        )
        raise unreadable(
            f"Could not {what}: the Store refused it ({details}). {ACCESS_HINT}",
            status=error.status,
        ) from None
    except HaltRolloutError as error:
        raise unreadable(error.message) from None


def unreadable(why: str, *, status: int | None = None) -> AnalyticsUnreadable:
    return AnalyticsUnreadable(
        f"The guard is blind: {NOTHING_HALTED}. {why} Until the data can be read, halt-when: "
        "failing cannot protect this rollout: run it again, or halt it as an emergency stop "
        "(halt-when: now) if it must stop.",
        status=status,
    )


def _counted(total: Any) -> bool:
    return isinstance(total, int) and not isinstance(total, bool)


def _next_page(root: str, report: str, link: Any, query: Mapping[str, str]) -> str:
    """The path under `root` of the page `link` names. As documented, a link is relative
    to the report (`failurehits?…`) and not URL-encoded; one relative to the API root
    (`analytics/failurehits?…`), absolute on this host, or whole, is taken too. It must be
    the same report on the Store's own scheme and host, and keep the grouping asked for."""
    if not isinstance(link, str) or len(link) > 8192 or not link.isprintable() or "#" in link:
        raise _Unusable("its @nextLink is not a link")
    base = root + ANALYTICS + report
    text = link.strip()
    url = urljoin(root if text.lower().startswith(ANALYTICS) else base, quote(text, _QUERY_SAFE))
    here, there = urlsplit(root), urlsplit(url)
    if (there.scheme, there.netloc.lower()) != (here.scheme, here.netloc.lower()):
        raise _Unusable("its @nextLink points away from the Store's own host")
    if there.path.rstrip("/").lower() != urlsplit(base).path.lower():
        raise _Unusable(f"its @nextLink is not a further page of {report}")
    given = {
        unquote(name).lower(): unquote(value)
        for name, _, value in (part.partition("=") for part in there.query.split("&") if part)
    }
    for name in ("applicationId", "groupby", "aggregationLevel"):
        said = given.get(name.lower())
        if name in query and said is not None and _grouping(said) != _grouping(query[name]):
            raise _Unusable(f"its @nextLink asks for another {name} ({said!r})")
    missing = {name: value for name, value in query.items() if name.lower() not in given}
    extra = ("&" if there.query else "") + urlencode(missing, safe="/,") if missing else ""
    return there.path[len(here.path) :] + "?" + there.query + extra


def _grouping(text: str) -> frozenset[str]:
    return frozenset(part.strip().lower() for part in text.split(","))


def _us_date(day: date) -> str:
    """The reports' date format, mm/dd/yyyy."""
    return f"{day.month:02d}/{day.day:02d}/{day.year:04d}"


def _day(row: Mapping[str, Any]) -> date:
    text = field(row, "date")
    match = _DATE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise _Unusable("a row has no date" if text is None else "a row's date is not a date")
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise _Unusable("a row's date is not a date") from None


def _has_version(row: Mapping[str, Any]) -> bool:
    """A row that names a version; one without (null, absent, empty) is attributable to none."""
    version = field(row, "packageVersion")
    return not (version is None or (isinstance(version, str) and not version.strip()))


def _version(row: Mapping[str, Any]) -> str:
    version = field(row, "packageVersion")
    if not isinstance(version, str):
        raise _Unusable("a row's packageVersion is not text")
    if version.strip().lower() == "all":  # the answer of a report not grouped as asked
        raise _Unusable("its rows are not grouped by packageVersion")
    return version.strip()


def _count(row: Mapping[str, Any], key: str) -> float:
    value = field(row, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Unusable(f"a row's {key} is not a number")
    if not math.isfinite(value) or not 0 <= value <= MOST_DEVICES:
        raise _Unusable(f"a row's {key} is not a count of devices")
    return float(value)


def _usage_row(row: Mapping[str, Any]) -> UsageRow:
    try:
        return UsageRow(_day(row), _version(row), _count(row, "dailyActiveDevices"))
    except _Unusable as error:
        raise unreadable(
            f"Could not read the usagedaily report: the Store's answer was not what its API "
            f"documents ({error})."
        ) from None


def _failure_row(row: Mapping[str, Any]) -> FailureRow:
    try:
        kind = field(row, "eventType")
        if not isinstance(kind, str):
            raise _Unusable("a row has no eventType")
        return FailureRow(
            _day(row), _version(row), kind.strip().lower(), _count(row, "deviceCount")
        )
    except _Unusable as error:
        raise unreadable(
            f"Could not read the failurehits report: the Store's answer was not what its API "
            f"documents ({error})."
        ) from None
