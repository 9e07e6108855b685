"""The control API (/_emulator/...), for tests and scripts that run the emulator as a
separate process. It needs no token: the emulator is a loopback test tool."""

from __future__ import annotations

import json
from typing import Any

from . import bodies
from .contents import Contents
from .faults import Fault
from .knobs import Knobs
from .records import Recorded
from .resources import DEFAULT_FALLBACK, DEFAULT_GROUP_IDS, DEFAULT_RANK, IN_PROGRESS, StoreError
from .responses import Response, json_response

PREFIX = "/_emulator/"


class _BadRequest(Exception):
    pass


class _Fields:
    """Typed reads of a JSON object that reject unknown or mistyped fields."""

    def __init__(self, data: Any, allowed: set[str]) -> None:
        if not isinstance(data, dict):
            raise _BadRequest("the body must be a JSON object")
        if unknown := set(data) - allowed:
            raise _BadRequest(f"unknown fields: {sorted(unknown)}")
        self._data: dict[str, Any] = data

    def _get(self, key: str, types: tuple[type, ...], default: Any) -> Any:
        value = self._data.get(key, default)
        if value is not default and not isinstance(value, types):
            raise _BadRequest(f"{key} has the wrong type")
        return value

    def text(self, key: str) -> str:
        value = self._get(key, (str,), None)
        if value is None:
            raise _BadRequest(f"{key} is required")
        return str(value)

    def opt_text(self, key: str, default: str | None = None) -> str | None:
        value = self._get(key, (str, type(None)), default)
        return None if value is None else str(value)

    def flag(self, key: str, default: bool) -> bool:
        return bool(self._get(key, (bool,), default))

    def number(self, key: str, default: float) -> float:
        value = self._get(key, (int, float), default)
        if isinstance(value, bool):
            raise _BadRequest(f"{key} must be a number")
        return float(value)

    def integer(self, key: str, default: int) -> int:
        value = self._get(key, (int,), default)
        if isinstance(value, bool):
            raise _BadRequest(f"{key} must be an integer")
        return int(value)

    def opt_flag(self, key: str) -> bool | None:
        value = self._get(key, (bool, type(None)), None)
        return None if value is None else bool(value)

    def strings(self, key: str, default: list[str]) -> list[str]:
        value = self._get(key, (list,), default)
        if not all(isinstance(v, str) for v in value):
            raise _BadRequest(f"{key} must be a list of strings")
        return [str(v) for v in value]

    def mapping(self, key: str) -> dict[str, Any]:
        return dict(self._get(key, (dict,), {}))

    def raw(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)


_LISTING_FIELDS = {"app_id", "last_published", "pending", "null_style", "name", "extra"}
_FLIGHT_FIELDS = _LISTING_FIELDS | {"flight_id", "group_ids", "rank_higher_than"}
_ROLLOUT_FIELDS = {"app_id", "submission_id", "flight_id"}
_FAULT_FIELDS = {
    *("method", "path", "times", "kind", "status", "body", "headers", "seconds"),
    *("interval", "size", "framing", "endless", "stream"),
}
_SEEDS = ("demo", "whole-app", "guard")


def handle(emu: Contents, req: Recorded) -> Response:
    route = (req.method, req.path.removeprefix(PREFIX).rstrip("/"))
    try:
        data: Any = json.loads(req.body) if req.body.strip() else {}
    except ValueError:
        return json_response(400, {"error": "the body is not JSON"})
    try:
        return _route(emu, route, data, req.query)
    except _BadRequest as error:
        return json_response(400, {"error": str(error)})
    except (TypeError, ValueError) as error:  # e.g. Fault validation
        return json_response(400, {"error": str(error)})
    except StoreError as error:
        return json_response(error.status, error.body())


def _route(emu: Contents, route: tuple[str, str], data: Any, query: dict[str, str]) -> Response:
    if route == ("POST", "faults"):
        emu.add_fault(_fault(_Fields(data, _FAULT_FIELDS)))
        return json_response(201, {"faults": len(emu.faults)})
    if route == ("DELETE", "faults"):
        emu.clear_faults()
        return json_response(200, {"faults": 0})
    if route == ("POST", "apps"):
        f = _Fields(data, _LISTING_FIELDS)
        emu.add_app(
            f.text("app_id"),
            last_published=f.opt_text("last_published"),
            pending=f.opt_text("pending"),
            null_style=f.flag("null_style", False),
            name=f.opt_text("name") or "ApiTestApp",
            extra=f.mapping("extra"),
        )
        return json_response(201, emu.state.app_resource(f.text("app_id")))
    if route == ("POST", "flights"):
        f = _Fields(data, _FLIGHT_FIELDS)
        app_id, flight_id = f.text("app_id"), f.text("flight_id")
        emu.add_flight(
            app_id,
            flight_id,
            last_published=f.opt_text("last_published"),
            pending=f.opt_text("pending"),
            null_style=f.flag("null_style", False),
            name=f.opt_text("name") or "myflight",
            extra=f.mapping("extra"),
            group_ids=f.strings("group_ids", list(DEFAULT_GROUP_IDS)),
            rank_higher_than=f.opt_text("rank_higher_than") or DEFAULT_RANK,
        )
        return json_response(201, emu.state.flight_resource(app_id, flight_id))
    if route == ("POST", "rollout"):
        f = _Fields(
            data,
            _ROLLOUT_FIELDS
            | {"is_package_rollout", "percentage", "status", "fallback", "integer_percentage"},
        )
        rollout = emu.set_rollout(
            f.text("app_id"),
            f.text("submission_id"),
            flight_id=f.opt_text("flight_id"),
            is_package_rollout=f.flag("is_package_rollout", True),
            percentage=f.number("percentage", 25.0),
            status=f.opt_text("status") or IN_PROGRESS,
            fallback=f.opt_text("fallback") or DEFAULT_FALLBACK,
            integer_percentage=f.opt_flag("integer_percentage"),
        )
        return json_response(200, rollout)
    if route == ("POST", "packages"):
        f = _Fields(data, _ROLLOUT_FIELDS | {"versions"})
        versions = f.raw("versions", [])
        if not isinstance(versions, list) or not all(
            v is None or isinstance(v, str) for v in versions
        ):
            raise _BadRequest("versions must be a list of strings or nulls")
        app, submission, flight = f.text("app_id"), f.text("submission_id"), f.opt_text("flight_id")
        emu.set_packages(app, submission, versions, flight_id=flight)
        return json_response(200, emu.state.submission(app, submission, flight))
    if route == ("GET", "rollout"):
        f = _Fields(query, _ROLLOUT_FIELDS)
        rollout = emu.rollout(f.text("app_id"), f.text("submission_id"), f.opt_text("flight_id"))
        return json_response(200, rollout)
    if route == ("GET", "knobs"):
        return json_response(200, emu.knobs.to_json())
    if route == ("POST", "knobs"):
        _set_knobs(emu.knobs, data)
        return json_response(200, emu.knobs.to_json())
    if route == ("POST", "seed"):
        name = _Fields(data, {"name"}).text("name")
        if name not in _SEEDS:
            raise _BadRequest(f"name must be one of {list(_SEEDS)}")
        {"demo": emu.seed_demo, "whole-app": emu.seed_whole_app, "guard": emu.seed_guard}[name]()
        return json_response(200, {"seeded": name})
    if route[1].startswith("analytics/"):
        return _analytics(emu, route, data)
    if route == ("GET", "requests"):
        return json_response(200, [r.to_json() for r in emu.requests])
    if route == ("POST", "reset-requests"):
        emu.reset_requests()
        return json_response(200, {"requests": 0})
    return json_response(404, {"error": f"no control endpoint {route[0]} {PREFIX}{route[1]}"})


_SCRIPT_FIELDS = {
    *("app_id", "submission_id", "scenario", "fallback", "version", "fallback_version"),
    *("flight_id", "kept_versions", "hostile_names"),
}


def _analytics(emu: Contents, route: tuple[str, str], data: Any) -> Response:
    """GET/POST analytics/knobs, POST analytics/script (a rollout for the guard)."""
    if route == ("GET", "analytics/knobs"):
        return json_response(200, emu.analytics.knobs.to_json())
    if route == ("POST", "analytics/knobs"):
        knobs = emu.analytics.knobs
        f = _Fields(data, set(knobs.to_json()))
        checked = type(knobs)(**knobs.to_json())  # all or none: checked before any is set
        for name in data:
            setattr(checked, name, f.raw(name))
        for name in data:
            setattr(knobs, name, getattr(checked, name))
        return json_response(200, knobs.to_json())
    if route == ("POST", "analytics/script"):
        f = _Fields(data, _SCRIPT_FIELDS)
        emu.script_guard(
            f.text("app_id"),
            f.text("submission_id"),
            scenario=f.text("scenario"),
            fallback=f.text("fallback"),
            version=f.text("version"),
            fallback_version=f.text("fallback_version"),
            flight_id=f.opt_text("flight_id"),
            kept_versions=f.strings("kept_versions", []),
            hostile_names=f.flag("hostile_names", False),
        )
        return json_response(200, {"scripted": f.text("scenario")})
    return json_response(404, {"error": f"no control endpoint {route[0]} {PREFIX}{route[1]}"})


def _set_knobs(knobs: Knobs, data: Any) -> None:
    """Set the knobs named, all or none: each is checked before any is set."""
    f = _Fields(data, set(Knobs.__dataclass_fields__))
    checked = Knobs()
    for name, default in checked.to_json().items():
        if name not in data:
            continue
        if name == "foreign_apps":
            value: Any = set(f.strings(name, []))
        elif name == "listflights_page_cap":
            value = f.raw(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise _BadRequest(f"{name} must be an integer or null")
        elif isinstance(default, bool):
            value = f.flag(name, default)
        elif isinstance(default, float):
            value = f.number(name, default)
        else:
            value = f.text(name)
        setattr(checked, name, value)  # raises ValueError on a value out of range
    for name in data:
        setattr(knobs, name, getattr(checked, name))


def _fault(f: _Fields) -> Fault:
    times = f.raw("times", 1)
    if times is not None and (isinstance(times, bool) or not isinstance(times, int)):
        raise _BadRequest("times must be an integer or null")
    body = f.raw("body")
    if body is not None and not isinstance(body, str | dict):
        raise _BadRequest("body must be a string, an object or null")
    stream = f.raw("stream")
    if stream is not None:
        if body is not None:
            raise _BadRequest("give body or stream, not both")
        s = _Fields(stream, {"pattern", "count"})
        body = bodies.make(s.text("pattern"), s.integer("count", 0))
    headers = f.raw("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise _BadRequest("headers must be an object of strings")
    return Fault(
        method=f.opt_text("method") or "*",
        path=f.opt_text("path") or "",
        times=times,
        kind=f.opt_text("kind") or "respond",
        status=int(f.number("status", 500)),
        body=body,
        headers=headers,
        seconds=f.number("seconds", 3600.0),
        interval=f.number("interval", 1.0),
        size=f.integer("size", 0),
        framing=f.opt_text("framing") or "length",
        endless=f.flag("endless", False),
    )
