"""The Store analytics API (/v1.0/my/analytics/): failurehits and usagedaily, as
store-api.md's "Store analytics" documents them, quirks included.

Failures are held at two grains, as the service counts them: per day, version and kind
(what `groupby=packageVersion,eventType` answers: unique devices) and per failure (what
an answer without groupby, or grouped by failureName, lists: a device that hit two
failures is in two rows, so those rows add up to more than the unique devices). Usage
is held per day and version; without groupby it is one row of everything, with no date.
`deviceCount` is fractional. Pages follow `top` and `skip` (at most 10,000 rows, else
the documented 400) and link to the next with a relative, unencoded `@nextLink`.
Switch the quirks and errors on `AnalyticsKnobs`.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .records import Recorded
from .resources import uuid_of
from .responses import Response, json_response

PREFIX = "/v1.0/my/analytics/"
REPORTS = ("failurehits", "usagedaily")
MAX_TOP = 10_000
ERROR_STATUSES = (400, 401, 403, 404, 429, 500, 503)
APP_NAME = "Contoso Demo"
# Fields the docs' samples carry as null beyond the documented ones.
EXTRA_NULLS = {"osArchitecture": None, "cpu": None}


@dataclass
class AnalyticsKnobs:
    """
    refused_apps        app ID -> HTTP status: as `status`, for that app's requests only.
    status              answer every analytics request with this HTTP status (None: serve):
                        401 and 403 as the gateway does, 429 and 503 with `retry_after`,
                        400 as the documented body.
    retry_after         the Retry-After header (seconds) of a 429 or 503 (None: none sent).
    page_cap            the most rows one page holds, whatever `top` asks (None: `top`).
    usage_lag_days      the latest days with no usage yet (0: usage through today).
    failure_lag_days    the latest days with no failures yet.
    day_after_end       also answer rows dated the day after endDate (as the docs' sample).
    null_next_link      send `"@nextLink": null` on the last page (an old sample's shape).
    shuffle             rows in no particular order (a fixed seed).
    link_filter         a `filter` every @nextLink carries, raw (spaces and quotes), as the
                        links of a filtered query do; the rows are not filtered by it.
    date_suffix         written after each row's date: a time, as the hour level and some
                        answers write it ("T00:00:00", " 00:00:00", "T00:00:00Z").
    """

    status: int | None = None
    refused_apps: dict[str, int] = field(default_factory=dict)
    retry_after: float | None = None
    page_cap: int | None = None
    usage_lag_days: int = 0
    failure_lag_days: int = 0
    day_after_end: bool = True
    null_next_link: bool = False
    shuffle: bool = True
    link_filter: str | None = None
    date_suffix: str = ""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "status" and value is not None and value not in ERROR_STATUSES:
            raise ValueError(f"status must be one of {ERROR_STATUSES} or None")
        if name == "refused_apps" and (
            not isinstance(value, dict) or any(v not in ERROR_STATUSES for v in value.values())
        ):
            raise ValueError(f"refused_apps must map app IDs to one of {ERROR_STATUSES}")
        if name == "page_cap" and value is not None and value < 1:
            raise ValueError("page_cap must be at least 1, or None")
        if name in ("usage_lag_days", "failure_lag_days") and not 0 <= value <= 90:
            raise ValueError(f"{name} must be 0 to 90")
        if name not in {f.name for f in fields(AnalyticsKnobs)}:
            raise AttributeError(f"no analytics knob {name!r}")
        super().__setattr__(name, value)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class _AppData:
    # (day, version) -> daily active devices
    usage: dict[tuple[date, str], float] = field(default_factory=dict)
    # (day, version, kind) -> unique failing devices
    failing: dict[tuple[date, str, str], float] = field(default_factory=dict)
    # one row per failure: day, version, kind, failure name, symbol, devices
    failures: list[tuple[date, str, str, str, str, float]] = field(default_factory=list)


def today() -> date:
    """The Store's day (UTC), as the client asks for it."""
    return datetime.now(UTC).date()


class Analytics:
    def __init__(self) -> None:
        self.knobs = AnalyticsKnobs()
        self._lock = threading.Lock()
        self._apps: dict[str, _AppData] = {}

    # -- content --------------------------------------------------------------------------

    def add_usage(self, app_id: str, day: date, version: str, active_devices: float) -> None:
        with self._lock:
            self._app(app_id).usage[(day, version)] = float(active_devices)

    def add_failures(  # noqa: PLR0917 (a row's fields, in the report's order)
        self,
        app_id: str,
        day: date,
        version: str,
        kind: str,
        devices: float,
        names: Iterable[tuple[str, str, float]] = (),
    ) -> None:
        """`devices` unique devices hit a `kind` failure on `version` that day; `names` are the
        failures they hit (name, symbol, devices each), which may add up to more."""
        with self._lock:
            data = self._app(app_id)
            data.failing[(day, version, kind)] = float(devices)
            listed = list(names) or [(f"APPLICATION_FAULT_{kind}_{version}", "app!main", devices)]
            data.failures += [(day, version, kind, n, s, float(d)) for n, s, d in listed]

    def clear(self, app_id: str) -> None:
        with self._lock:
            self._apps.pop(app_id, None)

    def _app(self, app_id: str) -> _AppData:
        return self._apps.setdefault(app_id, _AppData())

    # -- the API --------------------------------------------------------------------------

    def handle(self, req: Recorded, foreign_apps: set[str]) -> Response:
        report = req.path.removeprefix(PREFIX).rstrip("/")
        if report not in REPORTS or req.method != "GET":
            return json_response(404, {"statusCode": 404, "message": "Resource not found"})
        query = {name.lower(): value for name, value in req.query.items()}
        app_id = query.get("applicationid", "")
        status = self.knobs.status or self.knobs.refused_apps.get(app_id)
        if status is not None:
            return self._refusal(status)
        if app_id in foreign_apps:
            return Response(403)
        try:
            top = int(query.get("top", str(MAX_TOP)))
            skip = int(query.get("skip", "0"))
            first, last = _date(query.get("startdate")), _date(query.get("enddate"))
        except ValueError:
            return bad_request("InvalidQueryParameters", "a parameter is not valid")
        if top > MAX_TOP:
            return bad_request("InvalidQueryParameters", "top parameter cannot be more than 10000")
        groupby = [g.strip() for g in query.get("groupby", "").split(",") if g.strip()]
        rows = self._rows(report, app_id, first, last, groupby)
        if self.knobs.shuffle:
            random.Random(len(rows)).shuffle(rows)
        if self.knobs.date_suffix:
            rows = [
                {**r, "date": r["date"] + self.knobs.date_suffix} if "date" in r else r
                for r in rows
            ]
        size = min(top, self.knobs.page_cap or top)
        page = rows[skip : skip + size]
        body: dict[str, Any] = {"Value": page}
        if skip + len(page) < len(rows) and page:
            query = dict(req.query)
            if self.knobs.link_filter is not None:
                query["filter"] = self.knobs.link_filter
            body["@nextLink"] = _next_link(report, query, skip + len(page), size)
        elif self.knobs.null_next_link:
            body["@nextLink"] = None
        body["TotalCount"] = len(rows)
        return json_response(200, body)

    def _rows(
        self, report: str, app_id: str, first: date, last: date, groupby: list[str]
    ) -> list[dict[str, Any]]:
        end = last + timedelta(days=1) if self.knobs.day_after_end else last
        now = today()
        with self._lock:
            data = self._app(app_id)
            if report == "usagedaily":
                cutoff = now - timedelta(days=self.knobs.usage_lag_days)
                usage = {
                    key: devices
                    for key, devices in data.usage.items()
                    if first <= key[0] <= end and key[0] <= cutoff
                }
                return _usage_rows(app_id, usage, groupby)
            cutoff = now - timedelta(days=self.knobs.failure_lag_days)

            def kept(day: date) -> bool:
                return first <= day <= end and day <= cutoff

            if not groupby or any(g in ("failureName", "failureHash", "symbol") for g in groupby):
                return [
                    _failure_row(app_id, day, version, kind, devices, name=name, symbol=symbol)
                    for day, version, kind, name, symbol, devices in data.failures
                    if kept(day)
                ]
            return [
                _failure_row(app_id, day, version, kind, devices)
                for (day, version, kind), devices in data.failing.items()
                if kept(day)
            ]

    def _refusal(self, status: int) -> Response:
        if status == 400:
            return bad_request("InvalidQueryParameters", "top parameter cannot be more than 10000")
        headers = {}
        if self.knobs.retry_after is not None and status in (429, 503):
            headers["Retry-After"] = f"{self.knobs.retry_after:g}"
        messages = {
            401: "APIM: Unauthorized. Access token is missing or invalid.",
            403: "The caller is not authorized to access the analytics of this application.",
            429: "Rate limit is exceeded. Try again later.",
        }
        message = messages.get(status, "The service is unavailable.")
        return json_response(status, {"statusCode": status, "message": message}, headers)


def bad_request(code: str, said: str) -> Response:
    """The analytics API's one documented error body."""
    return json_response(
        400,
        {
            "code": "BadRequest",
            "data": [],
            "details": [],
            "innererror": {
                "code": code,
                "data": [said],
                "details": [],
                "message": "One or more query parameters has invalid values.",
                "source": "AnalyticsAPI",
            },
            "message": "The calling client sent a bad request to the service.",
            "source": "AnalyticsAPI",
        },
    )


def _date(text: str | None) -> date:
    """mm/dd/yyyy (or yyyy-mm-dd, and with a time at hour level); today when not given."""
    if not text:
        return today()
    text = text.strip().split(" ")[0]
    if "/" in text:
        month, day, year = (int(part) for part in text.split("/"))
        return date(year, month, day)
    return date.fromisoformat(text)


def _next_link(report: str, query: dict[str, str], skip: int, top: int) -> str:
    """As the docs show it: relative to the report, and not URL-encoded."""
    kept = {name: value for name, value in query.items() if name.lower() not in ("skip", "top")}
    parts = [f"{name}={value}" for name, value in kept.items()]
    return f"{report}?" + "&".join([*parts, f"top={top}", f"skip={skip}"])


def _usage_rows(
    app_id: str, usage: dict[tuple[date, str], float], groupby: list[str]
) -> list[dict[str, Any]]:
    by_date, by_version = "date" in groupby, "packageVersion" in groupby
    totals: dict[tuple[date | None, str], float] = {}
    for (day, version), devices in usage.items():
        key = (day if by_date else None, version if by_version else "All")
        totals[key] = totals.get(key, 0.0) + devices
    rows = []
    for (when, version), devices in totals.items():
        row: dict[str, Any] = {
            "applicationId": app_id,
            "applicationName": APP_NAME,
            "deviceType": "All",
            "packageVersion": version,
            "market": "All",
            "subscriptionName": "All",
            "dailySessionCount": round(devices * 2.5, 1),
            "engagementDurationMinutes": round(devices * 11.0, 1),
            "dailyActiveUsers": round(devices * 0.9, 1),
            "dailyActiveDevices": devices,
            "dailyNewUsers": 0.0,
            "dailyNewDevices": 0.0,
            "monthlyActiveUsers": None,
            "monthlyActiveDevices": None,
            **EXTRA_NULLS,
        }
        if when is not None:
            row = {"date": when.isoformat(), **row}
        rows.append(row)
    return rows


def _failure_row(
    app_id: str,
    day: date,
    version: str,
    kind: str,
    devices: float,
    *,
    name: str | None = None,
    symbol: str | None = None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "date": day.isoformat(),
        "applicationId": app_id,
        "applicationName": APP_NAME,
        "eventType": kind,
        "packageName": "",
        "packageVersion": version,
        "deviceCount": devices,
        "eventCount": round(devices * 1.7, 2),
        **EXTRA_NULLS,
    }
    if name is not None:
        row |= {"failureName": name, "failureHash": uuid_of(name), "symbol": symbol}
    return row
