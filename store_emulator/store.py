"""The Store submission API (/v1.0/my/) in front of the state machine."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from .records import Recorded
from .responses import Response, json_response
from .state import StoreError, StoreState

PREFIX = "/v1.0/my/"

_LISTING = re.compile(r"^/v1\.0/my/applications/([^/]+)(?:/flights/([^/]+))?$")
_ROLLOUT = re.compile(
    r"^/v1\.0/my/applications/([^/]+)(?:/flights/([^/]+))?"
    r"/submissions/([^/]+)/(packagerollout|haltpackagerollout)$"
)


def _gateway(status: int, message: str) -> Response:
    """An error from the API gateway in front of the ingestion service."""
    return json_response(status, {"statusCode": status, "message": message})


class StoreApi:
    def __init__(self, state: StoreState, is_access_token: Callable[[str], bool]) -> None:
        self._state = state
        self._is_access_token = is_access_token

    def handle(self, req: Recorded) -> Response:
        # The gateway checks the token before it looks at the path.
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self._is_access_token(token.strip()):
            return _gateway(401, "APIM: Unauthorized. Access token is missing or invalid.")
        try:
            result = self._call(req.method, req.path)
        except StoreError as error:
            return json_response(error.status, error.body())
        if result is None:
            return _gateway(404, "Resource not found")
        return json_response(200, result)

    def _call(self, method: str, path: str) -> dict[str, Any] | None:
        if match := _LISTING.match(path):
            app, flight = (unquote(g) if g else None for g in match.groups())
            if method != "GET" or app is None:
                return None
            return (
                self._state.flight_resource(app, flight)
                if flight
                else self._state.app_resource(app)
            )
        if match := _ROLLOUT.match(path):
            app, flight, submission, action = (unquote(g) if g else None for g in match.groups())
            if app is None or submission is None:
                return None
            if action == "packagerollout" and method == "GET":
                return self._state.rollout(app, submission, flight)
            if action == "haltpackagerollout" and method == "POST":
                return self._state.halt(app, submission, flight)
        return None
