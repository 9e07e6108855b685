"""The Store submission API (/v1.0/my/) in front of the state machine."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from .analytics import PREFIX as ANALYTICS_PREFIX
from .analytics import Analytics
from .knobs import ACCOUNT_MESSAGE, Knobs
from .records import Recorded
from .resources import StoreError
from .responses import Response, json_response
from .state import StoreState

PREFIX = "/v1.0/my/"

_APP = re.compile(r"^/v1\.0/my/applications/([^/]+)")
_LISTING = re.compile(r"^/v1\.0/my/applications/([^/]+)(?:/flights/([^/]+))?$")
# StoreBroker asks for `listflights/`, and the docs' @nextLink example has the slash too.
_LIST_FLIGHTS = re.compile(r"^/v1\.0/my/applications/([^/]+)/listflights/?$")
_ROLLOUT = re.compile(
    r"^/v1\.0/my/applications/([^/]+)(?:/flights/([^/]+))?"
    r"/submissions/([^/]+)/(packagerollout|haltpackagerollout)$"
)
_SUBMISSION = re.compile(
    r"^/v1\.0/my/applications/([^/]+)(?:/flights/([^/]+))?/submissions/([^/]+)$"
)
_BODY_METHODS = ("POST", "PUT", "PATCH")


def _gateway(status: int, message: str) -> Response:
    """An error from the API gateway in front of the ingestion service."""
    return json_response(status, {"statusCode": status, "message": message})


def _account_not_added(shape: str) -> Response:
    if shape == "ingestion":
        error = StoreError(503, "ServiceUnavailable", ACCOUNT_MESSAGE, "account")
        return json_response(503, error.body())
    if shape == "text":
        return Response(503, ACCOUNT_MESSAGE.encode(), {"Content-Type": "text/plain"})
    return _gateway(503, ACCOUNT_MESSAGE)


def _is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def _count(query: dict[str, str], name: str, least: int) -> int | None:
    value = query.get(name)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or int(value) < least:
        raise StoreError(
            400,
            "InvalidParameterValue",
            f"The value of {name} must be an integer of at least {least}.",
            name,
        )
    return int(value)


class StoreApi:
    def __init__(
        self,
        state: StoreState,
        is_access_token: Callable[[str], bool],
        knobs: Knobs,
        analytics: Analytics | None = None,
    ) -> None:
        self._state = state
        self._is_access_token = is_access_token
        self._knobs = knobs
        self._analytics = analytics or Analytics()

    def handle(self, req: Recorded) -> Response:
        # The gateway checks the token before it looks at the path.
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self._is_access_token(token.strip()):
            return _gateway(401, "APIM: Unauthorized. Access token is missing or invalid.")
        knobs = self._knobs
        if knobs.account_not_added:
            return _account_not_added(knobs.account_not_added_shape)
        if req.path.startswith(ANALYTICS_PREFIX):
            return self._analytics.handle(req, knobs.foreign_apps)
        if (app := _APP.match(req.path)) and unquote(app[1]) in knobs.foreign_apps:
            return Response(403)  # another account's app: an empty body, as seen
        try:
            self._check_media_type(req)
            result = self._call(req.method, req.path, req.query)
        except StoreError as error:
            return json_response(error.status, error.body())
        if result is None:
            return _gateway(404, "Resource not found")
        return json_response(200, result)

    def _check_media_type(self, req: Recorded) -> None:
        rule = self._knobs.content_type_rule
        if req.method not in _BODY_METHODS or rule == "off":
            return
        declared = req.headers.get("content-type")
        if declared is None and rule == "declared":
            return
        if declared is None or not _is_json(declared):
            raise StoreError(
                400, "InvalidParameterValue", "Only JSON content is accepted.", "mediaType"
            )

    def _call(self, method: str, path: str, query: dict[str, str]) -> dict[str, Any] | None:
        if match := _LISTING.match(path):
            app, flight = (unquote(g) if g else None for g in match.groups())
            if method != "GET" or app is None:
                return None
            return (
                self._state.flight_resource(app, flight)
                if flight
                else self._state.app_resource(app)
            )
        if match := _LIST_FLIGHTS.match(path):
            if method != "GET":
                return None
            skip = _count(query, "skip", 0) or 0
            top = _count(query, "top", 1)
            return self._state.list_flights(unquote(match[1]), skip, top)
        if match := _SUBMISSION.match(path):
            app, flight, submission = (unquote(g) if g else None for g in match.groups())
            if method != "GET" or app is None or submission is None:
                return None
            return self._state.submission(app, submission, flight)
        if match := _ROLLOUT.match(path):
            app, flight, submission, action = (unquote(g) if g else None for g in match.groups())
            if app is None or submission is None:
                return None
            if action == "packagerollout" and method == "GET":
                return self._state.rollout(app, submission, flight)
            if action == "haltpackagerollout" and method == "POST":
                return self._state.halt(app, submission, flight)
        return None
